public import BillingLedger

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

extension SQLiteError: LedgerStoreError {
    /// SQLITE_IOERR (a read, write or sync the system reported failed; but
    /// SQLITE_IOERR_NOMEM, which is memory) and SQLITE_CORRUPT: the files may
    /// hold what this connection does not know. SQLITE_FULL and SQLITE_BUSY
    /// roll back cleanly and leave nothing unknown.
    public var leavesDiskStateUnknown: Bool {
        (primaryCode == 10 && code != 3082) || primaryCode == 11
    }

    /// SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN;
    /// but not the I/O errors that report damage (SQLITE_IOERR_SHORT_READ,
    /// _DATA, _CORRUPTFS): trying again reads the same bytes.
    public var isTransient: Bool {
        [5, 6, 10, 13, 14].contains(primaryCode) && ![522, 8202, 8458].contains(code)
    }
}
