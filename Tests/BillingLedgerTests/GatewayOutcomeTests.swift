@testable import BillingLedger
import BillingCore
import BillingProto
import Synchronization
import Testing

/// A gateway that gives no outcome — says so, or does not answer in time —
/// leaves the charge pending, asked again with its key; nothing is
/// recorded as failed, nothing charged twice, and no one else waits on it
/// for longer than the timeout (session 29).
@Suite struct GatewayOutcomeTests {
    /// The test gateway, but for the charges `silent` names (by gateway
    /// key prefix): those answer `.unknown`, or (`hang`) not at all until
    /// the test is over.
    final class SilentGateway: PaymentGateway {
        let inner = TestPaymentGateway()
        let silent = Mutex<Set<String>>([])
        let hang: Bool
        /// Silent charges answer for real after this long instead (a slow gateway).
        let slow = Mutex<Duration?>(nil)
        /// Charges answered; and every call, answered or not.
        let charges = Mutex(0)
        let calls = Mutex(0)

        init(hang: Bool = false) { self.hang = hang }

        func tokenize(_ source: PaymentSource, now: Int64) async throws(GatewayRefusal) -> TokenizedMethod {
            try await inner.tokenize(source, now: now)
        }

        func charge(token: String, amount: Money, idempotencyKey: String) async -> ChargeOutcome {
            calls.withLock { $0 += 1 }
            if silent.withLock({ $0.contains { idempotencyKey.hasPrefix($0) } }) {
                if let delay = slow.withLock({ $0 }) {
                    try? await Task.sleep(for: delay)
                    charges.withLock { $0 += 1 }
                    return await inner.charge(token: token, amount: amount, idempotencyKey: idempotencyKey)
                }
                if hang { try? await Task.sleep(for: .seconds(60)) }
                return .unknown(message: "connection reset")
            }
            charges.withLock { $0 += 1 }
            return await inner.charge(token: token, amount: amount, idempotencyKey: idempotencyKey)
        }
    }

    /// Accounts `ids` on `plan`, each with a good card on file.
    static func withCards(_ ledger: Ledger, _ ids: [String], plan: Plan) async throws {
        for id in ids {
            _ = try await ledger.createAccount(id: id, plan: plan, actor: "t")
            _ = try await ledger.setPaymentMethod(accountID: id, method: LifecycleLedgerTests.good, actor: "t")
        }
    }

    /// Free accounts "a" and "b" with cards, the gateway hanging on purchases
    /// and taken as down for a minute: a's purchase timed out (pending).
    static func withTheGatewayDown() async throws -> (SilentGateway, Harness) {
        let gateway = SilentGateway(hang: true)
        let h = try Self.ledger(gateway, timeout: 1, retryBase: .seconds(60))
        try await Self.withCards(h.ledger, ["a", "b"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        return (gateway, h)
    }

    static func ledger(_ gateway: SilentGateway, timeout: Int = 30, retryBase: Duration = .zero) throws -> Harness {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 1, day: 31, hour: 12)
        var configuration = Fixtures.configuration()
        configuration.gatewayTimeoutSeconds = timeout
        configuration.gatewayRetryBase = retryBase  // zero: asked again at once
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: configuration,
                                logger: Fixtures.logger, gateway: gateway)
        return Harness(store: store, clock: clock, ledger: ledger)
    }

    @Test func aPurchaseWithoutAnOutcomeStaysPendingAndItsRetrySettlesIt() async throws {
        let gateway = SilentGateway()
        let h = try Self.ledger(gateway)
        try await Self.withCards(h.ledger, ["acct"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        var state = await h.ledger.snapshot
        #expect(state.pendingCharges.count == 1)
        #expect(state.accounts["acct"]?.charges.isEmpty == true && state.accounts["acct"]?.balance == 0)
        // Other work of the account waits for the outcome (no second charge under the key meanwhile).
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        // The gateway answers again: the retry records the charge once and answers from it.
        gateway.silent.withLock { $0 = [] }
        let bought = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "t")
        #expect(bought.charge.status == .succeeded)
        #expect(try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "t")
            .charge.chargeID == bought.charge.chargeID)
        state = await h.ledger.snapshot
        #expect(state.pendingCharges.isEmpty && state.accounts["acct"]?.balance == 5_000_000)
        #expect(state.accounts["acct"]?.charges.count == 1)
        #expect(gateway.charges.withLock { $0 } == 1)
        await h.ledger.close()
    }

    @Test func aGatewayThatHangsIsGivenUpOnAfterTheTimeout() async throws {
        let gateway = SilentGateway(hang: true)
        let h = try Self.ledger(gateway, timeout: 1)
        try await Self.withCards(h.ledger, ["acct"], plan: .free)
        _ = try await h.ledger.createAccount(id: "other", plan: .free, actor: "t")
        gateway.silent.withLock { $0 = ["purchase:"] }
        let started = ContinuousClock.now
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        #expect(ContinuousClock.now - started < .seconds(30))
        // The lifecycle is free again: another account's request goes through.
        _ = try await h.ledger.setPaymentMethod(accountID: "other", method: LifecycleLedgerTests.good, actor: "t")
        #expect(await h.ledger.snapshot.pendingCharges.count == 1)
        await h.ledger.close()
    }

    @Test func theTickSettlesTheOtherAccountsPaymentsMeanwhile() async throws {
        let gateway = SilentGateway()
        let h = try Self.ledger(gateway)
        try await Self.withCards(h.ledger, ["a", "b"], plan: .pro)
        h.clock.advance(seconds: 32 * 86_400)
        gateway.silent.withLock { $0 = ["invoice:1:a:"] }  // account a's invoice payments
        let made = try await h.ledger.tick()
        #expect(made.filter { $0.kind == "PAYMENT_SUCCEEDED" }.map(\.accountID) == ["b"], "\(made.map(\.kind))")
        #expect(await h.ledger.failingTransitions.keys.sorted() == ["a"])
        #expect(await h.ledger.snapshot.pendingCharges.count == 1)
        // Once the gateway answers, the next tick records a's charge: paid once.
        gateway.silent.withLock { $0 = [] }
        let later = try await h.ledger.tick()
        #expect(later.filter { $0.kind == "PAYMENT_SUCCEEDED" }.map(\.accountID) == ["a"], "\(later.map(\.kind))")
        let state = await h.ledger.snapshot
        #expect(state.pendingCharges.isEmpty)
        #expect(await h.ledger.failingTransitions.isEmpty)
        #expect(state.accounts["a"]?.charges.filter { $0.status == .succeeded }.count == 1)
        await h.ledger.close()
    }

    /// No answer in time takes the gateway as down: meanwhile no charge is
    /// started (nothing left pending for it) and the call still running is
    /// not repeated — one timeout per interval, not one per account.
    @Test func aGatewayThatTimesOutIsTakenAsDownForAWhile() async throws {
        let (gateway, h) = try await Self.withTheGatewayDown()
        #expect(gateway.calls.withLock { $0 } == 1)
        let started = ContinuousClock.now
        // Another account's purchase: refused at once, nothing started.
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "b", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        // The first one's retry: not asked again (its call still runs).
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(gateway.calls.withLock { $0 } == 1)
        let state = await h.ledger.snapshot
        #expect(state.pendingCharges.values.map(\.started.accountID) == ["a"])
        await h.ledger.close()
    }

    /// A read never asks the gateway nor waits for the lifecycle over it:
    /// it applies due transitions and leaves the charges to the ticker.
    @Test func readsApplyTransitionsButChargeNothing() async throws {
        let gateway = SilentGateway()
        let h = try Self.ledger(gateway)
        try await Self.withCards(h.ledger, ["a"], plan: .pro)
        let before = gateway.calls.withLock { $0 }
        h.clock.advance(seconds: 32 * 86_400)
        let book = try await h.ledger.currentBook("a")
        #expect(book.lifecycle.nextDueTransition(now: h.clock.nowMicros() / 1_000_000) == nil)  // the period closed
        #expect(gateway.calls.withLock { $0 } == before)
        let owed = try #require(try await h.ledger.invoices(of: "a").last)
        #expect(owed.status == .open)
        // The ticker charges it.
        let made = try await h.ledger.tick()
        #expect(made.map(\.kind) == ["PAYMENT_SUCCEEDED"], "\(made)")
        await h.ledger.close()
    }

    /// A period close whose payment then gets no outcome is reported as
    /// closed (it is committed), the payment as what failed.
    @Test func aCloseWhosePaymentHasNoOutcomeIsReportedClosed() async throws {
        let gateway = SilentGateway()
        let store = InMemoryLedgerStore()
        let clock = TestClock(startMicros: DurabilityTests.clockStart * 1_000_000)
        var configuration = Fixtures.configuration()
        configuration.gatewayRetryBase = .zero
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: configuration,
                                logger: Fixtures.logger, gateway: gateway)
        try await Self.withCards(ledger, ["a", "b"], plan: .pro)
        gateway.silent.withLock { $0 = ["invoice:1:a:"] }
        let moved = try await ledger.advanceClock(to: DurabilityTests.clockStart + 40 * 86_400, actor: "t")
        let kinds = moved.transitions.map { "\($0.accountID) \($0.kind)" }
        #expect(kinds.contains("a PERIOD_CLOSED") && kinds.contains("a TRANSITION_FAILED"), "\(kinds)")
        #expect(kinds.contains("b PERIOD_CLOSED") && kinds.contains("b PAYMENT_SUCCEEDED"), "\(kinds)")
        #expect(await ledger.failingTransitions.keys.sorted() == ["a"])
        // The account's own request settles it (gateway back): no longer counted as failing.
        gateway.silent.withLock { $0 = [] }
        #expect(try await ledger.purchaseWouldCharge(accountID: "a", amountMicros: 1_000_000, key: "k", requested: RequestedMethod.none))
        _ = try await ledger.purchaseCredits(accountID: "a", amountMicros: 1_000_000, key: "k", actor: "t")
        #expect(await ledger.snapshot.pendingCharges.isEmpty)
        #expect(await ledger.failingTransitions.isEmpty)
        #expect(ledger.accountsFailingTransitions.load(ordering: .relaxed) == 0)
        await ledger.close()
    }

    /// A purchase retried while its charge is still pending is a retry: no
    /// card is tokenized for it (`purchaseWouldCharge` false).
    @Test func aRetryWhileItsChargeIsPendingIsARetry() async throws {
        let gateway = SilentGateway()
        let h = try Self.ledger(gateway)
        try await Self.withCards(h.ledger, ["acct"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy",
                                               newMethod: PaymentRequestKeyTests.other, actor: "t")
        }
        #expect(try await h.ledger.purchaseWouldCharge(accountID: "acct", amountMicros: 5_000_000, key: "buy",
                                                       requested: "token tok_test_ok_3") == false)
        #expect(try await h.ledger.purchaseWouldCharge(accountID: "acct", amountMicros: 5_000_000, key: "other",
                                                       requested: RequestedMethod.none))
        await h.ledger.close()
    }

    /// A call still running after its timeout is not repeated (and with no
    /// backoff at all, the ask is refused by that alone).
    @Test func aCallStillRunningIsNotAskedAgain() async throws {
        let gateway = SilentGateway(hang: true)
        let h = try Self.ledger(gateway, timeout: 1, retryBase: .zero)
        try await Self.withCards(h.ledger, ["a"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:"] }
        for _ in 0..<3 {
            await #expect(throws: GatewayUnavailable.self) {
                try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
            }
        }
        #expect(gateway.calls.withLock { $0 } == 1)  // the first still "runs" (60 s)
        await h.ledger.close()
    }

    /// An answer without an outcome holds back that charge's key for a
    /// while; the gateway is not taken as down: other charges go on.
    @Test func anUnknownOutcomeHoldsBackItsKeyOnly() async throws {
        let gateway = SilentGateway()
        let h = try Self.ledger(gateway, retryBase: .seconds(60))
        try await Self.withCards(h.ledger, ["a", "b"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:1:a:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        gateway.silent.withLock { $0 = [] }
        let calls = gateway.calls.withLock { $0 }
        // Its retry within the minute: not asked (held back), refused at once.
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        #expect(gateway.calls.withLock { $0 } == calls)
        // Another account is charged meanwhile.
        let bought = try await h.ledger.purchaseCredits(accountID: "b", amountMicros: 5_000_000, key: "buy", actor: "t")
        #expect(bought.charge.status == .succeeded)
        await h.ledger.close()
    }

    /// The gateway taken as down during a catch-up: an account with a charge
    /// pending is passed over; the others' periods close on, their payments
    /// deferred to when the gateway answers (PAYMENT_DEFERRED), so a catch-up
    /// during an outage closes every period under the terms of its time.
    @Test func whileTheGatewayIsDownPeriodsCloseAndPaymentsWait() async throws {
        let gateway = SilentGateway(hang: true)
        let clock = TestClock(startMicros: DurabilityTests.clockStart * 1_000_000)
        var configuration = Fixtures.configuration()
        configuration.gatewayTimeoutSeconds = 1
        configuration.gatewayRetryBase = .seconds(60)
        let ledger = try Ledger(store: InMemoryLedgerStore(), plans: Fixtures.plans, clock: clock, configuration: configuration,
                                logger: Fixtures.logger, gateway: gateway)
        try await Self.withCards(ledger, ["a", "b"], plan: .pro)
        gateway.silent.withLock { $0 = ["invoice:"] }
        let moved = try await ledger.advanceClock(to: DurabilityTests.clockStart + 70 * 86_400, actor: "t")
        let kinds = moved.transitions.map { "\($0.accountID) \($0.kind)" }
        // a's first close timed out at the gateway: pending, a passed over.
        #expect(kinds.filter { $0.hasPrefix("a ") } == ["a PERIOD_CLOSED", "a TRANSITION_FAILED"], "\(kinds)")
        // b: both periods closed, its payment deferred.
        #expect(kinds.filter { $0 == "b PERIOD_CLOSED" }.count == 2, "\(kinds)")
        #expect(kinds.contains("b PAYMENT_DEFERRED"), "\(kinds)")
        #expect(gateway.calls.withLock { $0 } == 1)
        let state = await ledger.snapshot
        #expect(state.pendingCharges.values.map(\.started.accountID) == ["a"])
        #expect(state.accounts["b"]?.charges.isEmpty == true)
        #expect(await ledger.failingTransitions.keys.sorted() == ["a", "b"])
        await ledger.close()
    }

    /// A read of an account with a transition due does not wait for a turn
    /// held at the gateway: the book as it stands, a moment late.
    @Test func aReadDoesNotWaitForATurnHeldAtTheGateway() async throws {
        let gateway = SilentGateway(hang: true)
        let h = try Self.ledger(gateway, timeout: 4)
        try await Self.withCards(h.ledger, ["a"], plan: .free)
        try await Self.withCards(h.ledger, ["b"], plan: .pro)
        gateway.silent.withLock { $0 = ["purchase:"] }
        let ledger = h.ledger
        let held = Task { try await ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t") }
        #expect(await eventually { gateway.calls.withLock { $0 } == 1 })
        h.clock.advance(seconds: 32 * 86_400)  // b's period is due
        let started = ContinuousClock.now
        let book = try await ledger.currentBook("b")
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(book.lifecycle.nextDueTransition(now: h.clock.nowMicros() / 1_000_000) != nil)  // not applied yet
        held.cancel()
        _ = await held.result
        await ledger.close()
    }

    /// An answer that comes after its call was given up on is kept and
    /// taken by the next ask of the key, without a second call.
    @Test func aLateAnswerIsTakenWithoutAnotherCall() async throws {
        let gateway = SilentGateway()
        gateway.slow.withLock { $0 = .milliseconds(1_500) }
        // The gateway taken as down until ~2 s, the key held: the answer in
        // hand at ~1.5 s is taken all the same.
        let h = try Self.ledger(gateway, timeout: 1, retryBase: .seconds(1))
        try await Self.withCards(h.ledger, ["a"], plan: .free)
        gateway.silent.withLock { $0 = ["purchase:"] }
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        }
        let ledger = h.ledger
        #expect(await eventually { ledger.gatewayLateOutcomes.withLock { !$0.isEmpty } })
        let bought = try await h.ledger.purchaseCredits(accountID: "a", amountMicros: 5_000_000, key: "buy", actor: "t")
        #expect(bought.charge.status == .succeeded)
        #expect(gateway.calls.withLock { $0 } == 1 && gateway.charges.withLock { $0 } == 1)
        #expect(await h.ledger.snapshot.accounts["a"]?.balance == 5_000_000)
        await h.ledger.close()
    }

    /// A request that charges is not applied while the gateway is taken as
    /// down: UNAVAILABLE with nothing committed (not a change applied and
    /// its caller told to try again).
    @Test func aRequestThatChargesIsNotAppliedWhileTheGatewayIsDown() async throws {
        let (_, h) = try await Self.withTheGatewayDown()
        let seq = await h.ledger.snapshot.lastSeq
        await #expect(throws: GatewayUnavailable.self) {
            try await h.ledger.changePlan(accountID: "b", to: .pro, key: "up", actor: "t")
        }
        let state = await h.ledger.snapshot
        #expect(state.lastSeq == seq && state.accounts["b"]?.lifecycle.plan == .free)
        await h.ledger.close()
    }

    /// A request whose payment needs no gateway — no method on file: the
    /// attempt records PAYMENT_METHOD_REQUIRED — goes ahead while the
    /// gateway is taken as down (a fourth diff review: it was refused).
    @Test func aRequestWithNothingToChargeGoesAheadWhileTheGatewayIsDown() async throws {
        let (gateway, h) = try await Self.withTheGatewayDown()
        _ = try await h.ledger.createAccount(id: "sales-led", plan: .free, actor: "t")  // no card
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 1_000_000_000
        terms.usageRateBasisPoints = 10_000
        let charge = try await h.ledger.setEnterpriseContract(accountID: "sales-led", terms: terms, actor: "ops")
        #expect(charge?.failureReason == "PAYMENT_METHOD_REQUIRED", "\(String(describing: charge))")
        #expect(await h.ledger.snapshot.accounts["sales-led"]?.lifecycle.plan == .enterprise)
        #expect(gateway.calls.withLock { $0 } == 1)
        await h.ledger.close()
    }
}
