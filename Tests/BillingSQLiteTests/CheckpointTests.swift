import Foundation
import BillingLedger
import BillingProto
import SwiftProtobuf
import Testing
@testable import BillingSQLite

@Suite struct CheckpointTests {
    @Test func latestCheckpointIsTheNewestAndOldOnesArePruned() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            #expect(try store.latestCheckpoint() == nil)
            try store.append((1...10).map { accountCreated($0, account: "acct-\($0)") })

            for seq: Int64 in [2, 4, 6, 8] {
                try store.writeCheckpoint(checkpoint(seq), index: JournalIndexRows())
                #expect(try store.latestCheckpoint() == checkpoint(seq))
            }
            #expect(try checkpointSeqs(path) == [6, 8])

            // Rewriting one at the same seq replaces it.
            var replacement = checkpoint(8)
            replacement.writtenUnixMicros += 1
            try store.writeCheckpoint(replacement, index: JournalIndexRows())
            #expect(try store.latestCheckpoint() == replacement)
            #expect(try checkpointSeqs(path) == [6, 8])
        }
    }

    @Test func checkpointBeyondTheJournalIsRefused() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append([accountCreated(1, account: "acct-1")])
            #expect(throws: SQLiteStoreError.checkpointAhead(checkpointSeq: 2, lastSeq: 1)) {
                try store.writeCheckpoint(checkpoint(2), index: JournalIndexRows())
            }
            #expect(try store.latestCheckpoint() == nil)
        }
    }

    /// A checkpoint larger than a part is stored in parts, each written in a
    /// transaction of its own, and read back whole; pruning takes the parts
    /// of pruned checkpoints with them.
    @Test func aLargeCheckpointIsStoredInPartsAndReadBackWhole() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append((1...9).map { accountCreated($0, account: "acct-\($0)") })
            for seq: Int64 in [3, 6, 9] {
                let large = Self.large(seq)
                try store.writeCheckpoint(large, index: JournalIndexRows())
                #expect(try store.latestCheckpoint() == large)
            }
            let parts = try Self.partRows(path)
            let expected = try (Self.large(9).serializedBytes() as [UInt8]).count / SQLiteLedgerStore.checkpointPartBytes + 1
            #expect(Set(parts.map(\.seq)) == [6, 9], "parts of the pruned checkpoint 3 are gone")
            #expect(parts.filter { $0.seq == 9 }.count == expected)
        }
    }

    /// A checkpoint written again at the same seq with fewer parts (the
    /// first one after the key filter left checkpoints) reads back as the
    /// new one, with no part of the old one left.
    @Test func aCheckpointRewrittenAtTheSameSeqWithFewerPartsReadsBackWhole() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append((1...9).map { accountCreated($0, account: "acct-\($0)") })
            var larger = Self.large(9)
            larger.keyFilter = Data(repeating: 0xA5, count: 3 * SQLiteLedgerStore.checkpointPartBytes)
            try store.writeCheckpoint(larger, index: JournalIndexRows())
            let smaller = Self.large(9)
            try store.writeCheckpoint(smaller, index: JournalIndexRows())
            #expect(try store.latestCheckpoint() == smaller)
            let expected = (try smaller.serializedBytes() as [UInt8]).count / SQLiteLedgerStore.checkpointPartBytes + 1
            #expect(try Self.partRows(path).count == expected)
        }
    }

    /// Parts written before a crash, without their checkpoint row, do not
    /// make a checkpoint: the previous one is the newest, and they are
    /// deleted when the database's owner (the server) opens it next.
    @Test func partsWithoutTheirRowAreNotACheckpoint() throws {
        try withTemporaryDatabase { path in
            do {
                let store = try SQLiteLedgerStore(path: path)
                try store.append((1...4).map { accountCreated($0, account: "acct-\($0)") })
                try store.writeCheckpoint(checkpoint(2), index: JournalIndexRows())
                let connection = try SQLiteConnection(path: path)
                try connection.prepare("INSERT INTO checkpoint_parts (seq, part, bytes) VALUES (4, 0, x'0801')").use { insert in
                    while try insert.step() {}
                }
                #expect(try store.latestCheckpoint() == checkpoint(2))
                store.close()
            }
            // Another process (verify) leaves them: they may be a live server's write in progress.
            try SQLiteLedgerStore(path: path).close()
            #expect(try Self.partRows(path).count == 1)
            let reopened = try SQLiteLedgerStore(path: path, owner: true)
            #expect(try reopened.latestCheckpoint() == checkpoint(2))
            #expect(try Self.partRows(path).isEmpty)
        }
    }

    /// A checkpoint row written before migration 0003 (bytes in `state`).
    @Test func aWholeRowCheckpointStillReads() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append((1...2).map { accountCreated($0, account: "acct-\($0)") })
            let connection = try SQLiteConnection(path: path)
            try connection.prepare("INSERT INTO checkpoints (seq, written_unix_micros, state) VALUES (2, 0, ?1)").use { insert in
                try insert.bind(blob: try checkpoint(2).serializedBytes(), at: 1)
                while try insert.step() {}
            }
            #expect(try store.latestCheckpoint() == checkpoint(2))
        }
    }

    /// A checkpoint whose encoding exceeds one part: many accounts with runs.
    static func large(_ seq: Int64) -> Billing_Journal_V1_Checkpoint {
        var large = checkpoint(seq)
        large.accounts = (0..<40).map { index in
            var account = Billing_Journal_V1_AccountState()
            account.accountID = "acct-\(index)"
            account.runsInPeriod = (0..<2_000).map { "run-\(seq)-\(index)-\($0)" }
            return account
        }
        return large
    }

    /// The newest checkpoint unreadable (its bytes garbled, or a part of a
    /// large one gone): the one before it is loaded, and the skip reported;
    /// with none readable, none (the journal is replayed from its start).
    @Test func anUnreadableNewestCheckpointFallsBackToTheOneBefore() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append((1...9).map { accountCreated($0, account: "acct-\($0)") })
            try store.writeCheckpoint(checkpoint(4), index: JournalIndexRows())
            try store.writeCheckpoint(Self.large(8), index: JournalIndexRows())
            #expect(try store.latestCheckpoint() == Self.large(8))
            #expect(store.takeSkippedCheckpoints().isEmpty)
            let raw = try SQLiteConnection(path: path)
            try raw.execute(script: "DELETE FROM checkpoint_parts WHERE seq = 8 AND part = 1")
            #expect(try store.latestCheckpoint() == checkpoint(4))
            let skipped = store.takeSkippedCheckpoints()
            #expect(skipped.count == 1 && skipped[0].hasPrefix("checkpoint at seq 8"), "\(skipped)")
            try raw.execute(script: "UPDATE checkpoints SET state = x'ffffffff' WHERE seq = 4")
            #expect(try store.latestCheckpoint() == nil)
            #expect(store.takeSkippedCheckpoints().count == 2)
        }
    }

    static func partRows(_ path: String) throws -> [(seq: Int64, part: Int64)] {
        let connection = try SQLiteConnection(path: path)
        return try connection.prepare("SELECT seq, part FROM checkpoint_parts ORDER BY seq, part").use { query in
            var rows: [(Int64, Int64)] = []
            while try query.step() { rows.append((query.int64(at: 0), query.int64(at: 1))) }
            return rows
        }
    }

    private func checkpointSeqs(_ path: String) throws -> [Int64] {
        let connection = try SQLiteConnection(path: path)
        return try connection.prepare("SELECT seq FROM checkpoints ORDER BY seq").use { query in
            var seqs: [Int64] = []
            while try query.step() { seqs.append(query.int64(at: 0)) }
            return seqs
        }
    }
}
