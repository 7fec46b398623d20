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
//! `password_file` or [`super::PASSWORD_ENV`]. The string must say
//! `sslmode=require` (the server's certificate and host name verified
//! against the system's CA store), or `sslmode=disable` for a database on
//! the same machine; `prefer`, the default, would let anyone on the path
//! turn TLS off and read the password.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use openssl::ssl::{SslConnector, SslMethod};
use postgres::config::{Host, SslMode};
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

/// How far the replicas' clocks may differ, in seconds: a sweep keeps what
/// a replica whose clock runs this much behind still counts in.
const CLOCK_SKEW_SECONDS: i64 = 300;

/// Times a charge or an id is tried when PostgreSQL aborts it for a
/// deadlock or a serialization failure.
const ATTEMPTS: u32 = 3;

type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// The pool, dropped on a thread of its own: closing a sync client blocks on
/// its runtime, which panics on a thread that drives tasks (the server
/// drops its state there when it shuts down, and a failed start drops it
/// on the thread that opened it).
struct PoolHandle(Option<Pool>);

impl PoolHandle {
    fn get(&self) -> anyhow::Result<&Pool> {
        self.0
            .as_ref()
            .ok_or_else(|| anyhow!("the ledger's PostgreSQL pool is closed"))
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            // A panic there only loses the clean close of the connections.
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

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
    // Without TLS the password (and every count and id) would cross the
    // network in the clear, and with `prefer` (the default) anyone on the
    // path can answer "no TLS" and ask for the password as plain text: only
    // `require` is taken, or `disable` to the same machine.
    match config.get_ssl_mode() {
        SslMode::Require => {}
        SslMode::Disable if config.get_hosts().iter().all(is_local) => {}
        SslMode::Disable => bail!(
            "[ledger] url has sslmode=disable for a host on the network: use sslmode=require"
        ),
        _ => bail!(
            "[ledger] url must say sslmode=require (or sslmode=disable for a database on this machine)"
        ),
    }
    Ok(config)
}

/// Whether `host` is this machine: a Unix socket or a loopback address.
fn is_local(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    }
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

/// Whether the server had ended the connection's backend (shut down,
/// crashed, or ended by an operator) before it ran anything of this call:
/// safe to send again on another connection.
fn is_gone(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW
    )
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

type Connection = r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>;

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
        let pool = PoolHandle(Some(
            r2d2::Pool::builder()
                .max_size(config.pool_size)
                .min_idle(Some(1))
                .connection_timeout(Duration::from_secs(config.connect_timeout_seconds))
                .test_on_check_out(false)
                .connection_customizer(Box::new(Session {
                    durable_commits: config.durable_commits,
                }))
                .build(PostgresConnectionManager::new(pg, tls))
                .context("cannot connect to the ledger's PostgreSQL")?,
        ));
        migrate(pool.get()?)?;
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
    /// ([`is_gone`]): after a restart of the database every pooled
    /// connection is found so at its first use (the pool does not test one
    /// before lending it) and is dropped, so at most `pool_size` such
    /// retries come before a new one. A connection lost in the middle of a
    /// statement is not retried: it may have committed.
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
            let outcome = statements(&mut conn).and_then(|prepared| f(&mut conn, &prepared));
            match outcome {
                Err(e) if is_gone(&e) && closed <= pool.max_size() => {
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
