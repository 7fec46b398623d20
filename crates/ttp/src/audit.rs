//! The audit log: one row per evaluation request (accepted or refused), in
//! an append-only, hash-chained SQLite table.
//!
//! A row holds the time, endpoint, caller name, recipient, pseudonym types
//! with counts, the total, the key versions used, the HTTP status and the
//! outcome code — **never** an input or output element, and only recipient
//! names and type codes that the configuration knows (an unknown recipient
//! is written as empty, so nothing a caller typed ends up in the log).
//!
//! Each row stores `hash = SHA-256(previous hash ‖ canonical row bytes)`
//! (the first row chains from 32 zero bytes); the canonical bytes are every
//! column but `hash`, in table order, each as a 4-byte big-endian length and
//! its UTF-8 text (integers in decimal). Triggers refuse `UPDATE` and
//! `DELETE`. [`verify`] walks the chain and names the first bad row; keep
//! its `head` hash elsewhere to detect removal of the newest rows.
//!
//! Rows are written by one thread that commits whatever is queued in one
//! transaction (group commit); an accepted request is answered only after
//! its row is committed. A request handler fills in an [`AuditDraft`] as it
//! learns who asks what, and finishes it into the row.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::keys::open_database;

/// Most queued rows before request handlers wait for the writer.
const QUEUE: usize = 4096;
/// Most rows committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Bytes a readiness probe writes ([`AuditLog::probe`]).
const PROBE_BYTES: i64 = 256 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    caller TEXT NOT NULL,
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    types TEXT NOT NULL,
    total INTEGER NOT NULL,
    key_versions TEXT NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    time_ms INTEGER NOT NULL,
    pad BLOB NOT NULL
);
";

/// One audited request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The endpoint path (`/oprf/eval`, `/v1/evaluate`, `/v1/rekey`).
    pub endpoint: String,
    /// The authenticated caller's name; empty when not authenticated.
    pub caller: String,
    /// The configured recipient organisation; empty when unknown.
    pub organization: String,
    /// The configured recipient scope; empty when unknown.
    pub scope: String,
    /// Evaluations per pseudonym type code (rekey: `rekey`).
    pub types: BTreeMap<String, u64>,
    /// Total evaluations.
    pub total: u64,
    /// Key versions used (current first).
    pub key_versions: Vec<u32>,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok`, or the error code of the answer.
    pub outcome: String,
}

/// What the audit row of a request will say, filled in as it is handled:
/// only what the configuration knows (caller and recipient names, type
/// codes), never a value from the request itself.
#[derive(Debug)]
pub struct AuditDraft {
    event: AuditEvent,
}

impl AuditDraft {
    /// A draft for a request to `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        AuditDraft {
            event: AuditEvent {
                endpoint: endpoint.into(),
                ..AuditEvent::default()
            },
        }
    }

    /// The endpoint of the request.
    pub fn endpoint(&self) -> &str {
        &self.event.endpoint
    }

    /// The authenticated caller's name.
    pub fn caller(&mut self, name: &str) {
        self.event.caller = name.to_owned();
    }

    /// The configured recipient.
    pub fn recipient(&mut self, organization: &str, scope: &str) {
        self.event.organization = organization.to_owned();
        self.event.scope = scope.to_owned();
    }

    /// `n` more evaluations of the type with code `label` (`rekey` for rekeying).
    pub fn count(&mut self, label: &str, n: u64) {
        *self.event.types.entry(label.to_owned()).or_insert(0) += n;
        self.event.total += n;
    }

    /// The evaluations counted so far.
    pub fn total(&self) -> u64 {
        self.event.total
    }

    /// The key versions used, current first.
    pub fn key_versions(&mut self, versions: Vec<u32>) {
        self.event.key_versions = versions;
    }

    /// The row: the draft with the time, the HTTP status and the outcome
    /// (`ok` or the error code).
    pub fn finish(mut self, status: u16, outcome: &str) -> AuditEvent {
        self.event.time_ms = pseudoform_protocol::unix_now_millis();
        self.event.status = status;
        self.event.outcome = outcome.to_owned();
        self.event
    }
}

/// A row as stored (what the hash covers).
struct StoredRow {
    id: i64,
    time_ms: i64,
    endpoint: String,
    caller: String,
    organization: String,
    scope: String,
    types: String,
    total: i64,
    key_versions: String,
    status: i64,
    outcome: String,
}

impl StoredRow {
    fn from_event(id: i64, e: &AuditEvent) -> Self {
        StoredRow {
            id,
            time_ms: e.time_ms,
            endpoint: e.endpoint.clone(),
            caller: e.caller.clone(),
            organization: e.organization.clone(),
            scope: e.scope.clone(),
            types: serde_json::to_string(&e.types).unwrap_or_default(),
            total: i64::try_from(e.total).unwrap_or(i64::MAX),
            key_versions: e
                .key_versions
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            status: i64::from(e.status),
            outcome: e.outcome.clone(),
        }
    }

    fn canonical_bytes(&self) -> Vec<u8> {
        let fields: [&str; 11] = [
            &self.id.to_string(),
            &self.time_ms.to_string(),
            &self.endpoint,
            &self.caller,
            &self.organization,
            &self.scope,
            &self.types,
            &self.total.to_string(),
            &self.key_versions,
            &self.status.to_string(),
            &self.outcome,
        ];
        let mut out = Vec::with_capacity(256);
        for f in fields {
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }

    fn chain_hash(&self, previous: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.canonical_bytes());
        h.finalize().into()
    }
}

#[derive(Debug)]
struct Entry {
    /// The row; `None` for a readiness probe ([`AuditLog::probe`]), which
    /// writes `audit_probe` instead of a row.
    event: Option<AuditEvent>,
    ack: Option<oneshot::Sender<bool>>,
}

/// The handle request handlers use to write audit rows.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Entry>,
}

/// Opens the audit table of the database at `path` (creating table and
/// triggers) and starts its writer thread. The thread ends once every
/// [`AuditLog`] clone is dropped and the queue is written.
pub fn open(path: &Path) -> anyhow::Result<(AuditLog, JoinHandle<()>)> {
    let mut conn = open_database(path)?;
    conn.execute_batch(SCHEMA)
        .context("cannot create the audit table")?;
    let (tx, mut rx) = mpsc::channel::<Entry>(QUEUE);
    let thread = std::thread::Builder::new()
        .name("pseudoform-ttp-audit".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(_) => break,
                    }
                }
                let written = write_batch(&mut conn, &batch);
                if let Err(e) = &written {
                    tracing::error!(error = %e, rows = batch.len(), "audit write failed");
                }
                for entry in batch {
                    if let Some(ack) = entry.ack {
                        let _ = ack.send(written.is_ok());
                    }
                }
            }
        })
        .context("cannot start the audit writer")?;
    Ok((AuditLog { tx }, thread))
}

fn write_batch(conn: &mut Connection, batch: &[Entry]) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (mut id, mut previous) = match last {
        Some((id, hash)) => {
            let mut prev = [0u8; 32];
            hex::decode_to_slice(&hash, &mut prev)
                .map_err(|_| anyhow!("last audit hash is damaged"))?;
            (id, prev)
        }
        None => (0, [0u8; 32]),
    };
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_log (id, time_ms, endpoint, caller, organization, scope, types, total,
             key_versions, status, outcome, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for event in batch.iter().filter_map(|entry| entry.event.as_ref()) {
            id += 1;
            let row = StoredRow::from_event(id, event);
            let hash = row.chain_hash(&previous);
            insert.execute(params![
                row.id,
                row.time_ms,
                row.endpoint,
                row.caller,
                row.organization,
                row.scope,
                row.types,
                row.total,
                row.key_versions,
                row.status,
                row.outcome,
                hex::encode(hash)
            ])?;
            previous = hash;
        }
    }
    if batch.iter().any(|entry| entry.event.is_none()) {
        // Larger than a full batch of rows: a probe that commits means
        // rows would too.
        tx.execute(
            "INSERT OR REPLACE INTO audit_probe (id, time_ms, pad) VALUES (1, ?1, zeroblob(?2))",
            params![pseudoform_protocol::unix_now_millis(), PROBE_BYTES],
        )?;
    }
    tx.commit()?;
    Ok(())
}

impl AuditLog {
    /// Writes `event` and waits until it is committed; `false` if it could
    /// not be written (the request must then fail).
    pub async fn record(&self, event: AuditEvent) -> bool {
        let (ack, done) = oneshot::channel();
        if self
            .tx
            .send(Entry {
                event: Some(event),
                ack: Some(ack),
            })
            .await
            .is_err()
        {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Commits a probe through the writer, as a row would be (readiness):
    /// `false` if the writer is gone or the write failed.
    pub async fn probe(&self) -> bool {
        let (ack, done) = oneshot::channel();
        let entry = Entry {
            event: None,
            ack: Some(ack),
        };
        if self.tx.send(entry).await.is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Queues `event` without waiting for the commit (refused requests).
    pub async fn record_detached(&self, event: AuditEvent) {
        let entry = Entry {
            event: Some(event),
            ack: None,
        };
        if self.tx.send(entry).await.is_err() {
            tracing::error!("audit writer is gone; a refused request was not audited");
        }
    }
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Rows checked (up to the first bad one).
    pub rows: u64,
    /// Hash of the last good row (hex), to keep outside the database.
    pub head: String,
    /// The first row whose id or hash does not follow the chain, if any.
    pub first_bad_row: Option<i64>,
    /// What is wrong with it.
    pub problem: Option<String>,
    /// Whether both append-only triggers are in place.
    pub triggers_present: bool,
}

impl Verification {
    /// Whether the chain is intact and protected.
    pub fn ok(&self) -> bool {
        self.first_bad_row.is_none() && self.triggers_present
    }
}

/// Verifies the hash chain of the audit log in the database at `path`.
pub fn verify(path: &Path) -> anyhow::Result<Verification> {
    if !path.exists() {
        return Err(anyhow!("no database at {}", path.display()));
    }
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let triggers: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'
         AND name IN ('audit_log_no_update', 'audit_log_no_delete')",
        [],
        |row| row.get(0),
    )?;
    let mut stmt = conn
        .prepare(
            "SELECT id, time_ms, endpoint, caller, organization, scope, types, total, key_versions,
             status, outcome, hash FROM audit_log ORDER BY id",
        )
        .context("the database has no audit log")?;
    let mut rows = stmt.query([])?;
    let mut previous = [0u8; 32];
    let mut count = 0u64;
    let mut expected_id = 1i64;
    let mut bad = None;
    while let Some(row) = rows.next()? {
        let stored = StoredRow {
            id: row.get(0)?,
            time_ms: row.get(1)?,
            endpoint: row.get(2)?,
            caller: row.get(3)?,
            organization: row.get(4)?,
            scope: row.get(5)?,
            types: row.get(6)?,
            total: row.get(7)?,
            key_versions: row.get(8)?,
            status: row.get(9)?,
            outcome: row.get(10)?,
        };
        let hash: String = row.get(11)?;
        if stored.id != expected_id {
            bad = Some((
                stored.id,
                format!(
                    "row id {} follows row {}: rows are missing",
                    stored.id,
                    expected_id - 1
                ),
            ));
            break;
        }
        let computed = stored.chain_hash(&previous);
        if hex::encode(computed) != hash {
            bad = Some((
                stored.id,
                format!("row {} does not match its hash: it was altered", stored.id),
            ));
            break;
        }
        previous = computed;
        count += 1;
        expected_id += 1;
    }
    let (first_bad_row, problem) = match bad {
        Some((id, p)) => (Some(id), Some(p)),
        None => (None, None),
    };
    Ok(Verification {
        rows: count,
        head: hex::encode(previous),
        first_bad_row,
        problem,
        triggers_present: triggers == 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            time_ms: 1_700_000_000_000,
            endpoint: "/v1/evaluate".into(),
            caller: "form-a".into(),
            organization: "oin:00000001000000001000".into(),
            scope: "a".into(),
            types: BTreeMap::from([("NGGV".into(), n)]),
            total: n,
            key_versions: vec![2, 1],
            status: 200,
            outcome: "ok".into(),
        }
    }

    #[tokio::test]
    async fn chain_verifies_and_detects_edits_and_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.sqlite");
        let (log, thread) = open(&db).unwrap();
        for n in 1..=5 {
            assert!(log.record(event(n)).await);
        }
        log.record_detached(event(9)).await;
        drop(log);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();

        let v = verify(&db).unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.rows, 6);

        let conn = Connection::open(&db).unwrap();
        assert!(conn
            .execute("UPDATE audit_log SET total = 7 WHERE id = 3", [])
            .is_err());
        assert!(conn
            .execute("DELETE FROM audit_log WHERE id = 3", [])
            .is_err());
        conn.execute_batch("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap();
        conn.execute("DELETE FROM audit_log WHERE id = 5", [])
            .unwrap();
        let v = verify(&db).unwrap();
        assert_eq!(
            (v.first_bad_row, v.rows, v.triggers_present),
            (Some(6), 4, false)
        );
        conn.execute("UPDATE audit_log SET total = 7 WHERE id = 3", [])
            .unwrap();
        let v = verify(&db).unwrap();
        assert_eq!((v.first_bad_row, v.rows), (Some(3), 2));
    }
}
