public import BillingCore
public import BillingProto
public import Logging
import Foundation
import Synchronization

/// The in-process ledger: balances, quotas, idempotency records and usage
/// roll-ups in memory, every change journaled and group-committed to the
/// store before the caller hears of it.
public actor Ledger {
    public nonisolated let store: any LedgerStore
    /// The terms a journal without `PlansConfigured` entries was written
    /// under (the built-in defaults, in production); `plans` are those in effect.
    nonisolated let initialPlans: PlanCatalog
    public nonisolated let clock: any LedgerClock
    /// Debit outcomes the store's indexes do not cover yet, and a hot set.
    public nonisolated let cache: IdempotencyCache
    /// Every debit key ever journaled, approximately: "absent" spares a new
    /// key the store lookup.
    public nonisolated let keyFilter: KeyFilter
    /// Service API keys for authentication, kept in step with the journal.
    public nonisolated let keyRing = KeyRing()
    /// Collects invoices and purchases.
    public nonisolated let gateway: any PaymentGateway
    /// Set when the server runs with a test clock (Admin AdvanceClock).
    public nonisolated let testClock: TestClock?
    /// Where the test clock was before `commit(_:movingTestClockTo:)` moved
    /// it for a commit not yet durable; put back if that commit fails.
    var clockRollback: Int64?

    func rollBackTestClock() {
        if let before = clockRollback { testClock?.setBack(toMicros: before) }
        clockRollback = nil
    }

    /// Commits `event` with the test clock (if any) moved to `unix` just
    /// before: what is journaled while it commits is dated there, never
    /// before it (times never go back; an account created meanwhile would
    /// otherwise have its trial end behind the clock, never processed). If
    /// the commit fails the clock goes back — nothing after it was
    /// acknowledged either, a restart would resume from the journal's clock,
    /// and a retry moves it and records it. A reload after the failure puts
    /// it back too (`clockRollback`), before anything is served again: it
    /// may run before this continuation does.
    func commit(_ event: Billing_Journal_V1_Entry.OneOf_Event, movingTestClockTo unix: Int64) async throws {
        if let testClock {
            clockRollback = testClock.nowMicros()
            testClock.advance(toMicros: unix * 1_000_000)
        }
        do {
            try await commit(event)
            clockRollback = nil
        } catch {
            rollBackTestClock()
            throw error
        }
    }
    let configuration: LedgerConfiguration
    let logger: Logger
    nonisolated let committer: GroupCommitter
    var state: LedgerState
    var recovering = false
    /// Moved (for readers off the actor) when the debit cache is emptied for
    /// a reload, and left odd if the reload fails: the store's indexes alone
    /// do not hold the debits since the last checkpoint, so a lookup then
    /// answers UNAVAILABLE, never "not found" for an acknowledged debit.
    /// Odd from then until a reload succeeds; a reader that sees the same
    /// even value before and after its read read a complete cache.
    nonisolated let cacheEpoch = Atomic<UInt64>(0)
    /// Set on the journal thread the moment a commit fails (before any of
    /// its callers hears), cleared when the reload after it succeeds.
    nonisolated let storeFailed = Atomic<Bool>(false)
    /// Reloads failed in a row (each retried after a longer wait).
    var failedReloads = 0
    /// Commits failed with nothing committed between them (a disk that
    /// stays full): from the second on, the ledger waits before reloading
    /// (`commitRetrySeconds`) instead of reloading for every refused write.
    var commitFailuresInARow = 0
    /// The journal's last seq when the last reload finished: a commit failure
    /// with the durable seq still there is one more in a row.
    var reloadedAtSeq: Int64 = -1
    /// Reloads after a failed commit that succeeded (`billing_ledger_reloads_total`).
    public nonisolated let reloads = Atomic<Int>(0)

    /// Whether the ledger takes changes: false from a failed commit until
    /// the reload after it succeeds (the server's health says NOT_SERVING
    /// meanwhile, so a load balancer sends callers elsewhere).
    public nonisolated var isServing: Bool { !storeFailed.load(ordering: .acquiring) }

    /// `requireServing` for readers off the actor: the epoch to compare
    /// after the read (`requireCompleteCache(since:)`).
    nonisolated func requireCompleteCache() throws(LedgerError) -> UInt64 {
        let epoch = cacheEpoch.load(ordering: .acquiring)
        guard epoch & 1 == 0 else { throw .unavailable("the ledger is reloading after a journal failure") }
        return epoch
    }

    nonisolated func requireCompleteCache(since epoch: UInt64) throws(LedgerError) {
        guard cacheEpoch.load(ordering: .acquiring) == epoch else {
            throw .unavailable("the ledger is reloading after a journal failure")
        }
    }

    /// Refuses while a reload after a journal failure is pending or failed:
    /// memory may then hold entries the journal never got, so nothing is
    /// changed or answered from it.
    func requireServing() throws(LedgerError) {
        guard !recovering, !storeFailed.load(ordering: .acquiring) else {
            throw .unavailable("the ledger is reloading after a journal failure")
        }
    }

    /// Set by `close`: a reload requested by an earlier failure must not reopen it.
    var closed = false
    var entriesSinceCheckpoint = 0
    /// The seq of the checkpoint loaded (at start-up or by the last reload)
    /// with these rules (-1: none); those this process wrote are the
    /// committer's `writtenCheckpointSeq`.
    var loadedCheckpointSeq: Int64 = -1
    /// Set while a batch is recorded, or a debit entered on the executor's
    /// thread (`debitNow`): entries are queued without waking the journal
    /// thread, which is woken once after the last (or the executor's turn).
    var holdingJournalWakes = false
    /// Lifecycle work (requests, transitions, payments) runs one at a time:
    /// a gateway call suspends it, and nothing else may change an account's
    /// lifecycle meanwhile. Debits are not held up by it.
    var lifecycleBusy = false
    /// Callers waiting for the turn, in order; each id is its own, so a
    /// cancelled caller can leave the queue (`cancelLifecycleWaiter`).
    var lifecycleWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    var nextLifecycleWaiterID: UInt64 = 0

    /// Where the actor runs (see `LedgerExecutor`).
    public nonisolated let executor: any LedgerExecutor

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// Opens the ledger on `store`: loads the newest checkpoint, replays the
    /// journal after it, and logs how long that took. The actor runs on
    /// `executor` (default: a serial queue of its own).
    public init(store: any LedgerStore, plans: PlanCatalog, clock: any LedgerClock,
                configuration: LedgerConfiguration = LedgerConfiguration(), logger: Logger,
                gateway: any PaymentGateway = TestPaymentGateway(),
                executor: (any LedgerExecutor)? = nil) throws {
        self.executor = executor ?? QueueLedgerExecutor()
        precondition((1...LedgerConfiguration.maxCheckpointEvery).contains(configuration.checkpointEvery),
                     "checkpointEvery must be 1...\(LedgerConfiguration.maxCheckpointEvery)")
        let started = ContinuousClock.now
        let cache = IdempotencyCache()
        let keyFilter = KeyFilter(bytes: configuration.keyFilterBytes)
        // The filter: a checkpoint's copy (written before 0004; before replay
        // adds to it), else the stored copy plus the key hashes of the index
        // generations after it, else every key hash in the index.
        var filterLoaded = false
        // Debits the index covers stay out of memory (normally all up to the
        // checkpoint, exactly what is not replayed).
        let indexed = try store.indexedThrough()
        var loadedCheckpointSeq: Int64 = -1
        let (state, replayed) = try LedgerState.recover(from: store, plans: plans, loading: { checkpoint, booksLoaded in
            // Its filter holds the keys up to its seq; replay adds only those
            // past the index. A checkpoint older than the index (a newer one
            // lost) would leave the keys between out: read them as below.
            filterLoaded = checkpoint.seq >= indexed && keyFilter.load(checkpoint.keyFilter)
            if booksLoaded {
                loadedCheckpointSeq = checkpoint.seq
            } else {
                let why = checkpoint.rulesVersion == LedgerState.rulesVersion
                    ? "its books are impossible (damaged): `billing verify` reports it"
                    : "it was written under other replay rules (rules \(checkpoint.rulesVersion), this build \(LedgerState.rulesVersion))"
                logger.warning("the newest checkpoint's books were not loaded; the journal is replayed from its start instead",
                               metadata: ["checkpoint_seq": "\(checkpoint.seq)", "reason": "\(why)"])
            }
        }, replaying: { entry in
            guard entry.seq > indexed else { return }
            if let hash = cache.insert(entry) { keyFilter.insert(hash) }
        })
        let booksLoaded = ContinuousClock.now
        var indexedKeys = 0
        var filterSource = "from the checkpoint"
        var storedFilterSeq: Int64 = -1
        if !filterLoaded {
            var after: Int64 = 0
            // Only a shortcut: an unreadable copy means reading the whole index.
            let stored: (seq: Int64, contents: Data)?
            do {
                stored = try store.latestKeyFilter()
            } catch {
                logger.warning("the stored key filter cannot be read; reading every key hash from the index",
                               metadata: ["error": "\(error)"])
                stored = nil
            }
            if let stored, keyFilter.load(stored.contents) {
                after = stored.seq
                storedFilterSeq = stored.seq
            }
            try store.forEachIndexedKeyHash(after: after) { hash in
                keyFilter.insert(hash)
                indexedKeys += 1
            }
            filterSource = after > 0 ? "stored at seq \(after), and \(indexedKeys) key hashes from later index generations"
                : "\(indexedKeys) key hashes read from the index"
        }
        self.gateway = gateway
        self.testClock = clock as? TestClock
        // A test clock resumes where it was moved to, never before.
        testClock?.advance(toMicros: state.testClockUnix * 1_000_000)
        self.store = store
        self.initialPlans = plans
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.cache = cache
        self.keyFilter = keyFilter
        self.state = state
        self.loadedCheckpointSeq = loadedCheckpointSeq
        // What was replayed counts toward the next checkpoint: a process that
        // dies before its first checkpoint, again and again, must not leave
        // the next start an ever longer replay (and ever more keys in memory).
        entriesSinceCheckpoint = replayed
        let finished = ContinuousClock.now
        recoveryMillis = (finished - started).wholeMilliseconds
        let falsePositives = keyFilter.falsePositiveRate()
        logger.info("ledger recovered", metadata: [
            "filter_false_positives": "\(KeyFilter.percent(falsePositives))",
            "seq": "\(state.lastSeq)", "replayed_entries": "\(replayed)", "accounts": "\(state.accounts.count)",
            "key_filter": "\(filterSource)",
            "debit_keys_in_memory": "\(cache.count)",
            "recovery_ms": "\(recoveryMillis)", "books_ms": "\((booksLoaded - started).wholeMilliseconds)",
            "key_filter_ms": "\((finished - booksLoaded).wholeMilliseconds)",
        ])
        KeyFilter.warnIfSaturated(falsePositives, bytes: keyFilter.bytes, logger: logger)
        keyRing.replace(from: state)
        let relay = RecoveryRelay()
        self.committer = GroupCommitter(
            store: store, durableSeq: state.lastSeq, replayedSince: state.lastSeq - Int64(replayed), maxBatch: configuration.maxBatch,
            maxQueued: configuration.maxQueued, logger: logger, callbackExecutor: self.executor,
            maxCheckpointLag: configuration.maxCheckpointLag,
            onFailure: { [stop = configuration.onDiskStateUnknown] reason, unknown in
                // (The server's `stop` does not return; one that does falls
                // back to the reload.)
                if unknown, let stop { relay.markFailed(); stop(reason) }
                relay.trigger()
            }, onIndexed: { seq in cache.indexed(through: seq) },
            keyFilter: keyFilter, keyFilterEvery: configuration.keyFilterEveryCheckpoints, storedKeyFilterSeq: storedFilterSeq)
        relay.attach(self)
    }

    /// Writes a checkpoint now (with the index rows of the debits since the
    /// last one) and returns once it is stored.
    public func checkpoint() async throws {
        let seq = queueCheckpoint(atMicros: clock.nowMicros())
        try await committer.checkpointWaiter(for: seq).wait()
    }

    /// Hands a snapshot of the books as they are now (a copy-on-write copy:
    /// the checkpoint is built from it on the committer's checkpoint thread)
    /// and the cache's sealed generation to the committer; returns its seq.
    @discardableResult
    func queueCheckpoint(atMicros: Int64, last: Bool = false) -> Int64 {
        let index = cache.seal(atSeq: state.lastSeq)
        entriesSinceCheckpoint = 0
        committer.enqueueCheckpoint(state, writtenAtMicros: atMicros, index: index, last: last)
        return state.lastSeq
    }

    /// Writes a final checkpoint (unless `checkpoint` is false: a process
    /// that only read, beside the server that owns the database) and stops
    /// the journal thread.
    public func close(checkpoint: Bool = true) {
        guard !closed else { return }
        closed = true
        // Not again at a seq already checkpointed (an idle restart, a close
        // right after a periodic one): the rewrite deletes the stored one
        // first, and a crash then would leave only the one before. One at
        // this seq being written or queued: the last one only if that write
        // fails (its index rows come back for it).
        if checkpoint {
            let now = clock.nowMicros()
            if state.lastSeq == max(loadedCheckpointSeq, committer.writtenCheckpointSeq) {
                // The key filter still goes with the last one (a quick start next time).
                committer.enqueueCheckpoint(state, writtenAtMicros: now, index: JournalIndexRows(), last: true, filterOnly: true)
            } else if committer.coveredCheckpointSeq >= state.lastSeq {
                committer.enqueueCheckpoint(state, writtenAtMicros: now, index: JournalIndexRows(), last: true, unlessWritten: true)
            } else {
                queueCheckpoint(atMicros: now, last: true)
            }
        }
        committer.stop()
    }

    public var lastSeq: Int64 { state.lastSeq }
    /// The plan terms in effect.
    public var plans: PlanCatalog { state.plans }

    /// Makes `plans` (and `graceSeconds`, when given, for every account)
    /// the terms in effect from now on, journaled (so replay keeps each
    /// period's terms); nothing is written when they already are. Returns
    /// whether they changed.
    @discardableResult
    public func configurePlans(_ plans: PlanCatalog, graceSeconds: Int64? = nil, actor: String) async throws -> Bool {
        let grace = graceSeconds ?? state.configuredGraceSeconds
        guard plans != state.plans || grace != state.configuredGraceSeconds else { return false }
        try await commit(.plansConfigured(LedgerState.journalPlans(plans, graceSeconds: grace, actor: actor)))
        return true
    }
    /// Unix micros of the newest checkpoint this process wrote (0: none yet).
    public nonisolated var lastCheckpointMicros: Int64 { committer.lastCheckpointMicros.load(ordering: .relaxed) }
    /// How long start-up recovery took.
    public nonisolated let recoveryMillis: Int64
    public nonisolated var durableSeq: Int64 { committer.durableSeq }
    /// Durable entries no checkpoint of this process covers yet, and whether
    /// the journal is pacing itself for checkpoints to catch up.
    public nonisolated var checkpointLag: (entries: Int64, paced: Bool) { committer.checkpointLag }
    public nonisolated var commitStatistics: (batches: Int64, entries: Int64) { committer.statistics }
    /// Accounts whose due work (a transition, an owed payment) failed on its
    /// own the last time it was tried, with why: logged when an account
    /// comes in or its reason changes, and when it goes out again (not once
    /// a second while it stays).
    var failingTransitions: [String: String] = [:]
    /// `failingTransitions.count`, for the metrics off the actor
    /// (`billing_accounts_failing_transitions`).
    public nonisolated let accountsFailingTransitions = Atomic<Int>(0)
    /// Tests: an error to throw instead of applying an account's due
    /// transition (an entry the books refuse takes a bug or damaged data).
    var transitionFaultForTests: (@Sendable (String) -> (any Error)?)?
    func injectTransitionFault(_ fault: (@Sendable (String) -> (any Error)?)?) { transitionFaultForTests = fault }
    /// Gateway keys whose charge call still runs after `askGateway` gave up
    /// waiting, with when it began: not asked again until it returns (a
    /// gateway may refuse a second call while the first runs — "idempotency
    /// key in use"), or is taken as lost after ten timeouts.
    nonisolated let gatewayCallsInFlight = Mutex<[String: ContinuousClock.Instant]>([:])
    /// Gateway calls timed out in a row, and until when the gateway is then
    /// taken as down (1, 2, 4 … 60 s after each): no charge is started and
    /// none pending asked again meanwhile, so a gateway that stopped
    /// answering costs one timeout per interval, not one per account.
    var gatewayTimeoutsInARow = 0
    /// Calls waiting on the gateway now (a read does not queue behind one).
    var gatewayWaits = 0
    /// Outcomes that came after their call was given up on (by key), for
    /// the next ask of the key.
    nonisolated let gatewayLateOutcomes = Mutex<[String: ChargeOutcome]>([:])
    var gatewayDownUntil: ContinuousClock.Instant?
    /// A charge the gateway gave no outcome (`.unknown`, or no answer in
    /// time): when its key is asked again (1, 2, 4 … 60 s after each such
    /// answer; after each timeout up to 10 min, so one key the gateway hangs
    /// on does not hold the lifecycle turn a timeout in every minute), and
    /// how many in a row. Other charges go on meanwhile.
    var gatewayKeyRetry: [String: (at: ContinuousClock.Instant, unknowns: Int)] = [:]
    /// Whether the journal thread sleeps, waiting for an entry (tests).
    nonisolated var journalIsSleeping: Bool { committer.isSleeping }

    // MARK: Appending

    /// Applies `event` as the next entry, queues it for the journal and
    /// returns its record; the caller awaits `committer.waiter(for: seq)`.
    func append(_ event: consuming Billing_Journal_V1_Entry.OneOf_Event, atMicros: Int64) throws(LedgerError) -> JournalRecord {
        // The event is moved into the record, not copied (a debit's event
        // holds a dozen references: texts, line items, each copy of it a
        // retain and a release apiece), and applied from it. The journal,
        // the cache and the caller share the record.
        try append(JournalRecord(seq: state.lastSeq + 1, atUnixMicros: atMicros, event: consume event))
    }

    /// How a debit that cannot be applied is refused (Debit and Quote alike).
    static func refusal(_ error: LedgerState.ApplyError) -> LedgerError {
        if case .overflow = error {
            return .invalid("the account's totals would exceed the largest amount or quantity the ledger keeps")
        }
        return .internalFault("cannot apply a debit: \(error)")
    }

    /// The same for a record made for the next seq. `debit`: the command the
    /// record decides, when it is a debit (its account, key and hashes go to
    /// the cache as they are).
    func append(_ record: JournalRecord, debit command: DebitCommand? = nil) throws(LedgerError) -> JournalRecord {
        try requireServing()
        let queued = committer.queuedCount
        guard queued < configuration.maxQueued else { throw .overloaded(pending: queued) }
        precondition(record.seq == state.lastSeq + 1, "a record appended out of order")
        let atMicros = record.atUnixMicros
        var changesKeys = false
        if !record.isDebit {  // (`event` builds a debit's: not read for one)
            switch record.event {
            case .apiKeyCreated?, .apiKeyRevoked?: changesKeys = true
            default: break
            }
        }
        do {
            try state.apply(record, runHash: command?.runHash)
        } catch .overflow {
            // A request's amount the totals cannot take (a debit's sums, a
            // grant's): refused before anything changed.
            throw Self.refusal(.overflow(seq: record.seq))
        } catch {
            throw .internalFault("cannot apply: \(error)")
        }
        try committer.enqueue(record, wake: !holdingJournalWakes)
        // Before a checkpoint may seal the generation: the checkpoint at this
        // seq must carry this debit's index rows.
        if let command {
            cache.insert(record, account: command.accountID, key: command.idempotencyKey, keyHash: command.keyHash,
                         runHash: record.isAccepted ? command.runHash : nil)
            keyFilter.insert(command.keyHash)
        } else if let hash = cache.insert(record) {
            keyFilter.insert(hash)
        }
        if changesKeys { keyRing.replace(from: state) }
        entriesSinceCheckpoint += 1
        // (Not while one queued still waits for its seq to be durable: its
        // entries and index rows go to the next one, `hasQueuedCheckpoint`.)
        if entriesSinceCheckpoint >= configuration.checkpointEvery || committer.checkpointRetryWanted.load(ordering: .relaxed),
           configuration.periodicCheckpoints, !committer.hasQueuedCheckpoint {
            queueCheckpoint(atMicros: atMicros)
        }
        return record
    }

    /// Appends `event` and waits until it is durable.
    @discardableResult
    func commit(_ event: Billing_Journal_V1_Entry.OneOf_Event, atMicros: Int64? = nil) async throws -> Billing_Journal_V1_Entry {
        let record = try append(event, atMicros: atMicros ?? clock.nowMicros())
        try await committer.waiter(for: record.seq).wait()
        return record.entry
    }

    /// Moves the cache epoch to odd (if it is not already): readers off the
    /// actor answer UNAVAILABLE until a reload moves it on.
    func makeCacheUnreadable() {
        if cacheEpoch.load(ordering: .relaxed) & 1 == 0 { cacheEpoch.add(1, ordering: .releasing) }
    }

    /// After a failed commit (the ledger already refuses changes): reloads
    /// at once after a first failure; after failures in a row (nothing
    /// committed since the last reload: a full disk, a read-only file
    /// system) it first waits 1, 2, 4, then 8 s, refusing meanwhile, so that
    /// a disk that stays broken costs a reload every few seconds rather than
    /// one per write.
    func commitFailed() async {
        guard !closed else { return }
        commitFailuresInARow = committer.durableSeq == reloadedAtSeq ? commitFailuresInARow + 1 : 1
        if commitFailuresInARow > 1 {
            // Readers off the actor must not answer from memory meanwhile
            // (it may hold the failed entries): the epoch goes odd first.
            recovering = true
            makeCacheUnreadable()
            let seconds = configuration.commitRetrySeconds(commitFailuresInARow - 1)
            logger.error("journal commits keep failing; changes stay refused until the ledger reloads", metadata: [
                "failures_in_a_row": "\(commitFailuresInARow)", "reload_in_seconds": "\(seconds)"])
            try? await Task.sleep(for: .seconds(seconds))
        }
        recover()
    }

    /// Reloads the books from the store after a failed commit: what was not
    /// committed is forgotten (its callers got UNAVAILABLE), what was is kept.
    func recover() {
        guard !closed else { return }
        recovering = true
        rollBackTestClock()  // (a transition's failed commit: before anything is served again)
        do {
            // A checkpoint write in flight would land after the read below:
            // its debits would then be both indexed and cached again.
            committer.waitForCheckpointWriter()
            makeCacheUnreadable()
            cache.removeAll()
            let (cache, keyFilter) = (self.cache, self.keyFilter)
            let indexed = try store.indexedThrough()
            var loaded: Int64 = -1
            let (state, replayed) = try LedgerState.recover(from: store, plans: initialPlans, loading: { checkpoint, booksLoaded in
                if booksLoaded { loaded = checkpoint.seq }
            }, replaying: { entry in
                guard entry.seq > indexed else { return }
                if let hash = cache.insert(entry) { keyFilter.insert(hash) }
            })
            self.state = state
            loadedCheckpointSeq = loaded
            entriesSinceCheckpoint = replayed  // (as at start-up)
            keyRing.replace(from: state)
            committer.reset(durableSeq: state.lastSeq)
            recovering = false
            failedReloads = 0
            reloadedAtSeq = state.lastSeq
            reloads.add(1, ordering: .relaxed)
            cacheEpoch.add(1, ordering: .releasing)
            storeFailed.store(false, ordering: .releasing)
            logger.notice("ledger reloaded after a journal failure", metadata: ["seq": "\(state.lastSeq)", "replayed_entries": "\(replayed)"])
        } catch {
            // Tried again, every 1, 2, 4 ... 30 s, until the store reads
            // (a disk unplugged and back, a lock released): no restart needed.
            failedReloads += 1
            let seconds = Self.reloadRetrySeconds(afterFailures: failedReloads)
            logger.critical("ledger cannot reload from the store; changes stay refused, trying again", metadata: [
                "error": "\(error)", "failed_reloads": "\(failedReloads)", "retry_in_seconds": "\(seconds)"])
            Task { [weak self] in
                try? await Task.sleep(for: .seconds(seconds))
                await self?.recover()
            }
        }
    }

    /// 1, 2, 4, 8, 16, then 30 s between reload attempts.
    static func reloadRetrySeconds(afterFailures failures: Int) -> Int64 {
        min(30, Int64(1) << Int64(min(max(failures - 1, 0), 5)))
    }

    // MARK: Accounts and credits

    /// Creates an account: on a trial of the catalog's trial plan with the
    /// configured trial credits, or (operators) directly on `plan`.
    public func createAccount(id: String, plan: Plan? = nil, displayName: String = "", billingEmail: String = "",
                              actor: String) async throws -> Billing_Journal_V1_Entry {
        try requireServing()
        if state.accounts[id] != nil {
            // "Exists" only once the account is durable: its creation may be
            // the commit under way, and a caller treating ALREADY_EXISTS as
            // done must not go on with an account a failed commit takes back.
            try await readBarrier().wait()
            throw LedgerError.accountExists(id)
        }
        let now = clock.nowMicros()
        var created = Billing_Journal_V1_AccountCreated()
        created.accountID = id
        created.periodAnchorUnix = now / 1_000_000
        created.actor = actor
        created.displayName = displayName
        created.billingEmail = billingEmail
        // The grace journaled for every account, once there is one (`billing
        // serve` journals its own at start; a library caller may not have).
        created.graceSeconds = state.configuredGraceSeconds ?? configuration.graceSeconds
        if let plan {
            created.plan = plan.rawValue
        } else {
            created.plan = "trial"
            created.trialEndsUnix = now / 1_000_000 + Int64(state.plans.trialDays) * 86_400
            created.trialCreditMicros = configuration.trialCreditMicros
            // The books keep dates to 9999-12-31 (`newBook` refuses others):
            // refused here, with nothing written, rather than as an entry the
            // books cannot take (INTERNAL). Reachable on a test clock only.
            guard created.trialEndsUnix <= LedgerState.latestInstantUnix else {
                throw AccountRequestRefused(reason: "TRIAL_BEYOND_CALENDAR",
                                            message: "a trial started now would end after 9999-12-31, the last date the service keeps; create the account on a plan instead")
            }
        }
        return try await commit(.accountCreated(created), atMicros: now)
    }

    /// Adds credits; returns the grant's seq and the new balance. With an
    /// idempotency key, a retry of the same grant returns the first one's
    /// seq and grants nothing; the key with another amount or note is refused.
    public func grantCredits(accountID: String, amountMicros: Int64, kind: String, note: String, actor: String,
                             idempotencyKey: String = "") async throws -> (seq: Int64, balance: Int64) {
        // Serialized with purchases: a purchase checks that its credits fit
        // the balance before the gateway call suspends it; a grant in that
        // gap could make them overflow after the card was charged.
        try await acquireLifecycle()
        defer { releaseLifecycle() }
        try requireServing()
        guard state.accounts[accountID] != nil else { throw LedgerError.accountNotFound(accountID) }
        guard amountMicros > 0 else { throw LedgerError.invalid("amount_micros must be positive") }
        // A purchase a crash left pending adds its credits first (its
        // overflow check was made against the balance before this grant).
        try await settlePendingCharges(only: accountID)
        guard let book = state.accounts[accountID] else { throw LedgerError.accountNotFound(accountID) }
        if !idempotencyKey.isEmpty, let earlier = book.grantKeys[idempotencyKey] {
            // Either answer cites the earlier grant: once it is durable (and
            // the balance, once what it counts is).
            try await committer.waiter(for: earlier.seq).wait()
            guard earlier.matches(amount: amountMicros, note: note) else { throw LedgerError.grantKeyReused(idempotencyKey) }
            return (earlier.seq, try await committed(state.accounts[accountID]?.balance ?? 0))
        }
        // Both sums apply checks (debits lower the balance, never `granted`).
        guard !book.balance.addingReportingOverflow(amountMicros).overflow,
              !book.granted.addingReportingOverflow(amountMicros).overflow else {
            throw LedgerError.invalid("the balance would overflow")
        }
        var grant = Billing_Journal_V1_CreditsGranted()
        grant.accountID = accountID
        grant.amountMicros = amountMicros
        grant.kind = kind
        grant.note = note
        grant.actor = actor
        grant.idempotencyKey = idempotencyKey
        let entry = try append(.creditsGranted(grant), atMicros: clock.nowMicros())
        let balance = state.accounts[accountID]?.balance ?? 0
        try await committer.waiter(for: entry.seq).wait()
        return (entry.seq, balance)
    }

    public func account(_ id: String) -> AccountBook? { state.accounts[id] }

    // MARK: Reads of committed state

    /// A barrier for what a read just saw: every entry applied so far is
    /// journaled before the read answers. State in memory runs ahead of the
    /// journal by the commit under way (a debit is applied, then committed
    /// with its group); a reader answered from it at once could show a
    /// balance or usage that a failing commit then takes back (the ledger
    /// reloads what is durable), which no caller was told happened. Take it
    /// in the same actor turn as the read (as `committer.waiter(for:)`).
    /// Nothing to wait for (no commit under way) costs no allocation.
    public func readBarrier() -> ReadBarrier {
        let seen = state.lastSeq
        return ReadBarrier(waiter: committer.durableSeq >= seen ? nil : committer.waiter(for: seen))
    }

    /// `readBarrier` as a callback: `call` runs now, on this thread, when
    /// nothing is under way (or the committer has failed), else on the
    /// ledger's executor with the commit's other callbacks — no waiter, no
    /// task (a caller on the ledger's loop answers from it, as `debitNow`'s
    /// caller does). Register it in the same actor turn as the read.
    public func whenReadDurable(_ call: @escaping @Sendable (Result<Void, LedgerError>) -> Void) {
        let seen = state.lastSeq
        if committer.durableSeq >= seen {
            call(.success(()))
        } else {
            committer.whenDurable(seen, call)
        }
    }

    /// `value`, read in this actor turn, once it is durable (`readBarrier`).
    func committed<Value>(_ value: Value) async throws(LedgerError) -> Value {
        try await readBarrier().wait()
        return value
    }

    // MARK: API keys

    /// Every API key as it is durably (`ListApiKeys`): the key ring changes
    /// when a key's entry is applied, before its commit — a listing read at
    /// once could show a key, or a revocation, that a failing commit then
    /// took back. (Authentication reads the ring as it is: a key not yet
    /// durable has not been handed to anyone, a revocation refuses sooner.)
    public func apiKeys() async throws(LedgerError) -> [KeyRing.Key] {
        try await committed(keyRing.all)
    }

    /// Records a new key (its hash only); returns once durable.
    public func createApiKey(keyID: String, name: String, scopes: [String], hash: [UInt8], expiresUnix: Int64,
                             actor: String) async throws -> Billing_Journal_V1_Entry {
        guard state.apiKeys[keyID] == nil else { throw LedgerError.internalFault("key id \(keyID) exists") }
        var created = Billing_Journal_V1_ApiKeyCreated()
        created.keyID = keyID
        created.name = name
        created.scopes = scopes
        created.keyHash = Data(hash)
        created.expiresUnix = expiresUnix
        created.actor = actor
        return try await commit(.apiKeyCreated(created))
    }

    /// Revokes a key: refused by the next call at once, durable on return
    /// (a key already revoked is answered so once its revocation is).
    public func revokeApiKey(keyID: String, actor: String) async throws -> ApiKeyRecord {
        try requireServing()
        guard let record = state.apiKeys[keyID] else { throw LedgerError.keyNotFound(keyID) }
        guard record.revokedUnix == 0 else { return try await committed(record) }
        var revoked = Billing_Journal_V1_ApiKeyRevoked()
        revoked.keyID = keyID
        revoked.actor = actor
        try await commit(.apiKeyRevoked(revoked))
        return state.apiKeys[keyID] ?? record
    }

    public var accountCount: Int { state.accounts.count }

    /// A copy of the whole state (for checks and checkpoints).
    public var snapshot: LedgerState { state }
}

/// Lets the journal thread ask the ledger to reload after a failed commit
/// (the committer exists before the ledger it reports to).
final class RecoveryRelay: Sendable {
    private struct Weak { weak var ledger: Ledger? }
    private let target = Mutex(Weak())

    func attach(_ ledger: Ledger) { target.withLock { $0.ledger = ledger } }

    /// Not serving from now until a reload succeeds (set before any caller
    /// of the failed commit hears).
    func markFailed() {
        target.withLock { $0.ledger }?.storeFailed.store(true, ordering: .releasing)
    }

    /// Marks the ledger failed and starts its reload.
    func trigger() {
        markFailed()
        guard let ledger = target.withLock({ $0.ledger }) else { return }
        Task { await ledger.commitFailed() }
    }
}
