//! Connections to PostgreSQL, shared by the TTP's stores that may live
//! there: the ledger (`[ledger]`, [`crate::ledger::PostgresLedger`]) and the
//! key store (`[keys]`, [`crate::keys::KeyStore`]).
//!
//! One policy for both, so an operator learns it once:
//!
//! - the connection string may not carry a password: it comes from the
//!   section's `password_file` or its environment variable, and no message
//!   repeats the string (the parser's own message may quote it);
//! - the string must say `sslmode=require` (the server's certificate and
//!   host name verified against the system's CA store), or
//!   `sslmode=disable` for a database on the same machine (a Unix socket
//!   or a loopback address). `prefer`, PostgreSQL's default, would let
//!   anyone on the path answer "no TLS" and read the password;
//! - connections come from an `r2d2` pool, and the pool is dropped on a
//!   thread of its own ([`PoolHandle`]): the sync client blocks on a
//!   runtime of its own, which tokio forbids on a thread that drives tasks;
//! - migrations (`refinery`) run under an advisory lock, so replicas
//!   starting at once migrate once ([`migrate`]).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use openssl::ssl::{SslConnector, SslMethod};
use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres_openssl::MakeTlsConnector;
use r2d2_postgres::PostgresConnectionManager;
use zeroize::Zeroizing;

/// A pool of connections to one database.
pub(crate) type Pool = r2d2::Pool<PostgresConnectionManager<MakeTlsConnector>>;

/// A connection lent by a [`Pool`].
pub(crate) type Connection = r2d2::PooledConnection<PostgresConnectionManager<MakeTlsConnector>>;

/// Session settings a store puts on each new connection.
pub(crate) type Session = Box<dyn r2d2::CustomizeConnection<postgres::Client, postgres::Error>>;

/// A configuration section that may name a store's PostgreSQL database
/// (`[ledger]`, `[keys]`), as read: what both check and connect the same
/// way.
#[derive(Debug)]
pub(crate) struct Section<'a> {
    /// The section's name as the operator writes it (`[ledger]`, `[keys]`),
    /// for messages.
    pub name: &'static str,
    /// The connection string, if the section names a database.
    pub url: Option<&'a str>,
    /// The file with the password, if any.
    pub password_file: Option<&'a Path>,
    /// The environment variable with the password when there is no file.
    pub password_env: &'static str,
    /// Most connections the pool holds.
    pub pool_size: u32,
    /// The most `pool_size` may be.
    pub max_pool_size: u32,
    /// Seconds a caller waits for a connection.
    pub connect_timeout_seconds: u64,
}

impl Section<'_> {
    /// Checks what can be checked without the database.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        let name = self.name;
        if self.pool_size == 0 || self.pool_size > self.max_pool_size {
            bail!("{name} pool_size must be 1 to {}", self.max_pool_size);
        }
        if self.connect_timeout_seconds == 0 {
            bail!("{name} connect_timeout_seconds must be at least 1");
        }
        match self.url {
            Some(url) => connection_config(name, self.password_env, url).map(|_| ()),
            None if self.password_file.is_some() => {
                bail!("{name} password_file is set but there is no url")
            }
            None => Ok(()),
        }
    }
}

/// Resolves a relative password file of a section against `base` (the
/// configuration's folder).
pub(crate) fn resolve_password_file(file: &mut Option<PathBuf>, base: &Path) {
    if let Some(p) = file.as_mut() {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    }
}

/// Parses `url` of `section` as a connection string and checks the policy
/// of this module: no password in it, a host, a database, and TLS or the
/// same machine.
pub(crate) fn connection_config(
    section: &str,
    password_env: &str,
    url: &str,
) -> anyhow::Result<postgres::Config> {
    // The parser's message may quote the string, password and all: not shown.
    let config = postgres::Config::from_str(url)
        .map_err(|_| anyhow!("{section} url is not a PostgreSQL connection string"))?;
    if config.get_password().is_some() {
        bail!(
            "{section} url holds a password: give it in {section} password_file or {password_env}"
        );
    }
    if config.get_hosts().is_empty() {
        bail!("{section} url names no host");
    }
    if config.get_dbname().is_none() {
        bail!("{section} url names no database");
    }
    match config.get_ssl_mode() {
        SslMode::Require => {}
        // A `hostaddr` is where the client really connects, whatever the
        // host name says.
        SslMode::Disable
            if config.get_hosts().iter().all(is_local)
                && config.get_hostaddrs().iter().all(|ip| ip.is_loopback()) => {}
        SslMode::Disable => bail!(
            "{section} url has sslmode=disable for a host on the network: use sslmode=require"
        ),
        _ => bail!(
            "{section} url must say sslmode=require (or sslmode=disable for a database on this machine)"
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

/// The password of `section`: from its file or its environment variable,
/// or none.
fn password(section: &Section<'_>) -> anyhow::Result<Option<Zeroizing<String>>> {
    let (env_name, file) = (section.password_env, section.password_file);
    let env = std::env::var(env_name).ok().map(Zeroizing::new);
    let section = section.name;
    let text = match (file, env) {
        (Some(_), Some(_)) => {
            bail!("both {section} password_file and {env_name} are set; give the password one way")
        }
        (Some(path), None) => {
            let bytes = Zeroizing::new(pseudoform_protocol::secret_file::read(path).with_context(
                || {
                    format!(
                        "cannot read the password file of {section} {}",
                        path.display()
                    )
                },
            )?);
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| anyhow!("the password file of {section} is not text"))?;
            Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, Some(text)) => text,
        (None, None) => return Ok(None),
    };
    if text.is_empty() {
        bail!("the password of {section} is empty");
    }
    Ok(Some(text))
}

/// A pool to the database of `section`, each new connection set up by
/// `session`, with at least one connection made (so that a wrong address
/// or password fails here, at start).
pub(crate) fn pool(target: &Section<'_>, session: Session) -> anyhow::Result<PoolHandle> {
    let section = target.name;
    let url = target.url.ok_or_else(|| anyhow!("{section} has no url"))?;
    let mut pg = connection_config(section, target.password_env, url)?;
    if let Some(password) = password(target)? {
        pg.password(password.as_bytes());
    }
    pg.application_name("pseudoform-ttp");
    let tls = MakeTlsConnector::new(
        SslConnector::builder(SslMethod::tls())
            .with_context(|| format!("cannot set up TLS for {section}"))?
            .build(),
    );
    let pool = r2d2::Pool::builder()
        .max_size(target.pool_size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(target.connect_timeout_seconds))
        .test_on_check_out(false)
        .connection_customizer(session)
        .build(PostgresConnectionManager::new(pg, tls))
        .with_context(|| format!("cannot connect to the PostgreSQL of {section}"))?;
    Ok(PoolHandle(Some(pool)))
}

/// A pool, dropped on a thread of its own: closing a sync client blocks on
/// its runtime, which panics on a thread that drives tasks (the server
/// drops its state there when it shuts down, and a failed start drops it
/// on the thread that opened it).
pub(crate) struct PoolHandle(Option<Pool>);

impl PoolHandle {
    /// The pool, while it is open.
    pub(crate) fn get(&self) -> anyhow::Result<&Pool> {
        self.0
            .as_ref()
            .ok_or_else(|| anyhow!("the PostgreSQL pool is closed"))
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

/// Runs `f` where the sync client may block: here on a thread outside
/// tokio (the evaluation queue's workers, which read the key epoch for
/// every piece of work), else on a thread of its own, since the callers of
/// a store may be on a thread that drives tasks (the server's start, the
/// command line's `async` commands, a blocking-pool thread that cannot
/// tell).
pub(crate) fn off_runtime<T: Send>(
    what: &str,
    f: impl FnOnce() -> anyhow::Result<T> + Send,
) -> anyhow::Result<T> {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| s.spawn(f).join().map_err(|_| anyhow!("{what} panicked"))?)
}

/// Whether PostgreSQL aborted a transaction that may pass when tried again.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Whether the server had ended the connection's backend (shut down,
/// crashed, or ended by an operator) before it ran anything of this call:
/// safe to send again on another connection.
pub(crate) fn is_gone(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN || *c == SqlState::CANNOT_CONNECT_NOW
    )
}

/// Whether `e` says the connection `conn` is lost: the server ended its
/// backend ([`is_gone`]), or the socket failed (no SQL state) and the
/// client has closed it.
pub(crate) fn is_lost(e: &postgres::Error, conn: &Connection) -> bool {
    is_gone(e) || (e.code().is_none() && conn.is_closed())
}

/// Applies the migrations of `runner` that the database of `pool` lacks,
/// under the advisory lock `lock`, so that replicas starting together
/// migrate once; `what` names the store in messages.
pub(crate) fn migrate(
    pool: &Pool,
    lock: i64,
    runner: refinery::Runner,
    what: &str,
) -> anyhow::Result<()> {
    let mut conn = pool
        .get()
        .with_context(|| format!("cannot connect to the PostgreSQL of {what}"))?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&lock])
        .with_context(|| format!("cannot lock the schema of {what}"))?;
    let migrated = runner.set_grouped(true).run(&mut *conn);
    conn.execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .with_context(|| format!("cannot unlock the schema of {what}"))?;
    migrated
        .map(|_| ())
        .with_context(|| format!("cannot migrate the tables of {what}"))
}
