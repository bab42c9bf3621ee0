/// Trial end, payment methods, and the way out of a paused trial.
extension AccountLifecycle {
    mutating func trialEnded(now: Int64, plans: PlanCatalog, continuesIfFree: Bool) -> [AccountAction] {
        // Already converted, switched to Free, or paused: nothing to do.
        guard let trialEnd = trialEndsAt, pauseReason == nil else { return [] }
        precondition(now >= trialEnd, "the trial ends at its end, not before")
        // Periods run from the trial's end even when processed late.
        if let change = pendingChange {
            return startSubscription(change.plan, at: trialEnd, plans: plans)
        }
        if hasPaymentMethod || (continuesIfFree && trialPlanCostsNothing(plans)) {
            return startSubscription(plan, at: trialEnd, plans: plans)
        }
        pauseReason = .trialEndedWithoutPaymentMethod
        return [.pause(.trialEndedWithoutPaymentMethod)]
    }

    /// Whether the plan a trial runs on costs nothing (a plans file with
    /// `trial_plan: "free"` and Free at $0): its end has nothing to charge
    /// a payment method for, so it does not pause.
    package func trialPlanCostsNothing(_ plans: PlanCatalog) -> Bool {
        plan != .enterprise && plans[plan].monthlyPrice == .zero
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
