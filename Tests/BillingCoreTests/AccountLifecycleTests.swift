import BillingCore
import Testing

@Suite struct AccountLifecycleTests {
    @Test func restoresFromItsStoredFields() {
        var h = LifecycleHarness.active(.pro, since: utc(2026, 4, 1))
        h.now = utc(2026, 4, 10)
        _ = h.accept(.changePlan(to: .free))
        _ = h.accept(.paymentMethodAdded)
        h.advance(to: utc(2026, 4, 30))
        _ = h.accept(.paymentFailed(invoice: 4))
        let a = h.account
        let restored = AccountLifecycle(
            plan: a.plan, trialEndsAt: a.trialEndsAt, hasPaymentMethod: a.hasPaymentMethod,
            hasPendingPaymentMethod: a.hasPendingPaymentMethod, pendingChange: a.pendingChange,
            pauseReason: a.pauseReason, pastDueInvoices: a.pastDueInvoices, graceSeconds: a.graceSeconds,
            periodAnchor: a.periodAnchor, currentPeriod: a.currentPeriod, contract: a.contract)
        #expect(restored == a)
    }

    @Test func statusAndPauseNamesAreStable() {
        #expect(AccountStatus.allCases.map(\.rawValue) == ["TRIAL", "ACTIVE", "PAST_DUE"])
        #expect(PauseReason.allCases.map(\.rawValue) == ["TRIAL_ENDED_WITHOUT_PAYMENT_METHOD", "PAST_DUE_GRACE_EXPIRED"])
    }
}
