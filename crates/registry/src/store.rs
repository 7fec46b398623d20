//! The registry's SQLite store.
//!
//! ```sql
//! records(id, received_at, data_json, ttp_jti, provider)
//! pseudonyms(record_id, type, key_version, label, is_current)  -- index on label
//! used_jwe(jti, expires_at)
//! submitted(jti, record_id, digest, receipt)
//! reversible(record_id, kid, enc, ct, claims)      -- the opaque type R
//! withdrawn(record_id, at, provider, request_id)
//! validation_requests(id, provider, created_at, question)
//! validation_items(request_id, record_id, answer, correction, answered_at)
//! validation_audit(id, at, event, provider, person, request_id, record_id, answer)
//! batch_items(provider, batch_id, idx, record_id, receipt, data_digest)
//! ```
//!
//! `batch_items` makes a processor's batch delivery (`POST /api/batches`)
//! idempotent: for each stored item of a batch, by (the provider of the
//! record's signed claims, `batchId`, index), its record, the receipt it
//! was answered and a SHA-256 of its clinical data. A batch sent again
//! under the same id — even re-pseudonymised, with new JWEs — finds its
//! items there ([`Store::batch_item`]) and stores nothing twice.
//!
//! `reversible` holds a record's reversible pseudonym as it came (the HPKE
//! ciphertext to the supplying provider, which the registry cannot open)
//! with the TTP-signed claims of its record (the compact JWS inside the
//! record JWE, whose `reversible` is the envelope's digest: what the
//! provider's page checks before it opens the envelope); `withdrawn` the records the supplying
//! provider withdrew (a patient's objection, a validation answer); the
//! validation tables are those of [`crate::validation`].
//!
//! Only definitive pseudonyms (as labels `TYPE:vN:<base64url>`) and the
//! clinical fields are stored; never a blind factor, a JWE or anything
//! identifying. `used_jwe` holds the `jti` (or a SHA-256 of the JWE) of every
//! JWE used, until it has expired, so that a JWE cannot be used twice.
//! `submitted` keeps, for as long as the record, the `jti` of each JWE a
//! stored record came from, with a SHA-256 of the whole submission and the
//! receipt it was answered: a retry of the same submission — at any time,
//! even after its JWEs expired — gets the same receipt and stores nothing
//! ([`Store::submitted`]).
//! `is_current` marks the label under the key version that was current when
//! the label was made (the `subject` of a JWE, or the target of a rekey);
//! labels under older versions (from `extra_versions`, or the source of a
//! rekey) have it 0.
//!
//! `ttp_jti` is the `jti` of the TTP's JWE a record came from (of the
//! national packaging, each JWE's, comma-separated), so that the record can
//! be traced to the TTP's audit row; `provider` the provider the TTP named
//! in its claims. The database and its `-wal`/`-shm` files are owner-only
//! (0600).
//!
//! Every write is one transaction: a record is stored whole or not at all.
//! The write-ahead log is bounded ([`WAL_SIZE_LIMIT`]) and checkpointed
//! (truncated) when the store opens, so that a restart after a full disk
//! gives the space back.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use pseudoform_protocol::registry::Data;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// A store error (an SQLite failure). Carries no data.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored row could not be read back.
    #[error("a stored row is corrupt")]
    Corrupt,
    /// A JWE of the submission was already used.
    #[error("a JWE was already used")]
    Replayed,
    /// The database file could not be made owner-only.
    #[error("cannot restrict the database file: {0}")]
    Permissions(#[from] std::io::Error),
    /// The database has a table of an unreleased earlier schema that cannot
    /// be carried over.
    #[error("{0}")]
    OldSchema(&'static str),
}

/// One definitive pseudonym of a record, to be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPseudonym {
    /// Pseudonym type code.
    pub pseudonym_type: String,
    /// The key version it was made under.
    pub key_version: u32,
    /// The label `TYPE:vN:<base64url of N>`.
    pub label: String,
    /// Whether `key_version` was the current one.
    pub is_current: bool,
}

/// A used JWE, to be recorded for replay protection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsedJwe {
    /// The JWE's `jti`, or `sha256:` + hex of the JWE when it has none.
    pub jti: String,
    /// Its `exp`, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Where a record came from, as the TTP's claims say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The `jti` of the TTP's JWE (several comma-separated), if it has one.
    pub ttp_jti: Option<String>,
    /// The provider named in the claims, if any.
    pub provider: Option<String>,
}

/// What the store knows of a submission by its JWEs' ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// None of its JWEs was used for a stored record.
    New,
    /// Exactly this submission (same JWEs, same digest) was stored: the
    /// receipt it was answered, as JSON.
    Stored(String),
    /// Some JWE of it belongs to another submission or record.
    Conflict,
}

/// A submission's place in a processor's batch: the key of its row in
/// `batch_items`, and the SHA-256 (hex) of its clinical data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchItem {
    /// The provider of the record's signed claims (empty: none named).
    pub provider: String,
    /// The client's `batchId`.
    pub batch_id: String,
    /// The index in the batch.
    pub index: i64,
    /// The hex SHA-256 of the record's `data` as JSON.
    pub data_digest: String,
}

/// A stored batch item ([`Store::batch_item`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatchItem {
    /// The receipt it was answered, as JSON.
    pub receipt: String,
    /// The hex SHA-256 of its `data`.
    pub data_digest: String,
}

/// A record's reversible pseudonym, to be stored opaque.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewReversible {
    /// The provider key's id.
    pub kid: String,
    /// The HPKE encapsulated key, base64url.
    pub enc: String,
    /// The HPKE ciphertext, base64url.
    pub ct: String,
    /// The record's claims as the TTP signed them: the compact JWS inside
    /// the record JWE, whose `reversible` is the envelope's digest.
    pub claims: String,
}

/// Bytes a readiness probe writes ([`Store::probe`]).
pub const PROBE_BYTES: i64 = 64 * 1024;

/// Most bytes the write-ahead log keeps after a checkpoint (16 MiB).
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// A stored record as read back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRecord {
    /// The record id.
    pub id: i64,
    /// When it was received, seconds since the Unix epoch.
    pub received_at: i64,
    /// Its labels, ordered by type and key version.
    pub pseudonyms: Vec<StoredPseudonym>,
    /// The clinical fields: strings, and lists of strings.
    pub data: Data,
    /// The `jti` of the TTP's JWE (several comma-separated), if known.
    pub ttp_jti: Option<String>,
    /// The provider named in the TTP's claims, if any.
    pub provider: Option<String>,
    /// Its reversible pseudonym, if it has one.
    pub reversible: Option<NewReversible>,
    /// Whether the supplying provider withdrew it.
    pub withdrawn: bool,
    /// The latest validation state: `open` (asked, not answered) or the
    /// answer (`confirm`, `correct`, `withdraw`); `None` if never asked.
    pub validation: Option<String>,
}

/// A stored label of a record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPseudonym {
    /// Pseudonym type code.
    #[serde(rename = "type")]
    pub pseudonym_type: String,
    /// Key version.
    pub key_version: u32,
    /// The label `TYPE:vN:<base64url>`.
    pub label: String,
    /// Whether this is the label under the current key version.
    pub is_current: bool,
}

/// A pseudonym of one key version, as the rekey reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedPseudonym {
    /// The record it belongs to.
    pub record_id: i64,
    /// Pseudonym type code.
    pub pseudonym_type: String,
    /// The label.
    pub label: String,
}

/// A record's reversible pseudonym, whether it is withdrawn, and its latest
/// validation state (of the newest request that holds it).
pub(crate) fn record_state(
    conn: &Connection,
    record_id: i64,
) -> Result<(Option<NewReversible>, bool, Option<String>), StoreError> {
    let reversible = conn
        .prepare_cached("SELECT kid, enc, ct, claims FROM reversible WHERE record_id = ?1")?
        .query_row(params![record_id], |row| {
            Ok(NewReversible {
                kid: row.get(0)?,
                enc: row.get(1)?,
                ct: row.get(2)?,
                claims: row.get(3)?,
            })
        })
        .optional()?;
    let withdrawn = conn
        .prepare_cached("SELECT 1 FROM withdrawn WHERE record_id = ?1")?
        .query_row(params![record_id], |_| Ok(()))
        .optional()?
        .is_some();
    let validation: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT i.answer FROM validation_items i
             JOIN validation_requests q ON q.id = i.request_id
             WHERE i.record_id = ?1 ORDER BY q.created_at DESC, q.rowid DESC LIMIT 1",
        )?
        .query_row(params![record_id], |row| row.get(0))
        .optional()?;
    let validation = validation.map(|answer| answer.unwrap_or_else(|| "open".to_owned()));
    Ok((reversible, withdrawn, validation))
}

/// The SQLite store; safe to share between threads.
pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    data_json TEXT NOT NULL,
    ttp_jti TEXT,
    provider TEXT
);
CREATE TABLE IF NOT EXISTS pseudonyms (
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    label TEXT NOT NULL,
    is_current INTEGER NOT NULL,
    PRIMARY KEY (record_id, type, key_version)
);
CREATE INDEX IF NOT EXISTS pseudonyms_label ON pseudonyms(label);
CREATE INDEX IF NOT EXISTS pseudonyms_version ON pseudonyms(key_version);
CREATE TABLE IF NOT EXISTS used_jwe (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS used_jwe_expires ON used_jwe(expires_at);
CREATE TABLE IF NOT EXISTS ready_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL,
    pad BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reversible (
    record_id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    kid TEXT NOT NULL,
    enc TEXT NOT NULL,
    ct TEXT NOT NULL,
    claims TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS withdrawn (
    record_id INTEGER PRIMARY KEY REFERENCES records(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    provider TEXT NOT NULL,
    request_id TEXT
);
CREATE TABLE IF NOT EXISTS validation_requests (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    question TEXT
);
CREATE INDEX IF NOT EXISTS validation_requests_provider ON validation_requests(provider);
CREATE TABLE IF NOT EXISTS validation_items (
    request_id TEXT NOT NULL REFERENCES validation_requests(id) ON DELETE CASCADE,
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    answer TEXT,
    correction TEXT,
    answered_at INTEGER,
    PRIMARY KEY (request_id, record_id)
);
CREATE INDEX IF NOT EXISTS validation_items_record ON validation_items(record_id);
CREATE TABLE IF NOT EXISTS validation_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    provider TEXT,
    person TEXT,
    request_id TEXT,
    record_id INTEGER,
    answer TEXT
);
CREATE TABLE IF NOT EXISTS batch_items (
    provider TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    receipt TEXT NOT NULL,
    data_digest TEXT NOT NULL,
    PRIMARY KEY (provider, batch_id, idx)
);
CREATE INDEX IF NOT EXISTS batch_items_record ON batch_items(record_id);
CREATE TABLE IF NOT EXISTS submitted (
    jti TEXT PRIMARY KEY,
    record_id INTEGER NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    receipt TEXT NOT NULL
);
";

impl Store {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let restricted = pseudoform_protocol::secret_file::restrict_database(path)?;
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "the write-ahead log could not be checkpointed");
        }
        let store = Self::init(conn)?;
        // The -wal and -shm files exist now.
        let restricted = restricted
            .into_iter()
            .chain(pseudoform_protocol::secret_file::restrict_database(path)?);
        for file in restricted {
            tracing::warn!(file = %file.display(), "a database file was readable by others; it is owner-only now");
        }
        Ok(store)
    }

    /// A store in memory, for tests and experiments.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        // A `reversible` table of before the TTP-signed binding (with `rec`,
        // without `claims`): its envelopes have no signed claims, so no
        // provider's page would open them. Refused rather than carried over.
        let old_reversible: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('reversible') WHERE name = 'rec'",
            [],
            |row| row.get(0),
        )?;
        if old_reversible {
            return Err(StoreError::OldSchema(
                "the database's table `reversible` is of an earlier development version (column `rec`, \
                 no signed `claims`); start with a new database",
            ));
        }
        // Databases made before records had a trace get its columns.
        for column in ["ttp_jti", "provider"] {
            let has: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info('records') WHERE name = ?1",
                params![column],
                |row| row.get(0),
            )?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE records ADD COLUMN {column} TEXT"))?;
            }
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// The connection. A panic while it was held (the servers unwind) left
    /// no transaction open — a dropped transaction rolls back — so the lock
    /// is taken over rather than failing every later request.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        Ok(self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Whether the submission whose JWEs have the ids `jtis` and whose
    /// SHA-256 is `digest` (hex) was stored before.
    pub fn submitted(&self, jtis: &[&str], digest: &str) -> Result<Submitted, StoreError> {
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare_cached("SELECT record_id, digest, receipt FROM submitted WHERE jti = ?1")?;
        let mut first: Option<(i64, String)> = None;
        let mut known = 0;
        for jti in jtis {
            let row: Option<(i64, String, String)> = stmt
                .query_row(params![jti], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()?;
            let Some((record_id, stored_digest, receipt)) = row else {
                continue;
            };
            known += 1;
            if stored_digest != digest {
                return Ok(Submitted::Conflict);
            }
            match &first {
                Some((id, _)) if *id != record_id => return Ok(Submitted::Conflict),
                Some(_) => {}
                None => first = Some((record_id, receipt)),
            }
        }
        Ok(match first {
            None => Submitted::New,
            Some((_, receipt)) if known == jtis.len() => Submitted::Stored(receipt),
            Some(_) => Submitted::Conflict,
        })
    }

    /// Stores `records`, each with its labels (and its reversible
    /// pseudonym, if any), and records their JWEs as used, all in one
    /// transaction: all of them, or (on any error) none. Their ids, in
    /// order. A JWE already used (and not yet purged) makes the whole write
    /// fail with [`StoreError::Replayed`]. Used JWEs that expired before
    /// `purge_before` are forgotten. A record's JWE ids are kept with it,
    /// with the submission's `digest` and the receipt `receipt(record_id)`
    /// (JSON) answered for it ([`Store::submitted`]); with `batch`, its
    /// batch item too (one stored before under the same key:
    /// [`StoreError::Replayed`]).
    pub fn insert_records(
        &self,
        records: Vec<NewRecord<'_>>,
        purge_before: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM used_jwe WHERE expires_at < ?1",
            params![purge_before],
        )?;
        let mut ids = Vec::with_capacity(records.len());
        for record in records {
            // An error drops the transaction, which rolls it back.
            ids.push(write_record(&tx, record)?);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The stored item `index` of the batch `batch_id` of `provider`, if
    /// any.
    pub fn batch_item(
        &self,
        provider: &str,
        batch_id: &str,
        index: i64,
    ) -> Result<Option<StoredBatchItem>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT receipt, data_digest FROM batch_items
             WHERE provider = ?1 AND batch_id = ?2 AND idx = ?3",
        )?;
        Ok(stmt
            .query_row(params![provider, batch_id, index], |row| {
                Ok(StoredBatchItem {
                    receipt: row.get(0)?,
                    data_digest: row.get(1)?,
                })
            })
            .optional()?)
    }

    /// Commits a write of [`PROBE_BYTES`] (readiness), larger than any
    /// record's: fails while the database cannot take one, as on a full disk.
    pub fn probe(&self, now: i64) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT OR REPLACE INTO ready_probe (id, at, pad) VALUES (1, ?1, zeroblob(?2))",
            params![now, PROBE_BYTES],
        )?;
        Ok(())
    }

    /// Number of stored records.
    pub fn record_count(&self) -> Result<i64, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("SELECT COUNT(*) FROM records", [], |row| row.get(0))?)
    }

    /// Number of stored labels.
    pub fn pseudonym_count(&self) -> Result<i64, StoreError> {
        let conn = self.lock()?;
        Ok(conn.query_row("SELECT COUNT(*) FROM pseudonyms", [], |row| row.get(0))?)
    }

    /// The ids of the records that hold `label`.
    pub fn records_with_label(&self, label: &str) -> Result<Vec<i64>, StoreError> {
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare("SELECT record_id FROM pseudonyms WHERE label = ?1 ORDER BY record_id")?;
        let rows = stmt.query_map(params![label], |row| row.get(0))?;
        Ok(rows.collect::<Result<Vec<i64>, _>>()?)
    }

    /// The newest `limit` records, newest first, with their labels,
    /// withdrawn ones too.
    pub fn records(&self, limit: u32) -> Result<Vec<StoredRecord>, StoreError> {
        self.records_where(limit, true)
    }

    /// The newest `limit` records, newest first, with their labels; the
    /// withdrawn ones only with `include_withdrawn`.
    pub fn records_where(
        &self,
        limit: u32,
        include_withdrawn: bool,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT id, received_at, data_json, ttp_jti, provider FROM records r
             WHERE ?2 OR NOT EXISTS (SELECT 1 FROM withdrawn w WHERE w.record_id = r.id)
             ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![limit, include_withdrawn], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                Trace {
                    ttp_jti: row.get(3)?,
                    provider: row.get(4)?,
                },
            ))
        })?;
        let mut labels = conn.prepare(
            "SELECT type, key_version, label, is_current FROM pseudonyms
             WHERE record_id = ?1 ORDER BY type, key_version",
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, received_at, data_json, trace) = row?;
            let data: Data = serde_json::from_str(&data_json).map_err(|_| StoreError::Corrupt)?;
            let pseudonyms = labels
                .query_map(params![id], |row| {
                    Ok(StoredPseudonym {
                        pseudonym_type: row.get(0)?,
                        key_version: row.get(1)?,
                        label: row.get(2)?,
                        is_current: row.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let (reversible, withdrawn, validation) = record_state(&conn, id)?;
            out.push(StoredRecord {
                id,
                received_at,
                pseudonyms,
                data,
                ttp_jti: trace.ttp_jti,
                provider: trace.provider,
                reversible,
                withdrawn,
                validation,
            });
        }
        Ok(out)
    }

    /// Every label of key version `version` whose record has no label of
    /// the same type under `unless_version` yet (what a rekey still has to
    /// move), ordered by record and type. Withdrawn records are left out:
    /// the registry stops processing them, so their labels stay under the
    /// old version, and a withdrawn record does not link to submissions
    /// made under the new one.
    pub fn pseudonyms_to_rekey(
        &self,
        version: u32,
        unless_version: u32,
    ) -> Result<Vec<VersionedPseudonym>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT p.record_id, p.type, p.label FROM pseudonyms p
             WHERE p.key_version = ?1 AND NOT EXISTS (
                 SELECT 1 FROM pseudonyms q
                 WHERE q.record_id = p.record_id AND q.type = p.type AND q.key_version = ?2)
             AND NOT EXISTS (SELECT 1 FROM withdrawn w WHERE w.record_id = p.record_id)
             ORDER BY p.record_id, p.type",
        )?;
        let rows = stmt.query_map(params![version, unless_version], |row| {
            Ok(VersionedPseudonym {
                record_id: row.get(0)?,
                pseudonym_type: row.get(1)?,
                label: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Stores labels made by a rekey from `from` to `to`, in one
    /// transaction: each new label is current and the `from` label of the
    /// same record and type is not current any more. A label that already
    /// exists for its record, type and version is left as it is. Returns
    /// how many labels were added.
    pub fn insert_rekeyed(
        &self,
        from: u32,
        to: u32,
        labels: &[(i64, String, String)],
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        for (record_id, pseudonym_type, label) in labels {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM pseudonyms WHERE record_id = ?1 AND type = ?2 AND key_version = ?3",
                    params![record_id, pseudonym_type, to],
                    |row| row.get(0),
                )
                .optional()?;
            if exists.is_some() {
                continue;
            }
            tx.execute(
                "INSERT INTO pseudonyms (record_id, type, key_version, label, is_current)
                 VALUES (?1, ?2, ?3, ?4, 1)",
                params![record_id, pseudonym_type, to, label],
            )?;
            tx.execute(
                "UPDATE pseudonyms SET is_current = 0
                 WHERE record_id = ?1 AND type = ?2 AND key_version = ?3",
                params![record_id, pseudonym_type, from],
            )?;
            added += 1;
        }
        tx.commit()?;
        Ok(added)
    }
}

/// One record to store ([`Store::insert_records`]).
pub struct NewRecord<'a> {
    /// When it was received.
    pub received_at: i64,
    /// Its clinical fields.
    pub data: &'a Data,
    /// Its labels.
    pub pseudonyms: &'a [NewPseudonym],
    /// Its reversible pseudonym, if any.
    pub reversible: Option<&'a NewReversible>,
    /// The JWEs it came from.
    pub used: &'a [UsedJwe],
    /// Where it came from.
    pub trace: &'a Trace,
    /// The hex SHA-256 of the whole submission.
    pub digest: &'a str,
    /// The receipt (JSON) of the record id.
    pub receipt: Box<dyn FnOnce(i64) -> String + 'a>,
    /// Its batch item, if it came in a batch.
    pub batch: Option<&'a BatchItem>,
}

impl std::fmt::Debug for NewRecord<'_> {
    /// Never the data or the labels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRecord").finish_non_exhaustive()
    }
}

/// Writes one record in the open transaction `tx`.
fn write_record(tx: &rusqlite::Transaction<'_>, record: NewRecord<'_>) -> Result<i64, StoreError> {
    let NewRecord {
        received_at,
        data,
        pseudonyms,
        reversible,
        used,
        trace,
        digest,
        receipt,
        batch,
    } = record;
    let data_json = serde_json::to_string(data).map_err(|_| StoreError::Corrupt)?;
    for jwe in used {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO used_jwe (jti, expires_at) VALUES (?1, ?2)",
            params![jwe.jti, jwe.expires_at],
        )?;
        if inserted == 0 {
            return Err(StoreError::Replayed);
        }
    }
    tx.execute(
        "INSERT INTO records (received_at, data_json, ttp_jti, provider) VALUES (?1, ?2, ?3, ?4)",
        params![received_at, data_json, trace.ttp_jti, trace.provider],
    )?;
    let record_id = tx.last_insert_rowid();
    for p in pseudonyms {
        tx.execute(
            "INSERT INTO pseudonyms (record_id, type, key_version, label, is_current)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                record_id,
                p.pseudonym_type,
                p.key_version,
                p.label,
                p.is_current
            ],
        )?;
    }
    if let Some(r) = reversible {
        tx.execute(
            "INSERT INTO reversible (record_id, kid, enc, ct, claims) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![record_id, r.kid, r.enc, r.ct, r.claims],
        )?;
    }
    let receipt = receipt(record_id);
    for jwe in used {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO submitted (jti, record_id, digest, receipt) VALUES (?1, ?2, ?3, ?4)",
            params![jwe.jti, record_id, digest, receipt],
        )?;
        if inserted == 0 {
            return Err(StoreError::Replayed);
        }
    }
    if let Some(item) = batch {
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO batch_items (provider, batch_id, idx, record_id, receipt, data_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                item.provider,
                item.batch_id,
                item.index,
                record_id,
                receipt,
                item.data_digest
            ],
        )?;
        if inserted == 0 {
            return Err(StoreError::Replayed);
        }
    }
    Ok(record_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reversible_table_of_the_rec_binding_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE reversible (record_id INTEGER PRIMARY KEY, kid TEXT NOT NULL,
                 enc TEXT NOT NULL, ct TEXT NOT NULL, rec TEXT NOT NULL);",
            )
            .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::OldSchema(_)), "{err}");
        assert!(err.to_string().contains("new database"));
        // A new database opens, and opens again.
        let fresh = dir.path().join("new.sqlite");
        Store::open(&fresh).unwrap();
        Store::open(&fresh).unwrap();
    }
}
