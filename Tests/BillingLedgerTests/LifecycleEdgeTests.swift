import BillingCore
@testable import BillingLedger
import BillingProto
import Foundation
import Testing

/// Edges of the lifecycle a review found wrong: gateway keys that two
/// accounts could share, a pending card that outlived the card paid with,
/// runs wiped by a period close that came after them, invoice sums that
/// could wrap.
@Suite struct LifecycleEdgeTests {
    static let day: Int64 = 86_400

    static func ledger(gateway: any PaymentGateway) throws -> Harness {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 2028, month: 1, day: 31, hour: 12)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: gateway)
        return Harness(store: store, clock: clock, ledger: ledger)
    }

    /// A Pro account `id` on a good card, in its first period.
    static func proAccountOnAGoodCard(_ id: String) async throws -> Harness {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: id, plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: id, method: LifecycleLedgerTests.good, actor: "test")
        return h
    }

    /// A Pro account on a declining card whose first period end has passed:
    /// its invoice failed, the account is past due.
    static func pastDue(_ account: String) async throws -> Harness {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: account, plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: account, method: LifecycleLedgerTests.declining, actor: "test")
        h.clock.advance(seconds: 32 * Self.day)
        _ = try await h.ledger.tick()
        return h
    }

    /// A Pro account "acct" on a good card, one debit (key "k-old", run
    /// "run-old") in its first period, and the clock 10 s past that period's
    /// end, before the ticker closes it; returns the end.
    static func proAccountPastItsPeriodEnd() async throws -> (Harness, end: Int64) {
        let h = try await Self.proAccountOnAGoodCard("acct")
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-old", micros: 50_000, run: "run-old"))
        let end = try #require(await h.ledger.snapshot.accounts["acct"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 10)
        return (h, end)
    }

    @Test func purchasesOfAccountsWhoseIdsAndKeysReadAlikeGoToTheGatewayUnderTheirOwnKeys() async throws {
        let gateway = RememberingGateway()
        let h = try Self.ledger(gateway: gateway)
        // "acme-eu" + "1" and "acme" + "eu-1" once both made "purchase-acme-eu-1".
        for account in ["acme-eu", "acme"] {
            _ = try await h.ledger.createAccount(id: account, plan: .free, actor: "test")
            _ = try await h.ledger.setPaymentMethod(accountID: account, method: LifecycleLedgerTests.good, actor: "test")
        }
        _ = try await h.ledger.purchaseCredits(accountID: "acme-eu", amountMicros: 5_000_000, key: "1", actor: "test")
        _ = try await h.ledger.purchaseCredits(accountID: "acme", amountMicros: 5_000_000, key: "eu-1", actor: "test")
        #expect(gateway.keys.count == 2)
        #expect(Set(gateway.keys).count == 2)
        #expect(Ledger.purchaseGatewayKey(account: "acme-eu", key: "1", amountMicros: 5)
            != Ledger.purchaseGatewayKey(account: "acme", key: "eu-1", amountMicros: 5))
        #expect(Ledger.purchaseGatewayKey(account: "acme", key: "1", amountMicros: 5)
            != Ledger.purchaseGatewayKey(account: "acme", key: "1", amountMicros: 6))
        // An invoice id issued again (a restored backup, a lost unsynced
        // tail, a second instance) names another account's or amount's attempt.
        #expect(Ledger.paymentGatewayKey(account: "acme", invoiceID: "in_7", attempt: 1, amountMicros: 49)
            != Ledger.paymentGatewayKey(account: "bigco", invoiceID: "in_7", attempt: 1, amountMicros: 49))
        #expect(Ledger.paymentGatewayKey(account: "acme", invoiceID: "in_7", attempt: 1, amountMicros: 49)
            != Ledger.paymentGatewayKey(account: "acme", invoiceID: "in_7", attempt: 1, amountMicros: 312))
        #expect(Ledger.paymentGatewayKey(account: "a:1", invoiceID: "in_7", attempt: 1, amountMicros: 49)
            != Ledger.paymentGatewayKey(account: "a", invoiceID: "1:in_7", attempt: 1, amountMicros: 49))
        await h.ledger.close()
    }

    @Test func aCardGivenToPayAnInvoiceIsNotReplacedByAnOlderPendingOne() async throws {
        let h = try await Self.pastDue("acct")
        let pastDue = try await h.ledger.invoices(of: "acct").filter { $0.status == .pastDue || $0.status == .open }
        let invoice = try #require(pastDue.last)
        // The schedule knows which invoices owe an attempt (kept where that changes).
        #expect(await h.ledger.snapshot.scheduleIsCurrent)
        // A replacement waits for the next cycle...
        let second = TokenizedMethod(token: "tok_test_ok_2", kind: .card(brand: "visa", last4: "1111", expMonth: 12, expYear: 2099))
        let set = try await h.ledger.setPaymentMethod(accountID: "acct", method: second, actor: "test")
        #expect(!set.appliedNow)
        // ...then the invoice is paid with a third card, on file at once.
        _ = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: LifecycleLedgerTests.good,
                                          key: "pay-1", actor: "test")
        var book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(await h.ledger.snapshot.scheduleIsCurrent)
        _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test")
        #expect(await h.ledger.snapshot.scheduleIsCurrent)
        #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        #expect(book.pendingPaymentMethod == nil)
        #expect(!book.lifecycle.hasPendingPaymentMethod)
        // The next period begins on the card paid with, not the older pending one.
        h.clock.advance(seconds: 32 * Self.day)
        _ = try await h.ledger.tick()
        book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.good.token)
        await h.ledger.close()
    }

    @Test func aCardDeclinedWhilePayingAnInvoiceDoesNotGoOnFile() async throws {
        let h = try await Self.pastDue("acct")
        let invoice = try #require(try await h.ledger.invoices(of: "acct").last { $0.status == .pastDue || $0.status == .open })
        let replacement = TokenizedMethod(token: "tok_test_ok_2", kind: .card(brand: "visa", last4: "1111", expMonth: 12, expYear: 2099))
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: replacement, actor: "test")
        let declining = TokenizedMethod(token: "tok_test_decline_3", kind: .card(brand: "visa", last4: "0003", expMonth: 12, expYear: 2099))
        let declined = await #expect(throws: PaymentDeclined.self) {
            try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: declining,
                                          key: "pay-declined", actor: "test")
        }
        let charge = try #require(declined?.charge)
        #expect(charge.status == .failed)
        #expect(charge.paymentMethodLabel.hasSuffix("0003"))  // the history says which card was tried
        let check = { (state: LedgerState) throws in
            let book = try #require(state.accounts["acct"])
            #expect(book.paymentMethod?.gatewayToken == LifecycleLedgerTests.declining.token)
            #expect(book.pendingPaymentMethod?.gatewayToken == replacement.token)
            #expect(book.lifecycle.hasPendingPaymentMethod)
        }
        try check(await h.ledger.snapshot)
        // Replayed from the journal alike.
        try check(try LedgerState.recover(from: h.store, plans: Fixtures.plans).state)
        await h.ledger.close()
    }

    @Test func aRunDebitedAfterAPeriodEndsButBeforeItClosesCountsInTheNewPeriod() async throws {
        let (h, end) = try await Self.proAccountPastItsPeriodEnd()
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-new", micros: 5, run: "run-new"))
        _ = try await h.ledger.tick()
        let book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(book.periodStart == end)
        #expect(book.runsInPeriod == [JournalKeyHash.run(account: "acct", run: "run-new")])
        await h.ledger.close()
    }

    /// Overage of a debit made after the period's end, before the clock
    /// closed it, is billed with the next period (where GetUsage puts it),
    /// not the closing one; it rides in checkpoints and replays the same.
    @Test func overageOfADebitAfterThePeriodsEndIsBilledWithTheNextPeriod() async throws {
        let (h, _) = try await Self.proAccountPastItsPeriodEnd()
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-new", micros: 100_000, run: "run-new"))
        let state = await h.ledger.snapshot
        let before = try #require(state.accounts["acct"])
        #expect((before.overage, before.overageAfterPeriodEnd) == (150_000, 100_000))
        // In a checkpoint, written by hand as SwiftProtobuf would, and back.
        let encoded = try state.encodedCheckpoint(writtenAtMicros: 1)
        #expect(try Billing_Journal_V1_Checkpoint(serializedBytes: encoded.bytes) == state.checkpoint(writtenAtMicros: 1))
        #expect(LedgerState(checkpoint: state.checkpoint(writtenAtMicros: 1), plans: Fixtures.plans).accounts["acct"] == before)

        _ = try await h.ledger.tick()
        var invoices = try await h.ledger.invoices(of: "acct")
        #expect(invoices.last?.lineItems.filter { $0.kind == .meteredUsage }.map(\.amountMicros) == [50_000])
        let after = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect((after.overage, after.overageAfterPeriodEnd) == (100_000, 0))
        // The next close bills it.
        h.clock.advance(seconds: 32 * Self.day)
        _ = try await h.ledger.tick()
        invoices = try await h.ledger.invoices(of: "acct")
        #expect(invoices.last?.lineItems.filter { $0.kind == .meteredUsage }.map(\.amountMicros) == [100_000])
        // The journal replays to the same books.
        try await h.expectJournalReplaysToLiveBooks()
        // A journal of an earlier build, whose close billed all 15, still replays (then nothing carries).
        var older = LedgerState(plans: Fixtures.plans)
        for var entry in h.disk.journal() {
            if case .lifecycle(var event)? = entry.event, case .periodEnded(var ended)? = event.event {
                ended.overageMicros = 150_000
                event.event = .periodEnded(ended)
                entry.lifecycle = event
                try older.apply(entry)
                break
            }
            try older.apply(entry)
        }
        #expect(older.accounts["acct"].map { ($0.overage, $0.overageAfterPeriodEnd) } ?? (-1, -1) == (0, 0))
    }

    @Test func contractsWhoseInvoiceWouldPassTheLargestAmountAreInvalid() {
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = Int64.max - 10
        #expect(LedgerState.validContract(terms))
        var line = Billing_V1_CustomInvoiceLine()
        line.description_p = "support"
        line.amountMicros = 10
        terms.customInvoiceLines = [line]
        #expect(LedgerState.validContract(terms))
        terms.customInvoiceLines[0].amountMicros = 11
        #expect(!LedgerState.validContract(terms))
    }

    /// What the gateway is asked for is whole cents: a new contract's price
    /// and custom lines, and a purchase, in fractions of a cent are refused
    /// and change nothing (a contract of $1,000.004 would be billed $1,000.00).
    @Test func contractsAndPurchasesInFractionsOfACentAreRefused() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        let before = await h.ledger.snapshot
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 1_000_004_000
        terms.usageRateBasisPoints = 10_000
        await #expect(throws: AccountRequestRefused.self) {
            try await h.ledger.setEnterpriseContract(accountID: "acct", terms: terms, actor: "ops")
        }
        terms.periodPriceMicros = 1_000_000_000
        var line = Billing_V1_CustomInvoiceLine()
        line.description_p = "support"
        line.amountMicros = 4_000
        terms.customInvoiceLines = [line]
        do {
            try await h.ledger.setEnterpriseContract(accountID: "acct", terms: terms, actor: "ops")
            Issue.record("a custom line of $0.004 was accepted")
        } catch let refused as AccountRequestRefused {
            #expect(refused.reason == "INVALID_CONTRACT")
        }
        do {
            _ = try await h.ledger.purchaseCredits(accountID: "acct", amountMicros: 1_000_005, key: "buy", actor: "test")
            Issue.record("a purchase of $1.000005 was accepted")
        } catch let refused as AccountRequestRefused {
            #expect(refused.reason == "INVALID_AMOUNT")
        }
        #expect(await h.ledger.snapshot == before)
        // In whole cents, accepted.
        terms.customInvoiceLines[0].amountMicros = 10_000
        try await h.ledger.setEnterpriseContract(accountID: "acct", terms: terms, actor: "ops")
        #expect(await h.ledger.snapshot.accounts["acct"]?.lifecycle.plan == .enterprise)
        await h.ledger.close()
    }

    /// An invoice whose lines pass Int64 (a contract's price and a huge
    /// period's usage at ten times its rate) is capped at the largest whole
    /// cent, never wrapped negative — and `billing verify` takes the cap for
    /// what it is (session 30, an admin review: it summed the lines with
    /// wrapping arithmetic and reported such an invoice for ever).
    @Test func anInvoiceWhoseLinesPassTheLargestAmountIsCappedNeverNegative() async throws {
        let h = try await Self.proAccountOnAGoodCard("big")
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = Ledger.maxContractAmountMicros  // the largest a contract may give
        terms.usageRateBasisPoints = 100_000  // usage billed at ten times its amount
        terms.contractReference = "E-max"
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        // Usage on Enterprise accrues as overage: 10^18 micros, billed 10^19 — past Int64.
        _ = try await h.debit(Fixtures.command(account: "big", key: "k", micros: 1_000_000_000_000_000_000, run: "r"))
        for _ in 0..<3 {
            h.clock.advance(seconds: 32 * Self.day)
            _ = try await h.ledger.tick()
        }
        let invoices = try await h.ledger.invoices(of: "big")
        let usage = try #require(invoices.first { $0.lineItems.count == 2 && $0.lineItems.contains { $0.amountMicros > terms.periodPriceMicros } })
        // The largest amount in whole cents.
        #expect(usage.totalMicros == Int64.max - 5_807)
        #expect(invoices.allSatisfy { $0.totalMicros >= 0 })
        let problems = try LedgerAudit.run(on: h.store.restart(), plans: Fixtures.plans).problems
        #expect(!problems.contains { $0.hasPrefix("invoice ") }, "\(problems)")
        await h.ledger.close()
    }

    /// A new contract's price and each custom line are at most $1,000,000,000
    /// a period: a mistyped price has no other ceiling and is charged at once.
    @Test func aContractAmountAboveABillionDollarsAPeriodIsRefused() async throws {
        let h = try await Self.proAccountOnAGoodCard("big")
        let before = await h.ledger.snapshot
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = Ledger.maxContractAmountMicros + 10_000
        await #expect(throws: AccountRequestRefused(.invalidArgument, reason: "INVALID_CONTRACT",
                                                    message: "contract.period_price_micros must be at most 1000000000000000 micros ($1,000,000,000 a period), got 1000000000010000",
                                                    field: "contract.period_price_micros")) {
            try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        }
        terms.periodPriceMicros = 0
        var line = Billing_V1_CustomInvoiceLine()
        line.description_p = "support"
        line.amountMicros = 10_000
        terms.customInvoiceLines = [line, line]
        terms.customInvoiceLines[1].amountMicros = Ledger.maxContractAmountMicros + 10_000
        do {
            try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
            Issue.record("a custom line over $1,000,000,000 was accepted")
        } catch let refused as AccountRequestRefused {
            #expect(refused.field == "contract.custom_invoice_lines[1].amount_micros")
        }
        #expect(await h.ledger.snapshot == before)
        terms.customInvoiceLines[1].amountMicros = Ledger.maxContractAmountMicros
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        #expect(await h.ledger.snapshot.accounts["big"]?.lifecycle.plan == .enterprise)
        await h.ledger.close()
    }

    @Test func anAccountThatMovesToFreeKeepsOneWorkspaceNotEveryOneItUsedBefore() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", actor: "test")  // a Pro trial: any number of workspaces
        _ = try await h.ledger.grantCredits(accountID: "acct", amountMicros: 1_000, kind: "promotional", note: "", actor: "test")
        for (index, workspace) in ["ws-a", "ws-b"].enumerated() {
            let outcome = try await h.debit(Fixtures.command(account: "acct", key: "trial-\(index)", micros: 5, workspace: workspace))
            #expect(outcome.accepted != nil)
        }
        _ = try await h.ledger.changePlan(accountID: "acct", to: .free, key: "free", actor: "test")
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "free-b", micros: 5, workspace: "ws-b")).accepted != nil)
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "free-a", micros: 5, workspace: "ws-a")).refusalReason
            == "WORKSPACE_LIMIT")
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "free-b2", micros: 5, workspace: "ws-b")).accepted != nil)
        #expect(await h.ledger.snapshot.accounts["acct"]?.workspaces == ["ws-b"])
        // Replay computes the same books.
        let restarted = try await h.restarted()
        #expect(await restarted.ledger.snapshot.accounts["acct"]?.workspaces == ["ws-b"])
        await restarted.ledger.close()
    }

    @Test func aContractThatLimitsAnEnterpriseAccountsWorkspacesCountsThemFromTheChangeOn() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "big", plan: .enterprise, actor: "ops")  // no limits
        _ = try await h.ledger.grantCredits(accountID: "big", amountMicros: 1_000, kind: "promotional", note: "", actor: "ops")
        for workspace in ["w1", "w2", "w3"] {
            #expect(try await h.debit(Fixtures.command(account: "big", key: "before-\(workspace)", micros: 5,
                                                       workspace: workspace)).accepted != nil)
        }
        var terms = Billing_V1_EnterpriseContract()
        terms.usageRateBasisPoints = 10_000
        terms.maxWorkspaces = 2
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        for workspace in ["w3", "w1"] {
            #expect(try await h.debit(Fixtures.command(account: "big", key: "after-\(workspace)", micros: 5,
                                                       workspace: workspace)).accepted != nil)
        }
        #expect(try await h.debit(Fixtures.command(account: "big", key: "after-w2", micros: 5, workspace: "w2")).refusalReason
            == "WORKSPACE_LIMIT")
        #expect(await h.ledger.snapshot.accounts["big"]?.workspaces == ["w1", "w3"])
        // The same limit set again (another field changed) keeps the count.
        terms.contractReference = "E-2"
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        #expect(try await h.debit(Fixtures.command(account: "big", key: "again-w2", micros: 5, workspace: "w2")).refusalReason
            == "WORKSPACE_LIMIT")
        let restarted = try await h.restarted()
        #expect(await restarted.ledger.snapshot.accounts["big"]?.workspaces == ["w1", "w3"])
        await restarted.ledger.close()
    }

    @Test func aContractBilledOnlyThroughCustomLinesCarriesItsReference() async throws {
        let h = try await Self.proAccountOnAGoodCard("big")
        var terms = Billing_V1_EnterpriseContract()
        terms.usageRateBasisPoints = 10_000
        terms.contractReference = "MSA-42"
        var line = Billing_V1_CustomInvoiceLine()
        line.description_p = "Dedicated support"
        line.amountMicros = 500_000_000
        terms.customInvoiceLines = [line]
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")  // no period price
        h.clock.advance(seconds: 32 * Self.day)
        _ = try await h.ledger.tick()
        let invoices = try await h.ledger.invoices(of: "big")
        let custom = try #require(invoices.first { $0.lineItems.contains { $0.amountMicros == 500_000_000 } })
        #expect(custom.contractReference == "MSA-42")
        await h.ledger.close()
    }

    @Test func aRetriedUpgradeAnswersWithItsOwnChargeNotALaterPayment() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .free, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.declining, actor: "test")
        h.clock.advance(seconds: 10 * Self.day)  // mid-period: the upgrade is prorated
        let first = try await h.ledger.changePlan(accountID: "acct", to: .pro, key: "up", actor: "test")
        let invoice = try #require(first.invoice)
        #expect(first.charge?.status == .failed)
        _ = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: LifecycleLedgerTests.good,
                                          key: "pay", actor: "test")
        let retry = try await h.ledger.changePlan(accountID: "acct", to: .pro, key: "up", actor: "test")
        #expect(retry.charge?.chargeID == first.charge?.chargeID)
        #expect(retry.charge?.status == .failed)
        await h.ledger.close()
    }

    /// Only AdvanceClock marks a clock as a test clock's: a lifecycle entry
    /// stamped ahead of the real clock (a system clock set back later) does
    /// not, so `billing serve` refuses only databases a test clock moved.
    @Test func onlyAdvanceClockMarksTheLedgersClockAsMoved() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")  // stamps it
        #expect(await h.ledger.testClockUnix > 0)
        #expect(await !h.ledger.testClockMoved)
        await h.ledger.close()
        let store = h.store.restart()
        let clock = TestClock(startMicros: h.clock.nowMicros())
        let testClocked = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                     logger: Fixtures.logger, gateway: TestPaymentGateway())
        _ = try await testClocked.advanceClock(to: clock.nowMicros() / 1_000_000 + 3_600, actor: "test")
        #expect(await testClocked.testClockMoved)
        await testClocked.close()  // a checkpoint: the mark must survive it, and replay
        #expect(try LedgerState.recover(from: store.restart(), plans: Fixtures.plans).state.testClockMoved)
        #expect(try h.replayedJournal().testClockMoved)
    }

    /// Journals written before `cancels_pending` replay as they were: the
    /// current plan chosen again while a change was pending changed nothing
    /// then, and must change nothing now; a cancelling entry naming another
    /// plan is refused as inconsistent.
    @Test func aPlanChangeEntryWithoutTheCancelMarkReplaysAsItDidBefore() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        _ = try await h.ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test")
        await h.ledger.close()
        var state = LedgerState(plans: Fixtures.plans)
        for entry in h.journal() { try state.apply(entry) }
        #expect(state.accounts["acct"]?.lifecycle.pendingChange != nil)
        func entry(_ plan: Billing_V1_Plan, cancels: Bool, seq: Int64) -> Billing_Journal_V1_Entry {
            var change = Billing_Journal_V1_PlanChangeRequested()
            change.toPlan = plan
            change.cancelsPending = cancels
            var lifecycle = Billing_Journal_V1_LifecycleEvent()
            lifecycle.accountID = "acct"
            lifecycle.atUnix = h.clock.nowMicros() / 1_000_000
            lifecycle.actor = "old-build"
            lifecycle.event = .planChange(change)
            var entry = Billing_Journal_V1_Entry()
            entry.seq = seq
            entry.atUnixMicros = h.clock.nowMicros()
            entry.lifecycle = lifecycle
            return entry
        }
        var old = state
        try old.apply(entry(.pro, cancels: false, seq: state.lastSeq + 1))
        #expect(old.accounts["acct"]?.lifecycle.pendingChange != nil)  // as an older build applied it
        var new = state
        try new.apply(entry(.pro, cancels: true, seq: state.lastSeq + 1))
        #expect(new.accounts["acct"]?.lifecycle.pendingChange == nil)
        var wrong = state
        #expect(throws: LedgerState.ApplyError.self) { try wrong.apply(entry(.enterprise, cancels: true, seq: state.lastSeq + 1)) }
    }

    /// A contract that moves a Pro account to Enterprise mid-period charges
    /// the rest of the period at once (an upgrade); its journal entry says
    /// so, and an entry of an earlier build (without the mark) replays as
    /// it did: nothing charged until the period's end.
    @Test func aContractSetMidPeriodIsChargedAtOnceAndOldEntriesReplayWithoutTheCharge() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        let period = try #require(await h.ledger.snapshot.accounts["acct"]).lifecycle.currentPeriod
        h.clock.advance(seconds: (period.end - period.start) / 2)
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 449_000_000
        terms.contractReference = "E-9"
        try await h.ledger.setEnterpriseContract(accountID: "acct", terms: terms, actor: "ops")
        let invoices = try await h.ledger.invoices(of: "acct")
        // Half of ($449 - $49) = $200, paid at once.
        #expect(invoices.count == 1)
        #expect(invoices.last?.lineItems.map(\.amountMicros) == [200_000_000])
        #expect(invoices.last?.status == .paid && invoices.last?.contractReference == "E-9")
        #expect(invoices.last?.kind == .planChange)
        // A contract priced no higher than Pro, with a custom line: the line's
        // share is still the move's invoice (a plan change, not a period's).
        _ = try await h.ledger.createAccount(id: "same", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "same", method: LifecycleLedgerTests.good, actor: "test")
        var same = Billing_V1_EnterpriseContract()
        same.periodPriceMicros = 49_000_000
        same.usageRateBasisPoints = 10_000
        var support = Billing_V1_CustomInvoiceLine()
        support.description_p = "Dedicated support"
        support.amountMicros = 300_000_000
        same.customInvoiceLines = [support]
        h.clock.advance(seconds: 86_400)
        try await h.ledger.setEnterpriseContract(accountID: "same", terms: same, actor: "ops")
        let moved = try #require(try await h.ledger.invoices(of: "same").first)
        #expect(moved.kind == .planChange && moved.lineItems.map(\.kind) == [.custom])
        try await h.expectJournalReplaysToLiveBooks()
        let journal = h.journal()
        // Without the mark (an earlier build's entry) the move charges nothing.
        var older = LedgerState(plans: Fixtures.plans)
        var marked = 0
        for var entry in journal {
            if case .lifecycle(var event)? = entry.event, case .enterpriseContract? = event.event {
                #expect(event.contractProrated)
                marked += 1
                event.contractProrated = false
                entry.lifecycle = event
            }
            try older.apply(entry)
            if older.accounts["acct"]?.lifecycle.plan == .enterprise { break }
        }
        #expect(marked == 1)
        #expect(older.accounts["acct"]?.lifecycle.plan == .enterprise)
        #expect(older.accounts["acct"]?.invoiceSequences == [])
    }

    /// Invoice lines are whole cents (what a gateway can charge): a
    /// proration rounds half-up, one worth less than half a cent is not
    /// issued at all; entries of earlier builds (without the mark) replay
    /// to the micro, as they were billed.
    /// A Free account "late" on a good card, the clock `seconds` before its
    /// first period's end; returns that period.
    static func freeAccount(secondsBeforeItsPeriodEnd seconds: Int64) async throws -> (Harness, BillingPeriod) {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "late", plan: .free, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "late", method: LifecycleLedgerTests.good, actor: "test")
        let period = try #require(await h.ledger.snapshot.accounts["late"]).lifecycle.currentPeriod
        h.clock.advance(seconds: period.end - h.clock.nowMicros() / 1_000_000 - seconds)
        return (h, period)
    }

    @Test func invoiceLinesAreRoundedToTheCentAndOldEntriesReplayToTheMicro() async throws {
        // 100 s before the end: $49 x 100 / period = 1,829.. micros -> $0.00, nothing issued.
        let (h, period) = try await Self.freeAccount(secondsBeforeItsPeriodEnd: 100)
        let late = try await h.ledger.changePlan(accountID: "late", to: .pro, key: "up", actor: "test")
        #expect(late.effect == .applied && late.invoice == nil && late.charge == nil)
        #expect(try await h.ledger.invoices(of: "late").isEmpty)
        // By hand: the period is 2028-01-31 to 02-29 (29 days, 2,505,600 s);
        // $49 x 100 / 2,505,600 = 1,955.6 micros -> 1,956, under half a cent.
        #expect(period.end - period.start == 29 * Self.day)
        let exact = Money(micros: 1_956)
        #expect(Proration.remainingShare(of: Money(micros: 49_000_000), at: period.end - 100, in: period) == exact)
        await h.ledger.close()

        // The same journal with the mark taken off replays to the micro.
        var older = LedgerState(plans: Fixtures.plans)
        for var entry in h.journal() {
            if case .lifecycle(var event)? = entry.event {
                event.invoiceLinesInCents = false
                entry.lifecycle = event
            }
            try older.apply(entry)
        }
        let invoice = try #require(older.accounts["late"]?.invoiceSequences.first.flatMap { older.invoices[$0]?.invoice })
        #expect(invoice.lineItems.map(\.amountMicros) == [exact.micros])
        #expect(invoice.totalMicros == exact.micros)
    }

    @Test func aProrationIsChargedInWholeCents() async throws {
        let (h, period) = try await Self.freeAccount(secondsBeforeItsPeriodEnd: 1_000)
        // By hand: $49 x 1,000 / 2,505,600 s = 19,556.2 micros -> 19,556,
        // then half-up to the cent: $0.02.
        #expect(period.end - period.start == 29 * Self.day)
        #expect(Proration.remainingShare(of: Money(micros: 49_000_000), at: period.end - 1_000, in: period).micros == 19_556)
        let upgraded = try await h.ledger.changePlan(accountID: "late", to: .pro, key: "up", actor: "test")
        let invoice = try #require(upgraded.invoice)
        #expect(invoice.lineItems.map(\.amountMicros) == [20_000])
        #expect(invoice.totalMicros == 20_000 && invoice.status == .paid)
        #expect(upgraded.charge?.amountMicros == 20_000)
        await h.ledger.close()
    }

    @Test func choosingTheCurrentPlanAgainCancelsAScheduledDowngrade() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        #expect(try await h.ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test").effect == .scheduled)
        #expect(await h.ledger.snapshot.accounts["acct"]?.lifecycle.pendingChange != nil)
        let kept = try await h.ledger.changePlan(accountID: "acct", to: .pro, key: "keep", actor: "test")
        #expect(kept.effect == .unchanged && kept.invoice == nil)
        #expect(await h.ledger.snapshot.accounts["acct"]?.lifecycle.pendingChange == nil)
        // Its retry answers alike and changes nothing.
        #expect(try await h.ledger.changePlan(accountID: "acct", to: .pro, key: "keep", actor: "test").effect == .unchanged)
        // The period ends on Pro, and replay agrees.
        h.clock.advance(seconds: 32 * Self.day)
        _ = try await h.ledger.tick()
        #expect(await h.ledger.snapshot.accounts["acct"]?.lifecycle.plan == .pro)
        let restarted = try await h.restarted()
        let book = await restarted.ledger.snapshot.accounts["acct"]
        #expect(book?.lifecycle.plan == .pro && book?.lifecycle.pendingChange == nil)
        await restarted.ledger.close()
    }

    @Test func aPeriodThatEndedWhileStoppedIsBilledAtTheTermsOfItsTimeNotTheNewOnes() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        // Stopped (cleanly); the period ends while down; the new build raises Pro's price.
        let store = h.store.restart()
        await h.ledger.close()
        h.clock.advance(seconds: 32 * Self.day)
        var raised = Fixtures.plans
        raised.pro.monthlyPrice = Money(micros: 59_000_000)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: h.clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        let (caughtUp, _, changed) = try await ledger.start(plans: raised, actor: "serve --plans")
        #expect(changed && caughtUp > 0)
        let invoices = try await ledger.invoices(of: "acct")
        // The period that began while stopped was billed at $49, the price when it began.
        #expect(invoices.count == 1 && invoices.first?.totalMicros == Fixtures.plans.pro.monthlyPrice.micros)
        #expect(await ledger.plans == raised)
        await ledger.close()
    }

    /// A downtime owing more transitions than one turn takes is caught up
    /// at start in several turns (it used to stop the server with "advance
    /// the clock in smaller steps"); the same books as in one turn.
    @Test func aStartOwingMoreTransitionsThanATurnTakesCatchesUpInSeveralTurns() async throws {
        func stoppedForThreeMonths() async throws -> (InMemoryLedgerStore, ManualClock) {
            let h = try Self.ledger(gateway: TestPaymentGateway())
            for id in ["a", "b", "c"] {
                _ = try await h.ledger.createAccount(id: id, plan: .pro, actor: "test")
                _ = try await h.ledger.setPaymentMethod(accountID: id, method: LifecycleLedgerTests.good, actor: "test")
            }
            let store = h.store.restart()
            await h.ledger.close()
            h.clock.advance(seconds: 95 * Self.day)
            return (store, h.clock)
        }
        var books: [[String: AccountBook]] = []
        for steps in [2, Ledger.maxTransitionsPerCall] {
            let (store, clock) = try await stoppedForThreeMonths()
            let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                    logger: Fixtures.logger, gateway: TestPaymentGateway())
            let (count, caughtUp, _) = try await ledger.start(plans: Fixtures.plans, actor: "serve", stepsPerTurn: steps)
            #expect(caughtUp.count == count)
            #expect(caughtUp.filter { $0.kind == "PERIOD_CLOSED" }.count == 9, "\(steps) a turn: \(caughtUp.map(\.kind))")
            let state = await ledger.snapshot
            #expect(state.accounts.values.allSatisfy { $0.lifecycle.nextDueTransition(now: clock.nowMicros() / 1_000_000) == nil })
            books.append(state.accounts)
            await ledger.close()
        }
        #expect(books[0] == books[1])
    }

    @Test func aPaymentKeyReusedForAnInvoiceThatDoesNotExistIsAReusedKey() async throws {
        let h = try await Self.pastDue("acct")
        let invoice = try #require(try await h.ledger.invoices(of: "acct").last { $0.status == .pastDue || $0.status == .open })
        _ = try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: LifecycleLedgerTests.good,
                                          key: "pay", actor: "test")
        let reused = await #expect(throws: AccountRequestRefused.self) {
            try await h.ledger.payInvoice(accountID: "acct", invoiceID: "in_999", newMethod: nil, key: "pay", actor: "test")
        }
        #expect(reused?.reason == "IDEMPOTENCY_KEY_REUSED")
        let missing = await #expect(throws: AccountRequestRefused.self) {
            try await h.ledger.payInvoice(accountID: "acct", invoiceID: "in_999", newMethod: nil, key: "other", actor: "test")
        }
        #expect(missing?.reason == "INVOICE_NOT_FOUND")
        // The original's retry (the same method too) still answers with its invoice, paid.
        #expect(try await h.ledger.payInvoice(accountID: "acct", invoiceID: invoice.invoiceID, newMethod: LifecycleLedgerTests.good,
                                              key: "pay", actor: "test").invoice.status == .paid)
        await h.ledger.close()
    }

    /// New runs are paused (DESIGN.md, the product docs): a run counted
    /// before the trial ended reports the rest of its usage, from credits.
    @Test func aNewRunAfterATrialEndsWithoutACardIsRefusedBeforeTheTickPausesIt() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "trial", actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "trial", amountMicros: 1_000, kind: "promotional", note: "", actor: "test")
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-1", micros: 5, run: "r-1")).accepted != nil)
        let trialEnd = try #require(await h.ledger.snapshot.accounts["trial"]?.lifecycle.trialEndsAt)
        h.clock.advance(seconds: trialEnd - h.clock.nowMicros() / 1_000_000 + 1)
        // No tick yet: the books still say "trial", the rules say paused.
        #expect(await h.ledger.snapshot.accounts["trial"]?.lifecycle.pauseReason == nil)
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-2", micros: 5, run: "r-2")).refusalReason
            == "ACCOUNT_PAUSED")
        let quoted = try #require(try await h.ledger.quote(Fixtures.command(account: "trial", key: "", micros: 5, run: "r-2")))
        #expect(!quoted.record.isAccepted)
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-3", micros: 5, run: "r-1")).accepted?.fromCreditsMicros == 5)
        let going = try #require(try await h.ledger.quote(Fixtures.command(account: "trial", key: "", micros: 5, run: "r-1")))
        #expect(going.record.isAccepted)
        _ = try await h.ledger.tick()
        #expect(await h.ledger.snapshot.accounts["trial"]?.lifecycle.pauseReason == .trialEndedWithoutPaymentMethod)
        // The same once the pause is applied; still from credits only (a trial accrues no overage).
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-4", micros: 5, run: "r-3")).refusalReason
            == "ACCOUNT_PAUSED")
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-5", micros: 5, run: "r-1")).accepted != nil)
        #expect(try await h.debit(Fixtures.command(account: "trial", key: "k-6", micros: 1_000, run: "r-1")).refusalReason
            == "INSUFFICIENT_CREDITS")
        // With a card on file the trial converts at its end: not refused meanwhile.
        _ = try await h.ledger.createAccount(id: "carded", actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "carded", method: LifecycleLedgerTests.good, actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "carded", amountMicros: 1_000, kind: "promotional", note: "", actor: "test")
        let cardedEnd = try #require(await h.ledger.snapshot.accounts["carded"]?.lifecycle.trialEndsAt)
        h.clock.advance(seconds: cardedEnd - h.clock.nowMicros() / 1_000_000 + 1)
        #expect(try await h.debit(Fixtures.command(account: "carded", key: "k-1", micros: 5, run: "r-1")).accepted != nil)
        await h.ledger.close()
    }

    /// A downgrade due at a period's end rules the debits made after that
    /// end, before the tick closes the period: Free's terms refuse what
    /// Pro's would have put on overage, and Free's run quota counts afresh.
    @Test func aDebitAfterADowngradeIsDueIsDecidedUnderTheNewPlanBeforeTheTick() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "acct", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "acct", amountMicros: 100_000, kind: "promotional", note: "", actor: "test")
        _ = try await h.ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test")
        // Before the end Pro rules: more than the credits goes on overage.
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "pro", micros: 150_000, run: "r-0")).accepted?.overageMicros == 50_000)
        let end = try #require(await h.ledger.snapshot.accounts["acct"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 1)
        // No tick yet: the books still say Pro, the rules say Free.
        #expect(await h.ledger.snapshot.accounts["acct"]?.lifecycle.plan == .pro)
        _ = try await h.ledger.grantCredits(accountID: "acct", amountMicros: 200_000, kind: "promotional", note: "", actor: "test")
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 250_000, run: "r-1")).refusalReason
            == "INSUFFICIENT_CREDITS")
        let quoted = try #require(try await h.ledger.quote(Fixtures.command(account: "acct", key: "", micros: 250_000, run: "r-1")))
        #expect(!quoted.record.isAccepted)
        for run in 1...Fixtures.plans.free.runQuota! {
            #expect(try await h.debit(Fixtures.command(account: "acct", key: "run-\(run)", micros: 50_000, run: "r-\(run)")).accepted != nil)
        }
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "one-more", micros: 50_000, run: "r-extra")).refusalReason
            == "RUN_QUOTA_EXCEEDED")
        _ = try await h.ledger.tick()
        let book = try #require(await h.ledger.snapshot.accounts["acct"])
        #expect(book.lifecycle.plan == .free)
        // The close billed Pro's overage only; nothing more accrued.
        #expect((book.overage, book.overageAfterPeriodEnd) == (0, 0))
        let invoices = try await h.ledger.invoices(of: "acct")
        #expect(invoices.last?.lineItems.filter { $0.kind == .meteredUsage }.map(\.amountMicros) == [50_000])
        // The decisions are journaled: the journal replays to the same books.
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// Past the grace every debit is refused, a run begun in it too: a run
    /// going on would accrue overage for an account that owes money.
    @Test func aDebitAfterAPastDueGraceEndsIsRefusedBeforeTheTickPausesIt() async throws {
        let h = try await Self.pastDue("late")  // runs go on for the grace
        let lifecycle = try #require(await h.ledger.snapshot.accounts["late"]?.lifecycle)
        let since = try #require(lifecycle.pastDueSince)
        #expect(try await h.debit(Fixtures.command(account: "late", key: "k-1", micros: 5, run: "r-1")).accepted != nil)
        h.clock.advance(seconds: since + Fixtures.configuration().graceSeconds - h.clock.nowMicros() / 1_000_000 + 1)
        #expect(await h.ledger.snapshot.accounts["late"]?.lifecycle.pauseReason == nil)
        #expect(try await h.debit(Fixtures.command(account: "late", key: "k-2", micros: 5, run: "r-2")).refusalReason
            == "ACCOUNT_PAUSED")
        #expect(try await h.debit(Fixtures.command(account: "late", key: "k-3", micros: 5, run: "r-1")).refusalReason
            == "ACCOUNT_PAUSED")
        _ = try await h.ledger.tick()
        #expect(await h.ledger.snapshot.accounts["late"]?.lifecycle.pauseReason == .pastDueGraceExpired)
        #expect(try await h.debit(Fixtures.command(account: "late", key: "k-4", micros: 5, run: "r-1")).refusalReason
            == "ACCOUNT_PAUSED")
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// The invoice closing an account's last Enterprise period (a scheduled
    /// move to Pro applied first) bills its usage at the contract's rate and
    /// carries the contract's reference; an entry of an earlier build
    /// (without the mark) replays as it was issued, without it.
    @Test func theInvoiceClosingTheLastEnterprisePeriodCarriesItsContractReference() async throws {
        let h = try await Self.proAccountOnAGoodCard("big")
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 900_000_000
        terms.usageRateBasisPoints = 5_000
        terms.contractReference = "MSA-42"
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        _ = try await h.debit(Fixtures.command(account: "big", key: "k-1", micros: 25_000_000, run: "r-1"))  // all overage
        _ = try await h.ledger.changePlan(accountID: "big", to: .pro, key: "down", actor: "test")
        let end = try #require(await h.ledger.snapshot.accounts["big"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 1)
        _ = try await h.ledger.tick()
        let closing = try #require(try await h.ledger.invoices(of: "big").first { $0.kind == .period })
        #expect(closing.lineItems.map(\.kind) == [.planFee, .meteredUsage])
        #expect(closing.lineItems.last?.amountMicros == 12_500_000)  // half of $25: the contract's rate
        #expect(closing.contractReference == "MSA-42")
        #expect(await h.ledger.snapshot.accounts["big"]?.lifecycle.plan == .pro)
        await h.ledger.close()
        // Replayed as written, and as an earlier build wrote it (no mark: no reference).
        var older = LedgerState(plans: Fixtures.plans)
        var current = LedgerState(plans: Fixtures.plans)
        for var entry in h.journal() {
            try current.apply(entry)
            if case .lifecycle(var event)? = entry.event {
                event.referenceClosedContract = false
                entry.lifecycle = event
            }
            try older.apply(entry)
        }
        #expect(current.invoices.values.first { $0.invoice.invoiceID == closing.invoiceID }?.invoice.contractReference == "MSA-42")
        #expect(older.invoices.values.first { $0.invoice.invoiceID == closing.invoiceID }?.invoice.contractReference == "")
    }

    /// A wall clock stepped back across a period end the ticker just closed:
    /// debits are not dated in the closed period (its run quota would start
    /// over for them — a review saw 7 runs in a period of 3), but at the
    /// account's current period's start; after a restart too (the period is
    /// in the books).
    @Test func aClockSteppedBackAcrossAClosedPeriodEndDoesNotRestartTheRunQuota() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "f", plan: .free, actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "f", amountMicros: 1_000_000, kind: "promotional", note: "", actor: "test")
        let end = try #require(await h.ledger.snapshot.accounts["f"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 5)
        _ = try await h.ledger.tick()  // the period closed
        var outcomes: [String] = []
        for run in 0..<4 {
            let outcome = try await h.debit(Fixtures.command(account: "f", key: "k-\(run)", micros: 5, run: "r-\(run)"))
            outcomes.append(outcome.refusalReason ?? "ok")
        }
        #expect(outcomes == ["ok", "ok", "ok", "RUN_QUOTA_EXCEEDED"])  // Free's 3 runs (Fixtures.plans)
        h.clock.stepBack(seconds: 10)  // before the period's end
        let late = try await h.debit(Fixtures.command(account: "f", key: "k-late", micros: 5, run: "r-late"))
        #expect(late.refusalReason == "RUN_QUOTA_EXCEEDED")
        let newest = try #require(h.journal().last)
        #expect(newest.atUnixMicros == end * 1_000_000, "dated at the current period's start")
        let restarted = try await h.restarted()
        let again = try await restarted.debit(Fixtures.command(account: "f", key: "k-again", micros: 5, run: "r-again"))
        #expect(again.refusalReason == "RUN_QUOTA_EXCEEDED")
        try await restarted.expectJournalReplaysToLiveBooks()
    }

    /// The same before the tick closes the period: debits after its end
    /// count their runs in the next period; a clock then stepped back into
    /// the old one dated debits there, and the next period's runs were
    /// cleared — counted afresh twice (a review: a test clock moved before a
    /// failed commit, then a restart). They are dated at the next period's
    /// start instead.
    @Test func aClockSteppedBackBeforeTheCloseDoesNotRestartTheRunQuota() async throws {
        let h = try Self.ledger(gateway: TestPaymentGateway())
        _ = try await h.ledger.createAccount(id: "f", plan: .free, actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "f", amountMicros: 1_000_000, kind: "promotional", note: "", actor: "test")
        let end = try #require(await h.ledger.snapshot.accounts["f"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 5)  // no tick: the period is not closed
        for run in 0..<3 {
            #expect(try await h.debit(Fixtures.command(account: "f", key: "k-\(run)", micros: 5, run: "r-\(run)")).accepted != nil)
        }
        h.clock.stepBack(seconds: 10)  // before the period's end
        let late = try await h.debit(Fixtures.command(account: "f", key: "k-late", micros: 5, run: "r-late"))
        #expect(late.refusalReason == "RUN_QUOTA_EXCEEDED")  // Free's 3 runs, counted in the next period
        #expect(try #require(h.journal().last).atUnixMicros == end * 1_000_000, "dated at the next period's start")
        #expect(await h.ledger.snapshot.accounts["f"]?.runsInPeriod.count == 3)
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// A plans file may price Free: a trial moving to it (Free at once, its
    /// first period charged) needs a card as any paid plan does, refused
    /// before anything is journaled; with one it goes through.
    @Test func aTrialMovingToAPricedFreeNeedsACard() async throws {
        var plans = Fixtures.plans
        plans.free.monthlyPrice = Money(micros: 5_000_000)
        let h = try Harness(plans: plans)
        _ = try await h.ledger.createAccount(id: "t", actor: "test")
        #expect(await h.ledger.snapshot.accounts["t"]?.lifecycle.trialEndsAt != nil)
        let entries = h.journal().count
        await #expect(throws: AccountRequestRefused(reason: "PAYMENT_METHOD_REQUIRED",
                                                    message: "add a payment method before switching to a paid plan")) {
            _ = try await h.ledger.changePlan(accountID: "t", to: .free, key: "", actor: "test")
        }
        #expect(h.journal().count == entries)
        _ = try await h.ledger.setPaymentMethod(accountID: "t", method: LifecycleLedgerTests.good, actor: "test")
        let moved = try await h.ledger.changePlan(accountID: "t", to: .free, key: "", actor: "test")
        #expect(moved.invoice?.totalMicros == 5_000_000 && moved.charge?.status == .succeeded)
        // A paused trial keeps its way out to Free (a card would restart it on
        // Pro, charged): Free starts, its invoice owed, past due until paid.
        _ = try await h.ledger.createAccount(id: "paused", actor: "test")
        let trialEnd = try #require(await h.ledger.snapshot.accounts["paused"]?.lifecycle.trialEndsAt)
        h.clock.advance(seconds: trialEnd - h.clock.nowMicros() / 1_000_000 + 1)
        // (Not ticked yet: the request pauses the ended trial before deciding.)
        let out = try await h.ledger.changePlan(accountID: "paused", to: .free, key: "", actor: "test")
        #expect(out.invoice?.totalMicros == 5_000_000 && out.charge?.status == .failed)
        let lifecycle = try #require(await h.ledger.snapshot.accounts["paused"]?.lifecycle)
        #expect(lifecycle.plan == .free && lifecycle.pauseReason == nil && lifecycle.pastDueSince != nil)
        await h.ledger.close()
    }

    /// A debit an earlier build (before session 22) decided in the second
    /// after a period's end, before its close, under the books' plan (Pro,
    /// overage) while a move to Free was due: `billing verify` takes it as
    /// valid, since the entry does not say which rule decided it.
    @Test func verifyTakesADebitAnOlderBuildDecidedInTheCloseWindowUnderTheBooksPlan() async throws {
        let h = try await Self.proAccountOnAGoodCard("acct")
        _ = try await h.ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test")
        let end = try #require(await h.ledger.snapshot.accounts["acct"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 1)
        let last = await h.ledger.lastSeq
        await h.ledger.close()
        var debit = Billing_Journal_V1_DebitAccepted()
        (debit.accountID, debit.idempotencyKey, debit.runID, debit.requestHash) = ("acct", "old", "r-old", Data([1]))
        var line = Billing_Journal_V1_PricedLine()
        line.amountMicros = 5_000
        debit.lines = [line]
        (debit.totalMicros, debit.overageMicros, debit.newRun) = (5_000, 5_000, true)
        var entry = Billing_Journal_V1_Entry()
        (entry.seq, entry.atUnixMicros, entry.debitAccepted) = (last + 1, h.clock.nowMicros(), debit)
        let store = h.store.restart()
        try store.append([JournalRecord(entry)])
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
    }

    /// `billing verify` judges a debit's overage by the terms it was decided
    /// under: past the period's end, before the close, a scheduled move's
    /// (here from an Enterprise whose plans file gives it no overage to Pro,
    /// which has it) — not the plan the books still show.
    @Test func verifyJudgesADebitInTheCloseWindowByTheTermsItWasDecidedUnder() async throws {
        var plans = Fixtures.plans
        plans.enterprise.accruesOverage = false
        let h = try Harness(plans: plans)
        _ = try await h.ledger.createAccount(id: "big", plan: .pro, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "big", method: LifecycleLedgerTests.good, actor: "test")
        var terms = Billing_V1_EnterpriseContract()
        terms.periodPriceMicros = 900_000_000
        terms.usageRateBasisPoints = 5_000
        try await h.ledger.setEnterpriseContract(accountID: "big", terms: terms, actor: "ops")
        _ = try await h.ledger.changePlan(accountID: "big", to: .pro, key: "down", actor: "test")
        let end = try #require(await h.ledger.snapshot.accounts["big"]).lifecycle.currentPeriod.end
        h.clock.advance(seconds: end - h.clock.nowMicros() / 1_000_000 + 10)  // past the end, no tick yet
        let outcome = try await h.debit(Fixtures.command(account: "big", key: "late", micros: 5_000, run: "r-late"))
        #expect(outcome.accepted?.overageMicros == 5_000, "decided under Pro's terms: overage")
        #expect(try LedgerAudit.run(on: h.store, plans: plans).problems == [])
        await h.ledger.close()
    }

    /// A grace configured at a start (`--grace-days`, journaled with the
    /// terms) applies to every account — one created with another grace,
    /// whose grace already runs, included — and replays and checkpoints
    /// exactly; the same grace again writes nothing.
    @Test func aGraceJournaledWithTheTermsAppliesToEveryAccountAlreadyPastDueIncluded() async throws {
        let h = try await Self.pastDue("late")  // created with the configuration's 7 days, past due now
        let created = Fixtures.configuration().graceSeconds
        let since = try #require(await h.ledger.snapshot.accounts["late"]?.lifecycle.pastDueSince)
        #expect(await h.ledger.snapshot.accounts["late"]?.lifecycle.graceSeconds == created)
        let shorter = Self.day
        #expect(created > 2 * shorter)
        #expect(try await h.ledger.configurePlans(Fixtures.plans, graceSeconds: shorter, actor: "serve"))
        #expect(try await h.ledger.configurePlans(Fixtures.plans, graceSeconds: shorter, actor: "serve") == false)
        #expect(try await h.ledger.configurePlans(Fixtures.plans, actor: "test") == false)  // (keeps the grace)
        let state = await h.ledger.snapshot
        #expect(state.configuredGraceSeconds == shorter && state.accounts["late"]?.lifecycle.graceSeconds == shorter)
        // An account created afterwards gets it too (not the configuration's).
        _ = try await h.ledger.createAccount(id: "newer", plan: .pro, actor: "test")
        #expect(await h.ledger.snapshot.accounts["newer"]?.lifecycle.graceSeconds == shorter)
        // Runs pause at the failure plus the new grace, not the account's first.
        h.clock.advance(seconds: since + shorter - h.clock.nowMicros() / 1_000_000)
        _ = try await h.ledger.tick()
        #expect(await h.ledger.snapshot.accounts["late"]?.lifecycle.pauseReason == .pastDueGraceExpired)
        // A checkpoint keeps the configured grace; the journal replays to the same books.
        let live = await h.ledger.snapshot
        let restored = LedgerState(checkpoint: live.checkpoint(writtenAtMicros: 1), plans: Fixtures.plans)
        #expect(restored == live && restored.configuredGraceSeconds == shorter)
        try await h.expectJournalReplaysToLiveBooks()
    }

    /// A grant waits for a purchase under way at the gateway: the purchase
    /// checked its credits fit the balance before the call; a grant in that
    /// gap made them overflow after the card was charged.
    @Test func aGrantWaitsForAPurchaseAtTheGatewaySoTheChargedCreditsAlwaysFit() async throws {
        let gateway = RememberingGateway()
        let h = try Self.ledger(gateway: gateway)
        _ = try await h.ledger.createAccount(id: "acct", plan: .free, actor: "test")
        _ = try await h.ledger.setPaymentMethod(accountID: "acct", method: LifecycleLedgerTests.good, actor: "test")
        _ = try await h.ledger.grantCredits(accountID: "acct", amountMicros: .max - 10_000_000, kind: "promotional",
                                            note: "", actor: "test")
        gateway.stallNext()
        let ledger = h.ledger
        let purchase = Task { try await ledger.purchaseCredits(accountID: "acct", amountMicros: 5_000_000, key: "buy", actor: "test") }
        await gateway.reached.wait()  // charging the card now
        let granted = AsyncLatch()
        let grant = Task {
            defer { granted.open() }
            return try await ledger.grantCredits(accountID: "acct", amountMicros: 6_000_000, kind: "promotional",
                                                 note: "", actor: "test")
        }
        // Let the grant finish first if it is going to.
        _ = await eventually(tries: 2_000, atLeast: .milliseconds(200)) { granted.isOpen }
        gateway.release()
        let bought = try await purchase.value  // credited: the grant did not get in between
        #expect(bought.balance == .max - 5_000_000)
        await #expect(throws: LedgerError.invalid("the balance would overflow")) { _ = try await grant.value }
        #expect(await h.ledger.account("acct")?.balance == .max - 5_000_000)
        await h.ledger.close()
    }
    /// A trial that would end after 9999-12-31 (a test clock moved there)
    /// is refused with a reason, nothing written; a plan account is made.
    /// Before: the entry reached the books, which refused it — INTERNAL.
    @Test func aTrialEndingPastTheCalendarIsRefusedWithNothingWritten() async throws {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 9999, month: 12, day: 25, hour: 12)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        let before = await ledger.snapshot.lastSeq
        await #expect(throws: AccountRequestRefused(reason: "TRIAL_BEYOND_CALENDAR",
                                                    message: "a trial started now would end after 9999-12-31, the last date the service keeps; create the account on a plan instead")) {
            try await ledger.createAccount(id: "late", actor: "test")
        }
        #expect(await ledger.snapshot.lastSeq == before)
        #expect(await ledger.snapshot.accounts["late"] == nil)
        _ = try await ledger.createAccount(id: "late", plan: .pro, actor: "test")
        #expect(await ledger.snapshot.accounts["late"] != nil)
        // Fourteen days earlier its trial fits (it ends 9999-12-25).
        clock.stepBack(seconds: 14 * Self.day)
        _ = try await ledger.createAccount(id: "early", actor: "test")
        await ledger.close()
    }
    /// A downgrade made in the calendar's last month takes effect at its
    /// period's end, in year 10000: a checkpoint holding it is loaded, not
    /// passed over as damaged (`LedgerState.sound`), and `billing verify`
    /// finds nothing. Before: every start replayed the journal from its
    /// first entry and verify reported "books no ledger writes".
    @Test func aDowngradeDueAfterTheCalendarsLastDayIsCheckpointedAsSound() async throws {
        let store = InMemoryLedgerStore()
        let clock = ManualClock(year: 9999, month: 12, day: 10, hour: 12)
        let ledger = try Ledger(store: store, plans: Fixtures.plans, clock: clock, configuration: Fixtures.configuration(),
                                logger: Fixtures.logger, gateway: TestPaymentGateway())
        _ = try await ledger.createAccount(id: "late", plan: .pro, actor: "test")
        _ = try await ledger.changePlan(accountID: "late", to: .free, key: "down", actor: "test")
        let effective = try #require(await ledger.snapshot.accounts["late"]?.lifecycle.pendingChange?.effectiveAt)
        #expect(effective > LedgerState.latestInstantUnix)
        await ledger.close()  // writes a checkpoint of everything so far
        let restarted = store.restart()
        let checkpoint = try #require(try restarted.latestCheckpoint())
        #expect(LedgerState.usable(checkpoint))
        #expect(try LedgerState.recover(from: restarted).replayed == 0)
        #expect(try LedgerAudit.run(on: restarted, plans: Fixtures.plans).problems.isEmpty)
    }
}
