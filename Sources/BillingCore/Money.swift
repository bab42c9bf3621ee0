/// An amount of money in integer micro-dollars (1 USD = 1,000,000 micros).
///
/// There is no floating point anywhere in money: amounts are exact integers and
/// arithmetic is checked. Overflow is reported as `MoneyOverflow`, never a wrap
/// and never a trap, so a hostile quantity cannot crash the ledger. Negative
/// amounts are representable (refunds, corrections); pricing never makes one.
public struct Money: Sendable, Hashable, Comparable {
    /// Micro-dollars per dollar.
    public static let microsPerDollar: Int64 = 1_000_000

    public static let zero = Money(micros: 0)

    /// The amount in micro-dollars.
    public let micros: Int64

    public init(micros: Int64) {
        self.micros = micros
    }

    /// Whole dollars; throws when `dollars` × 1,000,000 does not fit.
    public init(dollars: Int64) throws(MoneyOverflow) {
        let (micros, overflow) = dollars.multipliedReportingOverflow(by: Money.microsPerDollar)
        guard !overflow else { throw MoneyOverflow() }
        self.micros = micros
    }

    public static func < (lhs: Money, rhs: Money) -> Bool {
        lhs.micros < rhs.micros
    }
}

/// An arithmetic result did not fit in Int64 micro-dollars.
public struct MoneyOverflow: Error, Hashable, Sendable {
    public init() {}
}
