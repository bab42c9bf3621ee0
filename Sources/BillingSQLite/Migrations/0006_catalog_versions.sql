-- Each price catalog version this ledger has priced debits with, and the
-- SHA-256 of its prices (PriceCatalog.contentDigest): a version served
-- again with other prices is refused at start-up, so every debit's recorded
-- version names one set of prices.
CREATE TABLE catalog_versions (
    version         TEXT PRIMARY KEY,
    sha256          BLOB NOT NULL,
    first_used_unix INTEGER NOT NULL
);
