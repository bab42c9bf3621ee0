import BillingCore
import Testing

@Suite struct MoneyFormattingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var micros: Int64
        var exact: String
        var cents: String
        var significant: String
        var testDescription: String { "\(micros) micros" }
    }

    static let cases: [Case] = [
        Case(micros: 0, exact: "$0.000000", cents: "$0.00", significant: "$0.00"),
        Case(micros: 1, exact: "$0.000001", cents: "$0.00", significant: "$0.000001"),
        Case(micros: 4_999, exact: "$0.004999", cents: "$0.00", significant: "$0.004999"),
        Case(micros: 5_000, exact: "$0.005000", cents: "$0.01", significant: "$0.005"),
        Case(micros: 12_340_000, exact: "$12.340000", cents: "$12.34", significant: "$12.34"),
        Case(micros: 999_000_000, exact: "$999.000000", cents: "$999.00", significant: "$999.00"),
        Case(micros: 1_000_000_000, exact: "$1,000.000000", cents: "$1,000.00", significant: "$1,000.00"),
        Case(micros: 1_234_567_890, exact: "$1,234.567890", cents: "$1,234.57", significant: "$1,234.56789"),
        Case(micros: 999_999_995_000, exact: "$999,999.995000", cents: "$1,000,000.00",
             significant: "$999,999.995"),
        Case(micros: -500_000, exact: "-$0.500000", cents: "-$0.50", significant: "-$0.50"),
        Case(micros: -5_000, exact: "-$0.005000", cents: "-$0.01", significant: "-$0.005"),
        // Rounds to zero cents: no "-$0.00".
        Case(micros: -1, exact: "-$0.000001", cents: "$0.00", significant: "-$0.000001"),
        Case(micros: .max, exact: "$9,223,372,036,854.775807", cents: "$9,223,372,036,854.78",
             significant: "$9,223,372,036,854.775807"),
        Case(micros: .min, exact: "-$9,223,372,036,854.775808", cents: "-$9,223,372,036,854.78",
             significant: "-$9,223,372,036,854.775808"),
    ]

    @Test(arguments: cases)
    func formats(_ c: Case) {
        let money = Money(micros: c.micros)
        #expect(money.formatted(.micros) == c.exact)
        #expect(money.formatted(.cents) == c.cents)
        #expect(money.formatted(.significant) == c.significant)
        #expect(money.description == c.exact)
    }
}
