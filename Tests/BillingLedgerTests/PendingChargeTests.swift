import BillingCore
@testable import BillingLedger
import BillingProto
import Dispatch
import Synchronization
import Testing

/// A gateway charge is journaled as started, and committed, before the
/// gateway is called; its outcome is recorded after. A crash or a failed
/// commit in between leaves the charge pending, and the ledger records it
/// (asking the gateway again with the same key) before any other lifecycle
/// work on the account: money is never taken without an entry for it.
@Suite struct PendingChargeTests {
    static func ledger(on store: InMemoryLedgerStore, clock: ManualClock, gateway: any PaymentGateway,
                       checkpointEvery: Int = 1_000) throws -> Ledger {
        try Ledger(store: store, plans: Fixtures.plans, clock: clock,
                   configuration: Fixtures.configuration(checkpointEvery: checkpointEvery),
                   logger: Fixtures.logger, gateway: gateway)
    }

    /// A Free account with a card on file, on a remembering gateway.
    static func harness(_ gateway: RememberingGateway, checkpointEvery: Int = 1_000) async throws -> Harness {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 3, day: 1, hour: 12)
        let ledger = try Self.ledger(on: store, clock: clock, gateway: gateway, checkpointEvery: checkpointEvery)
        _ = try await ledger.createAccount(id: "acct", plan: .free, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        return Harness(store: store, clock: clock, ledger: ledger)
    }

    /// Crashes `h`'s ledger and opens a new one on the same disk and gateway.
    static func restarted(_ h: Harness, gateway: RememberingGateway, checkpointEvery: Int = 1_000) async throws -> Harness {
        let store = h.store.restart()
        await h.ledger.close()
        return Harness(store: store, clock: h.clock,
                       ledger: try Self.ledger(on: store, clock: h.clock, gateway: gateway, checkpointEvery: checkpointEvery))
    }

    /// A purchase whose process dies while the gateway charges the card:
    /// the ledger opened again on the same disk and gateway, and the old
    /// process's purchase call, which failed (its record was never written).
    static func crashDuringPurchase(_ h: Harness, _ gateway: RememberingGateway,
                                    amount: Int64) async throws -> (restarted: Harness, purchase: Result<PurchaseResult, any Error>) {
        gateway.stallNext()
        let ledger = h.ledger
        let purchase = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: amount, key: "buy", actor: "test") }
        await gateway.reached.wait()  // the card is being charged; the process dies now
        let restarted = try await Self.restarted(h, gateway: gateway)
        gateway.release()
        return (restarted, await purchase.result)
    }

    /// A lifecycle request whose caller gave up while it waited for the turn
    /// (its deadline passed: answered DEADLINE_EXCEEDED, its task
    /// cancelled) leaves the queue and does nothing — it used to wait on,
    /// then charge the card (a buyer trying again under a new key paid
    /// twice). Whether it is cancelled while queued or just as it is handed
    /// the turn, nothing is charged for it, and the turn goes on.
    @Test(.timeLimit(.minutes(1))) func aRequestCancelledWhileWaitingForTheTurnDoesNothing() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        let ledger = h.ledger
        gateway.stallNext()
        let first = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "first", actor: "test") }
        await gateway.reached.wait()  // the turn is held at the gateway
        let given = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 7_000_000, key: "given-up", actor: "test") }
        let queued = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 9_000_000, key: "queued", actor: "test") }
        #expect(await eventually { await ledger.lifecycleWaiters.count == 2 })
        given.cancel()
        await #expect(throws: CancellationError.self) { try await given.value }
        #expect(await ledger.lifecycleWaiters.count == 1)
        gateway.release()
        #expect(try await first.value.charge.status == .succeeded)
        #expect(try await queued.value.charge.status == .succeeded)
        #expect(gateway.collected == [5_000_000, 9_000_000])
        #expect(try await ledger.currentBook("acct").balance == 14_000_000)
        await ledger.close()
    }

    /// The other way to be cancelled: just as the turn is handed over (the
    /// waiter resumed, not yet run). It gives the turn on and does nothing.
    @Test(.timeLimit(.minutes(1))) func aRequestCancelledAsTheTurnIsHandedToItGivesItOn() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        let ledger = h.ledger
        try await ledger.acquireLifecycle()  // the test holds the turn
        let waiting = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "late", actor: "test") }
        #expect(await eventually { await ledger.lifecycleWaiters.count == 1 })
        await Self.handOver(ledger, cancelling: waiting)
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(await !ledger.lifecycleBusy)
        #expect(gateway.collected.isEmpty)
        let next = try await ledger.purchaseCredits(accountID: "acct", amountMicros: 1_000_000, key: "next", actor: "test")
        #expect(next.charge.status == .succeeded)
        await ledger.close()
    }

    /// Hands the turn to the first waiter and cancels `task` in one actor
    /// turn: the waiter is resumed before its cancellation can reach the queue.
    static func handOver(_ ledger: isolated Ledger, cancelling task: Task<PurchaseResult, any Error>) {
        ledger.releaseLifecycle()
        task.cancel()
    }

    /// A purchase held at the gateway holds the lifecycle, not reads: the
    /// book of an account with nothing due is read at once (the Billing
    /// tab of every other account stays up while one card is charged), and
    /// so is the charged account's own.
    @Test func aChargeHeldAtTheGatewayDoesNotHoldUpReadsOfOtherAccounts() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        _ = try await h.ledger.createAccount(id: "other", plan: .free, actor: "test")
        gateway.stallNext()
        let ledger = h.ledger
        let purchase = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test") }
        await gateway.reached.wait()
        // A read that waited for the purchase would wait for ever: the
        // gateway answers only after it. A safety net (never reached when
        // reads do not wait) releases the gateway after 30 s, so a
        // regression fails here instead of hanging the suite.
        let waitedForTheGateway = Mutex(false)
        let net = Task {
            try await Task.sleep(for: .seconds(30))
            waitedForTheGateway.withLock { $0 = true }
            gateway.release()
        }
        #expect(try await ledger.currentBook("other").accountID == "other")
        #expect(!waitedForTheGateway.withLock { $0 })
        net.cancel()
        // The charged account's read does not wait either (session 29: it
        // waited for the purchase's turn — for as long as the gateway took):
        // the book as it stands, the purchase not acknowledged yet.
        #expect(try await ledger.currentBook("acct").balance == 0)
        #expect(await ledger.lifecycleWaiters.isEmpty)
        gateway.release()
        #expect(try await purchase.value.charge.status == .succeeded)
        #expect(try await ledger.currentBook("acct").balance == 5_000_000)
        // A transition due is still applied by a read.
        h.clock.advance(seconds: 40 * 86_400)
        #expect(try await ledger.currentBook("other").lifecycle.currentPeriod.end > h.clock.nowMicros() / 1_000_000)
        await ledger.close()
    }

    /// The ticker gives up the lifecycle turn between accounts: a request
    /// that waits while one account's period close is charged at the gateway
    /// runs before the next account's close, not after the whole sweep.
    @Test func aRequestRunsBetweenTwoAccountsClosesNotAfterTheWholeSweep() async throws {
        let gateway = RememberingGateway()
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 3, day: 1, hour: 12)
        let ledger = try Self.ledger(on: store, clock: clock, gateway: gateway, checkpointEvery: 1_000)
        for id in ["a", "c"] {
            _ = try await ledger.createAccount(id: id, plan: .pro, actor: "test")
            _ = try await ledger.setPaymentMethod(accountID: id, method: LifecycleLedgerTests.good, actor: "test")
        }
        clock.advance(seconds: 32 * 86_400)
        _ = try await ledger.createAccount(id: "b", plan: .free, actor: "test")  // nothing due for it
        gateway.stallNext()
        let sweep = Task { try await ledger.tick() }
        await gateway.reached.wait()  // "a"'s close is being charged (ties go by id)
        let request = Task { try await ledger.setPaymentMethod(accountID: "b", method: LifecycleLedgerTests.good, actor: "test") }
        // The request waits for the turn (a condition, bounded; not a guess at timing).
        for _ in 0..<10_000 where await ledger.lifecycleWaiters.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        #expect(await ledger.lifecycleWaiters.count == 1)
        gateway.release()
        let transitions = try await sweep.value
        _ = try await request.value
        #expect(transitions.filter { $0.kind == "PERIOD_CLOSED" }.map(\.accountID) == ["a", "c"])
        await ledger.close()
        let order = store.disk.journal().compactMap { entry -> String? in
            guard case .lifecycle(let event)? = entry.event else { return nil }
            switch event.event {
            case .periodEnded?: return "close \(event.accountID)"
            case .paymentMethodSet? where event.accountID == "b": return "request b"
            default: return nil
            }
        }
        #expect(order == ["close a", "request b", "close c"])
    }

    @Test func aPurchaseChargedBeforeACrashIsRecordedOnceAfterTheRestart() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        let (restarted, purchase) = try await Self.crashDuringPurchase(h, gateway, amount: 5_000_000)
        #expect(throws: (any Error).self) { _ = try purchase.get() }  // its record was never written
        #expect(gateway.collected == [5_000_000])

        // Found pending on start-up (`billing verify` counts it, not as a difference), recorded by the first tick.
        #expect(await restarted.ledger.snapshot.pendingCharges.count == 1)
        let audit = try LedgerAudit.run(on: restarted.store, plans: Fixtures.plans)
        #expect(audit.isClean, "\(audit.problems)")
        #expect(audit.pendingCharges == 1)
        #expect(await restarted.ledger.account("acct")?.balance == 0)
        _ = try await restarted.ledger.tick()
        #expect(await restarted.ledger.snapshot.pendingCharges.isEmpty)
        #expect(await restarted.ledger.account("acct")?.balance == 5_000_000)
        let invoices = try await restarted.ledger.invoices(of: "acct")
        #expect(invoices.map(\.status) == [.paid])
        #expect(invoices.first?.totalMicros == 5_000_000)

        // The client's retry gets that purchase: nothing charged again.
        let retry = try await restarted.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        #expect(retry.charge.status == .succeeded)
        #expect(retry.balance == 5_000_000)
        #expect(gateway.collected == [5_000_000])
        #expect(try await restarted.ledger.currentBook("acct").charges.count == 1)

        // Replayed from scratch, the journal gives the same books.
        let live = await restarted.ledger.snapshot
        await restarted.ledger.close()
        var replayed = LedgerState(plans: Fixtures.plans)
        for entry in h.disk.journal() { try replayed.apply(entry) }
        #expect(replayed == live)
    }

    @Test func aRetryBeforeTheTickRecordsThePendingPurchaseAndAnswersWithIt() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        let (restarted, _) = try await Self.crashDuringPurchase(h, gateway, amount: 7_000_000)

        // Another amount under the same key is the key reused, not a new charge.
        await #expect(throws: AccountRequestRefused.self) {
            _ = try await restarted.ledger.purchaseCredits(accountID: "acct", amountMicros: 1_000_000, key: "buy", actor: "test")
        }
        let retry = try await restarted.ledger.purchaseCredits(accountID: "acct", amountMicros: 7_000_000, key: "buy", actor: "test")
        #expect(retry.balance == 7_000_000)
        #expect(gateway.collected == [7_000_000])
        await restarted.ledger.close()
    }

    @Test func aGrantAfterTheRestartWaitsForThePendingPurchaseSoItsCreditsStillFit() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        _ = try await h.ledger.grantCredits(accountID: "acct", amountMicros: .max - 10_000_000, kind: "promotional",
                                            note: "", actor: "test")
        let (restarted, _) = try await Self.crashDuringPurchase(h, gateway, amount: 5_000_000)
        // The charged purchase is credited first; the grant no longer fits.
        await #expect(throws: LedgerError.invalid("the balance would overflow")) {
            _ = try await restarted.ledger.grantCredits(accountID: "acct", amountMicros: 6_000_000, kind: "promotional",
                                                        note: "", actor: "test")
        }
        #expect(await restarted.ledger.account("acct")?.balance == .max - 5_000_000)
        await restarted.ledger.close()
    }

    @Test func whenTheStartCannotBeJournaledTheGatewayIsNeverCalled() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        h.disk.script(.failAtomically)
        await #expect(throws: (any Error).self) {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        }
        // A tick at once, maybe before the reload after the failure: the lost
        // start is still in memory, and must not reach the gateway.
        _ = try? await h.ledger.tick()
        #expect(gateway.keys.isEmpty)
        #expect(await eventually(atLeast: .seconds(5)) { await h.ledger.snapshot.pendingCharges.isEmpty })
        // Once the ledger has reloaded, the retry charges and records normally.
        var retried: PurchaseResult?
        #expect(await eventually(atLeast: .seconds(5)) {
            retried = try? await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
            return retried != nil
        })
        #expect(retried?.balance == 5_000_000)
        #expect(gateway.collected == [5_000_000])
        await h.ledger.close()
    }

    /// A start whose commit is still under way (and then fails) is not
    /// settled: settling waits for it to be durable, so a start the journal
    /// never got never reaches the gateway.
    @Test func aStartNotYetDurableIsNotSettled() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        h.disk.script(.block(entered: entered, release: release, thenFail: true))
        let ledger = h.ledger
        let purchase = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test") }
        await entered.wait()  // the start is in memory, its commit under way
        #expect(await ledger.snapshot.pendingCharges.count == 1)
        let settling = Task { try await ledger.settlePendingCharges(only: "acct") }
        // Settling waits on the start's commit before it fails (after the
        // reload it would find nothing to settle and not throw).
        #expect(await eventually { h.ledger.committer.commitWaiterCount >= 2 })
        release.signal()  // the commit fails
        await #expect(throws: (any Error).self) { try await settling.value }
        await #expect(throws: (any Error).self) { _ = try await purchase.value }
        #expect(gateway.keys.isEmpty)
        #expect(await eventually { await ledger.snapshot.pendingCharges.isEmpty })
        await h.ledger.close()
    }

    @Test func whenTheRecordsCommitFailsTheNextTickRecordsTheCharge() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        // The start commits; the record after the gateway's answer fails.
        let passes = DispatchSemaphore(value: 0)  // (one made with a value traps when freed below it)
        passes.signal()
        h.disk.script(.block(entered: AsyncLatch(), release: passes, thenFail: false))
        h.disk.script(.failAtomically)
        await #expect(throws: (any Error).self) {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        }
        #expect(gateway.collected == [5_000_000])
        #expect(await eventually(atLeast: .seconds(5)) { await h.ledger.snapshot.pendingCharges.count == 1 })
        #expect(await h.ledger.account("acct")?.balance == 0)
        // The reloaded ledger knows the start: the tick asks the gateway again and records its first answer.
        #expect(await eventually(atLeast: .seconds(5)) { (try? await h.ledger.tick()) != nil })
        #expect(await h.ledger.snapshot.pendingCharges.isEmpty)
        #expect(await h.ledger.account("acct")?.balance == 5_000_000)
        #expect(gateway.collected == [5_000_000])
        #expect(gateway.keys.count == 2)
        await h.ledger.close()
    }

    @Test func whenTheStartsAcknowledgementIsLostTheTickChargesOnceAndRecords() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway)
        h.disk.script(.commitThenThrow)  // the start: durable, its ack lost
        await #expect(throws: (any Error).self) {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        }
        #expect(gateway.keys.isEmpty)  // not acknowledged: not charged by the request
        #expect(await eventually(atLeast: .seconds(5)) { await h.ledger.snapshot.pendingCharges.count == 1 })
        // Journaled all the same: the request stands (the client saw UNAVAILABLE, an unknown outcome).
        #expect(await eventually(atLeast: .seconds(5)) { (try? await h.ledger.tick()) != nil })
        #expect(await h.ledger.account("acct")?.balance == 5_000_000)
        let retry = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        #expect(retry.balance == 5_000_000)
        #expect(gateway.collected == [5_000_000])
        await h.ledger.close()
    }

    @Test func anInvoicePaymentChargedBeforeACrashIsRecordedAndTheInvoicePaid() async throws {
        let gateway = RememberingGateway()
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 3, day: 1, hour: 12)
        var h = Harness(store: store, clock: clock, ledger: try Self.ledger(on: store, clock: clock, gateway: gateway))
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        // The first period's charge is declined: the invoice is past due.
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.declining, actor: "test")
        h.clock.advance(seconds: 32 * 86_400)
        _ = try await h.ledger.tick()
        let owed = try #require(try await h.ledger.invoices(of: "acct").last { $0.status == .pastDue })
        gateway.stallNext()
        let ledger = h.ledger
        let pay = Task {
            try await ledger.payInvoice(accountID: "acct", invoiceID: owed.invoiceID, newMethod: LifecycleLedgerTests.good,
                                        key: "pay", actor: "test")
        }
        await gateway.reached.wait()
        h = try await Self.restarted(h, gateway: gateway)
        gateway.release()
        _ = try? await pay.value
        #expect(gateway.collected == [owed.amountDueMicros])

        // The customer's retry records the pending payment first and answers with it.
        let (invoice, charge) = try await h.ledger.payInvoice(accountID: "acct", invoiceID: owed.invoiceID, newMethod: LifecycleLedgerTests.good,
                                                              key: "pay", actor: "test")
        #expect(invoice.status == .paid)
        #expect(charge.status == .succeeded)
        #expect(gateway.collected == [owed.amountDueMicros])
        let book = try await h.ledger.currentBook("acct")
        #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        #expect(book.lifecycle.pastDueInvoices.isEmpty)
        await h.ledger.close()
    }

    /// A checkpoint holds the pending charges: a restart from it finds them.
    @Test func aPendingChargeSurvivesACheckpoint() async throws {
        let gateway = RememberingGateway()
        let h = try await Self.harness(gateway, checkpointEvery: 1)
        gateway.stallNext()
        let ledger = h.ledger
        let purchase = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test") }
        await gateway.reached.wait()
        try await h.journalSleeps()
        let started = try #require(await h.ledger.snapshot.pendingCharges.values.first)
        // A checkpoint at the start's seq (or later) is what the restart loads.
        #expect(await eventually(atLeast: .seconds(5)) { (h.disk.latestCheckpointSeq() ?? 0) >= started.seq })
        let checkpoint = try #require(try h.store.latestCheckpoint())
        #expect(checkpoint.pendingCharges.map(\.seq) == [started.seq])
        let restarted = try await Self.restarted(h, gateway: gateway, checkpointEvery: 1)
        gateway.release()
        _ = try? await purchase.value
        #expect(await restarted.ledger.snapshot.pendingCharges == [started.started.gatewayKey: started])
        _ = try await restarted.ledger.tick()
        #expect(await restarted.ledger.account("acct")?.balance == 5_000_000)
        await restarted.ledger.close()
    }

    @Test func replayRefusesARecordOfAChargeThatWasNeverStarted() throws {
        var state = LedgerState(plans: Fixtures.plans)
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = "acct"
        created.plan = "free"
        try state.apply(.accountCreated(created), seq: 1, atMicros: 1_000_000)
        var purchase = Billing_Journal_V1_CreditsPurchased()
        purchase.accountID = "acct"
        purchase.amountMicros = 5
        purchase.gatewayKey = "never-started"
        purchase.charge.accountID = "acct"
        purchase.charge.amountMicros = 5
        purchase.charge.status = .failed
        #expect(throws: LedgerState.ApplyError.self) { try state.apply(.creditsPurchased(purchase), seq: 2, atMicros: 2_000_000) }
        #expect(state.accounts["acct"]?.charges.isEmpty == true)
        // Started, then recorded: settled.
        var started = Billing_Journal_V1_ChargeStarted()
        started.accountID = "acct"
        started.gatewayKey = "never-started"
        started.gatewayToken = "tok"
        purchase.charge.status = .unspecified
        started.purchase = purchase
        try state.apply(.chargeStarted(started), seq: 2, atMicros: 2_000_000)
        #expect(throws: LedgerState.ApplyError.self) { try state.apply(.chargeStarted(started), seq: 3, atMicros: 3_000_000) }
        purchase.charge.status = .failed
        try state.apply(.creditsPurchased(purchase), seq: 3, atMicros: 3_000_000)
        #expect(state.pendingCharges.isEmpty)
        #expect(state.accounts["acct"]?.charges.count == 1)
    }
}

/// A gateway that, like a real one, remembers each idempotency key's
/// outcome for good (across the ledger's restarts) and can hold a charge.
final class RememberingGateway: PaymentGateway {
    private struct State {
        var stall = false
        var keys: [String] = []
        var outcomes: [String: ChargeOutcome] = [:]
        var collected: [Int64] = []
    }

    private let state = Mutex(State())
    let reached = AsyncLatch()
    private let released = AsyncLatch()

    func stallNext() { state.withLock { $0.stall = true } }
    func release() { released.open() }
    /// Every key asked for, in order (repeats included).
    var keys: [String] { state.withLock { $0.keys } }
    /// The amounts actually collected: one per key that succeeded.
    var collected: [Int64] { state.withLock { $0.collected } }

    func tokenize(_ source: PaymentSource, now: Int64) async throws(GatewayRefusal) -> TokenizedMethod {
        throw GatewayRefusal(reason: "UNSUPPORTED", message: "not in this test")
    }

    func charge(token: String, amount: Money, idempotencyKey: String) async -> ChargeOutcome {
        let (outcome, stall) = state.withLock { state in
            state.keys.append(idempotencyKey)
            defer { state.stall = false }
            if let earlier = state.outcomes[idempotencyKey] { return (earlier, state.stall) }
            let outcome: ChargeOutcome = token.hasPrefix("tok_test_decline_")
                ? .failed(reason: "CARD_DECLINED", message: "declined") : .succeeded(reference: "gw-\(idempotencyKey)")
            state.outcomes[idempotencyKey] = outcome
            if case .succeeded = outcome { state.collected.append(amount.micros) }
            return (outcome, state.stall)
        }
        if stall {
            reached.open()
            await released.wait()
        }
        return outcome
    }
}
