import BillingCore
@testable import BillingLedger
import BillingProto
import Dispatch
import Synchronization
import Testing

/// Nothing is answered from, or checkpointed with, entries whose commit has
/// not succeeded.
@Suite struct DurabilityTests {
    /// IDEMPOTENCY_KEY_REUSED asserts that the key holds another request's
    /// outcome: the caller then gives up on the key. If that outcome is still
    /// waiting for its commit, and the commit fails, the key holds nothing.
    @Test func keyReusedIsAnsweredOnlyOnceTheOriginalIsDurable() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let (entered, release) = h.holdNextCommit(thenFail: true)

        let ledger = h.ledger
        let original = try Fixtures.command(account: "acct", key: "k-1", micros: 100)
        let other = try Fixtures.command(account: "acct", key: "k-1", micros: 200)
        let first = Task { try await ledger.frontEndDebit(original) }
        await entered.wait()  // the original is decided, its commit under way
        let answer = Answer<DebitOutcome>()
        let second = Task {
            do { answer.set(.success(try await ledger.frontEndDebit(other))) } catch { answer.set(.failure(error)) }
        }
        // The second call either answers now (early: the defect) or waits
        // for the original's commit beside the original's own waiter.
        #expect(await eventually { answer.result != nil || h.ledger.committer.commitWaiterCount >= 2 })
        release.signal()  // the original's commit fails: nothing written

        await #expect(throws: LedgerError.self) { try await first.value }
        await second.value
        #expect(h.debitEntries(key: "k-1").isEmpty)
        if case .success(.keyReused(let cited))? = answer.result {
            Issue.record("""
                answered IDEMPOTENCY_KEY_REUSED citing seq \(cited.seq) before that entry was durable; \
                its commit then failed and the journal has no entry for key k-1
                """)
        }
    }

    /// A retried plan change (same key) is answered from the original only
    /// once the original is durable: if the original's commit fails (and the
    /// reload after it, leaving the entry in memory), the retry must not hear
    /// "done" for an entry the journal never got.
    @Test func aRetriedPlanChangeIsAnsweredOnlyOnceTheOriginalIsDurable() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let (entered, release) = h.holdNextCommit(thenFail: true)
        let ledger = h.ledger
        let original = Task { try await ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test") }
        await entered.wait()  // decided and applied in memory, its commit under way
        let retry = Task { try await ledger.changePlan(accountID: "acct", to: .free, key: "down", actor: "test") }
        _ = h.store.restart()  // and the reload after it fails too: the failed entry stays in memory
        // The retry waits for the original (its lifecycle turn) before that fails.
        #expect(await eventually { await ledger.lifecycleWaiters.count == 1 })
        release.signal()  // the original's commit fails
        await #expect(throws: (any Error).self) { try await original.value }
        await #expect(throws: (any Error).self, "the retry was answered as done, but the original's commit failed") {
            try await retry.value
        }
        #expect(!h.journal().contains { entry in
            if case .lifecycle(let event)? = entry.event { return event.idempotencyKey == "down" }
            return false
        })
        // Nor is anything else answered from that memory: reads and quotes are
        // unavailable (once the reload after the failure has run and failed).
        #expect(await eventually { (try? await ledger.currentBook("acct")) == nil })
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.currentBook("acct")
        }
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.quote(Fixtures.command(account: "acct", key: "", micros: 5))
        }
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.usage(account: "acct", fromDay: 0, toDay: .max)
        }
        // Nor may GetDebit or GetExecutionCost answer "not found" from the
        // store's indexes alone: the debit cache was emptied for the reload.
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.settledDebit(account: "acct", key: "any")
        }
        #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try ledger.runEntries(account: "acct", run: "run-1")
        }
        await ledger.close()
    }

    /// Reads answer from memory only what is durable: a balance, usage or
    /// invoice list read while a debit's commit is under way waits for that
    /// commit, and when it fails the read fails too (UNAVAILABLE) rather
    /// than show a debit the journal never got and the reload takes back.
    @Test func readsWaitForTheCommitOfWhatTheySaw() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let (entered, release) = h.holdNextCommit(thenFail: true)
        let ledger = h.ledger
        let debit = Task { try await ledger.frontEndDebit(Fixtures.command(account: "acct", key: "k-1", micros: 100)) }
        await entered.wait()  // applied in memory, its commit under way

        let balance = Answer<Int64>(), usage = Answer<Int64>(), invoices = Answer<Int>()
        let reads = Task {
            async let b: Void = balance.settle { try await ledger.currentBook("acct").balance }
            async let u: Void = usage.settle {
                try await ledger.committedUsage(account: "acct", fromDay: 0, toDay: .max)?.reduce(0) { $0 + $1.value.amount } ?? -1
            }
            async let i: Void = invoices.settle { try await ledger.invoices(of: "acct").count }
            _ = await (b, u, i)
        }
        // Each read either answers now (early: the defect) or waits for the
        // debit's commit: until all three wait beside the debit's own waiter.
        let early = { balance.result != nil || usage.result != nil || invoices.result != nil }
        #expect(await eventually { early() || h.ledger.committer.commitWaiterCount >= 4 })
        #expect(!early(), "a read answered while the debit it saw was not yet durable")
        release.signal()  // the debit's commit fails: nothing written
        await #expect(throws: LedgerError.self) { try await debit.value }
        await reads.value
        for (name, result) in [("balance", balance.result), ("usage", usage.result), ("invoices", invoices.result.map { $0.map(Int64.init) })] {
            #expect(throws: LedgerError.self, "\(name) was answered from the failed debit") { try result?.get() }
        }
        #expect(h.debitEntries(key: "k-1").isEmpty)
        await ledger.close()
    }

    /// ListApiKeys reads what is durable: a key created while its commit is
    /// under way is not listed before it, nor at all when the commit fails.
    @Test func theKeyListWaitsForTheCommitOfWhatItSaw() async throws {
        let h = try Harness()
        let ledger = h.ledger
        let (entered, release) = h.holdNextCommit(thenFail: true)
        let create = Task {
            _ = try await ledger.createApiKey(keyID: "k1", name: "n", scopes: ["metering:write"], hash: Array(repeating: 1, count: 32),
                                              expiresUnix: 0, actor: "test")
        }
        await entered.wait()  // applied in memory, its commit under way
        let listed = Answer<Int>()
        let list = Task { await listed.settle { try await ledger.apiKeys().count } }
        #expect(await eventually { listed.result != nil || h.ledger.committer.commitWaiterCount >= 2 })
        #expect(listed.result == nil, "the key list answered while the key it saw was not yet durable")
        release.signal()  // the commit fails
        await #expect(throws: LedgerError.self) { try await create.value }
        await list.value
        #expect(throws: LedgerError.self) { try listed.result?.get() }
        #expect(await eventually { ledger.isServing })
        #expect(try await ledger.apiKeys().isEmpty)
        await ledger.close()
    }

    /// What an operator is told about an API key, an account or a grant
    /// key is true of the journal: a second RevokeApiKey while the first's
    /// commit is under way is not answered "revoked", nor a second
    /// CreateAccount "exists", before that commit; when it fails, they fail.
    @Test func revokeAndCreateRetriedDuringAFailingCommitAreNotAnsweredFromMemory() async throws {
        let h = try Harness()
        let ledger = h.ledger
        _ = try await ledger.createApiKey(keyID: "k1", name: "n", scopes: ["metering:write"], hash: Array(repeating: 1, count: 32),
                                          expiresUnix: 0, actor: "test")
        for attempt in ["revoke", "create"] {
            let (entered, release) = h.holdNextCommit(thenFail: true)
            let first = Task {
                if attempt == "revoke" { _ = try await ledger.revokeApiKey(keyID: "k1", actor: "a") }
                else { _ = try await ledger.createAccount(id: "acme", plan: .pro, actor: "a") }
            }
            await entered.wait()  // applied in memory, its commit under way
            let second = Task {
                if attempt == "revoke" { _ = try await ledger.revokeApiKey(keyID: "k1", actor: "b") }
                else { _ = try await ledger.createAccount(id: "acme", plan: .pro, actor: "b") }
            }
            // The second waits on the first's commit before it fails (else it
            // could hear UNAVAILABLE before reaching the ledger, or succeed
            // after the reload, and the case under test would not run).
            #expect(await eventually { h.ledger.committer.commitWaiterCount >= 2 })
            release.signal()  // the first's commit fails
            await #expect(throws: LedgerError.self) { try await first.value }
            do {
                try await second.value
                Issue.record("\(attempt) answered from memory while its commit failed")
            } catch LedgerError.unavailable {
            } catch {
                Issue.record("\(attempt): \(error)")
            }
            #expect(await eventually { ledger.isServing })
        }
        #expect(await ledger.snapshot.apiKeys["k1"]?.revokedUnix == 0)
        #expect(await ledger.snapshot.accounts["acme"] == nil)
        #expect(try await ledger.revokeApiKey(keyID: "k1", actor: "c").revokedUnix != 0)
        #expect(h.journal().contains { if case .apiKeyRevoked? = $0.event { true } else { false } })
        await ledger.close()
    }

    /// A grant key whose grant's commit failed (and the reload after it too)
    /// holds nothing: its retry with another amount hears UNAVAILABLE, not
    /// IDEMPOTENCY_KEY_REUSED; nor is a revocation or an account answered
    /// from that memory.
    @Test func nothingIsRefusedFromTheMemoryOfAFailedCommit() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro")
        let ledger = h.ledger
        h.store.readsFail.withLock { $0 = true }  // the reload after the failure fails too
        h.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) {
            _ = try await ledger.grantCredits(accountID: "acct", amountMicros: 100, kind: "promotional", note: "", actor: "t",
                                              idempotencyKey: "g1")
        }
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.grantCredits(accountID: "acct", amountMicros: 200, kind: "promotional", note: "", actor: "t",
                                              idempotencyKey: "g1")
        }
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.createAccount(id: "acct", plan: .pro, actor: "t")
        }
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            _ = try await ledger.revokeApiKey(keyID: "none", actor: "t")
        }
        h.store.readsFail.withLock { $0 = false }
        #expect(await eventually { ledger.isServing })
        #expect(try await ledger.grantCredits(accountID: "acct", amountMicros: 200, kind: "promotional", note: "", actor: "t",
                                              idempotencyKey: "g1").balance == 200)
        await ledger.close()
    }

    /// 2026-01-01 00:00 UTC: where `onATestClock`'s clock starts.
    static let clockStart: Int64 = 1_767_225_600

    /// A ledger on an in-memory store and a test clock at `clockStart`.
    static func onATestClock() throws -> (InMemoryLedgerStore, TestClock, Ledger) {
        let store = InMemoryLedgerStore()
        let clock = TestClock(startMicros: clockStart * 1_000_000)
        return (store, clock, try Ledger.open(on: store, clock: clock))
    }

    /// A test-clock move whose ClockSet commit fails leaves the clock where
    /// it was: the retry moves it and journals the move (the clock moved
    /// first used to stay moved, the retry then found nothing to do, and no
    /// ClockSet was ever written while debits were dated at the new time).
    @Test func aFailedClockMoveLeavesTheClockAndItsRetryIsJournaled() async throws {
        let (store, clock, ledger) = try Self.onATestClock()
        let start = Self.clockStart
        _ = try await ledger.createAccount(id: "a", plan: .pro, actor: "t")
        store.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { _ = try await ledger.advanceClock(to: start + 86_400, actor: "t") }
        #expect(clock.nowMicros() == start * 1_000_000)
        #expect(await eventually { ledger.isServing })
        let retried = try await ledger.advanceClock(to: start + 86_400, actor: "t")
        #expect(retried.previous == start && retried.now == start + 86_400)
        #expect(clock.nowMicros() == (start + 86_400) * 1_000_000)
        #expect(await ledger.testClockUnix == start + 86_400)
        #expect(store.disk.journal().contains { if case .clockSet(let set)? = $0.event { set.nowUnix == start + 86_400 } else { false } })
        await ledger.close()
    }

    /// An account created while a clock move's ClockSet commits is dated at
    /// the new time (session 27: the clock moved only after the commit, so
    /// it was anchored at the old time, its trial ending before the new
    /// clock — a transition never processed nor listed, its first answer
    /// already "trial over").
    @Test(.timeLimit(.minutes(1))) func anAccountCreatedWhileAClockMoveCommitsIsDatedAtTheNewTime() async throws {
        let (store, _, ledger) = try Self.onATestClock()
        let start = Self.clockStart
        let target = start + 30 * 86_400
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        store.disk.script(.block(entered: entered, release: release, thenFail: false))
        let moved = Task { try await ledger.advanceClock(to: target, actor: "t") }
        await entered.wait()  // the ClockSet's commit is under way
        let created = Task { try await ledger.createAccount(id: "late", actor: "t") }
        #expect(await eventually { await ledger.snapshot.accounts["late"] != nil })
        release.signal()
        #expect(try await moved.value.now == target)
        _ = try await created.value
        let lifecycle = try #require(await ledger.snapshot.accounts["late"]).lifecycle
        #expect(lifecycle.periodAnchor == target)
        #expect(lifecycle.trialEndsAt == target + 14 * 86_400)
        await ledger.close()
    }

    /// `advanceClock(by:)` counts from the clock as it stands in the
    /// ledger's turn: two advances of a day queued together move it two
    /// days (a target computed before the turn made it one, the second
    /// answered `previous == now`, or refused as backwards).
    @Test(.timeLimit(.minutes(1))) func twoAdvancesOfADayMoveTheClockTwoDays() async throws {
        let (store, clock, ledger) = try Self.onATestClock()
        let start = Self.clockStart
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        store.disk.script(.block(entered: entered, release: release, thenFail: false))
        let first = Task { try await ledger.advanceClock(by: 86_400, latestUnix: .max, actor: "t") }
        await entered.wait()  // the first holds the turn, its ClockSet committing
        let second = Task { try await ledger.advanceClock(by: 86_400, latestUnix: .max, actor: "t") }
        #expect(await eventually { await ledger.lifecycleWaiters.count == 1 })
        release.signal()
        let (a, b) = (try await first.value, try await second.value)
        #expect((a.previous, a.now) == (start, start + 86_400))
        #expect((b.previous, b.now) == (start + 86_400, start + 2 * 86_400))
        #expect(clock.nowMicros() == (start + 2 * 86_400) * 1_000_000)
        await #expect(throws: AccountRequestRefused.self) {
            _ = try await ledger.advanceClock(by: 86_400, latestUnix: start + 2 * 86_400 + 10, actor: "t")
        }
        await ledger.close()
    }

    /// The same for a transition on the way: a trial's end whose commit
    /// fails leaves the clock where it was (it moved to the trial's end
    /// before the commit, and a restart then resumed it from the journal,
    /// behind what debits had been dated at).
    @Test func aTransitionWhoseCommitFailsLeavesTheClock() async throws {
        let (store, clock, ledger) = try Self.onATestClock()
        let start = Self.clockStart
        _ = try await ledger.createAccount(id: "t", actor: "t")  // a 14-day trial
        store.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { _ = try await ledger.advanceClock(to: start + 15 * 86_400, actor: "t") }
        #expect(clock.nowMicros() == start * 1_000_000)
        #expect(await eventually { ledger.isServing })
        let retried = try await ledger.advanceClock(to: start + 15 * 86_400, actor: "t")
        #expect(retried.transitions.map(\.kind) == ["TRIAL_ENDED"])
        #expect(clock.nowMicros() == (start + 15 * 86_400) * 1_000_000)
        // Journaled at its due time (the audit log's time), not the clock's before it moved.
        let ended = store.disk.journal().first { if case .lifecycle(let event)? = $0.event { event.atUnix == start + 14 * 86_400 } else { false } }
        #expect(ended?.atUnixMicros == (start + 14 * 86_400) * 1_000_000)
        await ledger.close()
    }

    /// A close while the checkpoint at the last seq is being written does
    /// not queue another at that seq: the rewrite deleted the one just
    /// stored first, and a crash between left only the one before it.
    @Test(arguments: [false, true])
    func aCloseDuringTheLastSeqsCheckpointWritesItOnlyIfThatWriteFails(writeFails: Bool) async throws {
        let (store, _, ledger) = try Self.onATestClock()
        _ = try await ledger.createAccount(id: "a", plan: .pro, actor: "t")
        let seq = await ledger.lastSeq
        let entered = Atomic<Bool>(false)
        let release = DispatchSemaphore(value: 0)
        store.checkpointGate.withLock { $0 = { entered.store(true, ordering: .sequentiallyConsistent); release.wait() } }
        store.checkpointsFail.withLock { $0 = writeFails }
        let periodic = Task { try await ledger.checkpoint() }
        #expect(await eventually { entered.load(ordering: .sequentiallyConsistent) })  // being written
        store.checkpointGate.withLock { $0 = nil }
        let closing = Task { await ledger.close() }
        #expect(await eventually { ledger.committer.isStopping })  // close decided, waits for the thread
        store.checkpointsFail.withLock { $0 = false }  // (the write under way read it before the gate)
        release.signal()
        await closing.value
        _ = try? await periodic.value
        // Written once: by the periodic write, or, when it failed, by the close.
        #expect(store.disk.writtenCheckpoints().filter { $0.checkpoint.seq == seq }.count == 1)
    }

    /// A checkpoint write that fails asks for another after a pause (1 s
    /// after the first failure), queued at the next append, not after the
    /// next interval's entries (session 28, a review: the journal was then
    /// paced for a checkpoint nobody had queued, for minutes).
    @Test func aFailedCheckpointIsRetriedSoonNotAfterTheNextInterval() async throws {
        let store = InMemoryLedgerStore()
        let ledger = try Ledger.open(on: store, clock: SystemClock(),
                                     configuration: Fixtures.configuration(checkpointEvery: 1_000_000))
        _ = try await ledger.createAccount(id: "a", plan: .pro, actor: "t")
        store.checkpointsFail.withLock { $0 = true }
        await #expect(throws: LedgerError.self) { try await ledger.checkpoint() }
        let failedInARow = ledger.committer.failedCheckpointsInARow.load(ordering: .relaxed)
        #expect(failedInARow == 1)
        store.checkpointsFail.withLock { $0 = false }
        #expect(await eventually { ledger.committer.checkpointRetryWanted.load(ordering: .relaxed) })
        _ = try await ledger.createAccount(id: "b", plan: .pro, actor: "t")  // the next append queues it
        let seq = await ledger.lastSeq
        #expect(await eventually { store.disk.writtenCheckpoints().contains { $0.checkpoint.seq == seq } })
        let (inARow, retryWanted) = (ledger.committer.failedCheckpointsInARow.load(ordering: .relaxed),
                                     ledger.committer.checkpointRetryWanted.load(ordering: .relaxed))
        #expect(inARow == 0 && !retryWanted)
        await ledger.close()
    }

    /// A checkpoint taken with a batch must not be written when that batch's
    /// commit failed: it would hold debits the journal does not have. (The
    /// SQLite store happens to refuse a checkpoint ahead of its journal; the
    /// LedgerStore contract does not ask it to.)
    @Test func noCheckpointIsWrittenForABatchWhoseCommitFailed() async throws {
        let h = try Harness(configuration: Fixtures.configuration(maxBatch: 1, checkpointEvery: 1))
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let base = await h.ledger.lastSeq
        let entered = AsyncLatch()
        let release = DispatchSemaphore(value: 0)
        h.disk.script(.block(entered: entered, release: release, thenFail: false))
        h.disk.script(.failAtomically)

        let ledger = h.ledger
        let first = Task { try await ledger.frontEndDebit(Fixtures.command(account: "acct", key: "k-1", micros: 100)) }
        await entered.wait()
        // Queued behind it, with a checkpoint as of its seq.
        let second = Task { try await ledger.frontEndDebit(Fixtures.command(account: "acct", key: "k-2", micros: 100)) }
        #expect(await eventually { await ledger.lastSeq == base + 2 })
        release.signal()

        #expect(try await first.value.accepted != nil)
        await #expect(throws: LedgerError.self) { try await second.value }
        await ledger.close()
        #expect(h.disk.checkpointsAhead == [], "checkpoints of uncommitted entries were handed to the store")
        let checkpointSeq = try #require(h.disk.latestCheckpointSeq())
        #expect(checkpointSeq <= base + 1)
    }
}

extension DurabilityTests {
    /// A commit that fails with an error leaving the disk's state unknown (an
    /// I/O error: the refused commit may yet be on disk) goes to the stop
    /// handler — the server exits and recovery decides — before any caller
    /// hears; an ordinary failure (nothing unknown) reloads in place.
    @Test func aCommitFailingWithAnIOErrorStopsInsteadOfReloadingInPlace() async throws {
        let stops = Mutex<[String]>([])
        var configuration = Fixtures.configuration()
        configuration.onDiskStateUnknown = { reason in stops.withLock { $0.append(reason) } }
        let h = try Harness(configuration: configuration)
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        h.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 100)) }
        #expect(stops.withLock { $0 }.isEmpty)
        #expect(await eventually { (try? await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 100)))?.accepted != nil })
        h.disk.script(.mediaFailure)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-3", micros: 100)) }
        let reasons = stops.withLock { $0 }
        #expect(reasons.count == 1 && reasons.first?.contains("I/O error") == true, "\(reasons)")
        await h.ledger.close()
    }

    /// From a failed commit until the reload after it succeeds the ledger
    /// says it is not serving (health: NOT_SERVING); a reload that fails (the
    /// store unreadable) is tried again without a restart, and serving resumes.
    @Test func aFailedReloadIsRetriedAndServingResumesWithoutARestart() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        #expect(h.ledger.isServing)
        h.store.readsFail.withLock { $0 = true }
        h.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 100)) }
        #expect(!h.ledger.isServing)  // set before the caller heard
        #expect(await eventually { await h.ledger.failedReloads >= 1 })
        #expect(!h.ledger.isServing)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 100)) }
        h.store.readsFail.withLock { $0 = false }
        #expect(await eventually { h.ledger.isServing })  // the retry, a second after the failed reload
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-3", micros: 100)).accepted != nil)
        #expect(await h.balance("acct") == 900)
        await h.ledger.close()
    }

    /// A disk that stays full: a commit failing with nothing committed since
    /// the last reload waits (refusing changes) before the next reload
    /// instead of reloading for every write; a commit that succeeds ends the
    /// streak, and the next failure reloads at once again.
    @Test func commitsFailingInARowWaitBeforeReloading() async throws {
        let waits = Mutex<[Int]>([])
        var configuration = Fixtures.configuration()
        configuration.commitRetrySeconds = { n in
            waits.withLock { $0.append(n) }
            return 0.5
        }
        let h = try Harness(configuration: configuration)
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let reloads = { h.ledger.reloads.load(ordering: .relaxed) }

        h.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-1", micros: 100)) }
        #expect(await eventually { h.ledger.isServing })  // reloaded at once
        #expect(reloads() == 1 && waits.withLock { $0 }.isEmpty)

        h.disk.script(.failAtomically)  // fails again, nothing committed in between
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-2", micros: 100)) }
        #expect(!h.ledger.isServing && reloads() == 1)  // waiting, not reloading
        await #expect(throws: LedgerError.unavailable("the ledger is reloading after a journal failure")) {
            try await h.debit(Fixtures.command(account: "acct", key: "k-3", micros: 100))
        }
        #expect(await eventually { h.ledger.isServing })
        #expect(reloads() == 2 && waits.withLock { $0 } == [1])

        #expect(try await h.debit(Fixtures.command(account: "acct", key: "k-4", micros: 100)).accepted != nil)
        h.disk.script(.failAtomically)  // after a commit that succeeded: a first failure again
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "k-5", micros: 100)) }
        #expect(await eventually { h.ledger.isServing })
        #expect(reloads() == 3 && waits.withLock { $0 } == [1])
        #expect(await h.balance("acct") == 900)
        await h.ledger.close()
    }

    @Test func commitRetriesBackOffToEightSeconds() {
        let seconds = LedgerConfiguration().commitRetrySeconds
        #expect((1...6).map { seconds($0) } == [1, 2, 4, 8, 8, 8])
        #expect(seconds(Int.max) == 8)
    }

    @Test func reloadRetriesBackOffToThirtySeconds() {
        #expect((1...8).map { Ledger.reloadRetrySeconds(afterFailures: $0) } == [1, 2, 4, 8, 16, 30, 30, 30])
        #expect(Ledger.reloadRetrySeconds(afterFailures: 1_000_000) == 30)
    }

    /// A checkpoint is the books as of its seq. One taken as of a debit whose
    /// commit failed holds that debit; written later, once the journal
    /// reaches its seq again with other entries, it becomes what a restart
    /// loads: a charge that was never journaled, books that no longer
    /// reconcile with the journal. The checkpoint's state is computed after
    /// the debit is queued, so the commit can fail while it is computed;
    /// large books make that window wide.
    @Test func noCheckpointHoldsADebitWhoseCommitFailed() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 6))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)  // seqs 1, 2
        for (index, agent) in ["a", "b", "c"].enumerated() {  // seqs 3, 4, 5: thousands of usage cells
            let items = (0..<3_000).map { LineItem.toolCall(integration: "tool-\($0)", calls: 1) }
            _ = try await h.debit(Fixtures.command(account: "acct", key: "big-\(index)", agent: agent, items: items))
        }
        // Seq 6, the sixth entry: a checkpoint is taken as of it; its commit fails.
        h.disk.script(.failAtomically)
        await #expect(throws: LedgerError.self) { try await h.debit(Fixtures.command(account: "acct", key: "lost", micros: 1_000)) }
        #expect(await eventually { await h.ledger.lastSeq == 5 })
        // Seq 6 again, another debit: committed.
        #expect(try await h.debit(Fixtures.command(account: "acct", key: "kept", micros: 5)).entry?.seq == 6)
        await h.ledger.close()

        var books = LedgerState()
        var booksAt: [Int64: LedgerState] = [0: books]
        for entry in h.journal() {
            try books.apply(entry)
            booksAt[entry.seq] = books
        }
        // (Compared outside #expect: these books hold thousands of cells, too many to print.)
        for (session, checkpoint) in h.disk.writtenCheckpoints() {
            let loaded = LedgerState(checkpoint: checkpoint).accounts["acct"]
            let journaled = booksAt[checkpoint.seq]?.accounts["acct"]
            let matches = loaded == journaled
            #expect(matches, """
                the checkpoint at seq \(checkpoint.seq) (session \(session)) holds overage \(loaded?.overage ?? -1), \
                the journal's books at that seq \(journaled?.overage ?? -1)
                """)
        }
        let restarted = try Harness(reopening: h)
        let reconciles = await restarted.ledger.snapshot == books
        #expect(reconciles, "the books rebuilt from the latest checkpoint differ from the journal's")
        await restarted.ledger.close()
    }
}

extension DurabilityTests {
    /// A debit's entry is queued, then its caller awaits the entry's seq.
    /// If the commit fails and the ledger reloads before the caller starts
    /// waiting, the seq is reused by the next debit: the caller must still
    /// hear UNAVAILABLE, never another debit's commit as its own (and never
    /// wait forever when no other debit comes). The stepped executor holds
    /// the caller at the hop from the ledger actor to the wait.
    @Test func aFailedCommitIsNeverAcknowledgedByTheNextOneAtItsSeq() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let base = await h.ledger.lastSeq
        let (entered, release) = h.holdNextCommit(thenFail: true)

        let executor = SteppedExecutor()
        defer { executor.shutdown() }
        let ledger = h.ledger
        let lost = try Fixtures.command(account: "acct", key: "lost", micros: 100)
        let answer = Answer<DebitOutcome>()
        let call = Task(executorPreference: executor) {
            do { answer.set(.success(try await ledger.frontEndDebit(lost))) } catch { answer.set(.failure(error)) }
        }
        // Step the call until its debit is recorded (in the hot cache, not
        // through the actor, which the call may hold); it is then on its way
        // to the wait. While the call is in the actor (on the actor's own
        // queue) a step finds nothing to run: the debit is looked for before
        // each step, so no step runs once it is recorded (the call's next
        // job, its hop to the wait, stays queued), and an empty step is no
        // failure (each one was, under a busy test run: ~1 run in 10).
        let recorded = await eventually {
            if ledger.cache.lookup(account: "acct", key: "lost").record != nil { return true }
            _ = await executor.step()
            return false
        }
        try #require(recorded)

        // Its commit fails; the ledger reloads; another debit takes the seq and commits.
        await entered.wait()
        release.signal()
        #expect(await eventually { await ledger.lastSeq == base })
        let other = try await h.debit(Fixtures.command(account: "acct", key: "other", micros: 5))
        #expect(other.entry?.seq == base + 1)

        // Now the lost debit's caller goes on.
        #expect(await eventually {
            if answer.result != nil { return true }
            _ = await executor.step()
            return false
        })
        while await executor.step() {}
        _ = await call.value
        if case .success(.accepted(let entry))? = answer.result {
            Issue.record("""
                the debit whose commit failed was acknowledged as seq \(entry.seq), \
                which the journal holds for key \(h.journal()[Int(entry.seq) - 1].debitAccepted.idempotencyKey)
                """)
        }
        #expect(h.debitEntries(key: "lost").isEmpty)
    }
}

/// A call past its deadline is answered DEADLINE_EXCEEDED and its task
/// cancelled; a debit still on its way to the ledger (reading the store for
/// an old key, or waiting for the actor) then records nothing, so GetDebit's
/// UNKNOWN for that key is final and the caller may settle on it.
@Suite struct CancelledDebitTests {
    @Test func aDebitWhoseCallWasCancelledIsNeverRecorded() async throws {
        let h = try Harness()
        try await h.openAccount("acct", plan: "pro", credits: 1_000)
        let single = try Fixtures.command(account: "acct", key: "late", micros: 100)
        let batch = [try Fixtures.command(account: "acct", key: "late-1", micros: 100),
                     try Fixtures.command(account: "acct", key: "late-2", micros: 100)]
        let ledger = h.ledger
        let errors = await Task { () -> [String] in
            withUnsafeCurrentTask { $0?.cancel() }  // the deadline passed on the way
            var errors: [String] = []
            do { _ = try await ledger.frontEndDebit(single) } catch { errors.append("\(type(of: error))") }
            do {
                _ = try await ledger.debitBatch(try batch.map { ($0, try ledger.priorLookup($0)) })
            } catch { errors.append("\(type(of: error))") }
            return errors
        }.value
        #expect(errors == ["CancellationError", "CancellationError"])
        for key in ["late", "late-1", "late-2"] { #expect(h.debitEntries(key: key).isEmpty, "\(key)") }
        #expect(await h.balance("acct") == 1_000)
        // The same keys from a live call are charged once each.
        #expect(try await h.debit(single).accepted != nil)
        await h.ledger.close()
    }
}
