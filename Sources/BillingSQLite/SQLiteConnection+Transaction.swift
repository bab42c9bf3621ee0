extension SQLiteConnection {
    /// Runs `body` in BEGIN IMMEDIATE ... COMMIT; rolls back and rethrows if
    /// `body` or the COMMIT throws, so nothing of a failed transaction remains.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try beginImmediate.run()
        do {
            let result = try body()
            try commit.run()
            return result
        } catch {
            // SQLite may already have rolled back (SQLITE_FULL, IOERR): only roll
            // back an open transaction. The original error is the one to report.
            if isInTransaction { try? rollback.run() }
            throw error
        }
    }
}
