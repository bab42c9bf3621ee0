public import BillingLedger
public import BillingProto
import Foundation
internal import SwiftProtobuf
import Synchronization

/// The ledger's journal and checkpoints in one SQLite database (WAL mode).
///
/// One writer connection, used under a lock by `append` and `writeCheckpoint`,
/// and a pool of reader connections that run concurrently with it.
public final class SQLiteLedgerStore: LedgerStore {
    public let path: String
    private let writer: Mutex<LedgerWriter?>
    private let readers: ReaderPool
    /// Checkpoints `latestCheckpoint` passed over as unreadable, and why
    /// (for the server's log: `takeSkippedCheckpoints`).
    private let skippedCheckpoints = Mutex<[String]>([])

    public func takeSkippedCheckpoints() -> [String] {
        skippedCheckpoints.withLock { skipped in
            defer { skipped.removeAll() }
            return skipped
        }
    }
    /// Checkpoint transactions waiting for the writer lock (see `append`).
    private let othersWaiting = Atomic<Int>(0)
    /// The database file's inode when opened (`fileHasMoved`).
    private let inode: UInt64?

    /// Whether `path` no longer names the file this store has open: deleted,
    /// renamed, or replaced by another file (a copy over the open file keeps
    /// its inode and is not seen). SQLite in WAL mode goes on writing to the
    /// file it has open — commits acknowledged into a deleted file, or a
    /// live WAL paired with another database at the next open — so the
    /// server checks this and stops. The test is SQLite's own
    /// SQLITE_FCNTL_HAS_MOVED: the path's inode against the open file's. A
    /// `stat` that fails for another reason than a missing file (a
    /// permission, an I/O error) says nothing: not moved.
    public func fileHasMoved() -> Bool {
        guard let inode else { return false }
        var info = stat()
        guard stat(path, &info) == 0 else { return errno == ENOENT || errno == ENOTDIR }
        return UInt64(info.st_ino) != inode
    }

    /// The journal writer's `PRAGMA synchronous` as SQLite reports it once
    /// set: "full" (every commit survives power loss) unless asked otherwise.
    public let synchronousInEffect: String

    /// Opens (creating the file and its directory if missing) and migrates the database.
    /// - Parameters:
    ///   - synchronous: `.full` (default) makes every returned `append` survive power loss.
    ///   - readerConnections: reader connections kept open for concurrent reads.
    ///   - owner: true only in the process that holds the database's lock
    ///     (`billing serve`, a writing `billing keys`): it deletes what a
    ///     crashed owner left half-written (index rows and checkpoint parts
    ///     without their checkpoint). Any other process (`billing verify`,
    ///     `billing audit`) must not: those rows may be a live server's
    ///     checkpoint in progress.
    ///   - migrating: false for commands that only read (`verify`, `audit`):
    ///     the schema must be current already; nothing is written to it.
    public init(path: String, synchronous: SynchronousMode = .full, readerConnections: Int = 4, owner: Bool = false,
                migrating: Bool = true) throws {
        guard migrating || FileManager.default.fileExists(atPath: path) else { throw SQLiteStoreError.noDatabase(path: path) }
        if migrating {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // A new database is its owner's alone (0600): it holds billing
            // e-mails, card brands and last four digits, invoices and key
            // hashes (session 28: SQLite's default, 0644 under the usual
            // umask, let any local user read them). SQLite gives the -wal
            // and -shm files the database's mode.
            // (No O_EXCL: through a symlink to a file not made yet, it would
            // fail and SQLite make the file 0644; an existing file keeps its
            // mode and contents: no O_TRUNC.)
            let fd = path == ":memory:" || path.hasPrefix("file:") ? -1 : open(path, O_CREAT | O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0o600)
            if fd >= 0 { Glibc.close(fd) }
        }
        // A command that only reads opens the file read-only: nothing of it
        // changes (session 26: `verify` set WAL mode, made -wal/-shm files
        // another user's server could not then write, and folded a crashed
        // server's WAL into the file when it closed).
        // A directory it cannot write with neither a log nor its index
        // beside the file (a read-only copy of a stopped database: a server
        // keeps both while it has the file open): read as immutable, without
        // the index WAL mode otherwise creates. With them, read-only as any
        // other — refused, saying why, if SQLite cannot do that here.
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let unwritable = !migrating && !FileManager.default.isWritableFile(atPath: directory)
        let logBeside = FileManager.default.fileExists(atPath: path + "-wal") || FileManager.default.fileExists(atPath: path + "-shm")
        let immutable = unwritable && !logBeside
        let logUnwritable = unwritable && logBeside  // read through a log it may not be able to
        let writerConnection: SQLiteConnection
        do {
            writerConnection = try SQLiteConnection(path: path, fileReadOnly: !migrating, immutable: immutable)
            if logUnwritable { try writerConnection.execute(script: "SELECT count(*) FROM sqlite_master") }
        } catch {
            if logUnwritable { throw SQLiteStoreError.readOnlyWithLog(path: path, reason: "\(error)") }
            throw error
        }
        // The file just opened (created if missing), before the migrations.
        var info = stat()
        inode = stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
        // Checked before `configure` (which switches the file to WAL mode, a
        // change persistent in the file): another program's database, or
        // one a reading command cannot read, is left exactly as it was.
        try writerConnection.execute(script: "PRAGMA busy_timeout = 5000")  // (not kept in the file)
        if try writerConnection.isForeignDatabase() { throw SQLiteStoreError.notBillingDatabase(path: path) }
        if !migrating { try writerConnection.requireCurrentSchema() }
        try writerConnection.configure(synchronous: synchronous, readOnly: false, fileReadOnly: !migrating)
        // Read back, not assumed: what `serve` logs at start.
        synchronousInEffect = switch try writerConnection.prepare("PRAGMA synchronous").scalarInt64() {
        case 0: "off"
        case 1: "normal"
        case 2: "full"
        case 3: "extra"
        case let other: "\(other)"
        }
        // 0002 computes index hashes of rows written under 0001.
        try writerConnection.defineFunction("billing_debit_key_hash") { JournalKeyHash.debit(account: $0, key: $1) }
        try writerConnection.defineFunction("billing_run_hash") { JournalKeyHash.run(account: $0, run: $1) }
        if migrating {
            try writerConnection.migrate(appliedUnix: Int64(Date().timeIntervalSince1970))
        } else {
            try writerConnection.requireCurrentSchema()
        }
        self.path = path
        let ledgerWriter = try LedgerWriter(connection: writerConnection)
        if owner { try ledgerWriter.dropOrphanIndexRows() }
        writer = Mutex(ledgerWriter)
        // Opened after the migration, so every reader sees the current schema.
        readers = try ReaderPool(capacity: readerConnections) {
            let connection = try SQLiteConnection(path: path, fileReadOnly: !migrating, immutable: immutable, create: false)
            try connection.configure(synchronous: synchronous, readOnly: true, fileReadOnly: !migrating)
            return try LedgerReader(connection: connection)
        }
    }

    deinit { close() }

    /// Closes every connection; later calls throw `SQLiteStoreError.closed`.
    /// A reader in use is closed when its call returns.
    public func close() {
        writer.withLock { $0 = nil }
        readers.close()
    }

    public func append(_ entries: [JournalRecord]) throws {
        // Under full load the journal commits back to back, and the writer
        // lock is not fair: a checkpoint waiting for it could wait through
        // thousands of commits (at 10 M debits checkpoints fell 700,000
        // entries behind, a start-up replayed them: 9 s). So the journal
        // steps aside while a checkpoint transaction waits for the lock —
        // one transaction of the checkpoint per commit at most — bounded, so
        // a stuck checkpoint writer cannot stop the journal.
        var turns = 0
        while othersWaiting.load(ordering: .acquiring) > 0 && turns < 10_000 {
            sched_yield()
            turns += 1
        }
        try withWriter { try $0.append(entries) }
    }

    /// Index rows go in transactions of `indexRowsPerTransaction`, then the
    /// checkpoint with the row that makes them visible: appends interleave
    /// instead of waiting for one long transaction. The checkpoint arrives
    /// serialized, so nothing is encoded under the writer.
    public func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
        if let ahead = (index.keys + index.runs).first(where: { $0.seq > checkpoint.seq || $0.seq < 1 }) {
            throw SQLiteStoreError.checkpointAhead(checkpointSeq: checkpoint.seq, lastSeq: ahead.seq)
        }
        do {
            try write(checkpoint, index: index)
        } catch {
            // Best effort: what this attempt wrote before failing goes now,
            // not at the next open (the rows would be rewritten under the
            // next checkpoint's generation anyway).
            try? withWriter { try $0.dropUnrecorded(generation: checkpoint.seq) }
            throw error
        }
    }

    private func write(_ checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws {
        let bytes = checkpoint.bytes
        // A rewrite at the same seq replaces the old one whole (see `forget`).
        try withCheckpointWriter { try $0.forget(.checkpoint, seq: checkpoint.seq) }
        // Large checkpoints in parts, each its own transaction (see 0003).
        let parts = bytes.count > Self.checkpointPartBytes ? try writeParts(.checkpoint, seq: checkpoint.seq, of: bytes) : 0
        let chunk = Self.indexRowsPerTransaction
        var (keys, runs) = (index.keys[...], index.runs[...])
        while !keys.isEmpty || !runs.isEmpty {
            let (someKeys, someRuns) = (keys.prefix(chunk), runs.prefix(max(0, chunk - min(chunk, keys.count))))
            try withCheckpointWriter { try $0.insertIndexRows(generation: checkpoint.seq, keys: someKeys, runs: someRuns) }
            keys = keys.dropFirst(someKeys.count)
            runs = runs.dropFirst(someRuns.count)
        }
        try withCheckpointWriter {
            try $0.writeCheckpoint(seq: checkpoint.seq, writtenUnixMicros: checkpoint.writtenUnixMicros,
                                   bytes: parts > 0 ? [] : bytes, parts: parts, keys: index.keys.count, runs: index.runs.count)
        }
    }

    /// A checkpoint larger than this is stored in parts of this size.
    static let checkpointPartBytes = 1 << 20

    /// Index rows per transaction when a checkpoint writes its generation.
    static let indexRowsPerTransaction = 8_192

    public func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint? {
        var skipped: [String] = []
        defer { if !skipped.isEmpty { skippedCheckpoints.withLock { $0 += skipped } } }
        return try readers.withReader { try $0.latestCheckpoint(skipped: &skipped) }
    }

    public func forEachEntry(after seq: Int64, _ body: (Billing_Journal_V1_Entry) throws -> Void) throws {
        try readers.withReader { try $0.forEachEntry(after: seq, body) }
    }

    public func debitEntry(accountID: String, idempotencyKey: String) throws -> Billing_Journal_V1_Entry? {
        try readers.withReader { try $0.debitEntry(accountID: accountID, idempotencyKey: idempotencyKey) }
    }

    public func runEntries(accountID: String, runID: String) throws -> [Billing_Journal_V1_Entry] {
        try readers.withReader { try $0.runEntries(accountID: accountID, runID: runID) }
    }

    public func runSeqs(accountID: String, runID: String) throws -> [Int64] {
        try readers.withReader { try $0.runSeqs(accountID: accountID, runID: runID) }
    }

    public func runEntries(accountID: String, runID: String, seqs: [Int64]) throws -> [Billing_Journal_V1_Entry] {
        try readers.withReader { try $0.runEntries(accountID: accountID, runID: runID, seqs: seqs) }
    }

    public func indexedThrough() throws -> Int64 {
        try readers.withReader { try $0.indexedThrough() }
    }

    public func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws {
        try readers.withReader { try $0.forEachIndexedKeyHash(after: generation, body) }
    }

    /// In parts (as a large checkpoint), the row that completes it last.
    public func writeKeyFilter(_ contents: Data, seq: Int64) throws {
        try withCheckpointWriter { try $0.forget(.keyFilter, seq: seq) }
        do {
            let parts = try writeParts(.keyFilter, seq: seq, of: contents)
            try withCheckpointWriter { try $0.recordKeyFilter(seq: seq, parts: parts) }
        } catch {
            // Best effort, as for a checkpoint: the parts this attempt wrote
            // go now (a disk that filled mid-write kept megabytes of them,
            // and commits failed for want of that space, until a restart).
            try? withWriter { try $0.dropUnrecordedFilterParts() }
            throw error
        }
    }

    /// Writes `bytes` as `checkpointPartBytes` parts at `seq`, each in a
    /// transaction of its own (commits wait for one part at most); returns
    /// how many. The caller has deleted what was stored at `seq` (see
    /// `LedgerWriter.forget`) and then writes the row that records them.
    private func writeParts(_ kind: LedgerWriter.StoredInParts, seq: Int64,
                            of bytes: some RandomAccessCollection<UInt8>) throws -> Int {
        var parts = 0
        var rest = bytes[...]
        while !rest.isEmpty {
            let part = [UInt8](rest.prefix(Self.checkpointPartBytes))
            try withCheckpointWriter { try $0.insertPart(kind, seq: seq, part: parts, bytes: part) }
            rest = rest.dropFirst(part.count)
            parts += 1
        }
        return parts
    }

    public enum CatalogRegistration: Sendable, Equatable {
        /// Known with these prices.
        case same
        /// New: recorded now.
        case registered
        /// Known with other prices.
        case conflict
    }

    /// Records the prices digest of a catalog version the first time it is
    /// served (`catalog_versions`, migration 0006).
    public func registerCatalog(version: String, digest: [UInt8], nowUnix: Int64) throws -> CatalogRegistration {
        try withWriter { writer in
            switch try writer.registerCatalog(version: version, digest: digest, nowUnix: nowUnix) {
            case .some(let known): known == digest ? .same : .conflict
            case .none: .registered
            }
        }
    }

    /// Forgets a version `registerCatalog` recorded for a start that failed
    /// before serving anything (it priced no debit).
    public func forgetCatalog(version: String) throws {
        try withWriter { try $0.forgetCatalog(version: version) }
    }

    public func latestKeyFilter() throws -> (seq: Int64, contents: Data)? {
        try readers.withReader { try $0.latestKeyFilter() }
    }

    public func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws {
        try readers.withReader { try $0.forEachIndexRow(runs: runs, through: through, body) }
    }

    public func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row] {
        try readers.withReader { try $0.keyRowsSharingAHash(through: through) }
    }

    public func lastSeq() throws -> Int64 {
        try readers.withReader { try $0.lastSeqValue() }
    }

    public func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Billing_Journal_V1_Entry] {
        try readers.withReader {
            try $0.auditEntries(accountID: accountID, sinceMicros: sinceMicros, beforeSeq: beforeSeq, limit: limit)
        }
    }

    /// Entries in the journal (its last seq: seqs have no gaps) and the size of the
    /// database file in bytes (journal, indexes and checkpoints; not the -wal file).
    public func journalSize() throws -> (entries: Int64, bytes: Int64) {
        try readers.withReader { try $0.journalSize() }
    }

    /// Tests only (`@testable`): runs each transaction of a checkpoint or
    /// key filter write, which it may refuse by throwing instead — a crash
    /// between two of them leaves what the earlier ones committed, as the
    /// simulation on SQLite needs. Nil in the server.
    let checkpointTransactionGate = Mutex<(@Sendable (() throws -> Void) throws -> Void)?>(nil)

    private func withCheckpointWriter<T>(_ body: (LedgerWriter) throws -> T) throws -> T {
        guard let gate = checkpointTransactionGate.withLock({ $0 }) else { return try checkpointTransaction(body) }
        var result: T?
        try gate { result = try checkpointTransaction(body) }
        guard let result else { throw SQLiteStoreError.closed }  // the gate neither ran it nor threw
        return result
    }

    /// A checkpoint's transaction: it announces itself until it holds the
    /// lock, so `append` lets it in between two commits.
    private func checkpointTransaction<T>(_ body: (LedgerWriter) throws -> T) throws -> T {
        othersWaiting.add(1, ordering: .releasing)
        var announced = true
        defer { if announced { othersWaiting.subtract(1, ordering: .releasing) } }
        return try writer.withLock { writer in
            othersWaiting.subtract(1, ordering: .releasing)
            announced = false
            guard let writer else { throw SQLiteStoreError.closed }
            return try body(writer)
        }
    }

    private func withWriter<T>(_ body: (LedgerWriter) throws -> T) throws -> T {
        try writer.withLock { writer in
            guard let writer else { throw SQLiteStoreError.closed }
            return try body(writer)
        }
    }
}
