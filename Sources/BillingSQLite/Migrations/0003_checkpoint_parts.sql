-- 0003: a checkpoint's bytes may be stored in parts.
-- Applied by MigrationRunner inside one transaction.
--
-- A checkpoint grows with the state (every run counted in the period): tens
-- of MB at 10 million debits. Written as one row it held SQLite's only write
-- lock for as long as the row took to write, and every commit waited. Now
-- the bytes go to `checkpoint_parts` in transactions of their own, and the
-- `checkpoints` row (with `parts` > 0 and an empty `state`) is written last,
-- with the index generation: the checkpoint exists from that transaction on.
-- Parts without their row (a crash in between) are deleted when the server
-- (the process holding the database lock) opens the database.
-- Rows written before 0003 keep their bytes in `state` (parts = 0).
ALTER TABLE checkpoints ADD COLUMN parts INTEGER NOT NULL DEFAULT 0;

CREATE TABLE checkpoint_parts (
    seq   INTEGER NOT NULL,
    part  INTEGER NOT NULL,  -- 0, 1, 2... in order
    bytes BLOB NOT NULL,
    UNIQUE (seq, part)
);
