public import BillingProto
public import Foundation
import SwiftProtobuf

/// A store's error that says whether what the disk holds is still known.
/// After a write or sync the operating system reported failed (SQLite's
/// SQLITE_IOERR) or damage found (SQLITE_CORRUPT), a commit the ledger
/// refused may yet be on disk, and a page whose write failed may be reported
/// clean by a later sync ("fsyncgate"): reloading in place could answer from
/// a journal that is not the disk's. Only reopening the store (a restart:
/// SQLite rebuilds its view from the files) knows; a full disk or a busy
/// database leaves nothing unknown (the transaction rolled back).
public protocol LedgerStoreError: Error {
    var leavesDiskStateUnknown: Bool { get }
    /// Whether the same call may well succeed later (a busy or locked
    /// database, a full disk, an I/O error): a read failing so is
    /// UNAVAILABLE to its caller, not INTERNAL.
    var isTransient: Bool { get }
}

/// Durable storage of the ledger: an append-only journal plus checkpoints.
/// The SQLite store implements it; simulation tests use an in-memory store
/// that injects failures. Implementations must be safe to call from several
/// threads (one writer at a time: the group committer; any number of readers).
public protocol LedgerStore: Sendable {
    /// Appends `records` (consecutive seqs, continuing the journal) in one
    /// transaction. Returns only once they are durable; throws if nothing
    /// was written. (If it throws after a commit, the entries are durable but
    /// the caller cannot know: exactly the ambiguity a crash creates.)
    func append(_ records: [JournalRecord]) throws

    /// Stores a checkpoint of the state as of `checkpoint.seq` — a
    /// serialized `Billing_Journal_V1_Checkpoint`, as the ledger writes it
    /// (`LedgerState.encodedCheckpoint`) — and the index rows of the debits
    /// since the previous one (`JournalIndexRows`, each row's seq at most
    /// `checkpoint.seq`): lookups see the rows exactly when the checkpoint is
    /// stored (all or nothing), though they may be written in several
    /// transactions before it.
    func writeCheckpoint(encoded checkpoint: EncodedCheckpoint, index: JournalIndexRows) throws

    /// The newest checkpoint, or nil.
    func latestCheckpoint() throws -> Billing_Journal_V1_Checkpoint?

    /// Calls `body` for each entry with seq > `seq`, in order.
    func forEachEntry(after seq: Int64, _ body: (Billing_Journal_V1_Entry) throws -> Void) throws

    /// The debit entry (accepted or refused) recorded under (account, key),
    /// if the indexes written with checkpoints cover it (later debits are in
    /// the ledger's memory: `Ledger.debitEntry`).
    func debitEntry(accountID: String, idempotencyKey: String) throws -> Billing_Journal_V1_Entry?

    /// Accepted debits of one run that the indexes cover, in journal order.
    func runEntries(accountID: String, runID: String) throws -> [Billing_Journal_V1_Entry]

    /// The seqs the run index holds for the run's hash, ascending, without
    /// reading the entries (a hash shared with another run adds its seqs:
    /// `runEntries(accountID:runID:seqs:)` leaves them out).
    func runSeqs(accountID: String, runID: String) throws -> [Int64]

    /// Those of `seqs` (ascending) that are accepted debits of the run, in
    /// journal order: only these are read and decoded.
    func runEntries(accountID: String, runID: String, seqs: [Int64]) throws -> [Billing_Journal_V1_Entry]

    /// The highest seq the indexes cover (the newest checkpoint that wrote
    /// index rows; 0: none).
    func indexedThrough() throws -> Int64

    /// Calls `body` with the key hash of every indexed debit of index
    /// generations after `generation` (0: all), to fill the ledger's
    /// `KeyFilter` at start-up on top of a stored one.
    func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws

    /// Stores a copy of the ledger's key filter (`KeyFilter.contents()`),
    /// taken once every debit key up to `seq` was in it, replacing the one
    /// stored before once it is complete.
    func writeKeyFilter(_ contents: Data, seq: Int64) throws

    /// The newest complete key filter stored, and its seq; nil if none.
    func latestKeyFilter() throws -> (seq: Int64, contents: Data)?

    /// Calls `body` with every row of the key index (`runs` false) or the run
    /// index (true) that lookups see, of generations up to `through`, in no
    /// particular order (`billing verify`).
    func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws

    /// The key index's rows (generations up to `through`) whose hash more
    /// than one row has: a key journaled twice, or a hash collision
    /// (`billing verify` tells them apart).
    func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row]

    /// Highest seq in the journal (0 when empty).
    func lastSeq() throws -> Int64

    /// Audit-log entries (account creation, grants, key changes), newest
    /// first: seq < `beforeSeq`, at or after `sinceMicros`, of `accountID`
    /// (empty: all), at most `limit`.
    func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Billing_Journal_V1_Entry]
}

extension LedgerStore {
    /// From `runEntries(accountID:runID:)` (stores in tests).
    public func runSeqs(accountID: String, runID: String) throws -> [Int64] {
        try runEntries(accountID: accountID, runID: runID).map(\.seq)
    }

    /// From `runEntries(accountID:runID:)` (stores in tests).
    public func runEntries(accountID: String, runID: String, seqs: [Int64]) throws -> [Billing_Journal_V1_Entry] {
        let wanted = Set(seqs)
        return try runEntries(accountID: accountID, runID: runID).filter { wanted.contains($0.seq) }
    }

    /// `append` of protobuf entries (tools and tests).
    public func append(_ entries: [Billing_Journal_V1_Entry]) throws {
        try append(entries.map(JournalRecord.init))
    }

    /// `writeCheckpoint(encoded:index:)` of a message (tools and tests).
    public func writeCheckpoint(_ checkpoint: Billing_Journal_V1_Checkpoint, index: JournalIndexRows) throws {
        try writeCheckpoint(encoded: EncodedCheckpoint(seq: checkpoint.seq, writtenUnixMicros: checkpoint.writtenUnixMicros,
                                                       accounts: checkpoint.accounts.count, bytes: try checkpoint.serializedBytes()),
                            index: index)
    }
}
