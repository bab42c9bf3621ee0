extension SQLiteConnection {
    /// Applies the migrations newer than the database's version, in order, in one
    /// transaction (the schema moves from one known version to another or not at
    /// all), recording each in schema_migrations. Refuses a newer database.
    func migrate(_ migrations: [Migration] = Migration.all, appliedUnix: Int64) throws {
        for (index, migration) in migrations.enumerated() {
            precondition(migration.version == Int64(index + 1), "migrations must be numbered 1, 2, 3...: \(migration.name)")
        }
        let known = migrations.last?.version ?? 0
        try transaction {
            let current = try schemaVersion()
            guard current <= known else {
                throw SQLiteStoreError.schemaTooNew(databaseVersion: current, knownVersion: known)
            }
            for migration in migrations where migration.version > current {
                try execute(script: String(decoding: migration.sql, as: UTF8.self))
                try prepare("INSERT INTO schema_migrations (version, applied_unix) VALUES (?1, ?2)").use { insert in
                    try insert.bind(migration.version, at: 1)
                    try insert.bind(appliedUnix, at: 2)
                    while try insert.step() {}
                }
            }
        }
    }

    /// For commands that only read: the schema must be this build's already
    /// (nothing is migrated under a server that may have the file open).
    func requireCurrentSchema(_ migrations: [Migration] = Migration.all) throws {
        let known = migrations.last?.version ?? 0
        let current = try schemaVersion()
        guard current <= known else { throw SQLiteStoreError.schemaTooNew(databaseVersion: current, knownVersion: known) }
        guard current == known else { throw SQLiteStoreError.schemaNotMigrated(databaseVersion: current, knownVersion: known) }
    }

    /// Whether the file holds tables but no billing schema: another
    /// program's database, which must not be migrated (or switched to WAL).
    /// Told by billing's own tables, not by a `schema_migrations` table
    /// alone: Rails, golang-migrate and dbmate make one too.
    func isForeignDatabase() throws -> Bool {
        let tables = try strings("SELECT name FROM sqlite_master WHERE type = 'table'")
        guard !tables.isEmpty else { return false }  // a new file
        guard tables.contains("schema_migrations"), tables.contains("journal") else { return true }
        return !(try strings("SELECT name FROM pragma_table_info('schema_migrations')")).contains("applied_unix")
    }

    private func strings(_ sql: String) throws -> Set<String> {
        try prepare(sql).use { query in
            var found: Set<String> = []
            while try query.step() { if let text = query.string(at: 0) { found.insert(text) } }
            return found
        }
    }

    /// The highest applied migration, 0 for a new database.
    func schemaVersion() throws -> Int64 {
        let tableExists = try prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1").use { query in
            try query.bind("schema_migrations", at: 1)
            return try query.step() && query.int64(at: 0) > 0
        }
        guard tableExists else { return 0 }
        return try prepare("SELECT coalesce(max(version), 0) FROM schema_migrations").scalarInt64()
    }
}
