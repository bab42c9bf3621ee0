import BillingCore
import Testing

@Suite struct AccountLifecycleScheduleTests {
    @Test func nothingIsDueBeforeItsTime() {
        let account = AccountLifecycle.trial(startingAt: utc(2026, 3, 1), plans: .default, graceSeconds: 0)
        #expect(account.nextTransition == .trialEnd(at: utc(2026, 3, 15)))
        #expect(account.nextDueTransition(now: utc(2026, 3, 15) - 1) == nil)
        #expect(account.nextDueTransition(now: utc(2026, 3, 15)) == .trialEnd(at: utc(2026, 3, 15)))
    }

    @Test func aLongAdvanceAppliesEveryTransitionOnceInOrder() {
        // Card during the trial, then the clock jumps three months.
        var h = LifecycleHarness(signUpAt: utc(2026, 3, 1))
        _ = h.accept(.paymentMethodAdded)
        let applied = h.advance(to: utc(2026, 6, 20))
        #expect(applied.map(\.0) == [
            .trialEnd(at: utc(2026, 3, 15)),
            .periodEnd(period(utc(2026, 3, 15), utc(2026, 4, 15))),
            .periodEnd(period(utc(2026, 4, 15), utc(2026, 5, 15))),
            .periodEnd(period(utc(2026, 5, 15), utc(2026, 6, 15))),
        ])
        // Four charges: the first period at the trial's end, then one a period.
        #expect(applied.flatMap(\.1).filter { $0 == .attemptPayment }.count == 4)
        #expect(h.account.nextTransition == .periodEnd(period(utc(2026, 6, 15), utc(2026, 7, 15))))
        #expect(h.account.nextDueTransition(now: h.now) == nil)
    }

    @Test func graceEndComesBeforeALaterPeriodEnd() {
        var h = LifecycleHarness.active(.pro, since: utc(2026, 4, 1))
        h.advance(to: utc(2026, 5, 1))
        _ = h.accept(.paymentFailed(invoice: 1))
        let applied = h.advance(to: utc(2026, 6, 5))
        #expect(applied.map(\.0) == [
            .graceEnd(at: utc(2026, 5, 8)),
            .periodEnd(period(utc(2026, 5, 1), utc(2026, 6, 1))),
        ])
        // Paused: no second grace end.
        #expect(h.account.nextTransition == .periodEnd(period(utc(2026, 6, 1), utc(2026, 7, 1))))
    }

    @Test func aTrialEndingWithItsPeriodGoesFirstAndRestartsThePeriods() {
        // A 31-day trial from Jan 1 ends Feb 1, when the trial's period ends too.
        var plans = PlanCatalog.default
        plans.trialDays = 31
        var h = LifecycleHarness(
            account: .trial(startingAt: utc(2027, 1, 1), plans: plans, graceSeconds: 0), now: utc(2027, 1, 1))
        #expect(h.account.currentPeriod.end == utc(2027, 2, 1))
        #expect(h.account.nextTransition == .trialEnd(at: utc(2027, 2, 1)))
        _ = h.accept(.paymentMethodAdded)
        let applied = h.advance(to: utc(2027, 2, 2))
        // The trial's own period never closes: the subscription's starts.
        #expect(applied.map(\.0) == [.trialEnd(at: utc(2027, 2, 1))])
        #expect(h.account.currentPeriod == period(utc(2027, 2, 1), utc(2027, 3, 1)))
    }

    @Test func aPausedTrialOnlyResetsQuotasAtItsPeriodEnds() {
        var h = LifecycleHarness(signUpAt: utc(2026, 3, 1))
        let applied = h.advance(to: utc(2026, 5, 2))
        #expect(applied.map(\.0) == [
            .trialEnd(at: utc(2026, 3, 15)),
            .periodEnd(period(utc(2026, 3, 1), utc(2026, 4, 1))),
            .periodEnd(period(utc(2026, 4, 1), utc(2026, 5, 1))),
        ])
        #expect(applied.map(\.1) == [[.pause(.trialEndedWithoutPaymentMethod)], [.resetQuota], [.resetQuota]])
        #expect(h.account.runsPaused)
    }

    @Test func periodsOfAnAnchorOnThe31stAreClamped() {
        var h = LifecycleHarness.active(.pro, since: utc(2028, 1, 31, 15))
        let applied = h.advance(to: utc(2028, 4, 1))
        #expect(applied.map(\.0.at) == [utc(2028, 2, 29, 15), utc(2028, 3, 31, 15)])
    }
}
