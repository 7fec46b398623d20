//! The TTP's persistent counters, shared by every process on one store:
//! single-use ids (the `jti` of client assertions, subject tokens and DPoP
//! proofs, each remembered until it expires) and budgets (evaluations per
//! credential, person, provider and recipient, per UTC minute and day).
//!
//! [`Ledger`] is the small interface the handlers use. Two stores implement
//! it, chosen by `[ledger]` in the configuration ([`LedgerConfig`]):
//!
//! - [`SqliteLedger`] ([`sqlite`]), the embedded default: a file next to
//!   the TTP database, shared by the processes of one machine;
//! - [`PostgresLedger`] ([`postgres`]): one PostgreSQL database shared by
//!   TTP replicas behind a load balancer, so that a caller cannot multiply
//!   its budget by the number of replicas, nor replay an id at another one.
//!
//! Every call is atomic on both: a charge checks every budget and books all
//! of them, or none. Both schemas are migrations (`refinery`, the files in
//! `crates/ttp/migrations/ledger/`), applied when the ledger opens. Both
//! store a single-use id only as 16 bytes of SHA-256 ([`once_key`]), and a
//! budget under its dimension and key (a client id, a token's `jti`,
//! `provider|person` as pseudonymous ids of the caller, never a patient).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Limit;

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresLedger;
pub use sqlite::{ledger_path, SqliteLedger};

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
    pub(crate) fn name(self) -> &'static str {
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
    pub(crate) const fn seconds(self) -> i64 {
        match self {
            Window::Minute => 60,
            Window::Day => 86_400,
        }
    }

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Day => "day",
        }
    }

    /// The start of the window that holds `now`.
    pub(crate) fn start(self, now: i64) -> i64 {
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

/// How often a ledger sweeps expired ids and spent windows, in seconds.
pub(crate) const SWEEP_SECONDS: i64 = 60;

/// Environment variable holding the PostgreSQL password of `[ledger]` when
/// it names no `password_file`.
pub const PASSWORD_ENV: &str = "PSEUDOFORM_TTP_LEDGER_PASSWORD";

/// `[ledger]`: where the budgets and single-use ids are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// A PostgreSQL connection string (`postgresql://user@host:port/db?sslmode=require`:
    /// TLS, the server verified against the system's CA store;
    /// `sslmode=disable` only for a database on this machine) shared by
    /// every replica. Without one, the SQLite file next to the
    /// TTP database ([`ledger_path`]). It may not hold a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// File with the PostgreSQL password, which only its owner may read.
    /// When absent the password is read from [`PASSWORD_ENV`], if set;
    /// giving both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Most connections a process holds open to PostgreSQL.
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Seconds a request waits for a free connection (or a new one) before
    /// it fails.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
    /// Whether each commit waits for PostgreSQL's WAL flush. Default off,
    /// as the SQLite ledger's `synchronous = NORMAL`: a crash of the
    /// database server may lose its last fraction of a second of counts
    /// and ids, and a single request's commit costs no disk flush.
    #[serde(default)]
    pub durable_commits: bool,
}

fn default_pool_size() -> u32 {
    8
}

fn default_connect_timeout() -> u64 {
    5
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            url: None,
            password_file: None,
            pool_size: default_pool_size(),
            connect_timeout_seconds: default_connect_timeout(),
            durable_commits: false,
        }
    }
}

impl LedgerConfig {
    /// Resolves a relative `password_file` against `base` (the
    /// configuration's folder).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        crate::pg::resolve_password_file(&mut self.password_file, base);
    }

    /// The section as the PostgreSQL stores read it.
    pub(crate) fn section(&self) -> crate::pg::Section<'_> {
        crate::pg::Section {
            name: "[ledger]",
            url: self.url.as_deref(),
            password_file: self.password_file.as_deref(),
            password_env: PASSWORD_ENV,
            pool_size: self.pool_size,
            max_pool_size: 256,
            connect_timeout_seconds: self.connect_timeout_seconds,
        }
    }

    /// Checks what can be checked without the database.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.section().validate()
    }
}

/// Opens the ledger `config` names: PostgreSQL at its `url`, or else the
/// SQLite file next to the TTP database at `database`; at most `capacity`
/// unexpired single-use ids are held.
pub fn open(
    config: &LedgerConfig,
    database: &std::path::Path,
    capacity: u64,
) -> anyhow::Result<std::sync::Arc<dyn Ledger>> {
    Ok(match &config.url {
        Some(_) => std::sync::Arc::new(PostgresLedger::open(config, capacity)?),
        None => std::sync::Arc::new(SqliteLedger::open(&ledger_path(database), capacity)?),
    })
}

/// The stored form of a single-use id: 16 bytes of SHA-256 over kind,
/// issuer and id (nothing a caller chose is stored as such).
pub(crate) fn once_key(kind: OnceKind, issuer: &str, jti: &str) -> [u8; 16] {
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

/// The budgets of one charge that refused, folded into its outcome the same
/// way by every store: the first refusal names the budget, and the wait is
/// until every refusing window has ended (none when `n` alone is over a
/// limit).
#[derive(Debug)]
pub(crate) struct Refusals {
    first: Option<(Dimension, Window)>,
    wait: Option<u64>,
}

impl Refusals {
    pub(crate) fn new() -> Self {
        Refusals {
            first: None,
            wait: Some(0),
        }
    }

    /// Notes that `window` of `dimension` (of `limit`) cannot take `n` more at `now`.
    pub(crate) fn refuse(
        &mut self,
        dimension: Dimension,
        window: Window,
        limit: u64,
        n: u64,
        now: i64,
    ) {
        self.first.get_or_insert((dimension, window));
        self.wait = if n > limit {
            None
        } else {
            let left = u64::try_from(window.start(now) + window.seconds() - now).unwrap_or(1);
            self.wait.map(|w| w.max(left.max(1)))
        };
    }

    /// The refusal, if any budget refused.
    pub(crate) fn outcome(self) -> Option<Charged> {
        self.first.map(|(dimension, window)| Charged::Exceeded {
            dimension,
            window,
            retry_after: self.wait,
        })
    }
}
