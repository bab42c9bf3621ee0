import BillingCore
@testable import BillingLedger
import BillingProto
import Synchronization
import Testing

/// The account lifecycle through the ledger: journal, replay, checkpoints,
/// the test-mode gateway, and a period close interrupted between its invoice
/// and its charge.
@Suite struct LifecycleLedgerTests {
    static let good = TokenizedMethod(token: "tok_test_ok_1", kind: .card(brand: "visa", last4: "4242", expMonth: 12, expYear: 2099))
    static let declining = TokenizedMethod(token: "tok_test_decline_2", kind: .card(brand: "visa", last4: "0002", expMonth: 12, expYear: 2099))
    static let day: Int64 = 86_400

    /// Three months of a busy service: a trial that converts, one that pauses
    /// and comes back, an upgrade, a downgrade, purchases, a declined card,
    /// an Enterprise contract, and metered overage.
    static func busy(gateway: any PaymentGateway = TestPaymentGateway()) async throws -> (Harness, LedgerConfiguration) {
        var configuration = Fixtures.configuration(checkpointEvery: 1_000_000)
        configuration.trialCreditMicros = 7_000_000
        configuration.graceSeconds = 2 * day
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 1, day: 31, hour: 12)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: configuration,
                                logger: Fixtures.logger, gateway: gateway)
        let h = Harness(store: store, clock: clock, ledger: ledger)
        _ = try await ledger.createAccount(id: "converts", actor: "test")
        _ = try await ledger.createAccount(id: "pauses", actor: "test")
        _ = try await ledger.createAccount(id: "upgrades", plan: .free, actor: "test")
        _ = try await ledger.createAccount(id: "declined", plan: .pro, actor: "test")
        _ = try await ledger.createAccount(id: "big", plan: .pro, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "converts", method: good, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "upgrades", method: good, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "declined", method: declining, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "big", method: good, actor: "test")
        _ = try await ledger.purchaseCredits(accountID: "upgrades", amountMicros: 3_000_000, key: "buy-1", actor: "test")
        for index in 0..<5 {
            _ = try await h.debit(Fixtures.command(account: "declined", key: "d-\(index)", micros: 1_000_000, run: "r-\(index)"))
            _ = try await h.debit(Fixtures.command(account: "big", key: "b-\(index)", micros: 2_000_000, run: "r-\(index)"))
        }
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 900_000_000
        terms.usageRateBasisPoints = 5_000
        terms.contractReference = "E-1"
        try await ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        clock.advance(seconds: 10 * day)
        _ = try await ledger.changePlan(accountID: "upgrades", to: .pro, key: "up", actor: "test")
        for _ in 0..<9 {
            clock.advance(seconds: 10 * day)
            try await ledger.tick()
        }
        _ = try await ledger.changePlan(accountID: "pauses", to: .free, key: "free", actor: "test")
        _ = try await ledger.changePlan(accountID: "upgrades", to: .free, key: "down", actor: "test")
        return (h, configuration)
    }

    @Test func replayCheckpointAndAuditAgreeOnEverything() async throws {
        let (h, _) = try await Self.busy()
        let state = await h.ledger.snapshot
        // The scenario did what it says.
        #expect(state.accounts["converts"]?.lifecycle.status == .active)
        #expect(state.accounts["pauses"]?.lifecycle.plan == .free && state.accounts["pauses"]?.lifecycle.runsPaused == false)
        #expect(state.accounts["declined"]?.lifecycle.runsPaused == true)
        #expect(state.accounts["big"]?.lifecycle.plan == .enterprise)
        #expect(state.accounts["upgrades"]?.lifecycle.pendingChange?.plan == .free)
        #expect(state.invoices.count >= 10)
        #expect(state.invoices.values.contains { $0.invoice.status == .pastDue })

        // The journal replayed from scratch gives the same books.
        var fromScratch = LedgerState(plans: Fixtures.plans)
        for entry in h.journal() { try fromScratch.apply(entry) }
        #expect(fromScratch == state)
        // A checkpoint (through its bytes) gives them too; the bytes written
        // straight from the books are SwiftProtobuf's for the message.
        let bytes: [UInt8] = try state.checkpoint(writtenAtMicros: h.clock.nowMicros()).serializedBytes()
        let encoded = try state.encodedCheckpoint(writtenAtMicros: h.clock.nowMicros())
        #expect(encoded.bytes == bytes)
        #expect(encoded.seq == state.lastSeq && encoded.accounts == state.accounts.count)
        let restored = LedgerState(checkpoint: try Billing_Journal_V1_Checkpoint(serializedBytes: bytes), plans: Fixtures.plans)
        #expect(restored == state)
        #expect(try LedgerAudit.run(on: h.store, plans: Fixtures.plans).problems == [])
        // The clock's schedule, kept up to date entry by entry, says what the books say.
        #expect(state.scheduleIsCurrent && fromScratch.scheduleIsCurrent && restored.scheduleIsCurrent)
        // Numbers without gaps.
        #expect(state.invoices.keys.sorted() == Array(1...Int64(state.invoices.count)))
        await h.ledger.close()
    }

    /// A month's end for many accounts at once: each period closes exactly
    /// once, in (due time, account) order, and each invoice is charged once.
    @Test func manyPeriodsEndingTogetherCloseOnceEachInOrder() async throws {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 3, day: 1)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        let ids = (0..<300).map { "acct-\(String($0, radix: 7))" }  // not created in sorted order
        for (index, id) in ids.enumerated() {
            _ = try await ledger.createAccount(id: id, plan: .pro, actor: "test")
            if index % 2 == 0 { _ = try await ledger.setPaymentMethod(accountID: id, method: Self.good, actor: "test") }
            if index % 3 == 0 { clock.advance(seconds: 60) }  // three accounts per anchor minute
        }
        #expect(try await ledger.tick().isEmpty)
        clock.advance(seconds: 32 * Self.day)
        let transitions = try await ledger.tick()
        let closes = transitions.filter { $0.kind == "PERIOD_CLOSED" }
        #expect(closes.count == ids.count)
        #expect(Set(closes.map(\.accountID)) == Set(ids))
        #expect(closes.map { "\($0.at) \($0.accountID)" } == closes.map { "\($0.at) \($0.accountID)" }.sorted())
        #expect(transitions.filter { $0.kind == "PAYMENT_SUCCEEDED" }.count == ids.count / 2)
        #expect(transitions.filter { $0.kind == "PAYMENT_FAILED" }.count == ids.count / 2)
        let state = await ledger.snapshot
        #expect(state.scheduleIsCurrent)
        #expect(state.schedule.owedInvoices.isEmpty)
        #expect(try await ledger.tick().isEmpty)
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
        await ledger.close()
    }

    @Test func theEnterprisePeriodBillsTheContractAndDiscountedUsage() async throws {
        let (h, _) = try await Self.busy()
        let state = await h.ledger.snapshot
        let big = try #require(state.accounts["big"])
        // The contract came the second Pro's period began: the whole period's
        // difference ($900 - $49), charged then, as an upgrade is.
        let upgrade = try #require(big.invoiceSequences.first.flatMap { state.invoices[$0]?.invoice })
        #expect(upgrade.kind == .planChange && upgrade.contractReference == "E-1")
        #expect(upgrade.lineItems.map(\.amountMicros) == [851_000_000])
        #expect(upgrade.status == .paid)
        let first = try #require(big.invoiceSequences.dropFirst().first.flatMap { state.invoices[$0]?.invoice })
        // $10 of overage at 50% beside the $900 contract price.
        #expect(first.lineItems.map(\.amountMicros) == [900_000_000, 5_000_000])
        #expect(first.status == .paid)
        await h.ledger.close()
    }

    @Test func aPeriodCloseInterruptedBeforeItsChargeIsChargedOnceAfterRestart() async throws {
        let gateway = RememberingGateway()
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 3, day: 1)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: gateway)
        _ = try await ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await ledger.setPaymentMethod(accountID: "acct", method: Self.good, actor: "test")
        clock.advance(seconds: 31 * Self.day)
        gateway.stallNext()
        // The period closes and its invoice is journaled; the charge hangs.
        let first = Task { try await ledger.tick() }
        await gateway.reached.wait()
        #expect(await ledger.snapshot.invoices[1]?.attemptPending == true)

        // Crash: the old process's writes are refused from now on.
        let restartedStore = store.restart()
        await ledger.close()
        let second = try Ledger(store: restartedStore, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: gateway)
        #expect(await second.snapshot.invoices[1]?.attemptPending == true)
        let transitions = try await second.tick()
        #expect(transitions.map(\.kind) == ["PAYMENT_SUCCEEDED"])
        gateway.release()
        _ = try? await first.value

        let state = await second.snapshot
        #expect(state.invoices.count == 1 && state.invoices[1]?.invoice.status == .paid)
        #expect(state.accounts["acct"]?.charges.count == 1)
        // Both attempts used the same gateway key: a real gateway charges once.
        let key = Ledger.paymentGatewayKey(account: "acct", invoiceID: "in_1", attempt: 1,
                                           amountMicros: try #require(state.invoices[1]).invoice.totalMicros)
        #expect(gateway.keys == [key, key])
        #expect(try LedgerAudit.run(on: restartedStore, plans: Fixtures.plans).problems == [])
        // Nothing more is due or owed.
        #expect(try await second.tick().isEmpty)
        await second.close()
    }

    @Test func requestsAreRefusedWithoutChangingAnything() async throws {
        let h = try Harness()
        _ = try await h.ledger.createAccount(id: "acct", plan: .free, actor: "test")
        let before = await h.ledger.snapshot
        await #expect(throws: AccountRequestRefused(reason: "CONTACT_SALES", message: AccountRefusal.contactSales.message)) {
            _ = try await h.ledger.changePlan(accountID: "acct", to: .enterprise, key: "", actor: "test")
        }
        await #expect(throws: AccountRequestRefused.self) {
            _ = try await h.ledger.changePlan(accountID: "acct", to: .pro, key: "", actor: "test")
        }
        await #expect(throws: AccountRequestRefused.self) {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5, key: "k", actor: "test")
        }
        await #expect(throws: AccountRequestRefused.self) {
            try await h.ledger.cancelPendingChange(accountID: "acct", actor: "test")
        }
        await #expect(throws: LedgerError.accountNotFound("nobody")) {
            _ = try await h.ledger.changePlan(accountID: "nobody", to: .pro, key: "", actor: "test")
        }
        #expect(await h.ledger.snapshot == before)
        await h.ledger.close()
    }

    @Test func testCardsDecideOutcomes() async throws {
        let gateway = TestPaymentGateway()
        let now: Int64 = 1_800_000_000
        func token(_ number: String) async throws -> String {
            try await gateway.tokenize(.card(number: number, expMonth: 1, expYear: 2099, holder: ""), now: now).token
        }
        let ok = try await token(TestPaymentGateway.alwaysSucceeds)
        let declines = try await token(TestPaymentGateway.alwaysDeclines)
        let once = try await token(TestPaymentGateway.failsOnce)
        let amount = Money(micros: 1)
        #expect(await gateway.charge(token: ok, amount: amount, idempotencyKey: "a") == .succeeded(reference: "gw_test_4"))
        #expect(await gateway.charge(token: declines, amount: amount, idempotencyKey: "b")
            == .failed(reason: "CARD_DECLINED", message: "the payment method was declined"))
        guard case .failed(reason: "PROCESSING_ERROR", _) = await gateway.charge(token: once, amount: amount, idempotencyKey: "c") else {
            Issue.record("the fail-once card did not fail first")
            return
        }
        // The same key answers the first outcome; a new attempt succeeds.
        guard case .failed = await gateway.charge(token: once, amount: amount, idempotencyKey: "c") else {
            Issue.record("a retried key was charged again")
            return
        }
        guard case .succeeded = await gateway.charge(token: once, amount: amount, idempotencyKey: "d") else {
            Issue.record("the fail-once card failed twice")
            return
        }
        await #expect(throws: GatewayRefusal.self) { _ = try await token("4242424242424241") }
        await #expect(throws: GatewayRefusal.self) {
            _ = try await gateway.tokenize(.card(number: TestPaymentGateway.alwaysSucceeds, expMonth: 1, expYear: 2020, holder: ""), now: now)
        }
        let card = try await gateway.tokenize(.card(number: "5555 5555 5555 4444", expMonth: 1, expYear: 2099, holder: ""), now: now)
        #expect(card.label == "mastercard •••• 4444")
        #expect(!card.token.contains("5555"))
        // A token it issued, handed back (a client-side SDK's), stands for
        // the same method; one it did not issue is refused (session 29:
        // any "tok_test_…" was taken, shown as "visa 4242 12/2099").
        #expect(try await gateway.tokenize(.token(card.token), now: now) == card)
        #expect(try await gateway.tokenize(.token(declines), now: now).label == "visa •••• 0002")
        for made in ["tok_test_4111111111111111", "tok_test_ok_1", "tok_test_ok_1~card.visa.42.12.2099", "pm_abc",
                     "tok_test_ok_~card.visa.4242.12.2099", "tok_test_ok_1~card.visa.4242.13.2099", "tok_test_ok_1~bank.67.X"] {
            await #expect(throws: GatewayRefusal.self, "\(made)") { _ = try await gateway.tokenize(.token(made), now: now) }
        }
        // A bank account's decline says so.
        let bank = try await gateway.tokenize(.bankAccount(bankName: "First Test Bank", routingNumber: "110000000",
                                                           accountNumber: TestPaymentGateway.decliningBankAccount, holder: ""), now: now)
        #expect(try await gateway.tokenize(.token(bank.token), now: now) == bank)
        #expect(await gateway.charge(token: bank.token, amount: amount, idempotencyKey: "e")
            == .failed(reason: "BANK_ACCOUNT_DECLINED", message: "the bank account was declined"))
    }
}

/// Plan terms journaled: a change applies from its entry on, and replay
/// prices earlier periods with the terms of their time.
@Suite struct JournaledPlansTests {
    @Test func aChangeOfTermsAppliesFromItsEntryOnAndReplaysExactly() async throws {
        let h = try Harness()
        let good = LifecycleLedgerTests.good
        _ = try await h.ledger.createAccount(id: "before", plan: .free, actor: "test")
        _ = try await h.ledger.createAccount(id: "after", plan: .free, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "before", method: good, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "after", method: good, actor: "test")
        // The same configuration again writes nothing.
        #expect(try await h.ledger.configurePlans(Fixtures.plans, actor: "test") == false)
        let early = try await h.ledger.changePlan(accountID: "before", to: .pro, key: "", actor: "test")

        var dearer = Fixtures.plans
        dearer.pro.monthlyPrice = Money(micros: 98_000_000)
        let entries = h.journal().count
        #expect(try await h.ledger.configurePlans(dearer, actor: "test"))
        #expect(h.journal().count == entries + 1)
        #expect(await h.ledger.plans == dearer)
        let late = try await h.ledger.changePlan(accountID: "after", to: .pro, key: "", actor: "test")
        // Both upgrades at the same instant: the later one costs twice as much.
        #expect(try #require(late.invoice).totalMicros == 2 * (try #require(early.invoice).totalMicros))

        // Replay from the built-in terms reaches the same books, and so does a checkpoint.
        var fromScratch = LedgerState(plans: Fixtures.plans)
        for entry in h.journal() { try fromScratch.apply(entry) }
        let state = await h.ledger.snapshot
        #expect(fromScratch == state && fromScratch.plans == dearer)
        let restored = LedgerState(checkpoint: state.checkpoint(writtenAtMicros: 1), plans: Fixtures.plans)
        #expect(restored == state && restored.plans == dearer)
        let reopened = try await h.restarted()
        #expect(await reopened.ledger.plans == dearer)
        await reopened.ledger.close()
    }
}

@Test func theKeyRingGenerationMovesWithEveryKeyChange() async throws {
    let h = try Harness()
    let start = h.ledger.keyRing.generation
    _ = try await h.ledger.createApiKey(keyID: "k1", name: "n", scopes: ["metering:read"], hash: Array(repeating: 1, count: 32),
                                        expiresUnix: 0, actor: "test")
    let created = h.ledger.keyRing.generation
    #expect(created > start)
    _ = try await h.ledger.revokeApiKey(keyID: "k1", actor: "test")
    #expect(h.ledger.keyRing.generation > created)
    await h.ledger.close()
}
