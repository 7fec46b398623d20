//! The shared ledger: one PostgreSQL database for every TTP replica.
//!
//! A charge is one transaction of one statement: an `INSERT … ON CONFLICT
//! DO UPDATE … WHERE` over every budget of the request, which books a row
//! only while it stays within its limit; when fewer rows come back than
//! were asked, the transaction is rolled back and nothing is booked. The
//! conflicting rows are locked in one fixed order (dimension, key, window),
//! so that two replicas charging the same budgets wait for each other
//! instead of deadlocking, and the check and the booking of a row happen
//! under its lock: two replicas can never both take the last evaluations
//! of a budget. A replica whose clock runs ahead does not reset a window
//! for the others: a row's window start only moves forward.
//!
//! A single-use id is one `INSERT … ON CONFLICT DO UPDATE … WHERE expired`:
//! it comes back only when the id was new (or its earlier use expired), so
//! the same proof presented at two replicas at once is accepted once.
//!
//! Each process sweeps expired ids and spent windows once a minute, and
//! counts the ids then; between sweeps it adds the ids it remembers itself,
//! so with replicas the bound on held ids (`replay_capacity`) is checked
//! against the count of the last sweep plus this process's own ids. A
//! deadlock or serialization failure (a sweep meeting a charge) is retried.
//!
//! The connection string may not carry a password: it comes from
//! `password_file` or [`super::PASSWORD_ENV`]. TLS follows the string's
//! `sslmode`; the server's certificate is verified against the system's
//! CA store.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use openssl::ssl::{SslConnector, SslMethod};
use postgres::error::SqlState;
use postgres_openssl::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;
use zeroize::Zeroizing;

use super::{
    once_key, Charge, Charged, Dimension, Ledger, LedgerConfig, Once, OnceKind, Refusals, Window,
    PASSWORD_ENV, SWEEP_SECONDS,
};

mod embedded {
    refinery::embed_migrations!("migrations/ledger/postgres");
}

/// The advisory lock replicas take while they migrate, so that three
/// starting at once do not all create the tables.
const MIGRATION_LOCK: i64 = 0x7073_6675_6c65_6467;

/// Times a charge or an id is tried when PostgreSQL aborts it for a
/// deadlock or a serialization failure.
const ATTEMPTS: u32 = 3;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// What this process knows of the ids held.
#[derive(Debug)]
struct Sweeps {
    /// Unexpired ids at the last sweep, plus those this process added since.
    remembered: u64,
    last_sweep: i64,
}

/// The ledger in a PostgreSQL database.
pub struct PostgresLedger {
    pool: Pool,
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

/// Parses `url` as a connection string, refusing one with a password.
pub(crate) fn connection_config(url: &str) -> anyhow::Result<postgres::Config> {
    // The parser's message may quote the string, password and all: not shown.
    let config = postgres::Config::from_str(url)
        .map_err(|_| anyhow!("[ledger] url is not a PostgreSQL connection string"))?;
    if config.get_password().is_some() {
        bail!("[ledger] url holds a password: give it in [ledger] password_file or {PASSWORD_ENV}");
    }
    if config.get_hosts().is_empty() {
        bail!("[ledger] url names no host");
    }
    if config.get_dbname().is_none() {
        bail!("[ledger] url names no database");
    }
    Ok(config)
}

/// The password of `config`: from its file or the environment, or none.
fn password(config: &LedgerConfig) -> anyhow::Result<Option<Zeroizing<String>>> {
    let env = std::env::var(PASSWORD_ENV).ok().map(Zeroizing::new);
    let text = match (&config.password_file, env) {
        (Some(_), Some(_)) => {
            bail!(
                "both [ledger] password_file and {PASSWORD_ENV} are set; give the password one way"
            )
        }
        (Some(path), None) => {
            let bytes = Zeroizing::new(pseudoform_protocol::secret_file::read(path).with_context(
                || format!("cannot read the ledger's password file {}", path.display()),
            )?);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow!("the ledger's password file is not text"))?;
            Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, Some(text)) => text,
        (None, None) => return Ok(None),
    };
    if text.is_empty() {
        bail!("the ledger's password is empty");
    }
    Ok(Some(text))
}

/// Whether PostgreSQL aborted a transaction that may pass when tried again.
fn is_transient(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Runs `f` up to [`ATTEMPTS`] times while it fails transiently.
fn retrying<T>(mut f: impl FnMut() -> Result<T, postgres::Error>) -> anyhow::Result<T> {
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if attempt < ATTEMPTS && is_transient(&e) => attempt += 1,
            other => return other.context("the ledger's PostgreSQL failed"),
        }
    }
}

impl PostgresLedger {
    /// Connects to the database of `config.url` (a pool of at most
    /// `pool_size` connections), migrates it, and holds at most `capacity`
    /// unexpired single-use ids.
    pub fn open(config: &LedgerConfig, capacity: u64) -> anyhow::Result<Self> {
        let url = config
            .url
            .as_deref()
            .ok_or_else(|| anyhow!("[ledger] has no url"))?;
        let mut pg = connection_config(url)?;
        if let Some(password) = password(config)? {
            pg.password(password.as_bytes());
        }
        pg.application_name("pseudoform-ttp");
        let tls = MakeTlsConnector::new(
            SslConnector::builder(SslMethod::tls())
                .context("cannot set up TLS for the ledger")?
                .build(),
        );
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(config.connect_timeout_seconds))
            .build(PostgresConnectionManager::new(pg, tls))
            .context("cannot connect to the ledger's PostgreSQL")?;
        // The sync client blocks on a runtime of its own, which tokio
        // forbids on a thread that drives tasks (the server opens its
        // ledger from `serve`): the migration runs on a thread of its own.
        // The ledger's calls later run on the blocking pool, where it may.
        std::thread::scope(|s| {
            s.spawn(|| migrate(&pool))
                .join()
                .map_err(|_| anyhow!("the ledger's migration panicked"))?
        })?;
        Ok(PostgresLedger {
            pool,
            sweeps: Mutex::new(Sweeps {
                remembered: 0,
                last_sweep: i64::MIN / 2,
            }),
            capacity,
        })
    }

    fn connection(
        &self,
    ) -> anyhow::Result<r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>> {
        self.pool
            .get()
            .context("no connection to the ledger's PostgreSQL")
    }

    /// Sweeps when a minute has passed since the last sweep, or when `full`
    /// says the count must be refreshed; returns the ids held.
    fn sweep_if_due(&self, now: i64, full: bool) -> anyhow::Result<u64> {
        let mut sweeps = self
            .sweeps
            .lock()
            .map_err(|_| anyhow!("ledger lock poisoned"))?;
        if now - sweeps.last_sweep < SWEEP_SECONDS && !(full && sweeps.remembered >= self.capacity)
        {
            return Ok(sweeps.remembered);
        }
        let mut conn = self.connection()?;
        let count = retrying(|| {
            let mut tx = conn.transaction()?;
            tx.execute("DELETE FROM single_use WHERE expires_at < $1", &[&now])?;
            tx.execute(
                "DELETE FROM budgets WHERE (span = 'minute' AND start < $1) OR (span = 'day' AND start < $2)",
                &[&Window::Minute.start(now), &Window::Day.start(now)],
            )?;
            let count: i64 = tx.query_one("SELECT COUNT(*) FROM single_use", &[])?.get(0);
            tx.commit()?;
            Ok(count)
        })?;
        sweeps.remembered = u64::try_from(count).unwrap_or(0);
        sweeps.last_sweep = now;
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

/// Applies the ledger's migrations that `pool`'s database lacks, under an
/// advisory lock, so that replicas starting together migrate once.
fn migrate(pool: &Pool) -> anyhow::Result<()> {
    let mut conn = pool
        .get()
        .context("cannot connect to the ledger's PostgreSQL")?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .context("cannot lock the ledger's schema")?;
    let migrated = embedded::migrations::runner()
        .set_grouped(true)
        .run(&mut *conn);
    conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .context("cannot unlock the ledger's schema")?;
    migrated
        .map(|_| ())
        .context("cannot migrate the ledger's tables")
}

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
        let mut conn = self.connection()?;
        if held >= self.capacity {
            // Full: only an expired use of this very id may be renewed.
            let seen: Option<i64> = retrying(|| {
                conn.query_opt("SELECT expires_at FROM single_use WHERE id = $1", &[&key])
                    .map(|row| row.map(|r| r.get(0)))
            })?;
            match seen {
                Some(expiry) if expiry >= now => return Ok(Once::Replayed),
                None => return Ok(Once::Full),
                Some(_) => {}
            }
        }
        let expires_at = expires_at.max(now);
        let stored = retrying(|| {
            conn.query_opt(
                "INSERT INTO single_use (id, expires_at) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE single_use.expires_at < $3
                 RETURNING (xmax = 0) AS inserted",
                &[&key, &expires_at, &now],
            )
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
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let mut conn = self.connection()?;
        let booked: Vec<(String, String, String)> = retrying(|| {
            let mut tx = conn.transaction()?;
            let booked: Vec<(String, String, String)> = tx
                .query(
                    "WITH asked AS (
                         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
                             WITH ORDINALITY AS a (dimension, key, span, start, ceiling, position)
                     )
                     INSERT INTO budgets AS b (dimension, key, span, start, used)
                     SELECT dimension, key, span, start, $6 FROM asked ORDER BY position
                     ON CONFLICT (dimension, key, span) DO UPDATE SET
                         start = GREATEST(b.start, excluded.start),
                         used = CASE WHEN b.start >= excluded.start THEN b.used + excluded.used ELSE excluded.used END
                     WHERE (CASE WHEN b.start >= excluded.start THEN b.used ELSE 0 END) + excluded.used
                         <= (SELECT a.ceiling FROM asked a
                             WHERE a.dimension = b.dimension AND a.key = b.key AND a.span = b.span)
                     RETURNING b.dimension, b.key, b.span",
                    &[&dimensions, &keys, &spans, &starts, &limits, &n],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            if booked.len() == asked.len() {
                tx.commit()?;
            } else {
                tx.rollback()?;
            }
            Ok(booked)
        })?;
        if booked.len() == asked.len() {
            return Ok(Charged::Booked);
        }
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        let mut refusals = Refusals::new();
        for row in &rows {
            let was_booked = booked.iter().any(|(d, k, s)| {
                d == row.dimension.name() && k == row.key && s == row.window.name()
            });
            if !was_booked {
                refusals.refuse(row.dimension, row.window, row.limit, n, now);
            }
        }
        refusals
            .outcome()
            .ok_or_else(|| anyhow!("the ledger booked fewer budgets than it was asked"))
    }
}
