import Foundation
import Synchronization
import BillingLedger
import BillingProto
import SwiftProtobuf

/// A `LedgerStore` over a `SimulatedDisk`, as one process sees it. Opening
/// another store on the same disk is a restart after a crash: from then on
/// this one refuses every call, so the abandoned ledger's journal thread
/// writes nothing more, while the disk keeps everything committed.
final class InMemoryLedgerStore: LedgerStore {
    let disk: SimulatedDisk
    let session: Int
    /// While set, `indexedThrough` (the first read of a reload) fails: a
    /// store that cannot be read for a while (a disk gone and back).
    let readsFail = Mutex(false)

    init(disk: SimulatedDisk) {
        self.disk = disk
        self.session = disk.openSession()
    }

    convenience init(seed: UInt64 = 0, faults: FaultRates = .none) {
        self.init(disk: SimulatedDisk(seed: seed, faults: faults))
    }

    /// The process dies and a new one opens the same disk.
    func restart() -> InMemoryLedgerStore { InMemoryLedgerStore(disk: disk) }

    func append(_ records: [JournalRecord]) throws { try disk.append(records.map(\.entry), session: session) }

    /// Run before each checkpoint is written (tests: hold a write under way).
    let checkpointGate = Mutex<(@Sendable () -> Void)?>(nil)
    /// While set, a checkpoint write begun fails (read before the gate).
    let checkpointsFail = Mutex(false)

    func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
        let fails = checkpointsFail.withLock { $0 }
        checkpointGate.withLock { $0 }?()
        if fails { throw StoreFault(description: "injected: the checkpoint write fails") }
        try disk.writeCheckpoint(Billing_Journal_V1_Checkpoint(serializedBytes: checkpoint.bytes), index: index, session: session)
    }

    func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint? { try disk.latestCheckpoint(session: session) }

    func forEachEntry(after seq: Int64, _ body: (Entry) throws -> Void) throws {
        try disk.forEachEntry(after: seq, session: session, body)
    }

    func debitEntry(accountID: String, idempotencyKey: String) throws -> Entry? {
        try disk.debitEntry(accountID: accountID, idempotencyKey: idempotencyKey, session: session)
    }

    func runEntries(accountID: String, runID: String) throws -> [Entry] {
        try disk.runEntries(accountID: accountID, runID: runID, session: session)
    }

    func lastSeq() throws -> Int64 { try disk.lastSeq(session: session) }

    func indexedThrough() throws -> Int64 {
        if readsFail.withLock({ $0 }) { throw StoreFault(description: "injected: the store cannot be read") }
        return try disk.indexedThrough(session: session)
    }

    func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws {
        try disk.forEachIndexedKeyHash(after: generation, session: session, body)
    }

    func writeKeyFilter(_ contents: Data, seq: Int64) throws {
        try disk.writeKeyFilter(contents, seq: seq, session: session)
    }

    func latestKeyFilter() throws -> (seq: Int64, contents: Data)? { try disk.latestKeyFilter(session: session) }

    func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws {
        try disk.forEachIndexRow(runs: runs, session: session) { row in
            if row.seq <= through { try body(row) }
        }
    }

    func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row] {
        var rows: [Int64: [JournalIndexRows.Row]] = [:]
        try forEachIndexRow(runs: false, through: through) { rows[$0.hash, default: []].append($0) }
        return rows.values.filter { $0.count > 1 }.flatMap { $0 }
    }

    func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Entry] {
        try disk.auditEntries(accountID: accountID, sinceMicros: sinceMicros, beforeSeq: beforeSeq, limit: limit, session: session)
    }
}
