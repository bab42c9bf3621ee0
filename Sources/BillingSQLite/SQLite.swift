internal import CSQLite
import Foundation

// The only file that touches the C library (STYLE: C stays at the edge).
// Everything else in the module speaks SQLiteConnection and Statement.

/// One SQLite connection. Not thread-safe by design: the store hands each
/// connection to one thread at a time (the writer lock, the reader pool), so it
/// is opened with SQLITE_OPEN_NOMUTEX and SQLite skips its per-call mutex.
final class SQLiteConnection {
    fileprivate let db: OpaquePointer
    let path: String
    // Prepared once: every transaction steps these rather than re-parsing SQL.
    let beginImmediate: Statement
    let commit: Statement
    let rollback: Statement

    /// `fileReadOnly`: opened SQLITE_OPEN_READONLY, for the commands that
    /// only read (`verify`, `audit`, `keys list`): they neither change the
    /// file nor fold a WAL a crashed server left into it when they close.
    /// A path as a `file:` URI's path: "%", "?" and "#" escaped, relative
    /// paths made absolute.
    static func uriPath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var escaped = ""
        for character in absolute {
            switch character {
            case "%": escaped += "%25"
            case "?": escaped += "%3f"
            case "#": escaped += "%23"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// `immutable`: a file nothing can change while it is read (a read-only
    /// copy: no server writes a directory it cannot write its log to), read
    /// without the -shm index WAL mode otherwise needs (SQLite's
    /// `immutable=1`).
    /// `create`: false for a reader — the writer made the file; a reader
    /// opened after it was deleted (a pool growing in the second before the
    /// server notices and stops) must fail, not leave an empty database at
    /// the path for the next start to serve.
    init(path: String, fileReadOnly: Bool = false, immutable: Bool = false, create: Bool = true) throws {
        var handle: OpaquePointer?
        // READWRITE|CREATE: the store creates its file. Readers open read-write
        // too (in WAL mode they write the -shm index) and set query_only instead.
        let flags = fileReadOnly || immutable ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (immutable ? SQLITE_OPEN_URI : 0)
            : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let name = immutable ? "file:" + Self.uriPath(path) + "?immutable=1" : path
        let rc = sqlite3_open_v2(name, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw SQLiteError(code: rc, message: "\(message) (opening \(path))", sql: nil)
        }
        // Extended codes (SQLITE_CONSTRAINT_UNIQUE, SQLITE_IOERR_FSYNC...) say precisely what failed.
        sqlite3_extended_result_codes(handle, 1)
        db = handle
        self.path = path
        do {
            // IMMEDIATE takes the write lock at BEGIN, so a busy database fails
            // (after busy_timeout) before any work rather than at COMMIT.
            beginImmediate = try Statement(db: handle, sql: "BEGIN IMMEDIATE")
            commit = try Statement(db: handle, sql: "COMMIT")
            rollback = try Statement(db: handle, sql: "ROLLBACK")
        } catch {
            sqlite3_close_v2(handle)
            throw error
        }
    }

    // close_v2 defers the real close until every Statement is finalized, so
    // statements may outlive this object without use-after-free.
    deinit { sqlite3_close_v2(db) }

    func prepare(_ sql: String) throws -> Statement {
        try Statement(db: db, sql: sql)
    }

    /// Makes `name(a, b)` callable from SQL on this connection: `hash` of
    /// the two text arguments (NULL if either is NULL). Deterministic. For
    /// migrations that must compute what Swift computes (index hashes).
    func defineFunction(_ name: String, hash: @escaping @Sendable (String, String) -> Int64) throws {
        final class Box { let hash: @Sendable (String, String) -> Int64; init(_ h: @escaping @Sendable (String, String) -> Int64) { hash = h } }
        let context = Unmanaged.passRetained(Box(hash)).toOpaque()
        let rc = sqlite3_create_function_v2(
            db, name, 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, context,
            { call, _, arguments in
                let box = Unmanaged<Box>.fromOpaque(sqlite3_user_data(call)!).takeUnretainedValue()
                guard let arguments, let first = arguments[0], let second = arguments[1],
                      let a = sqlite3_value_text(first), let b = sqlite3_value_text(second) else {
                    sqlite3_result_null(call)
                    return
                }
                // By length, not to the first NUL: a key may contain one.
                let text = { (value: OpaquePointer, start: UnsafePointer<UInt8>) in
                    String(decoding: UnsafeBufferPointer(start: start, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
                }
                sqlite3_result_int64(call, box.hash(text(first, a), text(second, b)))
            },
            nil, nil,
            { context in context.map { Unmanaged<AnyObject>.fromOpaque($0).release() } })
        guard rc == SQLITE_OK else {
            throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: nil)
        }
    }

    /// Runs a script of SQL statements (migrations, pragmas without results).
    /// Never for values: those go through a Statement's bind.
    func execute(script sql: String) throws {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errorMessage)
        guard rc == SQLITE_OK else {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(errorMessage)
            throw SQLiteError(code: rc, message: message, sql: sql)
        }
    }

    /// False between BEGIN and COMMIT/ROLLBACK (SQLite's autocommit flag).
    var isInTransaction: Bool { sqlite3_get_autocommit(db) == 0 }
}

/// A prepared statement, reused: bind by 1-based index, step, read columns,
/// reset. Finalized when released.
final class Statement {
    private let handle: OpaquePointer
    private let db: OpaquePointer
    let sql: String

    fileprivate init(db: OpaquePointer, sql: String) throws {
        var handle: OpaquePointer?
        // PERSISTENT: these live as long as their connection and are stepped many times.
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard rc == SQLITE_OK, let handle else {
            throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
        }
        self.handle = handle
        self.db = db
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    func bind(_ value: Int64, at index: Int32) throws {
        try check(sqlite3_bind_int64(handle, index, value))
    }

    func bind(_ value: String?, at index: Int32) throws {
        guard var value else { return try bindNull(at: index) }
        let rc = value.withUTF8 { utf8 in
            // A nil base address would bind NULL, not the empty string.
            guard let base = utf8.baseAddress, utf8.count > 0 else {
                return sqlite3_bind_text(handle, index, "", 0, billing_sqlite_transient())
            }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text64(handle, index, $0, UInt64(utf8.count), billing_sqlite_transient(), UInt8(SQLITE_UTF8))
            }
        }
        try check(rc)
    }

    func bind(blob value: [UInt8]?, at index: Int32) throws {
        guard let value else { return try bindNull(at: index) }
        let rc = value.withUnsafeBytes { bytes in
            // A nil base address would bind NULL, not an empty blob.
            guard let base = bytes.baseAddress, bytes.count > 0 else {
                return sqlite3_bind_zeroblob(handle, index, 0)
            }
            return sqlite3_bind_blob64(handle, index, base, UInt64(bytes.count), billing_sqlite_transient())
        }
        try check(rc)
    }

    func bindNull(at index: Int32) throws {
        try check(sqlite3_bind_null(handle, index))
    }

    /// True when a row is ready to read, false when the statement is done.
    func step() throws -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw error(rc)
        }
    }

    /// Readies the statement for its next use and drops its bindings. A reader's
    /// unreset SELECT would keep its WAL snapshot open and stall checkpoints.
    func reset() {
        sqlite3_reset(handle)  // repeats the last step's error, already thrown
        sqlite3_clear_bindings(handle)
    }

    func isNull(at column: Int32) -> Bool {
        sqlite3_column_type(handle, column) == SQLITE_NULL
    }

    func int64(at column: Int32) -> Int64 {
        sqlite3_column_int64(handle, column)
    }

    func string(at column: Int32) -> String? {
        guard let text = sqlite3_column_text(handle, column) else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)
    }

    /// The column's bytes; empty for an empty blob or NULL.
    func blob(at column: Int32) -> [UInt8] {
        guard let bytes = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    private func check(_ rc: Int32) throws {
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    private func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }
}
