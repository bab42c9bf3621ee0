import BillingLedger
import Foundation
import Synchronization
import Testing
@testable import BillingSQLite

/// The key filter stored apart from checkpoints (migration 0004).
@Suite struct KeyFilterStoreTests {
    /// Stored in parts and read back whole; a newer one replaces it, parts
    /// and all, only once it is complete.
    @Test func aStoredFilterIsReadBackWholeAndReplacedByTheNext() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            #expect(try store.latestKeyFilter() == nil)
            let first = Self.contents(bytes: 2 * SQLiteLedgerStore.checkpointPartBytes + 40, seed: 1)
            try store.writeKeyFilter(first, seq: 5)
            #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [5: first])
            #expect(try Self.partRows(path) == [5, 5, 5])

            let second = Self.contents(bytes: SQLiteLedgerStore.checkpointPartBytes, seed: 2)
            try store.writeKeyFilter(second, seq: 9)
            #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [9: second])
            #expect(try Self.partRows(path) == [9], "the replaced filter's parts are gone")
        }
    }

    /// Written again at the same seq (a close right after a checkpoint, an
    /// idle restart), at another size: the new one whole, no old part left.
    @Test func aFilterRewrittenAtTheSameSeqReplacesTheOldOneWhole() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let large = Self.contents(bytes: 4 * SQLiteLedgerStore.checkpointPartBytes, seed: 5)
            let small = Self.contents(bytes: 2 * SQLiteLedgerStore.checkpointPartBytes, seed: 6)
            try store.writeKeyFilter(large, seq: 7)
            try store.writeKeyFilter(small, seq: 7)
            #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [7: small])
            #expect(try Self.partRows(path) == [7, 7])
            try store.writeKeyFilter(large, seq: 7)
            #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [7: large])
        }
    }

    /// A write that fails part-way (a full disk) deletes the parts it wrote:
    /// they stayed until a later write succeeded or a restart, megabytes a
    /// disk that had filled needed for commits.
    @Test func aFailedWriteLeavesNoPartsBehind() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let stored = Self.contents(bytes: 64, seed: 7)
            try store.writeKeyFilter(stored, seq: 4)
            let transactions = Mutex(0)
            store.checkpointTransactionGate.withLock {
                $0 = { transaction in
                    // The forget and two parts commit; the third part fails.
                    let n = transactions.withLock { $0 += 1; return $0 }
                    guard n <= 3 else { throw SQLiteStoreError.closed }
                    try transaction()
                }
            }
            #expect(throws: SQLiteStoreError.self) {
                try store.writeKeyFilter(Self.contents(bytes: 4 * SQLiteLedgerStore.checkpointPartBytes, seed: 8), seq: 9)
            }
            #expect(try Self.partRows(path) == [4], "parts of the failed write were left")
            #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [4: stored])
        }
    }

    /// Parts written before a crash, without their row, are not a filter:
    /// the previous one stays the newest, and the owner deletes them on open.
    @Test func partsWithoutTheirRowAreNotAFilter() throws {
        try withTemporaryDatabase { path in
            let stored = Self.contents(bytes: 64, seed: 3)
            do {
                let store = try SQLiteLedgerStore(path: path)
                try store.writeKeyFilter(stored, seq: 4)
                let connection = try SQLiteConnection(path: path)
                try connection.prepare("INSERT INTO key_filter_parts (seq, part, bytes) VALUES (8, 0, x'ff')").use { insert in
                    while try insert.step() {}
                }
                #expect(try store.latestKeyFilter().map { [$0.seq: $0.contents] } == [4: stored])
                store.close()
            }
            try SQLiteLedgerStore(path: path).close()
            #expect(try Self.partRows(path) == [4, 8], "another process leaves them")
            let reopened = try SQLiteLedgerStore(path: path, owner: true)
            #expect(try reopened.latestKeyFilter().map { [$0.seq: $0.contents] } == [4: stored])
            #expect(try Self.partRows(path) == [4])
        }
    }

    /// A filter whose row counts more parts than are stored is refused, not
    /// taken for a smaller filter.
    @Test func aFilterMissingAPartIsCorrupt() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.writeKeyFilter(Self.contents(bytes: SQLiteLedgerStore.checkpointPartBytes + 1, seed: 4), seq: 3)
            try SQLiteConnection(path: path).execute(script: "DELETE FROM key_filter_parts WHERE part = 1")
            #expect(throws: SQLiteStoreError.corrupt("key filter 3 has 1 of its 2 parts")) { try store.latestKeyFilter() }
        }
    }

    static func contents(bytes: Int, seed: UInt64) -> Data {
        var state = seed
        return Data((0..<bytes).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        })
    }

    /// The seq of every stored part, in order.
    static func partRows(_ path: String) throws -> [Int64] {
        let connection = try SQLiteConnection(path: path)
        return try connection.prepare("SELECT seq FROM key_filter_parts ORDER BY seq, part").use { query in
            var seqs: [Int64] = []
            while try query.step() { seqs.append(query.int64(at: 0)) }
            return seqs
        }
    }
}
