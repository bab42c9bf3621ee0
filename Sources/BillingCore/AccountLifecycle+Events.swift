extension AccountLifecycle {
    /// Applies `event` at `now` (unix seconds) with the plan terms in
    /// `plans`. On success the value has changed and the actions say, in
    /// order, what the shell does; a refusal changes nothing.
    ///
    /// Events that do not apply in the current state (a trial end for an
    /// account no longer in trial, a period that already closed, a payment of
    /// an invoice that is not past due) are ignored: no change, no actions,
    /// so a replayed event is harmless. A time-driven event before its time
    /// is our bug and traps: the shell applies only `nextDueTransition`s.
    public mutating func apply(_ event: AccountEvent, now: Int64, plans: PlanCatalog) -> Result<[AccountAction], AccountRefusal> {
        let result: Result<[AccountAction], AccountRefusal>
        switch event {
        case .trialEnded(let continuesWithoutPaymentMethod):
            result = .success(trialEnded(now: now, plans: plans, continuesWithoutPaymentMethod: continuesWithoutPaymentMethod))
        case .periodEnded(let period, let overage):
            result = .success(periodEnded(period, overage: overage, now: now, plans: plans))
        case .graceExpired:
            result = .success(graceExpired(now: now))
        case .paymentMethodAdded:
            result = .success(paymentMethodAdded(now: now, plans: plans, payingFirst: false))
        case .paymentMethodAddedPayingFirst:
            result = .success(paymentMethodAdded(now: now, plans: plans, payingFirst: true))
        case .reactivationPaid(let periodStart):
            result = .success(reactivationPaid(periodStart: periodStart, plans: plans))
        case .reactivationDeclined:
            result = .success(reactivationDeclined())
        case .changePlan(let target):
            result = changePlan(to: target, now: now, plans: plans)
        case .cancelPendingChange:
            result = cancelPendingChange()
        case .downgradeToFree:
            result = downgradeToFree(now: now, plans: plans)
        case .paymentSucceeded(let invoice):
            result = .success(paymentSucceeded(invoice: invoice))
        case .paymentFailed(let invoice):
            result = .success(paymentFailed(invoice: invoice, now: now))
        case .enterpriseContractSet(let terms, let prorated):
            result = .success(enterpriseContractSet(terms, prorated: prorated, now: now, plans: plans))
        }
        checkInvariants()
        return result
    }

    /// The monthly price of `plan` for this account: the catalog's, or the
    /// contract's for Enterprise.
    func monthlyPrice(of plan: Plan, plans: PlanCatalog) -> Money {
        plan == .enterprise ? (contract?.monthlyPrice ?? plans.enterprise.monthlyPrice) : plans[plan].monthlyPrice
    }

    /// Ends any trial and starts a subscription to `newPlan` whose first
    /// period begins at `start` and is billed at once, in advance.
    mutating func startSubscription(_ newPlan: Plan, at start: Int64, plans: PlanCatalog) -> [AccountAction] {
        var actions: [AccountAction] = []
        if hasPendingPaymentMethod {
            hasPendingPaymentMethod = false
            actions.append(.applyScheduledPaymentMethod)
        }
        trialEndsAt = nil
        pendingChange = nil
        plan = newPlan
        if newPlan != .enterprise { contract = nil }
        periodAnchor = start
        currentPeriod = BillingPeriod.containing(start, anchor: start)
        actions.append(.setPlan(newPlan))
        actions.append(.resetQuota)
        if pauseReason == .trialEndedWithoutPaymentMethod {
            pauseReason = nil
            actions.append(.unpause)
        }
        let lines = subscriptionLines(for: currentPeriod, plans: plans)
        if !lines.isEmpty {
            actions.append(.issueInvoice(lines: lines, periodStart: currentPeriod.start, periodEnd: currentPeriod.end))
            actions.append(.attemptPayment)
        }
        return actions
    }

    /// The current plan's price for `period` (and an Enterprise contract's
    /// custom lines); empty when it costs nothing.
    func subscriptionLines(for period: BillingPeriod, plans: PlanCatalog) -> [InvoiceLine] {
        let dates = Self.dates(period.start, period.end)
        guard plan == .enterprise else {
            let price = plans[plan].monthlyPrice
            guard price > .zero else { return [] }
            return [InvoiceLine(kind: .subscription(plan), description: "\(plans[plan].displayName) plan, \(dates)",
                                amount: price, periodStart: period.start, periodEnd: period.end)]
        }
        let terms = contract ?? EnterpriseContract(monthlyPrice: plans.enterprise.monthlyPrice)
        var lines: [InvoiceLine] = []
        if terms.monthlyPrice > .zero {
            let what = terms.reference.isEmpty ? "Enterprise contract" : "Enterprise contract \(terms.reference)"
            lines.append(InvoiceLine(kind: .subscription(.enterprise), description: "\(what), \(dates)",
                                     amount: terms.monthlyPrice, periodStart: period.start, periodEnd: period.end))
        }
        for custom in terms.customLines where custom.amount > .zero {
            lines.append(InvoiceLine(kind: .custom, description: "\(custom.description), \(dates)",
                                     amount: custom.amount, periodStart: period.start, periodEnd: period.end))
        }
        return lines
    }

    /// "2026-04-01 to 2026-05-01" (UTC days; the end is exclusive, as the
    /// API's period ends are). Part of every issued invoice's lines, which
    /// replay rebuilds: changing it would relabel invoices already sent.
    static func dates(_ start: Int64, _ end: Int64) -> String {
        "\(CivilDate(unixSeconds: start)) to \(CivilDate(unixSeconds: end))"
    }
}
