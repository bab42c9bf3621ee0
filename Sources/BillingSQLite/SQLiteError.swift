/// A failed SQLite call: its (extended) result code, sqlite3_errmsg, and the SQL.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The extended result code, e.g. 2067 for SQLITE_CONSTRAINT_UNIQUE.
    public let code: Int32
    public let message: String
    /// The statement that failed, when there was one.
    public let sql: String?

    /// The primary result code (SQLITE_CONSTRAINT = 19, SQLITE_BUSY = 5...).
    public var primaryCode: Int32 { code & 0xff }

    public var description: String {
        let base = "SQLite error \(code): \(message)"
        return sql.map { "\(base) [\($0)]" } ?? base
    }
}
