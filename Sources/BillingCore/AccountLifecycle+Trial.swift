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

    mutating func paymentMethodAdded(now: Int64, plans: PlanCatalog) -> [AccountAction] {
        if hasPaymentMethod {
            // A replacement takes effect at the next billing cycle: the trial's
            // end while in trial, else the current period's end.
            hasPendingPaymentMethod = true
            let nextCycle = min(trialEndsAt ?? currentPeriod.end, currentPeriod.end)
            return [.schedulePaymentMethod(at: nextCycle)]
        }
        hasPaymentMethod = true
        guard pauseReason == .trialEndedWithoutPaymentMethod else { return [.usePaymentMethodNow] }
        // A paused trial comes back on the trial plan, its first period charged.
        return [.usePaymentMethodNow] + startSubscription(plan, at: now, plans: plans)
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
