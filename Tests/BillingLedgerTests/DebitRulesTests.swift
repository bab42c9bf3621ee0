import BillingCore
@testable import BillingLedger
import BillingProto
import Testing

/// The rules of a debit (DESIGN.md "Rules of the domain", issue 3's precedence),
/// one at a time, with Fixtures.plans: Free 3 runs and one workspace, Pro and
/// Trial 8 runs.
@Suite struct DebitRulesTests {
    @Test func unknownAccountIsRefusedAndRecorded() async throws {
        let h = try Harness()
        let command = try Fixtures.command(account: "nobody", key: "k-1", micros: 100)
        let outcome = try await h.debit(command)
        #expect(outcome.refusalReason == "ACCOUNT_NOT_FOUND")
        let entry = try #require(outcome.entry)
        guard case .debitRefused(let refused) = entry.event else {
            Issue.record("expected a refused debit entry, got \(String(describing: entry.event))")
            return
        }
        #expect(refused.code == Int32(StatusCode.notFound.rawValue))
        #expect(h.debitEntries(key: "k-1") == [entry])
        // It stays refused under its key, even once the account exists.
        try await h.openAccount("nobody", plan: "pro", credits: 1_000)
        let retried = try await h.debit(command)
        #expect(retried.refusalReason == "ACCOUNT_NOT_FOUND")
        #expect(retried.entry == outcome.entry)
        #expect(await h.balance("nobody") == 1_000)
    }

    /// Issue 3: unknown account comes before a reused key in the precedence.
    @Test func unknownAccountComesBeforeKeyReuse() async throws {
        let h = try Harness()
        let first = try Fixtures.command(account: "nobody", key: "k-1", micros: 100)
        let other = try Fixtures.command(account: "nobody", key: "k-1", micros: 200)
        #expect(try await h.debit(first).refusalReason == "ACCOUNT_NOT_FOUND")
        let outcome = try await h.debit(other)
        #expect(outcome.isUnknownAccount,
                "a debit of an unknown account with a reused key must be refused ACCOUNT_NOT_FOUND, was \(outcome)")
        #expect(h.debitEntries(key: "k-1").count == 1)
    }

    @Test func workspaceLimitComesBeforeQuotaWhichComesBeforeCredits() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "free", credits: 300)
        for run in 1...3 {
            #expect(try await h.debit(Fixtures.command(account: "acct", key: "use-\(run)", micros: 50, run: "run-\(run)")).accepted != nil)
        }
        let before = await h.ledger.account("acct")
        #expect(before?.balance == 150)
        #expect(before?.runsInPeriod.count == 3)

        // A second workspace, a fourth run and more than the balance: the workspace wins.
        let everything = try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 1_000, workspace: "ws-2", run: "run-4"))
        #expect(everything.refusalReason == "WORKSPACE_LIMIT")
        // The same workspace: the run quota comes next.
        let quotaAndCredits = try await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 1_000, run: "run-4"))
        #expect(quotaAndCredits.refusalReason == "RUN_QUOTA_EXCEEDED")
        // A run already counted: only the credits are short.
        let credits = try await h.debit(Fixtures.command(account: "acct", key: "k-3", micros: 1_000, run: "run-1"))
        #expect(credits.refusalReason == "INSUFFICIENT_CREDITS")

        let codes = [everything, quotaAndCredits, credits].compactMap { outcome -> Int32? in
            if case .debitRefused(let refused)? = outcome.entry?.event { refused.code } else { nil }
        }
        #expect(codes == [StatusCode.failedPrecondition, .resourceExhausted, .failedPrecondition].map { Int32($0.rawValue) })
        // Refusals change nothing but the record of their keys.
        #expect(await h.ledger.account("acct") == before)
        let exact = try await h.debit(Fixtures.command(account: "acct", key: "k-4", micros: 150, run: "run-1"))
        #expect(exact.accepted?.balanceAfterMicros == 0)
    }

    @Test func retryReturnsTheSameEntryAndChargesOnce() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1_000))
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let command = try Fixtures.command(account: "acct", key: "k-1", micros: 100)
        let first = try await h.debit(command)
        #expect(first.accepted?.balanceAfterMicros == 900)

        #expect(try await h.debit(command).entry == first.entry, "retry answered from the hot cache")
        // Two checkpoints index k-1 and then drop its generation from memory.
        try await h.ledger.checkpoint()
        #expect(h.ledger.cache.lookup(account: "acct", key: "k-1").record?.entry == first.entry, "the newest indexed generation stays")
        for key in ["k-2", "k-3"] { _ = try await h.debit(Fixtures.command(account: "acct", key: key, micros: 5)) }
        try await h.ledger.checkpoint()
        #expect(h.ledger.cache.lookup(account: "acct", key: "k-1").record == nil)
        #expect(try h.store.debitEntry(accountID: "acct", idempotencyKey: "k-1") == first.entry)
        #expect(try await h.debit(command).entry == first.entry, "retry answered from the store")

        // Many at once: one entry, one charge.
        let concurrent = try Fixtures.command(account: "acct", key: "k-4", micros: 200)
        let seqs = try await withThrowingTaskGroup(of: Int64?.self) { group in
            for _ in 0..<16 { group.addTask { try await h.debit(concurrent).entry?.seq } }
            return try await group.reduce(into: Set<Int64?>()) { $0.insert($1) }
        }
        #expect(seqs.count == 1 && !seqs.contains(nil), "\(seqs)")

        let restarted = try await h.restarted()
        #expect(try await restarted.debit(command).entry == first.entry, "retry after a restart")
        #expect(await restarted.balance("acct") == 1_000 - 100 - 10 - 200)
        #expect(h.debitEntries(key: "k-1").count == 1)
        #expect(h.debitEntries(key: "k-4").count == 1)
        await restarted.ledger.close()
    }

    @Test func differentRequestWithTheSameKeyIsKeyReused() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 1))
        try await h.openAccount("acct", plan: "free", credits: 1_000)
        let accepted = try Fixtures.command(account: "acct", key: "k-1", micros: 100)
        let original = try await h.debit(accepted)
        let refused = try Fixtures.command(account: "acct", key: "k-2", micros: 5_000)
        let refusal = try await h.debit(refused)
        #expect(refusal.refusalReason == "INSUFFICIENT_CREDITS")
        let seq = await h.ledger.lastSeq

        // From the hot cache, then (a restart empties it) from the store.
        func check(_ harness: Harness) async throws {
            let reused = try await harness.debit(Fixtures.command(account: "acct", key: "k-1", micros: 100, run: "run-2"))
            guard case .keyReused(let cited) = reused else {
                Issue.record("a different request with an accepted key: \(reused)")
                return
            }
            #expect(cited.entry == original.entry)
            // A refusal stays a refusal: a cheaper request under the refused key is not charged.
            let cheaper = try await harness.debit(Fixtures.command(account: "acct", key: "k-2", micros: 5))
            guard case .keyReused(let refusedOriginal) = cheaper else {
                Issue.record("a different request with a refused key: \(cheaper)")
                return
            }
            #expect(refusedOriginal.entry == refusal.entry)
            #expect(try await harness.debit(refused).entry == refusal.entry)
            #expect(await harness.ledger.lastSeq == seq, "key reuse recorded nothing")
            #expect(await harness.balance("acct") == 900)
        }
        try await check(h)
        let restarted = try await h.restarted()
        // In memory: only the debits after the newest checkpoint (the rest are
        // found through the index; the check below answers from both).
        let checkpointed = h.disk.latestCheckpointSeq() ?? 0
        let debitsAfter = h.journal().filter { $0.seq > checkpointed && SimulatedDisk.debitKey($0) != nil }.count
        #expect(restarted.ledger.cache.count == debitsAfter)
        try await check(restarted)
        await restarted.ledger.close()
    }

    @Test(arguments: ["pro", "enterprise", "trial", "free"])
    func overageAccruesOnlyOnPlansThatAllowIt(plan: String) async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: plan, credits: 100)
        let outcome = try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 250))
        let book = await h.ledger.account("acct")
        if plan == "pro" || plan == "enterprise" {
            let debit = try #require(outcome.accepted, "\(plan): \(outcome)")
            #expect((debit.fromCreditsMicros, debit.overageMicros, debit.balanceAfterMicros) == (100, 150, 0))
            let next = try #require(try await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 50)).accepted)
            #expect((next.fromCreditsMicros, next.overageMicros) == (0, 50))
            #expect(await h.ledger.account("acct").map { ($0.balance, $0.overage) } ?? (-1, -1) == (0, 200))
        } else {
            #expect(outcome.refusalReason == "INSUFFICIENT_CREDITS", "\(plan)")
            #expect(book?.balance == 100)
            #expect(book?.overage == 0)
            // What the credits cover still goes through.
            #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 100)).accepted?.balanceAfterMicros == 0)
        }
    }

    @Test func aRunCountsOnceAgainstTheQuota() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "free", credits: 10_000)
        var newRuns: [Bool] = []
        for (index, run) in ["run-1", "run-1", "run-2", "run-1", "run-3", "run-2", "run-3"].enumerated() {
            let debit = try #require(try await h.debit(Fixtures.command(account: "acct", key: "k-\(index)", micros: 10, run: run)).accepted)
            newRuns.append(debit.newRun)
        }
        #expect(newRuns == [true, false, true, false, true, false, false])
        #expect(await h.ledger.account("acct")?.runsInPeriod == Self.runHashes("acct", ["run-1", "run-2", "run-3"]))
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-new", micros: 10, run: "run-4")).refusalReason == "RUN_QUOTA_EXCEEDED")
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-old", micros: 10, run: "run-2")).accepted != nil)
    }

    @Test func quotaResetsInTheNextPeriod() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "free", credits: 10_000)
        for run in 1...3 { _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(run)", micros: 10, run: "run-\(run)")) }
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "jan", micros: 10, run: "run-4")).refusalReason == "RUN_QUOTA_EXCEEDED")

        // Opened 2026-01-31 09:30: the next period starts 2026-02-28 09:30.
        h.clock.advance(seconds: 28 * 86_400 - 1)
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "feb-27", micros: 10, run: "run-4")).refusalReason == "RUN_QUOTA_EXCEEDED")
        h.clock.advance(seconds: 1)
        let debit = try #require(try await h.debit(Fixtures.command(account: "acct", key: "feb-28", micros: 10, run: "run-4")).accepted)
        #expect(debit.newRun)
        for run in [1, 2] {
            #expect(try await h.debit(Fixtures.command(account: "acct", key: "again-\(run)", micros: 10, run: "run-\(run)")).accepted?.newRun == true)
        }
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "fourth", micros: 10, run: "run-3")).refusalReason == "RUN_QUOTA_EXCEEDED")
        let book = await h.ledger.account("acct")
        #expect(book?.runsInPeriod == Self.runHashes("acct", ["run-4", "run-1", "run-2"]))
        let anchor = try #require(book?.periodAnchor)
        #expect(book?.periodStart == BillingPeriod.periodStart(anchor: anchor, months: 1))
        #expect(CivilDate(unixSeconds: book?.periodStart ?? 0).description == "2026-02-28")
    }

    @Test func usageRollsUpByDayAgentAndLineItem() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        let items: [LineItem] = [.llm(model: "gpt-4o", inputTokens: 1_000, outputTokens: 100), .toolCall(integration: "notion", calls: 3)]
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-1", agent: "a", items: items))
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-2", agent: "a", items: items))
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-3", agent: "b", items: items))
        h.clock.advance(seconds: 86_400)
        _ = try await h.debit(Fixtures.command(account: "acct", key: "k-4", agent: "a", items: items))

        let day = h.clock.nowMicros() / 86_400_000_000
        let usage = try #require(try await h.ledger.usage(account: "acct", fromDay: day - 1, toDay: day))
        // gpt-4o: 1,000 × 2.5 + 100 × 10 = 3,500 micros; notion: 3 × 500 (the default).
        #expect(usage[UsageKey(day: day - 1, agentID: "a", lineKey: "llm:gpt-4o")] ==
                UsageCell(amount: 7_000, quantity: 2_200, inputTokens: 2_000, outputTokens: 200))
        #expect(usage[UsageKey(day: day - 1, agentID: "b", lineKey: "tool_call:notion")] == UsageCell(amount: 1_500, quantity: 3))
        #expect(usage[UsageKey(day: day, agentID: "a", lineKey: "tool_call:notion")] == UsageCell(amount: 1_500, quantity: 3))
        #expect(usage.count == 6)
        #expect(usage.values.reduce(0) { $0 + $1.amount } == 4 * 5_000)
        #expect(try await h.ledger.usage(account: "acct", fromDay: day, toDay: day)?.count == 2)
        #expect(try await h.ledger.usage(account: "nobody", fromDay: 0, toDay: day) == nil)
    }

    /// How an account's period records runs: by their stable hashes.
    static func runHashes(_ account: String, _ runs: [String]) -> Set<Int64> {
        Set(runs.map { JournalKeyHash.run(account: account, run: $0) })
    }

    /// A front end that looked while the key was new (the filter said so)
    /// and entered the ledger after the same key was journaled — by then in
    /// memory, or indexed and gone from memory — gets the first outcome;
    /// nothing is charged twice.
    @Test func aLookupTakenBeforeTheKeyWasJournaledStillFindsIt() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        let command = try Fixtures.command(account: "acct", key: "k", micros: 100)
        let stale = try h.ledger.priorLookup(command)
        #expect(stale.entry == nil)
        let first = try #require(try await h.ledger.debit(command, prior: stale).entry)
        #expect(try await h.ledger.debit(command, prior: stale).entry?.seq == first.seq)
        // Two checkpoints later the key's generation has left memory: the store answers.
        for round in 0..<2 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "other-\(round)", micros: 5))
            try await h.ledger.checkpoint()
        }
        #expect(h.ledger.cache.generation != stale.generation)
        #expect(try await h.ledger.debit(command, prior: stale).entry?.seq == first.seq)
        #expect(h.debitEntries(key: "k").count == 1)
        #expect(await h.balance("acct") == 1_000_000 - 100 - 10)
    }

    /// Debits paid from credits lower the balance, never what was granted:
    /// a grant can fit the balance and still carry the granted total past
    /// Int64. Refused as the caller's amount (not a fault of the ledger),
    /// nothing journaled.
    @Test func aGrantWhoseGrantedTotalWouldOverflowIsRefusedAsTooLarge() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: .max - 10)
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 100)).accepted != nil)
        let journaled = h.journal().count
        await #expect(throws: LedgerError.invalid("the balance would overflow")) {
            try await h.ledger.grantCredits(accountID: "acct", amountMicros: 50, kind: "promotional", note: "", actor: "test")
        }
        #expect(h.journal().count == journaled)
        #expect(await h.balance("acct") == .max - 110)
    }

    /// A debit that fits on its own but would carry the account's lifetime
    /// sums (here input tokens) past Int64 is refused as bad input: nothing
    /// journaled, no books changed, the key left free.
    @Test func aDebitWhoseSumsWouldOverflowChangesNothing() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let huge = try Fixtures.command(account: "acct", key: "k-1", items: [.llm(model: "mini", inputTokens: .max, outputTokens: 0)])
        #expect(try await h.debit(huge).accepted != nil)
        let before = await h.ledger.account("acct")
        let journaled = h.journal().count
        let one = try Fixtures.command(account: "acct", key: "k-2", items: [.llm(model: "mini", inputTokens: 1, outputTokens: 0)])
        await #expect(throws: LedgerError.invalid("the account's totals would exceed the largest amount or quantity the ledger keeps")) {
            try await h.debit(one)
        }
        await #expect(throws: LedgerError.invalid("the account's totals would exceed the largest amount or quantity the ledger keeps")) {
            try await h.ledger.quote(one)  // Quote answers as Debit does
        }
        #expect(await h.ledger.account("acct") == before)
        #expect(h.journal().count == journaled)
        #expect(h.debitEntries(key: "k-2").isEmpty)
        // In a batch, the same debit fails on its own; the one after it is charged.
        let ok = try Fixtures.command(account: "acct", key: "k-3", items: [.toolCall(integration: "slack", calls: 1)])
        let generation = h.ledger.cache.generation
        let outcomes = try await h.ledger.debitBatch([one, ok].map { ($0, PriorLookup(entry: nil, generation: generation)) })
        guard outcomes.count == 2, case .failed(.invalid) = outcomes[0], case .accepted = outcomes[1] else {
            Issue.record("batch outcomes: \(outcomes)")
            return
        }
        #expect(h.debitEntries(key: "k-2").isEmpty)
        #expect(await h.ledger.account("acct")?.overage == (before?.overage ?? 0) + 1_000)
    }

    /// Input and output tokens that each fit but whose sum (an llm cell's
    /// quantity) would not: refused as too large, not a trap in the cell.
    @Test func aDebitWhoseTokenSumWouldOverflowACellIsRefusedNotATrap() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let inputs = try Fixtures.command(account: "acct", key: "k-1", items: [.llm(model: "mini", inputTokens: .max, outputTokens: 0)])
        #expect(try await h.debit(inputs).accepted != nil)
        let before = await h.ledger.account("acct")
        let journaled = h.journal().count
        let output = try Fixtures.command(account: "acct", key: "k-2", items: [.llm(model: "mini", inputTokens: 0, outputTokens: 1)])
        await #expect(throws: LedgerError.invalid("the account's totals would exceed the largest amount or quantity the ledger keeps")) {
            try await h.debit(output)
        }
        #expect(await h.ledger.account("acct") == before)
        #expect(h.journal().count == journaled)
        // Both lines in one debit: the same.
        let both = try Fixtures.command(account: "acct", key: "k-3", items: [
            .llm(model: "mini", inputTokens: 0, outputTokens: 1), .llm(model: "mini", inputTokens: 0, outputTokens: 1)])
        await #expect(throws: LedgerError.self) { try await h.debit(both) }
        #expect(h.journal().count == journaled)
    }

    /// Quote with no run asks about a new run: on a Free account whose runs
    /// are used up it says a Debit would be refused, as that Debit would be.
    @Test func aQuoteWithoutARunCountsAsANewRunAgainstTheQuota() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "free", credits: 1_000)
        for run in 1...3 {  // Fixtures.plans: Free allows 3 runs
            #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-\(run)", micros: 5, run: "run-\(run)")).accepted != nil)
        }
        let noRun = try Fixtures.command(account: "acct", key: "", micros: 5, run: "")
        let quoted = try #require(try await h.ledger.quote(noRun))
        #expect(!quoted.record.isAccepted)
        guard case .debitRefused(let refused) = quoted.record.event else {
            Issue.record("not a refusal: \(quoted.record.event.debugDescription)")
            return
        }
        #expect(refused.reason == "RUN_QUOTA_EXCEEDED")
        // A run already counted still quotes as accepted.
        let counted = try Fixtures.command(account: "acct", key: "", micros: 5, run: "run-2")
        #expect(try #require(try await h.ledger.quote(counted)).record.isAccepted)
    }

    /// A debit of a batch whose key only the store can tell about, when the
    /// store read fails: that debit fails on its own (INTERNAL), the others
    /// are charged and answered — the batch is not thrown away half-applied.
    @Test func aFailedStoreReadFailsOneDebitOfABatchNotTheBatch() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let fine = try Fixtures.command(account: "acct", key: "k-1", micros: 5, run: "r-1")
        let unsure = try Fixtures.command(account: "acct", key: "k-2", micros: 5, run: "r-2")
        h.ledger.keyFilter.insert(unsure.keyHash)  // "maybe": only the store can tell
        let stale = PriorLookup(entry: nil, generation: h.ledger.cache.generation + 1)  // the cache moved since
        _ = h.store.restart()  // this ledger's store session is over: its reads throw
        let (outcomes, _) = try await h.ledger.recordBatch([(fine, PriorLookup(entry: nil, generation: h.ledger.cache.generation)),
                                                           (unsure, stale)])
        guard outcomes.count == 2, case .accepted = outcomes[0], case .failed(.internalFault) = outcomes[1] else {
            Issue.record("outcomes: \(outcomes)")
            return
        }
        await h.ledger.close()
    }
}
