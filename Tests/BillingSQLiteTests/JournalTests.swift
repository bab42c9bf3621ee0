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

    /// A commit's consecutive debits share rows, 16 at most (0005); every
    /// other entry has a row of its own with its kind and account. Rows go
    /// 32 to an insert statement, the rest 16, 8, 4, 2, 1: journals on both
    /// sides of each multiple read back whole, and the rows tile the seqs.
    /// A scan reads `rowsPerRead` rows per statement (a snapshot each, so a
    /// long `billing verify` does not pin a running server's WAL): the
    /// reads join up, from any starting seq, debit rows and single rows alike.
    @Test func aScanLongerThanOneReadDeliversEveryEntryOnceInOrder() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let count = Int64(2 * LedgerReader.rowsPerRead + 700)
            let entries = (1...count).map { seq -> Entry in
                seq % 5 == 0 ? debitAccepted(seq, account: "acct", key: "k-\(seq)", total: seq) : accountCreated(seq, account: "acct-\(seq)")
            }
            try Self.expectScans(of: entries, committedBy: 2_000, in: store,
                                 after: [0, 1, Int64(LedgerReader.rowsPerRead) - 1, Int64(LedgerReader.rowsPerRead),
                                         count - 700, count - 1, count])
        }
    }

    /// Appends `entries` in commits of `commit`, then scans from each seq in
    /// `after`: every later entry once, in order.
    private static func expectScans(of entries: [Entry], committedBy commit: Int, in store: SQLiteLedgerStore,
                                    after starts: [Int64], sourceLocation: SourceLocation = #_sourceLocation) throws {
        for chunk in stride(from: 0, to: entries.count, by: commit) {
            try store.append(Array(entries[chunk..<min(chunk + commit, entries.count)]))
        }
        let count = Int64(entries.count)
        for after in starts {
            var seen: [Int64] = []
            try store.forEachEntry(after: after) { seen.append($0.seq) }
            #expect(seen == Array(stride(from: after + 1, through: count, by: 1)), "after \(after)", sourceLocation: sourceLocation)
        }
    }

    /// Rows of 16 debits across read boundaries (a read is `rowsPerRead`
    /// rows: 4,096 entries here), from any starting seq — one inside a row
    /// included (the first row read then holds entries already delivered).
    @Test func aScanOfSixteenDebitRowsAcrossReadsDeliversEveryEntryOnceInOrder() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let perRead = Int64(16 * LedgerReader.rowsPerRead)
            let count = 3 * perRead + 40
            let entries = (1...count).map { debitAccepted($0, account: "acct", key: "k-\($0)", total: $0) }
            try Self.expectScans(of: entries, committedBy: 4_096, in: store,
                                 after: [0, 1, 15, 16, 17, perRead - 1, perRead, perRead + 1, perRead + 9, 2 * perRead - 3,
                                         count - 17, count - 1, count])
        }
    }

    /// What a scan hands on is read with no snapshot open: while `body`
    /// runs (`billing verify`'s checks take seconds a read), another
    /// connection can checkpoint the whole WAL and restart it. (A snapshot
    /// held meanwhile made the checkpoint report busy: the WAL grew for the
    /// whole scan beside a running server.)
    @Test func aScanHoldsNoSnapshotWhileItsEntriesAreHandedOn() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let count = Int64(3 * LedgerReader.rowsPerRead)
            try store.append((1...count).map { accountCreated($0, account: "acct-\($0)") })
            let outside = try SQLiteConnection(path: path)
            var checked = 0
            try store.forEachEntry(after: 0) { entry in
                guard entry.seq % Int64(LedgerReader.rowsPerRead) == 1 else { return }
                let checkpoint = try outside.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
                #expect(try checkpoint.step())
                #expect(checkpoint.int64(at: 0) == 0, "the checkpoint was blocked while entry \(entry.seq) was handed on")
                checked += 1
            }
            #expect(checked == 3)
        }
    }

    @Test(arguments: [1, 2, 3, 7, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 520, 1_100, 2_500])
    func rowsHoldACommitsDebitsSixteenAtMost(count: Int) throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            // Mostly debits, in runs of every length, between other entries.
            let entries = (1...Int64(count)).map { seq -> Entry in
                let account = "acct-\(seq % 7)"
                switch seq % 97 {
                case 0: return accountCreated(seq, account: account)
                case 50: return creditsGranted(seq, account: account, key: "grant-\(seq)")
                default:
                    return seq % 3 == 0 ? debitRefused(seq, account: account, key: "k-\(seq)")
                        : debitAccepted(seq, account: account, key: "k-\(seq)", total: seq * 10)
                }
            }
            let commits = [Array(entries.prefix(count / 2)), Array(entries.dropFirst(count / 2))]
            for commit in commits { try store.append(commit) }
            #expect(try store.entries() == entries)
            #expect(try store.lastSeq() == Int64(count))
            #expect(try store.journalSize().entries == Int64(count))

            // The rows each commit should have made, worked out here.
            var expected: [(seq: Int64, kind: Int64, account: String, entries: Int64)] = []
            for commit in commits {
                var debits = 0
                for entry in commit {
                    let row = try JournalRow(entry)
                    if row.kind == .debitAccepted || row.kind == .debitRefused {
                        if debits % 16 == 0 { expected.append((entry.seq, 0, "", 0)) }
                        expected[expected.count - 1].entries += 1
                        debits += 1
                    } else {
                        expected.append((entry.seq, row.kind.rawValue, row.accountID, 1))
                        debits = 0
                    }
                }
            }
            let connection = try SQLiteConnection(path: path)
            let rows = try connection.prepare("""
                SELECT seq, kind, account_id, entries, idempotency_key IS NULL AND run_id IS NULL FROM journal ORDER BY seq
                """).use { query in
                var rows: [(seq: Int64, kind: Int64, account: String, entries: Int64, nulls: Int64)] = []
                while try query.step() {
                    rows.append((query.int64(at: 0), query.int64(at: 1), query.string(at: 2) ?? "?", query.int64(at: 3),
                                 query.int64(at: 4)))
                }
                return rows
            }
            #expect(rows.count == expected.count)
            for (row, want) in zip(rows, expected) {
                #expect(row.seq == want.seq && row.kind == want.kind && row.account == want.account
                        && row.entries == want.entries && row.nulls == 1, "row \(row) vs \(want)")
            }
            #expect(rows.map(\.entries).max() ?? 0 <= 16)
            // Tiled: each row starts where the one before it ends.
            for (row, next) in zip(rows, rows.dropFirst()) { #expect(row.seq + row.entries == next.seq) }
        }
    }

    /// Reading after any seq — a row's first, last or middle entry — gives
    /// exactly the entries after it; so does each entry looked up alone.
    @Test func everySeqIsFoundInsideSharedRows() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            var entries: [Entry] = [accountCreated(1, account: "a")]
            for seq in Int64(2)...150 {
                entries.append(seq == 70 ? creditsGranted(seq, account: "a", key: "g") : debitAccepted(seq, account: "a", key: "k\(seq)"))
            }
            try store.append(Array(entries.prefix(100)))
            try store.append(Array(entries.dropFirst(100)))
            for after in Int64(0)...151 {
                #expect(try store.entries(after: after) == Array(entries.dropFirst(Int(min(after, 150)))), "after \(after)")
            }
            let reader = try LedgerReader(connection: SQLiteConnection(path: path))
            for entry in entries { #expect(try reader.entry(entry.seq) == entry) }
            #expect(try reader.entry(151) == nil)
        }
    }

    /// Debits found by key and by run through the index when their entries
    /// share rows with others, in one row and across rows.
    @Test func indexedDebitsAreFoundInsideSharedRows() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            let entries = [accountCreated(1, account: "a")]
                + (Int64(2)...200).map { debitAccepted($0, account: "a", key: "k\($0)", run: "r\($0 % 3)") }
            try store.append(entries)
            var index = JournalIndexRows()
            for entry in entries.dropFirst() {
                guard case .debitAccepted(let debit) = entry.event else { continue }
                index.keys.append(.init(hash: JournalKeyHash.debit(account: "a", key: debit.idempotencyKey), seq: entry.seq))
                index.runs.append(.init(hash: JournalKeyHash.run(account: "a", run: debit.runID), seq: entry.seq))
            }
            index.keys.sort()
            index.runs.sort()
            try store.writeCheckpoint(checkpoint(200), index: index)
            for entry in entries.dropFirst() {
                guard case .debitAccepted(let debit) = entry.event else { continue }
                #expect(try store.debitEntry(accountID: "a", idempotencyKey: debit.idempotencyKey) == entry)
            }
            #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k1") == nil)
            #expect(try store.debitEntry(accountID: "b", idempotencyKey: "k2") == nil)
            for run in 0..<3 {
                let want = entries.dropFirst().filter {
                    if case .debitAccepted(let debit) = $0.event { return debit.runID == "r\(run)" }
                    return false
                }
                #expect(try store.runEntries(accountID: "a", runID: "r\(run)") == want)
            }
        }
    }

    /// A shared row whose entry holds another seq, or that is cut short, is
    /// reported as corrupt, not read past.
    @Test func aDamagedSharedRowIsCorrupt() throws {
        try withTemporaryDatabase { path in
            let store = try SQLiteLedgerStore(path: path)
            try store.append((Int64(1)...5).map { debitAccepted($0, account: "a", key: "k\($0)") })
            let connection = try SQLiteConnection(path: path)
            let body = try connection.prepare("SELECT body FROM journal WHERE seq = 1").use { query -> [UInt8] in
                _ = try query.step()
                return query.blob(at: 0)
            }
            // Entry 3 swapped for a copy of entry 4: a seq out of place.
            var swapped = [UInt8]()
            var parts: [[UInt8]] = []
            var offset = 0
            while offset < body.count {
                var length = 0, shift = 0
                while true {
                    let byte = Int(body[offset]); offset += 1
                    length |= (byte & 0x7f) << shift; shift += 7
                    if byte < 0x80 { break }
                }
                parts.append([UInt8](body[(offset - (shift / 7))..<(offset + length)]))
                offset += length
            }
            #expect(parts.count == 5)
            parts[2] = parts[3]
            for part in parts { swapped += part }
            // A row holding an entry that is not a debit.
            var notADebit: [UInt8] = []
            let created: [UInt8] = try accountCreated(1, account: "a").serializedBytes()
            notADebit.append(UInt8(created.count))
            notADebit += created
            let reader = try LedgerReader(connection: SQLiteConnection(path: path))
            // Each damage, and an entry a lookup by seq finds damaged (not missing).
            let damages: [(body: [UInt8], seq: Int64)] = [
                (swapped, 3), ([UInt8](body.dropLast(3)), 5), ([UInt8](body.prefix(body.count / 2)), 5), (notADebit, 1),
            ]
            for (damaged, seq) in damages {
                try connection.prepare("UPDATE journal SET body = ?1 WHERE seq = 1").use { update in
                    try update.bind(blob: damaged, at: 1)
                    while try update.step() {}
                }
                #expect(throws: SQLiteStoreError.self) { _ = try store.entries() }
                #expect(throws: SQLiteStoreError.self) { _ = try reader.entry(seq) }
            }
            // The body whole again, but its row counting another number of entries.
            try connection.prepare("UPDATE journal SET body = ?1 WHERE seq = 1").use { update in
                try update.bind(blob: body, at: 1)
                while try update.step() {}
            }
            #expect(try store.entries().count == 5)
            for count in [4, 6] {
                try connection.execute(script: "UPDATE journal SET entries = \(count) WHERE seq = 1")
                #expect(throws: SQLiteStoreError.self) { _ = try store.entries() }
            }
            try connection.execute(script: "UPDATE journal SET entries = 6 WHERE seq = 1")
            #expect(throws: SQLiteStoreError.self) { _ = try reader.entry(6) }
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
            // Rows 2 and 3 go in by one statement, the debits' row 4 by the
            // next, which a trigger makes fail: after two rows were inserted.
            let batch = [
                creditsGranted(2, account: "acct-1", key: "g1"),
                creditsGranted(3, account: "acct-1", key: "g2"),
                debitAccepted(4, account: "acct-1", key: "k1"),
                debitAccepted(5, account: "acct-1", key: "k2"),
            ]
            let connection = try SQLiteConnection(path: path)
            try connection.execute(script: """
                CREATE TRIGGER fail_at_4 BEFORE INSERT ON journal WHEN NEW.seq = 4
                BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;
                """)
            #expect(throws: (any Error).self) { try store.append(batch) }

            #expect(try store.lastSeq() == 1)
            #expect(try store.entries().count == 1)
            // The writer is not left inside a transaction.
            try connection.execute(script: "DROP TRIGGER fail_at_4")
            try store.append(batch)
            #expect(try store.lastSeq() == 5)
            #expect(try store.entries().count == 5)
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
