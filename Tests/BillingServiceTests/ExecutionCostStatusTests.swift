import BillingCore
import BillingLedger
import BillingProto
@testable import BillingService
import BillingSQLite
import Foundation
import GRPC
import Logging
import Testing

/// GetExecutionCost answers a store it cannot read now as the other
/// queries do — UNAVAILABLE, STORAGE_UNAVAILABLE, retry — not INTERNAL.
@Suite struct ExecutionCostStatusTests {
    struct Busy: LedgerStoreError {
        var isTransient: Bool { true }
        var leavesDiskStateUnknown: Bool { false }
    }

    /// A real SQLite store whose run lookups fail as a busy database's do.
    struct BusyRuns: LedgerStore {
        let base: SQLiteLedgerStore
        func append(_ records: [JournalRecord]) throws { try base.append(records) }
        func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
            try base.writeCheckpoint(encoded: checkpoint, index: index)
        }
        func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint? { try base.latestCheckpoint() }
        func forEachEntry(after seq: Int64, _ body: (Billing_Journal_V1_Entry) throws -> Void) throws {
            try base.forEachEntry(after: seq, body)
        }
        func debitEntry(accountID: String, idempotencyKey: String) throws -> Billing_Journal_V1_Entry? {
            try base.debitEntry(accountID: accountID, idempotencyKey: idempotencyKey)
        }
        func runEntries(accountID: String, runID: String) throws -> [Billing_Journal_V1_Entry] { throw Busy() }
        func indexedThrough() throws -> Int64 { try base.indexedThrough() }
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

    @Test func aStoreThatCannotBeReadNowIsUnavailableNotInternal() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cost-status-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let base = try SQLiteLedgerStore(path: directory.appendingPathComponent("db.sqlite").path, owner: true)
        let ledger = try Ledger(store: BusyRuns(base: base), plans: .default, clock: SystemClock(), logger: Logger(label: "test"))
        let metering = MeteringService(ledger: ledger, catalog: try PriceCatalog(
            version: "t", models: [:], toolCallMicrosPerCall: [:], defaultToolCallMicrosPerCall: 500,
            storageMicrosPerGiB: [.knowledgeBase: 100_000, .traces: 20_000]))
        var request = Billing_V1_GetExecutionCostRequest()
        request.accountID = "acct"
        request.runID = "r1"
        do {
            _ = try metering.runCost(request)
            Issue.record("answered")
        } catch let status as GRPCStatus {
            #expect(status.code == .unavailable, "\(status)")
            #expect(status.errorInfo?.reason == "STORAGE_UNAVAILABLE")
        }
        await ledger.close()
    }
}
