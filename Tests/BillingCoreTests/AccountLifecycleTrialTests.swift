import BillingCore
import Testing

/// Sign-up on 2026-03-01 00:00 UTC: the 14-day trial ends 2026-03-15.
@Suite struct AccountLifecycleTrialTests {
    static let signUp = utc(2026, 3, 1)
    static let trialEnd = utc(2026, 3, 15)

    @Test func signUpStartsAFourteenDayProTrial() {
        let h = LifecycleHarness(signUpAt: Self.signUp)
        #expect(h.account.status == .trial)
        #expect(h.account.plan == .pro)
        #expect(h.account.trialEndsAt == Self.trialEnd)
        #expect(!h.account.runsPaused)
        #expect(!h.account.hasPaymentMethod)
        #expect(h.account.nextBillingDate == Self.trialEnd)
        #expect(h.account.banners(now: Self.signUp) == [.trialCountdown(daysLeft: 14, endsAt: Self.trialEnd)])
        #expect(h.account.banners(now: Self.signUp)[0].message(plan: .pro, plans: .default) == "14 days left in your trial.")
    }

    @Test(arguments: [
        (utc(2026, 3, 1), 14),
        (utc(2026, 3, 1, 0, 0, 1), 14),
        (utc(2026, 3, 2), 13),
        (utc(2026, 3, 13, 23, 59, 59), 2),
        (utc(2026, 3, 14), 1),
        (utc(2026, 3, 14, 23, 59, 59), 1),
        (utc(2026, 3, 15), 0),
        (utc(2026, 4, 1), 0),
    ])
    func trialDaysLeftRoundsUp(_ now: Int64, _ days: Int) {
        let account = AccountLifecycle.trial(startingAt: Self.signUp, plans: .default, graceSeconds: 0)
        #expect(account.trialDaysLeft(now: now) == days)
    }

    @Test func countdownMessages() {
        #expect(Banner.trialCountdown(daysLeft: 1, endsAt: 0).message(plan: .pro, plans: .default) == "1 day left in your trial.")
        #expect(Banner.trialCountdown(daysLeft: 0, endsAt: 0).message(plan: .pro, plans: .default) == "Your trial ends today.")
    }

    @Test func trialEndWithoutCardPausesUntilACardIsAdded() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        #expect(h.advance(to: utc(2026, 3, 14, 12)).isEmpty)
        #expect(h.account.banners(now: h.now) == [.trialCountdown(daysLeft: 1, endsAt: Self.trialEnd)])

        let ended = h.advance(to: utc(2026, 3, 20, 10))
        #expect(ended.map(\.0) == [.trialEnd(at: Self.trialEnd)])
        #expect(ended.map(\.1) == [[.pause(.trialEndedWithoutPaymentMethod)]])
        #expect(h.account.status == .trial)
        #expect(h.account.runsPaused)
        #expect(h.account.pauseReason == .trialEndedWithoutPaymentMethod)
        #expect(h.account.trialDaysLeft(now: h.now) == 0)
        #expect(h.account.nextBillingDate == nil)
        #expect(h.account.banners(now: h.now) == [.paused(.trialEndedWithoutPaymentMethod)])
        #expect(h.account.banners(now: h.now)[0].message(plan: .pro, plans: .default)
            == "Your trial has ended and new runs are paused: add a payment method to continue on Pro, or switch to Free.")

        // Card added on 2026-03-20 10:00: active Pro, the first period starts
        // now and is charged at once.
        let start = h.now
        let end = utc(2026, 4, 20, 10)
        #expect(h.accept(.paymentMethodAdded) == [
            .usePaymentMethodNow, .setPlan(.pro), .resetQuota, .unpause,
            .issueInvoice(lines: [proLine(start, end)], periodStart: start, periodEnd: end),
            .attemptPayment,
        ])
        #expect(h.account.status == .active)
        #expect(h.account.plan == .pro)
        #expect(!h.account.runsPaused)
        #expect(h.account.trialEndsAt == nil)
        #expect(h.account.currentPeriod == period(start, end))
        #expect(h.account.nextBillingDate == end)
        #expect(h.account.banners(now: h.now).isEmpty)
        // Paid at its first attempt: nothing changes.
        #expect(h.accept(.paymentSucceeded(invoice: 1)) == [])
        #expect(h.account.status == .active)
    }

    /// Since session 31 a card given to a paused trial is charged before
    /// the trial restarts: the first period is invoiced, the trial stays
    /// paused (no method of its own) until that invoice is paid, and a
    /// decline takes the card off and keeps the way out to Free.
    @Test func aPausedTrialPayingFirstRestartsOnlyOnceItsFirstPeriodIsPaid() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.advance(to: utc(2026, 3, 20, 10))
        let (start, end) = (h.now, utc(2026, 4, 20, 10))
        let invoiced: [AccountAction] = [
            .usePaymentMethodNow, .issueInvoice(lines: [proLine(start, end)], periodStart: start, periodEnd: end),
            .attemptPayment, .reactivateOnPayment,
        ]
        #expect(h.accept(.paymentMethodAddedPayingFirst) == invoiced)
        #expect(h.account.runsPaused && h.account.status == .trial && !h.account.hasPaymentMethod)
        #expect(h.account.pauseReason == .trialEndedWithoutPaymentMethod && h.account.trialEndsAt == Self.trialEnd)

        // Declined: the card comes off, still a paused trial; Free stays open.
        var declined = h
        #expect(declined.accept(.reactivationDeclined) == [.removePaymentMethod])
        #expect(declined.account == h.account)
        #expect(declined.accept(.downgradeToFree) == [.setPlan(.free), .resetQuota, .unpause])
        #expect(declined.account.plan == .free && !declined.account.runsPaused)

        // Paid, hours later: Pro from the period it billed, nothing invoiced again.
        h.now = start + 3_600
        #expect(h.accept(.reactivationPaid(periodStart: start)) == [.setPlan(.pro), .resetQuota, .unpause])
        #expect(h.account.status == .active && !h.account.runsPaused && h.account.hasPaymentMethod)
        #expect(h.account.trialEndsAt == nil && h.account.currentPeriod == period(start, end))
        // Once restarted, neither outcome changes anything again.
        #expect(h.accept(.reactivationPaid(periodStart: start)) == [])
        #expect(h.accept(.reactivationDeclined) == [])
        #expect(h.account.status == .active)
    }

    /// Paying first applies only to a paused trial: a running trial takes
    /// the card on file as before, and a paused trial of a plan costing
    /// nothing has no invoice to wait for (it restarts at once).
    @Test func payingFirstChangesNothingButAPausedTrialsReactivation() {
        var running = LifecycleHarness(signUpAt: Self.signUp)
        running.now = utc(2026, 3, 5)
        #expect(running.accept(.paymentMethodAddedPayingFirst) == [.usePaymentMethodNow])
        #expect(running.account.hasPaymentMethod)
        // A Pro at $0 that accrues overage: its trial pauses at the end.
        var free = PlanCatalog.default
        free.pro.monthlyPrice = .zero
        var h = LifecycleHarness(account: .trial(startingAt: Self.signUp, plans: free, graceSeconds: 0), now: Self.signUp)
        h.plans = free
        h.advance(to: utc(2026, 3, 20, 10))
        #expect(h.account.runsPaused)
        #expect(h.accept(.paymentMethodAddedPayingFirst) == [.usePaymentMethodNow, .setPlan(.pro), .resetQuota, .unpause])
        #expect(!h.account.runsPaused && h.account.hasPaymentMethod)
    }

    @Test func trialEndThenDowngradeToFreeIsActiveFreeUnpaused() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.advance(to: utc(2026, 3, 16))
        #expect(h.account.runsPaused)
        #expect(h.accept(.downgradeToFree) == [.setPlan(.free), .resetQuota, .unpause])
        #expect(h.account.status == .active)
        #expect(h.account.plan == .free)
        #expect(!h.account.runsPaused)
        #expect(h.account.banners(now: h.now).isEmpty)
        #expect(h.account.currentPeriod == period(utc(2026, 3, 16), utc(2026, 4, 16)))
        // Free bills nothing at its period ends; quotas still reset.
        let next = h.advance(to: utc(2026, 4, 16))
        #expect(next.map(\.1) == [[.resetQuota]])
    }

    @Test func changePlanToFreeOnAPausedTrialAppliesAtOnce() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.advance(to: utc(2026, 3, 16))
        #expect(h.accept(.changePlan(to: .free)) == [.setPlan(.free), .resetQuota, .unpause])
        #expect(h.account.status == .active && h.account.plan == .free && !h.account.runsPaused)
    }

    @Test func trialEndWithACardChargesTheFirstPeriod() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.now = utc(2026, 3, 5)
        #expect(h.accept(.paymentMethodAdded) == [.usePaymentMethodNow])
        #expect(h.account.status == .trial)
        // Already on the trial plan with a card: nothing to do.
        #expect(h.accept(.changePlan(to: .pro)) == [])

        let ended = h.advance(to: utc(2026, 3, 15, 9))
        let end = utc(2026, 4, 15)
        #expect(ended.map(\.0) == [.trialEnd(at: Self.trialEnd)])
        #expect(ended.map(\.1) == [[
            .setPlan(.pro), .resetQuota,
            .issueInvoice(lines: [proLine(Self.trialEnd, end)], periodStart: Self.trialEnd, periodEnd: end),
            .attemptPayment,
        ]])
        #expect(h.account.status == .active)
        #expect(!h.account.runsPaused)
        // Periods are anchored on the trial's end, even when processed late.
        #expect(h.account.periodAnchor == Self.trialEnd)
        #expect(h.account.currentPeriod == period(Self.trialEnd, end))
    }

    @Test func keepingProAfterTheTrialNeedsACard() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        #expect(h.send(.changePlan(to: .pro)) == .failure(.paymentMethodRequired))
        h.advance(to: utc(2026, 3, 16))
        #expect(h.send(.changePlan(to: .pro)) == .failure(.paymentMethodRequired))
        #expect(h.account.runsPaused)
    }

    @Test func downgradeDuringTheTrialIsPendingUntilItsEnd() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.now = utc(2026, 3, 3)
        #expect(h.accept(.changePlan(to: .free)) == [.scheduleDowngrade(.free, at: Self.trialEnd)])
        #expect(h.account.pendingChange == PendingPlanChange(plan: .free, effectiveAt: Self.trialEnd))
        #expect(h.account.plan == .pro)
        #expect(h.account.status == .trial)
        // Cancellable, and schedulable again.
        #expect(h.accept(.cancelPendingChange) == [.cancelScheduledDowngrade])
        #expect(h.send(.cancelPendingChange) == .failure(.noPendingChange))
        #expect(h.accept(.changePlan(to: .free)) == [.scheduleDowngrade(.free, at: Self.trialEnd)])

        // At the trial's end: Free, not paused, although there is no card.
        let ended = h.advance(to: Self.trialEnd)
        #expect(ended.map(\.1) == [[.setPlan(.free), .resetQuota]])
        #expect(h.account.status == .active && h.account.plan == .free && !h.account.runsPaused)
        #expect(h.account.pendingChange == nil)
    }

    @Test func downgradeToFreeDuringARunningTrialAppliesAtOnce() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.now = utc(2026, 3, 3)
        #expect(h.accept(.downgradeToFree) == [.setPlan(.free), .resetQuota])
        #expect(h.account.status == .active && h.account.plan == .free)
        #expect(h.account.nextTransition == .periodEnd(period(utc(2026, 3, 3), utc(2026, 4, 3))))
    }

    @Test func aReplacementCardDuringTheTrialAppliesAtItsEnd() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.now = utc(2026, 3, 2)
        #expect(h.accept(.paymentMethodAdded) == [.usePaymentMethodNow])
        #expect(h.accept(.paymentMethodAdded) == [.schedulePaymentMethod(at: Self.trialEnd)])
        #expect(h.account.hasPendingPaymentMethod)
        let ended = h.advance(to: Self.trialEnd)
        // The replacement is on file before the first charge.
        #expect(ended[0].1.first == .applyScheduledPaymentMethod)
        #expect(ended[0].1.last == .attemptPayment)
        #expect(!h.account.hasPendingPaymentMethod)
    }

    @Test func aTrialEndReplayedIsIgnored() {
        var h = LifecycleHarness(signUpAt: Self.signUp)
        h.advance(to: Self.trialEnd)
        let paused = h.account
        #expect(h.accept(.trialEnded(continuesWithoutPaymentMethod: true)) == [])
        #expect(h.account == paused)
    }

    /// A trial of a plan that costs nothing and accrues no overage
    /// (`trial_plan: "free"`, Free at $0) ends without a payment method by
    /// going on on that plan: nothing to charge a card for, so no pause
    /// (session 27: it paused, telling the customer to add a card to
    /// continue on Pro). A priced Free, or a $0 plan that accrues overage
    /// (usage with no card behind it), still pauses.
    @Test(arguments: [(Money.zero, false, true), (Money(micros: 5_000_000), false, false), (Money.zero, true, false)])
    func aTrialOfAPlanCostingNothingContinuesWithoutAPaymentMethod(freePrice: Money, accruesOverage: Bool, continues: Bool) {
        var plans = PlanCatalog.default
        plans.trialPlan = .free
        plans.free.monthlyPrice = freePrice
        plans.free.accruesOverage = accruesOverage
        let start = utc(2026, 3, 10, 12)
        let end = start + 14 * day
        var account = AccountLifecycle.trial(startingAt: start, plans: plans, graceSeconds: LifecycleHarness.grace)
        #expect(account.plan == .free)
        #expect(account.trialEndContinuesWithoutPaymentMethod(plans) == continues)
        // What metering decides in the second before the tick applies the end.
        #expect((account.pause(at: end, plans: plans) == nil) == continues)
        let event = DueTransition.trialEnd(at: end).event(trialContinues: account.trialEndContinuesWithoutPaymentMethod(plans))
        guard case .success(let actions) = account.apply(event, now: end, plans: plans) else {
            Issue.record("a trial end was refused")
            return
        }
        #expect(account.runsPaused == !continues)
        #expect(account.plan == .free)
        if continues {
            #expect(account.status == .active)
            #expect(account.trialEndsAt == nil)
            #expect(account.currentPeriod.start == end)
            #expect(actions.contains(.setPlan(.free)))
            #expect(!actions.contains { if case .issueInvoice = $0 { true } else { false } })
            #expect(account.nextDueTransition(now: end) == nil)
        } else {
            #expect(actions == [.pause(.trialEndedWithoutPaymentMethod)])
            #expect(account.status == .trial)
        }
    }

    /// The decision is the journal's: a trial end recorded as continuing
    /// starts the subscription whatever the plans say at replay (here a
    /// priced Free, by whose terms it would pause now), and one recorded
    /// without it (every entry before session 27) pauses.
    @Test(arguments: [true, false])
    func aTrialEndFollowsTheDecisionItCarries(continues: Bool) {
        var plans = PlanCatalog.default
        plans.trialPlan = .free
        plans.free.monthlyPrice = Money(micros: 5_000_000)
        let start = utc(2026, 3, 10, 12)
        var account = AccountLifecycle.trial(startingAt: start, plans: plans, graceSeconds: LifecycleHarness.grace)
        guard case .success = account.apply(.trialEnded(continuesWithoutPaymentMethod: continues), now: start + 14 * day, plans: plans)
        else {
            Issue.record("a trial end was refused")
            return
        }
        #expect(account.runsPaused == !continues)
    }

    /// A trial of Free (`trial_plan: "free"` in the plans file) moving to
    /// Pro: an upgrade, so at once — it was scheduled as a "downgrade" to
    /// the trial's end and stopped the process on the lifecycle's invariant.
    @Test func aTrialOfFreeUpgradedToProStartsProAtOnce() {
        var plans = PlanCatalog.default
        plans.trialPlan = .free
        let start = utc(2026, 3, 10, 12)
        var account = AccountLifecycle.trial(startingAt: start, plans: plans, graceSeconds: LifecycleHarness.grace)
        guard case .success = account.apply(.paymentMethodAdded, now: start + day, plans: plans) else {
            Issue.record("adding a card was refused")
            return
        }
        guard case .success(let actions) = account.apply(.changePlan(to: .pro), now: start + 2 * day, plans: plans) else {
            Issue.record("the upgrade was refused")
            return
        }
        #expect(actions.contains(.setPlan(.pro)))
        #expect(account.plan == .pro)
        #expect(account.trialEndsAt == nil)
        #expect(account.pendingChange == nil)
        #expect(account.currentPeriod.start == start + 2 * day)
    }
}

@Suite struct PauseRemedyTests {
    /// The remedy names the paused trial's plan as the plans file names it,
    /// and offers Free only to a trial of another plan.
    @Test func theRemedyNamesTheTrialsPlanAsThePlansNameIt() {
        var plans = PlanCatalog.default
        plans.pro.displayName = "Team"
        plans.free.displayName = "Starter"
        let trialEnded = PauseReason.trialEndedWithoutPaymentMethod
        #expect(trialEnded.remedy(plan: .pro, plans: plans) == "add a payment method to continue on Team, or switch to Starter")
        #expect(trialEnded.remedy(plan: .free, plans: plans) == "add a payment method to continue on Starter")
        #expect(PauseReason.pastDueGraceExpired.remedy(plan: .free, plans: plans) == "pay every past-due invoice to resume")
        #expect(Banner.paused(trialEnded).message(plan: .enterprise, plans: plans)
            == "Your trial has ended and new runs are paused: add a payment method to continue on Enterprise, or switch to Starter.")
    }
}
