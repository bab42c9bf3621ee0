import BillingLedger
import Testing
@testable import BillingSQLite

@Suite struct JournalTests {
    @Test func emptyJournal() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            #expect(try store.lastSeq() == 0)
            #expect(try store.entries().isEmpty)
            #expect(try store.latestCheckpoint() == nil)
            let size = try store.journalSize()
            #expect(size.entries == 0)
            #expect(size.bytes > 0)
        }
    }

    @Test func appendAndReadBack() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let first = [
                accountCreated(1, account: "acct-1"),
                creditsGranted(2, account: "acct-1", key: "grant-1"),
                debitAccepted(3, account: "acct-1", key: "k1"),
            ]
            let second = [debitRefused(4, account: "acct-1", key: "k2"), debitAccepted(5, account: "acct-1", key: "k3")]
            try store.append(first)
            try store.append(second)
            try store.append([])  // nothing to do, not an error

            #expect(try store.lastSeq() == 5)
            #expect(try store.entries() == first + second)
            #expect(try store.entries(after: 3) == second)
            #expect(try store.entries(after: 5).isEmpty)
            #expect(try store.journalSize().entries == 5)
        }
    }

    /// Appends go 64 rows to an insert statement, the rest 32, 16, ..., 1:
    /// batches on both sides of each multiple read back whole, each row with
    /// its kind, account and NULL key and run columns.
    @Test(arguments: [1, 2, 3, 7, 63, 64, 65, 127, 128, 129, 200])
    func manyRowAppendsReadBackWhole(count: Int) throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let entries = (1...Int64(count)).map { seq -> Entry in
                let account = "acct-\(seq % 7)"
                switch seq % 4 {
                case 0: return accountCreated(seq, account: account)
                case 1: return creditsGranted(seq, account: account, key: "grant-\(seq)")
                case 2: return debitAccepted(seq, account: account, key: "k-\(seq)", total: seq * 10)
                default: return debitRefused(seq, account: account, key: "k-\(seq)")
                }
            }
            try store.append(Array(entries.prefix(count / 2)))
            try store.append(Array(entries.dropFirst(count / 2)))
            #expect(try store.entries() == entries)
            let connection = try SQLiteConnection(path: path)
            let rows = try connection.prepare(
                "SELECT seq, kind, account_id, idempotency_key IS NULL AND run_id IS NULL FROM journal ORDER BY seq"
            ).use { query in
                var rows: [(seq: Int64, kind: Int64, account: String?, nulls: Int64)] = []
                while try query.step() {
                    rows.append((query.int64(at: 0), query.int64(at: 1), query.string(at: 2), query.int64(at: 3)))
                }
                return rows
            }
            #expect(rows.map(\.seq) == entries.map(\.seq))
            for (row, entry) in zip(rows, entries) {
                let expected = try JournalRow(entry)
                #expect(row.kind == expected.kind.rawValue && row.account == expected.accountID && row.nulls == 1, "seq \(row.seq)")
            }
        }
    }

    @Test func appendRequiresConsecutiveSeqsContinuingTheJournal() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            #expect(throws: SQLiteStoreError.seqNotConsecutive(expected: 1, found: 2)) {
                try store.append([accountCreated(2, account: "a")])
            }
            try store.append([accountCreated(1, account: "a"), accountCreated(2, account: "b")])
            #expect(throws: SQLiteStoreError.seqNotConsecutive(expected: 3, found: 4)) {
                try store.append([accountCreated(4, account: "c")])
            }
            #expect(throws: SQLiteStoreError.seqNotConsecutive(expected: 3, found: 2)) {
                try store.append([accountCreated(2, account: "c")])
            }
            #expect(throws: SQLiteStoreError.seqNotConsecutive(expected: 4, found: 5)) {
                try store.append([accountCreated(3, account: "c"), accountCreated(5, account: "d")])
            }
            #expect(try store.lastSeq() == 2)
        }
    }

    @Test func entryWithoutEventIsRefused() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            var empty = Entry()
            empty.seq = 1
            #expect(throws: SQLiteStoreError.entryWithoutEvent(seq: 1)) { try store.append([empty]) }
            #expect(try store.lastSeq() == 0)
        }
    }

    @Test func failedTransactionLeavesNothingWritten() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append([accountCreated(1, account: "acct-1")])
            // The third entry has no event: it fails after two rows of the
            // batch were already inserted.
            var empty = Entry()
            empty.seq = 4
            let batch = [
                debitAccepted(2, account: "acct-1", key: "k1"),
                debitAccepted(3, account: "acct-1", key: "k2"),
                empty,
            ]
            #expect(throws: SQLiteStoreError.entryWithoutEvent(seq: 4)) { try store.append(batch) }

            #expect(try store.lastSeq() == 1)
            #expect(try store.entries().count == 1)
            // The writer is not left inside a transaction.
            try store.append(Array(batch.prefix(2)))
            #expect(try store.lastSeq() == 3)
        }
    }

    @Test func reopenKeepsEverything() throws {
        try withTemporaryDatabase { path in
            let entries = [
                accountCreated(1, account: "acct-1"),
                debitAccepted(2, account: "acct-1", key: "k1", run: "r1"),
                debitRefused(3, account: "acct-1", key: "k2"),
            ]
            do {
                let store = try SQLiteLedgerStore(path: path, synchronous: .full)
                try store.append(entries)
                try store.index(entries)
                store.close()
                #expect(throws: SQLiteStoreError.closed) { try store.lastSeq() }
                #expect(throws: SQLiteStoreError.closed) { try store.append([accountCreated(4, account: "b")]) }
            }
            let reopened = try SQLiteLedgerStore(path: path, synchronous: .normal)
            #expect(try reopened.entries() == entries)
            #expect(try reopened.latestCheckpoint() == checkpoint(3))
            #expect(try reopened.debitEntry(accountID: "acct-1", idempotencyKey: "k2") == entries[2])
            #expect(try reopened.runEntries(accountID: "acct-1", runID: "r1") == [entries[1]])
            try reopened.append([accountCreated(4, account: "acct-2")])
            #expect(try reopened.lastSeq() == 4)
        }
    }
}
