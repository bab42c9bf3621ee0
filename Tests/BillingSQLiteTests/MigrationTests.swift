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
}
