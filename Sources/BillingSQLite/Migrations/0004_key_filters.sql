-- 0004: the key filter stored apart from checkpoints, every few of them.
-- Applied by MigrationRunner inside one transaction.
--
-- The ledger's key filter (16 MiB by default) went into every checkpoint:
-- written every 100,000 entries, it was most of each checkpoint's bytes. Now
-- a copy is stored here with every tenth checkpoint, in 1 MiB parts (each its
-- own transaction), and the `key_filters` row that makes it complete is
-- written last, deleting the older filter and its parts. Start-up loads the
-- newest filter and adds the key hashes of the index generations after its
-- seq. Checkpoints written before 0004 still carry their filter; it is used
-- when present. Parts without their row (a crash in between) are deleted by
-- the next filter written, or when the server opens the database.
CREATE TABLE key_filters (
    seq   INTEGER PRIMARY KEY,  -- every debit key with seq <= this is in it
    parts INTEGER NOT NULL
);

CREATE TABLE key_filter_parts (
    seq   INTEGER NOT NULL,
    part  INTEGER NOT NULL,  -- 0, 1, 2... in order
    bytes BLOB NOT NULL,
    UNIQUE (seq, part)
);
