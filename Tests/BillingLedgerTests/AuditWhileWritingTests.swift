import BillingLedger
import BillingProto
import Foundation
import Synchronization
import Testing

/// `billing verify` on a database a server keeps writing: entries appended
/// and a checkpoint written while the audit scans are no difference.
@Suite struct AuditWhileWritingTests {
    /// The store as a scan sees it while the server writes: the journal
    /// ends at `visibleThrough` for the audit's first pass (later reads see
    /// everything), and the index covers nothing when the audit asks first
    /// (a checkpoint then indexes entries while the scan runs).
    final class MovingStore: LedgerStore {
        let base: InMemoryLedgerStore
        let visibleThrough: Int64
        private let firstScan = Mutex(true)
        private let firstIndexQuery = Mutex(true)

        init(_ base: InMemoryLedgerStore, visibleThrough: Int64) {
            self.base = base
            self.visibleThrough = visibleThrough
        }

        func append(_ records: [JournalRecord]) throws { try base.append(records) }
        func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
            try base.writeCheckpoint(encoded: checkpoint, index: index)
        }
        func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint? { try base.latestCheckpoint() }
        func forEachEntry(after seq: Int64, _ body: (Billing_Journal_V1_Entry) throws -> Void) throws {
            let first = firstScan.withLock { first in defer { first = false }; return first && seq == 0 }
            try base.forEachEntry(after: seq) { entry in
                if first && entry.seq > visibleThrough { return }
                try body(entry)
            }
        }
        func debitEntry(accountID: String, idempotencyKey: String) throws -> Billing_Journal_V1_Entry? {
            try base.debitEntry(accountID: accountID, idempotencyKey: idempotencyKey)
        }
        func runEntries(accountID: String, runID: String) throws -> [Billing_Journal_V1_Entry] {
            try base.runEntries(accountID: accountID, runID: runID)
        }
        func indexedThrough() throws -> Int64 {
            try firstIndexQuery.withLock { first in defer { first = false }; return first ? 0 : try base.indexedThrough() }
        }
        func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws {
            try base.forEachIndexedKeyHash(after: generation, body)
        }
        func writeKeyFilter(_ contents: Data, seq: Int64) throws { try base.writeKeyFilter(contents, seq: seq) }
        func latestKeyFilter() throws -> (seq: Int64, contents: Data)? { try base.latestKeyFilter() }
        func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws {
            try base.forEachIndexRow(runs: runs, through: through, body)
        }
        func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row] { try base.keyRowsSharingAHash(through: through) }
        func lastSeq() throws -> Int64 { try base.lastSeq() }
        func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Billing_Journal_V1_Entry] {
            try base.auditEntries(accountID: accountID, sinceMicros: sinceMicros, beforeSeq: beforeSeq, limit: limit)
        }
    }

    @Test func entriesAndACheckpointWrittenDuringTheScanAreNoDifference() async throws {
        let h = try Harness(configuration: Fixtures.configuration(checkpointEvery: 10))
        try await h.openAccount("acct", plan: "pro", credits: 1_000_000)
        for n in 0..<25 {
            _ = try await h.debit(Fixtures.command(account: "acct", key: "k-\(n)", micros: 100, run: "r-\(n)"))
        }
        await h.ledger.close()
        let store = h.store.restart()
        let last = try store.lastSeq()
        #expect(try store.indexedThrough() > 0)  // checkpoints indexed some debits
        #expect(try LedgerAudit.run(on: store, plans: Fixtures.plans).problems == [])
        let moving = MovingStore(store, visibleThrough: last - 5)
        #expect(try LedgerAudit.run(on: moving, plans: Fixtures.plans).problems == [])
    }
}
