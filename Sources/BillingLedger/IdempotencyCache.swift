public import BillingProto
import Synchronization

/// Debit outcomes by (account, key) and accepted debits by (account, run),
/// in memory for every debit the store's indexes do not cover yet, plus the
/// most recently indexed generation as a hot set for retries.
///
/// Generations follow checkpoints: the current one collects debits; when the
/// ledger queues a checkpoint it seals the current generation, whose index
/// rows go to the store with that checkpoint. Once the store has them, the
/// generation is "indexed", and the older indexed one is dropped. Memory is
/// therefore bounded by the checkpoint interval, not by the journal.
/// `generation` counts drops, so a caller that looked in the store before
/// entering the ledger can tell whether it must look again.
public final class IdempotencyCache: Sendable {
    struct Key: Hashable {
        let account: String
        let key: String
    }

    /// Keyed by the 64-bit hashes (`JournalKeyHash`): an integer key hashes
    /// and compares in a few instructions, two strings in a few hundred. A
    /// hit is checked against the entry's own account and key; a second key
    /// with a taken hash (not expected in the life of a ledger, but possible)
    /// goes to `collided`, keyed by its strings.
    ///
    /// The entries are in one array; the maps hold positions in it, and a
    /// run's entries are chained through `previousInRun`. Inserting is an
    /// append and two integer-valued map writes, and a dropped generation is
    /// freed as one array of entries plus maps and arrays of integers (no
    /// array per run, no reference per map slot to release).
    struct Generation {
        var entries: [JournalRecord] = []
        var debits: [Int64: Int32] = [:]
        var collided: [Key: Int32] = [:]
        /// By run hash, the position of the run's newest entry; runs sharing
        /// a hash share a chain, told apart on reading.
        var runHeads: [Int64: Int32] = [:]
        /// For each entry, the position of the previous entry of its run (-1: none).
        var previousInRun: [Int32] = []
        var rows = JournalIndexRows()
        /// The seq of the checkpoint it was sealed for (0 while current).
        var sealedAt: Int64 = 0
        var indexed = false

        func debit(_ key: Key, hash: Int64) -> JournalRecord? {
            if let position = debits[hash], IdempotencyCache.key(of: entries[Int(position)]) == key {
                return entries[Int(position)]
            }
            return collided.isEmpty ? nil : collided[key].map { entries[Int($0)] }
        }

        /// The entries chained under `runHash`, oldest first.
        func run(_ runHash: Int64) -> [JournalRecord] {
            var chain: [JournalRecord] = []
            var position = runHeads[runHash] ?? -1
            while position >= 0 {
                chain.append(entries[Int(position)])
                position = previousInRun[Int(position)]
            }
            return chain.reversed()
        }

        mutating func insert(_ entry: JournalRecord, key: Key, keyHash: Int64, runHash: Int64?) {
            // A generation holds a checkpoint interval (at most 10⁹ entries,
            // `LedgerConfiguration.maxCheckpointEvery`) plus, after a restart,
            // the entries replayed: far below 2³¹ in any memory this runs in.
            precondition(entries.count < Int(Int32.max), "a cache generation of 2³¹ entries")
            let position = Int32(entries.count)
            entries.append(entry)
            if let taken = debits[keyHash], IdempotencyCache.key(of: entries[Int(taken)]) != key {
                collided[key] = position
            } else {
                debits[keyHash] = position
            }
            rows.keys.append(.init(hash: keyHash, seq: entry.seq))
            if let runHash {
                previousInRun.append(runHeads.updateValue(position, forKey: runHash) ?? -1)
                rows.runs.append(.init(hash: runHash, seq: entry.seq))
            } else {
                previousInRun.append(-1)
            }
        }

        var count: Int { debits.count + collided.count }
    }

    struct State {
        var current = Generation()
        /// Oldest first.
        var sealed: [Generation] = []
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    /// `State.generation`, published for readers that take no lock: stored
    /// (releasing) inside the lock after each drop. Every debit reads it
    /// before entering the ledger; taking the mutex for it made the request
    /// threads and the ledger contend (~1.5 % of DebitBatch in the slow path).
    private let publishedGeneration = Atomic<UInt64>(0)

    public init() {}

    /// Generations dropped so far (what `lookup` returns beside an entry).
    /// A drop that happened before this read is seen by it: read first, it
    /// tells a caller whether a later lookup's generation moved on.
    public var generation: UInt64 { publishedGeneration.load(ordering: .acquiring) }

    public func lookup(account: String, key: String) -> (record: JournalRecord?, generation: UInt64) {
        lookup(account: account, key: key, hash: JournalKeyHash.debit(account: account, key: key))
    }

    /// `hash` is `JournalKeyHash.debit(account:key:)` (`DebitCommand.keyHash`).
    public func lookup(account: String, key: String, hash: Int64) -> (record: JournalRecord?, generation: UInt64) {
        let k = Key(account: account, key: key)
        return state.withLock { s in
            if let entry = s.current.debit(k, hash: hash) { return (entry, s.generation) }
            for generation in s.sealed.reversed() {
                if let entry = generation.debit(k, hash: hash) { return (entry, s.generation) }
            }
            return (nil, s.generation)
        }
    }

    /// Accepted debits of a run held here, in seq order.
    public func runEntries(account: String, run: String) -> [JournalRecord] {
        let hash = JournalKeyHash.run(account: account, run: run)
        let candidates = state.withLock { s in
            s.sealed.flatMap { $0.run(hash) } + s.current.run(hash)
        }
        return candidates.filter { $0.isAccepted && $0.accepted.accountID == account && $0.accepted.runID == run }
    }

    /// Records a debit entry (accepted or refused), its key and hashes read
    /// from the entry (replay), and returns its key's hash; other entries
    /// are ignored (nil). `keyHash`, when given, is used instead of the
    /// key's own (tests force collisions with it).
    @discardableResult
    public func insert(_ entry: JournalRecord, keyHash knownKeyHash: Int64? = nil) -> Int64? {
        let (account, key, runHash): (String, String, Int64?)
        switch entry.event {
        case .debitAccepted(let debit):
            (account, key, runHash) = (debit.accountID, debit.idempotencyKey, JournalKeyHash.run(account: debit.accountID, run: debit.runID))
        case .debitRefused(let refused):
            (account, key, runHash) = (refused.accountID, refused.idempotencyKey, nil)
        default:
            return nil
        }
        let keyHash = knownKeyHash ?? JournalKeyHash.debit(account: account, key: key)
        insert(entry, account: account, key: key, keyHash: keyHash, runHash: runHash)
        return keyHash
    }

    /// `insert` of an entry read back from the store (replay, tests).
    @discardableResult
    public func insert(_ entry: Billing_Journal_V1_Entry, keyHash: Int64? = nil) -> Int64? {
        insert(JournalRecord(entry), keyHash: keyHash)
    }

    /// Records a debit entry whose account, key and hashes the caller has
    /// (the ledger, from the `DebitCommand`): the entry's event is not read.
    /// `runHash` is nil for a refusal (only accepted debits count in a run).
    public func insert(_ entry: JournalRecord, account: String, key: String, keyHash: Int64, runHash: Int64?) {
        let key = Key(account: account, key: key)
        state.withLock { s in s.current.insert(entry, key: key, keyHash: keyHash, runHash: runHash) }
    }

    /// (account, idempotency key) of a debit entry; nil for other entries.
    /// (An accepted debit's read in place: `event` would copy it.)
    static func key(of entry: JournalRecord) -> Key? {
        if entry.isAccepted { return Key(account: entry.accepted.accountID, key: entry.accepted.idempotencyKey) }
        return key(of: entry.event)
    }

    static func key(of entry: Billing_Journal_V1_Entry) -> Key? {
        key(of: entry.event)
    }

    private static func key(of event: Billing_Journal_V1_Entry.OneOf_Event?) -> Key? {
        switch event {
        case .debitAccepted(let debit): Key(account: debit.accountID, key: debit.idempotencyKey)
        case .debitRefused(let refused): Key(account: refused.accountID, key: refused.idempotencyKey)
        default: nil
        }
    }

    /// Closes the current generation for the checkpoint at `seq` and returns
    /// its index rows (unsorted), which must be stored with that checkpoint.
    public func seal(atSeq seq: Int64) -> JournalIndexRows {
        state.withLock { s in
            let rows = s.current.rows
            s.current.rows = JournalIndexRows()
            s.current.sealedAt = seq
            s.sealed.append(s.current)
            s.current = Generation()
            return rows
        }
    }

    /// The store's indexes now cover every debit up to `seq`: the generations
    /// sealed at or before it are indexed; all but the newest of those are dropped.
    public func indexed(through seq: Int64) {
        let dropped = state.withLock { s -> [Generation] in
            for index in s.sealed.indices where s.sealed[index].sealedAt <= seq {
                s.sealed[index].indexed = true
            }
            var dropped: [Generation] = []
            while s.sealed.count >= 2 && s.sealed[0].indexed && s.sealed[1].indexed {
                dropped.append(s.sealed.removeFirst())
                s.generation += 1
            }
            publishedGeneration.store(s.generation, ordering: .releasing)
            return dropped
        }
        // Freed here, outside the lock: a generation holds a checkpoint
        // interval's entries, and lookups and inserts must not wait for that.
        _ = dropped
    }

    public func removeAll() {
        let dropped = state.withLock { s -> (Generation, [Generation]) in
            defer {
                s.current = Generation()
                s.sealed = []
                s.generation += 1
                publishedGeneration.store(s.generation, ordering: .releasing)
            }
            return (s.current, s.sealed)
        }
        _ = dropped  // freed here, outside the lock
    }

    /// Debit outcomes held.
    public var count: Int {
        state.withLock { s in
            s.sealed.reduce(s.current.count) { $0 + $1.count }
        }
    }
}
