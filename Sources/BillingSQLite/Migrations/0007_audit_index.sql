-- 0007: the audit log's entries indexed apart from the debits.
-- Applied by MigrationRunner inside one transaction.
--
-- ListAuditLog and `billing audit` read the journal newest first, skipping
-- debit rows: with an account that has no entries of its own, or a
-- `since` after the last one, a page walked the whole journal (~0.5 s warm,
-- ~2 s and every page of a 10 M-debit database cold, on a reader holding
-- its snapshot). These partial indexes hold only the audited kinds
-- (JournalRow.auditKinds; the WHERE clause must stay the readers' own,
-- word for word, for SQLite to use them), so debit rows — the commits on
-- the hot path — write nothing more.
CREATE INDEX journal_audit ON journal (seq)
    WHERE kind IN (10, 11, 14, 15, 16, 17, 18, 19, 20, 21);

CREATE INDEX journal_audit_account ON journal (account_id, seq)
    WHERE kind IN (10, 11, 14, 15, 16, 17, 18, 19, 20, 21);
