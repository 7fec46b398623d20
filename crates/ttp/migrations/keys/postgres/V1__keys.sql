-- The key store in PostgreSQL (crates/ttp/src/keys/postgres.rs), shared by
-- every TTP replica. A version's scalar and a domain's binding key are
-- sealed (AES-256-GCM under the master key, which is not in the database);
-- a retired version keeps its row, without them. Every change bumps the
-- one row of key_epoch in its transaction: replicas read it before each
-- use of their cached keys.
CREATE TABLE key_versions (
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version BETWEEN 1 AND 4294967295),
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    nonce BYTEA,
    ciphertext BYTEA,
    CHECK ((status = 'active') = (nonce IS NOT NULL AND ciphertext IS NOT NULL)),
    PRIMARY KEY (organization, scope, version)
);
CREATE TABLE binding_keys (
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    PRIMARY KEY (organization, scope)
);
CREATE TABLE key_epoch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
