//! The audit chain and its signed heads, as stored, verified and exported.
//!
//! Each row stores `hash = SHA-256(previous hash ‖ canonical row bytes)`
//! (the first row chains from 32 zero bytes); the canonical bytes are every
//! column but `hash`, in table order, each as a 4-byte big-endian length
//! and its UTF-8 text (integers in decimal). Every commit appends a head:
//! the compact JWS (`ES256`, `typ: pseudoform-audit-head+jwt`, the signing
//! key's `kid`) of `{"lastId", "head", "time"}` — the id and hash of the
//! last row written, and the time in milliseconds.
//!
//! A writer of the database can rewrite rows and recompute every hash, but
//! cannot sign a head: [`verify`] finds the rewrite because the recomputed
//! chain no longer meets the signed heads. Removing the newest rows and
//! their heads together is found only against a head kept elsewhere:
//! [`export`] writes everything an auditor needs, and the last head of an
//! earlier export must still verify in a later one.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use rusqlite::{params, Connection, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AuditEvent;
use crate::jose::{self, PublicKey};
use crate::signing::{SigningKey, TYP_AUDIT_HEAD};

/// The first line of an export names its format.
pub const EXPORT_FORMAT: &str = "pseudoform-ttp-audit/1";

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_rows (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    caller TEXT NOT NULL,
    provider TEXT NOT NULL,
    person TEXT NOT NULL,
    credential TEXT NOT NULL,
    jti TEXT NOT NULL,
    organization TEXT NOT NULL,
    scope TEXT NOT NULL,
    types TEXT NOT NULL,
    total INTEGER NOT NULL,
    key_versions TEXT NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_heads (
    id INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    head TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    jws TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_rows_no_update BEFORE UPDATE ON audit_rows
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_rows_no_delete BEFORE DELETE ON audit_rows
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_heads_no_update BEFORE UPDATE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_heads_no_delete BEFORE DELETE ON audit_heads
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

const TRIGGERS: [&str; 4] = [
    "audit_rows_no_update",
    "audit_rows_no_delete",
    "audit_heads_no_update",
    "audit_heads_no_delete",
];

pub(crate) const COLUMNS: &str = "id, time_ms, endpoint, caller, provider, person, credential, jti, organization, scope, types, total, key_versions, status, outcome, count";

/// A row as stored (what its hash covers), as exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRow {
    /// The row id, from 1, without gaps.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The endpoint.
    pub endpoint: String,
    /// The caller's client id.
    pub caller: String,
    /// The provider.
    pub provider: String,
    /// The acting person.
    pub person: String,
    /// The access token's `jti`.
    pub credential: String,
    /// The issued `jti`.
    pub jti: String,
    /// The recipient organisation.
    pub organization: String,
    /// The recipient scope.
    pub scope: String,
    /// Counts per type, as JSON.
    pub types: String,
    /// Total evaluations.
    pub total: i64,
    /// Key versions, comma-separated.
    pub key_versions: String,
    /// HTTP status.
    pub status: i64,
    /// Outcome code.
    pub outcome: String,
    /// Requests the row stands for.
    pub count: i64,
}

impl StoredRow {
    fn from_event(id: i64, e: &AuditEvent) -> Self {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        StoredRow {
            id,
            time_ms: e.time_ms,
            endpoint: e.endpoint.clone(),
            caller: e.caller.clone(),
            provider: e.provider.clone(),
            person: e.person.clone(),
            credential: e.credential.clone(),
            jti: e.jti.clone(),
            organization: e.organization.clone(),
            scope: e.scope.clone(),
            types: serde_json::to_string(&e.types).unwrap_or_default(),
            total: int(e.total),
            key_versions: e
                .key_versions
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            status: i64::from(e.status),
            outcome: e.outcome.clone(),
            count: int(e.count),
        }
    }

    pub(crate) fn from_sql(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(StoredRow {
            id: row.get(0)?,
            time_ms: row.get(1)?,
            endpoint: row.get(2)?,
            caller: row.get(3)?,
            provider: row.get(4)?,
            person: row.get(5)?,
            credential: row.get(6)?,
            jti: row.get(7)?,
            organization: row.get(8)?,
            scope: row.get(9)?,
            types: row.get(10)?,
            total: row.get(11)?,
            key_versions: row.get(12)?,
            status: row.get(13)?,
            outcome: row.get(14)?,
            count: row.get(15)?,
        })
    }

    fn canonical_bytes(&self) -> Vec<u8> {
        let fields: [&str; 16] = [
            &self.id.to_string(),
            &self.time_ms.to_string(),
            &self.endpoint,
            &self.caller,
            &self.provider,
            &self.person,
            &self.credential,
            &self.jti,
            &self.organization,
            &self.scope,
            &self.types,
            &self.total.to_string(),
            &self.key_versions,
            &self.status.to_string(),
            &self.outcome,
            &self.count.to_string(),
        ];
        let mut out = Vec::with_capacity(256);
        for f in fields {
            let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }

    pub(crate) fn chain_hash(&self, previous: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(previous);
        h.update(self.canonical_bytes());
        h.finalize().into()
    }
}

/// A signed head as stored and exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredHead {
    /// The head's id.
    pub id: i64,
    /// The id of the last row it covers.
    pub last_id: i64,
    /// That row's hash (hex).
    pub head: String,
    /// When it was signed, milliseconds.
    pub time_ms: i64,
    /// The compact JWS of `{"lastId", "head", "time"}`.
    pub jws: String,
}

/// The payload a head's JWS signs.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeadClaims {
    last_id: i64,
    head: String,
    time: i64,
}

/// Appends `events` to the chain in `tx`, and a head signed by `signer`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    events: &[&AuditEvent],
    signer: &SigningKey,
) -> anyhow::Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let last: Option<(i64, String)> = rusqlite::OptionalExtension::optional(tx.query_row(
        "SELECT id, hash FROM audit_rows ORDER BY id DESC LIMIT 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    ))?;
    let (mut id, mut previous) = match last {
        Some((id, hash)) => {
            let mut prev = [0u8; 32];
            hex::decode_to_slice(&hash, &mut prev)
                .map_err(|_| anyhow!("the last audit hash is damaged"))?;
            (id, prev)
        }
        None => (0, [0u8; 32]),
    };
    {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO audit_rows ({COLUMNS}, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ))?;
        for event in events {
            id += 1;
            let row = StoredRow::from_event(id, event);
            let hash = row.chain_hash(&previous);
            insert.execute(params![
                row.id,
                row.time_ms,
                row.endpoint,
                row.caller,
                row.provider,
                row.person,
                row.credential,
                row.jti,
                row.organization,
                row.scope,
                row.types,
                row.total,
                row.key_versions,
                row.status,
                row.outcome,
                row.count,
                hex::encode(hash)
            ])?;
            previous = hash;
        }
    }
    let time = pseudoform_protocol::unix_now_millis();
    let head = hex::encode(previous);
    let claims = HeadClaims {
        last_id: id,
        head: head.clone(),
        time,
    };
    let jws = signer.sign_as(TYP_AUDIT_HEAD, &serde_json::to_vec(&claims)?)?;
    tx.execute(
        "INSERT INTO audit_heads (last_id, head, time_ms, jws) VALUES (?1, ?2, ?3, ?4)",
        params![id, head, time, jws],
    )?;
    Ok(())
}

/// The result of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Rows checked (up to the first bad one).
    pub rows: u64,
    /// Signed heads that verified.
    pub heads: u64,
    /// Hash of the last good row (hex).
    pub head: String,
    /// The first row (or, with a bad head, the row it names) where the
    /// chain is broken, if any.
    pub first_bad_row: Option<i64>,
    /// What is wrong.
    pub problem: Option<String>,
    /// Whether the append-only triggers are in place (always true of an export).
    pub triggers_present: bool,
}

impl Verification {
    /// Whether the chain is intact, covered by signed heads, and protected.
    pub fn ok(&self) -> bool {
        self.first_bad_row.is_none() && self.triggers_present
    }
}

/// The public key that verifies heads: the TTP's signing key's public half.
#[derive(Debug)]
pub struct HeadKey(PublicKey);

impl HeadKey {
    /// From the SPKI PEM (`pseudoform-ttp signing-key --public-pem`).
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        PublicKey::from_pem(pem).map(HeadKey)
    }

    /// The payload of a head's JWS if this key signed it as a head.
    fn open(&self, jws: &str) -> Option<HeadClaims> {
        let (payload, header) = jose::verify(jws, &self.0.verifier)?;
        if !jose::typ_is(&header, TYP_AUDIT_HEAD) || header.key_id() != Some(&self.0.thumbprint) {
            return None;
        }
        serde_json::from_slice(&payload).ok()
    }
}

/// Checks rows (in id order) against heads (in id order).
fn check(
    rows: impl Iterator<Item = anyhow::Result<(StoredRow, String)>>,
    heads: &[StoredHead],
    key: &HeadKey,
) -> anyhow::Result<Verification> {
    let mut v = Verification {
        rows: 0,
        heads: 0,
        head: hex::encode([0u8; 32]),
        first_bad_row: None,
        problem: None,
        triggers_present: true,
    };
    fn bad(v: &mut Verification, row: i64, problem: String) {
        if v.first_bad_row.is_none() {
            v.first_bad_row = Some(row);
            v.problem = Some(problem);
        }
    }
    // The signed heads, by the row they cover; each must verify.
    let mut signed: BTreeMap<i64, String> = BTreeMap::new();
    let mut last_covered = 0i64;
    for h in heads {
        match key.open(&h.jws) {
            Some(c) if c.last_id == h.last_id && c.head == h.head && c.time == h.time_ms => {
                if h.last_id <= last_covered {
                    bad(
                        &mut v,
                        h.last_id,
                        format!("head {} does not follow the one before it", h.id),
                    );
                    break;
                }
                last_covered = h.last_id;
                signed.insert(h.last_id, h.head.clone());
            }
            _ => {
                bad(
                    &mut v,
                    h.last_id,
                    format!("head {} is not signed by the TTP's key", h.id),
                );
                break;
            }
        }
    }
    let mut previous = [0u8; 32];
    let mut expected_id = 1i64;
    for row in rows {
        let (stored, hash) = row?;
        if v.first_bad_row.is_some_and(|b| stored.id >= b) {
            break;
        }
        if stored.id != expected_id {
            bad(
                &mut v,
                stored.id,
                format!(
                    "row id {} follows row {}: rows are missing",
                    stored.id,
                    expected_id - 1
                ),
            );
            break;
        }
        let computed = stored.chain_hash(&previous);
        if hex::encode(computed) != hash {
            bad(
                &mut v,
                stored.id,
                format!("row {} does not match its hash: it was altered", stored.id),
            );
            break;
        }
        if let Some(head) = signed.get(&stored.id) {
            if *head != hash {
                bad(
                    &mut v,
                    stored.id,
                    format!(
                        "the chain at row {} is not the one the TTP signed: rows up to it were rewritten",
                        stored.id
                    ),
                );
                break;
            }
            v.heads += 1;
        }
        previous = computed;
        v.head = hash;
        v.rows += 1;
        expected_id += 1;
    }
    let last_row = expected_id - 1;
    if v.first_bad_row.is_none() {
        if last_covered > last_row {
            bad(
                &mut v,
                last_row + 1,
                format!("a signed head covers row {last_covered}, but the log ends at row {last_row}: rows were removed"),
            );
        } else if last_row > last_covered {
            bad(
                &mut v,
                last_covered + 1,
                format!(
                    "rows {} to {last_row} are not covered by a signed head",
                    last_covered + 1
                ),
            );
        }
    }
    Ok(v)
}

/// Opens the database at `path` for reading the audit log.
fn open_existing(path: &Path) -> anyhow::Result<Connection> {
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", path.display()))
}

fn heads_of(conn: &Connection) -> anyhow::Result<Vec<StoredHead>> {
    let mut stmt = conn
        .prepare("SELECT id, last_id, head, time_ms, jws FROM audit_heads ORDER BY id")
        .context("the database has no audit log")?;
    let heads = stmt
        .query_map([], |r| {
            Ok(StoredHead {
                id: r.get(0)?,
                last_id: r.get(1)?,
                head: r.get(2)?,
                time_ms: r.get(3)?,
                jws: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(heads)
}

/// Verifies the audit log of the database at `path` with the public key
/// `key` only.
pub fn verify(path: &Path, key: &HeadKey) -> anyhow::Result<Verification> {
    let conn = open_existing(path)?;
    let triggers: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ({})",
            TRIGGERS.map(|t| format!("'{t}'")).join(", ")
        ),
        [],
        |row| row.get(0),
    )?;
    let heads = heads_of(&conn)?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {COLUMNS}, hash FROM audit_rows ORDER BY id"
        ))
        .context("the database has no audit log")?;
    let rows = stmt.query_map([], |r| {
        Ok((StoredRow::from_sql(r)?, r.get::<_, String>(16)?))
    })?;
    let mut v = check(rows.map(|r| r.map_err(anyhow::Error::from)), &heads, key)?;
    v.triggers_present = triggers == i64::try_from(TRIGGERS.len()).unwrap_or(0);
    Ok(v)
}

/// One line of an export after the first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Line {
    /// A row and its hash.
    Row {
        /// The row.
        #[serde(flatten)]
        row: Box<StoredRow>,
        /// Its hash.
        hash: String,
    },
    /// A signed head.
    Head(Box<StoredHead>),
}

/// Writes the audit log of the database at `path` to `out` as JSON lines:
/// a first line `{"format", "signingKey"}` (the public JWK, for reference
/// only: an auditor verifies with the key they pinned), then every row
/// (`{"row": {…, "hash"}}`) and every head (`{"head": {…}}`) in id order.
/// Returns the number of rows and heads.
pub fn export(
    path: &Path,
    signing_jwk: &serde_json::Value,
    out: &mut dyn Write,
) -> anyhow::Result<(u64, u64)> {
    let conn = open_existing(path)?;
    writeln!(
        out,
        "{}",
        json!({"format": EXPORT_FORMAT, "signingKey": signing_jwk})
    )?;
    let mut rows = 0u64;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS}, hash FROM audit_rows ORDER BY id"
    ))?;
    let mut query = stmt.query([])?;
    while let Some(r) = query.next()? {
        let line = Line::Row {
            row: Box::new(StoredRow::from_sql(r)?),
            hash: r.get(16)?,
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
        rows += 1;
    }
    let heads = heads_of(&conn)?;
    for h in &heads {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&Line::Head(Box::new(h.clone())))?
        )?;
    }
    Ok((rows, u64::try_from(heads.len()).unwrap_or(0)))
}

/// Verifies an export (read from `input`) with the public key `key` only.
pub fn verify_export(input: &mut dyn BufRead, key: &HeadKey) -> anyhow::Result<Verification> {
    let mut lines = input.lines();
    let first = lines
        .next()
        .ok_or_else(|| anyhow!("the export is empty"))??;
    let first: serde_json::Value =
        serde_json::from_str(&first).context("the export's first line is not JSON")?;
    if first.get("format").and_then(serde_json::Value::as_str) != Some(EXPORT_FORMAT) {
        bail!("not an export of format {EXPORT_FORMAT}");
    }
    let mut rows = Vec::new();
    let mut heads = Vec::new();
    for (n, line) in lines.enumerate() {
        match serde_json::from_str::<Line>(&line?)
            .with_context(|| format!("line {} of the export", n + 2))?
        {
            Line::Row { row, hash } => rows.push((*row, hash)),
            Line::Head(h) => heads.push(*h),
        }
    }
    rows.sort_by_key(|(r, _)| r.id);
    heads.sort_by_key(|h| h.id);
    check(rows.into_iter().map(Ok), &heads, key)
}
