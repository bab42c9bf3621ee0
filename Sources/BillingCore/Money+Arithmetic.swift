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

extension Money {
    /// One cent: what a payment gateway charges in.
    public static let cent = Money(micros: 10_000)

    /// Whether this is a whole number of cents (what invoices and charges are).
    public var isWholeCents: Bool { micros % Self.cent.micros == 0 }

    /// Rounded half-up (away from zero) to the cent, as invoices charge: the
    /// amount a gateway can take. Within a half cent of Int64's ends, where
    /// rounding away would not fit, it rounds toward zero instead.
    public var roundedToCent: Money {
        let cent = Self.cent.micros
        let remainder = micros % cent  // same sign as micros
        let down = micros - remainder
        guard remainder.magnitude * 2 >= cent else { return Money(micros: down) }
        let (away, overflow) = down.addingReportingOverflow(micros < 0 ? -cent : cent)
        return Money(micros: overflow ? down : away)
    }
}
