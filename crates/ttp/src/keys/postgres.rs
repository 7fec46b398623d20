//! The key store's rows in PostgreSQL (`[keys] url`): one database shared
//! by TTP replicas on several machines, so that a rotation or retirement
//! made with the command line on any of them is seen by every replica at
//! its next request (the key epoch, read before each use of the cache).
//!
//! - The tables are a migration (`refinery`,
//!   `crates/ttp/migrations/keys/postgres/`, history in `key_migrations`,
//!   so the ledger may share the database), run under an advisory lock.
//! - A change is one transaction that first locks `key_versions` against
//!   other changes (`SHARE ROW EXCLUSIVE`: reads go on), so two operators
//!   rotating at once make two versions one after the other, never the
//!   same number twice. Commits wait for the WAL flush (the default): a
//!   version that was reported made is never lost by a crash.
//! - Reads are retried on another connection when the server had ended
//!   this one's backend (a restart of the database); a change runs once,
//!   on a connection probed just before (except making a domain's first
//!   version, which makes nothing the second time, and is retried).
//! - **Retiring** drops the sealed key from its row and rewrites the table
//!   (`VACUUM FULL key_versions`, a table of a few rows), so no page of
//!   the live table holds the old ciphertext. PostgreSQL cannot overwrite
//!   what it wrote before: the old row stays in the WAL segments until they
//!   are recycled, in a WAL archive and in base backups until they expire,
//!   and in the filesystem blocks of the old table file. Each is sealed
//!   under the master key, which is not in the database (on the token of
//!   `[hsm]`, or a key file), so an old version is readable only with the
//!   database's history *and* the master key; it is destroyed for good when
//!   the last backup that holds it is (docs/operations.md, "Keys in
//!   PostgreSQL").

use anyhow::{anyhow, bail, Context};

use super::{
    KeyRows, KeyStatus, KeyVersionInfo, KeysConfig, RetireFacts, Sealed, StoredBinding, StoredKeys,
    StoredVersion,
};
use crate::pg::{self, is_lost, Connection, PoolHandle};

mod embedded {
    refinery::embed_migrations!("migrations/keys/postgres");
}

/// The advisory lock replicas take while they migrate the key store.
const MIGRATION_LOCK: i64 = 0x7073_6675_6b65_7973;

/// Sets the key store's session settings on each new connection.
#[derive(Debug)]
struct Session;

impl r2d2::CustomizeConnection<postgres::Client, postgres::Error> for Session {
    fn on_acquire(&self, conn: &mut postgres::Client) -> Result<(), postgres::Error> {
        // A change waits for another (or a retirement's rewrite) this long
        // before it fails. Reads wait only for a rewrite (VACUUM FULL holds
        // the table exclusively for the few milliseconds a table of a few
        // rows takes).
        conn.batch_execute("SET lock_timeout = '10s'; SET statement_timeout = '30s'")
    }
}

const EPOCH: &str = "SELECT epoch FROM key_epoch WHERE id = 1";
const ACTIVE: &str = "SELECT version, nonce, ciphertext FROM key_versions
     WHERE organization = $1 AND scope = $2 AND status = 'active' ORDER BY version DESC";
const BINDING: &str =
    "SELECT nonce, ciphertext FROM binding_keys WHERE organization = $1 AND scope = $2";
const BUMP_EPOCH: &str = "INSERT INTO key_epoch (id, epoch) VALUES (1, 1)
     ON CONFLICT (id) DO UPDATE SET epoch = key_epoch.epoch + 1";
const LOCK: &str = "LOCK TABLE key_versions IN SHARE ROW EXCLUSIVE MODE";
const INSERT_BINDING: &str =
    "INSERT INTO binding_keys (organization, scope, created_at, nonce, ciphertext)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (organization, scope) DO NOTHING";

/// The read statements of one connection, prepared at its first use and
/// kept with it in the pool: the epoch read of every request is one round
/// trip.
#[derive(Clone)]
struct Statements {
    epoch: postgres::Statement,
    active: postgres::Statement,
    binding: postgres::Statement,
}

fn statements(conn: &mut Connection) -> Result<Statements, postgres::Error> {
    if let Some(prepared) = r2d2::PooledConnection::extensions(conn).get::<Statements>() {
        return Ok(prepared.clone());
    }
    let prepared = Statements {
        epoch: conn.prepare(EPOCH)?,
        active: conn.prepare(ACTIVE)?,
        binding: conn.prepare(BINDING)?,
    };
    r2d2::PooledConnection::extensions_mut(conn).insert(prepared.clone());
    Ok(prepared)
}

/// The key versions in a PostgreSQL database.
pub(crate) struct PostgresKeys {
    pool: PoolHandle,
}

impl std::fmt::Debug for PostgresKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool's configuration holds the password: never printed.
        f.debug_struct("PostgresKeys").finish_non_exhaustive()
    }
}

fn version_of(stored: i64) -> anyhow::Result<u32> {
    u32::try_from(stored).map_err(|_| anyhow!("a stored key version is out of range"))
}

/// Stores the binding key `bind` makes in `tx`, if the domain has none;
/// whether one was stored (another replica's may have come first).
fn insert_binding(
    tx: &mut postgres::Transaction<'_>,
    organization: &str,
    scope: &str,
    now: i64,
    bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
) -> anyhow::Result<bool> {
    let exists = tx
        .query_opt(
            "SELECT 1 FROM binding_keys WHERE organization = $1 AND scope = $2",
            &[&organization, &scope],
        )?
        .is_some();
    if exists {
        return Ok(false);
    }
    let sealed = bind()?;
    let stored = tx.execute(
        INSERT_BINDING,
        &[
            &organization,
            &scope,
            &now,
            &sealed.nonce,
            &sealed.ciphertext,
        ],
    )?;
    Ok(stored == 1)
}

impl PostgresKeys {
    /// Connects to the database of `config.url` and migrates it.
    pub(crate) fn open(config: &KeysConfig) -> anyhow::Result<Self> {
        pg::off_runtime("opening the key store's PostgreSQL", || {
            let pool = pg::pool(&config.section(), Box::new(Session))?;
            let mut runner = embedded::migrations::runner();
            runner.set_migration_table_name(super::MIGRATION_TABLE);
            pg::migrate(pool.get()?, MIGRATION_LOCK, runner, "the key store")?;
            Ok(PostgresKeys { pool })
        })
    }

    /// Runs `f` on a pooled connection. A read (`retry`) runs again on
    /// another connection while the server had ended the backends of the
    /// pooled ones (after a restart of the database). A change runs once:
    /// its connection is probed first, so a stale one is replaced before
    /// anything of the change is sent, and a connection lost during the
    /// change fails it (it may have committed).
    fn with_connection<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut Connection, &Statements) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut closed = 0;
        loop {
            let pool = self.pool.get()?;
            let mut conn = pool
                .get()
                .context("no connection to the key store's PostgreSQL")?;
            // A connection whose end the client has already seen (the
            // server ended it while it was idle in the pool) is dropped
            // before anything is sent on it.
            if conn.is_closed() && closed <= pool.max_size() {
                closed += 1;
                continue;
            }
            let max = pool.max_size();
            let prepared = match statements(&mut conn) {
                Ok(prepared) => prepared,
                Err(e) if is_lost(&e, &conn) && closed <= max => {
                    closed += 1;
                    continue;
                }
                Err(e) => return Err(e).context("the key store's PostgreSQL failed"),
            };
            if !retry {
                // Nothing of the change is sent yet: any loss here is safe
                // to meet on another connection.
                match conn.batch_execute("SELECT 1") {
                    Ok(()) => {}
                    Err(e) if is_lost(&e, &conn) && closed <= max => {
                        closed += 1;
                        continue;
                    }
                    Err(e) => return Err(e).context("the key store's PostgreSQL failed"),
                }
                return f(&mut conn, &prepared).context("the key store's PostgreSQL failed");
            }
            match f(&mut conn, &prepared) {
                Err(e)
                    if e.downcast_ref::<postgres::Error>()
                        .is_some_and(|e| is_lost(e, &conn))
                        && closed <= max =>
                {
                    closed += 1;
                }
                other => return other.context("the key store's PostgreSQL failed"),
            }
        }
    }

    /// Rewrites `tables` without their dead rows (outside a transaction,
    /// as VACUUM must be); `what` says what stays if it cannot.
    fn rewrite(&self, tables: &str, what: &str) -> anyhow::Result<()> {
        self.with_connection(true, |conn, _| {
            Ok(conn.batch_execute(&format!("VACUUM FULL {tables}"))?)
        })
        .with_context(|| format!("{what}, but the table could not be rewritten: run `VACUUM FULL {tables}` on the database"))
    }
}

impl KeyRows for PostgresKeys {
    fn blocks_on_runtime(&self) -> bool {
        true
    }

    fn versions(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<KeyVersionInfo>> {
        self.with_connection(true, |conn, _| {
            conn.query(
                "SELECT version, status, created_at, retired_at FROM key_versions
                 WHERE organization = $1 AND scope = $2 ORDER BY version",
                &[&organization, &scope],
            )?
            .iter()
            .map(|row| {
                Ok(KeyVersionInfo {
                    version: version_of(row.try_get(0)?)?,
                    status: KeyStatus::from_name(row.try_get(1)?),
                    created_at: row.try_get(2)?,
                    retired_at: row.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn active(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<(u32, Sealed)>> {
        self.with_connection(true, |conn, st| {
            conn.query(&st.active, &[&organization, &scope])?
                .iter()
                .map(|row| {
                    Ok((
                        version_of(row.try_get(0)?)?,
                        Sealed {
                            nonce: row.try_get(1)?,
                            ciphertext: row.try_get(2)?,
                        },
                    ))
                })
                .collect()
        })
    }

    fn binding(&mut self, organization: &str, scope: &str) -> anyhow::Result<Option<Sealed>> {
        self.with_connection(true, |conn, st| {
            conn.query_opt(&st.binding, &[&organization, &scope])?
                .map(|row| {
                    Ok(Sealed {
                        nonce: row.try_get(0)?,
                        ciphertext: row.try_get(1)?,
                    })
                })
                .transpose()
        })
    }

    fn epoch(&mut self) -> anyhow::Result<i64> {
        self.with_connection(true, |conn, st| {
            Ok(conn
                .query_opt(&st.epoch, &[])?
                .map(|row| row.try_get(0))
                .transpose()?
                .unwrap_or(0))
        })
    }

    fn add_version(
        &mut self,
        organization: &str,
        scope: &str,
        only_if_empty: bool,
        now: i64,
        seal: &mut dyn FnMut(u32) -> anyhow::Result<Sealed>,
        bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
    ) -> anyhow::Result<Option<u32>> {
        // Making a first version makes nothing when one exists: it may be
        // tried again. A rotation may not (it would make two).
        self.with_connection(only_if_empty, |conn, _| {
            let mut tx = conn.transaction()?;
            tx.batch_execute(LOCK)?;
            let last: Option<i64> = tx
                .query_one(
                    "SELECT MAX(version) FROM key_versions WHERE organization = $1 AND scope = $2",
                    &[&organization, &scope],
                )?
                .try_get(0)?;
            if only_if_empty && last.is_some() {
                return Ok(None);
            }
            let last = last.map(version_of).transpose()?.unwrap_or(0);
            let Some(version) = last.checked_add(1) else {
                bail!("too many key versions");
            };
            let sealed = seal(version)?;
            tx.execute(
                "INSERT INTO key_versions (organization, scope, version, status, created_at, nonce, ciphertext)
                 VALUES ($1, $2, $3, 'active', $4, $5, $6)",
                &[
                    &organization,
                    &scope,
                    &i64::from(version),
                    &now,
                    &sealed.nonce,
                    &sealed.ciphertext,
                ],
            )?;
            insert_binding(&mut tx, organization, scope, now, &mut *bind)?;
            tx.execute(BUMP_EPOCH, &[])?;
            tx.commit()?;
            Ok(Some(version))
        })
    }

    fn add_binding(
        &mut self,
        organization: &str,
        scope: &str,
        now: i64,
        bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
    ) -> anyhow::Result<bool> {
        // Makes nothing when the domain has one: may be tried again.
        self.with_connection(true, |conn, _| {
            let mut tx = conn.transaction()?;
            let made = insert_binding(&mut tx, organization, scope, now, &mut *bind)?;
            if made {
                tx.execute(BUMP_EPOCH, &[])?;
            }
            tx.commit()?;
            Ok(made)
        })
    }

    fn dump(&mut self) -> anyhow::Result<StoredKeys> {
        self.with_connection(true, |conn, st| {
            // One snapshot: the epoch and the rows of one moment.
            let mut tx = conn
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let versions = tx
                .query(
                    "SELECT organization, scope, version, status, created_at, retired_at, nonce, ciphertext
                     FROM key_versions ORDER BY organization COLLATE \"C\", scope COLLATE \"C\", version",
                    &[],
                )?
                .iter()
                .map(|row| {
                    let nonce: Option<Vec<u8>> = row.try_get(6)?;
                    let ciphertext: Option<Vec<u8>> = row.try_get(7)?;
                    Ok(StoredVersion {
                        organization: row.try_get(0)?,
                        scope: row.try_get(1)?,
                        info: KeyVersionInfo {
                            version: version_of(row.try_get(2)?)?,
                            status: KeyStatus::from_name(row.try_get(3)?),
                            created_at: row.try_get(4)?,
                            retired_at: row.try_get(5)?,
                        },
                        sealed: nonce
                            .zip(ciphertext)
                            .map(|(nonce, ciphertext)| Sealed { nonce, ciphertext }),
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let bindings = tx
                .query(
                    "SELECT organization, scope, created_at, nonce, ciphertext FROM binding_keys
                     ORDER BY organization COLLATE \"C\", scope COLLATE \"C\"",
                    &[],
                )?
                .iter()
                .map(|row| {
                    Ok(StoredBinding {
                        organization: row.try_get(0)?,
                        scope: row.try_get(1)?,
                        created_at: row.try_get(2)?,
                        sealed: Sealed {
                            nonce: row.try_get(3)?,
                            ciphertext: row.try_get(4)?,
                        },
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let epoch = tx
                .query_opt(&st.epoch, &[])?
                .map(|row| row.try_get(0))
                .transpose()?
                .unwrap_or(0);
            tx.commit()?;
            Ok(StoredKeys {
                versions,
                bindings,
                epoch,
            })
        })
    }

    fn restore(&mut self, keys: &StoredKeys) -> anyhow::Result<()> {
        self.with_connection(false, |conn, _| {
            let mut tx = conn.transaction()?;
            tx.batch_execute(LOCK)?;
            let held: i64 = tx
                .query_one(
                    "SELECT (SELECT COUNT(*) FROM key_versions) + (SELECT COUNT(*) FROM binding_keys)",
                    &[],
                )?
                .try_get(0)?;
            if held > 0 {
                bail!("the new key store already holds keys: it must be empty");
            }
            for v in &keys.versions {
                tx.execute(
                    "INSERT INTO key_versions (organization, scope, version, status, created_at, retired_at, nonce, ciphertext)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        &v.organization,
                        &v.scope,
                        &i64::from(v.info.version),
                        &v.info.status.name(),
                        &v.info.created_at,
                        &v.info.retired_at,
                        &v.sealed.as_ref().map(|s| &s.nonce),
                        &v.sealed.as_ref().map(|s| &s.ciphertext),
                    ],
                )?;
            }
            for b in &keys.bindings {
                tx.execute(
                    "INSERT INTO binding_keys (organization, scope, created_at, nonce, ciphertext)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &b.organization,
                        &b.scope,
                        &b.created_at,
                        &b.sealed.nonce,
                        &b.sealed.ciphertext,
                    ],
                )?;
            }
            tx.execute(
                "INSERT INTO key_epoch (id, epoch) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET epoch = GREATEST(key_epoch.epoch, excluded.epoch - 1) + 1",
                &[&keys.epoch.saturating_add(1)],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn clear(&mut self, epoch: i64) -> anyhow::Result<()> {
        self.with_connection(false, |conn, st| {
            let mut tx = conn.transaction()?;
            tx.batch_execute(LOCK)?;
            let now: i64 = tx
                .query_opt(&st.epoch, &[])?
                .map(|row| row.try_get(0))
                .transpose()?
                .unwrap_or(0);
            if now != epoch {
                bail!("{}", super::CHANGED_DURING_MOVE);
            }
            tx.execute("DELETE FROM key_versions", &[])?;
            tx.execute("DELETE FROM binding_keys", &[])?;
            tx.execute(BUMP_EPOCH, &[])?;
            tx.commit()?;
            Ok(())
        })?;
        self.rewrite("key_versions, binding_keys", "the keys are deleted")
    }

    fn retire(
        &mut self,
        organization: &str,
        scope: &str,
        version: u32,
        now: i64,
        allow: &dyn Fn(&RetireFacts) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let stored = i64::from(version);
        self.with_connection(false, |conn, _| {
            let mut tx = conn.transaction()?;
            tx.batch_execute(LOCK)?;
            let current: Option<i64> = tx
                .query_one(
                    "SELECT MAX(version) FROM key_versions
                     WHERE organization = $1 AND scope = $2 AND status = 'active'",
                    &[&organization, &scope],
                )?
                .try_get(0)?;
            let status: Option<String> = tx
                .query_opt(
                    "SELECT status FROM key_versions
                     WHERE organization = $1 AND scope = $2 AND version = $3",
                    &[&organization, &scope, &stored],
                )?
                .map(|row| row.try_get(0))
                .transpose()?;
            let superseded_at: Option<i64> = tx
                .query_one(
                    "SELECT MIN(created_at) FROM key_versions
                     WHERE organization = $1 AND scope = $2 AND version > $3",
                    &[&organization, &scope, &stored],
                )?
                .try_get(0)?;
            allow(&RetireFacts {
                status: status.as_deref().map(KeyStatus::from_name),
                current: current.map(version_of).transpose()?,
                superseded_at,
            })?;
            tx.execute(
                "UPDATE key_versions SET status = 'retired', retired_at = $4, nonce = NULL, ciphertext = NULL
                 WHERE organization = $1 AND scope = $2 AND version = $3",
                &[&organization, &scope, &stored, &now],
            )?;
            tx.execute(BUMP_EPOCH, &[])?;
            tx.commit()?;
            Ok(())
        })?;
        // The old row version is dead but still in the table's pages:
        // rewrite the table without it.
        self.rewrite(
            "key_versions",
            &format!("{organization}/{scope} v{version} is retired (its old ciphertext stays in the table's free space until then)"),
        )
    }
}
