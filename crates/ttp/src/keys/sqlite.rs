//! The key store's rows in the TTP's SQLite database, the embedded
//! default: shared by the processes of one machine.
//!
//! Its tables are a migration (`refinery`, `crates/ttp/migrations/keys/sqlite/`,
//! history in `key_migrations`, apart from other stores' migrations), made
//! with `IF NOT EXISTS` so a database from before migrations is taken over
//! as it is. A change is an `IMMEDIATE` transaction (the write lock taken at
//! its start, so two processes rotating at once take turns). The database
//! runs with `secure_delete`, and a retirement checkpoints the WAL: the
//! retired ciphertext is overwritten in the database file and gone from the
//! log.

use std::path::Path;

use anyhow::{bail, Context};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    open_database, KeyRows, KeyStatus, KeyVersionInfo, RetireFacts, Sealed, StoredBinding,
    StoredKeys, StoredVersion, CHANGED_DURING_MOVE,
};

mod embedded {
    refinery::embed_migrations!("migrations/keys/sqlite");
}

/// The key versions in a SQLite database.
#[derive(Debug)]
pub(crate) struct SqliteKeys {
    conn: Connection,
}

impl SqliteKeys {
    /// Opens the database at `path` (owner-only), with `secure_delete`,
    /// and migrates it.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = open_database(path)?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        embedded::migrations::runner()
            .set_migration_table_name(super::MIGRATION_TABLE)
            .run(&mut conn)
            .context("cannot migrate the key store's tables")?;
        // A restart gives back what a long WAL took (after a full disk).
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "the write-ahead log could not be checkpointed");
        }
        Ok(SqliteKeys { conn })
    }
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

/// Refuses a new key in a database whose keys were moved to PostgreSQL.
fn refuse_if_moved(tx: &rusqlite::Transaction<'_>) -> anyhow::Result<()> {
    let moved: Option<i64> = tx
        .query_row("SELECT moved_at FROM keys_moved WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    if moved.is_some() {
        bail!("the keys of this database were moved to PostgreSQL (pseudoform-ttp move-keys): set [keys] url to use them");
    }
    Ok(())
}

/// Stores the binding key `bind` makes in `tx`, if the domain has none.
fn insert_binding(
    tx: &rusqlite::Transaction<'_>,
    organization: &str,
    scope: &str,
    now: i64,
    bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
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
    let sealed = bind()?;
    tx.execute(
        "INSERT INTO binding_keys (organization, scope, created_at, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![organization, scope, now, sealed.nonce, sealed.ciphertext],
    )?;
    Ok(true)
}

impl KeyRows for SqliteKeys {
    fn blocks_on_runtime(&self) -> bool {
        false
    }

    fn versions(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<KeyVersionInfo>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, status, created_at, retired_at FROM key_versions
             WHERE organization = ?1 AND scope = ?2 ORDER BY version",
        )?;
        let rows = stmt.query_map(params![organization, scope], |row| {
            Ok(KeyVersionInfo {
                version: row.get(0)?,
                status: KeyStatus::from_name(&row.get::<_, String>(1)?),
                created_at: row.get(2)?,
                retired_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn active(&mut self, organization: &str, scope: &str) -> anyhow::Result<Vec<(u32, Sealed)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, nonce, ciphertext FROM key_versions
             WHERE organization = ?1 AND scope = ?2 AND status = 'active' ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![organization, scope], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                Sealed {
                    nonce: row.get(1)?,
                    ciphertext: row.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn binding(&mut self, organization: &str, scope: &str) -> anyhow::Result<Option<Sealed>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT nonce, ciphertext FROM binding_keys WHERE organization = ?1 AND scope = ?2",
            )?
            .query_row(params![organization, scope], |row| {
                Ok(Sealed {
                    nonce: row.get(0)?,
                    ciphertext: row.get(1)?,
                })
            })
            .optional()?)
    }

    fn epoch(&mut self) -> anyhow::Result<i64> {
        let epoch: Option<i64> = self
            .conn
            .prepare_cached("SELECT epoch FROM key_epoch WHERE id = 1")?
            .query_row([], |row| row.get(0))
            .optional()?;
        Ok(epoch.unwrap_or(0))
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
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_if_moved(&tx)?;
        let last: Option<u32> = tx.query_row(
            "SELECT MAX(version) FROM key_versions WHERE organization = ?1 AND scope = ?2",
            params![organization, scope],
            |row| row.get(0),
        )?;
        if only_if_empty && last.is_some() {
            return Ok(None);
        }
        let Some(version) = last.unwrap_or(0).checked_add(1) else {
            bail!("too many key versions");
        };
        let sealed = seal(version)?;
        tx.execute(
            "INSERT INTO key_versions (organization, scope, version, status, created_at, nonce, ciphertext)
             VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6)",
            params![organization, scope, version, now, sealed.nonce, sealed.ciphertext],
        )?;
        insert_binding(&tx, organization, scope, now, bind)?;
        bump_epoch(&tx)?;
        tx.commit()?;
        Ok(Some(version))
    }

    fn add_binding(
        &mut self,
        organization: &str,
        scope: &str,
        now: i64,
        bind: &mut dyn FnMut() -> anyhow::Result<Sealed>,
    ) -> anyhow::Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        refuse_if_moved(&tx)?;
        let made = insert_binding(&tx, organization, scope, now, bind)?;
        if made {
            bump_epoch(&tx)?;
        }
        tx.commit()?;
        Ok(made)
    }

    fn dump(&mut self) -> anyhow::Result<StoredKeys> {
        // One read transaction: the epoch and the rows of one moment.
        let tx = self.conn.transaction()?;
        let epoch: i64 = tx
            .query_row("SELECT epoch FROM key_epoch WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mut stmt = tx.prepare(
            "SELECT organization, scope, version, status, created_at, retired_at, nonce, ciphertext
             FROM key_versions ORDER BY organization, scope, version",
        )?;
        let versions = stmt
            .query_map([], |row| {
                let nonce: Option<Vec<u8>> = row.get(6)?;
                let ciphertext: Option<Vec<u8>> = row.get(7)?;
                Ok(StoredVersion {
                    organization: row.get(0)?,
                    scope: row.get(1)?,
                    info: KeyVersionInfo {
                        version: row.get(2)?,
                        status: KeyStatus::from_name(&row.get::<_, String>(3)?),
                        created_at: row.get(4)?,
                        retired_at: row.get(5)?,
                    },
                    sealed: nonce
                        .zip(ciphertext)
                        .map(|(nonce, ciphertext)| Sealed { nonce, ciphertext }),
                })
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        let mut stmt = tx.prepare(
            "SELECT organization, scope, created_at, nonce, ciphertext FROM binding_keys
             ORDER BY organization, scope",
        )?;
        let bindings = stmt
            .query_map([], |row| {
                Ok(StoredBinding {
                    organization: row.get(0)?,
                    scope: row.get(1)?,
                    created_at: row.get(2)?,
                    sealed: Sealed {
                        nonce: row.get(3)?,
                        ciphertext: row.get(4)?,
                    },
                })
            })?
            .collect::<Result<_, _>>()?;
        drop(stmt);
        tx.commit()?;
        Ok(StoredKeys {
            versions,
            bindings,
            epoch,
        })
    }

    fn restore(&mut self, keys: &StoredKeys) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM key_versions) + (SELECT COUNT(*) FROM binding_keys)",
            [],
            |r| r.get(0),
        )?;
        if held > 0 {
            bail!("the new key store already holds keys: it must be empty");
        }
        for v in &keys.versions {
            tx.execute(
                "INSERT INTO key_versions (organization, scope, version, status, created_at, retired_at, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    v.organization,
                    v.scope,
                    v.info.version,
                    v.info.status.name(),
                    v.info.created_at,
                    v.info.retired_at,
                    v.sealed.as_ref().map(|s| &s.nonce),
                    v.sealed.as_ref().map(|s| &s.ciphertext),
                ],
            )?;
        }
        for b in &keys.bindings {
            tx.execute(
                "INSERT INTO binding_keys (organization, scope, created_at, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![b.organization, b.scope, b.created_at, b.sealed.nonce, b.sealed.ciphertext],
            )?;
        }
        tx.execute(
            "INSERT INTO key_epoch (id, epoch) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET epoch = MAX(epoch, excluded.epoch - 1) + 1",
            params![keys.epoch.saturating_add(1)],
        )?;
        tx.execute("DELETE FROM keys_moved", [])?;
        tx.commit()?;
        Ok(())
    }

    fn clear(&mut self, epoch: i64) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now: i64 = tx
            .query_row("SELECT epoch FROM key_epoch WHERE id = 1", [], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if now != epoch {
            bail!("{CHANGED_DURING_MOVE}");
        }
        tx.execute("DELETE FROM key_versions", [])?;
        tx.execute("DELETE FROM binding_keys", [])?;
        tx.execute(
            "INSERT OR REPLACE INTO keys_moved (id, moved_at) VALUES (1, ?1)",
            params![pseudoform_protocol::unix_now()],
        )?;
        bump_epoch(&tx)?;
        tx.commit()?;
        // The rows are gone; a busy WAL only delays their erasure from it
        // to the next checkpoint (a server's start), which is said, not
        // failed on.
        if let Err(e) = self.checkpoint("the deleted keys") {
            tracing::warn!(error = %e, "the moved keys are deleted, but not yet checkpointed");
            eprintln!("warning: {e:#}");
        }
        Ok(())
    }

    fn retire(
        &mut self,
        organization: &str,
        scope: &str,
        version: u32,
        now: i64,
        allow: &dyn Fn(&RetireFacts) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: Option<u32> = tx.query_row(
            "SELECT MAX(version) FROM key_versions
             WHERE organization = ?1 AND scope = ?2 AND status = 'active'",
            params![organization, scope],
            |row| row.get(0),
        )?;
        let status: Option<String> = tx
            .query_row(
                "SELECT status FROM key_versions WHERE organization = ?1 AND scope = ?2 AND version = ?3",
                params![organization, scope, version],
                |row| row.get(0),
            )
            .optional()?;
        let superseded_at: Option<i64> = tx.query_row(
            "SELECT MIN(created_at) FROM key_versions
             WHERE organization = ?1 AND scope = ?2 AND version > ?3",
            params![organization, scope, version],
            |row| row.get(0),
        )?;
        allow(&RetireFacts {
            status: status.as_deref().map(KeyStatus::from_name),
            current,
            superseded_at,
        })?;
        tx.execute(
            "UPDATE key_versions SET status = 'retired', retired_at = ?4, nonce = NULL, ciphertext = NULL
             WHERE organization = ?1 AND scope = ?2 AND version = ?3",
            params![organization, scope, version, now],
        )?;
        bump_epoch(&tx)?;
        tx.commit()?;
        self.checkpoint(&format!("the key of {organization}/{scope} v{version}"))
    }
}

impl SqliteKeys {
    /// Copies the WAL into the database and empties it: `secure_delete`
    /// has overwritten the freed cells in the pages written to the WAL, so
    /// after this what a change deleted (`what`) is in neither file.
    fn checkpoint(&mut self, what: &str) -> anyhow::Result<()> {
        let (busy, _, _): (i64, i64, i64) =
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        if busy != 0 {
            bail!(
                "the change is made, but the database is busy: {what} may stay in the WAL until the next checkpoint (the next start of a server, or a retirement when the servers are idle)"
            );
        }
        Ok(())
    }
}

/// Whether the SQLite database at `path` holds key versions or binding
/// keys (of a TTP from before `[keys] url`, or from before binding keys);
/// false when it has neither table.
pub(crate) fn holds_keys(path: &Path) -> anyhow::Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open database {}", path.display()))?;
    for table in ["key_versions", "binding_keys"] {
        let exists: i64 = conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![table],
            |r| r.get(0),
        )?;
        if exists == 0 {
            continue;
        }
        let rows: i64 =
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
        if rows > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}
