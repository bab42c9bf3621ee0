internal import BillingProto
internal import BillingLedger
internal import SwiftProtobuf
import Foundation

/// One reading connection (query_only) and its prepared statements. WAL lets
/// any number of these read while the writer commits; each sees the journal as
/// of the start of its statement.
///
/// `@unchecked Sendable`: it moves between threads only through `ReaderPool`,
/// which hands it to one thread at a time under its mutex.
final class LedgerReader: @unchecked Sendable {
    private let connection: SQLiteConnection
    private let debitByKey: Statement
    private let runDebits: Statement
    private let rowHolding: Statement
    private let entriesAfter: Statement
    private let lastSeq: Statement
    private let newestCheckpoint: Statement
    private let checkpointParts: Statement
    private let pageCount: Statement
    private let pageSize: Statement
    private let auditPage: Statement
    private let accountAuditPage: Statement
    private let newestGeneration: Statement
    private let keyHashes: Statement
    private let newestKeyFilter: Statement
    private let keyFilterParts: Statement
    private let keyRows: Statement
    private let runRows: Statement
    private let sharedKeyHashes: Statement

    init(connection: SQLiteConnection) throws {
        self.connection = connection
        // One probe of each index generation's (generation, hash) prefix
        // (CROSS JOIN fixes that loop order), then the journal row holding
        // each seq (`rowHolding`). The hash only narrows: the caller checks
        // each entry's account and key or run.
        debitByKey = try connection.prepare("""
            SELECT d.seq FROM index_generations AS g CROSS JOIN debit_keys AS d
            WHERE d.generation = g.generation AND d.key_hash = ?1
            """)
        runDebits = try connection.prepare("""
            SELECT r.seq FROM index_generations AS g CROSS JOIN run_debits AS r
            WHERE r.generation = g.generation AND r.run_hash = ?1
            ORDER BY r.seq
            """)
        // Rows tile the seqs (0005): the one holding n is the last starting at or before n.
        rowHolding = try connection.prepare(
            "SELECT seq, kind, entries, body FROM journal WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1")
        newestGeneration = try connection.prepare("SELECT coalesce(max(generation), 0) FROM index_generations")
        keyHashes = try connection.prepare("SELECT key_hash FROM debit_keys WHERE generation > ?1")
        newestKeyFilter = try connection.prepare("SELECT seq, parts FROM key_filters ORDER BY seq DESC LIMIT 1")
        keyFilterParts = try connection.prepare("SELECT part, bytes FROM key_filter_parts WHERE seq = ?1 ORDER BY part")
        // Rows of recorded generations only, as lookups see them.
        keyRows = try connection.prepare("""
            SELECT d.key_hash, d.seq FROM index_generations AS g CROSS JOIN debit_keys AS d
            WHERE d.generation = g.generation AND g.generation <= ?1
            """)
        runRows = try connection.prepare("""
            SELECT r.run_hash, r.seq FROM index_generations AS g CROSS JOIN run_debits AS r
            WHERE r.generation = g.generation AND g.generation <= ?1
            """)
        sharedKeyHashes = try connection.prepare("""
            WITH rows AS (
                SELECT d.key_hash, d.seq FROM index_generations AS g CROSS JOIN debit_keys AS d
                WHERE d.generation = g.generation AND g.generation <= ?1)
            SELECT key_hash, seq FROM rows
            WHERE key_hash IN (SELECT key_hash FROM rows GROUP BY key_hash HAVING count(*) > 1)
            """)
        // From the row holding seq + 1 on (found by one descent: whatever
        // the rows hold, not a bound on their size).
        entriesAfter = try connection.prepare("""
            SELECT seq, kind, entries, body FROM journal
            WHERE seq >= coalesce((SELECT seq FROM journal WHERE seq <= ?1 + 1 ORDER BY seq DESC LIMIT 1), 0)
            ORDER BY seq LIMIT ?2
            """)
        lastSeq = try connection.prepare(Self.lastSeqQuery)
        newestCheckpoint = try connection.prepare("SELECT seq, state, parts FROM checkpoints ORDER BY seq DESC")
        checkpointParts = try connection.prepare("SELECT part, bytes FROM checkpoint_parts WHERE seq = ?1 ORDER BY part")
        pageCount = try connection.prepare("PRAGMA page_count")
        pageSize = try connection.prepare("PRAGMA page_size")
        // Audit: newest first, everything but debits, of every account or
        // one. The kind list is JournalRow.auditKinds, and the partial
        // indexes' (0007) word for word; INDEXED BY makes a statement that
        // could not use its index fail here, at open, not walk the journal.
        auditPage = try connection.prepare("""
            SELECT body FROM journal INDEXED BY journal_audit
            WHERE kind IN (10, 11, 14, 15, 16, 17, 18, 19, 20, 21)
              AND at_unix_micros >= ?2 AND seq < ?3
            ORDER BY seq DESC LIMIT ?4
            """)
        accountAuditPage = try connection.prepare("""
            SELECT body FROM journal INDEXED BY journal_audit_account
            WHERE kind IN (10, 11, 14, 15, 16, 17, 18, 19, 20, 21) AND account_id = ?1
              AND at_unix_micros >= ?2 AND seq < ?3
            ORDER BY seq DESC LIMIT ?4
            """)
    }

    func auditEntries(accountID: String, sinceMicros: Int64, beforeSeq: Int64, limit: Int) throws -> [Billing_Journal_V1_Entry] {
        try (accountID.isEmpty ? auditPage : accountAuditPage).use { query in
            if !accountID.isEmpty { try query.bind(accountID, at: 1) }
            try query.bind(sinceMicros, at: 2)
            try query.bind(beforeSeq, at: 3)
            try query.bind(Int64(limit), at: 4)
            var entries: [Billing_Journal_V1_Entry] = []
            while try query.step() { entries.append(try Self.entry(query.blob(at: 0))) }
            return entries
        }
    }

    /// The last seq: the newest row's first plus its entries, one b-tree
    /// descent (the writer checks it in every commit).
    static let lastSeqQuery = "SELECT coalesce((SELECT seq + entries - 1 FROM journal ORDER BY seq DESC LIMIT 1), 0)"

    func debitEntry(accountID: String, idempotencyKey: String) throws -> Billing_Journal_V1_Entry? {
        try debitByKey.use { query in
            try query.bind(JournalKeyHash.debit(account: accountID, key: idempotencyKey), at: 1)
            // Each seq's entry read as the index yields it: the first match
            // ends the lookup before the newer generations are probed.
            while try query.step() {
                guard let entry = try entry(query.int64(at: 0)) else { continue }
                switch entry.event {
                case .debitAccepted(let debit) where debit.accountID == accountID && debit.idempotencyKey == idempotencyKey:
                    return entry
                case .debitRefused(let refused) where refused.accountID == accountID && refused.idempotencyKey == idempotencyKey:
                    return entry
                default:
                    continue  // another key with the same hash
                }
            }
            return nil
        }
    }

    func runEntries(accountID: String, runID: String) throws -> [Billing_Journal_V1_Entry] {
        try runEntries(accountID: accountID, runID: runID, seqs: runSeqs(accountID: accountID, runID: runID))
    }

    /// The run index's seqs for the run's hash, ascending, each once
    /// (should two generations ever both hold one).
    func runSeqs(accountID: String, runID: String) throws -> [Int64] {
        try runDebits.use { query in
            try query.bind(JournalKeyHash.run(account: accountID, run: runID), at: 1)
            var seqs: [Int64] = []
            while try query.step() {
                let seq = query.int64(at: 0)
                if seq != seqs.last { seqs.append(seq) }
            }
            return seqs
        }
    }

    /// Those of `seqs` (ascending) that are accepted debits of the run.
    func runEntries(accountID: String, runID: String, seqs: [Int64]) throws -> [Billing_Journal_V1_Entry] {
        var entries: [Billing_Journal_V1_Entry] = []
        var row: Row?  // a run's debits often share one: read it once
        for seq in seqs {
            if row.map({ !$0.holds(seq) }) ?? true { row = try self.row(holding: seq) }
            guard let entry = try row?.entry(seq) else { continue }
            if case .debitAccepted(let debit) = entry.event, debit.accountID == accountID, debit.runID == runID {
                entries.append(entry)
            }
        }
        return entries
    }

    /// The journal entry `seq`, from the row holding it; nil past the journal's end.
    func entry(_ seq: Int64) throws -> Billing_Journal_V1_Entry? {
        try row(holding: seq)?.entry(seq)
    }

    /// A journal row as read: the seqs it holds and its bytes.
    struct Row {
        let first: Int64
        let kind: Int64
        let count: Int64
        let body: [UInt8]

        func holds(_ seq: Int64) -> Bool { JournalDecoding.holds(seq, first: first, count: count) }

        /// Entry `seq` (at or after `first`); nil when the row ends before it
        /// (past the journal's end).
        func entry(_ seq: Int64) throws -> Billing_Journal_V1_Entry? {
            guard holds(seq) else { return nil }
            if kind == JournalRow.Kind.debits.rawValue {
                return try JournalDecoding.entry(seq, inDebitsRow: body, first: first, count: count)
            }
            let entry = try LedgerReader.entry(body)
            guard entry.seq == seq else { throw SQLiteStoreError.corrupt("journal row \(first) holds entry \(entry.seq)") }
            return entry
        }
    }

    private func row(holding seq: Int64) throws -> Row? {
        try rowHolding.use { query in
            try query.bind(seq, at: 1)
            guard try query.step() else { return nil }
            return Row(first: query.int64(at: 0), kind: query.int64(at: 1), count: query.int64(at: 2), body: query.blob(at: 3))
        }
    }

    func indexedThrough() throws -> Int64 {
        try newestGeneration.scalarInt64()
    }

    func forEachIndexRow(runs: Bool, through: Int64, _ body: (JournalIndexRows.Row) throws -> Void) throws {
        try (runs ? runRows : keyRows).use { query in
            try query.bind(through, at: 1)
            while try query.step() { try body(JournalIndexRows.Row(hash: query.int64(at: 0), seq: query.int64(at: 1))) }
        }
    }

    func keyRowsSharingAHash(through: Int64) throws -> [JournalIndexRows.Row] {
        try sharedKeyHashes.use { query in
            try query.bind(through, at: 1)
            var rows: [JournalIndexRows.Row] = []
            while try query.step() { rows.append(JournalIndexRows.Row(hash: query.int64(at: 0), seq: query.int64(at: 1))) }
            return rows
        }
    }

    func forEachIndexedKeyHash(after generation: Int64, _ body: (Int64) throws -> Void) throws {
        try keyHashes.use { query in
            try query.bind(generation, at: 1)
            while try query.step() { try body(query.int64(at: 0)) }
        }
    }

    func latestKeyFilter() throws -> (seq: Int64, contents: Data)? {
        // One read transaction: the row and its parts as of the same commit.
        try connection.execute(script: "BEGIN")
        defer { try? connection.execute(script: "COMMIT") }
        let row = try newestKeyFilter.use { query -> (seq: Int64, parts: Int64)? in
            guard try query.step() else { return nil }
            return (query.int64(at: 0), query.int64(at: 1))
        }
        guard let row else { return nil }
        return (row.seq, Data(try Self.joined(keyFilterParts, seq: row.seq, parts: row.parts, of: "key filter")))
    }

    /// The `parts` parts stored at `seq`, read by `query` (part, bytes in
    /// part order) and joined; corrupt unless every one is there. Parts
    /// numbered past `parts` are not read.
    private static func joined(_ query: Statement, seq: Int64, parts: Int64, of what: String) throws -> [UInt8] {
        try query.use { query in
            try query.bind(seq, at: 1)
            var joined: [UInt8] = []
            var next: Int64 = 0
            while next < parts, try query.step() {
                guard query.int64(at: 0) == next else { break }
                joined.append(contentsOf: query.blob(at: 1))
                next += 1
            }
            guard next == parts else {
                throw SQLiteStoreError.corrupt("\(what) \(seq) has \(next) of its \(parts) parts")
            }
            return joined
        }
    }

    /// Journal rows read per statement in `forEachEntry` (up to 16 debits
    /// each: ~4,000 entries, ~0.8 MB). Each read is a short snapshot of its
    /// own (the journal only grows at its end, so the reads join up), and
    /// its rows are copied out and the statement reset before they are
    /// handed on: a snapshot held while `body` ran — `billing verify`'s
    /// checks, seconds a read — kept a running server's WAL from being
    /// checkpointed and restarted, and it grew for the whole scan (a review
    /// measured 42 MB → 974 MB in a 2.5-minute verify under load).
    static let rowsPerRead = 256

    func forEachEntry(after seq: Int64, _ body: (Billing_Journal_V1_Entry) throws -> Void) throws {
        var after = seq
        while true {
            let rows = try entriesAfter.use { query -> [(first: Int64, kind: Int64, count: Int64, bytes: [UInt8])] in
                try query.bind(after, at: 1)
                try query.bind(Int64(Self.rowsPerRead), at: 2)
                var rows: [(first: Int64, kind: Int64, count: Int64, bytes: [UInt8])] = []
                rows.reserveCapacity(Self.rowsPerRead)
                while try query.step() {
                    rows.append((query.int64(at: 0), query.int64(at: 1), query.int64(at: 2), query.blob(at: 3)))
                }
                return rows
            }
            // The read's snapshot has ended: `body` may take its time.
            var delivered = after
            for row in rows {
                if row.kind == JournalRow.Kind.debits.rawValue {
                    try JournalDecoding.forEachEntry(inDebitsRow: row.bytes, first: row.first, count: row.count) { entry in
                        guard entry.seq > after else { return }
                        try body(entry)
                        delivered = entry.seq
                    }
                    continue
                }
                guard row.first > after else { continue }
                let entry = try Self.entry(row.bytes)
                guard entry.seq == row.first else {
                    throw SQLiteStoreError.corrupt("journal row \(row.first) holds entry \(entry.seq)")
                }
                try body(entry)
                delivered = entry.seq
            }
            // A short read is the journal's end; a full one with nothing new
            // cannot happen in a journal without gaps, and must not loop.
            guard rows.count == Self.rowsPerRead, delivered > after else { return }
            after = delivered
        }
    }

    func lastSeqValue() throws -> Int64 {
        try lastSeq.scalarInt64()
    }

    /// The newest checkpoint that reads whole; one that does not (a part
    /// missing, bytes that do not decode, another seq inside) is passed
    /// over for the one before it (two are kept for this), or, with none
    /// readable, the journal is replayed from its start. `skipped`: why
    /// each newer one was passed over.
    func latestCheckpoint(skipped: inout [String]) throws -> Billing_Journal_V1_Checkpoint? {
        // One read transaction: the rows and their parts as of the same commit.
        try connection.execute(script: "BEGIN")
        defer { try? connection.execute(script: "COMMIT") }
        let rows = try newestCheckpoint.use { query -> [(seq: Int64, state: [UInt8], parts: Int64)] in
            var rows: [(seq: Int64, state: [UInt8], parts: Int64)] = []
            while try query.step() { rows.append((query.int64(at: 0), query.blob(at: 1), query.int64(at: 2))) }
            return rows
        }
        for row in rows {
            do {
                var bytes = row.state
                if row.parts > 0 {
                    bytes = try Self.joined(checkpointParts, seq: row.seq, parts: row.parts, of: "checkpoint")
                }
                let checkpoint = try Billing_Journal_V1_Checkpoint(serializedBytes: bytes)
                guard checkpoint.seq == row.seq else {
                    throw SQLiteStoreError.corrupt("checkpoint row \(row.seq) holds seq \(checkpoint.seq)")
                }
                return checkpoint
            } catch {
                skipped.append("checkpoint at seq \(row.seq): \(error)")
            }
        }
        return nil
    }

    func journalSize() throws -> (entries: Int64, bytes: Int64) {
        // Seqs run 1, 2, 3... without gaps: the last one counts them.
        (try lastSeq.scalarInt64(), try pageCount.scalarInt64() * pageSize.scalarInt64())
    }

    static func entry(_ body: [UInt8]) throws -> Billing_Journal_V1_Entry {
        try JournalDecoding.entry(body)
    }
}
