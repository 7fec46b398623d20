//! OPRF keys per key domain `(organisation, scope)`, versioned, encrypted at
//! rest, and cached decrypted in memory.
//!
//! - The rows are kept by one of two stores ([`KeyRows`]): the TTP's SQLite
//!   database ([`sqlite`], the default) or PostgreSQL (`[keys] url`,
//!   [`postgres`], shared by replicas on several machines). The policy
//!   below and the encryption are this module's, the same on both; each
//!   change is one transaction of the store.
//! - Each version's 32-byte scalar is stored encrypted with
//!   AES-256-GCM under the master key, with a random 96-bit nonce and the
//!   associated data `pseudoform-ttp/oprf-key/v1|{org}|{scope}|{version}`, so
//!   a ciphertext moved to another domain or version does not decrypt.
//! - The **current** version is the highest active one; older active
//!   versions are still evaluated (into `extra_versions`) until retired.
//!   Retiring destroys the ciphertext: a retired version can never be used
//!   again, and its number is never reused.
//! - The first version of a configured recipient is made on first use,
//!   with the domain's **binding key** (32 random bytes, encrypted the same
//!   way with the associated data `pseudoform-ttp/binding-key/v1|{org}|{scope}`,
//!   never rotated) from which the MRN provider factors are derived
//!   ([`crate::binding`]).
//! - Every change (a version made, imported or retired, a binding key made)
//!   bumps one **key epoch** in the same transaction. [`KeyCache`] keeps
//!   decrypted keys ([`ServerKey`] wipes itself on drop) and reads the
//!   epoch — one indexed row — before every use: a `rotate` or `retire` by
//!   the CLI takes effect at the next request on every server that shares
//!   the store.
//! - `retire` refuses the current version, and an older one until it has
//!   been superseded for the retire window
//!   ([`crate::TtpConfig::retire_window_seconds`]: the JWE lifetime, the
//!   request timeout and the registries' clock skew): until then a request
//!   in flight may still evaluate it as current, and JWEs that carry it
//!   alone may still reach a registry. Within the window the registries
//!   re-key to the new version (`pseudoform-registry rekey`); after it,
//!   nothing new arrives under the old one.
//! - Retiring on SQLite runs with `secure_delete` and checkpoints the WAL,
//!   so the retired ciphertext is overwritten in the database file and gone
//!   from the log; on PostgreSQL it rewrites the table, and what the
//!   server wrote before (WAL, backups) is sealed and ages out
//!   ([`postgres`]).
//! - The SQLite database and its `-wal` and `-shm` files are owner-only
//!   (0600): created so, and made so if they were wider ([`open_database`]).
//! - A TTP moves from its database to PostgreSQL with
//!   [`KeyStore::move_into`] (`pseudoform-ttp move-keys`): the sealed rows
//!   move unopened, are checked by decrypting them in the new store, and
//!   only then deleted from the old one. A server with `[keys] url` refuses
//!   to start while its database still holds keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{anyhow, bail, Context};
use pseudoform_core::encoding;
use pseudoform_core::oprf::ServerKey;
use pseudoform_protocol::unix_now;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::binding::{self, BINDING_KEY_BYTES};
use crate::config::TtpConfig;

mod postgres;
mod sqlite;

/// The history table of the key store's migrations, in either database
/// (apart from the ledger's, which may share a PostgreSQL database).
const MIGRATION_TABLE: &str = "key_migrations";

/// Environment variable holding the PostgreSQL password of `[keys]` when it
/// names no `password_file`.
pub const PASSWORD_ENV: &str = "PSEUDOFORM_TTP_KEYS_PASSWORD";

/// `[keys]`: where the key versions are kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// A PostgreSQL connection string shared by every replica, with the
    /// policy of `[ledger] url` (no password in it; `sslmode=require`, or
    /// `sslmode=disable` only for a database on this machine). It may name
    /// the ledger's database: the tables do not meet. Without one, the
    /// versions are in the TTP database (`database`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// File with the PostgreSQL password, which only its owner may read.
    /// When absent the password is read from [`PASSWORD_ENV`], if set;
    /// giving both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Most connections a process holds open to it (the server reads the
    /// key epoch once per request, under one lock: two suffice).
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Seconds a request waits for a connection before it fails.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_pool_size() -> u32 {
    2
}

fn default_connect_timeout() -> u64 {
    5
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            url: None,
            password_file: None,
            pool_size: default_pool_size(),
            connect_timeout_seconds: default_connect_timeout(),
        }
    }
}

impl KeysConfig {
    /// Resolves a relative `password_file` against `base` (the
    /// configuration's folder).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        crate::pg::resolve_password_file(&mut self.password_file, base);
    }

    /// The section as the PostgreSQL stores read it.
    pub(crate) fn section(&self) -> crate::pg::Section<'_> {
        crate::pg::Section {
            name: "[keys]",
            url: self.url.as_deref(),
            password_file: self.password_file.as_deref(),
            password_env: PASSWORD_ENV,
            pool_size: self.pool_size,
            max_pool_size: 64,
            connect_timeout_seconds: self.connect_timeout_seconds,
        }
    }

    /// Checks what can be checked without the database.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.section().validate()
    }
}

/// Environment variable holding the master key (padded base64url of 32 bytes).
pub const MASTER_KEY_ENV: &str = "PSEUDOFORM_TTP_MASTER_KEY";

const NONCE_BYTES: usize = 12;

/// The key that encrypts OPRF keys and binding keys at rest (AES-256-GCM):
/// in memory (wiped on drop), or an object on a PKCS#11 token that does the
/// encryption itself and never gives the key out ([`crate::hsm`]).
pub struct MasterKey(Custody);

/// Where the master key is.
enum Custody {
    /// A key file or the environment.
    Memory(Zeroizing<[u8; 32]>),
    /// A token's non-extractable AES key.
    Token(crate::hsm::TokenAesKey),
}

impl std::fmt::Debug for MasterKey {
    /// Never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let custody = match self.0 {
            Custody::Memory(_) => "memory",
            Custody::Token(_) => "token",
        };
        f.debug_struct("MasterKey")
            .field("custody", &custody)
            .finish_non_exhaustive()
    }
}

impl MasterKey {
    /// A master key from its padded base64url text (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        Ok(MasterKey(Custody::Memory(Zeroizing::new(
            Self::bytes_of_text(text)?,
        ))))
    }

    /// The 32 bytes of a master key's padded base64url text: what
    /// `hsm-init --import-master-key` puts on a token.
    pub fn bytes_of_text(text: &str) -> anyhow::Result<[u8; 32]> {
        encoding::decode_array::<32>(text.trim()).map_err(|_| {
            anyhow!("the master key must be 32 bytes as padded base64url (44 characters)")
        })
    }

    /// A fresh random master key (in memory).
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut()).context("no system randomness")?;
        Ok(MasterKey(Custody::Memory(bytes)))
    }

    /// The padded base64url text of a key in memory; `None` for a key on a
    /// token, which never leaves it.
    pub fn to_text(&self) -> Option<Zeroizing<String>> {
        match &self.0 {
            Custody::Memory(key) => Some(Zeroizing::new(encoding::encode(key.as_ref()))),
            Custody::Token(_) => None,
        }
    }

    /// The master key of `config`: on the token of `[hsm]`, or from
    /// `master_key_file` (which only its owner may read), or else from the
    /// environment variable [`MASTER_KEY_ENV`]. More than one way is
    /// refused.
    pub fn load(config: &TtpConfig) -> anyhow::Result<Self> {
        let env = std::env::var(MASTER_KEY_ENV).ok().map(Zeroizing::new);
        if let Some(hsm) = &config.hsm {
            if env.is_some() {
                bail!("both [hsm] and {MASTER_KEY_ENV} are set; the master key is on the token");
            }
            let token = crate::hsm::Token::open(hsm)?;
            let key = crate::hsm::TokenAesKey::open(&token, &hsm.master_key_label)?;
            return Ok(MasterKey(Custody::Token(key)));
        }
        match (&config.master_key_file, env) {
            (Some(_), Some(_)) => bail!(
                "both master_key_file and {MASTER_KEY_ENV} are set; give the master key one way"
            ),
            (Some(path), None) => {
                let bytes =
                    Zeroizing::new(pseudoform_protocol::secret_file::read(path).with_context(
                        || format!("cannot read master key file {}", path.display()),
                    )?);
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| anyhow!("the master key file is not text"))?;
                MasterKey::from_text(text)
            }
            (None, Some(text)) => MasterKey::from_text(&text),
            (None, None) => bail!(
                "no master key: set [hsm], master_key_file in the configuration, or {MASTER_KEY_ENV}"
            ),
        }
    }

    /// `plaintext` encrypted under a fresh random nonce and `aad`: the
    /// nonce and the ciphertext with its tag.
    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> anyhow::Result<([u8; NONCE_BYTES], Vec<u8>)> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::getrandom(&mut nonce).context("no system randomness")?;
        let ciphertext = match &self.0 {
            Custody::Memory(key) => Aes256Gcm::new(key.as_ref().into())
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: plaintext,
                        aad,
                    },
                )
                .map_err(|_| anyhow!("key encryption failed"))?,
            Custody::Token(key) => key.encrypt(&nonce, aad, plaintext)?,
        };
        Ok((nonce, ciphertext))
    }

    /// The plaintext of a sealed value, if it opens under this key and
    /// `aad`.
    fn open(
        &self,
        nonce: &[u8; NONCE_BYTES],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        match &self.0 {
            Custody::Memory(key) => Aes256Gcm::new(key.as_ref().into())
                .decrypt(
                    &Nonce::from(*nonce),
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .map(Zeroizing::new)
                .map_err(|_| anyhow!("the tag does not match")),
            Custody::Token(key) => key.decrypt(nonce, aad, ciphertext),
        }
    }
}

impl MasterKey {
    /// The `N` bytes sealed in `sealed` under `aad`: `damaged` when its
    /// nonce or its plaintext has the wrong length, and a message naming
    /// `what` when it does not open (wrong master key, or a ciphertext
    /// changed or moved).
    fn open_sealed<const N: usize>(
        &self,
        sealed: &Sealed,
        aad: &[u8],
        what: &str,
        damaged: impl Fn() -> anyhow::Error,
    ) -> anyhow::Result<Zeroizing<[u8; N]>> {
        let nonce: [u8; NONCE_BYTES] = sealed.nonce.as_slice().try_into().map_err(|_| damaged())?;
        let plain = self
            .open(&nonce, aad, &sealed.ciphertext)
            .with_context(|| {
                format!("cannot decrypt {what}: wrong master key or tampered database")
            })?;
        let bytes: [u8; N] = plain.as_slice().try_into().map_err(|_| damaged())?;
        Ok(Zeroizing::new(bytes))
    }
}

/// Associated data binding a stored key to its domain and version.
fn aad(organization: &str, scope: &str, version: u32) -> Vec<u8> {
    format!("pseudoform-ttp/oprf-key/v1|{organization}|{scope}|{version}").into_bytes()
}

/// Associated data binding a stored binding key to its domain.
fn binding_aad(organization: &str, scope: &str) -> Vec<u8> {
    format!("pseudoform-ttp/binding-key/v1|{organization}|{scope}").into_bytes()
}

pub use pseudoform_protocol::secret_file::database_files;

/// Makes the database and its `-wal` and `-shm` files owner-only
/// ([`pseudoform_protocol::secret_file::restrict_database`]), warning of
/// each file that was not.
fn restrict_database(path: &Path) -> anyhow::Result<()> {
    let restricted = pseudoform_protocol::secret_file::restrict_database(path)
        .with_context(|| format!("cannot make database {} owner-only", path.display()))?;
    for file in restricted {
        tracing::warn!(file = %file.display(), "a database file was readable by others; it is owner-only now");
    }
    Ok(())
}

/// Most bytes the write-ahead log keeps after a checkpoint (16 MiB); SQLite
/// checkpoints every 1000 pages (4 MiB) as it writes.
pub const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// Opens (and if needed creates, owner-only) the TTP database with the
/// pragmas the key store, the ledger and the audit log use: WAL, full
/// sync, and a bounded WAL ([`WAL_SIZE_LIMIT`]).
pub(crate) fn open_database(path: &Path) -> anyhow::Result<Connection> {
    restrict_database(path)?;
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    restrict_database(path)?;
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    Ok(conn)
}

/// Status of a key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// Evaluated: the current version, or an older one during a rotation.
    Active,
    /// Retired: its key material is destroyed.
    Retired,
}

impl KeyStatus {
    /// The status of its stored name (anything but `active` is retired:
    /// the tables allow only the two).
    pub(crate) fn from_name(name: &str) -> Self {
        if name == "active" {
            KeyStatus::Active
        } else {
            KeyStatus::Retired
        }
    }

    /// The status as stored.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
        }
    }
}

/// What is known about one key version (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersionInfo {
    /// The version number (1, 2, …).
    pub version: u32,
    /// Active or retired.
    pub status: KeyStatus,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: i64,
    /// Retirement time, if retired.
    pub retired_at: Option<i64>,
}

/// The decrypted active keys of one domain, the current version first,
/// and its binding key (`Debug` shows the versions only; [`ServerKey`]
/// never shows a key).
pub struct DomainKeys {
    versions: Vec<(u32, ServerKey)>,
    binding: Option<Zeroizing<[u8; BINDING_KEY_BYTES]>>,
}

impl std::fmt::Debug for DomainKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainKeys")
            .field("versions", &self.version_numbers())
            .finish_non_exhaustive()
    }
}

impl DomainKeys {
    /// The keys that evaluate type `MRN` for `provider` in this domain
    /// `(organization, scope)`: each version's `k · t_p`
    /// ([`crate::binding`]). Fails without a binding key.
    pub fn for_provider(
        &self,
        organization: &str,
        scope: &str,
        provider: &str,
    ) -> anyhow::Result<DomainKeys> {
        let binding_key = self
            .binding
            .as_ref()
            .ok_or_else(|| anyhow!("{organization}/{scope} has no binding key"))?;
        let factor = binding::provider_factor(binding_key, organization, scope, provider);
        let versions = self
            .versions
            .iter()
            .map(|(v, k)| Ok((*v, binding::bind(k, &factor)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(DomainKeys {
            versions,
            binding: None,
        })
    }

    /// The domain's binding key (for tests of the binding, and migration).
    pub fn binding_key(&self) -> Option<&[u8; BINDING_KEY_BYTES]> {
        self.binding.as_deref()
    }

    /// The current version and its key.
    pub fn current(&self) -> Option<(u32, &ServerKey)> {
        self.versions.first().map(|(v, k)| (*v, k))
    }

    /// Every active version, the current first, then older ones descending.
    pub fn active(&self) -> impl Iterator<Item = (u32, &ServerKey)> {
        self.versions.iter().map(|(v, k)| (*v, k))
    }

    /// The key of an active version.
    pub fn version(&self, version: u32) -> Option<&ServerKey> {
        self.versions
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, k)| k)
    }

    /// The active version numbers, the current first.
    pub fn version_numbers(&self) -> Vec<u32> {
        self.versions.iter().map(|(v, _)| *v).collect()
    }
}

/// A sealed value as stored: the nonce and the ciphertext with its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    fn new((nonce, ciphertext): ([u8; NONCE_BYTES], Vec<u8>)) -> Self {
        Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }
}

/// One stored version, as it is in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredVersion {
    pub organization: String,
    pub scope: String,
    pub info: KeyVersionInfo,
    /// The sealed key; none once retired.
    pub sealed: Option<Sealed>,
}

/// One stored binding key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredBinding {
    pub organization: String,
    pub scope: String,
    pub created_at: i64,
    pub sealed: Sealed,
}

/// Everything a key store holds, sealed as stored: what moves between
/// stores ([`KeyStore::move_into`]). The seals bind a key to its domain and
/// version, not to a store, so they move unopened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoredKeys {
    pub versions: Vec<StoredVersion>,
    pub bindings: Vec<StoredBinding>,
    pub epoch: i64,
}

/// Why a move deleted nothing from the old store.
const CHANGED_DURING_MOVE: &str = "the old key store changed during the move (is a server still running on it?): nothing was deleted from it; stop every server, empty the new store's tables (DELETE FROM key_versions; DELETE FROM binding_keys) and run move-keys again";

/// What [`KeyStore::move_into`] moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// Domains with at least one version.
    pub domains: usize,
    /// Versions, active and retired.
    pub versions: usize,
    /// Active versions, each decrypted in the new store.
    pub active: usize,
}

/// What a retirement is decided on, read in its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RetireFacts {
    /// The status of the version, if the domain has it.
    pub status: Option<KeyStatus>,
    /// The domain's current (highest active) version.
    pub current: Option<u32>,
    /// When the version stopped being current: when the next was made.
    pub superseded_at: Option<i64>,
}

/// The rows of a key store: what each backend ([`sqlite`], [`postgres`])
/// implements. The policy (which version, whether a retirement is
/// allowed) and the encryption are [`KeyStore`]'s, the same on both; a
/// backend only keeps the rows, each change in one transaction that also
/// bumps the key epoch.
pub(crate) trait KeyRows: Send + std::fmt::Debug {
    /// Whether its calls must run on a thread of their own (a sync client
    /// that blocks on a runtime, [`crate::pg::off_runtime`]).
    fn blocks_on_runtime(&self) -> bool;

    /// Every version of a domain, ascending.
    fn versions(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<KeyVersionInfo>>;

    /// The sealed active versions of a domain, the highest first.
    fn active(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<(u32, Sealed)>>;

    /// The sealed binding key of a domain, if it has one.
    fn binding(&mut self, organization: &str, scope: &str) -> anyhow::Result<Option<Sealed>>;

    /// The key epoch (0 before any change).
    fn epoch(&mut self) -> anyhow::Result<i64>;

    /// In one transaction: the domain's next version (none when
    /// `only_if_empty` and it has one), stored as `seal` makes it for its
    /// number; the binding key `bind` makes, when the domain has none; the
    /// epoch bumped. Returns the version made.
    fn add_version(
        &mut self,
        organization: &str,
        scope: &str,
        only_if_empty: bool,
        now: i64,
        seal: &mut dyn FnMut(u32) -> anyhow::Result<Sealed>,
        bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
    ) -> anyhow::Result<Option<u32>>;

    /// In one transaction: the binding key `bind` makes, when the domain
    /// has none, and the epoch bumped. Returns whether one was made.
    fn add_binding(
        &mut self,
        organization: &str,
        scope: &str,
        now: i64,
        bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
    ) -> anyhow::Result<bool>;

    /// Everything the store holds, as stored (sealed).
    fn dump(&mut self) -> anyhow::Result<StoredKeys>;

    /// In one transaction, into a store that holds no version and no
    /// binding key (refused otherwise): every row of `keys`, and an epoch
    /// past both stores'.
    fn restore(&mut self, keys: &StoredKeys) -> anyhow::Result<()>;

    /// In one transaction, only while the epoch is still `epoch` (nothing
    /// changed since [`KeyRows::dump`]): every version and binding key
    /// deleted, the store marked as moved (SQLite: it makes no new key
    /// after), the epoch bumped; then erased from the backend's files as
    /// far as it can.
    fn clear(&mut self, epoch: i64) -> anyhow::Result<()>;

    /// In one transaction: the facts of the version, `allow` deciding on
    /// them, the version marked retired at `now` and its sealed key
    /// dropped, the epoch bumped; then the dropped ciphertext erased from
    /// the backend's files as far as it can.
    fn retire(
        &mut self,
        organization: &str,
        scope: &str,
        version: u32,
        now: i64,
        allow: &dyn Fn(&RetireFacts) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
}

/// The key store: key versions of every domain, in SQLite (the TTP
/// database, the default) or in PostgreSQL (`[keys] url`, shared by
/// replicas on several machines).
#[derive(Debug)]
pub struct KeyStore {
    rows: Box<dyn KeyRows>,
    master: MasterKey,
}

impl KeyStore {
    /// Opens the key store in the SQLite database at `path`, creating (or
    /// migrating) its tables.
    pub fn open(path: &Path, master: MasterKey) -> anyhow::Result<Self> {
        Ok(KeyStore {
            rows: Box::new(sqlite::SqliteKeys::open(path)?),
            master,
        })
    }

    /// Opens the key store in the PostgreSQL database of `config`
    /// (`[keys] url`), migrating it.
    pub fn open_postgres(config: &KeysConfig, master: MasterKey) -> anyhow::Result<Self> {
        Ok(KeyStore {
            rows: Box::new(postgres::PostgresKeys::open(config)?),
            master,
        })
    }

    /// Opens the key store of `config` with its master key: PostgreSQL when
    /// `[keys]` names a url, else the TTP database. With a url, refused
    /// while the TTP database still holds keys: a TTP that served from it
    /// must move them first ([`KeyStore::move_into`]), or it would make new
    /// first versions in PostgreSQL and every pseudonym would change.
    pub fn open_config(config: &TtpConfig) -> anyhow::Result<Self> {
        KeyStore::open_store(config, MasterKey::load(config)?)
    }

    /// The key store `config` names ([`KeyStore::open_config`]) with the
    /// master key `master` instead of the configured one.
    pub fn open_store(config: &TtpConfig, master: MasterKey) -> anyhow::Result<Self> {
        match config.keys.url {
            Some(_) => {
                if sqlite::holds_keys(&config.database)? {
                    bail!(
                        "[keys] names PostgreSQL, but the database {} still holds key versions: move them first (pseudoform-ttp move-keys --config FILE)",
                        config.database.display()
                    );
                }
                KeyStore::open_postgres(&config.keys, master)
            }
            None => KeyStore::open(&config.database, master),
        }
    }

    /// The stores `pseudoform-ttp move-keys` moves between for `config`:
    /// the TTP database, and PostgreSQL of `[keys]` (which must name one).
    pub fn move_stores(config: &TtpConfig) -> anyhow::Result<(KeyStore, KeyStore)> {
        if config.keys.url.is_none() {
            bail!("[keys] names no url: there is nowhere to move the keys to");
        }
        let from = KeyStore::open(&config.database, MasterKey::load(config)?)?;
        let to = KeyStore::open_postgres(&config.keys, MasterKey::load(config)?)?;
        Ok((from, to))
    }

    /// Moves every version and binding key of this store into `target`,
    /// which must hold none and have the same master key, then deletes them
    /// here: the way from the TTP's SQLite `database` to `[keys]` in
    /// PostgreSQL (`pseudoform-ttp move-keys`). The sealed keys move
    /// unopened; before anything is deleted here, every active version and
    /// binding key is decrypted in `target` and compared with this store's.
    /// A failure before the deletion leaves this store as it was; a
    /// `target` that already holds exactly these rows (an earlier move
    /// that could not delete) is checked and the deletion done.
    pub fn move_into(&mut self, target: &mut KeyStore) -> anyhow::Result<Moved> {
        let keys = self.run(|s| s.rows.dump())?;
        if keys.versions.is_empty() && keys.bindings.is_empty() {
            bail!("the old key store holds no keys: nothing to move");
        }
        let mut domains: Vec<(&str, &str)> = keys
            .versions
            .iter()
            .map(|v| (v.organization.as_str(), v.scope.as_str()))
            .collect();
        domains.dedup();
        // Every key opens here first: a damaged store is not moved.
        let mut opened = Vec::new();
        for &(organization, scope) in &domains {
            opened.push(self.load(organization, scope)?);
        }
        let there = target.run(|t| t.rows.dump())?;
        let copied_before = there.versions == keys.versions && there.bindings == keys.bindings;
        if !copied_before {
            // Refused by the store when it holds any version or binding key.
            target.run(|t| t.rows.restore(&keys))?;
        }
        for (&(organization, scope), here) in domains.iter().zip(&opened) {
            let there = target.load(organization, scope).with_context(|| {
                format!("the moved keys of {organization}/{scope} do not open in the new store: is its master key the same?")
            })?;
            let same = there.version_numbers() == here.version_numbers()
                && here
                    .active()
                    .zip(there.active())
                    .all(|((_, a), (_, b))| *a.to_bytes() == *b.to_bytes())
                && here.binding_key() == there.binding_key();
            if !same {
                bail!("the moved keys of {organization}/{scope} differ in the new store; nothing was deleted from the old one");
            }
        }
        let epoch = keys.epoch;
        self.run(|s| s.rows.clear(epoch)).context(
            "the keys are in the new store and open there, but they were not deleted from the old one",
        )?;
        Ok(Moved {
            domains: domains.len(),
            versions: keys.versions.len(),
            active: opened.iter().map(|d| d.version_numbers().len()).sum(),
        })
    }

    /// Runs `f` on this store, on a thread of its own when the backend
    /// needs one.
    fn run<T: Send>(
        &mut self,
        f: impl FnOnce(&mut KeyStore) -> anyhow::Result<T> + Send,
    ) -> anyhow::Result<T> {
        if self.rows.blocks_on_runtime() {
            crate::pg::off_runtime("the key store", || f(self))
        } else {
            f(self)
        }
    }

    /// Every version of a domain, ascending.
    pub fn versions(
        &mut self,
        organization: &str,
        scope: &str,
    ) -> anyhow::Result<Vec<KeyVersionInfo>> {
        self.run(|s| s.rows.versions(organization, scope))
    }

    /// Decrypts the active keys of a domain, current first. Empty when the
    /// domain has no key yet.
    pub fn load(&mut self, organization: &str, scope: &str) -> anyhow::Result<DomainKeys> {
        self.run(|s| s.load_here(organization, scope))
    }

    fn load_here(&mut self, organization: &str, scope: &str) -> anyhow::Result<DomainKeys> {
        let mut versions = Vec::new();
        for (version, sealed) in self.rows.active(organization, scope)? {
            let bytes: Zeroizing<[u8; 32]> = self.master.open_sealed(
                &sealed,
                &aad(organization, scope, version),
                &format!("key {organization}/{scope} v{version}"),
                || anyhow!("stored key {organization}/{scope} v{version} is damaged"),
            )?;
            let key = ServerKey::from_bytes(&bytes).map_err(|_| {
                anyhow!("stored key {organization}/{scope} v{version} is not a valid scalar")
            })?;
            versions.push((version, key));
        }
        Ok(DomainKeys {
            versions,
            binding: self.load_binding_here(organization, scope)?,
        })
    }

    /// The decrypted binding key of a domain, if it has one.
    fn load_binding_here(
        &mut self,
        organization: &str,
        scope: &str,
    ) -> anyhow::Result<Option<Zeroizing<[u8; BINDING_KEY_BYTES]>>> {
        let Some(sealed) = self.rows.binding(organization, scope)? else {
            return Ok(None);
        };
        self.master
            .open_sealed(
                &sealed,
                &binding_aad(organization, scope),
                &format!("the binding key of {organization}/{scope}"),
                || anyhow!("the binding key of {organization}/{scope} is damaged"),
            )
            .map(Some)
    }

    /// A fresh binding key, sealed for its domain.
    fn sealed_binding(
        master: &MasterKey,
        organization: &str,
        scope: &str,
    ) -> anyhow::Result<Sealed> {
        let mut key = Zeroizing::new([0u8; BINDING_KEY_BYTES]);
        getrandom::getrandom(key.as_mut()).context("no system randomness")?;
        Ok(Sealed::new(
            master.seal(&binding_aad(organization, scope), key.as_ref())?,
        ))
    }

    /// Makes the domain's binding key if it has none (a database from
    /// before binding keys). Returns whether one was made.
    pub fn ensure_binding(&mut self, organization: &str, scope: &str) -> anyhow::Result<bool> {
        self.run(|s| s.ensure_binding_here(organization, scope))
    }

    fn ensure_binding_here(&mut self, organization: &str, scope: &str) -> anyhow::Result<bool> {
        let master = &self.master;
        self.rows
            .add_binding(organization, scope, unix_now(), &mut || {
                KeyStore::sealed_binding(master, organization, scope)
            })
    }

    /// The key epoch: bumped by every change of any domain's versions.
    pub fn epoch(&mut self) -> anyhow::Result<i64> {
        self.run(|s| s.rows.epoch())
    }

    fn insert(
        &mut self,
        organization: &str,
        scope: &str,
        key: &ServerKey,
        only_if_empty: bool,
    ) -> anyhow::Result<Option<u32>> {
        self.run(|s| s.insert_here(organization, scope, key, only_if_empty))
    }

    fn insert_here(
        &mut self,
        organization: &str,
        scope: &str,
        key: &ServerKey,
        only_if_empty: bool,
    ) -> anyhow::Result<Option<u32>> {
        let master = &self.master;
        let key_bytes = key.to_bytes();
        self.rows.add_version(
            organization,
            scope,
            only_if_empty,
            unix_now(),
            &mut |version| {
                Ok(Sealed::new(master.seal(
                    &aad(organization, scope, version),
                    key_bytes.as_ref(),
                )?))
            },
            &mut || KeyStore::sealed_binding(master, organization, scope),
        )
    }

    fn random_key() -> anyhow::Result<ServerKey> {
        let mut wide = Zeroizing::new([0u8; 64]);
        getrandom::getrandom(wide.as_mut()).context("no system randomness")?;
        ServerKey::from_uniform_bytes(&wide).map_err(|_| anyhow!("drew a zero key"))
    }

    /// Makes version 1 of a domain with a random key if it has no version yet.
    /// Returns the version made, if one was.
    pub fn ensure(&mut self, organization: &str, scope: &str) -> anyhow::Result<Option<u32>> {
        let key = KeyStore::random_key()?;
        self.insert(organization, scope, &key, true)
    }

    /// Makes a new random version current; older active versions stay active.
    pub fn rotate(&mut self, organization: &str, scope: &str) -> anyhow::Result<u32> {
        let key = KeyStore::random_key()?;
        self.insert(organization, scope, &key, false)?
            .ok_or_else(|| anyhow!("no version was made"))
    }

    /// Makes `key` the new current version (migration from another TTP,
    /// known-answer tests). Returns its version.
    pub fn import(
        &mut self,
        organization: &str,
        scope: &str,
        key: &ServerKey,
    ) -> anyhow::Result<u32> {
        self.insert(organization, scope, key, false)?
            .ok_or_else(|| anyhow!("no version was made"))
    }

    /// Retires an older version: it is no longer evaluated and its key
    /// material is destroyed. The current version cannot be retired (rotate
    /// first), nor one superseded less than `window` seconds ago (see the
    /// module documentation): `now` is the time of the call.
    pub fn retire(
        &mut self,
        organization: &str,
        scope: &str,
        version: u32,
        now: i64,
        window: i64,
    ) -> anyhow::Result<()> {
        let allow = |facts: &RetireFacts| -> anyhow::Result<()> {
            match facts.status {
                None => bail!("{organization}/{scope} has no key version {version}"),
                Some(KeyStatus::Retired) => {
                    bail!("{organization}/{scope} v{version} is already retired")
                }
                Some(KeyStatus::Active) => {}
            }
            if facts.current == Some(version) {
                bail!("v{version} is the current version of {organization}/{scope}; rotate first");
            }
            let superseded_at = facts.superseded_at.unwrap_or(now);
            let allowed_at = superseded_at.saturating_add(window);
            if now < allowed_at {
                bail!(
                    "v{version} of {organization}/{scope} was current {} s ago; requests in flight and \
                     JWEs may still carry it as current for {window} s after a rotation: re-key the \
                     registries to the new version, then retire in {} s",
                    now.saturating_sub(superseded_at),
                    allowed_at.saturating_sub(now)
                );
            }
            Ok(())
        };
        self.run(|s| s.rows.retire(organization, scope, version, now, &allow))
    }
}

#[derive(Debug)]
struct CachedDomain {
    keys: Arc<DomainKeys>,
    epoch: i64,
}

/// The server's view of the key store: decrypted domains cached in memory,
/// good for as long as the key epoch does not change.
#[derive(Debug)]
pub struct KeyCache {
    store: Mutex<KeyStore>,
    domains: RwLock<HashMap<(String, String), CachedDomain>>,
}

impl KeyCache {
    /// A cache over `store`.
    pub fn new(store: KeyStore) -> Self {
        KeyCache {
            store: Mutex::new(store),
            domains: RwLock::new(HashMap::new()),
        }
    }

    /// The current key epoch, read from the store (one indexed row).
    /// Fails when the key store cannot be read. Blocking, in place: call it
    /// off the async executor (a blocking-pool thread, the evaluation
    /// queue's workers).
    pub fn epoch(&self) -> anyhow::Result<i64> {
        self.store
            .lock()
            .map_err(|_| anyhow!("key store lock poisoned"))?
            .rows
            .epoch()
    }

    /// The domain's keys as they are now: the cached ones while the key
    /// epoch is unchanged, else read (and on first use made) from the
    /// store. Blocking, in place (no thread of its own per call: it is read
    /// for every piece of work): call it off the async executor.
    pub fn load(&self, organization: &str, scope: &str) -> anyhow::Result<Arc<DomainKeys>> {
        let domain = (organization.to_owned(), scope.to_owned());
        let mut store = self
            .store
            .lock()
            .map_err(|_| anyhow!("key store lock poisoned"))?;
        let epoch = store.rows.epoch()?;
        if let Ok(domains) = self.domains.read() {
            if let Some(cached) = domains.get(&domain).filter(|d| d.epoch == epoch) {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let mut keys = store.load_here(organization, scope)?;
        let mut epoch = epoch;
        // The epoch is read before the keys it labels: a change between the
        // two leaves newer keys under an older epoch (read again at the
        // next use), never older keys under a newer one.
        if keys.current().is_none() {
            store.insert_here(organization, scope, &KeyStore::random_key()?, true)?;
            epoch = store.rows.epoch()?;
            keys = store.load_here(organization, scope)?;
        }
        if keys.binding.is_none() {
            store.ensure_binding_here(organization, scope)?;
            epoch = store.rows.epoch()?;
            keys = store.load_here(organization, scope)?;
        }
        drop(store);
        if keys.current().is_none() {
            bail!("{organization}/{scope} has no active key");
        }
        let keys = Arc::new(keys);
        if let Ok(mut domains) = self.domains.write() {
            domains.insert(
                domain,
                CachedDomain {
                    keys: Arc::clone(&keys),
                    epoch,
                },
            );
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_text_round_trip() {
        let m = MasterKey::generate().unwrap();
        let text = m.to_text().unwrap();
        assert_eq!(text.len(), 44);
        let again = MasterKey::from_text(&format!(" {}\n", &*text)).unwrap();
        assert_eq!(*again.to_text().unwrap(), *text);
        assert!(format!("{again:?}").contains("memory"));
        assert!(MasterKey::from_text("short").is_err());
    }
}
