/// Period ends, payments, grace, and operators' Enterprise contracts.
extension AccountLifecycle {
    /// Closes `period`: the replacement payment method and a due downgrade
    /// apply, quotas reset, and (after the trial) the invoice bills the plan
    /// for the new period in advance and the closed period's usage in arrears.
    mutating func periodEnded(_ period: BillingPeriod, overage: Money, now: Int64, plans: PlanCatalog) -> [AccountAction] {
        precondition(period.start < currentPeriod.end, "a future period cannot end")
        // A period closed before (a replay), or a trial's since converted.
        guard period == currentPeriod else { return [] }
        precondition(now >= period.end, "a period ends at its end, not before")
        precondition(overage >= .zero, "usage is never negative")
        let closedPlan = plan
        let closedContract = contract
        var actions: [AccountAction] = []
        if hasPendingPaymentMethod {
            hasPendingPaymentMethod = false
            actions.append(.applyScheduledPaymentMethod)
        }
        if let change = pendingChange, change.effectiveAt <= period.end {
            pendingChange = nil
            plan = change.plan
            if plan != .enterprise { contract = nil }
            actions.append(.setPlan(plan))
        }
        currentPeriod = BillingPeriod.containing(period.end, anchor: periodAnchor)
        actions.append(.resetQuota)
        // A trial bills nothing.
        guard trialEndsAt == nil else { return actions }
        var lines = subscriptionLines(for: currentPeriod, plans: plans)
        let usage = closedPlan == .enterprise ? (closedContract?.usageCharge(overage) ?? overage) : overage
        if usage > .zero {
            lines.append(InvoiceLine(
                kind: .meteredUsage, description: "Metered usage, \(Self.dates(period.start, period.end))",
                amount: usage, periodStart: period.start, periodEnd: period.end))
        }
        guard !lines.isEmpty else { return actions }
        actions.append(.issueInvoice(lines: lines, periodStart: period.start, periodEnd: period.end))
        actions.append(.attemptPayment)
        return actions
    }

    mutating func paymentSucceeded(invoice: Int64) -> [AccountAction] {
        // Paid at its first attempt, or settled before: nothing changes.
        guard let index = pastDueInvoices.firstIndex(where: { $0.number == invoice }) else { return [] }
        pastDueInvoices.remove(at: index)
        guard pastDueInvoices.isEmpty, pauseReason == .pastDueGraceExpired else { return [] }
        pauseReason = nil
        return [.unpause]
    }

    mutating func paymentFailed(invoice: Int64, now: Int64) -> [AccountAction] {
        // A failed retry leaves the invoice past due since its first failure.
        guard !pastDueInvoices.contains(where: { $0.number == invoice }) else { return [] }
        pastDueInvoices.append(PastDueInvoice(number: invoice, since: now))
        return []
    }

    mutating func graceExpired(now: Int64) -> [AccountAction] {
        guard let since = pastDueSince, pauseReason == nil else { return [] }
        precondition(now >= graceEnd(since: since), "grace expires at its end, not before")
        pauseReason = .pastDueGraceExpired
        return [.pause(.pastDueGraceExpired)]
    }

    /// When runs pause if an invoice past due since `since` stays unpaid.
    func graceEnd(since: Int64) -> Int64 {
        let (end, overflow) = since.addingReportingOverflow(graceSeconds)
        return overflow ? .max : end
    }

    /// An operator puts the account on Enterprise (or updates its terms).
    /// From a trial the contract's first period starts now and is charged.
    /// From Free or Pro it is an upgrade (`prorated`): the rest of the
    /// current period is charged now — the contract's price less the old
    /// plan's, and each custom line's share — and the next period is billed
    /// in full at its end. Unprorated (journals before session 22), the
    /// contract's first charge is the next period's. For an account on
    /// Enterprise, new terms apply at once (quota, workspaces, usage rate)
    /// but their price and custom lines are billed from the next period.
    mutating func enterpriseContractSet(_ terms: EnterpriseContract, prorated: Bool, now: Int64, plans: PlanCatalog) -> [AccountAction] {
        let oldPrice = monthlyPrice(of: plan, plans: plans)
        contract = terms
        guard plan != .enterprise else { return [] }
        var actions: [AccountAction] = []
        if pendingChange != nil {
            pendingChange = nil
            actions.append(.cancelScheduledDowngrade)
        }
        if trialEndsAt != nil {
            return actions + startSubscription(.enterprise, at: now, plans: plans)
        }
        let old = plan
        plan = .enterprise
        actions.append(.setPlan(.enterprise))
        guard prorated else { return actions }
        let from = prorationStart(at: now)
        let dates = Self.dates(from, currentPeriod.end)
        let what = terms.reference.isEmpty ? "Enterprise contract" : "Enterprise contract \(terms.reference)"
        var lines: [InvoiceLine] = []
        let charge = Proration.upgradeCharge(from: oldPrice, to: terms.monthlyPrice, at: from, in: currentPeriod)
        if charge > .zero {
            lines.append(InvoiceLine(
                kind: .proration(from: old, to: .enterprise),
                description: "Upgrade from \(plans[old].displayName) to \(what), prorated \(dates)",
                amount: charge, periodStart: from, periodEnd: currentPeriod.end))
        }
        for custom in terms.customLines where custom.amount > .zero {
            let share = Proration.remainingShare(of: custom.amount, at: from, in: currentPeriod)
            guard share > .zero else { continue }
            lines.append(InvoiceLine(kind: .custom, description: "\(custom.description), prorated \(dates)",
                                     amount: share, periodStart: from, periodEnd: currentPeriod.end))
        }
        return actions + chargeRestOfPeriod(lines, from: from)
    }
}
