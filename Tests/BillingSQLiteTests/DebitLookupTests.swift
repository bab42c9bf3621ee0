import BillingLedger
import Testing
@testable import BillingSQLite

@Suite struct DebitLookupTests {
    @Test func debitEntryFindsAcceptedAndRefusedByAccountAndKey() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let entries = [
                accountCreated(1, account: "acct-1"),
                accountCreated(2, account: "acct-2"),
                creditsGranted(3, account: "acct-1", key: "grant"),
                debitAccepted(4, account: "acct-1", key: "k1"),
                debitRefused(5, account: "acct-1", key: "k2"),
                debitAccepted(6, account: "acct-2", key: "k1"),  // same key, other account
            ]
            try store.append(entries)
            // Found through the indexes written with a checkpoint, not before.
            #expect(try store.debitEntry(accountID: "acct-1", idempotencyKey: "k1") == nil)
            #expect(try store.indexedThrough() == 0)
            try store.index(entries)
            #expect(try store.indexedThrough() == 6)

            #expect(try store.debitEntry(accountID: "acct-1", idempotencyKey: "k1") == entries[3])
            #expect(try store.debitEntry(accountID: "acct-1", idempotencyKey: "k2") == entries[4])
            #expect(try store.debitEntry(accountID: "acct-2", idempotencyKey: "k1") == entries[5])
            #expect(try store.debitEntry(accountID: "acct-2", idempotencyKey: "k2") == nil)
            #expect(try store.debitEntry(accountID: "acct-3", idempotencyKey: "k1") == nil)
            // A grant's key is not a debit's.
            #expect(try store.debitEntry(accountID: "acct-1", idempotencyKey: "grant") == nil)
        }
    }

    @Test func runEntriesAreTheRunsAcceptedDebitsInJournalOrder() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let entries = [
                debitAccepted(1, account: "acct-1", key: "k1", run: "r1", total: 10),
                debitAccepted(2, account: "acct-1", key: "k2", run: "r2", total: 20),
                debitRefused(3, account: "acct-1", key: "k3"),
                debitAccepted(4, account: "acct-2", key: "k4", run: "r1", total: 40),
            ]
            try store.append(entries)
            try store.append([debitAccepted(5, account: "acct-1", key: "k5", run: "r1", total: 50)])
            try store.append([debitAccepted(6, account: "acct-1", key: "k6", run: "r1", total: 60)])
            // Two generations: 1...4, then 5...6.
            try store.index(entries)
            try store.index([debitAccepted(5, account: "acct-1", key: "k5", run: "r1", total: 50),
                             debitAccepted(6, account: "acct-1", key: "k6", run: "r1", total: 60)])

            let run = try store.runEntries(accountID: "acct-1", runID: "r1")
            #expect(run.map(\.seq) == [1, 5, 6])
            #expect(run.map(\.debitAccepted.totalMicros) == [10, 50, 60])
            #expect(try store.runEntries(accountID: "acct-2", runID: "r1").map(\.seq) == [4])
            #expect(try store.runEntries(accountID: "acct-1", runID: "r9").isEmpty)
        }
    }

    @Test(arguments: [
        "'; DROP TABLE journal; --",
        "\" OR 1=1 --",
        "acct'1",
        "%_*?\\",
        "ümlaut 口座 🧾",
        "nul\u{0}inside",
        "",
    ])
    func sqlMetacharactersAreStoredAndFoundVerbatim(_ text: String) throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let accepted = debitAccepted(1, account: text, key: text, run: text)
            let refused = debitRefused(2, account: text, key: text + "-refused")
            try store.append([accepted, refused, accountCreated(3, account: "plain")])
            try store.index([accepted, refused])

            #expect(try store.debitEntry(accountID: text, idempotencyKey: text) == accepted)
            #expect(try store.debitEntry(accountID: text, idempotencyKey: text + "-refused") == refused)
            #expect(try store.runEntries(accountID: text, runID: text) == [accepted])
            #expect(try store.debitEntry(accountID: "plain", idempotencyKey: text) == nil)
            #expect(try store.entries().count == 3)
        }
    }

    @Test func aHashCollisionIsNotAMatch() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let mine = debitAccepted(1, account: "acct-1", key: "k1", run: "r1")
            let other = debitAccepted(2, account: "acct-2", key: "k2", run: "r2")
            try store.append([mine, other])
            // Rows claiming that k1's and r1's hashes also point at the other entry.
            let keyHash = JournalKeyHash.debit(account: "acct-1", key: "k1")
            let runHash = JournalKeyHash.run(account: "acct-1", run: "r1")
            try store.writeCheckpoint(checkpoint(2), index: JournalIndexRows(
                keys: [.init(hash: keyHash, seq: 1), .init(hash: keyHash, seq: 2)],
                runs: [.init(hash: runHash, seq: 1), .init(hash: runHash, seq: 2)]))
            #expect(try store.debitEntry(accountID: "acct-1", idempotencyKey: "k1") == mine)
            #expect(try store.runEntries(accountID: "acct-1", runID: "r1") == [mine])
            #expect(try store.debitEntry(accountID: "acct-2", idempotencyKey: "k2") == nil, "k2 was never indexed")
        }
    }

    @Test func indexRowsBeyondTheirCheckpointAreRefused() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append([debitAccepted(1, account: "a", key: "k1"), debitAccepted(2, account: "a", key: "k2")])
            #expect(throws: SQLiteStoreError.self) {
                try store.writeCheckpoint(checkpoint(1), index: JournalIndexRows(keys: [.init(hash: 7, seq: 2)]))
            }
            #expect(try store.latestCheckpoint() == nil, "nothing of the transaction stays")
            #expect(try store.indexedThrough() == 0)
        }
    }

    /// Rows of a generation whose checkpoint was never stored (a crash
    /// between its index transactions and the checkpoint's) are invisible,
    /// and gone when the database's owner opens it next.
    @Test func indexRowsWithoutTheirCheckpointAreIgnoredThenDropped() throws {
        try withTemporaryDatabase { path in
            let entry = debitAccepted(1, account: "a", key: "k1", run: "r1")
            do {
                let store = try SQLiteLedgerStore(path: path)
                try store.append([entry])
                let connection = try SQLiteConnection(path: path)
                try connection.execute(script: """
                    INSERT INTO debit_keys (generation, key_hash, seq) VALUES (1, \(JournalKeyHash.debit(account: "a", key: "k1")), 1);
                    INSERT INTO run_debits (generation, run_hash, seq) VALUES (1, \(JournalKeyHash.run(account: "a", run: "r1")), 1);
                    """)
                #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k1") == nil)
                #expect(try store.runEntries(accountID: "a", runID: "r1").isEmpty)
                #expect(try store.indexedThrough() == 0)
                store.close()
            }
            var hashes: [Int64] = []
            try SQLiteLedgerStore(path: path).forEachIndexedKeyHash(after: 0) { hashes.append($0) }
            #expect(hashes.count == 1, "a process that does not own the database deletes nothing")
            hashes = []
            let reopened = try SQLiteLedgerStore(path: path, owner: true)
            try reopened.forEachIndexedKeyHash(after: 0) { hashes.append($0) }
            #expect(hashes.isEmpty)
            // Written properly, the same debit is found.
            try reopened.index([entry])
            #expect(try reopened.debitEntry(accountID: "a", idempotencyKey: "k1") == entry)
        }
    }

    @Test func aLargeGenerationIsWrittenInSeveralTransactionsAndAppearsWhole() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let count = SQLiteLedgerStore.indexRowsPerTransaction * 2 + 17
            let entries = (1...count).map { debitAccepted(Int64($0), account: "a", key: "k\($0)", run: "r\($0 % 7)") }
            try store.append(entries)
            try store.index(entries)
            #expect(try store.indexedThrough() == Int64(count))
            var hashes = 0
            try store.forEachIndexedKeyHash(after: 0) { _ in hashes += 1 }
            #expect(hashes == count)
            #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k\(count)") == entries.last)
            #expect(try store.runEntries(accountID: "a", runID: "r3").count == entries.filter { $0.debitAccepted.runID == "r3" }.count)
            // Every row exactly (written 64 to a statement, the remainder one by one).
            var keys = Set<[Int64]>(), runs = Set<[Int64]>()
            try store.forEachIndexRow(runs: false, through: Int64(count)) { keys.insert([$0.hash, $0.seq]) }
            try store.forEachIndexRow(runs: true, through: Int64(count)) { runs.insert([$0.hash, $0.seq]) }
            #expect(keys == Set(entries.map { [JournalKeyHash.debit(account: "a", key: $0.debitAccepted.idempotencyKey), $0.seq] }))
            #expect(runs == Set(entries.map { [JournalKeyHash.run(account: "a", run: $0.debitAccepted.runID), $0.seq] }))
        }
    }
}
