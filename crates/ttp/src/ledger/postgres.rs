//! The shared ledger: one PostgreSQL database for every TTP replica.
//!
//! A charge is one statement, its own transaction: an `INSERT … ON
//! CONFLICT DO UPDATE` over every budget of the request that adds the
//! evaluations and stores each row's limit beside its count, under the
//! table's check `used <= ceiling`. When any budget would go over, the
//! check fails the statement and nothing is booked; a second query then
//! reads which budgets refused, for the answer. The conflicting rows are
//! locked in one fixed order (dimension, key, window), so that two replicas
//! charging the same budgets wait for each other instead of deadlocking,
//! and the check and the booking happen under the rows' locks: two replicas
//! can never both take the last evaluations of a budget. The locks are held
//! for the statement only, never across a round trip to the replica, so a
//! budget every request shares (a recipient's) is not a queue.
//!
//! Replicas' clocks may differ. A row's window start only moves forward, so
//! a replica whose clock runs behind counts in the window the others are
//! in, and one that runs ahead opens the next window early by its lead,
//! never reopens an old one; a sweep keeps ids and windows for
//! [`CLOCK_SKEW_SECONDS`] past their end by the sweeping replica's clock,
//! so that a fast replica never deletes what a slow one still counts.
//!
//! A single-use id is one `INSERT … ON CONFLICT DO UPDATE … WHERE expired`:
//! it comes back only when the id was new (or its earlier use expired), so
//! the same proof presented at two replicas at once is accepted once.
//!
//! Each process sweeps expired ids and spent windows once a minute, and
//! counts the ids then; between sweeps it adds the ids it remembers itself,
//! so with replicas the bound on held ids (`replay_capacity`) is checked
//! against the count of the last sweep plus this process's own ids: the
//! table can pass it by what the other replicas added within a minute. A
//! deadlock or serialization failure (a sweep meeting a charge) is retried.
//!
//! Like the SQLite ledger's `synchronous = NORMAL`, its commits do not
//! wait for the WAL flush (`synchronous_commit = off` on its sessions, set
//! when a connection is made), unless `durable_commits` is set: a crash of
//! a replica loses nothing, a crash of the database server at most its
//! last fraction of a second of counts and ids (`wal_writer_delay`), never
//! its consistency. A single request's commit then costs no disk flush.
//!
//! The connection string may not carry a password: it comes from
//! `password_file` or [`super::PASSWORD_ENV`]; it must say TLS or the same
//! machine ([`crate::pg`], the policy of every PostgreSQL store of the TTP).

use std::sync::Mutex;

use anyhow::{anyhow, Context};

use super::{
    once_key, Charge, Charged, Dimension, Ledger, LedgerConfig, Once, OnceKind, Refusals, Window,
    SWEEP_SECONDS,
};
use crate::pg::{self, is_lost, is_transient, Connection, PoolHandle};
use postgres::error::SqlState;

mod embedded {
    refinery::embed_migrations!("migrations/ledger/postgres");
}

/// The advisory lock replicas take while they migrate, so that three
/// starting at once do not all create the tables.
const MIGRATION_LOCK: i64 = 0x7073_6675_6c65_6467;

/// How far the replicas' clocks may differ, in seconds: a sweep keeps what
/// a replica whose clock runs this much behind still counts in.
const CLOCK_SKEW_SECONDS: i64 = 300;

/// Times a charge or an id is tried when PostgreSQL aborts it for a
/// deadlock or a serialization failure.
const ATTEMPTS: u32 = 3;

/// Sets the ledger's session settings on each new connection.
#[derive(Debug)]
struct Session {
    durable_commits: bool,
}

impl r2d2::CustomizeConnection<postgres::Client, postgres::Error> for Session {
    fn on_acquire(&self, conn: &mut postgres::Client) -> Result<(), postgres::Error> {
        // A lock or a statement that hangs fails the request (500) instead
        // of holding a worker thread.
        conn.batch_execute("SET lock_timeout = '2s'; SET statement_timeout = '5s'")?;
        if !self.durable_commits {
            conn.batch_execute("SET synchronous_commit = off")?;
        }
        Ok(())
    }
}

/// What this process knows of the ids held.
#[derive(Debug)]
struct Sweeps {
    /// Ids held at the last sweep, plus those this process added since.
    remembered: u64,
    last_sweep: i64,
    /// The last sweep made because the ids seemed to fill the capacity.
    last_forced: i64,
}

/// The ledger in a PostgreSQL database.
pub struct PostgresLedger {
    pool: PoolHandle,
    sweeps: Mutex<Sweeps>,
    capacity: u64,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password: never printed.
        f.debug_struct("PostgresLedger")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// The ledger's statements, as text; prepared once per connection
/// ([`Statements`]).
const CHARGE: &str = "INSERT INTO budgets AS b (dimension, key, span, start, used, ceiling)
     SELECT a.dimension, a.key, a.span, a.start, $6, a.ceiling
     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
         WITH ORDINALITY AS a (dimension, key, span, start, ceiling, position)
     ORDER BY a.position
     ON CONFLICT (dimension, key, span) DO UPDATE SET
         start = GREATEST(b.start, excluded.start),
         used = CASE WHEN b.start >= excluded.start THEN b.used + excluded.used ELSE excluded.used END,
         ceiling = excluded.ceiling";
const STANDING: &str = "SELECT b.dimension, b.key, b.span, b.start, b.used
     FROM budgets b
     JOIN unnest($1::text[], $2::text[], $3::text[]) AS a (dimension, key, span)
         USING (dimension, key, span)";
const SEEN: &str = "SELECT expires_at FROM single_use WHERE id = $1";
const USE_ONCE: &str = "INSERT INTO single_use (id, expires_at) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
     WHERE single_use.expires_at < $3
     RETURNING (xmax = 0) AS inserted";

/// The statements of one connection, prepared at its first use and kept
/// with it in the pool: a charge or an id is then one round trip.
#[derive(Clone)]
struct Statements {
    charge: postgres::Statement,
    standing: postgres::Statement,
    seen: postgres::Statement,
    use_once: postgres::Statement,
}

fn statements(conn: &mut Connection) -> Result<Statements, postgres::Error> {
    if let Some(prepared) = r2d2::PooledConnection::extensions(conn).get::<Statements>() {
        return Ok(prepared.clone());
    }
    let prepared = Statements {
        charge: conn.prepare(CHARGE)?,
        standing: conn.prepare(STANDING)?,
        seen: conn.prepare(SEEN)?,
        use_once: conn.prepare(USE_ONCE)?,
    };
    r2d2::PooledConnection::extensions_mut(conn).insert(prepared.clone());
    Ok(prepared)
}

impl PostgresLedger {
    /// Connects to the database of `config.url` (a pool of at most
    /// `pool_size` connections), migrates it, and holds at most `capacity`
    /// unexpired single-use ids.
    ///
    /// The sync client blocks on a runtime of its own, which tokio forbids
    /// on a thread that drives tasks (the server opens its ledger from
    /// `serve`): the connecting and migrating run on a thread of their own.
    /// The ledger's calls later run on the blocking pool, where it may.
    pub fn open(config: &LedgerConfig, capacity: u64) -> anyhow::Result<Self> {
        std::thread::scope(|s| {
            s.spawn(|| PostgresLedger::connect(config, capacity))
                .join()
                .map_err(|_| anyhow!("opening the ledger's PostgreSQL panicked"))?
        })
    }

    fn connect(config: &LedgerConfig, capacity: u64) -> anyhow::Result<Self> {
        let pool = pg::pool(
            &config.section(),
            Box::new(Session {
                durable_commits: config.durable_commits,
            }),
        )?;
        pg::migrate(
            pool.get()?,
            MIGRATION_LOCK,
            embedded::migrations::runner(),
            "the ledger",
        )?;
        Ok(PostgresLedger {
            pool,
            sweeps: Mutex::new(Sweeps {
                remembered: 0,
                last_sweep: i64::MIN / 2,
                last_forced: i64::MIN / 2,
            }),
            capacity,
        })
    }

    /// Runs `f` on a pooled connection with its prepared statements, up to
    /// [`ATTEMPTS`] times while it fails transiently (a deadlock or a
    /// serialization failure), and again on another connection when the
    /// server had ended this one's backend before the statement came
    /// ([`is_gone`]), or the connection was lost (reset): after a restart of
    /// the database every pooled connection is found so at its first use
    /// (the pool does not test one before lending it) and is dropped, so at
    /// most `pool_size` such retries come before a new one. Whether the
    /// client reads the server's goodbye or meets a reset socket is a race
    /// of the kernel's, and a reset may also come after the statement
    /// committed: the retry may then book a charge twice (the caller loses
    /// that much budget) or find its own id used (the request is refused
    /// and the client retries with a fresh proof). Both fail closed; none
    /// lets a request through that should not pass.
    fn with_connection<T>(
        &self,
        mut f: impl FnMut(&mut postgres::Client, &Statements) -> Result<T, postgres::Error>,
    ) -> anyhow::Result<T> {
        let mut attempt = 1;
        let mut closed = 0;
        loop {
            let pool = self.pool.get()?;
            let mut conn = pool
                .get()
                .context("no connection to the ledger's PostgreSQL")?;
            // A connection whose end the client has already seen (the
            // server ended it while it was idle in the pool) is dropped
            // before anything is sent on it.
            if conn.is_closed() && closed <= pool.max_size() {
                closed += 1;
                continue;
            }
            let outcome = statements(&mut conn).and_then(|prepared| f(&mut conn, &prepared));
            match outcome {
                Err(e) if is_lost(&e, &conn) && closed <= pool.max_size() => {
                    closed += 1;
                }
                Err(e) if attempt < ATTEMPTS && is_transient(&e) => attempt += 1,
                other => return other.context("the ledger's PostgreSQL failed"),
            }
        }
    }

    /// Sweeps when a minute has passed since the last sweep, or when `full`
    /// says the count must be refreshed (at most once a second); returns
    /// the ids held. The lock is not held while the database sweeps.
    fn sweep_if_due(&self, now: i64, full: bool) -> anyhow::Result<u64> {
        {
            let mut sweeps = self
                .sweeps
                .lock()
                .map_err(|_| anyhow!("ledger lock poisoned"))?;
            let due = now - sweeps.last_sweep >= SWEEP_SECONDS;
            let forced = full && sweeps.remembered >= self.capacity && now > sweeps.last_forced;
            if !due && !forced {
                return Ok(sweeps.remembered);
            }
            // The others go on meanwhile, on the count they have.
            sweeps.last_forced = now;
            if due {
                sweeps.last_sweep = now;
            }
        }
        // Another replica's clock may run behind: what it still counts in
        // (an id not yet expired, a window not yet over by its clock) is
        // kept for CLOCK_SKEW_SECONDS more.
        let then = now - CLOCK_SKEW_SECONDS;
        let count = self.with_connection(|conn, _| {
            let mut tx = conn.transaction()?;
            tx.execute("DELETE FROM single_use WHERE expires_at < $1", &[&then])?;
            tx.execute(
                "DELETE FROM budgets WHERE (span = 'minute' AND start < $1) OR (span = 'day' AND start < $2)",
                &[&Window::Minute.start(then), &Window::Day.start(then)],
            )?;
            let count: i64 = tx.query_one("SELECT COUNT(*) FROM single_use", &[])?.get(0);
            tx.commit()?;
            Ok(count)
        })?;
        let mut sweeps = self
            .sweeps
            .lock()
            .map_err(|_| anyhow!("ledger lock poisoned"))?;
        sweeps.remembered = u64::try_from(count).unwrap_or(0);
        Ok(sweeps.remembered)
    }

    fn remember(&self) -> anyhow::Result<()> {
        let mut sweeps = self
            .sweeps
            .lock()
            .map_err(|_| anyhow!("ledger lock poisoned"))?;
        sweeps.remembered += 1;
        Ok(())
    }
}

/// A budget as it stands: dimension, key, window, window start, count.
type Standing = (String, String, String, i64, i64);

/// One row a charge books: a budget in one window.
struct Row<'a> {
    dimension: Dimension,
    key: &'a str,
    window: Window,
    limit: u64,
}

impl Ledger for PostgresLedger {
    fn use_once(
        &self,
        kind: OnceKind,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> anyhow::Result<Once> {
        let held = self.sweep_if_due(now, true)?;
        let key = once_key(kind, issuer, jti);
        let key = key.as_slice();
        if held >= self.capacity {
            // Full: only an expired use of this very id may be renewed.
            let seen: Option<i64> = self.with_connection(|conn, st| {
                conn.query_opt(&st.seen, &[&key])
                    .map(|row| row.map(|r| r.get(0)))
            })?;
            match seen {
                Some(expiry) if expiry >= now => return Ok(Once::Replayed),
                None => return Ok(Once::Full),
                Some(_) => {}
            }
        }
        let expires_at = expires_at.max(now);
        let stored = self.with_connection(|conn, st| {
            conn.query_opt(&st.use_once, &[&key, &expires_at, &now])
                .map(|row| row.map(|r| r.get::<_, bool>(0)))
        })?;
        match stored {
            None => Ok(Once::Replayed),
            Some(inserted) => {
                if inserted {
                    self.remember()?;
                }
                Ok(Once::Fresh)
            }
        }
    }

    fn charge(&self, charges: &[Charge], n: u64, now: i64) -> anyhow::Result<Charged> {
        self.sweep_if_due(now, false)?;
        let rows: Vec<Row<'_>> = charges
            .iter()
            .flat_map(|c| {
                [
                    (Window::Minute, c.limit.per_minute),
                    (Window::Day, c.limit.per_day),
                ]
                .map(|(window, limit)| Row {
                    dimension: c.dimension,
                    key: c.key.as_str(),
                    window,
                    limit,
                })
            })
            .collect();
        // More than a limit in one go never passes: no need to ask.
        let mut too_many = Refusals::new();
        for row in rows.iter().filter(|r| n > r.limit) {
            too_many.refuse(row.dimension, row.window, row.limit, n, now);
        }
        if let Some(refused) = too_many.outcome() {
            return Ok(refused);
        }
        // Each budget once (the smallest limit if one came twice), in the
        // order the rows are locked.
        let mut asked: Vec<&Row<'_>> = rows.iter().collect();
        asked.sort_by(|a, b| {
            (a.dimension.name(), a.key, a.window.name(), a.limit).cmp(&(
                b.dimension.name(),
                b.key,
                b.window.name(),
                b.limit,
            ))
        });
        asked.dedup_by(|b, a| a.dimension == b.dimension && a.key == b.key && a.window == b.window);
        let dimensions: Vec<&str> = asked.iter().map(|r| r.dimension.name()).collect();
        let keys: Vec<&str> = asked.iter().map(|r| r.key).collect();
        let spans: Vec<&str> = asked.iter().map(|r| r.window.name()).collect();
        let starts: Vec<i64> = asked.iter().map(|r| r.window.start(now)).collect();
        let limits: Vec<i64> = asked
            .iter()
            .map(|r| i64::try_from(r.limit).unwrap_or(i64::MAX))
            .collect();
        let count = i64::try_from(n).unwrap_or(i64::MAX);
        for _ in 0..ATTEMPTS {
            // One statement, its own transaction: every row booked, or the
            // `used <= ceiling` check fails and none is; then which budgets
            // refused, as they stand now (for the answer only: the decision
            // was the statement's).
            let standing: Option<Vec<Standing>> = self.with_connection(|conn, st| {
                match conn.execute(
                    &st.charge,
                    &[&dimensions, &keys, &spans, &starts, &limits, &count],
                ) {
                    Ok(_) => return Ok(None),
                    Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {}
                    Err(e) => return Err(e),
                }
                let found = conn.query(&st.standing, &[&dimensions, &keys, &spans])?;
                Ok(Some(
                    found
                        .iter()
                        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                        .collect(),
                ))
            })?;
            let Some(standing) = standing else {
                return Ok(Charged::Booked);
            };
            let mut refusals = Refusals::new();
            for row in &rows {
                let used = standing
                    .iter()
                    .find(|(d, k, s, _, _)| {
                        d == row.dimension.name() && k == row.key && s == row.window.name()
                    })
                    .filter(|(_, _, _, start, _)| *start >= row.window.start(now))
                    .map_or(0, |(_, _, _, _, used)| u64::try_from(*used).unwrap_or(0));
                if used.saturating_add(n) > row.limit {
                    refusals.refuse(row.dimension, row.window, row.limit, n, now);
                }
            }
            if let Some(refused) = refusals.outcome() {
                return Ok(refused);
            }
            // Room was made between the two statements (a new window, a
            // sweep): try again.
        }
        Err(anyhow!(
            "the ledger's PostgreSQL kept refusing a charge it had room for"
        ))
    }
}
