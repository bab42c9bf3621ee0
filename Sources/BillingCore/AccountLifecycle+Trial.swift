/// Trial end, payment methods, and the way out of a paused trial.
extension AccountLifecycle {
    mutating func trialEnded(now: Int64, plans: PlanCatalog, continuesWithoutPaymentMethod: Bool) -> [AccountAction] {
        // Already converted, switched to Free, or paused: nothing to do.
        guard let trialEnd = trialEndsAt, pauseReason == nil else { return [] }
        precondition(now >= trialEnd, "the trial ends at its end, not before")
        // Periods run from the trial's end even when processed late.
        if let change = pendingChange {
            return startSubscription(change.plan, at: trialEnd, plans: plans)
        }
        if hasPaymentMethod || continuesWithoutPaymentMethod {
            return startSubscription(plan, at: trialEnd, plans: plans)
        }
        pauseReason = .trialEndedWithoutPaymentMethod
        return [.pause(.trialEndedWithoutPaymentMethod)]
    }

    /// Whether a trial ending now goes on on its plan without a payment
    /// method instead of pausing: none is on file, no change is scheduled,
    /// and the plan costs nothing and accrues no overage (a plans file with
    /// `trial_plan: "free"` and Free at $0) — there is nothing to charge a
    /// card for, ever. (A $0 plan that accrues overage would run up usage
    /// with no card behind it: it pauses.) The ledger journals the answer
    /// with the trial's end (`TrialEnded.continued_without_payment_method`).
    public func trialEndContinuesWithoutPaymentMethod(_ plans: PlanCatalog) -> Bool {
        !hasPaymentMethod && pendingChange == nil && plan != .enterprise
            && plans[plan].monthlyPrice == .zero && !plans[plan].accruesOverage
    }

    /// `payingFirst`: a paused trial is invoiced its first period and
    /// charged, and restarts only once that is paid (`reactivationPaid`);
    /// meanwhile it stays paused without a method of its own (the shell
    /// keeps the one being charged). Else (entries before session 31) it
    /// restarts at once, its first period charged.
    mutating func paymentMethodAdded(now: Int64, plans: PlanCatalog, payingFirst: Bool) -> [AccountAction] {
        if hasPaymentMethod {
            // A replacement takes effect at the next billing cycle: the trial's
            // end while in trial, else the current period's end.
            hasPendingPaymentMethod = true
            let nextCycle = min(trialEndsAt ?? currentPeriod.end, currentPeriod.end)
            return [.schedulePaymentMethod(at: nextCycle)]
        }
        guard pauseReason == .trialEndedWithoutPaymentMethod else {
            hasPaymentMethod = true
            return [.usePaymentMethodNow]
        }
        if payingFirst {
            let period = BillingPeriod.containing(now, anchor: now)
            let lines = subscriptionLines(for: period, plans: plans)
            if !lines.isEmpty {
                return [.usePaymentMethodNow, .issueInvoice(lines: lines, periodStart: period.start, periodEnd: period.end),
                        .attemptPayment, .reactivateOnPayment]
            }
        }
        // A paused trial comes back on the trial plan, its first period charged.
        hasPaymentMethod = true
        return [.usePaymentMethodNow] + startSubscription(plan, at: now, plans: plans)
    }

    /// A paused trial's reactivation invoice was paid: the trial's plan
    /// starts with the period it billed (issued already: no invoice here).
    /// Nothing when the account is no longer a paused trial.
    mutating func reactivationPaid(periodStart: Int64, plans: PlanCatalog) -> [AccountAction] {
        guard pauseReason == .trialEndedWithoutPaymentMethod, !hasPaymentMethod else { return [] }
        hasPaymentMethod = true
        return startSubscription(plan, at: periodStart, plans: plans).filter { action in
            switch action {
            case .issueInvoice, .attemptPayment: false
            default: true
            }
        }
    }

    /// A paused trial's reactivation invoice was declined: the method it
    /// charged comes off file; the trial stays paused.
    mutating func reactivationDeclined() -> [AccountAction] {
        guard pauseReason == .trialEndedWithoutPaymentMethod, !hasPaymentMethod else { return [] }
        return [.removePaymentMethod]
    }

    /// A method given to pay an invoice went on file at once: a replacement
    /// waiting for the next cycle would swap an older card back in over it.
    public mutating func pendingPaymentMethodReplaced() {
        hasPendingPaymentMethod = false
    }

    mutating func downgradeToFree(now: Int64, plans: PlanCatalog) -> Result<[AccountAction], AccountRefusal> {
        // A trial has no paid period to finish: Free starts at once.
        guard trialEndsAt != nil else { return changePlan(to: .free, now: now, plans: plans) }
        // A downgrade to Free pending for the trial's end applies now instead.
        return .success(startSubscription(.free, at: now, plans: plans))
    }
}
