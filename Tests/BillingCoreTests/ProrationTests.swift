import BillingCore
import Testing

/// Hand-computed: (new − old) × remaining / length, rounded half-up to the
/// micro (the invoice line is then rounded to the cent: README).
@Suite struct ProrationTests {
    /// The monthly period of an account anchored on the 1st at midnight.
    static func month(_ year: Int, _ month: Int) -> BillingPeriod {
        BillingPeriod.containing(utc(year, month, 1), anchor: utc(2026, 1, 1))
    }

    @Test func periodLengthsComeFromTheCalendar() {
        #expect(Self.month(2026, 4).end - Self.month(2026, 4).start == 30 * day)
        #expect(Self.month(2027, 2).end - Self.month(2027, 2).start == 28 * day)
        #expect(Self.month(2028, 2).end - Self.month(2028, 2).start == 29 * day)
        #expect(Self.month(2027, 1).end - Self.month(2027, 1).start == 31 * day)
    }

    @Test func upgradeAtTheMiddleOfA30DayMonthIsHalfThePrice() {
        // April 2026: 15 of 30 days left → $49 / 2 = $24.50 exactly.
        let charge = Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2026, 4, 16), in: Self.month(2026, 4))
        #expect(charge == Money(micros: 24_500_000))
    }

    /// Two roundings, as the README says: January 2026 (31 days) with
    /// 23,231 s left, Free to Pro: $49 × 23,231 / 2,678,400 = 424,999.63
    /// micros → 425,000 micros → $0.43 on the invoice (one rounding to the
    /// cent would be $0.42).
    @Test func anUpgradeIsRoundedToTheMicroThenItsLineToTheCent() {
        let charge = Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2026, 2, 1) - 23_231, in: Self.month(2026, 1))
        #expect(charge == Money(micros: 425_000))
        #expect(charge.roundedToCent == Money(micros: 430_000))
    }

    @Test func upgradeAtPeriodStartIsTheFullDifference() {
        #expect(Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2026, 4, 1), in: Self.month(2026, 4)) == proPrice)
        #expect(Proration.upgradeCharge(
            from: Money(micros: 10_000_000), to: proPrice, at: utc(2027, 2, 1), in: Self.month(2027, 2))
            == Money(micros: 39_000_000))
    }

    @Test func upgradeAtPeriodEndIsFree() {
        #expect(Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2026, 5, 1), in: Self.month(2026, 4)) == .zero)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let period: BillingPeriod
        let at: Int64
        let micros: Int64
        let testDescription: String
    }

    static let cases: [Case] = [
        // 28-day February 2027 (2,419,200 s).
        Case(period: month(2027, 2), at: utc(2027, 2, 15), micros: 24_500_000, testDescription: "Feb 2027, 14 of 28 days"),
        Case(period: month(2027, 2), at: utc(2027, 2, 19), micros: 17_500_000, testDescription: "Feb 2027, 10 of 28 days"),
        Case(period: month(2027, 2), at: utc(2027, 2, 28), micros: 1_750_000, testDescription: "Feb 2027, 1 of 28 days"),
        // 49e6 / 2,419,200 = 20.254… → 20.
        Case(period: month(2027, 2), at: utc(2027, 3, 1) - 1, micros: 20, testDescription: "Feb 2027, last second"),
        // 29-day leap February 2028 (2,505,600 s).
        // 490e6 / 29 = 16,896,551.72… → 16,896,552 (rounds up).
        Case(period: month(2028, 2), at: utc(2028, 2, 20), micros: 16_896_552, testDescription: "Feb 2028, 10 of 29 days"),
        // 49e6 / 29 = 1,689,655.17… → 1,689,655 (rounds down).
        Case(period: month(2028, 2), at: utc(2028, 2, 29), micros: 1_689_655, testDescription: "Feb 2028, 1 of 29 days"),
        // 49e6 / 2,505,600 = 19.556… → 20.
        Case(period: month(2028, 2), at: utc(2028, 3, 1) - 1, micros: 20, testDescription: "Feb 2028, last second"),
        // 30-day April 2026 (2,592,000 s): 490e6 / 30 = 16,333,333.33… → 16,333,333.
        Case(period: month(2026, 4), at: utc(2026, 4, 21), micros: 16_333_333, testDescription: "Apr 2026, 10 of 30 days"),
        // 49e6 / 2,592,000 = 18.904… → 19.
        Case(period: month(2026, 4), at: utc(2026, 5, 1) - 1, micros: 19, testDescription: "Apr 2026, last second"),
        // 31-day January 2027 (2,678,400 s).
        // 490e6 / 31 = 15,806,451.61… → 15,806,452.
        Case(period: month(2027, 1), at: utc(2027, 1, 22), micros: 15_806_452, testDescription: "Jan 2027, 10 of 31 days"),
        // 49e6 / 31 = 1,580,645.16… → 1,580,645.
        Case(period: month(2027, 1), at: utc(2027, 1, 31), micros: 1_580_645, testDescription: "Jan 2027, 1 of 31 days"),
        // 49e6 / 2,678,400 = 18.294… → 18.
        Case(period: month(2027, 1), at: utc(2027, 2, 1) - 1, micros: 18, testDescription: "Jan 2027, last second"),
        // 12 hours of 30 days: 49e6 × 43,200 / 2,592,000 = 816,666.67 → 816,667.
        Case(period: month(2026, 4), at: utc(2026, 4, 30, 12), micros: 816_667, testDescription: "Apr 2026, last 12 hours"),
    ]

    @Test(arguments: cases)
    func freeToProCharges(_ c: Case) {
        #expect(Proration.upgradeCharge(from: .zero, to: proPrice, at: c.at, in: c.period) == Money(micros: c.micros))
    }

    @Test func roundsHalfUpOnce() {
        let april = Self.month(2026, 4)
        let middle = utc(2026, 4, 16)
        // Exactly half a micro rounds up; 1.5 rounds to 2; 2.5 to 3.
        #expect(Proration.remainingShare(of: Money(micros: 1), at: middle, in: april) == Money(micros: 1))
        #expect(Proration.remainingShare(of: Money(micros: 3), at: middle, in: april) == Money(micros: 2))
        #expect(Proration.remainingShare(of: Money(micros: 5), at: middle, in: april) == Money(micros: 3))
        // Just below half rounds down: 1 micro × (half − 1 s) / length.
        #expect(Proration.remainingShare(of: Money(micros: 1), at: middle + 1, in: april) == .zero)
        // The difference is rounded once: $0.000003 → $0.000008 at half is
        // 2.5 → 3, where 4 − 2 (each side rounded) would be 2.
        #expect(Proration.upgradeCharge(from: Money(micros: 3), to: Money(micros: 8), at: middle, in: april) == Money(micros: 3))
    }

    @Test func aDowngradeIsNeverProrated() {
        #expect(Proration.upgradeCharge(from: proPrice, to: .zero, at: utc(2026, 4, 16), in: Self.month(2026, 4)) == .zero)
        #expect(Proration.upgradeCharge(from: proPrice, to: proPrice, at: utc(2026, 4, 16), in: Self.month(2026, 4)) == .zero)
    }

    @Test func clampedPeriodsOfAnAnchorOnThe31st() {
        // Anchored Jan 31 2028: Jan 31 → Feb 29 (29 days), Feb 29 → Mar 31 (31 days).
        let anchor = utc(2028, 1, 31)
        let february = BillingPeriod.containing(utc(2028, 2, 10), anchor: anchor)
        #expect(february == period(utc(2028, 1, 31), utc(2028, 2, 29), anchor: anchor))
        let march = BillingPeriod.containing(utc(2028, 3, 1), anchor: anchor)
        #expect(march == period(utc(2028, 2, 29), utc(2028, 3, 31), anchor: anchor))
        // 1 day of 29 and of 31.
        #expect(Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2028, 2, 28), in: february) == Money(micros: 1_689_655))
        #expect(Proration.upgradeCharge(from: .zero, to: proPrice, at: utc(2028, 3, 30), in: march) == Money(micros: 1_580_645))
    }

    @Test func largestAmountsDoNotOverflow() {
        let january = Self.month(2027, 1)
        let max = Money(micros: .max)
        #expect(Proration.upgradeCharge(from: .zero, to: max, at: january.start, in: january) == max)
        // (2^63 − 1) / 2,678,400 = 3,443,612,618,300.02… → 3,443,612,618,300.
        #expect(Proration.upgradeCharge(from: .zero, to: max, at: january.end - 1, in: january)
            == Money(micros: 3_443_612_618_300))
        // Half of 2^63 − 1 is …903.5 → …904.
        let april = Self.month(2026, 4)
        #expect(Proration.remainingShare(of: max, at: utc(2026, 4, 16), in: april) == Money(micros: 4_611_686_018_427_387_904))
    }
}
