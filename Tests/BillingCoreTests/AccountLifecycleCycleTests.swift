import BillingCore
import Testing

/// Pro accounts active since 2026-04-01 00:00 UTC.
@Suite struct AccountLifecycleCycleTests {
    static let april = period(utc(2026, 4, 1), utc(2026, 5, 1))
    static let may = period(utc(2026, 5, 1), utc(2026, 6, 1))

    @Test func proPeriodEndInvoicesThePriceAndTheOverage() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.overage[Self.april] = Money(micros: 12_345_678)
        let closed = h.advance(to: Self.april.end)
        let usage = InvoiceLine(
            kind: .meteredUsage, description: "Metered usage, 2026-04-01 to 2026-05-01",
            amount: Money(micros: 12_345_678), periodStart: Self.april.start, periodEnd: Self.april.end)
        let lines = [proLine(Self.may.start, Self.may.end), usage]
        #expect(closed.map(\.0) == [.periodEnd(Self.april)])
        #expect(closed.map(\.1) == [[
            .resetQuota,
            .issueInvoice(lines: lines, periodStart: Self.april.start, periodEnd: Self.april.end),
            .attemptPayment,
        ]])
        #expect((try? Money.sum(lines.map(\.amount))) == Money(micros: 61_345_678))
        #expect(h.account.currentPeriod == Self.may)
    }

    @Test func paymentFailureGraceExpiryAndPayment() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.advance(to: Self.april.end)
        // The gateway declines invoice 7.
        #expect(h.accept(.paymentFailed(invoice: 7)) == [])
        #expect(h.account.status == .pastDue)
        #expect(h.account.pastDueSince == Self.april.end)
        #expect(!h.account.runsPaused)
        let graceEnd = utc(2026, 5, 8)
        #expect(h.account.banners(now: h.now) == [.pastDue(invoice: 7, pausesAt: graceEnd)])
        #expect(h.account.banners(now: h.now)[0].message(plan: .pro, plans: .default)
            == "Payment of invoice INV-000007 failed: update your payment method and pay it. New runs pause on 2026-05-08 if it stays unpaid.")
        #expect(h.account.nextTransition == .graceEnd(at: graceEnd))

        // Runs continue during the grace period, then pause.
        #expect(h.advance(to: graceEnd - 1).isEmpty)
        let expired = h.advance(to: utc(2026, 5, 10))
        #expect(expired.map(\.0) == [.graceEnd(at: graceEnd)])
        #expect(expired.map(\.1) == [[.pause(.pastDueGraceExpired)]])
        #expect(h.account.status == .pastDue)
        #expect(h.account.runsPaused)
        #expect(h.account.banners(now: h.now) == [.paused(.pastDueGraceExpired), .pastDue(invoice: 7, pausesAt: nil)])
        #expect(h.account.banners(now: h.now)[0].message(plan: .pro, plans: .default) == "New runs are paused: pay every past-due invoice to resume.")

        // A failed retry changes nothing; a success reactivates.
        #expect(h.accept(.paymentFailed(invoice: 7)) == [])
        #expect(h.account.pastDueSince == Self.april.end)
        #expect(h.accept(.paymentSucceeded(invoice: 7)) == [.unpause])
        #expect(h.account.status == .active)
        #expect(!h.account.runsPaused)
        #expect(h.account.banners(now: h.now).isEmpty)
        #expect(h.account.nextTransition == .periodEnd(Self.may))
    }

    @Test func pausedUntilEveryPastDueInvoiceIsPaid() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.advance(to: Self.april.end)
        _ = h.accept(.paymentFailed(invoice: 1))
        h.advance(to: utc(2026, 5, 20))
        #expect(h.account.runsPaused)
        h.advance(to: Self.may.end)
        _ = h.accept(.paymentFailed(invoice: 2))
        #expect(h.account.pastDueInvoices.map(\.number) == [1, 2])
        #expect(h.accept(.paymentSucceeded(invoice: 1)) == [])
        #expect(h.account.runsPaused)
        #expect(h.account.banners(now: h.now) == [.paused(.pastDueGraceExpired), .pastDue(invoice: 2, pausesAt: nil)])
        #expect(h.accept(.paymentSucceeded(invoice: 2)) == [.unpause])
        #expect(h.account.status == .active)
    }

    @Test func aPaymentPaidBeforeGraceEndsNeverPauses() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.advance(to: Self.april.end)
        _ = h.accept(.paymentFailed(invoice: 3))
        h.now = utc(2026, 5, 4)
        #expect(h.accept(.paymentSucceeded(invoice: 3)) == [])
        #expect(h.account.status == .active)
        #expect(h.advance(to: utc(2026, 5, 20)).isEmpty)
        #expect(!h.account.runsPaused)
    }

    @Test func aReplacementPaymentMethodAppliesAtTheNextPeriodEnd() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.now = utc(2026, 4, 10)
        #expect(h.accept(.paymentMethodAdded) == [.schedulePaymentMethod(at: Self.april.end)])
        #expect(h.account.hasPaymentMethod && h.account.hasPendingPaymentMethod)
        let closed = h.advance(to: Self.april.end)
        // On file before the period's invoice is charged.
        #expect(closed[0].1 == [
            .applyScheduledPaymentMethod, .resetQuota,
            .issueInvoice(lines: [proLine(Self.may.start, Self.may.end)], periodStart: Self.april.start, periodEnd: Self.april.end),
            .attemptPayment,
        ])
        #expect(!h.account.hasPendingPaymentMethod)
        // The next period end has nothing pending.
        #expect(h.advance(to: Self.may.end)[0].1.first == .resetQuota)
    }

    @Test func aPeriodEndReplayedIsIgnored() {
        var h = LifecycleHarness.active(.pro, since: Self.april.start)
        h.advance(to: Self.april.end)
        let after = h.account
        #expect(h.accept(.periodEnded(Self.april, overage: .zero)) == [])
        #expect(h.account == after)
        // So is a payment of an invoice that is not past due.
        #expect(h.accept(.paymentSucceeded(invoice: 99)) == [])
        #expect(h.accept(.graceExpired) == [])
        #expect(h.account == after)
    }
}
