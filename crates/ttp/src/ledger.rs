//! The TTP's persistent counters, shared by every process on one database:
//! single-use ids (the `jti` of client assertions, subject tokens and DPoP
//! proofs, each remembered until it expires) and budgets (evaluations per
//! credential, person, provider and recipient, per UTC minute and day).
//!
//! [`Ledger`] is the small interface the handlers use, so that another
//! store (PostgreSQL, for a TTP behind a load balancer) can take the place
//! of [`SqliteLedger`], the embedded default. Every call is atomic: a
//! charge checks every budget and books all of them, or none.
//!
//! The SQLite ledger lives in a file of its own next to the TTP database
//! ([`ledger_path`]: `ttp.sqlite` → `ttp.ledger.sqlite`), so that its
//! commit per request never waits for the audit writer's write lock on the
//! main database (each audit commit is fsynced and signed): on one file the
//! two writers took turns through SQLite's busy handler, which sleeps
//! milliseconds at a time while the ledger's lock is held, and the TTP
//! served less than half the requests per second. It writes with
//! `synchronous = NORMAL` (WAL): a crash of the process loses nothing, a
//! power failure at most the last moments of counts. It is bounded: expired
//! ids and spent windows are swept every minute, and at most
//! `replay_capacity` ids are held at once.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::config::Limit;
use crate::keys::open_database;

/// What a single-use id belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnceKind {
    /// A client assertion (RFC 7523), unique per client.
    ClientAssertion,
    /// A subject token of a token exchange, unique per client.
    SubjectToken,
    /// A DPoP proof, unique per key.
    Proof,
}

impl OnceKind {
    fn name(self) -> &'static str {
        match self {
            OnceKind::ClientAssertion => "assertion",
            OnceKind::SubjectToken => "subject",
            OnceKind::Proof => "proof",
        }
    }
}

/// Whether an id was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Once {
    /// First use: it is remembered now.
    Fresh,
    /// Seen before and not yet expired.
    Replayed,
    /// The store holds its capacity of unexpired ids: refused for now.
    Full,
}

/// A budget dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// One credential: a browser token (by its `jti`) or a back-end client.
    Credential,
    /// One acting person of one provider, over all their tokens.
    Person,
    /// One provider, whoever evaluates for it.
    Provider,
    /// One recipient key domain.
    Recipient,
}

impl Dimension {
    /// The dimension's name, as in the database and the security events.
    pub const fn name(self) -> &'static str {
        match self {
            Dimension::Credential => "credential",
            Dimension::Person => "person",
            Dimension::Provider => "provider",
            Dimension::Recipient => "recipient",
        }
    }
}

/// The two fixed UTC windows of every budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// From second 0 to 59 of a UTC minute.
    Minute,
    /// From 00:00 to 24:00 UTC.
    Day,
}

impl Window {
    const fn seconds(self) -> i64 {
        match self {
            Window::Minute => 60,
            Window::Day => 86_400,
        }
    }

    const fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Day => "day",
        }
    }

    /// The start of the window that holds `now`.
    fn start(self, now: i64) -> i64 {
        now - now.rem_euclid(self.seconds())
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One budget a request is charged to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    /// The dimension.
    pub dimension: Dimension,
    /// The key within it (a client id, `provider|person`, …).
    pub key: String,
    /// Its limits.
    pub limit: Limit,
}

/// The outcome of a charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charged {
    /// Booked on every budget.
    Booked,
    /// Refused: nothing booked.
    Exceeded {
        /// The first budget that refused.
        dimension: Dimension,
        /// Its window.
        window: Window,
        /// Seconds until every refusing window has ended; `None` when the
        /// request alone is more than a limit and can never pass.
        retry_after: Option<u64>,
    },
}

/// The persistent counters of the TTP.
pub trait Ledger: Send + Sync + fmt::Debug {
    /// Remembers the id `jti` of `issuer` (a client id or a key
    /// thumbprint) of `kind` until `expires_at` (seconds since the Unix
    /// epoch) if it was not seen before.
    fn use_once(
        &self,
        kind: OnceKind,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> anyhow::Result<Once>;

    /// Books `n` evaluations on each of `charges` in their current minute
    /// and day, or none when any would go over its limit.
    fn charge(&self, charges: &[Charge], n: u64, now: i64) -> anyhow::Result<Charged>;
}

/// How often expired ids and spent windows are swept, in seconds.
const SWEEP_SECONDS: i64 = 60;

const SCHEMA: &str = "
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
";

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// Unexpired ids, as of the last sweep plus those added since.
    remembered: u64,
    last_sweep: i64,
}

/// The ledger in the TTP's SQLite database.
#[derive(Debug)]
pub struct SqliteLedger {
    inner: Mutex<Inner>,
    capacity: u64,
}

/// The stored form of a single-use id: 16 bytes of SHA-256 over kind,
/// issuer and id (nothing a caller chose is stored as such).
fn once_key(kind: OnceKind, issuer: &str, jti: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    for part in [kind.name(), issuer, jti] {
        h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    key
}

/// The ledger's database file for the TTP database at `database`: the same
/// name with `.ledger.sqlite` for its extension, in the same folder (every
/// process on one TTP database finds the same ledger).
pub fn ledger_path(database: &Path) -> PathBuf {
    database.with_extension("ledger.sqlite")
}

impl SqliteLedger {
    /// Opens (and if needed creates, owner-only) the ledger database at
    /// `path`, holding at most `capacity` unexpired single-use ids.
    pub fn open(path: &Path, capacity: u64) -> anyhow::Result<Self> {
        let conn = open_database(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)
            .context("cannot create the ledger's tables")?;
        // The first call sweeps (and counts the ids), at its own time.
        let inner = Inner {
            conn,
            remembered: 0,
            last_sweep: i64::MIN / 2,
        };
        Ok(SqliteLedger {
            inner: Mutex::new(inner),
            capacity,
        })
    }

    fn lock(&self) -> anyhow::Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| anyhow!("ledger lock poisoned"))
    }
}

/// Deletes expired ids and spent windows and recounts the ids.
fn sweep(inner: &mut Inner, now: i64) -> anyhow::Result<()> {
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM single_use WHERE expires_at < ?1", [now])?;
    tx.execute(
        "DELETE FROM budgets WHERE (span = 'minute' AND start < ?1) OR (span = 'day' AND start < ?2)",
        params![Window::Minute.start(now), Window::Day.start(now)],
    )?;
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM single_use", [], |r| r.get(0))?;
    tx.commit()?;
    inner.remembered = u64::try_from(count).unwrap_or(0);
    inner.last_sweep = now;
    Ok(())
}

impl Ledger for SqliteLedger {
    fn use_once(
        &self,
        kind: OnceKind,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> anyhow::Result<Once> {
        let mut inner = self.lock()?;
        if now - inner.last_sweep >= SWEEP_SECONDS || inner.remembered >= self.capacity {
            sweep(&mut inner, now)?;
        }
        let key = once_key(kind, issuer, jti);
        let seen: Option<i64> = inner
            .conn
            .prepare_cached("SELECT expires_at FROM single_use WHERE id = ?1")?
            .query_row([key.as_slice()], |r| r.get(0))
            .optional()?;
        match seen {
            Some(expiry) if expiry >= now => return Ok(Once::Replayed),
            None if inner.remembered >= self.capacity => return Ok(Once::Full),
            _ => {}
        }
        inner
            .conn
            .prepare_cached(
                "INSERT INTO single_use (id, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
            )?
            .execute(params![key.as_slice(), expires_at.max(now)])?;
        if seen.is_none() {
            inner.remembered += 1;
        }
        Ok(Once::Fresh)
    }

    fn charge(&self, charges: &[Charge], n: u64, now: i64) -> anyhow::Result<Charged> {
        let mut inner = self.lock()?;
        if now - inner.last_sweep >= SWEEP_SECONDS {
            sweep(&mut inner, now)?;
        }
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut updates = Vec::with_capacity(charges.len() * 2);
        let mut refused: Option<(Dimension, Window)> = None;
        let mut wait: Option<u64> = Some(0);
        for charge in charges {
            for (window, limit) in [
                (Window::Minute, charge.limit.per_minute),
                (Window::Day, charge.limit.per_day),
            ] {
                let start = window.start(now);
                let row: Option<(i64, i64)> = tx
                    .prepare_cached(
                        "SELECT start, used FROM budgets WHERE dimension = ?1 AND key = ?2 AND span = ?3",
                    )?
                    .query_row(
                        params![charge.dimension.name(), charge.key, window.name()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let used = match row {
                    Some((s, used)) if s == start => u64::try_from(used).unwrap_or(u64::MAX),
                    _ => 0,
                };
                let total = used.saturating_add(n);
                if total > limit {
                    refused.get_or_insert((charge.dimension, window));
                    wait = if n > limit {
                        None
                    } else {
                        let left = u64::try_from(start + window.seconds() - now).unwrap_or(1);
                        wait.map(|w| w.max(left.max(1)))
                    };
                } else {
                    updates.push((charge.dimension, &charge.key, window, start, total));
                }
            }
        }
        if let Some((dimension, window)) = refused {
            tx.rollback()?;
            return Ok(Charged::Exceeded {
                dimension,
                window,
                retry_after: wait,
            });
        }
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO budgets (dimension, key, span, start, used) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (dimension, key, span) DO UPDATE SET start = excluded.start, used = excluded.used",
            )?;
            for (dimension, key, window, start, used) in updates {
                upsert.execute(params![
                    dimension.name(),
                    key,
                    window.name(),
                    start,
                    i64::try_from(used).unwrap_or(i64::MAX)
                ])?;
            }
        }
        tx.commit()?;
        Ok(Charged::Booked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

    fn charge(dimension: Dimension, key: &str, per_minute: u64, per_day: u64) -> Charge {
        Charge {
            dimension,
            key: key.into(),
            limit: Limit {
                per_minute,
                per_day,
            },
        }
    }

    #[test]
    fn budgets_per_minute_and_day_all_or_nothing_and_persistent() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ttp.sqlite");
        let ledger = SqliteLedger::open(&db, 100).unwrap();
        let token = charge(Dimension::Credential, "token:1", 60, 600);
        let provider = charge(Dimension::Provider, "ura:00000001", 100, 1000);
        let both = [token.clone(), provider.clone()];
        assert_eq!(ledger.charge(&both, 50, T0 + 10).unwrap(), Charged::Booked);
        // 50 + 11 > 60: refused until the minute ends, and the provider's
        // budget is not booked either.
        assert_eq!(
            ledger.charge(&both, 11, T0 + 10).unwrap(),
            Charged::Exceeded {
                dimension: Dimension::Credential,
                window: Window::Minute,
                retry_after: Some(50)
            }
        );
        assert_eq!(
            ledger
                .charge(std::slice::from_ref(&provider), 50, T0 + 11)
                .unwrap(),
            Charged::Booked
        );
        assert!(matches!(
            ledger
                .charge(std::slice::from_ref(&provider), 1, T0 + 12)
                .unwrap(),
            Charged::Exceeded {
                dimension: Dimension::Provider,
                ..
            }
        ));
        // More than a limit in one go can never pass.
        assert!(matches!(
            ledger.charge(&both, 61, T0 + 12).unwrap(),
            Charged::Exceeded {
                retry_after: None,
                ..
            }
        ));
        drop(ledger);

        // Another process (or a restart) sees the same counts.
        let ledger = SqliteLedger::open(&db, 100).unwrap();
        assert!(matches!(
            ledger.charge(&both, 11, T0 + 20).unwrap(),
            Charged::Exceeded { .. }
        ));
        // A new minute: the minute budget is back, the day keeps counting.
        for minute in 1..=9 {
            assert_eq!(
                ledger
                    .charge(std::slice::from_ref(&token), 60, T0 + 60 * minute)
                    .unwrap(),
                Charged::Booked
            );
        }
        // 50 + 9·60 = 590 of 600 today: 11 more wait for the next UTC day.
        assert_eq!(
            ledger
                .charge(std::slice::from_ref(&token), 11, T0 + 600)
                .unwrap(),
            Charged::Exceeded {
                dimension: Dimension::Credential,
                window: Window::Day,
                retry_after: Some(86_400 - 600)
            }
        );
        assert_eq!(
            ledger.charge(&[token], 60, T0 + 86_400).unwrap(),
            Charged::Booked
        );
    }

    #[test]
    fn single_use_ids_expire_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("ttp.sqlite");
        let ledger = SqliteLedger::open(&db, 3).unwrap();
        let once = |issuer: &str, jti: &str, exp: i64, now: i64| {
            ledger
                .use_once(OnceKind::Proof, issuer, jti, exp, now)
                .unwrap()
        };
        assert_eq!(once("k1", "a", T0 + 60, T0), Once::Fresh);
        assert_eq!(once("k1", "a", T0 + 60, T0 + 1), Once::Replayed);
        // The same id of another key or kind is another id.
        assert_eq!(once("k2", "a", T0 + 60, T0), Once::Fresh);
        assert_eq!(
            ledger
                .use_once(OnceKind::ClientAssertion, "k1", "a", T0 + 60, T0)
                .unwrap(),
            Once::Fresh
        );
        // Full: no fourth id while three are unexpired.
        let third = "issuer-key-number-3";
        assert_eq!(once(third, "b", T0 + 60, T0 + 2), Once::Full);
        // Once they expire, they are swept and room is made.
        assert_eq!(once(third, "b", T0 + 200, T0 + 61), Once::Fresh);
        assert_eq!(
            once("k1", "a", T0 + 200, T0 + 62),
            Once::Fresh,
            "expired ids may come again"
        );
        // Nothing the caller chose is stored as such.
        drop(ledger);
        let mut bytes = std::fs::read(&db).unwrap();
        bytes.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
        assert!(!bytes.windows(third.len()).any(|w| w == third.as_bytes()));
    }
}
