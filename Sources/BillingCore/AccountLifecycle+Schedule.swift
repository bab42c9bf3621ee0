extension AccountLifecycle {
    /// The next time-driven transition, due or not: there is always a period
    /// end ahead.
    public var nextTransition: DueTransition {
        var next = DueTransition.periodEnd(currentPeriod)
        var candidates: [DueTransition] = []
        if let trialEnd = trialEndsAt, pauseReason == nil { candidates.append(.trialEnd(at: trialEnd)) }
        if let since = pastDueSince, pauseReason == nil { candidates.append(.graceEnd(at: graceEnd(since: since))) }
        for candidate in candidates where (candidate.at, candidate.rank) < (next.at, next.rank) {
            next = candidate
        }
        return next
    }

    /// The pause in force at `now`: the applied one, or the one a due
    /// transition not yet applied brings (the ticker runs once a second) —
    /// a trial over with no payment method and nothing scheduled (unless
    /// it goes on without one: `trialEndContinuesWithoutPaymentMethod`), or a
    /// past-due invoice's grace over. Metering refuses new runs by it, so a
    /// debit in the moment before the tick is refused as it would be after.
    public func pause(at now: Int64, plans: PlanCatalog) -> PauseReason? {
        if let pauseReason { return pauseReason }
        if let trialEnd = trialEndsAt, now >= trialEnd, !hasPaymentMethod, pendingChange == nil,
           !trialEndContinuesWithoutPaymentMethod(plans) {
            return .trialEndedWithoutPaymentMethod
        }
        if let since = pastDueSince, now >= graceEnd(since: since) { return .pastDueGraceExpired }
        return nil
    }

    /// The earliest transition due at `now`, or nil. A clock that moves to
    /// `now` applies this at its `at` until nil: every due transition, in
    /// order, each exactly once.
    public func nextDueTransition(now: Int64) -> DueTransition? {
        let next = nextTransition
        return next.at <= now ? next : nil
    }
}
