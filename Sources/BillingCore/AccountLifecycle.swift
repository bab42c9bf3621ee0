/// The billing lifecycle of one account as a value: events in, actions out,
/// time passed in (`apply(_:now:plans:)`). No I/O: the shell journals the
/// event, performs the actions and keeps the new value.
///
/// Plans are billed monthly in advance, on periods anchored on the start of
/// the paid subscription (the trial's end, or the moment a paused trial is
/// reactivated); metered usage is billed in arrears at each period end.
/// A trial runs on the catalog's trial plan with no billing; its periods
/// (anchored on the sign-up) only reset quotas.
public struct AccountLifecycle: Sendable, Hashable {
    public internal(set) var plan: Plan
    /// When the trial ends (unix seconds); nil once it is over (converted or
    /// switched to Free) or for an account that never had one.
    public internal(set) var trialEndsAt: Int64?
    public internal(set) var hasPaymentMethod: Bool
    /// A replacement payment method waits for the next billing cycle.
    public internal(set) var hasPendingPaymentMethod: Bool
    /// A downgrade waiting for the end of the period (or of the trial).
    public internal(set) var pendingChange: PendingPlanChange?
    /// Why new runs are paused; nil when they are not.
    public internal(set) var pauseReason: PauseReason?
    /// Unpaid invoices whose payment failed, oldest first.
    public internal(set) var pastDueInvoices: [PastDueInvoice]
    /// How long runs continue after a failed payment before they pause.
    public internal(set) var graceSeconds: Int64
    /// Periods start on this instant's day of month and time of day (UTC).
    public internal(set) var periodAnchor: Int64
    /// The billing period in progress.
    public internal(set) var currentPeriod: BillingPeriod
    /// The operator's terms; set exactly when the plan is Enterprise.
    public internal(set) var contract: EnterpriseContract?

    /// Every field as stored, e.g. from a checkpoint; checks the invariants.
    public init(
        plan: Plan,
        trialEndsAt: Int64?,
        hasPaymentMethod: Bool,
        hasPendingPaymentMethod: Bool,
        pendingChange: PendingPlanChange?,
        pauseReason: PauseReason?,
        pastDueInvoices: [PastDueInvoice],
        graceSeconds: Int64,
        periodAnchor: Int64,
        currentPeriod: BillingPeriod,
        contract: EnterpriseContract?
    ) {
        self.plan = plan
        self.trialEndsAt = trialEndsAt
        self.hasPaymentMethod = hasPaymentMethod
        self.hasPendingPaymentMethod = hasPendingPaymentMethod
        self.pendingChange = pendingChange
        self.pauseReason = pauseReason
        self.pastDueInvoices = pastDueInvoices
        self.graceSeconds = graceSeconds
        self.periodAnchor = periodAnchor
        self.currentPeriod = currentPeriod
        self.contract = contract
        checkInvariants()
    }

    /// The grace an operator configured for every account from now on
    /// (`PlansConfigured`): a grace already running ends at its failure
    /// plus this.
    public mutating func setGraceSeconds(_ seconds: Int64) {
        precondition(seconds >= 0, "a grace period is not negative")
        graceSeconds = seconds
    }

    /// A new account on a trial of `plans.trialPlan` for `plans.trialDays`.
    public static func trial(startingAt now: Int64, plans: PlanCatalog, graceSeconds: Int64) -> AccountLifecycle {
        precondition(plans.trialDays > 0, "a trial lasts at least a day")
        return AccountLifecycle(
            plan: plans.trialPlan, trialEndsAt: now + Int64(plans.trialDays) * 86_400,
            hasPaymentMethod: false, hasPendingPaymentMethod: false, pendingChange: nil, pauseReason: nil,
            pastDueInvoices: [], graceSeconds: graceSeconds, periodAnchor: now,
            currentPeriod: BillingPeriod.containing(now, anchor: now), contract: nil)
    }

    /// A new account active on `plan` from `now`, without a trial (operators,
    /// provisioning). Nothing is charged: an operator decides what is owed.
    public static func active(
        plan: Plan, startingAt now: Int64, graceSeconds: Int64,
        hasPaymentMethod: Bool, contract: EnterpriseContract? = nil
    ) -> AccountLifecycle {
        AccountLifecycle(
            plan: plan, trialEndsAt: nil, hasPaymentMethod: hasPaymentMethod, hasPendingPaymentMethod: false,
            pendingChange: nil, pauseReason: nil, pastDueInvoices: [], graceSeconds: graceSeconds,
            periodAnchor: now, currentPeriod: BillingPeriod.containing(now, anchor: now), contract: contract)
    }

    public var status: AccountStatus {
        if !pastDueInvoices.isEmpty { return .pastDue }
        return trialEndsAt == nil ? .active : .trial
    }

    /// Whether new runs are paused (`Debit` and `Quote` answer
    /// `ACCOUNT_PAUSED`; after a trial's end, a run already counted this
    /// period goes on — `LedgerState.decide`).
    public var runsPaused: Bool { pauseReason != nil }

    /// When the oldest unpaid invoice's payment failed.
    public var pastDueSince: Int64? { pastDueInvoices.first?.since }

    /// When money is next due: the trial's end (its first charge), else the
    /// current period's end. Nil for a paused trial: nothing is due until
    /// the customer adds a payment method or switches to Free.
    public var nextBillingDate: Int64? {
        guard let trialEnd = trialEndsAt else { return currentPeriod.end }
        return pauseReason == nil ? trialEnd : nil
    }

    func checkInvariants() {
        precondition(graceSeconds >= 0, "a grace period is not negative")
        precondition((plan == .enterprise) == (contract != nil), "an Enterprise plan has a contract, no other does")
        precondition(!hasPendingPaymentMethod || hasPaymentMethod, "a replacement needs a method to replace")
        precondition(pendingChange.map { $0.plan < plan } ?? true, "a pending change is a downgrade")
        switch pauseReason {
        case .trialEndedWithoutPaymentMethod?:
            precondition(trialEndsAt != nil && !hasPaymentMethod, "a trial pause lasts until a payment method or Free")
        case .pastDueGraceExpired?:
            precondition(!pastDueInvoices.isEmpty, "a past-due pause lasts until every past-due invoice is paid")
        case nil:
            break
        }
        precondition(currentPeriod == BillingPeriod.containing(currentPeriod.start, anchor: periodAnchor),
                     "the current period is one of the anchor's")
    }
}

extension AccountLifecycle {
    /// The terms metering applies now: the plan's, with an Enterprise
    /// contract's price, quota and workspace limit in place of the defaults.
    /// A trial never accrues overage, whatever its plan says.
    public func effectiveTerms(_ plans: PlanCatalog) -> PlanTerms {
        var terms = plans[plan]
        if let contract {
            terms.monthlyPrice = contract.monthlyPrice
            terms.runQuota = contract.runQuota
            terms.workspaceLimit = contract.workspaceLimit
        }
        if trialEndsAt != nil { terms.accruesOverage = false }
        return terms
    }

    /// The plan a downgrade due at the current period's end moves to, once
    /// `now` is past that end but before the period close is applied (the
    /// ticker runs once a second); nil when no such move is due. A trial's
    /// scheduled change (at the trial's end) is not anticipated: a trial
    /// and the plans it may move to never accrue overage.
    public func planAfterDueClose(at now: Int64) -> Plan? {
        guard now >= currentPeriod.end, trialEndsAt == nil, let change = pendingChange,
              change.effectiveAt <= currentPeriod.end else { return nil }
        return change.plan
    }

    /// The terms metering applies at `now`: those in force, or those of the
    /// plan a due period close not yet applied moves to (`planAfterDueClose`),
    /// so a debit in the moment before the tick is decided as it would be
    /// after it, as `pause(at:)` does for pauses.
    public func effectiveTerms(at now: Int64, _ plans: PlanCatalog) -> PlanTerms {
        guard let next = planAfterDueClose(at: now) else { return effectiveTerms(plans) }
        var moved = self
        moved.plan = next
        moved.pendingChange = nil
        if next != .enterprise { moved.contract = nil }
        return moved.effectiveTerms(plans)
    }
}
