-- The key store in the TTP's SQLite database (crates/ttp/src/keys/sqlite.rs).
-- IF NOT EXISTS: a database from before migrations is taken over as it is.
-- A version's scalar and a domain's binding key are sealed (AES-256-GCM
-- under the master key); a retired version keeps its row, without them.
CREATE TABLE IF NOT EXISTS key_versions (
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    nonce BLOB,
    ciphertext BLOB,
    PRIMARY KEY (organization, scope, version)
);
CREATE TABLE IF NOT EXISTS binding_keys (
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (organization, scope)
);
CREATE TABLE IF NOT EXISTS key_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
