/// `ChangePlan` and `CancelPendingChange`: upgrades at once with a prorated
/// charge, downgrades at the period end, Enterprise only through sales.
extension AccountLifecycle {
    mutating func changePlan(to target: Plan, now: Int64, plans: PlanCatalog) -> Result<[AccountAction], AccountRefusal> {
        // Checks in order of precedence, all before the first change.
        if target == .enterprise && plan != .enterprise { return .failure(.contactSales) }
        let needsPaymentMethod = monthlyPrice(of: target, plans: plans) > .zero && !hasPaymentMethod
        if let trialEnd = trialEndsAt {
            if needsPaymentMethod { return .failure(.paymentMethodRequired) }
            // Keeping the trial plan is what the trial does with a payment method.
            if target == plan { return .success([]) }
            // A paused trial, or a trial of a lower plan (`trial_plan`
            // "free") moving up: the new plan starts now, its first period
            // charged — upgrades are immediate.
            if pauseReason == .trialEndedWithoutPaymentMethod || target > plan {
                return .success(startSubscription(target, at: now, plans: plans))
            }
            return .success(scheduleDowngrade(to: target, at: trialEnd))
        }
        // The same plan is a no-op, so a retried upgrade never charges twice.
        if target == plan { return .success([]) }
        if needsPaymentMethod { return .failure(.paymentMethodRequired) }
        if target < plan { return .success(scheduleDowngrade(to: target, at: currentPeriod.end)) }
        return .success(upgrade(to: target, now: now, plans: plans))
    }

    mutating func cancelPendingChange() -> Result<[AccountAction], AccountRefusal> {
        guard pendingChange != nil else { return .failure(.noPendingChange) }
        pendingChange = nil
        return .success([.cancelScheduledDowngrade])
    }

    private mutating func scheduleDowngrade(to target: Plan, at effectiveAt: Int64) -> [AccountAction] {
        pendingChange = PendingPlanChange(plan: target, effectiveAt: effectiveAt)
        return [.scheduleDowngrade(target, at: effectiveAt)]
    }

    /// Applies at once; the price difference for the rest of the period is
    /// invoiced and charged now.
    private mutating func upgrade(to target: Plan, now: Int64, plans: PlanCatalog) -> [AccountAction] {
        let from = prorationStart(at: now)
        let old = plan
        let charge = Proration.upgradeCharge(
            from: monthlyPrice(of: old, plans: plans), to: monthlyPrice(of: target, plans: plans),
            at: from, in: currentPeriod)
        // Only a downgrade is ever pending, and nothing is below the plan of
        // an account that can upgrade (Enterprise is not a customer's choice).
        precondition(pendingChange == nil, "no downgrade pending below the plan being upgraded")
        plan = target
        guard charge > .zero else { return [.setPlan(target)] }
        let line = InvoiceLine(
            kind: .proration(from: old, to: target),
            description: "Upgrade from \(plans[old].displayName) to \(plans[target].displayName), prorated \(Self.dates(from, currentPeriod.end))",
            amount: charge, periodStart: from, periodEnd: currentPeriod.end)
        return [.setPlan(target)] + chargeRestOfPeriod([line], from: from)
    }

    /// Where a move made at `now` is prorated from: `now`, or the period's
    /// start when a clock stepped back behind it (an account made a moment
    /// before) — never a trap.
    func prorationStart(at now: Int64) -> Int64 {
        precondition(now < currentPeriod.end, "due period ends are applied before requests")
        return max(now, currentPeriod.start)
    }

    /// The invoice of a move made mid-period (from `from` to the period's
    /// end) and its charge, at once; nothing without lines.
    func chargeRestOfPeriod(_ lines: [InvoiceLine], from: Int64) -> [AccountAction] {
        guard !lines.isEmpty else { return [] }
        return [.issueInvoice(lines: lines, periodStart: from, periodEnd: currentPeriod.end, planChange: true), .attemptPayment]
    }
}
