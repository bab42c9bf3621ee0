extension SQLiteConnection {
    /// How the store wants each connection; nothing is left to SQLite defaults.
    func configure(synchronous: SynchronousMode, readOnly: Bool, fileReadOnly: Bool = false) throws {
        // Another process (`billing verify`, a second server by mistake) may hold the
        // write lock briefly; wait up to 5 s for it rather than failing at once.
        try execute(script: "PRAGMA busy_timeout = 5000")
        if fileReadOnly {
            // A reading command's connection: the file's journal mode (WAL,
            // set by the server) and sizes as they are; reads mapped.
            try execute(script: "PRAGMA query_only = ON")
            try execute(script: "PRAGMA mmap_size = 1073741824")
            try execute(script: "PRAGMA cache_size = -16384")
            return
        }
        // WAL: readers run concurrently with the single writer, and a commit is one
        // sequential append + fsync of the -wal file. Persistent in the file, but
        // asked for on every open so a database created elsewhere is converted.
        try setJournalModeWAL()
        switch synchronous {
        case .full: try execute(script: "PRAGMA synchronous = FULL")
        case .normal: try execute(script: "PRAGMA synchronous = NORMAL")
        }
        // Off by default in SQLite; on so any future REFERENCES is enforced.
        try execute(script: "PRAGMA foreign_keys = ON")
        // Copy the WAL back into the database once it reaches 10,000 pages (~40 MiB),
        // on the committing thread. Bounds the WAL (and readers' cost of searching
        // it); 10x SQLite's default because each batch dirties index pages all over
        // the b-trees and a rarer checkpoint writes each such page once for many
        // commits (measured: +25% entries/s for 1024-entry batches).
        try execute(script: "PRAGMA wal_autocheckpoint = 10000")
        // After a checkpoint, truncate a WAL that a large batch grew beyond 64 MiB.
        try execute(script: "PRAGMA journal_size_limit = 67108864")
        // Deleted content is not overwritten with zeros: Debian's SQLite is
        // built with SECURE_DELETE on, and pruning an old checkpoint (~20 MB
        // at 10 million debits) or key filter (16 MiB and up) then wrote all
        // of it again, through the WAL, inside a transaction every commit
        // waits for (measured: 11.9 MB of WAL and 64 ms for one checkpoint's
        // parts, 41 KB and 5.6 ms without). Nothing deleted is secret: ledger
        // state and key hashes, and the journal is never deleted.
        try execute(script: "PRAGMA secure_delete = OFF")
        if readOnly {
            // Readers never write; make a write through one an error, not a surprise.
            try execute(script: "PRAGMA query_only = ON")
            // Index probes (old keys, runs) land on random pages: read the
            // database file through a mapping (no read syscall and copy per
            // page) and keep more pages per connection (16 MiB).
            try execute(script: "PRAGMA mmap_size = 1073741824")
            try execute(script: "PRAGMA cache_size = -16384")
        }
    }

    private func setJournalModeWAL() throws {
        let mode = try prepare("PRAGMA journal_mode = WAL").use { statement in
            try statement.step() ? statement.string(at: 0) : nil
        }
        // SQLite answers with the mode in force; ":memory:" and some VFSes refuse WAL.
        guard mode?.lowercased() == "wal" else {
            throw SQLiteStoreError.walUnavailable(path: path, journalMode: mode ?? "none")
        }
    }
}
