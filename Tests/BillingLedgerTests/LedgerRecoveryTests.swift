import BillingCore
@testable import BillingLedger
import BillingProto
import Dispatch
import Testing

/// Checkpoints, recovery, and what callers see when the journal fails or falls behind.
@Suite struct LedgerRecoveryTests {
    /// Books with every kind of content: plans, grants, overage, runs, workspaces, usage.
    private static func busyLedger() async throws -> Harness {
        let h = try Harness()
        try await h.openAccount("free", plan: "free", credits: 500)
        try await h.openAccount("pro", plan: "pro", credits: 100)
        try await h.openAccount("trial", plan: "trial", credits: 0)
        for index in 0..<6 {
            _ = try await h.debit(Fixtures.command(account: "pro", key: "p-\(index)", workspace: "ws-\(index % 2)",
                                                   agent: "agent-\(index % 3)", run: "run-\(index / 2)",
                                                   items: [.llm(model: "mini", inputTokens: 1_000, outputTokens: 333),
                                                           .storage(kind: .traces, bytes: 123_456_789)]))
            _ = try await h.debit(Fixtures.command(account: "free", key: "f-\(index)", micros: 45, run: "run-\(index)"))
            h.clock.advance(seconds: 20_000)
        }
        _ = try await h.debit(Fixtures.command(account: "trial", key: "t-1", micros: 5))
        return h
    }

    @Test func checkpointRoundTrip() async throws {
        #expect(LedgerState(checkpoint: LedgerState().checkpoint(writtenAtMicros: 1)) == LedgerState())

        let h = try await Self.busyLedger()
        let state = await h.ledger.snapshot
        #expect(state.accounts["pro"]?.overage ?? 0 > 0)
        #expect(state.accounts["free"]?.runsInPeriod.count == 3)
        let checkpoint = state.checkpoint(writtenAtMicros: h.clock.nowMicros())
        #expect(checkpoint.seq == state.lastSeq)
        #expect(LedgerState(checkpoint: checkpoint) == state)
        // Through its bytes too, as the store keeps it; and equal states encode equally.
        let bytes: [UInt8] = try checkpoint.serializedBytes()
        #expect(LedgerState(checkpoint: try Billing_Journal_V1_Checkpoint(serializedBytes: bytes)) == state)
        let again: [UInt8] = try LedgerState(checkpoint: checkpoint).checkpoint(writtenAtMicros: h.clock.nowMicros()).serializedBytes()
        #expect(again == bytes)
    }

    @Test func checkpointsCountRunsByHashAndStillReadRunNames() async throws {
        let h = try await Self.busyLedger()
        let state = await h.ledger.snapshot
        let checkpoint = state.checkpoint(writtenAtMicros: h.clock.nowMicros())
        let free = try #require(checkpoint.accounts.firstIndex { $0.accountID == "free" })
        #expect(checkpoint.accounts.allSatisfy { $0.runsInPeriod.isEmpty })
        #expect(checkpoint.accounts[free].runHashes == ["run-0", "run-1", "run-2"].map { JournalKeyHash.run(account: "free", run: $0) }.sorted())
        // A checkpoint written before run hashes named the runs: the same books.
        var legacy = checkpoint
        legacy.accounts[free].runHashes = []
        legacy.accounts[free].runsInPeriod = ["run-0", "run-1", "run-2"]
        let restored = LedgerState(checkpoint: legacy)
        #expect(restored == state)
        // Its named runs still count: the quota (3) is used up, a named run is not new.
        let books = restored
        let command = try Fixtures.command(account: "free", key: "after-legacy", micros: 5, run: "run-4")
        guard case .debitRefused(let refused) = books.decide(command, nowMicros: h.clock.nowMicros(), plans: books.plans) else {
            Issue.record("a fourth run was not refused"); return
        }
        #expect(refused.reason == "RUN_QUOTA_EXCEEDED")
        let again = try Fixtures.command(account: "free", key: "after-legacy-2", micros: 5, run: "run-2")
        guard case .debitAccepted(let accepted) = books.decide(again, nowMicros: h.clock.nowMicros(), plans: books.plans) else {
            Issue.record("a counted run was refused"); return
        }
        #expect(!accepted.newRun)
    }

    @Test func recoveryLoadsTheCheckpointAndReplaysOnlyTheJournalAfterIt() async throws {
        let h = try await Self.busyLedger()
        await h.ledger.close()  // writes a checkpoint of everything so far
        let checkpointSeq = try #require(h.disk.latestCheckpointSeq())
        #expect(checkpointSeq == Int64(h.journal().count))

        let second = try Harness(reopening: h)
        for index in 0..<7 {
            _ = try await second.debit(Fixtures.command(account: "pro", key: "later-\(index)", micros: 5, run: "run-9"))
        }
        // A crash this time: no checkpoint of those seven.
        let third = try await second.restarted()
        let read = try #require(h.disk.reads.last)
        #expect(read.after == checkpointSeq)
        #expect(read.entries == 7)
        #expect(h.disk.latestCheckpointSeq() == checkpointSeq)

        var fromScratch = LedgerState()
        for entry in h.journal() { try fromScratch.apply(entry) }
        #expect(await third.ledger.snapshot == fromScratch)
        #expect(try LedgerAudit.run(on: third.store, plans: Fixtures.plans).problems == [])
        await third.ledger.close()
    }

    /// What a start-up replayed counts toward the next checkpoint and as
    /// checkpoint lag: processes that die before their first checkpoint,
    /// again and again, leave the next start no longer a replay than one
    /// interval (it grew by each life's entries).
    @Test func replayedEntriesCountTowardTheNextCheckpoint() async throws {
        let configuration = Fixtures.configuration(checkpointEvery: 10)
        var h = try Harness(configuration: configuration)
        try await h.openAccount("pro", plan: "pro", credits: 1_000_000)  // 2 entries
        var written = 0
        var checkpointed = false
        for life in 0..<4 {
            let replayed = Int64(h.journal().count) - (h.disk.latestCheckpointSeq() ?? 0)
            #expect(h.ledger.committer.checkpointLag.entries == replayed, "life \(life): the lag counts the \(replayed) replayed")
            #expect(replayed < 10 + 4, "life \(life): \(replayed) entries replayed, more than an interval and a life's")
            for _ in 0..<4 {
                written += 1
                _ = try await h.debit(Fixtures.command(account: "pro", key: "k-\(written)", micros: 5, run: "r-\(life)"))
            }
            // A checkpoint is due once what was replayed and appended reaches
            // the interval: it is written (on its own thread) before the crash.
            if replayed + 4 >= 10 {
                #expect(await eventually { h.ledger.committer.writtenCheckpointSeq > 0 }, "life \(life): no checkpoint")
                checkpointed = true
            }
            h = try await h.restarted(configuration: configuration)  // a crash: no checkpoint at close
        }
        #expect(checkpointed)  // (without counting the replayed, the fourth life would replay 2 + 16)
        // An offline command's ledger (`billing keys`) queues none, whatever
        // it replayed: 12 entries past the checkpoint (written with a longer
        // interval), more than its own interval of 10.
        var longer = configuration
        longer.checkpointEvery = 1_000
        h = try await h.restarted(configuration: longer)
        for _ in 0..<12 {
            written += 1
            _ = try await h.debit(Fixtures.command(account: "pro", key: "k-\(written)", micros: 5, run: "r"))
        }
        let before = h.disk.latestCheckpointSeq()
        var offline = configuration
        offline.periodicCheckpoints = false
        let command = try await h.restarted(configuration: offline)
        #expect(Int64(command.journal().count) - (before ?? 0) >= 12)
        _ = try await command.debit(Fixtures.command(account: "pro", key: "offline", micros: 5, run: "r"))
        await command.ledger.close(checkpoint: false)
        #expect(command.disk.latestCheckpointSeq() == before)
    }

    /// A checkpoint written by other replay rules (an older build's, here
    /// with books those rules would give and these do not) is not loaded:
    /// the journal is replayed from its start, and the next checkpoint
    /// carries these rules.
    /// A damaged (or hostile) file's absurd values are refused as
    /// inconsistent, never a crash on overflowing arithmetic: a checkpoint
    /// at seq Int64.max, an account anchored past year 9999.
    @Test func impossibleSeqsAndInstantsAreRefusedNotTrapped() async throws {
        let h = try await Self.busyLedger()
        await h.ledger.close()
        let store = h.store.restart()
        var checkpoint = try #require(try store.latestCheckpoint())
        checkpoint.seq = .max
        h.disk.replaceLatestCheckpoint(checkpoint)
        #expect(throws: LedgerState.ApplyError.self) { _ = try LedgerState.recover(from: store) }

        var state = LedgerState()
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = "far"
        created.plan = "pro"
        created.periodAnchorUnix = .max - 10
        var entry = Billing_Journal_V1_Entry()
        entry.seq = 1
        entry.accountCreated = created
        #expect(throws: LedgerState.ApplyError.self) { try state.apply(entry) }
        #expect(state.accounts.isEmpty && state.lastSeq == 0)
    }

    /// `billing verify` names every part of a checkpoint that differs from
    /// the journal, not only accounts: a revoked key made valid again, the
    /// test clock, the plan terms. (It listed accounts, pending charges and
    /// the seq only, and said "clean" for a checkpoint that brought a
    /// revoked key back at the next start.)
    @Test(arguments: ["revoked key restored", "test clock", "plan terms"])
    func verifyNamesACheckpointThatDiffersFromTheJournalOutsideTheAccounts(damage: String) async throws {
        let h = try await Self.busyLedger()
        _ = try await h.ledger.createApiKey(keyID: "k1", name: "ci", scopes: ["metering:write"], hash: Array(repeating: 1, count: 32),
                                            expiresUnix: 0, actor: "test")
        _ = try await h.ledger.revokeApiKey(keyID: "k1", actor: "test")
        await h.ledger.close()
        let store = h.store.restart()
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
        var checkpoint = try #require(try store.latestCheckpoint())
        let expected: String
        switch damage {
        case "revoked key restored":
            let index = try #require(checkpoint.apiKeys.firstIndex { $0.created.keyID == "k1" })
            #expect(checkpoint.apiKeys[index].revokedUnix != 0)
            checkpoint.apiKeys[index].revokedUnix = 0
            expected = "API key k1: checkpoint + replay differs"
        case "test clock":
            checkpoint.testClockUnix += 86_400
            expected = "checkpoint + replay has the test clock at"
        default:
            checkpoint.plans.pro.monthlyPriceMicros += 1
            expected = "checkpoint + replay has other plan terms"
        }
        h.disk.replaceLatestCheckpoint(checkpoint)
        let problems = try LedgerAudit.run(on: store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.hasPrefix(expected) }, "\(problems)")
    }

    /// An entry refused on replay changes nothing: a lifecycle entry not due
    /// left the test clock moved (refused live, the books in memory — and the
    /// next checkpoint — kept the change); a damaged journal's balance near
    /// Int64.min is an overflow refused, not a trap at every start.
    @Test func aRefusedEntryLeavesTheBooksAsTheyWere() throws {
        var state = LedgerState()
        var seq: Int64 = 0
        func entry(_ event: Billing_Journal_V1_Entry.OneOf_Event, at unix: Int64 = 1_000) -> Billing_Journal_V1_Entry {
            seq += 1
            var entry = Billing_Journal_V1_Entry()
            entry.seq = seq
            entry.atUnixMicros = unix * 1_000_000
            entry.event = event
            return entry
        }
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = "acct"
        created.plan = "pro"
        created.periodAnchorUnix = 1_000
        try state.apply(entry(.accountCreated(created)))

        var trialEnded = Billing_Journal_V1_LifecycleEvent()
        trialEnded.accountID = "acct"
        trialEnded.atUnix = 90_000
        trialEnded.trialEnded = Billing_Journal_V1_TrialEnded()
        let before = state
        #expect(throws: LedgerState.ApplyError.self) { try state.apply(entry(.lifecycle(trialEnded))) }
        #expect(state == before)
        #expect(state.testClockUnix == before.testClockUnix)
        seq -= 1

        var grant = Billing_Journal_V1_CreditsGranted()
        grant.accountID = "acct"
        grant.amountMicros = .min
        try state.apply(entry(.creditsGranted(grant)))
        var debit = Billing_Journal_V1_DebitAccepted()
        debit.accountID = "acct"
        debit.idempotencyKey = "k"
        var line = Billing_Journal_V1_PricedLine()
        line.key = "tool_call:slack"
        line.amountMicros = 1
        line.quantity = 1
        debit.lines = [line]
        debit.totalMicros = 1
        debit.fromCreditsMicros = 1
        let granted = state
        #expect(throws: LedgerState.ApplyError.overflow(seq: seq + 1)) { try state.apply(entry(.debitAccepted(debit))) }
        #expect(state == granted)
    }

    /// A trial of a plan costing nothing (`trial_plan: "free"`, Free at $0):
    /// a TrialEnded of an older build (no `continued_without_payment_method`)
    /// replays as the pause it made; one of this build's as the account
    /// going on on Free, Active.
    @Test(arguments: [false, true])
    func aTrialEndReplaysByTheDecisionItWasJournaledWith(continued: Bool) throws {
        var plans = PlanCatalog.default
        plans.trialPlan = .free
        var state = LedgerState(plans: plans)
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = "acct"
        created.plan = "trial"  // on the plans' trial plan
        created.periodAnchorUnix = 1_000
        created.trialEndsUnix = 1_000 + 14 * 86_400
        created.graceSeconds = 7 * 86_400
        var ended = Billing_Journal_V1_LifecycleEvent()
        ended.accountID = "acct"
        ended.atUnix = created.trialEndsUnix
        ended.trialEnded.continuedWithoutPaymentMethod = continued
        for (seq, event) in [Billing_Journal_V1_Entry.OneOf_Event.accountCreated(created), .lifecycle(ended)].enumerated() {
            var entry = Billing_Journal_V1_Entry()
            entry.seq = Int64(seq + 1)
            entry.atUnixMicros = (seq == 0 ? created.periodAnchorUnix : ended.atUnix) * 1_000_000
            entry.event = event
            try state.apply(entry)
        }
        let lifecycle = try #require(state.accounts["acct"]).lifecycle
        #expect(lifecycle.plan == .free)
        #expect(lifecycle.runsPaused == !continued)
        #expect(lifecycle.status == (continued ? .active : .trial))
    }

    /// Ids journaled before session 19 in another normalization can no
    /// longer be named (requests take NFC only): `billing verify` lists them.
    @Test func verifyListsIdsThatAreNotNFC() async throws {
        let h = try Harness()
        try await h.openAccount("cafe\u{301}", plan: "pro", credits: 1_000)  // (the ledger takes any id; the service refuses it now)
        _ = try await h.debit(Fixtures.command(account: "cafe\u{301}", key: "cle\u{301}", micros: 5))
        try await h.openAccount("plain", plan: "pro", credits: 1_000)
        _ = try await h.debit(Fixtures.command(account: "plain", key: "k-1", micros: 5))
        await h.ledger.close()
        let audit = try LedgerAudit.run(on: h.store.restart(), plans: Fixtures.plans)
        let listed = audit.problems.filter { $0.contains("is not in Unicode NFC") }
        #expect(listed.count == 2, "\(audit.problems)")
        #expect(listed.contains { $0.hasPrefix("account ") } && listed.contains { $0.hasPrefix("idempotency key ") })
        #expect(audit.problems.count == listed.count)  // nothing else differs
    }

    @Test func aCheckpointOfOtherRulesIsNotLoadedTheJournalIsReplayedInstead() async throws {
        let h = try await Self.busyLedger()
        await h.ledger.close()  // writes a checkpoint of everything so far
        let store = h.store.restart()
        var checkpoint = try #require(try store.latestCheckpoint())
        #expect(checkpoint.rulesVersion == LedgerState.rulesVersion)
        // The same checkpoint as an older build would have written it.
        checkpoint.rulesVersion = 0
        checkpoint.accounts[0].balanceMicros += 1  // books those rules gave
        try Self.expectReplayedFromTheStart(after: checkpoint, writtenAt: 1, in: store, journal: h.journal())
        // With these rules' version the same tampered books would be loaded as they are.
        checkpoint.rulesVersion = LedgerState.rulesVersion
        try store.writeCheckpoint(encoded: EncodedCheckpoint(seq: checkpoint.seq, writtenUnixMicros: 2, accounts: checkpoint.accounts.count,
                                                             bytes: try checkpoint.serializedBytes()), index: JournalIndexRows())
        #expect(try LedgerState.recover(from: store).replayed == 0)
    }

    /// A checkpoint that decodes but holds what no ledger writes is passed
    /// over for the journal (its books would have trapped the lifecycle's
    /// invariant checks or calendar arithmetic: a crash at every start).
    @Test(arguments: ["pending upgrade", "trial pause without a trial", "anchor past 9999", "invoice gap", "negative grace"])
    func aCheckpointHoldingImpossibleBooksIsReplacedByTheJournal(damage: String) async throws {
        let h = try await Self.busyLedger()
        await h.ledger.close()
        let store = h.store.restart()
        var checkpoint = try #require(try store.latestCheckpoint())
        #expect(LedgerState.usable(checkpoint))
        switch damage {
        case "pending upgrade":
            checkpoint.accounts[0].lifecycle.plan = .free
            checkpoint.accounts[0].lifecycle.pendingChange.toPlan = .pro
        case "trial pause without a trial":
            checkpoint.accounts[0].lifecycle.pauseReason = .trialEnded
            checkpoint.accounts[0].lifecycle.trialEndsUnix = 0
        case "anchor past 9999":
            checkpoint.accounts[0].lifecycle.periodAnchorUnix = Int64.max / 2
        case "invoice gap":
            var invoice = Billing_Journal_V1_InvoiceState()
            invoice.invoice.sequence = Int64(checkpoint.invoices.count) + 2
            checkpoint.invoices.append(invoice)
        default:
            checkpoint.accounts[0].lifecycle.graceSeconds = -1
        }
        #expect(!LedgerState.usable(checkpoint))
        try Self.expectReplayedFromTheStart(after: checkpoint, writtenAt: 3, in: store, journal: h.journal())
        // `billing verify` says so (the books loaded equal the journal's: without this line it said "clean").
        let problems = try LedgerAudit.run(on: store, plans: Fixtures.plans).problems
        #expect(problems.contains { $0.hasPrefix("the checkpoint at seq \(checkpoint.seq) holds books no ledger writes") }, "\(problems)")
    }

    /// Writes `checkpoint` as the newest and recovers: the journal must be
    /// replayed from its start, giving the books a full replay gives.
    static func expectReplayedFromTheStart(after checkpoint: Billing_Journal_V1_Checkpoint, writtenAt: Int64,
                                           in store: InMemoryLedgerStore, journal: [Billing_Journal_V1_Entry]) throws {
        try store.writeCheckpoint(encoded: EncodedCheckpoint(seq: checkpoint.seq, writtenUnixMicros: writtenAt,
                                                             accounts: checkpoint.accounts.count,
                                                             bytes: try checkpoint.serializedBytes()), index: JournalIndexRows())
        let (loaded, replayed) = try LedgerState.recover(from: store)
        #expect(replayed == journal.count)  // from the start
        var fromScratch = LedgerState()
        for entry in journal { try fromScratch.apply(entry) }
        #expect(loaded == fromScratch)
    }

    @Test func failedAppendAnswersUnavailableAndTheLedgerReloads() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let durable = try h.store.lastSeq()
        h.disk.script(.failAtomically)
        let lost = try Fixtures.command(account: "acct", key: "lost", micros: 100)
        let error = await #expect(throws: LedgerError.self) { try await h.debit(lost) }
        #expect(error?.isUnavailable == true, "\(String(describing: error))")

        // The ledger forgets what was not committed...
        #expect(await eventually { await h.ledger.lastSeq == durable })
        #expect(h.debitEntries(key: "lost").isEmpty)
        #expect(try await h.ledger.settledDebit(account: "acct", key: "lost") == nil)
        #expect(await h.balance("acct") == 1_000)
        // ...and goes on.
        let next = try #require(try await h.debit(Fixtures.command(account: "acct", key: "next", micros: 100)).accepted)
        #expect(next.balanceAfterMicros == 900)
        // The lost debit, retried with its key, is charged once.
        let retried = try await h.debit(lost)
        #expect(retried.accepted?.balanceAfterMicros == 800)
        let entry = try #require(retried.entry)
        #expect(entry.seq == durable + 2)
        #expect(h.debitEntries(key: "lost") == [entry])
    }

    @Test func lostAckIsSettledByTheKey() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let durable = try h.store.lastSeq()
        h.disk.script(.commitThenThrow)
        let command = try Fixtures.command(account: "acct", key: "k-1", micros: 100)
        let error = await #expect(throws: LedgerError.self) { try await h.debit(command) }
        #expect(error?.isUnavailable == true, "\(String(describing: error))")

        // It was committed: GetDebit finds it, the reloaded books hold it, a retry returns it.
        #expect(await eventually { h.ledger.durableSeq == durable + 1 })
        let stored = try #require(try await h.ledger.settledDebit(account: "acct", key: "k-1"))
        #expect(stored.seq == durable + 1)
        #expect(try await h.debit(command).entry == stored)
        #expect(await h.balance("acct") == 900)
        #expect(h.debitEntries(key: "k-1").count == 1)
    }

    @Test func fullQueueRefusesWithOverloaded() async throws {
        let h = try Harness(configuration: Fixtures.configuration(maxBatch: 1, maxQueued: 2))
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let base = await h.ledger.lastSeq
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        h.disk.script(.block(entered: entered, release: release, thenFail: false))

        let ledger = h.ledger
        let commands = try (1...4).map { try Fixtures.command(account: "acct", key: "k-\($0)", micros: 10) }
        let first = Task { [commands] in try await ledger.frontEndDebit(commands[0]) }
        await entered.wait()  // the journal thread is inside append with the first debit
        let queued = [commands[1], commands[2]].map { command in Task { try await ledger.frontEndDebit(command) } }
        #expect(await eventually { await ledger.lastSeq == base + 3 })

        let error = await #expect(throws: LedgerError.self) { try await ledger.frontEndDebit(commands[3]) }
        #expect(error == .overloaded(pending: 2))
        #expect(await ledger.lastSeq == base + 3, "an overloaded debit records nothing")

        release.signal()
        #expect(try await first.value.accepted != nil)
        for task in queued { #expect(try await task.value.accepted != nil) }
        #expect(try await h.debit(commands[3]).accepted?.balanceAfterMicros == 960)
    }
}

extension Harness {
    /// A new process on the disk of `other`, whose ledger was closed.
    init(reopening other: Harness) throws {
        let store = other.store.restart()
        self.init(store: store, clock: other.clock, ledger: try Ledger.open(on: store, clock: other.clock))
    }
}

extension LedgerRecoveryTests {
    /// After close() the journal thread is gone: a mutation must be refused,
    /// not queued for a thread that will never commit it.
    @Test func aDebitAfterCloseFailsInsteadOfWaitingForever() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        await h.ledger.close()
        let ledger = h.ledger
        let answer = Answer<DebitOutcome>()
        Task {
            do {
                answer.set(.success(try await ledger.frontEndDebit(Fixtures.command(account: "acct", key: "late", micros: 5))))
            } catch {
                answer.set(.failure(error))
            }
        }
        let answered = await eventually(tries: 2_000, atLeast: .seconds(10)) { answer.result != nil }
        #expect(answered, "a debit after close() never returned")
        if case .success(let outcome)? = answer.result {
            Issue.record("a debit after close() was acknowledged: \(outcome)")
        }
    }
}
