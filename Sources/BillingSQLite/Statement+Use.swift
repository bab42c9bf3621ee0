extension Statement {
    /// Runs `body` with this statement and always resets it afterwards, so a
    /// statement never leaks bindings or an open read snapshot into its next use.
    func use<T>(_ body: (Statement) throws -> T) throws -> T {
        defer { reset() }
        return try body(self)
    }

    /// Steps to completion a statement that returns no rows (INSERT, BEGIN...).
    func run() throws {
        try use { statement in
            while try statement.step() {}
        }
    }

    /// The first column of the single row this statement returns, as Int64.
    func scalarInt64() throws -> Int64 {
        try use { statement in
            guard try statement.step() else {
                throw SQLiteStoreError.corrupt("no row from \(statement.sql)")
            }
            return statement.int64(at: 0)
        }
    }
}
