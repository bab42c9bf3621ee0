/// What can happen to an account. Customer and operator requests, the payment
/// gateway's answers, and the time-driven transitions that
/// `AccountLifecycle.nextDueTransition(now:)` says are due.
public enum AccountEvent: Sendable, Hashable {
    // Time-driven.
    /// The trial's end is reached. `continuesWithoutPaymentMethod`: the
    /// subscription starts on the trial's plan even without a payment
    /// method (`AccountLifecycle.trialEndContinuesWithoutPaymentMethod`,
    /// decided when it happened and journaled; false for older entries).
    case trialEnded(continuesWithoutPaymentMethod: Bool)
    /// `period` (the account's current one) ended; `overage` is the usage
    /// that credits did not cover during it.
    case periodEnded(BillingPeriod, overage: Money)
    /// The grace period of the oldest past-due invoice ran out.
    case graceExpired

    // Customer requests.
    /// A payment method was set. The first one applies at once; one that
    /// replaces a method on file applies at the next billing cycle.
    case paymentMethodAdded
    /// The same, but a paused trial stays paused until the first period it
    /// invoices is paid (`.reactivateOnPayment`; `SetPaymentMethod` since
    /// session 31): a declined card does not leave it past due on its plan.
    case paymentMethodAddedPayingFirst
    case changePlan(to: Plan)
    case cancelPendingChange
    /// Switch to Free: at once during a trial (paused or not), otherwise the
    /// same as `changePlan(to: .free)`.
    case downgradeToFree

    // Payment gateway answers, for an invoice number the shell issued.
    case paymentSucceeded(invoice: Int64)
    case paymentFailed(invoice: Int64)
    /// A reactivation's invoice (`.reactivateOnPayment`) was paid: the
    /// trial's plan starts with the period it billed, from `periodStart`.
    case reactivationPaid(periodStart: Int64)
    /// A reactivation's invoice was declined: its method comes off file and
    /// the trial stays paused (its way out to Free open).
    case reactivationDeclined

    // Operators.
    /// Puts the account on Enterprise with these terms (or updates them).
    /// `prorated`: a move from Free or Pro mid-period charges the rest of
    /// the period, as an upgrade does (journals before session 22: not).
    case enterpriseContractSet(EnterpriseContract, prorated: Bool)
}
