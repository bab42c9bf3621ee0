/// Checked arithmetic. `Money` deliberately does not conform to
/// `AdditiveArithmetic`: its `+` would trap on overflow.
extension Money {
    public func adding(_ other: Money) throws(MoneyOverflow) -> Money {
        let (micros, overflow) = self.micros.addingReportingOverflow(other.micros)
        guard !overflow else { throw MoneyOverflow() }
        return Money(micros: micros)
    }

    public func subtracting(_ other: Money) throws(MoneyOverflow) -> Money {
        let (micros, overflow) = self.micros.subtractingReportingOverflow(other.micros)
        guard !overflow else { throw MoneyOverflow() }
        return Money(micros: micros)
    }

    public func multiplied(by factor: Int64) throws(MoneyOverflow) -> Money {
        let (micros, overflow) = self.micros.multipliedReportingOverflow(by: factor)
        guard !overflow else { throw MoneyOverflow() }
        return Money(micros: micros)
    }

    /// The exact sum of `amounts`; throws if any partial sum overflows.
    public static func sum(_ amounts: some Sequence<Money>) throws(MoneyOverflow) -> Money {
        var total = Money.zero
        for amount in amounts {
            total = try total.adding(amount)
        }
        return total
    }
}
