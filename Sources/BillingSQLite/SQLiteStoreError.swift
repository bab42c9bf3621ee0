/// Why the SQLite ledger store refused an operation (SQLite's own failures are `SQLiteError`).
public enum SQLiteStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database was migrated by newer code; this code must not touch it.
    case schemaTooNew(databaseVersion: Int64, knownVersion: Int64)
    /// A reading tool (`verify`, `audit`) found an older schema: it does not
    /// migrate a database a server of the older build may have open.
    case schemaNotMigrated(databaseVersion: Int64, knownVersion: Int64)
    /// A reading tool was pointed at a path with no database.
    case noDatabase(path: String)
    /// `append` got entries that do not continue the journal 1, 2, 3... without gaps.
    case seqNotConsecutive(expected: Int64, found: Int64)
    /// An entry without an event cannot be indexed or replayed.
    case entryWithoutEvent(seq: Int64)
    /// A checkpoint claims a seq the journal does not have yet.
    case checkpointAhead(checkpointSeq: Int64, lastSeq: Int64)
    /// The database refused WAL mode (e.g. ":memory:"); the store needs it.
    case walUnavailable(path: String, journalMode: String)
    /// A stored row could not be read back.
    case corrupt(String)
    /// The store was closed.
    case closed
    /// An SQLite file with tables of its own and no billing schema.
    case notBillingDatabase(path: String)
    /// A reading command cannot write the database's directory and SQLite
    /// cannot read the write-ahead log (or its index) beside the file there.
    case readOnlyWithLog(path: String, reason: String)

    public var description: String {
        switch self {
        case let .schemaTooNew(database, known):
            "database schema version \(database) is newer than this build knows (\(known)); upgrade the binary"
        case let .noDatabase(path):
            "no billing database at \(path)"
        case let .schemaNotMigrated(database, known):
            "database schema version \(database) is older than this build's (\(known)); this command reads only: run it with the build that wrote the database, or start this build's `billing serve` on it once (which migrates)"
        case let .seqNotConsecutive(expected, found):
            "journal entries must continue the journal: expected seq \(expected), got \(found)"
        case let .entryWithoutEvent(seq):
            "journal entry \(seq) has no event"
        case let .checkpointAhead(checkpointSeq, lastSeq):
            "checkpoint at seq \(checkpointSeq) is ahead of the journal (last seq \(lastSeq))"
        case let .readOnlyWithLog(path, reason):
            "\(path) cannot be read from here (\(reason)): its directory is not writable and a write-ahead log is beside it (\(path)-wal, -shm); run this as the database's owner, or copy the database and its -wal file to a writable directory"
        case let .walUnavailable(path, journalMode):
            "\(path): WAL journal mode unavailable (got \(journalMode))"
        case let .corrupt(detail):
            "corrupt ledger database: \(detail)"
        case .closed:
            "the ledger store is closed"
        case let .notBillingDatabase(path):
            "\(path) is an SQLite database of something else (tables, no billing schema): not opened, nothing written"
        }
    }
}
