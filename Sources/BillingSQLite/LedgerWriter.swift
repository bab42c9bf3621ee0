internal import BillingProto
internal import BillingLedger
internal import SwiftProtobuf

/// The store's one writing connection and its prepared statements. Used under
/// the store's writer lock only: SQLite allows one writer, so do we.
///
/// `@unchecked Sendable`: it lives inside the store's Mutex, and every use is
/// inside `withLock`, so one thread at a time touches it.
final class LedgerWriter: @unchecked Sendable {
    /// How many checkpoints to keep: the newest, and one before it in case the
    /// newest is unreadable. Older ones are deleted when a checkpoint is written.
    static let checkpointsKept: Int64 = 2

    private let connection: SQLiteConnection

    /// Records `version`'s prices digest the first time it is served; the
    /// digest recorded before, if any (nil: recorded now).
    func registerCatalog(version: String, digest: [UInt8], nowUnix: Int64) throws -> [UInt8]? {
        try connection.transaction {
            let known: [UInt8]? = try connection.prepare("SELECT sha256 FROM catalog_versions WHERE version = ?1").use { query in
                try query.bind(version, at: 1)
                return try query.step() ? query.blob(at: 0) : nil
            }
            if let known { return known }
            try connection.prepare("INSERT INTO catalog_versions (version, sha256, first_used_unix) VALUES (?1, ?2, ?3)").use { insert in
                try insert.bind(version, at: 1)
                try insert.bind(blob: digest, at: 2)
                try insert.bind(nowUnix, at: 3)
                try insert.run()
            }
            return nil
        }
    }

    func forgetCatalog(version: String) throws {
        try connection.prepare("DELETE FROM catalog_versions WHERE version = ?1").use { delete in
            try delete.bind(version, at: 1)
            try delete.run()
        }
    }
    /// The journal insert for 32, 16, ..., 1 rows per statement
    /// (`rowsPerStatement`), largest first.
    private let insertEntries: [(rows: Int, statement: Statement)]
    private let lastSeq: Statement
    private let insertCheckpoint: Statement
    private let pruneCheckpoints: Statement
    private let insertGeneration: Statement
    private let insertPart: Statement
    private let prunePartsStatement: Statement
    private let insertKey: Statement
    private let insertRun: Statement
    /// The same inserts, `indexRowsPerStatement` rows per statement.
    private let insertKeys: Statement
    private let insertRuns: Statement
    private let insertFilterPart: Statement
    private let recordFilter: Statement
    private let pruneFilters: Statement
    private let pruneFilterParts: Statement

    init(connection: SQLiteConnection) throws {
        self.connection = connection
        // idempotency_key and run_id stay NULL (0002): the indexes are by hash.
        insertEntries = try Self.rowsPerStatement.map { count in
            let rows = (0..<count).map { row in
                let p = 6 * row
                return "(?\(p + 1), ?\(p + 2), ?\(p + 3), ?\(p + 4), NULL, NULL, ?\(p + 5), ?\(p + 6))"
            }
            return (count, try connection.prepare(
                "INSERT INTO journal (seq, at_unix_micros, kind, account_id, idempotency_key, run_id, body, entries) VALUES "
                + rows.joined(separator: ", ")))
        }
        lastSeq = try connection.prepare(LedgerReader.lastSeqQuery)
        insertCheckpoint = try connection.prepare(
            "INSERT OR REPLACE INTO checkpoints (seq, written_unix_micros, state, parts) VALUES (?1, ?2, ?3, ?4)")
        insertPart = try connection.prepare("INSERT OR REPLACE INTO checkpoint_parts (seq, part, bytes) VALUES (?1, ?2, ?3)")
        // Parts of checkpoints pruned, or never recorded (a crash mid-write);
        // never those of the checkpoint being written (its row comes first).
        prunePartsStatement = try connection.prepare("DELETE FROM checkpoint_parts WHERE seq NOT IN (SELECT seq FROM checkpoints)")
        pruneCheckpoints = try connection.prepare(
            "DELETE FROM checkpoints WHERE seq NOT IN (SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT ?1)")
        insertGeneration = try connection.prepare(
            "INSERT OR REPLACE INTO index_generations (generation, keys, runs) VALUES (?1, ?2, ?3)")
        // OR IGNORE: a checkpoint rewritten at the same seq (close right after one) repeats its rows.
        insertKey = try connection.prepare("INSERT OR IGNORE INTO debit_keys (generation, key_hash, seq) VALUES (?1, ?2, ?3)")
        insertRun = try connection.prepare("INSERT OR IGNORE INTO run_debits (generation, run_hash, seq) VALUES (?1, ?2, ?3)")
        let values = (0..<Self.indexRowsPerStatement).map { "(?1, ?\(2 * $0 + 2), ?\(2 * $0 + 3))" }.joined(separator: ", ")
        insertKeys = try connection.prepare("INSERT OR IGNORE INTO debit_keys (generation, key_hash, seq) VALUES \(values)")
        insertRuns = try connection.prepare("INSERT OR IGNORE INTO run_debits (generation, run_hash, seq) VALUES \(values)")
        insertFilterPart = try connection.prepare(
            "INSERT OR REPLACE INTO key_filter_parts (seq, part, bytes) VALUES (?1, ?2, ?3)")
        recordFilter = try connection.prepare("INSERT OR REPLACE INTO key_filters (seq, parts) VALUES (?1, ?2)")
        pruneFilters = try connection.prepare("DELETE FROM key_filters WHERE seq < ?1")
        // Parts of filters replaced, or never recorded (a crash mid-write).
        pruneFilterParts = try connection.prepare("DELETE FROM key_filter_parts WHERE seq NOT IN (SELECT seq FROM key_filters)")
    }

    /// Inserts `entries` in one transaction after checking, inside it, that they
    /// continue the journal without a gap. All or nothing.
    func append(_ entries: [JournalRecord]) throws {
        guard let first = entries.first else { return }
        for (offset, entry) in entries.enumerated() where entry.seq != first.seq + Int64(offset) {
            throw SQLiteStoreError.seqNotConsecutive(expected: first.seq + Int64(offset), found: entry.seq)
        }
        let rows = try JournalEncoding.rows(entries)
        try connection.transaction {
            let last = try lastSeq.scalarInt64()
            guard last < LedgerState.maxSeq else { throw SQLiteStoreError.corrupt("the journal's last seq \(last) is out of range") }
            guard first.seq == last + 1 else {
                throw SQLiteStoreError.seqNotConsecutive(expected: last + 1, found: first.seq)
            }
            // As few statements as the sizes allow (SQLite's cost is mostly
            // per statement run, not per row): 32 rows at a time, then the
            // rest in powers of two — at most five statements beyond the 32s.
            var rest = rows[...]
            for (count, insert) in insertEntries {
                while rest.count >= count {
                    try insert.use { insert in
                        for (offset, row) in rest.prefix(count).enumerated() {
                            try bind(row, to: insert, first: Int32(6 * offset + 1))
                        }
                        while try insert.step() {}
                    }
                    rest = rest.dropFirst(count)
                }
            }
        }
    }

    /// Binds one journal row's six values, from parameter `first` on.
    private func bind(_ row: JournalEncoding.Row, to insert: Statement, first: Int32) throws {
        try insert.bind(row.seq, at: first)
        try insert.bind(row.atUnixMicros, at: first + 1)
        try insert.bind(row.kind.rawValue, at: first + 2)
        try insert.bind(row.accountID, at: first + 3)
        try insert.bind(blob: row.body, at: first + 4)
        try insert.bind(Int64(row.entries), at: first + 5)
    }

    /// Journal rows per insert statement (six parameters each), largest
    /// first: a row holds up to 16 debits, so 32 rows are up to 512 entries.
    static let rowsPerStatement = [32, 16, 8, 4, 2, 1]

    /// Inserts index rows of generation `generation` in one transaction of
    /// their own. Invisible to lookups (which start from `index_generations`)
    /// until `writeCheckpoint` records the generation; a crash before that
    /// leaves orphans that `dropOrphanIndexRows` removes when the owner next opens it.
    func insertIndexRows(generation: Int64, keys: ArraySlice<JournalIndexRows.Row>,
                         runs: ArraySlice<JournalIndexRows.Row>) throws {
        try connection.transaction {
            for (one, many, rows) in [(insertKey, insertKeys, keys), (insertRun, insertRuns, runs)] {
                // Whole groups through the many-row statement (SQLite's cost
                // is mostly per statement run, not per row), the rest one by one.
                var rest = rows
                while rest.count >= Self.indexRowsPerStatement {
                    try many.use { insert in
                        try insert.bind(generation, at: 1)
                        for (offset, row) in rest.prefix(Self.indexRowsPerStatement).enumerated() {
                            try insert.bind(row.hash, at: Int32(2 * offset + 2))
                            try insert.bind(row.seq, at: Int32(2 * offset + 3))
                        }
                        while try insert.step() {}
                    }
                    rest = rest.dropFirst(Self.indexRowsPerStatement)
                }
                for row in rest {
                    try one.use { insert in
                        try insert.bind(generation, at: 1)
                        try insert.bind(row.hash, at: 2)
                        try insert.bind(row.seq, at: 3)
                        while try insert.step() {}
                    }
                }
            }
        }
    }

    /// Index rows per many-row insert statement (two parameters each, plus the generation).
    static let indexRowsPerStatement = 64

    /// Stores one part of a checkpoint's or key filter's bytes, in a
    /// transaction of its own; it belongs to one only once `writeCheckpoint`
    /// or `recordKeyFilter` records it.
    func insertPart(_ kind: StoredInParts, seq: Int64, part: Int, bytes: [UInt8]) throws {
        try connection.transaction {
            try (kind == .checkpoint ? insertPart : insertFilterPart).use { insert in
                try insert.bind(seq, at: 1)
                try insert.bind(Int64(part), at: 2)
                try insert.bind(blob: bytes, at: 3)
                while try insert.step() {}
            }
        }
    }

    /// Stores `checkpoint` (replacing one at the same seq) — its bytes in
    /// `state`, or in `parts` parts written before — and records its index
    /// generation (whose rows `insertIndexRows` wrote before), and deletes
    /// all but the newest `checkpointsKept` checkpoints with their parts, in
    /// one transaction: the checkpoint and its index rows appear together.
    func writeCheckpoint(seq: Int64, writtenUnixMicros: Int64, bytes state: [UInt8], parts: Int,
                         keys: Int, runs: Int) throws {
        try connection.transaction {
            let last = try lastSeq.scalarInt64()
            guard seq <= last else {
                throw SQLiteStoreError.checkpointAhead(checkpointSeq: seq, lastSeq: last)
            }
            try insertCheckpoint.use { insert in
                try insert.bind(seq, at: 1)
                try insert.bind(writtenUnixMicros, at: 2)
                try insert.bind(blob: state, at: 3)
                try insert.bind(Int64(parts), at: 4)
                while try insert.step() {}
            }
            try pruneCheckpoints.use { prune in
                try prune.bind(Self.checkpointsKept, at: 1)
                while try prune.step() {}
            }
            try pruneParts()
            try insertGeneration.use { insert in
                try insert.bind(seq, at: 1)
                try insert.bind(Int64(keys), at: 2)
                try insert.bind(Int64(runs), at: 3)
                while try insert.step() {}
            }
        }
    }

    /// Makes the filter whose `parts` parts were written the stored one, and
    /// deletes older filters and stray parts, in one transaction.
    func recordKeyFilter(seq: Int64, parts: Int) throws {
        try connection.transaction {
            try recordFilter.use { insert in
                try insert.bind(seq, at: 1)
                try insert.bind(Int64(parts), at: 2)
                while try insert.step() {}
            }
            try pruneFilters.use { prune in
                try prune.bind(seq, at: 1)
                while try prune.step() {}
            }
            try pruneFilterParts.use { prune in
                while try prune.step() {}
            }
        }
    }

    /// Deletes the checkpoint or key filter stored at `seq` (row and parts),
    /// in one transaction, before one is written again at that seq (a close
    /// right after a checkpoint, an idle restart): parts are replaced one
    /// transaction at a time, so without this a rewrite of another size
    /// would leave old parts past the new count, and a crash mid-rewrite a
    /// row over a mix of old and new parts. A crash after it leaves the
    /// one before (a checkpoint) or none (a filter: start-up then reads
    /// every key hash from the index).
    func forget(_ kind: StoredInParts, seq: Int64) throws {
        try connection.transaction {
            for table in [kind.rowTable, kind.partTable] {
                try connection.prepare("DELETE FROM \(table) WHERE seq = ?1").use { delete in
                    try delete.bind(seq, at: 1)
                    while try delete.step() {}
                }
            }
        }
    }

    enum StoredInParts {
        case checkpoint, keyFilter

        var rowTable: String { self == .checkpoint ? "checkpoints" : "key_filters" }
        var partTable: String { self == .checkpoint ? "checkpoint_parts" : "key_filter_parts" }
    }

    /// After a failed key filter write: the parts it wrote (no row names them).
    func dropUnrecordedFilterParts() throws {
        try connection.transaction {
            try pruneFilterParts.use { prune in
                while try prune.step() {}
            }
        }
    }

    /// After a failed checkpoint write: the index rows and parts it wrote,
    /// unless its generation was recorded before (a rewrite at the same seq).
    func dropUnrecorded(generation: Int64) throws {
        try connection.transaction {
            for table in ["debit_keys", "run_debits"] {
                try connection.prepare("""
                    DELETE FROM \(table) WHERE generation = ?1
                      AND NOT EXISTS (SELECT 1 FROM index_generations WHERE generation = ?1)
                    """).use { delete in
                    try delete.bind(generation, at: 1)
                    while try delete.step() {}
                }
            }
            try pruneParts()
        }
    }

    private func pruneParts() throws {
        try prunePartsStatement.use { prune in
            while try prune.step() {}
        }
    }

    /// Index rows of a generation, checkpoint parts and key filter parts
    /// that were never recorded (a crash between their transactions and
    /// `writeCheckpoint` or `recordKeyFilter`).
    func dropOrphanIndexRows() throws {
        try connection.transaction {
            try pruneParts()
            try pruneFilterParts.use { prune in
                while try prune.step() {}
            }
            try connection.execute(script: """
                DELETE FROM debit_keys WHERE generation > (SELECT coalesce(max(generation), 0) FROM index_generations);
                DELETE FROM run_debits WHERE generation > (SELECT coalesce(max(generation), 0) FROM index_generations);
                """)
        }
    }
}
