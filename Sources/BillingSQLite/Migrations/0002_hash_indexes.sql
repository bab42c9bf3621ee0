-- 0002: the journal's key and run indexes move out of the journal.
-- Applied by MigrationRunner inside one transaction.
--
-- 0001 indexed every debit row on (account_id, idempotency_key) and
-- (account_id, run_id): two random b-tree inserts per debit, each dirtying a
-- page anywhere in the index, which capped durable debits at ~14k/s. Now a
-- journal row is a plain append, and the indexes are written with each
-- checkpoint, for the debits up to it, as one "generation" of rows sorted by
-- hash (JournalIndexRows): appended at the b-tree's end. Debits after the
-- newest checkpoint are found in the ledger's memory (rebuilt by replay).
-- New journal rows leave idempotency_key and run_id NULL (the body has them).
DROP INDEX journal_debit_key;
DROP INDEX journal_run;

-- One row per checkpoint that wrote index rows; `generation` is its seq.
-- The indexes cover every debit with seq <= max(generation).
CREATE TABLE index_generations (
    generation INTEGER PRIMARY KEY,
    keys       INTEGER NOT NULL,
    runs       INTEGER NOT NULL
);

-- (account, idempotency key) hash -> the debit entry's seq (accepted or refused).
CREATE TABLE debit_keys (
    generation INTEGER NOT NULL,
    key_hash   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (generation, key_hash, seq)
) WITHOUT ROWID;

-- (account, run) hash -> an accepted debit's seq.
CREATE TABLE run_debits (
    generation INTEGER NOT NULL,
    run_hash   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (generation, run_hash, seq)
) WITHOUT ROWID;

-- Debits already journaled by 0001 and covered by the newest checkpoint
-- become its generation; later ones are replayed into memory at start-up.
-- billing_debit_key_hash / billing_run_hash are JournalKeyHash, registered
-- on the migrating connection.
INSERT INTO index_generations (generation, keys, runs)
    SELECT max(seq), 0, 0 FROM checkpoints HAVING count(*) > 0;
INSERT INTO debit_keys (generation, key_hash, seq)
    SELECT (SELECT max(generation) FROM index_generations),
           billing_debit_key_hash(account_id, idempotency_key), seq
    FROM journal
    WHERE kind IN (12, 13) AND seq <= (SELECT max(generation) FROM index_generations);
INSERT INTO run_debits (generation, run_hash, seq)
    SELECT (SELECT max(generation) FROM index_generations),
           billing_run_hash(account_id, run_id), seq
    FROM journal
    WHERE kind = 12 AND seq <= (SELECT max(generation) FROM index_generations);
UPDATE index_generations SET
    keys = (SELECT count(*) FROM debit_keys WHERE debit_keys.generation = index_generations.generation),
    runs = (SELECT count(*) FROM run_debits WHERE run_debits.generation = index_generations.generation);
