import BillingLedger
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

    private func checkpointSeqs(_ path: String) throws -> [Int64] {
        let connection = try SQLiteConnection(path: path)
        return try connection.prepare("SELECT seq FROM checkpoints ORDER BY seq").use { query in
            var seqs: [Int64] = []
            while try query.step() { seqs.append(query.int64(at: 0)) }
            return seqs
        }
    }
}
