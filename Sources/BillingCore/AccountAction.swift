/// What the shell does after an event, in order. The lifecycle value itself
/// already reflects the change; these are the effects outside it.
public enum AccountAction: Sendable, Hashable {
    /// Metering uses this plan's terms from now on, and any trial is over.
    case setPlan(Plan)
    /// New runs are refused with `ACCOUNT_PAUSED` until `.unpause`.
    case pause(PauseReason)
    case unpause
    /// A new billing period started: run quotas start again from zero.
    case resetQuota
    /// Issue the next invoice (numbered by the shell) with these lines;
    /// `periodStart`/`periodEnd` date the invoice, each line dates itself.
    /// `planChange`: it bills a move made mid-period (an upgrade, a
    /// contract), not a period (also so when no proration line is left).
    case issueInvoice(lines: [InvoiceLine], periodStart: Int64, periodEnd: Int64, planChange: Bool = false)
    /// Charge the invoice issued by the `.issueInvoice` just before, with the
    /// payment method on file, and report `paymentSucceeded`/`paymentFailed`.
    case attemptPayment
    /// The payment method just added is now the one on file.
    case usePaymentMethodNow
    /// The invoice issued just before restarts a paused trial once it is
    /// paid (`AccountEvent.reactivationPaid`); declined, it is void
    /// (`.reactivationDeclined`). Until then the trial stays paused, the
    /// method it charges on file.
    case reactivateOnPayment
    /// The payment method on file, and any scheduled one, are removed.
    case removePaymentMethod
    /// The payment method just added replaces the one on file at `at` (the
    /// next billing cycle); until then the current one is charged.
    case schedulePaymentMethod(at: Int64)
    /// The scheduled replacement payment method is now the one on file.
    case applyScheduledPaymentMethod
    /// A downgrade to `plan` applies at `at`; shown as pending until then.
    case scheduleDowngrade(Plan, at: Int64)
    /// The pending downgrade was cancelled.
    case cancelScheduledDowngrade
}
