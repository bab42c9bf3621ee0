import BillingCore
public import BillingProto
import Foundation

/// The outcome of a debit: the journal entry that records it, or a refusal
/// for a key reused with a different request (which records nothing new).
public enum DebitOutcome: Sendable {
    case accepted(JournalRecord)
    case refused(JournalRecord)
    case keyReused(original: JournalRecord)
    /// The account does not exist and the key was used before for another
    /// request: refused as unknown (the precedence), recording nothing new.
    case unknownAccount
    /// Not processed (only in a batch, where each debit stands alone):
    /// amounts that do not fit, the journal queue full.
    case failed(LedgerError)
}

/// What the caller found in the store for a debit's key before entering the
/// ledger, and the cache generation at the time it looked.
public struct PriorLookup: Sendable {
    public var entry: JournalRecord?
    public var generation: UInt64

    public init(entry: JournalRecord?, generation: UInt64) {
        self.entry = entry
        self.generation = generation
    }

    /// What the store answered (nil: no entry for the key).
    public init(stored: Billing_Journal_V1_Entry?, generation: UInt64) {
        self.init(entry: stored.map(JournalRecord.init), generation: generation)
    }
}

extension Ledger {
    /// Charges one debit exactly once per (account, key). Returns after the
    /// outcome is durable (awaited off the actor: the task resumes where it
    /// came from, not through the actor's executor).
    public nonisolated func debit(_ command: DebitCommand, prior: PriorLookup) async throws -> DebitOutcome {
        let (outcome, waiter) = try await recordWaiting(command, prior: prior)
        try await waiter.wait()
        return outcome
    }

    /// `record` and its commit's waiter, registered in the same actor turn
    /// (see `GroupCommitter.waiter(for:)`: registered after the turn, a
    /// failed commit's seq could be reused by the next one and satisfy it).
    ///
    /// A caller whose task was cancelled — its call passed its deadline
    /// (the caller was answered DEADLINE_EXCEEDED) while it read the store
    /// or waited for the actor — records nothing: `GetDebit` answering
    /// UNKNOWN for that key stays true, the caller may settle on it.
    func recordWaiting(_ command: DebitCommand, prior: PriorLookup) throws -> (DebitOutcome, CommitWaiter) {
        try Task.checkCancellation()
        let (outcome, seq) = try record(command, prior: prior)
        return (outcome, committer.waiter(for: seq))
    }

    /// `debit` for a caller already isolated to the ledger (on its
    /// executor, through `whenOnExecutor`): decides and applies now, and
    /// calls `completion` once the outcome is durable — on this thread when
    /// it already is (a retry of a committed key) or fails at once, else on
    /// the ledger's executor, with the rest of its commit's callbacks.
    ///
    /// The journal is woken after the executor's current work (the loop's
    /// turn), not by this entry: a turn's debits share its transaction.
    public func debitNow(_ command: DebitCommand, prior: PriorLookup,
                         completion: @escaping @Sendable (Result<DebitOutcome, any Error>) -> Void) {
        let recorded: (outcome: DebitOutcome, seq: Int64)
        holdingJournalWakes = true
        defer {
            holdingJournalWakes = false
            committer.wakeAfterCurrentWork(of: executor)
        }
        do {
            recorded = try record(command, prior: prior)
        } catch {
            completion(.failure(error))
            return
        }
        let outcome = recorded.outcome
        // Registered in this actor turn, as `recordWaiting`'s waiter is.
        committer.whenDurable(recorded.seq) { result in
            completion(result.map { outcome }.mapError { $0 as any Error })
        }
    }

    /// Runs `body` isolated to the ledger, synchronously, when called on the
    /// thread of its executor (a Debit on the event loop that runs it);
    /// nil elsewhere, where the caller awaits the actor instead.
    public nonisolated func whenOnExecutor<T: Sendable>(_ body: (isolated Ledger) throws -> T) rethrows -> T? {
        guard executor.isCurrent else { return nil }
        return try assumeIsolated(body)
    }

    /// Many debits, each decided on its own in order; one wait for the last
    /// one's durability covers them all (commits are in seq order).
    public nonisolated func debitBatch(_ commands: [(DebitCommand, PriorLookup)]) async throws -> [DebitOutcome] {
        let (outcomes, waiter) = try await recordBatch(commands)
        try await waiter.wait()
        return outcomes
    }

    /// Records each debit of a batch; returns the outcomes and the waiter
    /// for the last one's commit (registered in this actor turn).
    func recordBatch(_ commands: [(DebitCommand, PriorLookup)]) throws -> ([DebitOutcome], CommitWaiter) {
        try Task.checkCancellation()  // as `recordWaiting`
        var outcomes: [DebitOutcome] = []
        outcomes.reserveCapacity(commands.count)
        var highest: Int64 = 0
        // The journal thread is woken once, after the batch's last entry
        // (a sleeping journal does not drain the queue meanwhile: a batch
        // larger than `maxQueued` would refuse its tail as overloaded; the
        // server's 65,536 is eight times the largest batch).
        holdingJournalWakes = true
        defer {
            holdingJournalWakes = false
            committer.wakeIfSleeping()
        }
        // Each debit's filter block is asked for a few debits ahead (see
        // `KeyFilter.prefetch`): the blocks arrive while earlier debits run.
        let ahead = 8
        for index in commands.indices.prefix(ahead) { keyFilter.prefetch(commands[index].0.keyHash) }
        for index in commands.indices {  // by index: the commands are read in place, not copied
            if index + ahead < commands.endIndex { keyFilter.prefetch(commands[index + ahead].0.keyHash) }
            do {
                let (outcome, seq) = try record(commands[index].0, prior: commands[index].1)
                outcomes.append(outcome)
                highest = max(highest, seq)
            } catch {
                // A debit stands alone, whatever stops it — a failed store
                // read too: thrown, it would leave the batch's earlier debits
                // charged and unanswered behind an INTERNAL for the call.
                outcomes.append(.failed(error as? LedgerError ?? LedgerError(storeError: error, "cannot look up a debit's key")))
            }
        }
        return (outcomes, committer.waiter(for: highest))
    }

    /// Decides and applies one debit; returns the outcome and the seq whose
    /// durability the caller must await.
    func record(_ command: DebitCommand, prior: PriorLookup) throws -> (DebitOutcome, Int64) {
        if let existing = try existingEntry(command, prior: prior) {
            let fingerprint: Data
            if existing.isAccepted {
                fingerprint = existing.accepted.requestHash
            } else if case .debitRefused(let refused) = existing.event {
                fingerprint = refused.requestHash
            } else {
                preconditionFailure("idempotency record is not a debit")
            }
            guard fingerprint == command.fingerprint else {
                // DESIGN.md's precedence: an unknown account comes before key reuse.
                if state.accounts[command.accountID] == nil { return (.unknownAccount, 0) }
                // Answered once the original is durable: if its commit fails,
                // the key holds nothing and "reused" would be a lie.
                return (.keyReused(original: existing), existing.seq)
            }
            return (existing.isAccepted ? .accepted(existing) : .refused(existing), existing.seq)
        }
        let now = clock.nowMicros()
        let seq = state.lastSeq + 1
        let decided: JournalRecord?
        do {
            decided = try state.decideInPlace(command, seq: seq, nowMicros: now)?.record
        } catch {
            // Not thrown here (apply checks the sums); as a LedgerError a batch would go on.
            throw Self.refusal(error)
        }
        let record = try append(decided ?? JournalRecord(seq: seq, atUnixMicros: now,  // unknown account
                                                          event: state.decide(command, nowMicros: now, plans: state.plans)),
                                debit: command)
        return (record.isAccepted ? .accepted(record) : .refused(record), record.seq)
    }

    /// The recorded outcome of (account, key): the hot cache, else what the
    /// caller found in the store, else (if the cache rotated since the
    /// caller looked) the store again.
    func existingEntry(_ command: DebitCommand, prior: PriorLookup) throws -> JournalRecord? {
        // A key the filter never saw was never journaled (every append adds
        // its key here, in this actor): no cache probes for a new key.
        guard keyFilter.mightContain(command.keyHash) else { return nil }
        let (cached, generation) = cache.lookup(account: command.accountID, key: command.idempotencyKey, hash: command.keyHash)
        if let cached { return cached }
        if generation == prior.generation { return prior.entry }
        return try storedDebit(account: command.accountID, key: command.idempotencyKey, hash: command.keyHash)
            .map(JournalRecord.init)
    }

    /// The durable outcome of (account, key), wherever it is (GetDebit).
    public nonisolated func settledDebit(account: String, key: String) async throws -> Billing_Journal_V1_Entry? {
        let epoch = try requireCompleteCache()
        if let cached = try await cachedDebit(account: account, key: key) { return cached }
        let stored = try storedDebit(account: account, key: key)
        // A reload emptied the cache meanwhile: "not found" would not be the truth.
        if stored == nil { try requireCompleteCache(since: epoch) }
        return stored
    }

    /// The outcome of (account, key) from the store's indexes, skipping the
    /// read when the key filter knows the key was never journaled. Only
    /// complete together with the cache (looked at first).
    public nonisolated func storedDebit(account: String, key: String, hash: Int64? = nil) throws -> Billing_Journal_V1_Entry? {
        guard keyFilter.mightContain(hash ?? JournalKeyHash.debit(account: account, key: key)) else { return nil }
        return try store.debitEntry(accountID: account, idempotencyKey: key)
    }

    /// A run's durable accepted debits in journal order: those in memory
    /// (once committed: their records, read in place) and those in the
    /// store's indexes.
    public nonisolated func runEntries(account: String, run: String) throws -> [JournalRecord] {
        let index = try runIndex(account: account, run: run)
        return try runEntries(account: account, run: run, among: index.seqs, in: index)
    }

    /// Where a run's durable debits are: their seqs, ascending (the store's
    /// run index narrows by hash: a run sharing it adds seqs that
    /// `runEntries(…among:in:)` leaves out), and the records of those in
    /// memory. Reads no entry from the store.
    public struct RunIndex: Sendable {
        public let seqs: [Int64]
        /// Ascending.
        let inMemory: [JournalRecord]

        /// The record of `seq` held in memory, if any.
        func record(_ seq: Int64) -> JournalRecord? {
            var (low, high) = (inMemory.startIndex, inMemory.endIndex)
            while low < high {
                let middle = (low + high) / 2
                if inMemory[middle].seq < seq { low = middle + 1 } else { high = middle }
            }
            return low < inMemory.endIndex && inMemory[low].seq == seq ? inMemory[low] : nil
        }
    }

    public nonisolated func runIndex(account: String, run: String) throws -> RunIndex {
        let epoch = try requireCompleteCache()
        // The cache first: a generation it drops meanwhile is in the store by then.
        let durable = committer.durableSeq
        let cached = cache.runEntries(account: account, run: run).filter { $0.seq <= durable }
        let stored = try store.runSeqs(accountID: account, runID: run)
        try requireCompleteCache(since: epoch)  // (emptied for a reload meanwhile: part of the run may be missing)
        // Both ascending: merged, each seq once.
        guard !stored.isEmpty else { return RunIndex(seqs: cached.map(\.seq), inMemory: cached) }
        var seqs: [Int64] = []
        seqs.reserveCapacity(stored.count + cached.count)
        var (s, c) = (stored.startIndex, cached.startIndex)
        while s < stored.endIndex || c < cached.endIndex {
            let next = c == cached.endIndex || (s < stored.endIndex && stored[s] <= cached[c].seq) ? stored[s] : cached[c].seq
            if s < stored.endIndex && stored[s] == next { s += 1 }
            if c < cached.endIndex && cached[c].seq == next { c += 1 }
            seqs.append(next)
        }
        return RunIndex(seqs: seqs, inMemory: cached)
    }

    /// The run's accepted debits among `seqs` (ascending, from `index`), in
    /// journal order: from memory when held there, else read from the
    /// store — only those.
    public nonisolated func runEntries(account: String, run: String, among seqs: some Sequence<Int64>,
                                       in index: RunIndex) throws -> [JournalRecord] {
        var fromMemory: [JournalRecord] = []
        var fromStore: [Int64] = []
        for seq in seqs {
            if let record = index.record(seq) { fromMemory.append(record) } else { fromStore.append(seq) }
        }
        let stored = fromStore.isEmpty ? [] : try store.runEntries(accountID: account, runID: run, seqs: fromStore).map(JournalRecord.init)
        guard !fromMemory.isEmpty else { return stored }
        guard !stored.isEmpty else { return fromMemory }
        return (stored + fromMemory).sorted { $0.seq < $1.seq }
    }

    /// What a debit would do now, changing nothing (Quote): the record it
    /// would be appended as, and the balance before it; nil for an unknown
    /// account. Throws as Debit does for a debit whose sums would pass Int64.
    public func quote(_ command: DebitCommand) throws(LedgerError) -> (record: JournalRecord, balance: Int64)? {
        try requireServing()
        do {
            return try state.decideInPlace(command, seq: state.lastSeq + 1, nowMicros: clock.nowMicros(), checkingSums: true)
        } catch {
            throw Self.refusal(error)
        }
    }

    /// A debit outcome from the hot cache, once durable; nil when not cached.
    public func cachedDebit(account: String, key: String) async throws -> Billing_Journal_V1_Entry? {
        try requireServing()
        guard let record = cache.lookup(account: account, key: key).record else { return nil }
        try await committer.waiter(for: record.seq).wait()
        return record.entry
    }

    /// Whether the account exists (without copying its book out).
    public func hasAccount(_ id: String) -> Bool { state.accounts.index(forKey: id) != nil }

    /// Usage cells of an account between two UTC days (inclusive), once
    /// what was read is durable (`readBarrier`); nil for an unknown
    /// account. A debit changes only the cells of its own day, the clock's,
    /// so the days before yesterday are read at most `usageCellsPerTurn`
    /// cells per turn of the ledger's thread, its other work running
    /// between turns; yesterday's, today's (and any later day's) are read
    /// in the last turn, with the barrier: the answer is that moment's
    /// (yesterday too, for a wall clock stepped back across midnight). A
    /// reload meanwhile (a failed commit replaced the books) fails the
    /// read, UNAVAILABLE.
    public func committedUsage(account: String, fromDay: Int64, toDay: Int64) async throws(LedgerError) -> UsageCells? {
        let epoch = try requireCompleteCache()
        try requireServing()
        guard let index = state.accounts.index(forKey: account) else { return nil }
        guard state.accounts.values[index].isUsageIndexed else {
            return try await committed(try usageCells(account: account, fromDay: fromDay, toDay: toDay))
        }
        let today = floorDivide(clock.nowMicros(), 86_400_000_000)
        let byDay = state.accounts.values[index].usageDays.byDay
        let settledDays = byDay.keys.filter { $0 >= fromDay && $0 <= min(toDay, today - 2) }.sorted()
        var cells = UsageCells()
        cells.reserveCapacity(byDay.reduce(0) { $0 + ($1.key >= fromDay && $1.key <= toDay ? $1.value.count : 0) })
        let perTurn = max(configuration.usageCellsPerTurn, 1)
        var budget = perTurn
        for day in settledDays {
            var next = 0  // into the day's keys, which no debit adds to any more
            while true {
                guard let index = state.accounts.index(forKey: account) else { return nil }
                let read = Self.readUsage(of: day, from: state.accounts.values[index], startingAt: next, atMost: budget, into: &cells)
                next += read.count
                budget -= read.count
                if budget == 0 {
                    await Task.yield()
                    try requireCompleteCache(since: epoch)
                    try requireServing()
                    budget = perTurn
                }
                if read.done { break }
            }
        }
        guard let index = state.accounts.index(forKey: account) else { return nil }
        for day in state.accounts.values[index].usageDays.byDay.keys where day >= max(fromDay, today - 1) && day <= toDay {
            Self.readUsage(of: day, from: state.accounts.values[index], into: &cells)
        }
        return try await committed(cells)
    }

    /// Whether `usageCells(account:fromDay:toDay:)` reads at most
    /// `usageCellsPerTurn` cells (or the account is unknown): a caller on
    /// the ledger's thread may then read it in its turn.
    public func usageFitsOneTurn(account: String, fromDay: Int64, toDay: Int64) -> Bool {
        guard let index = state.accounts.index(forKey: account) else { return true }
        var count = 0
        for (day, keys) in state.accounts.values[index].usageDays.byDay where day >= fromDay && day <= toDay {
            count += keys.count
            if count > configuration.usageCellsPerTurn { return false }
        }
        return true
    }

    /// Usage cells of an account between two UTC days (inclusive), as they
    /// stand in memory, read in this turn: take a `readBarrier()` in the
    /// same turn and answer once it passes; ask `usageFitsOneTurn` first
    /// (else `committedUsage`). Each cell once, in no particular order.
    /// Only the days asked for are visited (`usageDays`): the whole table
    /// — every day × agent × line item the account ever had — was scanned
    /// on the ledger's thread per call, holding up every debit meanwhile.
    public func usageCells(account: String, fromDay: Int64, toDay: Int64) throws(LedgerError) -> UsageCells? {
        try requireServing()
        guard let index = state.accounts.index(forKey: account) else { return nil }
        let book = state.accounts.values[index]
        guard book.isUsageIndexed else {  // (books built by hand, in tests)
            return book.usage.filter { $0.key.day >= fromDay && $0.key.day <= toDay }.map { ($0.key, $0.value) }
        }
        var cells = UsageCells()
        for day in book.usageDays.byDay.keys where day >= fromDay && day <= toDay {
            Self.readUsage(of: day, from: book, into: &cells)
        }
        return cells
    }

    /// Adds `book`'s cells of `day` to `cells`, at most `atMost` of them
    /// from the `start`th of the day's keys on; returns how many, and
    /// whether that was the day's last.
    @discardableResult
    private static func readUsage(of day: Int64, from book: borrowing AccountBook, startingAt start: Int = 0, atMost: Int = .max,
                                  into cells: inout UsageCells) -> (count: Int, done: Bool) {
        guard let keys = book.usageDays.byDay[day], start < keys.count else { return (0, true) }
        let end = start + min(atMost, keys.count - start)
        for key in keys[start..<end] {
            if let cell = book.usage[key] { cells.append((key, cell)) }
        }
        return (end - start, end == keys.count)
    }
}
