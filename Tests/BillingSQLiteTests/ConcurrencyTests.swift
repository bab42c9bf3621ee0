import BillingLedger
import Testing
@testable import BillingSQLite

@Suite struct ConcurrencyTests {
    @Test func readersRunWhileTheWriterAppends() async throws {
        try await withTemporaryDatabase { path in
            // Fewer pooled connections than reading tasks: the pool must open extras.
            let store = try SQLiteLedgerStore(path: path, synchronous: .normal, readerConnections: 2)
            let batches = 100, batchSize = 20
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    var seq: Int64 = 0
                    for batch in 0..<batches {
                        let entries = (0..<batchSize).map { index -> Entry in
                            seq += 1
                            return debitAccepted(seq, account: "acct-\(index % 4)", key: "k\(seq)", run: "run-\(batch)")
                        }
                        try store.append(entries)
                        try store.index(entries)
                    }
                }
                for reader in 0..<6 {
                    group.addTask {
                        var lastSeen: Int64 = 0
                        // Until the writer is done — or has failed (the group
                        // cancels the readers then: they must not spin forever).
                        while lastSeen < Int64(batches * batchSize) {
                            try Task.checkCancellation()
                            let last = try store.lastSeq()
                            #expect(last >= lastSeen)
                            #expect(last % Int64(batchSize) == 0)  // a batch is visible whole or not at all
                            lastSeen = last
                            let indexed = try store.indexedThrough()
                            #expect(indexed % Int64(batchSize) == 0)  // with its checkpoint, whole or not at all
                            if indexed > 0 {
                                let found = try store.debitEntry(accountID: "acct-\((indexed - 1) % 4)", idempotencyKey: "k\(indexed)")
                                #expect(found?.seq == indexed)
                            }
                            var expected = last - Int64(batchSize) * Int64(reader % 3)
                            expected = max(expected, 0)
                            var seqs: [Int64] = []
                            try store.forEachEntry(after: expected) { seqs.append($0.seq) }
                            #expect(Int64(seqs.count) >= last - expected)  // every entry it saw committed
                            #expect(seqs.first.map { $0 == expected + 1 } ?? true)
                            #expect(zip(seqs, seqs.dropFirst()).allSatisfy { $0 + 1 == $1 })
                            await Task.yield()
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try store.lastSeq() == Int64(batches * batchSize))
            #expect(try store.runEntries(accountID: "acct-0", runID: "run-7").count == batchSize / 4)
        }
    }

    @Test func readsNestInsideForEachEntry() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path, readerConnections: 1)
            let entries = [debitAccepted(1, account: "a", key: "k1"), debitAccepted(2, account: "a", key: "k2")]
            try store.append(entries)
            try store.index(entries)
            var found: [Int64] = []
            try store.forEachEntry(after: 0) { entry in
                found.append(try store.debitEntry(accountID: "a", idempotencyKey: entry.debitAccepted.idempotencyKey)?.seq ?? -1)
            }
            #expect(found == [1, 2])
        }
    }
}
