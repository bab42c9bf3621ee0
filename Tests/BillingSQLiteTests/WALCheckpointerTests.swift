import BillingLedger
import Foundation
import Testing
@testable import BillingSQLite

/// The owner's WAL checkpoints run on a thread of their own: the journal's
/// pages reach the database file without a commit copying them.
@Suite struct WALCheckpointerTests {
    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    static func append(_ count: Int, to store: SQLiteLedgerStore) throws {
        try store.append([accountCreated(1, account: "acct")])
        for start in stride(from: 2, through: count, by: 500) {
            try store.append((start..<min(start + 500, count + 1)).map { debitAccepted(Int64($0), account: "acct", key: "k-\($0)") })
        }
    }

    @Test func theOwnersThreadCopiesTheWALIntoTheDatabase() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path, owner: true, walCheckpointSeconds: 0.02)
            let checkpointer = try #require(store.walCheckpointer)
            let before = Self.fileSize(path)
            try Self.append(20_000, to: store)
            // Bounded wait for the thread (it runs every 20 ms): the file grows.
            let deadline = Date().addingTimeInterval(20)
            while Self.fileSize(path) < before + 1_000_000 && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.01)
            }
            #expect(Self.fileSize(path) >= before + 1_000_000, "20,000 debits reached the database file")
            #expect(checkpointer.current.runs > 0 && checkpointer.current.lastError == nil)
            // Nothing left behind: a checkpoint now finds every WAL frame copied.
            let (walFrames, copied) = try checkpointer.checkpoint()
            #expect(copied == walFrames)
            #expect(try store.lastSeq() == 20_000)
            store.close()
            #expect(throws: SQLiteStoreError.self) { try checkpointer.checkpoint() }
            checkpointer.stop()  // a second stop is a no-op
        }
    }

    @Test func withoutTheThreadTheJournalStaysInTheWALBelowTheThreshold() throws {
        try withTemporaryDatabase { path in
            // The owner's thread idle (an hour apart): commits copy nothing themselves.
            let store = try SQLiteLedgerStore(path: path, owner: true, walCheckpointSeconds: 3_600)
            let before = Self.fileSize(path)
            try Self.append(20_000, to: store)
            #expect(Self.fileSize(path) < before + 300_000, "the commits left the pages in the WAL")
            let (walFrames, copied) = try #require(store.walCheckpointer).checkpoint()
            #expect(walFrames > 100 && copied == walFrames)
            #expect(Self.fileSize(path) >= before + 1_000_000)
            store.close()
            // Only the owner runs one.
            let reader = try SQLiteLedgerStore(path: path)
            #expect(reader.walCheckpointer == nil)
            #expect(try reader.lastSeq() == 20_000)
        }
    }
}
