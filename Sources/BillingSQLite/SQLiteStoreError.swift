/// Why the SQLite ledger store refused an operation (SQLite's own failures are `SQLiteError`).
public enum SQLiteStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The database was migrated by newer code; this code must not touch it.
    case schemaTooNew(databaseVersion: Int64, knownVersion: Int64)
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

    public var description: String {
        switch self {
        case let .schemaTooNew(database, known):
            "database schema version \(database) is newer than this build knows (\(known)); upgrade the binary"
        case let .seqNotConsecutive(expected, found):
            "journal entries must continue the journal: expected seq \(expected), got \(found)"
        case let .entryWithoutEvent(seq):
            "journal entry \(seq) has no event"
        case let .checkpointAhead(checkpointSeq, lastSeq):
            "checkpoint at seq \(checkpointSeq) is ahead of the journal (last seq \(lastSeq))"
        case let .walUnavailable(path, journalMode):
            "\(path): WAL journal mode unavailable (got \(journalMode))"
        case let .corrupt(detail):
            "corrupt ledger database: \(detail)"
        case .closed:
            "the ledger store is closed"
        }
    }
}
