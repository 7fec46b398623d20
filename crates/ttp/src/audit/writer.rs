//! The audit writer: one thread that commits accepted rows as they come
//! (group commit: whatever is queued, in one transaction with one signed
//! head) and counts refusals per minute, endpoint, caller, status and
//! outcome, writing one aggregate row per key once its minute is over (or
//! the server stops).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::chain;
use super::AuditEvent;
use crate::keys::open_database;
use crate::signing::SigningKey;

/// Most queued entries before request handlers wait for the writer.
const QUEUE: usize = 4096;
/// Most rows committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How often the writer looks for finished minutes of refusals.
const TICK: Duration = Duration::from_secs(5);
/// Most aggregate keys held before they are written regardless of minute.
const MAX_KEYS: usize = 10_000;
const MINUTE_MS: i64 = 60_000;
/// Bytes a readiness probe writes ([`AuditLog::probe`]): more than a full
/// batch of rows, so a probe that commits means rows would too.
const PROBE_BYTES: i64 = 256 * 1024;

const PROBE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    time_ms INTEGER NOT NULL,
    pad BLOB NOT NULL
);
";

#[derive(Debug)]
enum Entry {
    /// An accepted request: its row, and who waits for the commit.
    Row(AuditEvent, oneshot::Sender<bool>),
    /// A refused request, to aggregate.
    Refusal(AuditEvent),
    /// A readiness probe ([`AuditLog::probe`]), and who waits for it.
    Probe(oneshot::Sender<bool>),
    /// Time to write the refusals of finished minutes.
    Tick,
}

/// The aggregation key of a refusal.
type RefusalKey = (i64, String, String, u16, String);

/// The handle request handlers use to write audit rows.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Entry>,
}

/// Opens the audit tables of the database at `path` (creating tables and
/// triggers) and starts its writer, which signs heads with `signer`. The
/// writer ends once every [`AuditLog`] clone is dropped and everything
/// queued (and aggregated) is written.
pub fn open(path: &Path, signer: Arc<SigningKey>) -> anyhow::Result<(AuditLog, JoinHandle<()>)> {
    let mut conn = open_database(path)?;
    conn.execute_batch(chain::SCHEMA)
        .and_then(|()| conn.execute_batch(PROBE_SCHEMA))
        .context("cannot create the audit tables")?;
    let (tx, mut rx) = mpsc::channel::<Entry>(QUEUE);
    let ticker = tx.downgrade();
    std::thread::Builder::new()
        .name("pseudoform-ttp-audit-tick".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match ticker.upgrade() {
                Some(tx) => {
                    let _ = tx.try_send(Entry::Tick);
                }
                None => break,
            }
        })
        .context("cannot start the audit ticker")?;
    let thread = std::thread::Builder::new()
        .name("pseudoform-ttp-audit".into())
        .spawn(move || {
            let mut refusals: BTreeMap<RefusalKey, u64> = BTreeMap::new();
            while let Some(first) = rx.blocking_recv() {
                let mut accepted = Vec::new();
                let mut probes = Vec::new();
                let mut take =
                    |entry: Entry, accepted: &mut Vec<(AuditEvent, oneshot::Sender<bool>)>| {
                        match entry {
                            Entry::Row(event, ack) => accepted.push((event, ack)),
                            Entry::Probe(ack) => probes.push(ack),
                            Entry::Refusal(e) => {
                                let minute = e.time_ms - e.time_ms.rem_euclid(MINUTE_MS);
                                *refusals
                                    .entry((minute, e.endpoint, e.caller, e.status, e.outcome))
                                    .or_insert(0) += 1;
                            }
                            Entry::Tick => {}
                        }
                    };
                take(first, &mut accepted);
                while accepted.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(entry) => take(entry, &mut accepted),
                        Err(_) => break,
                    }
                }
                let now = pseudoform_protocol::unix_now_millis();
                let finished = take_finished(&mut refusals, now);
                commit(&mut conn, &signer, accepted, &finished, probes);
            }
            let all = take_finished(&mut refusals, i64::MAX);
            commit(&mut conn, &signer, Vec::new(), &all, Vec::new());
        })
        .context("cannot start the audit writer")?;
    Ok((AuditLog { tx }, thread))
}

/// The aggregate rows of every minute before `now_ms` (all when the map is
/// too large), removed from `refusals`.
fn take_finished(refusals: &mut BTreeMap<RefusalKey, u64>, now_ms: i64) -> Vec<AuditEvent> {
    let current = now_ms.saturating_sub(now_ms.rem_euclid(MINUTE_MS));
    let everything = refusals.len() > MAX_KEYS;
    let keys: Vec<RefusalKey> = refusals
        .keys()
        .filter(|k| everything || k.0 < current)
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| {
            let count = refusals.remove(&k)?;
            let (time_ms, endpoint, caller, status, outcome) = k;
            Some(AuditEvent {
                time_ms,
                endpoint,
                caller,
                status,
                outcome,
                count,
                ..AuditEvent::default()
            })
        })
        .collect()
}

/// Writes accepted rows and aggregates in one transaction with a signed
/// head (and the probe row when a probe waits), and tells each accepted
/// request and probe whether the commit succeeded.
fn commit(
    conn: &mut Connection,
    signer: &SigningKey,
    accepted: Vec<(AuditEvent, oneshot::Sender<bool>)>,
    aggregates: &[AuditEvent],
    probes: Vec<oneshot::Sender<bool>>,
) {
    if accepted.is_empty() && aggregates.is_empty() && probes.is_empty() {
        return;
    }
    let events: Vec<&AuditEvent> = accepted
        .iter()
        .map(|(e, _)| e)
        .chain(aggregates.iter())
        .collect();
    let written = (|| -> anyhow::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !events.is_empty() {
            chain::append(&tx, &events, signer)?;
        }
        if !probes.is_empty() {
            tx.execute(
                "INSERT OR REPLACE INTO audit_probe (id, time_ms, pad) VALUES (1, ?1, zeroblob(?2))",
                rusqlite::params![pseudoform_protocol::unix_now_millis(), PROBE_BYTES],
            )?;
        }
        tx.commit()?;
        Ok(())
    })();
    if let Err(e) = &written {
        tracing::error!(error = %e, rows = events.len(), "audit write failed");
    }
    for (_, ack) in accepted {
        let _ = ack.send(written.is_ok());
    }
    for ack in probes {
        let _ = ack.send(written.is_ok());
    }
}

impl AuditLog {
    /// Writes the row of an accepted request and waits until it is
    /// committed; `false` if it could not be written (the request must then
    /// fail).
    pub async fn record(&self, event: AuditEvent) -> bool {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Entry::Row(event, ack)).await.is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Commits a probe through the writer, as a row would be (readiness):
    /// `false` if the writer is gone or the write failed.
    pub async fn probe(&self) -> bool {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Entry::Probe(ack)).await.is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }

    /// Counts a refused request in its minute's aggregate (not waited for).
    pub async fn refuse(&self, event: AuditEvent) {
        if self.tx.send(Entry::Refusal(event)).await.is_err() {
            tracing::error!("audit writer is gone; a refused request was not audited");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{self, HeadKey};

    fn accepted(n: u64) -> AuditEvent {
        AuditEvent {
            time_ms: 1_700_000_000_000,
            endpoint: "/v1/evaluate".into(),
            caller: "ura:00000001".into(),
            provider: "ura:00000001".into(),
            jti: format!("{n:032x}"),
            organization: "oin:00000001000000001000".into(),
            scope: "a".into(),
            types: BTreeMap::from([("NGGV".into(), n)]),
            total: n,
            key_versions: vec![2, 1],
            status: 200,
            outcome: "ok".into(),
            count: 1,
            ..AuditEvent::default()
        }
    }

    #[tokio::test]
    async fn rows_heads_aggregates_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("audit.sqlite");
        let pem = crate::signing::generate_pem().unwrap();
        let signer = Arc::new(SigningKey::from_pem(&pem).unwrap());
        let key = HeadKey::from_pem(signer.public_pem().as_bytes()).unwrap();
        let (log, thread) = open(&db, Arc::clone(&signer)).unwrap();
        for n in 1..=5 {
            assert!(log.record(accepted(n)).await);
        }
        // 300 refusals of two kinds in the current minute: two rows.
        for i in 0..300 {
            let mut e = accepted(0);
            e.time_ms = pseudoform_protocol::unix_now_millis();
            e.caller = String::new();
            e.status = 401;
            e.outcome = if i % 2 == 0 {
                "auth.missingToken"
            } else {
                "auth.invalidToken"
            }
            .into();
            log.refuse(e).await;
        }
        drop(log);
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();

        let v = chain::verify(&db, &key).unwrap();
        assert!(v.ok(), "{v:?}");
        assert_eq!(v.rows, 7);
        assert!(v.heads >= 2, "{v:?}");
        let conn = Connection::open(&db).unwrap();
        let counts: Vec<(String, i64, String)> = conn
            .prepare(
                "SELECT outcome, count, caller FROM audit_rows WHERE status = 401 ORDER BY outcome",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            counts,
            vec![
                ("auth.invalidToken".into(), 150, String::new()),
                ("auth.missingToken".into(), 150, String::new())
            ]
        );

        // The export verifies with the public key alone.
        let mut out = Vec::new();
        assert_eq!(
            chain::export(&db, &signer.public_jwk(), &mut out)
                .unwrap()
                .0,
            7
        );
        let v = chain::verify_export(&mut out.as_slice(), &key).unwrap();
        assert!(v.ok(), "{v:?}");
        // Another key does not verify it.
        let stranger = SigningKey::from_pem(&crate::signing::generate_pem().unwrap()).unwrap();
        let stranger = HeadKey::from_pem(stranger.public_pem().as_bytes()).unwrap();
        assert!(!chain::verify_export(&mut out.as_slice(), &stranger)
            .unwrap()
            .ok());

        // The triggers refuse edits; behind their back, a rewrite with the
        // whole chain recomputed (as an attacker with the database can) is
        // found by the signed heads.
        assert!(conn
            .execute("UPDATE audit_rows SET total = 7 WHERE id = 3", [])
            .is_err());
        assert!(conn.execute("DELETE FROM audit_heads", []).is_err());
        conn.execute_batch("DROP TRIGGER audit_rows_no_update;")
            .unwrap();
        conn.execute("UPDATE audit_rows SET total = 99 WHERE id = 2", [])
            .unwrap();
        let v = chain::verify(&db, &key).unwrap();
        assert_eq!((v.first_bad_row, v.rows), (Some(2), 1));
        assert!(!v.triggers_present);
        let mut previous = [0u8; 32];
        let rows: Vec<chain::StoredRow> = conn
            .prepare(&format!(
                "SELECT {} FROM audit_rows ORDER BY id",
                chain::COLUMNS
            ))
            .unwrap()
            .query_map([], chain::StoredRow::from_sql)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for row in rows {
            let hash = row.chain_hash(&previous);
            conn.execute(
                "UPDATE audit_rows SET hash = ?1 WHERE id = ?2",
                rusqlite::params![hex::encode(hash), row.id],
            )
            .unwrap();
            previous = hash;
        }
        let v = chain::verify(&db, &key).unwrap();
        assert_eq!(v.first_bad_row, Some(2), "{v:?}");
        assert!(v.problem.unwrap().contains("not the one the TTP signed"));
    }
}
