import Foundation
import Testing
@testable import BillingSQLite

@Suite struct SQLiteConnectionTests {
    private func scratch(_ path: String) throws -> SQLiteConnection {
        let connection = try SQLiteConnection(path: path)
        try connection.configure(synchronous: .normal, readOnly: false)
        try connection.execute(script: "CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT, data BLOB)")
        return connection
    }

    private struct Injected: Error {}

    @Test func transactionRollsBackWhenTheBodyThrows() throws {
        try withTemporaryDatabase { path in
            _ = try SQLiteLedgerStore(path: path)  // creates the directory
            let connection = try scratch(path + "-scratch")
            let insert = try connection.prepare("INSERT INTO t (id) VALUES (?1)")
            do {
                try connection.transaction {
                    try insert.use { try $0.bind(1, at: 1); _ = try $0.step() }
                    throw Injected()
                }
                Issue.record("the transaction did not rethrow")
            } catch {
                #expect(error is Injected)
            }
            #expect(!connection.isInTransaction)
            #expect(try connection.prepare("SELECT count(*) FROM t").scalarInt64() == 0)
            try connection.transaction {
                try insert.use { try $0.bind(1, at: 1); _ = try $0.step() }
            }
            #expect(try connection.prepare("SELECT count(*) FROM t").scalarInt64() == 1)
        }
    }

    @Test func valuesRoundTripIncludingEmptyAndNull() throws {
        try withTemporaryDatabase { path in
            _ = try SQLiteLedgerStore(path: path)
            let connection = try scratch(path + "-scratch")
            let insert = try connection.prepare("INSERT INTO t (id, text, data) VALUES (?1, ?2, ?3)")
            let rows: [(Int64, String?, [UInt8]?)] = [(1, "", []), (2, nil, nil), (3, "x\u{0}y", [0, 255]), (Int64.min, "é", [7])]
            for (id, text, data) in rows {
                try insert.use { insert in
                    try insert.bind(id, at: 1)
                    try insert.bind(text, at: 2)
                    try insert.bind(blob: data, at: 3)
                    _ = try insert.step()
                }
            }
            let select = try connection.prepare("SELECT text, data, typeof(text), typeof(data) FROM t WHERE id = ?1")
            for (id, text, data) in rows {
                try select.use { select in
                    try select.bind(id, at: 1)
                    #expect(try select.step())
                    #expect(select.string(at: 0) == text)
                    #expect(select.isNull(at: 1) == (data == nil))
                    #expect(select.blob(at: 1) == (data ?? []))
                    // An empty string or blob is stored as such, not as NULL.
                    #expect(select.string(at: 2) == (text == nil ? "null" : "text"))
                    #expect(select.string(at: 3) == (data == nil ? "null" : "blob"))
                }
            }
        }
    }

    /// Which failures leave the disk's state unknown (the server stops
    /// rather than reload in place): I/O errors but memory, and corruption;
    /// not a full disk, a busy database or a constraint.
    @Test func ioErrorsAndCorruptionLeaveTheDiskStateUnknown() {
        let unknown: [Int32] = [10, 10 | 3 << 8, 10 | 4 << 8, 10 | 2 << 8, 11, 11 | 1 << 8]
        let known: [Int32] = [10 | 12 << 8, 13, 5, 5 | 2 << 8, 19, 2067, 1, 8]
        for code in unknown { #expect(SQLiteError(code: code, message: "", sql: nil).leavesDiskStateUnknown, "\(code)") }
        for code in known { #expect(!SQLiteError(code: code, message: "", sql: nil).leavesDiskStateUnknown, "\(code)") }
        // What may succeed if tried again: busy, locked, I/O, full, cannot open.
        let transient: [Int32] = [5, 5 | 2 << 8, 6, 10, 10 | 4 << 8, 13, 14]
        for code in transient { #expect(SQLiteError(code: code, message: "", sql: nil).isTransient, "\(code)") }
        for code in [11, 19, 2067, 1, 8, 522, 8202, 8458] as [Int32] {  // damage is not tried again
            #expect(!SQLiteError(code: code, message: "", sql: nil).isTransient, "\(code)")
        }
    }

    @Test func errorsCarryTheMessageAndTheSQL() throws {
        try withTemporaryDatabase { path in
            _ = try SQLiteLedgerStore(path: path)
            let connection = try scratch(path + "-scratch")
            let error = #expect(throws: SQLiteError.self) { try connection.prepare("SELECT nope FROM t") }
            #expect(error?.message.contains("no such column") == true)
            #expect(error?.sql == "SELECT nope FROM t")
            #expect(error?.description.contains("SELECT nope FROM t") == true)
        }
    }

    @Test func readersAreQueryOnly() throws {
        try withTemporaryDatabase { path in
            _ = try SQLiteLedgerStore(path: path)
            let reader = try SQLiteConnection(path: path)
            try reader.configure(synchronous: .full, readOnly: true)
            let error = #expect(throws: SQLiteError.self) {
                try reader.execute(script: "DELETE FROM journal")
            }
            #expect(error?.primaryCode == 8)  // SQLITE_READONLY
        }
    }
}

/// Every acknowledged commit survives power loss by default: the journal
/// writer's `PRAGMA synchronous` is FULL unless asked otherwise (a crash
/// test kills the process, which keeps the page cache: only this shows it).
@Suite struct SynchronousDefaultTests {
    @Test func theJournalIsSynchronousFullByDefault() throws {
        let byDefault: String = try withTemporaryDatabase { path in try SQLiteLedgerStore(path: path).synchronousInEffect }
        #expect(byDefault == "full")
        let asked: String = try withTemporaryDatabase { path in try SQLiteLedgerStore(path: path, synchronous: .normal).synchronousInEffect }
        #expect(asked == "normal")
    }
}

/// Pruned checkpoints and key filters are deleted, not overwritten with
/// zeros: Debian's SQLite turns SECURE_DELETE on, and that rewrote ~20 MB
/// through the WAL inside a transaction every commit waited for.
@Suite struct SecureDeleteTests {
    @Test func theWriterDoesNotZeroWhatItDeletes() throws {
        try withTemporaryDatabase { path in
            _ = try SQLiteLedgerStore(path: path)  // (creates the file and its directory)
            let connection = try SQLiteConnection(path: path)
            try connection.configure(synchronous: .full, readOnly: false)
            #expect(try connection.prepare("PRAGMA secure_delete").scalarInt64() == 0)
        }
    }
}

/// A reader never creates the database: opened after the file was deleted,
/// it fails and leaves nothing at the path (an empty database there would
/// be served by the next start as a fresh ledger).
@Test func aReaderOpenedAfterTheFileWasDeletedCreatesNothing() throws {
    try withTemporaryDatabase { path in
        let store = try SQLiteLedgerStore(path: path)
        store.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        #expect(throws: SQLiteError.self) { try SQLiteConnection(path: path, create: false) }
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
