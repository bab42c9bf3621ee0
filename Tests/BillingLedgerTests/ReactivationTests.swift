import BillingCore
@testable import BillingLedger
import BillingProto
import Dispatch
import Testing

/// A card given to a paused trial (session 31): its first period is
/// charged before the trial restarts. Declined, the card is not kept, the
/// invoice is void and the trial stays paused — its way out to Free open
/// (DESIGN.md). Before, the trial restarted at once and a decline left it
/// past due on Pro, Free only after the period and the $49 paid.
@Suite struct ReactivationTests {
    static let day: Int64 = 86_400

    /// A trial "t" whose end has passed without a card: paused.
    static func pausedTrial(gateway: any PaymentGateway = TestPaymentGateway()) async throws -> Harness {
        try await pause(try LifecycleEdgeTests.ledger(gateway: gateway))
    }

    static func pause(_ h: Harness) async throws -> Harness {
        _ = try await h.ledger.createAccount(id: "t", actor: "test")
        h.clock.advance(seconds: 15 * Self.day)
        _ = try await h.ledger.tick()
        let lifecycle = try #require(await h.ledger.snapshot.accounts["t"]).lifecycle
        try #require(lifecycle.pauseReason == .trialEndedWithoutPaymentMethod)
        return h
    }

    /// The books survive a checkpoint as they are (and it is taken as sound).
    static func expectCheckpointKeeps(_ live: LedgerState) {
        let checkpoint = live.checkpoint(writtenAtMicros: 1)
        #expect(LedgerState.usable(checkpoint))
        #expect(LedgerState(checkpoint: checkpoint, plans: Fixtures.plans) == live)
    }

    @Test func aDeclinedCardLeavesThePausedTrialWithItsWayToFreeAndAVoidInvoice() async throws {
        let h = try await Self.pausedTrial()
        let (appliedNow, charge) = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.declining,
                                                                        actor: "test")
        let declined = try #require(charge)
        #expect(!appliedNow)
        #expect(declined.status == .failed && declined.failureReason == "CARD_DECLINED")
        #expect(declined.paymentMethodID.isEmpty && declined.paymentMethodLabel == "visa •••• 0002")
        let state = await h.ledger.snapshot
        let book = try #require(state.accounts["t"])
        #expect(book.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod && book.lifecycle.trialEndsAt != nil)
        #expect(!book.lifecycle.hasPaymentMethod && book.paymentMethod == nil && book.pendingPaymentMethod == nil)
        #expect(book.lifecycle.pastDueInvoices.isEmpty)
        let invoice = try #require(state.invoices[1])
        #expect(invoice.reactivates && !invoice.attemptPending)
        #expect(invoice.invoice.status == .void && invoice.invoice.amountDueMicros == 0 && invoice.invoice.payLink.isEmpty)
        #expect(declined.invoiceID == invoice.invoice.invoiceID)
        Self.expectCheckpointKeeps(state)
        // Nothing is owed: paying the void invoice is refused.
        await #expect(throws: AccountRequestRefused.self) {
            _ = try await h.ledger.payInvoice(accountID: "t", invoiceID: invoice.invoice.invoiceID, newMethod: nil,
                                              requested: "", key: "", actor: "test")
        }
        // The way out to Free, at once, nothing owed.
        let free = try await h.ledger.changePlan(accountID: "t", to: .free, key: "free", actor: "test")
        #expect(free.effect == .applied)
        let after = try #require(await h.ledger.snapshot.accounts["t"]).lifecycle
        #expect(after.plan == .free && after.pauseReason == nil && after.pastDueInvoices.isEmpty)
        try await h.expectJournalReplaysToLiveBooks()
        let restarted = h.store.restart()
        let problems = try LedgerAudit.run(on: restarted, plans: Fixtures.plans).problems
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func aGoodCardRestartsTheTrialsPlanFromThePeriodItPaid() async throws {
        let h = try await Self.pausedTrial()
        // A card declined first, then a good one: the second restarts it.
        _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.declining, actor: "test")
        let now = h.clock.nowMicros() / 1_000_000
        let (appliedNow, charge) = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        #expect(appliedNow && charge?.status == .succeeded && charge?.invoiceID == "in_2")
        let state = await h.ledger.snapshot
        let book = try #require(state.accounts["t"])
        #expect(book.lifecycle.plan == .pro && book.lifecycle.pauseReason == nil && book.lifecycle.trialEndsAt == nil)
        #expect(book.lifecycle.hasPaymentMethod && book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        #expect(book.lifecycle.currentPeriod.start == now)
        #expect(state.invoices.values.map { $0.invoice.status }.sorted { $0.rawValue < $1.rawValue } == [.paid, .void])
        #expect(state.invoices[2]?.invoice.periodStartUnixSeconds == now)
        Self.expectCheckpointKeeps(state)
        _ = try await h.debit(Fixtures.command(account: "t", key: "runs-again", micros: 100))
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// The gateway gives no answer: the trial stays paused (its card held
    /// for the charge), across a checkpoint and a restart, until the
    /// charge is settled — then it restarts from the period it paid.
    @Test func aReactivationWithoutAnAnswerStaysPausedUntilItsChargeIsSettled() async throws {
        let silent = GatewayOutcomeTests.SilentGateway()
        let h = try await Self.pausedTrial(gateway: silent)
        silent.silent.withLock { $0 = ["invoice:"] }
        let started = h.clock.nowMicros() / 1_000_000
        await #expect(throws: GatewayUnavailable.self) {
            _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        }
        let state = await h.ledger.snapshot
        let book = try #require(state.accounts["t"])
        #expect(book.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod && !book.lifecycle.hasPaymentMethod)
        #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        #expect(state.invoices[1]?.reactivates == true && state.invoices[1]?.invoice.status == .open)
        #expect(state.pendingCharges.count == 1)
        Self.expectCheckpointKeeps(state)
        await h.ledger.close()

        // Restarted with a gateway that answers: the tick settles it.
        let store = h.store.restart()
        h.clock.advance(seconds: 3_600)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: h.clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        _ = try await ledger.tick()
        let settled = await ledger.snapshot
        let lifecycle = try #require(settled.accounts["t"]).lifecycle
        #expect(lifecycle.plan == .pro && lifecycle.pauseReason == nil && lifecycle.hasPaymentMethod)
        #expect(lifecycle.currentPeriod.start == started)
        #expect(settled.invoices[1]?.invoice.status == .paid && settled.pendingCharges.isEmpty)
        await ledger.close()
        #expect(try LedgerAudit.run(on: store.restart(), plans: Fixtures.plans).problems.isEmpty)
    }

    /// A reactivation whose charge is settled only after the period it
    /// billed has ended starts from the settlement: one period paid, one
    /// period of service (it started from the invoice's period and the
    /// next period was billed at once — session 31, a review).
    @Test func aReactivationSettledAfterItsPeriodStartsFromTheSettlement() async throws {
        let silent = GatewayOutcomeTests.SilentGateway()
        let h = try await Self.pause(try GatewayOutcomeTests.ledger(silent))
        silent.silent.withLock { $0 = ["invoice:"] }
        await #expect(throws: GatewayUnavailable.self) {
            _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        }
        h.clock.advance(seconds: 40 * Self.day)
        _ = try? await h.ledger.tick()  // (the charge still has no answer)
        silent.silent.withLock { $0 = [] }
        _ = try await h.ledger.tick()
        let settled = h.clock.nowMicros() / 1_000_000
        let state = await h.ledger.snapshot
        let lifecycle = try #require(state.accounts["t"]).lifecycle
        #expect(lifecycle.plan == .pro && lifecycle.pauseReason == nil && lifecycle.currentPeriod.start == settled)
        #expect(state.invoices.count == 1 && state.invoices[1]?.invoice.status == .paid)
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// A second card given while the first one's charge has no answer
    /// settles that charge first: it succeeded, so the trial restarts and
    /// the second card is a replacement — not a second reactivation charged.
    @Test func aSecondCardSettlesTheFirstReactivationBeforeItIsTaken() async throws {
        let silent = GatewayOutcomeTests.SilentGateway()
        let h = try await Self.pause(try GatewayOutcomeTests.ledger(silent))  // (asked again at once)
        silent.silent.withLock { $0 = ["invoice:"] }
        await #expect(throws: GatewayUnavailable.self) {
            _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        }
        silent.silent.withLock { $0 = [] }
        let (appliedNow, charge) = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.declining,
                                                                        actor: "test")
        #expect(!appliedNow && charge == nil)
        let state = await h.ledger.snapshot
        let book = try #require(state.accounts["t"])
        #expect(book.lifecycle.plan == .pro && book.lifecycle.pauseReason == nil)
        #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        #expect(book.pendingPaymentMethod?.gatewayToken == LifecycleLedgerTests.declining.token)
        #expect(state.invoices.count == 1 && state.invoices[1]?.invoice.status == .paid)
        #expect(silent.calls.withLock { $0 } == 2 && silent.charges.withLock { $0 } == 1)
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// The lifecycle entry commits but the ChargeStarted after it does not
    /// (a crash between them, a refused write): the reactivation's invoice
    /// is owed, no charge pending, the trial still paused.
    static func owedReactivation(_ h: Harness, method: TokenizedMethod) async throws {
        let passes = DispatchSemaphore(value: 0)  // (one made with a value traps when freed below it)
        passes.signal()
        h.disk.script(.block(entered: AsyncLatch(), release: passes, thenFail: false))
        h.disk.script(.failAtomically)
        await #expect(throws: (any Error).self) {
            _ = try await h.ledger.setPaymentMethod(accountID: "t", method: method, actor: "test")
        }
        let ledger = h.ledger
        #expect(await eventually { ledger.isServing })
        let state = await h.ledger.snapshot
        try #require(state.invoices[1]?.reactivates == true && state.invoices[1]?.attemptPending == true)
        try #require(state.pendingCharges.isEmpty)
        try #require(state.accounts["t"]?.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod)
    }

    /// An owed reactivation is charged by the next tick (after a restart
    /// too), and the trial restarts.
    @Test func anOwedReactivationIsChargedByTheTick() async throws {
        let h = try await Self.pausedTrial()
        try await Self.owedReactivation(h, method: LifecycleLedgerTests.good)
        Self.expectCheckpointKeeps(await h.ledger.snapshot)
        let r = try await h.restarted()
        _ = try await r.ledger.tick()
        let state = await r.ledger.snapshot
        let lifecycle = try #require(state.accounts["t"]).lifecycle
        #expect(lifecycle.plan == .pro && lifecycle.pauseReason == nil && state.invoices[1]?.invoice.status == .paid)
        try await r.expectJournalReplaysToLiveBooks()
        #expect(try LedgerAudit.run(on: r.store.restart(), plans: Fixtures.plans).problems.isEmpty)
    }

    /// While a reactivation is owed and the gateway is taken as down (its
    /// attempt deferred), the account's requests wait (UNAVAILABLE) —
    /// session 31, a review: a move to Free went ahead, and the owed charge
    /// then took $49 for a Pro period from a Free account (or, declined,
    /// left the declined card on file). Once the gateway answers, the tick
    /// settles it and Free is a choice again.
    @Test(arguments: [true, false]) func anOwedReactivationHoldsTheAccountsRequestsBack(paid: Bool) async throws {
        let gateway = GatewayOutcomeTests.SilentGateway(hang: true)
        // Taken as down for a minute after a timeout: longer than the test.
        let h = try GatewayOutcomeTests.ledger(gateway, timeout: 1, retryBase: .seconds(60))
        try await GatewayOutcomeTests.withCards(h.ledger, ["a"], plan: .free)
        _ = try await Self.pause(h)
        try await Self.owedReactivation(h, method: paid ? LifecycleLedgerTests.good : LifecycleLedgerTests.declining)
        // Another account's charge times out: the gateway is taken as down.
        gateway.silent.withLock { $0 = ["purchase:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        let before = await h.ledger.snapshot.lastSeq
        await #expect(throws: GatewayUnavailable.self) {
            _ = try await h.ledger.changePlan(accountID: "t", to: .free, key: "free", actor: "test")
        }
        await #expect(throws: GatewayUnavailable.self) {
            _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        }
        #expect(await h.ledger.snapshot.lastSeq == before)
        // The gateway answers again: the tick settles the owed reactivation.
        gateway.silent.withLock { $0 = [] }
        await h.ledger.takeTheGatewayAsUp()
        let ledger = h.ledger
        #expect(await eventually {
            _ = try? await ledger.tick()
            return await ledger.snapshot.invoices[1]?.invoice.status != .open
        })
        let state = await h.ledger.snapshot
        let book = try #require(state.accounts["t"])
        if paid {
            #expect(state.invoices[1]?.invoice.status == .paid && book.lifecycle.plan == .pro && book.lifecycle.pauseReason == nil)
        } else {
            #expect(state.invoices[1]?.invoice.status == .void && book.paymentMethod == nil)
            #expect(book.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod)
            let free = try await h.ledger.changePlan(accountID: "t", to: .free, key: "free", actor: "test")
            #expect(free.effect == .applied && free.invoice == nil)
        }
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// An entry journaled before session 31 (no `reactivates_on_payment`)
    /// replays as it was decided: the trial restarted at once, and its
    /// declined charge left it past due on its plan.
    @Test func aMethodSetBeforeTheChangeReplaysAsItWasDecided() async throws {
        let h = try await Self.pausedTrial()
        _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.declining, actor: "test")
        await h.ledger.close()
        // The same journal with the mark taken off the method's entry, and
        // the charge's record as the older build wrote it.
        var replayed = LedgerState(plans: Fixtures.plans)
        for var entry in h.journal() {
            if case .lifecycle(var event)? = entry.event, case .paymentMethodSet(var set)? = event.event {
                set.reactivatesOnPayment = false
                event.event = .paymentMethodSet(set)
                entry.event = .lifecycle(event)
            }
            try replayed.apply(entry)
        }
        let lifecycle = try #require(replayed.accounts["t"]).lifecycle
        #expect(lifecycle.plan == .pro && lifecycle.trialEndsAt == nil && lifecycle.pastDueInvoices.count == 1)
        #expect(replayed.invoices[1]?.invoice.status == .pastDue && replayed.invoices[1]?.reactivates == false)
    }
}

extension Ledger {
    /// Forgets the gateway's downtime (a test's stand-in for its backoff
    /// running out).
    func takeTheGatewayAsUp() {
        gatewayDownUntil = nil
        gatewayTimeoutsInARow = 0
    }
}
