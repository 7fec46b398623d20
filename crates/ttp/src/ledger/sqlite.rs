//! The embedded ledger: a SQLite file of its own next to the TTP database
//! ([`ledger_path`]: `ttp.sqlite` → `ttp.ledger.sqlite`), shared by the
//! processes of one machine.
//!
//! It is a file of its own so that its commit per request never waits for
//! the audit writer's write lock on the main database (each audit commit is
//! fsynced and signed): on one file the two writers took turns through
//! SQLite's busy handler, which sleeps milliseconds at a time while the
//! ledger's lock is held, and the TTP served less than half the requests
//! per second. It writes with `synchronous = NORMAL` (WAL): a crash of the
//! process loses nothing, a power failure at most the last moments of
//! counts. It is bounded: expired ids and spent windows are swept every
//! minute, and at most `replay_capacity` ids are held at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{once_key, Charge, Charged, Ledger, Once, OnceKind, Refusals, Window, SWEEP_SECONDS};
use crate::keys::open_database;

mod embedded {
    refinery::embed_migrations!("migrations/ledger/sqlite");
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    /// Unexpired ids, as of the last sweep plus those added since.
    remembered: u64,
    last_sweep: i64,
}

/// The ledger in a SQLite file.
#[derive(Debug)]
pub struct SqliteLedger {
    inner: Mutex<Inner>,
    capacity: u64,
}

/// The ledger's database file for the TTP database at `database`: the same
/// name with `.ledger.sqlite` for its extension, in the same folder (every
/// process on one TTP database finds the same ledger).
pub fn ledger_path(database: &Path) -> PathBuf {
    database.with_extension("ledger.sqlite")
}

impl SqliteLedger {
    /// Opens (and if needed creates, owner-only, and migrates) the ledger
    /// database at `path`, holding at most `capacity` unexpired single-use
    /// ids.
    pub fn open(path: &Path, capacity: u64) -> anyhow::Result<Self> {
        let mut conn = open_database(path)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        embedded::migrations::runner()
            .run(&mut conn)
            .context("cannot migrate the ledger's tables")?;
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
        let mut refusals = Refusals::new();
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
                    refusals.refuse(charge.dimension, window, limit, n, now);
                } else {
                    updates.push((charge.dimension, &charge.key, window, start, total));
                }
            }
        }
        if let Some(refused) = refusals.outcome() {
            tx.rollback()?;
            return Ok(refused);
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
