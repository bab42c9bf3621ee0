import BillingCore
import Testing

@Suite struct MoneyArithmeticTests {
    @Test func addsSubtractsAndMultipliesExactly() throws {
        let a = Money(micros: 1_500_000)
        let b = Money(micros: 250_001)
        #expect(try a.adding(b) == Money(micros: 1_750_001))
        #expect(try a.subtracting(b) == Money(micros: 1_249_999))
        #expect(try b.multiplied(by: 4) == Money(micros: 1_000_004))
        #expect(try Money.sum([a, b, b]) == Money(micros: 2_000_002))
        #expect(try Money.sum([Money]()) == .zero)
    }

    @Test func dollars() throws {
        #expect(try Money(dollars: 49) == Money(micros: 49_000_000))
        // Int64.max / 1,000,000 = 9,223,372,036,854 fits; one more does not.
        #expect(try Money(dollars: 9_223_372_036_854).micros == 9_223_372_036_854_000_000)
        #expect(throws: MoneyOverflow.self) { try Money(dollars: 9_223_372_036_855) }
    }

    @Test func additionOverflowIsAnErrorNotAWrap() {
        #expect(throws: MoneyOverflow.self) { try Money(micros: .max).adding(Money(micros: 1)) }
        #expect(throws: MoneyOverflow.self) { try Money(micros: .min).adding(Money(micros: -1)) }
        #expect(throws: Never.self) { try Money(micros: .max - 1).adding(Money(micros: 1)) }
    }

    @Test func subtractionOverflowIsAnError() {
        #expect(throws: MoneyOverflow.self) { try Money(micros: .min).subtracting(Money(micros: 1)) }
        #expect(throws: MoneyOverflow.self) { try Money.zero.subtracting(Money(micros: .min)) }
        #expect(throws: Never.self) { try Money.zero.subtracting(Money(micros: .max)) }
    }

    @Test func multiplicationOverflowIsAnError() throws {
        #expect(throws: MoneyOverflow.self) { try Money(micros: .max).multiplied(by: 2) }
        #expect(throws: MoneyOverflow.self) { try Money(micros: .min).multiplied(by: -1) }
        #expect(throws: MoneyOverflow.self) { try Money(micros: 3_037_000_500).multiplied(by: 3_037_000_500) }
        #expect(try Money(micros: .max / 2).multiplied(by: 2) == Money(micros: .max - 1))
    }

    @Test func sumOverflowIsAnError() throws {
        let half = Money(micros: .max / 2 + 1)
        #expect(throws: MoneyOverflow.self) { try Money.sum([half, half]) }
        #expect(try Money.sum([half, Money(micros: .max / 2)]) == Money(micros: .max))
    }

    @Test func roundsHalfUpToTheCentAwayFromZero() {
        let cases: [(Int64, Int64)] = [
            (0, 0), (4_999, 0), (5_000, 10_000), (1_134, 0), (19, 0), (715_366_667, 715_370_000),
            (12_345_000, 12_350_000), (12_344_999, 12_340_000), (-5_000, -10_000), (-4_999, 0),
            // Where rounding away would not fit, toward zero instead.
            (Int64.max, Int64.max - 5_807), (Int64.min, Int64.min + 5_808),
            (Int64.max - 5_807, Int64.max - 5_807),
        ]
        for (micros, cents) in cases {
            #expect(Money(micros: micros).roundedToCent == Money(micros: cents), "\(micros)")
        }
    }

    @Test func ordersByAmount() {
        #expect(Money(micros: -1) < .zero)
        #expect(Money(micros: 2) > Money(micros: 1))
    }
}
