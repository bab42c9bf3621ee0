/// A banner the app shows across its pages, most urgent first in
/// `AccountLifecycle.banners(now:)`.
public enum Banner: Sendable, Hashable {
    /// New runs are paused, and what unpauses them.
    case paused(PauseReason)
    /// The oldest unpaid invoice, with a pay link; `pausesAt` is when new
    /// runs pause if it stays unpaid (nil once they are paused).
    case pastDue(invoice: Int64, pausesAt: Int64?)
    /// Days left in the trial (rounded up) and when it ends.
    case trialCountdown(daysLeft: Int, endsAt: Int64)

    /// The text for people; the app branches on the case, never on this.
    /// `plan`: the account's; `plans` name the plans.
    public func message(plan: Plan, plans: PlanCatalog) -> String {
        switch self {
        case .paused(.trialEndedWithoutPaymentMethod):
            "Your trial has ended and new runs are paused: \(PauseReason.trialEndedWithoutPaymentMethod.remedy(plan: plan, plans: plans))."
        case .paused(let reason):
            "New runs are paused: \(reason.remedy(plan: plan, plans: plans))."
        case .pastDue(let invoice, let pausesAt?):
            "Payment of invoice \(Self.invoiceNumber(invoice)) failed: update your payment method and pay it. New runs pause on \(CivilDate(unixSeconds: pausesAt)) if it stays unpaid."
        case .pastDue(let invoice, nil):
            "Payment of invoice \(Self.invoiceNumber(invoice)) failed: update your payment method and pay it."
        case .trialCountdown(0, _):
            "Your trial ends today."
        case .trialCountdown(1, _):
            "1 day left in your trial."
        case .trialCountdown(let days, _):
            "\(days) days left in your trial."
        }
    }

    /// An invoice's printed number: "INV-000042".
    public static func invoiceNumber(_ sequence: Int64) -> String {
        let digits = String(sequence)
        return "INV-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }
}
