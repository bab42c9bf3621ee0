import BillingProto
import Foundation
import Glibc
import Logging
import Metrics
import Synchronization

/// Writes journal entries to the store on its own thread, many per
/// transaction: entries queued while one commit runs share the next. A
/// caller awaits the durability of its entry's seq; nobody is acknowledged
/// before their transaction commits. Bounded: `maxQueued` entries wait at
/// most; `maxBatch` go in one transaction.
///
/// Checkpoints are built, encoded and written on a second thread from a
/// snapshot of the books (a copy-on-write copy the ledger hands over in
/// O(1)), so neither the ledger actor nor the commits wait for the
/// encoding; only the final insert holds SQLite's write lock.
final class GroupCommitter: Sendable {
    struct Waiter {
        let seq: Int64
        let waiter: CommitWaiter
    }

    /// A `whenDurable` callback.
    struct Callback {
        let seq: Int64
        let call: @Sendable (Result<Void, LedgerError>) -> Void
    }

    struct State {
        var queue: [JournalRecord] = []
        var checkpoint: PendingCheckpoint?
        /// Index rows to store with the next checkpoint written (kept across
        /// a failed checkpoint write, dropped with a failed commit).
        var pendingIndex = JournalIndexRows()
        /// The journal thread has committed its last entry (stop).
        var journalDone = false
        /// The newest checkpoint written by this process (with its index
        /// rows): what commits pace against.
        var indexedSeq: Int64 = 0
        /// The seq of the checkpoint the checkpoint thread is writing now
        /// (-1: none).
        var writingSeq: Int64 = -1
        /// The same once the key filter stored with it (if any) is stored
        /// too, and who awaits one: a key filter write (~16 one-MiB
        /// transactions) comes after `indexedSeq` moves, so it does not hold
        /// back paced commits, but before `Ledger.checkpoint()` returns.
        var settledSeq: Int64 = 0
        var indexWaiters: [Waiter] = []
        var waiters: [Waiter] = []
        var callbacks: [Callback] = []
        var durableSeq: Int64
        var failed: String?
        var stopping = false
        /// The journal thread waits on `wake`: the next enqueue signals it.
        /// While it works, enqueues do not signal (one wake-up per batch,
        /// not per entry).
        var sleeping = false
        var batches: Int64 = 0
        var committedEntries: Int64 = 0
        /// Commits are being slowed for a checkpoint to catch up.
        var pacing = false
        /// The seq the start-up's replay began after (its checkpoint's; 0
        /// without one): until this process writes a checkpoint, the lag
        /// counts from there — what a crash would replay again.
        var startSeq: Int64
    }

    let store: any LedgerStore
    let maxBatch: Int
    let maxQueued: Int
    /// Durable entries beyond the newest checkpoint written past which
    /// commits slow down (see `pace`): the bound on what a start-up replays.
    let maxCheckpointLag: Int64
    let logger: Logger
    /// Where `whenDurable` callbacks run (the ledger's executor).
    let callbackExecutor: any LedgerExecutor
    /// A failed commit's reason, and whether the disk's state is unknown after it.
    let onFailure: @Sendable (String, _ diskStateUnknown: Bool) -> Void
    /// Called with a checkpoint's seq once it and its index rows are stored.
    let onIndexed: @Sendable (Int64) -> Void
    /// The ledger's key filter: a copy is stored with the first checkpoint
    /// this process writes, then with every `keyFilterEvery`-th, and with the
    /// last (at close). Nil: never stored.
    let keyFilter: KeyFilter?
    let keyFilterEvery: Int
    /// The seq of the key filter copy the store held at start-up (-1: none
    /// known): a checkpoint at that seq does not store the same filter again
    /// (a server started and stopped without new entries wrote its 16 MiB —
    /// up to 4 GiB with `--key-filter-mib 4096` — at every stop).
    let storedKeyFilterSeq: Int64
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    /// A `wakeAfterCurrentWork` is queued and has not run yet.
    private let wakePending = Atomic<Bool>(false)
    /// Entries per transaction and commit latency (swift-metrics).
    private let batchSize = Recorder(label: "billing_journal_batch_entries", aggregate: true)
    private let commitLatency = Metrics.Timer(label: "billing_journal_commit_seconds")
    /// When the newest checkpoint was written, by the system's wall clock
    /// (unix micros; 0: none by this process). Not the ledger's clock: under
    /// `--test-clock` that runs ahead, and the age computed from it went
    /// negative (session 27: -66 days).
    let lastCheckpointMicros = Atomic<Int64>(0)
    /// Set a while after a checkpoint write failed (1, 2, 4 … 60 s after
    /// each failure in a row): the ledger queues a new checkpoint at its next
    /// append instead of waiting for the next interval (`enqueueCheckpoint`
    /// clears it). Session 28, a review: after two failures the journal
    /// was paced for a checkpoint nobody had queued, ~300 commits a second
    /// for the rest of the interval (minutes at the default).
    let checkpointRetryWanted = Atomic<Bool>(false)
    /// Checkpoint writes that failed in a row (written by the checkpoint thread).
    let failedCheckpointsInARow = Atomic<Int>(0)
    /// Checkpoint writes ended, written or failed: a retry timer fires only
    /// if none ended after the failure that set it.
    private let checkpointWritesEnded = Atomic<Int>(0)
    private let checkpointFailures = Counter(label: "billing_checkpoint_failures_total")
    private let stopped = DispatchSemaphore(value: 0)
    /// Signalled after each checkpoint written (`pace` waits on it).
    private let checkpointProgress = DispatchSemaphore(value: 0)
    /// The checkpoint thread waits on it for a checkpoint whose entries are durable.
    private let checkpointWake = DispatchSemaphore(value: 0)
    /// Holds a checkpoint write from the moment it is taken (under the state
    /// lock, and only while no commit has failed) until it is done.
    private let checkpointWriting = DispatchGroup()

    struct PendingCheckpoint {
        let snapshot: LedgerState
        let writtenAtMicros: Int64
        /// The ledger's last (at close): stores the key filter too.
        let last: Bool
        /// A checkpoint at this seq is stored already: only the key filter
        /// is (unless stored at this seq too).
        var filterOnly = false
        /// Written only if no checkpoint at its seq is stored by the time
        /// its turn comes (else as `filterOnly`): `Ledger.close` while the
        /// one at its seq is being written — needed only if that write fails.
        var unlessWritten = false
        var seq: Int64 { snapshot.lastSeq }
    }

    /// `replayedSince`: the seq the start-up's replay began after (see `State.startSeq`).
    init(store: any LedgerStore, durableSeq: Int64, replayedSince: Int64, maxBatch: Int, maxQueued: Int, logger: Logger,
         callbackExecutor: any LedgerExecutor, maxCheckpointLag: Int64 = .max,
         onFailure: @escaping @Sendable (String, _ diskStateUnknown: Bool) -> Void, onIndexed: @escaping @Sendable (Int64) -> Void,
         keyFilter: KeyFilter? = nil, keyFilterEvery: Int = 10, storedKeyFilterSeq: Int64 = -1) {
        self.store = store
        self.maxBatch = maxBatch
        self.maxQueued = maxQueued
        self.logger = logger
        self.callbackExecutor = callbackExecutor
        self.onFailure = onFailure
        self.onIndexed = onIndexed
        self.keyFilter = keyFilter
        self.keyFilterEvery = keyFilterEvery
        self.storedKeyFilterSeq = storedKeyFilterSeq
        self.maxCheckpointLag = maxCheckpointLag
        self.state = Mutex(State(durableSeq: durableSeq, startSeq: replayedSince))
        // Named from inside (Linux keeps 15 bytes): `top -H`, perf and /proc show them.
        Thread { [self] in
            Thread.current.name = "billing-journal"
            run()
        }.start()
        Thread { [self] in
            Thread.current.name = "billing-ckpt"
            runCheckpoints()
        }.start()
    }

    var queuedCount: Int { state.withLock { $0.queue.count } }
    /// Durable entries after the newest checkpoint written by this process
    /// (or after the journal's end at start), and whether commits are paced.
    /// The newest checkpoint this process wrote (0: none).
    var writtenCheckpointSeq: Int64 { state.withLock { $0.indexedSeq } }
    /// `stop` has begun (tests).
    var isStopping: Bool { state.withLock { $0.stopping } }
    /// The newest checkpoint written, being written, or queued (not a
    /// filter-only one): `Ledger.close` does not queue another at its seq.
    var coveredCheckpointSeq: Int64 {
        state.withLock { s in
            max(s.indexedSeq, s.writingSeq, s.checkpoint.map { $0.filterOnly ? -1 : $0.seq } ?? -1)
        }
    }

    /// `paced`: commits wait now (pacing decided at the last commit, and
    /// still behind: an idle server whose checkpoint caught up since says 0;
    /// session 28's review: it said 1 until the next commit).
    var checkpointLag: (entries: Int64, paced: Bool) {
        state.withLock { s in
            let lag = s.durableSeq - max(s.indexedSeq, s.startSeq)
            return (lag, s.pacing && lag > maxCheckpointLag && Self.checkpointComing(s))
        }
    }

    /// A checkpoint is on its way: being written, or queued at a seq
    /// already durable (one past it waits on the journal's own commits).
    private static func checkpointComing(_ s: State) -> Bool {
        s.writingSeq >= 0 || s.checkpoint.map { !$0.filterOnly && $0.seq <= s.durableSeq } ?? false
    }
    var durableSeq: Int64 { state.withLock { $0.durableSeq } }
    /// Whether the journal thread sleeps, waiting for an entry (tests).
    var isSleeping: Bool { state.withLock { $0.sleeping } }
    /// Callers waiting for a checkpoint (tests).
    var checkpointWaiterCount: Int { state.withLock { $0.indexWaiters.count } }
    /// Callers waiting for a commit, waiters and callbacks (tests: a call
    /// known to wait cannot have answered before the commit's outcome).
    var commitWaiterCount: Int { state.withLock { $0.waiters.count + $0.callbacks.count } }
    var statistics: (batches: Int64, entries: Int64) { state.withLock { ($0.batches, $0.committedEntries) } }

    /// Queues `record` (the next seq) without waiting. Throws when the
    /// committer has failed and not been reset. `wake` false: the caller
    /// queues more in this turn and calls `wakeIfSleeping` (or
    /// `wakeAfterCurrentWork`) after the last (the journal thread shares the
    /// core: woken at the first of a batch's debits, it could preempt the
    /// ledger to commit them a few at a time). Held entries wake it anyway
    /// once they fill a transaction (`maxBatch`): holding more gains nothing,
    /// and a huge turn must not reach `maxQueued` with the journal asleep.
    func enqueue(_ record: JournalRecord, wake: Bool = true) throws(LedgerError) {
        let (failure, mustWake): (String?, Bool) = state.withLock { s in
            if let failed = s.failed { return (failed, false) }
            s.queue.append(record)
            guard wake || s.queue.count >= maxBatch else { return (nil, false) }
            defer { s.sleeping = false }
            return (nil, s.sleeping)
        }
        if let failure { throw .unavailable(failure) }
        if mustWake { self.wake.signal() }
    }

    /// Wakes the journal thread once `executor`'s current work is done (at
    /// most one wake pending at a time), after `enqueue(_:wake: false)` of
    /// entries appended one call at a time on an event loop: woken at the
    /// first, the journal thread — sharing the core — preempted the loop to
    /// commit the turn's entries a few at a time, a transaction's fixed cost
    /// each (unary Debit A/B: 4-13 % more calls/s with the wake deferred).
    func wakeAfterCurrentWork(of executor: any LedgerExecutor) {
        guard !wakePending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        executor.execute { [self] in
            // Cleared first: entries queued after this see no pending wake
            // and ask for another; ones queued before are woken for now.
            wakePending.store(false, ordering: .releasing)
            wakeIfSleeping()
        }
    }

    /// Wakes the journal thread if it sleeps with entries queued (after
    /// `enqueue(_:wake: false)`).
    func wakeIfSleeping() {
        let mustWake = state.withLock { s -> Bool in
            guard s.sleeping, !s.queue.isEmpty else { return false }
            s.sleeping = false
            return true
        }
        if mustWake { wake.signal() }
    }

    /// Queues a checkpoint with the index rows of the debits since the last
    /// one, written once every entry up to its seq is durable; dropped if a
    /// commit fails first (it would hold lost entries). A newer checkpoint
    /// replaces one not yet written; their rows go together. `last`: the
    /// ledger is closing (the key filter is stored with it).
    func enqueueCheckpoint(_ snapshot: LedgerState, writtenAtMicros: Int64, index: JournalIndexRows, last: Bool = false,
                           filterOnly: Bool = false, unlessWritten: Bool = false) {
        state.withLock { s in
            guard s.failed == nil else { return }
            // A checkpoint still to be written is not replaced by a filter-only
            // one: it is written, as the last (with the filter).
            if filterOnly, let pending = s.checkpoint, !pending.filterOnly {
                s.checkpoint = PendingCheckpoint(snapshot: pending.snapshot, writtenAtMicros: pending.writtenAtMicros, last: true)
                return
            }
            s.checkpoint = PendingCheckpoint(snapshot: snapshot, writtenAtMicros: writtenAtMicros, last: last, filterOnly: filterOnly,
                                             unlessWritten: unlessWritten)
            s.pendingIndex.append(contentsOf: index)
            // (Only when one is queued: not while a failed commit is reloaded.)
            if !filterOnly { checkpointRetryWanted.store(false, ordering: .relaxed) }
        }
        checkpointWake.signal()
    }

    /// Whether a checkpoint is queued and not yet taken by the checkpoint
    /// thread (it waits for its seq to be durable). The ledger queues no
    /// newer one meanwhile: replacing it before the journal reached its seq
    /// kept the queued one always ahead of the durable seq while more
    /// entries than an interval were in flight, and none was written (session
    /// 28's review: one checkpoint in 588,000 entries at --checkpoint-every
    /// 20000, the lag and memory growing without bound).
    var hasQueuedCheckpoint: Bool {
        state.withLock { s in s.checkpoint.map { !$0.filterOnly } ?? false }
    }

    /// A waiter for `seq`, registered at once (call it synchronously, in the
    /// same actor turn as the lookup or append that produced `seq`): a commit
    /// that fails before the caller awaits still fails this waiter, and a
    /// later commit that reuses the seq after a reload cannot satisfy it.
    func waiter(for seq: Int64) -> CommitWaiter {
        register(seq, reached: \.durableSeq, in: \.waiters)
    }

    /// Calls `call` with the outcome of `seq`'s commit: at once, on this
    /// thread, when it is already known (durable, or the committer has
    /// failed); else on `callbackExecutor`, where the journal thread hands
    /// each commit's callbacks over together, in one hop (a `CommitWaiter`
    /// per caller cost an object, two locks and a hop of its own each).
    /// Call synchronously in the actor turn that produced `seq`, as `waiter(for:)`.
    func whenDurable(_ seq: Int64, _ call: @escaping @Sendable (Result<Void, LedgerError>) -> Void) {
        let outcome: Result<Void, LedgerError>? = state.withLock { s in
            if let failed = s.failed { return .failure(.unavailable(failed)) }
            if s.durableSeq >= seq { return .success(()) }
            s.callbacks.append(Callback(seq: seq, call: call))
            return nil
        }
        if let outcome { call(outcome) }
    }

    /// Runs `callbacks` with `outcome` on the callback executor, in one hop.
    private func deliver(_ callbacks: [Callback], _ outcome: Result<Void, LedgerError>) {
        guard !callbacks.isEmpty else { return }
        callbackExecutor.execute {
            for callback in callbacks { callback.call(outcome) }
        }
    }

    /// A waiter for a checkpoint at or after `seq` to be written (with its
    /// index rows, and after the key filter write riding with it, if any,
    /// has ended); fails if the next checkpoint write or a commit fails.
    func checkpointWaiter(for seq: Int64) -> CommitWaiter {
        register(seq, reached: \.settledSeq, in: \.indexWaiters)
    }

    /// Resolved at once if `reached` is already at `seq` (or the committer
    /// has failed), else queued on `list` for the thread that advances it.
    private func register(_ seq: Int64, reached: KeyPath<State, Int64>, in list: WritableKeyPath<State, [Waiter]>) -> CommitWaiter {
        let waiter = CommitWaiter()
        let outcome: Result<Void, LedgerError>? = state.withLock { s in
            if let failed = s.failed { return .failure(.unavailable(failed)) }
            if s[keyPath: reached] >= seq { return .success(()) }
            s[keyPath: list].append(Waiter(seq: seq, waiter: waiter))
            return nil
        }
        if let outcome { waiter.resolve(outcome) }
        return waiter
    }

    /// Returns once no checkpoint is being written. After a failed commit no
    /// new one starts, so the ledger can then read the newest checkpoint and
    /// know that no write in flight will land after it.
    func waitForCheckpointWriter() {
        checkpointWriting.wait()
    }

    /// After a failure, once the ledger has reloaded from the store.
    func reset(durableSeq: Int64) {
        state.withLock { s in
            s.failed = nil
            s.durableSeq = durableSeq
        }
    }

    /// Commits what is queued, then stops the thread.
    func stop() {
        let alreadyStopping = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return s.stopping
        }
        guard !alreadyStopping else { return }  // a second close is a no-op
        wake.signal()
        stopped.wait()  // the checkpoint thread, after the journal thread
        // Closed for good: later appends and waits fail instead of hanging.
        let (stranded, callbacks) = state.withLock { s -> ([Waiter], [Callback]) in
            s.failed = "the ledger is closed"
            defer { s.waiters.removeAll(); s.indexWaiters.removeAll(); s.callbacks.removeAll() }
            return (s.waiters + s.indexWaiters, s.callbacks)
        }
        for waiter in stranded { waiter.waiter.resolve(.failure(.unavailable("the ledger is closed"))) }
        deliver(callbacks, .failure(.unavailable("the ledger is closed")))
    }

    /// Under load (entries arrived while the last transaction committed),
    /// waits up to ~0.5 ms for more before committing: a transaction's fixed
    /// cost (WAL frame, fdatasync) is then shared by many entries instead of
    /// a few, which on a busy core is what limits throughput. Stops waiting
    /// as soon as entries stop arriving. A lone caller on an idle server
    /// never waits (the thread commits at once when woken from sleep).
    private func gather() {
        var last = queuedCount
        for _ in 0..<5 where last < Self.gatherTarget {
            usleep(100)
            let now = queuedCount
            if now == last { return }
            last = now
        }
    }

    /// Entries per transaction worth waiting for.
    static let gatherTarget = 256

    /// Where a failed checkpoint's retry timer fires: a serial queue of its
    /// own, not `DispatchQueue.global()` — the root queue Swift's tasks run
    /// on (session 31: with that timer armed, test runs stopped with every
    /// task waiting and no worker thread left to run them, 1 run in ~3;
    /// never with this queue, nor with the test that fails a checkpoint
    /// left out).
    private static let retryTimers = DispatchQueue(label: "billing-checkpoint-retry")

    /// Whether commits must slow down: more than `maxLag` durable entries
    /// after the newest checkpoint written.
    static func checkpointsBehind(durable: Int64, indexed: Int64, maxLag: Int64) -> Bool {
        durable - indexed > maxLag
    }

    /// Checkpoints share the core with everything else; under full load
    /// they can fall behind (each is a copy of the whole state), and a
    /// start-up after a crash replays everything after the newest one. Past
    /// `maxCheckpointLag` the journal waits after each commit until a
    /// checkpoint is written, up to 50 ms: callers wait longer, the handlers
    /// that feed the journal go idle, and the checkpoint thread gets the
    /// core — recovery time stays bounded at the cost of ingest. (A fixed
    /// 2 ms pause did nothing: a commit carries thousands of entries.)
    private func pace() {
        // Wake-ups of checkpoints written while commits were not behind are
        // dropped first: stored up (one per checkpoint of a server busy but
        // not behind), they let as many paced commits through at once
        // (session 28's review: ~600, and the lag grew further).
        while checkpointProgress.wait(timeout: .now()) == .success {}
        // Paced only while a checkpoint is coming (`checkpointComing`): after
        // a failed write none is until the ledger queues the retry, and
        // waiting would slow commits for nothing.
        let (paced, changed) = state.withLock { s -> (Bool, Bool) in
            let behind = Self.checkpointsBehind(durable: s.durableSeq, indexed: max(s.indexedSeq, s.startSeq),
                                                maxLag: maxCheckpointLag)
            let paced = behind && Self.checkpointComing(s)
            defer { s.pacing = paced }
            return (paced, paced != s.pacing)
        }
        if changed {
            if paced {
                logger.warning("checkpoints are behind the journal; slowing commits until one is written",
                               metadata: ["max_checkpoint_lag": "\(maxCheckpointLag)"])
            } else {
                logger.notice("commits at full speed (checkpoints caught up, or none is being written)")
            }
        }
        if paced { _ = checkpointProgress.wait(timeout: .now() + .milliseconds(50)) }
    }

    private func run() {
        var loaded = false
        while true {
            let idle = state.withLock { s -> Bool in
                guard s.queue.isEmpty && !s.stopping else { return false }
                s.sleeping = true
                return true
            }
            if idle {
                wake.wait()
                loaded = false
                continue
            }
            if loaded { gather() }
            let (batch, stopping) = state.withLock { s -> ([JournalRecord], Bool) in
                let count = min(s.queue.count, maxBatch)
                let batch = Array(s.queue.prefix(count))
                s.queue.removeFirst(count)
                return (batch, s.stopping)
            }
            if !batch.isEmpty {
                commit(batch)
                loaded = true
                // A pending checkpoint may have become durable: woken before
                // pacing waits for it (the other order waited out the pause
                // for a checkpoint whose thread was still asleep).
                if state.withLock({ s in s.checkpoint.map { $0.seq <= s.durableSeq } ?? false }) { checkpointWake.signal() }
                pace()
            } else if stopping {
                state.withLock { $0.journalDone = true }
                checkpointWake.signal()
                return
            }
        }
    }

    /// The checkpoint thread: writes the pending checkpoint once every entry
    /// in it is durable (never one that a failed commit may have overtaken);
    /// after the journal thread stops, writes what is left and stops too.
    private func runCheckpoints() {
        enum Next {
            case write(PendingCheckpoint, JournalIndexRows)
            case wait
            case exit
        }
        // Checkpoints written since the key filter was last stored (starting
        // due: the first checkpoint of the process stores it).
        var sinceFilter = keyFilterEvery
        var filterSeq = storedKeyFilterSeq
        while true {
            let next = state.withLock { s -> Next in
                if s.failed == nil, var pending = s.checkpoint, pending.seq <= s.durableSeq {
                    s.checkpoint = nil
                    // Its seq stored meanwhile (the write it waited on succeeded): only the filter.
                    if pending.unlessWritten && s.indexedSeq >= pending.seq { pending.filterOnly = true }
                    if !pending.filterOnly { s.writingSeq = pending.seq }
                    checkpointWriting.enter()
                    defer { s.pendingIndex = JournalIndexRows() }
                    return .write(pending, s.pendingIndex)
                }
                return s.journalDone ? .exit : .wait
            }
            switch next {
            case .write(let pending, let rows) where pending.filterOnly:
                // (No rows come with it: any kept from a failed checkpoint go back for the next.)
                if !rows.keys.isEmpty || !rows.runs.isEmpty { state.withLock { $0.pendingIndex.append(contentsOf: rows) } }
                if filterSeq != pending.seq, storeKeyFilter(seq: pending.seq) { (filterSeq, sinceFilter) = (pending.seq, 0) }
                checkpointWriting.leave()
            case .write(let pending, let rows):
                let withFilter = keyFilter != nil && (sinceFilter >= keyFilterEvery - 1 || pending.last) && pending.seq != filterSeq
                let (written, filterStored) = write(pending, index: rows, withFilter: withFilter)
                state.withLock { $0.writingSeq = -1 }
                if filterStored {
                    (filterSeq, sinceFilter) = (pending.seq, 0)
                } else if written {
                    sinceFilter += 1
                }
                checkpointWriting.leave()
            case .wait: checkpointWake.wait()
            case .exit:
                stopped.signal()
                return
            }
        }
    }

    private func commit(_ batch: [JournalRecord]) {
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try store.append(batch)
            commitLatency.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - started))
            batchSize.record(batch.count)
        } catch {
            // Callers hear that the write failed; the store's words go to the log.
            let detail = "journal write failed: \(error)"
            let reason = "the journal write failed"
            logger.error("journal commit failed; the ledger will reload from the store", metadata: [
                "error": "\(error)", "first_seq": "\(batch.first!.seq)", "entries": "\(batch.count)",
            ])
            let (failedWaiters, failedCallbacks) = state.withLock { s -> ([Waiter], [Callback]) in
                s.failed = reason
                s.queue.removeAll()
                s.checkpoint = nil
                s.pendingIndex = JournalIndexRows()
                let waiters = s.waiters + s.indexWaiters
                s.waiters.removeAll()
                s.indexWaiters.removeAll()
                defer { s.callbacks.removeAll() }
                return (waiters, s.callbacks)
            }
            // Before the waiters hear: the ledger knows first.
            onFailure(detail, (error as? any LedgerStoreError)?.leavesDiskStateUnknown ?? false)
            for waiter in failedWaiters { waiter.waiter.resolve(.failure(.unavailable(reason))) }
            deliver(failedCallbacks, .failure(.unavailable(reason)))
            return
        }
        let (ready, readyCallbacks) = state.withLock { s -> ([Waiter], [Callback]) in
            s.durableSeq = batch.last!.seq
            s.batches += 1
            s.committedEntries += Int64(batch.count)
            var ready: [Waiter] = []
            s.waiters.removeAll { waiter in
                guard waiter.seq <= s.durableSeq else { return false }
                ready.append(waiter)
                return true
            }
            var readyCallbacks: [Callback] = []
            s.callbacks.removeAll { callback in
                guard callback.seq <= s.durableSeq else { return false }
                readyCallbacks.append(callback)
                return true
            }
            return (ready, readyCallbacks)
        }
        for waiter in ready { waiter.waiter.resolve(.success(())) }
        deliver(readyCallbacks, .success(()))
    }

    /// Stores the checkpoint and its index rows (sorted by hash: SQLite
    /// then appends them instead of seeking). On failure the rows wait for
    /// the next checkpoint and the ledger keeps their debits in memory.
    /// `withFilter`: also store a copy of the key filter, after the
    /// checkpoint (and after paced commits hear of it) and before its
    /// waiters hear of it. Returns whether the checkpoint, and the filter,
    /// were stored.
    private func write(_ pending: PendingCheckpoint, index: JournalIndexRows, withFilter: Bool) -> (Bool, filterStored: Bool) {
        let started = ContinuousClock.now
        let cpuStarted = Self.threadCPUMicros()
        let seq = pending.snapshot.lastSeq
        do {
            let checkpoint = try pending.snapshot.encodedCheckpoint(writtenAtMicros: pending.writtenAtMicros)
            let built = ContinuousClock.now - started
            var rows = index
            rows.keys = RadixSort.sorted(rows.keys)
            rows.runs = RadixSort.sorted(rows.runs)
            try store.writeCheckpoint(encoded: checkpoint, index: rows)
            lastCheckpointMicros.store(Int64(Date().timeIntervalSince1970 * 1_000_000), ordering: .relaxed)
            let written = ContinuousClock.now
            logger.info("checkpoint written", metadata: [
                "seq": "\(checkpoint.seq)", "accounts": "\(checkpoint.accounts)", "bytes": "\(checkpoint.bytes.count)",
                "indexed_keys": "\(rows.keys.count)", "indexed_runs": "\(rows.runs.count)",
                "build_ms": "\(built.wholeMilliseconds)", "write_ms": "\((written - started - built).wholeMilliseconds)",
                "cpu_ms": "\((Self.threadCPUMicros() - cpuStarted) / 1_000)",
            ])
            failedCheckpointsInARow.store(0, ordering: .relaxed)
            checkpointWritesEnded.add(1, ordering: .relaxed)
            onIndexed(checkpoint.seq)
            state.withLock { $0.indexedSeq = max($0.indexedSeq, checkpoint.seq) }
            checkpointProgress.signal()
            let filterStored = withFilter && storeKeyFilter(seq: checkpoint.seq)
            let ready = state.withLock { s -> [Waiter] in
                s.settledSeq = max(s.settledSeq, checkpoint.seq)
                let ready = s.indexWaiters.filter { $0.seq <= s.settledSeq }
                s.indexWaiters.removeAll { $0.seq <= s.settledSeq }
                return ready
            }
            for waiter in ready { waiter.waiter.resolve(.success(())) }
            return (true, filterStored)
        } catch {
            // Not fatal: the journal has everything; recovery replays more,
            // and a new checkpoint is asked for after a pause.
            let inARow = failedCheckpointsInARow.add(1, ordering: .relaxed).newValue
            let ended = checkpointWritesEnded.add(1, ordering: .relaxed).newValue
            checkpointFailures.increment()
            let retrySeconds = min(60, 1 << min(inARow - 1, 6))
            logger.error("checkpoint failed; another at the next interval or in \(retrySeconds) s, whichever comes first", metadata: [
                "error": "\(error)", "seq": "\(seq)", "failures_in_a_row": "\(inARow)",
            ])
            // Only if nothing was written or failed since: a success, or a
            // later failure with a timer of its own, ends this one's say.
            Self.retryTimers.asyncAfter(deadline: .now() + .seconds(retrySeconds)) { [weak self] in
                guard let self, checkpointWritesEnded.load(ordering: .relaxed) == ended else { return }
                checkpointRetryWanted.store(true, ordering: .relaxed)
            }
            // Its waiters fail; those of a newer checkpoint still queued wait on.
            let failed = state.withLock { s -> [Waiter] in
                let failed = s.indexWaiters.filter { $0.seq <= seq }
                s.indexWaiters.removeAll { $0.seq <= seq }
                guard s.failed == nil else { return failed }
                var kept = index
                kept.append(contentsOf: s.pendingIndex)
                s.pendingIndex = kept
                return failed
            }
            for waiter in failed { waiter.waiter.resolve(.failure(.unavailable("checkpoint failed: \(error)"))) }
            return (false, false)
        }
    }

    /// Stores a copy of the key filter as of now: every key up to `seq` was
    /// inserted before the checkpoint at `seq` was queued. A failure is
    /// logged and the next checkpoint tries again (start-up then reads more
    /// key hashes from the index, nothing is lost).
    private func storeKeyFilter(seq: Int64) -> Bool {
        guard let keyFilter else { return false }
        let started = ContinuousClock.now
        let cpuStarted = Self.threadCPUMicros()
        let contents = keyFilter.contents()
        do {
            try store.writeKeyFilter(contents, seq: seq)
        } catch {
            logger.warning("key filter not stored; the next checkpoint tries again", metadata: [
                "error": "\(error)", "seq": "\(seq)",
            ])
            return false
        }
        let falsePositives = KeyFilter.falsePositiveRate(of: contents)
        logger.info("key filter stored", metadata: [
            "seq": "\(seq)", "bytes": "\(contents.count)",
            "write_ms": "\((ContinuousClock.now - started).wholeMilliseconds)",
            "cpu_ms": "\((Self.threadCPUMicros() - cpuStarted) / 1_000)",
            "filter_false_positives": "\(KeyFilter.percent(falsePositives))",
        ])
        KeyFilter.warnIfSaturated(falsePositives, bytes: contents.count, logger: logger)
        return true
    }
}

extension GroupCommitter {
    /// CPU time of the calling thread (user and system), in microseconds:
    /// what a checkpoint costs the core, whatever else shares it.
    static func threadCPUMicros() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1_000
    }
}

extension Duration {
    /// Whole milliseconds, for logs.
    var wholeMilliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

/// One caller's wait for a commit: resolved once, by the journal thread or
/// at registration; `wait()` returns or throws accordingly. (A caller on
/// the ledger's executor that wants a callback instead uses
/// `GroupCommitter.whenDurable`.)
final class CommitWaiter: Sendable {
    private struct State {
        var outcome: Result<Void, LedgerError>?
        var continuation: UnsafeContinuation<Void, any Error>?
        var waited = false
    }

    private let state = Mutex(State())

    func resolve(_ outcome: Result<Void, LedgerError>) {
        let continuation = state.withLock { s -> UnsafeContinuation<Void, any Error>? in
            guard s.outcome == nil else { return nil }
            s.outcome = outcome
            defer { s.continuation = nil }
            return s.continuation
        }
        continuation?.resume(with: outcome.mapError { $0 as any Error })
    }

    /// Waits for the outcome. Call once per waiter.
    func wait() async throws {
        // Unsafe (not checked): resumed exactly once, by `resolve` or here.
        try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
            let known = state.withLock { s -> Result<Void, LedgerError>? in
                precondition(!s.waited, "a commit waiter is waited on once")
                s.waited = true
                if let outcome = s.outcome { return outcome }
                s.continuation = continuation
                return nil
            }
            if let known { continuation.resume(with: known.mapError { $0 as any Error }) }
        }
    }
}
