-- The PostgreSQL ledger (crates/ttp/src/ledger/postgres.rs), shared by
-- every TTP replica. A single-use id is 16 bytes of SHA-256; a budget row
-- counts one dimension's key in the window that starts at `start`, and
-- `ceiling` is the limit of the charge that booked it last: a charge that
-- would pass it fails the check, and with it every row of its statement.
CREATE TABLE single_use (
    id BYTEA PRIMARY KEY CHECK (length(id) = 16),
    expires_at BIGINT NOT NULL
);
CREATE INDEX single_use_expiry ON single_use (expires_at);
CREATE TABLE budgets (
    dimension TEXT NOT NULL,
    key TEXT NOT NULL,
    span TEXT NOT NULL CHECK (span IN ('minute', 'day')),
    start BIGINT NOT NULL,
    used BIGINT NOT NULL CHECK (used >= 0),
    ceiling BIGINT NOT NULL,
    CHECK (used <= ceiling),
    PRIMARY KEY (dimension, key, span)
);
