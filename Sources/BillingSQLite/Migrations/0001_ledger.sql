-- 0001: the ledger's journal and checkpoints.
-- Applied by MigrationRunner inside one transaction; its version is recorded in
-- schema_migrations by the runner, not here.

-- Every accepted mutation, in commit order. `body` is a billing.journal.v1.Entry;
-- the other columns are copies of its fields, kept only for the indexes below.
-- `kind` is the number of the Entry.event oneof field in journal.proto:
-- 10 account_created, 11 credits_granted, 12 debit_accepted, 13 debit_refused.
CREATE TABLE journal (
    seq             INTEGER PRIMARY KEY,  -- the rowid: 1, 2, 3... without gaps
    at_unix_micros  INTEGER NOT NULL,
    kind            INTEGER NOT NULL,
    account_id      TEXT NOT NULL,
    idempotency_key TEXT,                 -- debits and grants; NULL otherwise
    run_id          TEXT,                 -- accepted debits; NULL otherwise
    body            BLOB NOT NULL
);

-- GetDebit and idempotent retries: one outcome per (account, key), accepted or refused.
CREATE UNIQUE INDEX journal_debit_key
    ON journal (account_id, idempotency_key)
    WHERE kind IN (12, 13);

-- GetExecutionCost: the accepted debits of a run (seq order comes with the rowid).
CREATE INDEX journal_run
    ON journal (account_id, run_id)
    WHERE kind = 12;

-- Snapshots of the in-memory ledger as of `seq`; `state` is a
-- billing.journal.v1.Checkpoint. Start-up loads the newest and replays after it.
CREATE TABLE checkpoints (
    seq                 INTEGER PRIMARY KEY,
    written_unix_micros INTEGER NOT NULL,
    state               BLOB NOT NULL
);

CREATE TABLE schema_migrations (
    version      INTEGER PRIMARY KEY,
    applied_unix INTEGER
);
