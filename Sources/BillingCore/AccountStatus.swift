/// The account status the Overview tab shows. Whether new runs are paused is
/// separate (`PauseReason`): a trial can be paused, so can a past-due account.
public enum AccountStatus: String, Sendable, Hashable, CaseIterable {
    case trial = "TRIAL"
    case active = "ACTIVE"
    case pastDue = "PAST_DUE"
}

/// Why new runs are paused (`Debit` and `Quote` answer `ACCOUNT_PAUSED`: after
/// a trial's end for a run not yet counted this period, past a grace for every
/// debit).
/// The raw value is the stable name the API and the journal use.
public enum PauseReason: String, Sendable, Hashable, CaseIterable {
    /// The trial ended without a payment method. Adding one (→ active on
    /// the trial's plan) or switching to Free (→ Active Free) unpauses.
    case trialEndedWithoutPaymentMethod = "TRIAL_ENDED_WITHOUT_PAYMENT_METHOD"
    /// An invoice stayed unpaid past the grace period. Paying every past-due
    /// invoice unpauses.
    case pastDueGraceExpired = "PAST_DUE_GRACE_EXPIRED"

    /// What the customer does to unpause, for banners and error messages:
    /// `plan` is the account's (a paused trial's: the plan it ran on),
    /// named as `plans` name them (session 28: always "Pro", also for a
    /// trial of a priced Free, whose customer was told to switch to Free).
    public func remedy(plan: Plan, plans: PlanCatalog) -> String {
        switch self {
        case .trialEndedWithoutPaymentMethod where plan == .free:
            "add a payment method to continue on \(plans.free.displayName)"
        case .trialEndedWithoutPaymentMethod:
            "add a payment method to continue on \(plans[plan].displayName), or switch to \(plans.free.displayName)"
        case .pastDueGraceExpired: "pay every past-due invoice to resume"
        }
    }
}
