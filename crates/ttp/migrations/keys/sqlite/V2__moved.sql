-- Set by `pseudoform-ttp move-keys` when it has moved this database's keys
-- to PostgreSQL: a server still on this database then makes no new key
-- (it would be a new first version, and every pseudonym would change).
CREATE TABLE IF NOT EXISTS keys_moved (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    moved_at INTEGER NOT NULL
);
