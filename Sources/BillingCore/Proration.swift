/// The exact, integer proration of an upgrade made mid-period.
///
/// Plan prices are billed in advance for a whole monthly period, so an
/// upgrade at `now` owes the price difference for the rest of the period:
///
///     (newPrice − oldPrice) × secondsRemaining / secondsInPeriod
///
/// computed in 128-bit integers and rounded half-up to the micro once. The
/// difference is rounded once, not "credit the old plan, charge the new one"
/// rounded twice, so the charge is never a micro off the exact amount.
/// A downgrade is never prorated (it is scheduled for the period end): its
/// charge is zero, never a negative credit.
public enum Proration {
    /// What an upgrade from a plan priced `oldPrice` a month to one priced
    /// `newPrice` costs at `now` within `period`. Zero at the period end or
    /// when the new price is not higher.
    public static func upgradeCharge(from oldPrice: Money, to newPrice: Money, at now: Int64, in period: BillingPeriod) -> Money {
        precondition(oldPrice >= .zero && newPrice >= .zero, "plan prices are never negative")
        guard newPrice > oldPrice else { return .zero }
        // Both are non-negative Int64s, so the difference fits.
        return remainingShare(of: Money(micros: newPrice.micros - oldPrice.micros), at: now, in: period)
    }

    /// `amount` × secondsRemaining / secondsInPeriod, rounded half-up: the
    /// part of a period's price that covers the time from `now` to its end
    /// (also the unused value of a plan left at `now`).
    public static func remainingShare(of amount: Money, at now: Int64, in period: BillingPeriod) -> Money {
        precondition(amount >= .zero, "only a non-negative amount is prorated")
        precondition(period.start < period.end, "a billing period has a length")
        precondition(period.start <= now && now <= period.end, "proration happens within the period")
        let length = UInt128(UInt64(period.end - period.start))
        let remaining = UInt128(UInt64(period.end - now))
        // amount < 2^63 and remaining ≤ length < 2^63: the product is < 2^127.
        let numerator = UInt128(UInt64(amount.micros)) * remaining
        // Half-up: floor((2·n + d) / (2·d)), in 128 bits with room to spare.
        let rounded = (numerator * 2 + length) / (length * 2)
        // remaining ≤ length, so the result is at most `amount`.
        precondition(rounded <= UInt128(UInt64(amount.micros)), "a share never exceeds the whole")
        return Money(micros: Int64(rounded))
    }
}
