//! OPRF keys per key domain `(organisation, scope)`, versioned, encrypted at
//! rest, and cached decrypted in memory.
//!
//! - Each version's 32-byte scalar is stored in SQLite encrypted with
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
//!   the database.
//! - `retire` refuses the current version, and an older one until it has
//!   been superseded for the retire window
//!   ([`crate::TtpConfig::retire_window_seconds`]: the JWE lifetime, the
//!   request timeout and the registries' clock skew): until then a request
//!   in flight may still evaluate it as current, and JWEs that carry it
//!   alone may still reach a registry. Within the window the registries
//!   re-key to the new version (`pseudoform-registry rekey`); after it,
//!   nothing new arrives under the old one.
//! - Retiring runs with `secure_delete` and checkpoints the WAL, so the
//!   retired ciphertext is overwritten in the database file and gone from
//!   the log ([`KeyStore::retire`]).
//! - The database and its `-wal` and `-shm` files are owner-only (0600):
//!   created so, and made so if they were wider ([`open_database`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::{anyhow, bail, Context};
use pseudoform_core::encoding;
use pseudoform_core::oprf::ServerKey;
use pseudoform_protocol::unix_now;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use zeroize::Zeroizing;

use crate::binding::{self, BINDING_KEY_BYTES};
use crate::config::TtpConfig;

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

/// The key store: key versions of every domain in SQLite.
#[derive(Debug)]
pub struct KeyStore {
    conn: Connection,
    master: MasterKey,
}

impl KeyStore {
    /// Opens the key store in the database at `path`, creating its table.
    pub fn open(path: &Path, master: MasterKey) -> anyhow::Result<Self> {
        let conn = open_database(path)?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS key_versions (
                organization TEXT NOT NULL,
                scope TEXT NOT NULL,
                version INTEGER NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
                created_at INTEGER NOT NULL,
                retired_at INTEGER,
                nonce BLOB,
                ciphertext BLOB,
                PRIMARY KEY (organization, scope, version)
            );
            CREATE TABLE IF NOT EXISTS binding_keys (
                organization TEXT NOT NULL,
                scope TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                nonce BLOB NOT NULL,
                ciphertext BLOB NOT NULL,
                PRIMARY KEY (organization, scope)
            );
            CREATE TABLE IF NOT EXISTS key_epoch (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                epoch INTEGER NOT NULL
            );",
        )?;
        // A restart gives back what a long WAL took (after a full disk).
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "the write-ahead log could not be checkpointed");
        }
        Ok(KeyStore { conn, master })
    }

    /// Opens the key store of `config` with its master key.
    pub fn open_config(config: &TtpConfig) -> anyhow::Result<Self> {
        KeyStore::open(&config.database, MasterKey::load(config)?)
    }

    /// Every version of a domain, ascending.
    pub fn versions(&self, organization: &str, scope: &str) -> anyhow::Result<Vec<KeyVersionInfo>> {
        let mut stmt = self.conn.prepare(
            "SELECT version, status, created_at, retired_at FROM key_versions
             WHERE organization = ?1 AND scope = ?2 ORDER BY version",
        )?;
        let rows = stmt.query_map(params![organization, scope], |row| {
            let status: String = row.get(1)?;
            Ok(KeyVersionInfo {
                version: row.get(0)?,
                status: if status == "active" {
                    KeyStatus::Active
                } else {
                    KeyStatus::Retired
                },
                created_at: row.get(2)?,
                retired_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Decrypts the active keys of a domain, current first. Empty when the
    /// domain has no key yet.
    pub fn load(&self, organization: &str, scope: &str) -> anyhow::Result<DomainKeys> {
        let mut stmt = self.conn.prepare(
            "SELECT version, nonce, ciphertext FROM key_versions
             WHERE organization = ?1 AND scope = ?2 AND status = 'active' ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![organization, scope], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        let mut versions = Vec::new();
        for row in rows {
            let (version, nonce, ciphertext) = row?;
            let nonce: [u8; NONCE_BYTES] = nonce
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("stored key {organization}/{scope} v{version} is damaged"))?;
            let aad = aad(organization, scope, version);
            let plain = self.master.open(&nonce, &aad, &ciphertext).with_context(|| {
                format!(
                    "cannot decrypt key {organization}/{scope} v{version}: wrong master key or tampered database"
                )
            })?;
            let bytes: [u8; 32] = plain
                .as_slice()
                .try_into()
                .map_err(|_| anyhow!("stored key {organization}/{scope} v{version} is damaged"))?;
            let bytes = Zeroizing::new(bytes);
            let key = ServerKey::from_bytes(&bytes).map_err(|_| {
                anyhow!("stored key {organization}/{scope} v{version} is not a valid scalar")
            })?;
            versions.push((version, key));
        }
        Ok(DomainKeys {
            versions,
            binding: self.load_binding(organization, scope)?,
        })
    }

    /// The decrypted binding key of a domain, if it has one.
    fn load_binding(
        &self,
        organization: &str,
        scope: &str,
    ) -> anyhow::Result<Option<Zeroizing<[u8; BINDING_KEY_BYTES]>>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT nonce, ciphertext FROM binding_keys WHERE organization = ?1 AND scope = ?2",
                params![organization, scope],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((nonce, ciphertext)) = row else {
            return Ok(None);
        };
        let damaged = || anyhow!("the binding key of {organization}/{scope} is damaged");
        let nonce: [u8; NONCE_BYTES] = nonce.as_slice().try_into().map_err(|_| damaged())?;
        let aad = binding_aad(organization, scope);
        let plain = self.master.open(&nonce, &aad, &ciphertext).with_context(|| {
            format!(
                "cannot decrypt the binding key of {organization}/{scope}: wrong master key or tampered database"
            )
        })?;
        let bytes: [u8; BINDING_KEY_BYTES] = plain.as_slice().try_into().map_err(|_| damaged())?;
        Ok(Some(Zeroizing::new(bytes)))
    }

    /// Makes the domain's binding key if it has none (a database from
    /// before binding keys). Returns whether one was made.
    pub fn ensure_binding(&mut self, organization: &str, scope: &str) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let made = insert_binding(&tx, &self.master, organization, scope)?;
        if made {
            bump_epoch(&tx)?;
        }
        tx.commit()?;
        Ok(made)
    }

    /// The key epoch: bumped by every change of any domain's versions.
    pub fn epoch(&self) -> anyhow::Result<i64> {
        let epoch: Option<i64> = self
            .conn
            .prepare_cached("SELECT epoch FROM key_epoch WHERE id = 1")?
            .query_row([], |row| row.get(0))
            .optional()?;
        Ok(epoch.unwrap_or(0))
    }

    fn insert(
        &mut self,
        organization: &str,
        scope: &str,
        key: &ServerKey,
        only_if_empty: bool,
    ) -> anyhow::Result<Option<u32>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<u32> = tx
            .query_row(
                "SELECT MAX(version) FROM key_versions WHERE organization = ?1 AND scope = ?2",
                params![organization, scope],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        if only_if_empty && last.is_some() {
            return Ok(None);
        }
        let version = last
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| anyhow!("too many key versions"))?;
        let key_bytes = key.to_bytes();
        let aad = aad(organization, scope, version);
        let (nonce, ciphertext) = self.master.seal(&aad, key_bytes.as_ref())?;
        tx.execute(
            "INSERT INTO key_versions (organization, scope, version, status, created_at, nonce, ciphertext)
             VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6)",
            params![organization, scope, version, unix_now(), nonce.as_slice(), ciphertext],
        )?;
        insert_binding(&tx, &self.master, organization, scope)?;
        bump_epoch(&tx)?;
        tx.commit()?;
        Ok(Some(version))
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<u32> = tx
            .query_row(
                "SELECT MAX(version) FROM key_versions
                 WHERE organization = ?1 AND scope = ?2 AND status = 'active'",
                params![organization, scope],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM key_versions WHERE organization = ?1 AND scope = ?2 AND version = ?3",
                params![organization, scope, version],
                |row| row.get(0),
            )
            .optional()?;
        match status.as_deref() {
            None => bail!("{organization}/{scope} has no key version {version}"),
            Some("retired") => bail!("{organization}/{scope} v{version} is already retired"),
            _ => {}
        }
        if current == Some(version) {
            bail!("v{version} is the current version of {organization}/{scope}; rotate first");
        }
        // When the version stopped being current: when the next one was made.
        let superseded_at: Option<i64> = tx
            .query_row(
                "SELECT MIN(created_at) FROM key_versions
                 WHERE organization = ?1 AND scope = ?2 AND version > ?3",
                params![organization, scope, version],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        let superseded_at = superseded_at.unwrap_or(now);
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
        tx.execute(
            "UPDATE key_versions SET status = 'retired', retired_at = ?4, nonce = NULL, ciphertext = NULL
             WHERE organization = ?1 AND scope = ?2 AND version = ?3",
            params![organization, scope, version, now],
        )?;
        bump_epoch(&tx)?;
        tx.commit()?;
        // secure_delete has overwritten the freed cells in the pages written
        // to the WAL; copy them into the database and empty the WAL, so the
        // old ciphertext is in neither file.
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            bail!(
                "{organization}/{scope} v{version} is retired, but the database is busy: its old ciphertext may stay in the WAL until the next checkpoint; run retire again when the server is idle"
            );
        }
        Ok(())
    }
}

/// Makes the domain's binding key in `tx` if it has none.
fn insert_binding(
    tx: &rusqlite::Transaction<'_>,
    master: &MasterKey,
    organization: &str,
    scope: &str,
) -> anyhow::Result<bool> {
    let exists: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM binding_keys WHERE organization = ?1 AND scope = ?2",
            params![organization, scope],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Ok(false);
    }
    let mut key = Zeroizing::new([0u8; BINDING_KEY_BYTES]);
    getrandom::getrandom(key.as_mut()).context("no system randomness")?;
    let aad = binding_aad(organization, scope);
    let (nonce, ciphertext) = master.seal(&aad, key.as_ref())?;
    tx.execute(
        "INSERT INTO binding_keys (organization, scope, created_at, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![organization, scope, unix_now(), nonce.as_slice(), ciphertext],
    )?;
    Ok(true)
}

/// Bumps the key epoch inside a change's transaction.
fn bump_epoch(tx: &rusqlite::Transaction<'_>) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO key_epoch (id, epoch) VALUES (1, 1)
         ON CONFLICT (id) DO UPDATE SET epoch = epoch + 1",
        [],
    )?;
    Ok(())
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

    /// The current key epoch, read from the database (blocking, but one
    /// indexed row). Fails when the key store cannot be read.
    pub fn epoch(&self) -> anyhow::Result<i64> {
        self.store
            .lock()
            .map_err(|_| anyhow!("key store lock poisoned"))?
            .epoch()
    }

    /// The domain's keys as they are now: the cached ones while the key
    /// epoch is unchanged, else read (and on first use made) from the
    /// database. Blocking: call it off the async executor.
    pub fn load(&self, organization: &str, scope: &str) -> anyhow::Result<Arc<DomainKeys>> {
        let domain = (organization.to_owned(), scope.to_owned());
        let mut store = self
            .store
            .lock()
            .map_err(|_| anyhow!("key store lock poisoned"))?;
        let epoch = store.epoch()?;
        if let Ok(domains) = self.domains.read() {
            if let Some(cached) = domains.get(&domain).filter(|d| d.epoch == epoch) {
                return Ok(Arc::clone(&cached.keys));
            }
        }
        let mut keys = store.load(organization, scope)?;
        let mut epoch = epoch;
        if keys.current().is_none() {
            store.ensure(organization, scope)?;
            keys = store.load(organization, scope)?;
            epoch = store.epoch()?;
        }
        if keys.binding.is_none() {
            store.ensure_binding(organization, scope)?;
            keys = store.load(organization, scope)?;
            epoch = store.epoch()?;
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

    const ORG: &str = "oin:00000001000000001000";

    fn store(dir: &Path, master: [u8; 32]) -> KeyStore {
        KeyStore::open(
            &dir.join("keys.sqlite"),
            MasterKey(Custody::Memory(Zeroizing::new(master))),
        )
        .unwrap()
    }

    #[test]
    fn versions_rotate_retire_and_encryption_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), [7; 32]);
        assert!(s.load(ORG, "a").unwrap().current().is_none());
        assert_eq!(s.ensure(ORG, "a").unwrap(), Some(1));
        assert_eq!(s.ensure(ORG, "a").unwrap(), None);
        let k1 = s.load(ORG, "a").unwrap().current().unwrap().1.to_bytes();
        assert_eq!(s.rotate(ORG, "a").unwrap(), 2);
        let d = s.load(ORG, "a").unwrap();
        assert_eq!(d.version_numbers(), vec![2, 1]);
        assert_eq!(*d.version(1).unwrap().to_bytes(), *k1);
        let now = unix_now();
        assert!(
            s.retire(ORG, "a", 2, now, 0).is_err(),
            "current cannot be retired"
        );
        assert!(
            s.retire(ORG, "a", 1, now, 60).is_err(),
            "not within the window after the rotation"
        );
        let epoch = s.epoch().unwrap();
        s.retire(ORG, "a", 1, now + 60, 60).unwrap();
        assert_eq!(
            s.epoch().unwrap(),
            epoch + 1,
            "a retirement bumps the epoch"
        );
        assert!(s.retire(ORG, "a", 1, now + 60, 0).is_err());
        assert!(s.retire(ORG, "a", 9, now + 60, 0).is_err());
        assert_eq!(s.load(ORG, "a").unwrap().version_numbers(), vec![2]);
        assert_eq!(s.rotate(ORG, "a").unwrap(), 3);
        // Other domains are separate.
        assert_eq!(s.ensure(ORG, "b").unwrap(), Some(1));
        let infos = s.versions(ORG, "a").unwrap();
        assert_eq!(infos.len(), 3);
        assert_eq!(infos[0].status, KeyStatus::Retired);
        drop(s);

        // The wrong master key does not decrypt.
        let wrong = store(dir.path(), [8; 32]);
        assert!(wrong.load(ORG, "a").is_err());

        // A ciphertext moved to another version does not decrypt (AAD).
        let conn = Connection::open(dir.path().join("keys.sqlite")).unwrap();
        conn.execute(
            "UPDATE key_versions SET nonce = (SELECT nonce FROM key_versions WHERE scope = 'b'),
             ciphertext = (SELECT ciphertext FROM key_versions WHERE scope = 'b')
             WHERE scope = 'a' AND version = 3",
            [],
        )
        .unwrap();
        drop(conn);
        let s = store(dir.path(), [7; 32]);
        assert!(s.load(ORG, "a").is_err());
        assert!(s.load(ORG, "b").is_ok());
    }

    /// The database and its WAL, as bytes.
    fn files_of(db: &Path) -> Vec<u8> {
        database_files(db)
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .flatten()
            .collect()
    }

    #[test]
    fn retire_leaves_no_ciphertext_and_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keys.sqlite");
        let mut s = store(dir.path(), [7; 32]);
        s.ensure(ORG, "a").unwrap();
        s.rotate(ORG, "a").unwrap();
        let old: Vec<u8> = s
            .conn
            .query_row(
                "SELECT ciphertext FROM key_versions WHERE scope = 'a' AND version = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old.len(), 48);
        let contains = |bytes: &[u8]| bytes.windows(old.len()).any(|w| w == old.as_slice());
        assert!(contains(&files_of(&db)), "the ciphertext is stored before");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for f in database_files(&db) {
                if let Ok(m) = std::fs::metadata(&f) {
                    assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", f.display());
                }
            }
        }
        s.retire(ORG, "a", 1, unix_now(), 0).unwrap();
        assert!(
            !contains(&files_of(&db)),
            "the retired ciphertext is gone from every file"
        );
        assert_eq!(s.load(ORG, "a").unwrap().version_numbers(), vec![2]);
        drop(s);
        // A database made readable by others is made owner-only again.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
            drop(store(dir.path(), [7; 32]));
            let mode = std::fs::metadata(&db).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn binding_keys_are_made_with_the_domain_encrypted_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path(), [7; 32]);
        s.ensure(ORG, "a").unwrap();
        let first = *s.load(ORG, "a").unwrap().binding_key().unwrap();
        s.rotate(ORG, "a").unwrap();
        s.retire(ORG, "a", 1, unix_now(), 0).unwrap();
        let keys = s.load(ORG, "a").unwrap();
        assert_eq!(*keys.binding_key().unwrap(), first, "never rotated");
        assert!(!s.ensure_binding(ORG, "a").unwrap());
        // Provider keys are k·t_p of each version, different per provider.
        let a = keys.for_provider(ORG, "a", "ura:00000001").unwrap();
        let b = keys.for_provider(ORG, "a", "ura:00000002").unwrap();
        assert_eq!(a.version_numbers(), keys.version_numbers());
        assert_ne!(
            *a.current().unwrap().1.to_bytes(),
            *b.current().unwrap().1.to_bytes()
        );
        assert!(
            a.for_provider(ORG, "a", "ura:00000001").is_err(),
            "no binding key of its own"
        );
        drop(s);
        let bytes = files_of(&dir.path().join("keys.sqlite"));
        assert!(
            !bytes.windows(32).any(|w| w == first.as_slice()),
            "encrypted at rest"
        );
        // The wrong master key cannot read it.
        let wrong = store(dir.path(), [8; 32]);
        assert!(wrong.load_binding(ORG, "a").is_err());
    }

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
