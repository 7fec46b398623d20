-- The SQLite ledger (crates/ttp/src/ledger/sqlite.rs). IF NOT EXISTS: a
-- ledger made before migrations has these tables already.
CREATE TABLE IF NOT EXISTS single_use (
    id BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS single_use_expiry ON single_use (expires_at);
CREATE TABLE IF NOT EXISTS budgets (
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    span TEXT NOT NULL,
    start INTEGER NOT NULL,
    used INTEGER NOT NULL,
    PRIMARY KEY (dimension, key, span)
) WITHOUT ROWID;
