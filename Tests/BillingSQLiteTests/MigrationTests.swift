import BillingLedger
import Foundation
import SwiftProtobuf
import Testing
@testable import BillingSQLite

@Suite struct MigrationTests {
    @Test func openingTwiceAppliesEachMigrationOnce() throws {
        try withTemporaryDatabase { path in
            try SQLiteLedgerStore(path: path).close()
            let store = try SQLiteLedgerStore(path: path)
            try store.append([accountCreated(1, account: "acct-1")])
            store.close()
            try SQLiteLedgerStore(path: path).close()

            let connection = try SQLiteConnection(path: path)
            let versions = try connection.prepare("SELECT version, applied_unix FROM schema_migrations ORDER BY version").use { query in
                var rows: [(Int64, Int64)] = []
                while try query.step() { rows.append((query.int64(at: 0), query.int64(at: 1))) }
                return rows
            }
            #expect(versions.map(\.0) == Migration.all.map(\.version))
            #expect(versions.allSatisfy { $0.1 > 1_700_000_000 })
            #expect(try connection.schemaVersion() == Migration.latestVersion)
            #expect(try SQLiteLedgerStore(path: path).lastSeq() == 1)
        }
    }

    @Test func newerSchemaIsRefused() throws {
        try withTemporaryDatabase { path in
            try SQLiteLedgerStore(path: path).close()
            let newer = Migration.latestVersion + 1
            do {
                let connection = try SQLiteConnection(path: path)
                try connection.prepare("INSERT INTO schema_migrations (version, applied_unix) VALUES (?1, 0)").use { insert in
                    try insert.bind(newer, at: 1)
                    while try insert.step() {}
                }
            }
            #expect(throws: SQLiteStoreError.schemaTooNew(databaseVersion: newer, knownVersion: Migration.latestVersion)) {
                try SQLiteLedgerStore(path: path)
            }
        }
    }

    /// `billing verify` and `billing audit` only read: an older schema is
    /// refused, not migrated under a server of the older build that may
    /// have the file open; a missing file is refused, not created.
    @Test func aReadingOpenNeitherMigratesNorCreates() throws {
        try withTemporaryDatabase { path in
            #expect(throws: SQLiteStoreError.self) { try SQLiteLedgerStore(path: path, migrating: false) }
            #expect(!FileManager.default.fileExists(atPath: path))
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            do {
                let connection = try SQLiteConnection(path: path)
                try connection.migrate(Array(Migration.all.prefix(1)), appliedUnix: 1_700_000_000)
            }
            let older: Int64 = 1
            do {
                _ = try SQLiteLedgerStore(path: path, migrating: false)
                Issue.record("an older schema was opened for reading")
            } catch SQLiteStoreError.schemaNotMigrated(let database, let known) {
                #expect(database == older && known == Migration.latestVersion)
            }
            #expect(try SQLiteConnection(path: path).schemaVersion() == older)  // nothing migrated
            try SQLiteLedgerStore(path: path).close()  // the server's open migrates
            try SQLiteLedgerStore(path: path, migrating: false).close()
        }
    }

    @Test func migrationsAreNumberedFromOne() {
        #expect(Migration.all.map(\.version) == Array(1...Int64(Migration.all.count)))
        #expect(Migration.all.allSatisfy { $0.name.hasPrefix(String(format: "%04d_", Int($0.version))) })
        #expect(Migration.all.allSatisfy { !$0.sql.isEmpty })
    }

    @Test func walIsRequired() throws {
        #expect(throws: SQLiteStoreError.walUnavailable(path: ":memory:", journalMode: "memory")) {
            try SQLiteLedgerStore(path: ":memory:")
        }
    }

    /// A database written by 0001 (text indexes in the journal) gets its
    /// debits up to the newest checkpoint into 0002's hash indexes; later
    /// ones are the ledger's to replay into memory.
    @Test func version1DebitsAreIndexedUpToTheNewestCheckpoint() throws {
        try withTemporaryDatabase { path in
            try FileManager.default.createDirectory(
                atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
            let entries = [
                debitAccepted(1, account: "a", key: "k1", run: "r1"),
                debitRefused(2, account: "a", key: "k2"),
                debitAccepted(3, account: "a", key: "k3", run: "r1"),
            ]
            do {
                let connection = try SQLiteConnection(path: path)
                try connection.migrate(Array(Migration.all.prefix(1)), appliedUnix: 1_700_000_000)
                let insert = try connection.prepare("""
                    INSERT INTO journal (seq, at_unix_micros, kind, account_id, idempotency_key, run_id, body)
                    VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6)
                    """)
                for entry in entries {
                    let row = try JournalRow(entry)
                    try insert.use { insert in
                        try insert.bind(entry.seq, at: 1)
                        try insert.bind(row.kind.rawValue, at: 2)
                        try insert.bind(row.accountID, at: 3)
                        try insert.bind(row.idempotencyKey, at: 4)
                        try insert.bind(row.runID, at: 5)
                        try insert.bind(blob: try entry.serializedBytes(), at: 6)
                        while try insert.step() {}
                    }
                }
                try connection.prepare("INSERT INTO checkpoints (seq, written_unix_micros, state) VALUES (2, 0, ?1)").use { insert in
                    try insert.bind(blob: try checkpoint(2).serializedBytes(), at: 1)
                    while try insert.step() {}
                }
            }
            let store = try SQLiteLedgerStore(path: path)
            #expect(try store.indexedThrough() == 2)
            #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k1") == entries[0])
            #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k2") == entries[1])
            #expect(try store.debitEntry(accountID: "a", idempotencyKey: "k3") == nil)
            #expect(try store.runEntries(accountID: "a", runID: "r1") == [entries[0]])
            var hashes: [Int64] = []
            try store.forEachIndexedKeyHash(after: 0) { hashes.append($0) }
            #expect(Set(hashes) == [JournalKeyHash.debit(account: "a", key: "k1"), JournalKeyHash.debit(account: "a", key: "k2")])
            #expect(try store.entries() == entries)
            // 0005: new debits share rows after the old rows of one entry each.
            let later = (Int64(4)...70).map { debitAccepted($0, account: "a", key: "k\($0)", run: "r2") }
            try store.append(later)
            #expect(try store.lastSeq() == 70)
            #expect(try store.entries() == entries + later)
            #expect(try store.entries(after: 2) == Array((entries + later).dropFirst(2)))
            #expect(try store.entries(after: 40) == Array(later.dropFirst(37)))
        }
    }
}
