import BillingCore
import BillingLedger
import BillingProto
@testable import BillingSQLite
import Foundation
import Synchronization

/// A SQLite database file as the simulation's disk: every session is the
/// server's own `SQLiteLedgerStore` on the file (opened as its owner, as
/// `billing serve` opens it), behind a `FaultySQLiteStore` that injects the
/// faults of `FaultRates` — an append that fails before writing, one that
/// commits and then throws, a checkpoint that fails, and a process that dies
/// between two transactions of a checkpoint or key filter write.
///
/// A crash is a new session: the old store's calls are refused from then on
/// (its process is gone) and nothing it started is cleaned up after it; the
/// next store opened on the file finds what SQLite committed. Writes run
/// under this disk's lock, so a crash falls between two of SQLite's
/// transactions, never inside one (SQLite makes a transaction atomic across
/// a real crash; this does not test SQLite).
final class SQLiteDisk: SimulationDisk {
    struct State {
        var session = 0
        /// The live session died on its own (mid-checkpoint) and was not restarted yet.
        var dead = false
        var rng: SplitMix64
        var faults = FaultRates.none
        var appendCalls = 0
        /// The append call that wrote each seq.
        var writtenBy: [Int64: Int] = [:]
        var atomicallyFailed: [SimulatedDisk.FailedAppend] = []
        var ackLost: [SimulatedDisk.FailedAppend] = []
        var violations: [String] = []
        var events: [String] = []
        var checkpoints: [(session: Int, bytes: [UInt8])] = []
        /// Checkpoint-write transactions the live session may still commit
        /// before it dies (nil: it does not die in this write).
        var transactionsBeforeCrash: Int?
        var checkpointCrashes = 0
        /// Checkpoint and key filter writes begun with faults on.
        var faultyWrites = 0
        /// The live session's store, closed when the next one opens.
        var store: SQLiteLedgerStore?
    }

    let directory: URL
    var path: String { directory.appendingPathComponent("ledger.db").path }
    private let state: Mutex<State>

    init(seed: UInt64) throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("billing-simulation-\(seed)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        state = Mutex(State(rng: SplitMix64(seed: seed ^ 0x5_0117E)))
    }

    /// Deletes the database (the caller's ledgers closed).
    func remove() { try? FileManager.default.removeItem(at: directory) }

    func setFaults(_ faults: FaultRates) { state.withLock { $0.faults = faults } }

    var crashPending: Bool { state.withLock { $0.dead } }
    var checkpointCrashes: Int { state.withLock { $0.checkpointCrashes } }

    func openStore() throws -> any LedgerStore {
        try state.withLock { s in
            s.session += 1
            s.dead = false
            s.transactionsBeforeCrash = nil
            // Under the lock: no transaction of the previous session runs
            // meanwhile, and none after (closed: not even the cleanup the
            // store does after a failed checkpoint write — a crashed process
            // does nothing more).
            s.store?.close()
            let store = try SQLiteLedgerStore(path: path, synchronous: .normal, readerConnections: 2, owner: true)
            s.store = store
            let session = s.session
            s.events.append("session \(session) opened at journal \(try store.lastSeq())")
            store.checkpointTransactionGate.withLock {
                $0 = { [weak self] transaction in
                    guard let self else { throw StoreFault(description: "the disk is gone") }
                    try self.checkpointTransaction(session: session, store: store, transaction)
                }
            }
            return FaultySQLiteStore(disk: self, session: session, inner: store)
        }
    }

    // MARK: Inspection

    func journal() -> [Entry] {
        do {
            let reader = try SQLiteLedgerStore(path: path, readerConnections: 1, migrating: false)
            defer { reader.close() }
            var entries: [Entry] = []
            try reader.forEachEntry(after: 0) { entries.append($0) }
            return entries
        } catch {
            preconditionFailure("the simulation's database cannot be read: \(error)")
        }
    }

    var writtenBy: [Int] {
        state.withLock { s in s.writtenBy.sorted { $0.key < $1.key }.map(\.value) }
    }

    var atomicallyFailed: [SimulatedDisk.FailedAppend] { state.withLock { $0.atomicallyFailed } }
    var ackLost: [SimulatedDisk.FailedAppend] { state.withLock { $0.ackLost } }
    var violations: [String] { state.withLock { $0.violations } }
    var events: [String] { state.withLock { $0.events } }

    func writtenCheckpoints() -> [(session: Int, checkpoint: Billing_Journal_V1_Checkpoint)] {
        state.withLock { $0.checkpoints }.map { written in
            do {
                return (written.session, try Billing_Journal_V1_Checkpoint(serializedBytes: written.bytes))
            } catch {
                preconditionFailure("a checkpoint the store took does not decode: \(error)")
            }
        }
    }

    // MARK: The faulty store's operations

    func requireLive(session: Int) throws {
        try state.withLock { try Self.requireLive($0, session) }
    }

    private static func requireLive(_ s: borrowing State, _ session: Int) throws {
        guard session == s.session, !s.dead else { throw StoreFault(description: "the process crashed (session \(session) is over)") }
    }

    func append(_ records: [JournalRecord], session: Int, inner: SQLiteLedgerStore) throws {
        try state.withLock { s in
            try Self.requireLive(s, session)
            s.appendCalls += 1
            let call = s.appendCalls
            let (first, last) = (records.first?.seq ?? 0, records.last?.seq ?? 0)
            if s.rng.chance(s.faults.appendFails) {
                s.atomicallyFailed.append(SimulatedDisk.FailedAppend(call: call, entries: records.map(\.entry)))
                s.events.append("append \(first)...\(last) by session \(session) failed atomically")
                throw StoreFault(description: "injected: append of seq \(first)... failed, nothing written")
            }
            do {
                try inner.append(records)
            } catch {
                s.violations.append("append of seq \(first)...\(last) refused by SQLite: \(error)")
                throw error
            }
            for record in records { s.writtenBy[record.seq] = call }
            if s.rng.chance(s.faults.ackLost) {
                s.ackLost.append(SimulatedDisk.FailedAppend(call: call, entries: records.map(\.entry)))
                s.events.append("append \(first)...\(last) by session \(session) committed, ack lost")
                throw StoreFault(description: "injected: append of seq \(first)... committed, then the ack was lost")
            }
        }
    }

    /// Before a checkpoint or key filter write: throws an injected failure,
    /// or decides whether the process dies in the middle of it.
    func beginCheckpointWrite(session: Int, what: String) throws {
        try state.withLock { s in
            try Self.requireLive(s, session)
            if s.rng.chance(s.faults.checkpointFails) {
                s.events.append("\(what) by session \(session) failed")
                throw StoreFault(description: "injected: \(what) failed")
            }
            // The store writes two or more transactions: die before one of the
            // first three, or after the last (`endCheckpointWrite`) — written,
            // the process gone before it heard. At least one a run: the
            // fifth write dies if none has (coverage, whatever the timing).
            if s.faults.checkpointCrashes > 0 { s.faultyWrites += 1 }
            let forced = s.faults.checkpointCrashes > 0 && s.checkpointCrashes == 0 && s.faultyWrites >= 5
            s.transactionsBeforeCrash = forced || s.rng.chance(s.faults.checkpointCrashes) ? s.rng.int(0...2) : nil
        }
    }

    /// After a checkpoint or key filter write (`written`: all of it
    /// committed): records the checkpoint, and the process dies now if it
    /// was to die in this write and has not (fewer transactions than drawn).
    func endCheckpointWrite(session: Int, written: Bool, checkpoint: EncodedCheckpoint?, store: SQLiteLedgerStore) throws {
        try state.withLock { s in
            if written, let checkpoint {
                s.checkpoints.append((session, checkpoint.bytes))
                s.events.append("checkpoint seq \(checkpoint.seq) by session \(session)")
            }
            guard session == s.session, !s.dead, s.transactionsBeforeCrash != nil else { return }
            s.transactionsBeforeCrash = nil
            guard written else { return }
            try Self.die(&s, session: session, store: store, "right after a checkpoint write")
        }
    }

    private static func die(_ s: inout State, session: Int, store: SQLiteLedgerStore, _ when: String) throws -> Never {
        s.dead = true
        s.transactionsBeforeCrash = nil
        s.checkpointCrashes += 1
        s.events.append("session \(session) died \(when)")
        // Nothing more from this process: the store's cleanup after a
        // failed write finds it closed.
        store.close()
        throw StoreFault(description: "the process died \(when)")
    }

    /// One transaction of a checkpoint or key filter write (the store's
    /// gate): committed, or the process dies before it.
    private func checkpointTransaction(session: Int, store: SQLiteLedgerStore, _ transaction: () throws -> Void) throws {
        try state.withLock { s in
            try Self.requireLive(s, session)
            if let remaining = s.transactionsBeforeCrash {
                guard remaining > 0 else { try Self.die(&s, session: session, store: store, "in the middle of a checkpoint write") }
                s.transactionsBeforeCrash = remaining - 1
            }
            try transaction()
        }
    }
}

/// One session's store on a `SQLiteDisk`: the real SQLite store, its calls
/// refused once the session is over, its writes subject to the disk's faults.
final class FaultySQLiteStore: LedgerStore {
    let disk: SQLiteDisk
    let session: Int
    let inner: SQLiteLedgerStore

    init(disk: SQLiteDisk, session: Int, inner: SQLiteLedgerStore) {
        self.disk = disk
        self.session = session
        self.inner = inner
    }

    /// Runs a read on the live session's store.
    private func read<T>(_ body: () throws -> T) throws -> T {
        try disk.requireLive(session: session)
        do {
            return try body()
        } catch {
            try disk.requireLive(session: session)  // closed meanwhile: the crash, not the store, ended it
            throw error
        }
    }

    func append(_ records: [JournalRecord]) throws {
        try disk.append(records, session: session, inner: inner)
    }

    func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
        try faultyWrite("checkpoint at seq \(checkpoint.seq)", checkpoint: checkpoint) {
            try inner.writeCheckpoint(encoded: checkpoint, index: index)
        }
    }

    func writeKeyFilter(_ contents: Data, seq: Int64) throws {
        try faultyWrite("key filter at seq \(seq)", checkpoint: nil) { try inner.writeKeyFilter(contents, seq: seq) }
    }

    /// A checkpoint or key filter write under the disk's faults (see
    /// `SQLiteDisk.beginCheckpointWrite` and `endCheckpointWrite`).
    private func faultyWrite(_ what: String, checkpoint: EncodedCheckpoint?, _ write: () throws -> Void) throws {
        try disk.beginCheckpointWrite(session: session, what: what)
        do {
            try write()
        } catch {
            try? disk.endCheckpointWrite(session: session, written: false, checkpoint: checkpoint, store: inner)
            throw error
        }
        try disk.endCheckpointWrite(session: session, written: true, checkpoint: checkpoint, store: inner)
    }

    func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint? { try read { try inner.latestCheckpoint() } }

    func forEachEntry(after seq: Int64, _ body: (Entry) throws -> Void) throws {
        try read { try inner.forEachEntry(after: seq, body) }
    }

    func debitEntry(accountID: String, idempotencyKey: String) throws -> Entry? {
        try read { try inner.debitEntry(accountID: accountID, idempotencyKey: idempotencyKey) }
    }

    func runEntries(accountID: String, runID: String) throws -> [Entry] {
        try read { try inner.runEntries(accountID: accountID, runID: runID) }
    }

    func runSeqs(accountID: String, runID: String) throws -> [Int64] {
        try read { try inner.runSeqs(accountID: accountID, runID: runID) }
    }

    func runEntries(accountID: String, runID: String, seqs: [Int64]) throws -> [Entry] {
        try read { try inner.runEntries(accountID: accountID, runID: runID, seqs: seqs) }
    }

    func indexedThrough() throws -> Int64 { try read { try inner.indexedThrough() } }

    func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws {
        try read { try inner.forEachIndexedKeyHash(after: generation, body) }
    }

    func latestKeyFilter() throws -> (seq: Int64, contents: Data)? { try read { try inner.latestKeyFilter() } }

    func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws {
        try read { try inner.forEachIndexRow(runs: runs, through: through, body) }
    }

    func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row] {
        try read { try inner.keyRowsSharingAHash(through: through) }
    }

    func lastSeq() throws -> Int64 { try read { try inner.lastSeq() } }

    func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Entry] {
        try read { try inner.auditEntries(accountID: accountID, sinceMicros: sinceMicros, beforeSeq: beforeSeq, limit: limit) }
    }
}
