import BillingCore
import BillingLedger
import BillingProto
import Dispatch
import Foundation
import SwiftProtobuf
import Synchronization

typealias Entry = Billing_Journal_V1_Entry

/// Probabilities of the faults the disk injects, drawn from its seeded generator.
struct FaultRates: Sendable {
    /// `append` throws before writing anything.
    var appendFails = 0.0
    /// `append` commits, then throws: the entries are durable, the ack is lost.
    var ackLost = 0.0
    /// `writeCheckpoint` throws, storing nothing.
    var checkpointFails = 0.0
    /// The process dies between two transactions of a checkpoint or key
    /// filter write (`SQLiteDisk` only: the in-memory disk writes one step).
    var checkpointCrashes = 0.0

    static let none = FaultRates()
}

/// A fault for one upcoming `append`, taken before any random one.
enum ScriptedFault: Sendable {
    case failAtomically
    case commitThenThrow
    /// Fails as `failAtomically`, with an error that leaves the disk's
    /// state unknown (an I/O error: `LedgerStoreError`).
    case mediaFailure
    /// Opens `entered`, blocks the writing thread until `release` is
    /// signalled, then commits (or fails atomically when `thenFail`).
    case block(entered: AsyncLatch, release: DispatchSemaphore, thenFail: Bool)
}

/// What the disk throws: an injected fault, a write the SQLite schema would
/// refuse, or any call from a process that has crashed.
struct StoreFault: LedgerStoreError, CustomStringConvertible {
    let description: String
    var leavesDiskStateUnknown = false
    var isTransient = false
}

/// The durable bytes an `InMemoryLedgerStore` reads and writes: the journal
/// (serialized, as SQLite holds it) and checkpoints. It outlives the stores
/// opened on it, as a database file outlives a process: opening a store
/// starts a new session and the previous session's store is dead.
///
/// It enforces what the SQLite schema enforces (seqs continue the journal
/// without gaps, one debit per account and key, no checkpoint ahead of the
/// journal) and records every such refusal (`violations`, `checkpointsAhead`):
/// the ledger must never attempt one.
final class SimulatedDisk: Sendable {
    struct DebitKey: Hashable {
        let account: String
        let key: String
    }

    struct RunKey: Hashable {
        let account: String
        let run: String
    }

    struct FailedAppend: Sendable {
        let call: Int
        let entries: [Entry]
    }

    struct Contents {
        var journal: [[UInt8]] = []
        /// The `append` call that wrote each journal entry.
        var writtenBy: [Int] = []
        /// Every debit key journaled (the ledger must never write one twice).
        var debitIndex: [DebitKey: Int] = [:]
        /// The store's indexes: written with checkpoints, by hash, as the
        /// ledger hands them over (JournalIndexRows).
        var keyHashIndex: [Int64: [Int]] = [:]
        var runHashIndex: [Int64: [Int]] = [:]
        /// The index generation (checkpoint seq) each key row was written with, by journal position.
        var keyRowGeneration: [Int: Int64] = [:]
        var indexedThrough: Int64 = 0
        /// The newest stored key filter (`writeKeyFilter`).
        var keyFilter: (seq: Int64, contents: Data)?
        var keyFiltersStored = 0
        var keyFilterUnreadable = false
        /// Key hashes `forEachIndexedKeyHash` handed out.
        var keyHashesRead = 0
        /// Newest last; the two newest are kept, as the SQLite store does.
        var checkpoints: [[UInt8]] = []
        var session = 0
        var rng: SplitMix64
        var faults: FaultRates
        var script: [ScriptedFault] = []
        var appendCalls = 0
        var atomicallyFailed: [FailedAppend] = []
        var ackLost: [FailedAppend] = []
        /// Every checkpoint stored, with the session that wrote it, for the auditor.
        var writtenCheckpoints: [(session: Int, bytes: [UInt8])] = []
        var checkpointFailures = 0
        /// Sessions opened, faults injected and checkpoints stored, in order: for failure messages.
        var events: [String] = []
        var checkpointsWritten = 0
        var violations: [String] = []
        var checkpointsAhead: [String] = []
        /// `after` of every `forEachEntry` call and how many entries it gave.
        var reads: [(after: Int64, entries: Int)] = []
        /// Calls of `debitEntry` (key lookups that reached the store).
        var keyLookups = 0
        /// Calls of `forEachIndexedKeyHash` (key filters rebuilt from the index).
        var keyHashScans = 0
    }

    private let contents: Mutex<Contents>
    /// Run at the start of every key filter write, on the writing thread (a
    /// test holds a write there to look at the ledger meanwhile).
    let keyFilterGate = Mutex<(@Sendable () -> Void)?>(nil)

    init(seed: UInt64 = 0, faults: FaultRates = .none) {
        contents = Mutex(Contents(rng: SplitMix64(seed: seed ^ 0xD15C_FA17), faults: faults))
    }

    // MARK: Control

    var events: [String] { contents.withLock { $0.events } }

    func openSession() -> Int {
        contents.withLock { c in
            c.session += 1
            c.events.append("session \(c.session) opened at journal \(c.journal.count)")
            return c.session
        }
    }

    func setFaults(_ faults: FaultRates) { contents.withLock { $0.faults = faults } }

    func script(_ fault: ScriptedFault) { contents.withLock { $0.script.append(fault) } }

    // MARK: Inspection

    func journal() -> [Entry] {
        contents.withLock { $0.journal }.map(Self.decode)
    }

    var writtenBy: [Int] { contents.withLock { $0.writtenBy } }
    var atomicallyFailed: [FailedAppend] { contents.withLock { $0.atomicallyFailed } }
    var ackLost: [FailedAppend] { contents.withLock { $0.ackLost } }
    var violations: [String] { contents.withLock { $0.violations } }
    var checkpointsAhead: [String] { contents.withLock { $0.checkpointsAhead } }
    var reads: [(after: Int64, entries: Int)] { contents.withLock { $0.reads } }
    var keyLookups: Int { contents.withLock { $0.keyLookups } }
    var keyHashScans: Int { contents.withLock { $0.keyHashScans } }
    var checkpointStatistics: (written: Int, failed: Int) {
        contents.withLock { ($0.checkpointsWritten, $0.checkpointFailures) }
    }

    /// Every checkpoint ever stored, oldest first, and the session that wrote it.
    func writtenCheckpoints() -> [(session: Int, checkpoint: Billing_Journal_V1_Checkpoint)] {
        contents.withLock { $0.writtenCheckpoints }.map { ($0.session, Self.decodeCheckpoint($0.bytes)) }
    }

    /// Overwrites the newest checkpoint's bytes (a damaged file, in tests).
    func replaceLatestCheckpoint(_ checkpoint: Billing_Journal_V1_Checkpoint) {
        contents.withLock { c in
            guard !c.checkpoints.isEmpty else { return }
            c.checkpoints[c.checkpoints.count - 1] = (try? checkpoint.serializedBytes()) ?? []
        }
    }

    func latestCheckpointSeq() -> Int64? {
        contents.withLock { $0.checkpoints.last }.map { Self.decodeCheckpoint($0).seq }
    }

    /// Calls of `append` so far, failed ones included.
    var appendCallCount: Int { contents.withLock { $0.appendCalls } }

    // MARK: The store's operations, for session `session`

    func append(_ entries: [Entry], session: Int) throws {
        var fault = try contents.withLock { c throws -> ScriptedFault? in
            try Self.requireLive(c, session)
            c.appendCalls += 1
            if !c.script.isEmpty { return c.script.removeFirst() }
            if c.rng.chance(c.faults.appendFails) { return .failAtomically }
            if c.rng.chance(c.faults.ackLost) { return .commitThenThrow }
            return nil
        }
        // Blocks outside the lock, so that readers go on.
        if case .block(let entered, let release, let thenFail)? = fault {
            entered.open()
            release.wait()
            fault = thenFail ? .failAtomically : nil
        }
        let bytes = try entries.map { entry -> [UInt8] in try entry.serializedBytes() }
        try contents.withLock { c in
            try Self.requireLive(c, session)
            let call = c.appendCalls
            try Self.checkConstraints(entries, &c)
            if case .mediaFailure? = fault {
                c.atomicallyFailed.append(FailedAppend(call: call, entries: entries))
                throw StoreFault(description: "injected: I/O error at seq \(entries.first?.seq ?? 0)...", leavesDiskStateUnknown: true)
            }
            if case .failAtomically? = fault {
                c.atomicallyFailed.append(FailedAppend(call: call, entries: entries))
                c.events.append("append \(entries.first!.seq)...\(entries.last!.seq) by session \(session) failed atomically")
                throw StoreFault(description: "injected: append of seq \(entries.first?.seq ?? 0)... failed, nothing written")
            }
            for (entry, body) in zip(entries, bytes) {
                let index = c.journal.count
                c.journal.append(body)
                c.writtenBy.append(call)
                if let key = Self.debitKey(entry) { c.debitIndex[key] = index }
            }
            if case .commitThenThrow? = fault {
                c.ackLost.append(FailedAppend(call: call, entries: entries))
                c.events.append("append \(entries.first!.seq)...\(entries.last!.seq) by session \(session) committed, ack lost")
                throw StoreFault(description: "injected: append of seq \(entries.first?.seq ?? 0)... committed, then the ack was lost")
            }
        }
    }

    func writeCheckpoint(_ checkpoint: Billing_Journal_V1_Checkpoint, index: JournalIndexRows, session: Int) throws {
        let bytes: [UInt8] = try checkpoint.serializedBytes()
        try contents.withLock { c in
            try Self.requireLive(c, session)
            if c.rng.chance(c.faults.checkpointFails) {
                c.checkpointFailures += 1
                throw StoreFault(description: "injected: checkpoint at seq \(checkpoint.seq) failed")
            }
            guard checkpoint.seq <= Int64(c.journal.count) else {
                // SQLite refuses it too (checkpointAhead); the ledger should never ask.
                c.checkpointsAhead.append("checkpoint at seq \(checkpoint.seq) ahead of the journal (last seq \(c.journal.count))")
                throw StoreFault(description: "checkpoint ahead of the journal")
            }
            for row in index.keys + index.runs where row.seq > checkpoint.seq || row.seq < 1 {
                c.violations.append("index row for seq \(row.seq) with the checkpoint at seq \(checkpoint.seq)")
            }
            for row in index.keys {
                c.keyHashIndex[row.hash, default: []].append(Int(row.seq) - 1)
                c.keyRowGeneration[Int(row.seq) - 1] = checkpoint.seq
            }
            for row in index.runs { c.runHashIndex[row.hash, default: []].append(Int(row.seq) - 1) }
            c.indexedThrough = max(c.indexedThrough, checkpoint.seq)
            c.checkpoints.append(bytes)
            c.writtenCheckpoints.append((session, bytes))
            c.events.append("checkpoint seq \(checkpoint.seq) by session \(session) (journal at \(c.journal.count))")
            if c.checkpoints.count > 2 { c.checkpoints.removeFirst(c.checkpoints.count - 2) }
            c.checkpointsWritten += 1
        }
    }

    func latestCheckpoint(session: Int) throws -> Billing_Journal_V1_Checkpoint? {
        try contents.withLock { c in
            try Self.requireLive(c, session)
            return c.checkpoints.last
        }.map(Self.decodeCheckpoint)
    }

    func forEachEntry(after seq: Int64, session: Int, _ body: (Entry) throws -> Void) throws {
        let slice = try contents.withLock { c in
            try Self.requireLive(c, session)
            let start = Int(max(seq, 0))
            let slice = start < c.journal.count ? Array(c.journal[start...]) : []
            c.reads.append((seq, slice.count))
            return slice
        }
        for bytes in slice { try body(Self.decode(bytes)) }
    }

    func debitEntry(accountID: String, idempotencyKey: String, session: Int) throws -> Entry? {
        let hash = JournalKeyHash.debit(account: accountID, key: idempotencyKey)
        return try contents.withLock { c in
            try Self.requireLive(c, session)
            c.keyLookups += 1
            return (c.keyHashIndex[hash] ?? []).map { c.journal[$0] }
        }.map(Self.decode).first { Self.debitKey($0) == DebitKey(account: accountID, key: idempotencyKey) }
    }

    func runEntries(accountID: String, runID: String, session: Int) throws -> [Entry] {
        let hash = JournalKeyHash.run(account: accountID, run: runID)
        return try contents.withLock { c in
            try Self.requireLive(c, session)
            return Set(c.runHashIndex[hash] ?? []).sorted().map { c.journal[$0] }
        }.map(Self.decode).filter { entry in
            if case .debitAccepted(let debit) = entry.event { return debit.accountID == accountID && debit.runID == runID }
            return false
        }
    }

    func indexedThrough(session: Int) throws -> Int64 {
        try contents.withLock { c in
            try Self.requireLive(c, session)
            return c.indexedThrough
        }
    }

    /// Damages the stored indexes, for `billing verify` to find.
    func dropIndexRow(seq: Int64, runs: Bool) {
        contents.withLock { c in
            if runs {
                for hash in c.runHashIndex.keys { c.runHashIndex[hash]!.removeAll { $0 == Int(seq) - 1 } }
            } else {
                for hash in c.keyHashIndex.keys { c.keyHashIndex[hash]!.removeAll { $0 == Int(seq) - 1 } }
            }
        }
    }

    func addIndexRow(_ row: JournalIndexRows.Row, runs: Bool) {
        contents.withLock { c in
            if runs { c.runHashIndex[row.hash, default: []].append(Int(row.seq) - 1) } else { c.keyHashIndex[row.hash, default: []].append(Int(row.seq) - 1) }
        }
    }

    func forEachIndexRow(runs: Bool, session: Int, _ body: (JournalIndexRows.Row) throws -> Void) throws {
        let rows = try contents.withLock { c in
            try Self.requireLive(c, session)
            return (runs ? c.runHashIndex : c.keyHashIndex).flatMap { hash, indexes in
                indexes.map { JournalIndexRows.Row(hash: hash, seq: Int64($0) + 1) }
            }
        }
        for row in rows { try body(row) }
    }

    func forEachIndexedKeyHash(after generation: Int64, session: Int, _ body: (Int64) throws -> Void) throws {
        let hashes = try contents.withLock { c in
            try Self.requireLive(c, session)
            c.keyHashScans += 1
            let hashes = c.keyHashIndex.flatMap { hash, rows in
                rows.filter { c.keyRowGeneration[$0, default: 0] > generation }.map { _ in hash }
            }
            c.keyHashesRead += hashes.count
            return hashes
        }
        for hash in hashes { try body(hash) }
    }

    /// Stores the filter (failing as often as checkpoints do), after
    /// checking its promise: every debit key journaled up to `seq` is in it.
    func writeKeyFilter(_ filterContents: Data, seq: Int64, session: Int) throws {
        keyFilterGate.withLock { $0 }?()
        let filter = KeyFilter(bytes: filterContents.count)
        _ = filter.load(filterContents)
        try contents.withLock { c in
            try Self.requireLive(c, session)
            if c.rng.chance(c.faults.checkpointFails) {
                throw StoreFault(description: "injected: key filter at seq \(seq) failed")
            }
            for (key, position) in c.debitIndex where position < seq
                && !filter.mightContain(JournalKeyHash.debit(account: key.account, key: key.key)) {
                c.violations.append("key filter at seq \(seq) lacks \(key.account)/\(key.key) (seq \(position + 1))")
            }
            c.keyFilter = (seq, filterContents)
            c.keyFiltersStored += 1
            c.events.append("key filter seq \(seq) by session \(session)")
        }
    }

    func latestKeyFilter(session: Int) throws -> (seq: Int64, contents: Data)? {
        try contents.withLock { c in
            try Self.requireLive(c, session)
            if c.keyFilterUnreadable { throw StoreFault(description: "injected: the stored key filter is damaged") }
            return c.keyFilter
        }
    }

    /// Makes the stored key filter unreadable (a damaged part).
    func damageKeyFilter() {
        contents.withLock { $0.keyFilterUnreadable = true }
    }

    var keyFiltersStored: Int { contents.withLock { $0.keyFiltersStored } }

    /// Damages the stored key filter, for `billing verify` to find.
    func replaceKeyFilter(_ filterContents: Data, seq: Int64) {
        contents.withLock { $0.keyFilter = (seq, filterContents) }
    }
    var keyHashesRead: Int { contents.withLock { $0.keyHashesRead } }

    func lastSeq(session: Int) throws -> Int64 {
        try contents.withLock { c in
            try Self.requireLive(c, session)
            return Int64(c.journal.count)
        }
    }

    /// Everything but debits, newest first, as the SQLite store's audit query.
    func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int, session: Int) throws -> [Entry] {
        let journal = try contents.withLock { c in
            try Self.requireLive(c, session)
            return c.journal
        }
        var found: [Entry] = []
        for bytes in journal.reversed() where found.count < limit {
            let entry = Self.decode(bytes)
            let account: String
            switch entry.event {
            case .accountCreated(let created): account = created.accountID
            case .creditsGranted(let grant): account = grant.accountID
            case .apiKeyCreated, .apiKeyRevoked, .clockSet, .plansConfigured: account = ""
            case .lifecycle(let event): account = event.accountID
            case .chargeRecorded(let recorded): account = recorded.charge.accountID
            case .creditsPurchased(let purchase): account = purchase.accountID
            case .chargeStarted(let started): account = started.accountID
            case .debitAccepted, .debitRefused, nil: continue
            }
            guard accountID.isEmpty || account == accountID, entry.atUnixMicros >= sinceMicros, entry.seq < beforeSeq
            else { continue }
            found.append(entry)
        }
        return found
    }

    // MARK: Helpers

    private static func requireLive(_ c: borrowing Contents, _ session: Int) throws {
        guard session == c.session else { throw StoreFault(description: "the process crashed (session \(session) is over)") }
    }

    /// The schema's constraints, checked before anything is written.
    private static func checkConstraints(_ entries: [Entry], _ c: inout Contents) throws {
        var keys: Set<DebitKey> = []
        for (offset, entry) in entries.enumerated() {
            let expected = Int64(c.journal.count + offset + 1)
            guard entry.seq == expected else {
                c.violations.append("append of seq \(entry.seq) where the journal continues at \(expected)")
                throw StoreFault(description: "seq not consecutive: expected \(expected), found \(entry.seq)")
            }
            if let key = debitKey(entry) {
                guard c.debitIndex[key] == nil, keys.insert(key).inserted else {
                    c.violations.append("second debit entry (seq \(entry.seq)) for account \(key.account) key \(key.key)")
                    throw StoreFault(description: "UNIQUE constraint failed: journal_debit_key")
                }
            }
        }
    }

    static func debitKey(_ entry: Entry) -> DebitKey? {
        switch entry.event {
        case .debitAccepted(let debit): DebitKey(account: debit.accountID, key: debit.idempotencyKey)
        case .debitRefused(let refused): DebitKey(account: refused.accountID, key: refused.idempotencyKey)
        default: nil
        }
    }

    private static func decode(_ bytes: [UInt8]) -> Entry {
        do {
            return try Entry(serializedBytes: bytes)
        } catch {
            preconditionFailure("journal entry written by this disk does not decode: \(error)")
        }
    }

    private static func decodeCheckpoint(_ bytes: [UInt8]) -> Billing_Journal_V1_Checkpoint {
        do {
            return try Billing_Journal_V1_Checkpoint(serializedBytes: bytes)
        } catch {
            preconditionFailure("checkpoint written by this disk does not decode: \(error)")
        }
    }
}
