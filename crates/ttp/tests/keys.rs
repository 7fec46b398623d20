//! The key store's properties, checked the same way on both stores: the
//! TTP's SQLite database and PostgreSQL (a real server of the test,
//! [`pseudoform_testkit::postgres`]). Then what each store promises of its
//! files: a retired ciphertext is gone from the SQLite files, and from the
//! PostgreSQL table's file; and what replicas need of PostgreSQL: two
//! stores on one database rotating at once make distinct versions, a
//! server's cache sees another machine's rotation at its next use,
//! connections the server ended are replaced, and the ledger may share
//! the database.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pseudoform_protocol::unix_now;
use pseudoform_testkit::postgres::{database_of, Postgres};
use pseudoform_ttp::keys::{database_files, KeyCache, KeyStatus, KeyStore, KeysConfig, MasterKey};
use pseudoform_ttp::ledger::PostgresLedger;

const ORG: &str = "oin:00000001000000001000";

fn master(byte: u8) -> MasterKey {
    MasterKey::from_text(&pseudoform_core::encoding::encode(&[byte; 32])).unwrap()
}

/// One store under test: opening it (again and again: a restart, another
/// process or machine) with a master key, and raw SQL on its database (as
/// someone with the database but not the master key).
struct Store<'a> {
    open: &'a (dyn Fn(MasterKey) -> KeyStore + Sync),
    execute: &'a dyn Fn(&str),
    blobs: &'a dyn Fn(&str) -> Vec<Vec<u8>>,
}

fn versions_rotate_retire_and_encryption_at_rest(store: &Store<'_>) {
    let mut s = (store.open)(master(7));
    assert!(s.load(ORG, "a").unwrap().current().is_none());
    assert_eq!(s.ensure(ORG, "a").unwrap(), Some(1));
    assert_eq!(s.ensure(ORG, "a").unwrap(), None);
    let k1 = s.load(ORG, "a").unwrap().current().unwrap().1.to_bytes();
    assert_eq!(s.rotate(ORG, "a").unwrap(), 2);
    let d = s.load(ORG, "a").unwrap();
    assert_eq!(d.version_numbers(), vec![2, 1]);
    assert_eq!(*d.version(1).unwrap().to_bytes(), *k1);
    let now = unix_now();
    let refused = |r: anyhow::Result<()>| format!("{:#}", r.unwrap_err());
    assert!(refused(s.retire(ORG, "a", 2, now, 0)).contains("rotate first"));
    assert!(refused(s.retire(ORG, "a", 1, now, 60)).contains("retire in"));
    let epoch = s.epoch().unwrap();
    s.retire(ORG, "a", 1, now + 60, 60).unwrap();
    assert_eq!(
        s.epoch().unwrap(),
        epoch + 1,
        "a retirement bumps the epoch"
    );
    assert!(refused(s.retire(ORG, "a", 1, now + 60, 0)).contains("already retired"));
    assert!(refused(s.retire(ORG, "a", 9, now + 60, 0)).contains("no key version 9"));
    assert_eq!(s.load(ORG, "a").unwrap().version_numbers(), vec![2]);
    assert_eq!(s.rotate(ORG, "a").unwrap(), 3, "a number is never reused");
    // Other domains are separate.
    assert_eq!(s.ensure(ORG, "b").unwrap(), Some(1));
    let infos = s.versions(ORG, "a").unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].status, KeyStatus::Retired);
    assert!(infos[0].retired_at.is_some());
    assert_eq!(infos[2].status, KeyStatus::Active);
    drop(s);

    // What the database holds is sealed: no stored value holds an active
    // key (a v2, a v3, b v1).
    let mut s = (store.open)(master(7));
    let active: Vec<[u8; 32]> = ["a", "b"]
        .iter()
        .flat_map(|scope| {
            let d = s.load(ORG, scope).unwrap();
            d.active().map(|(_, k)| *k.to_bytes()).collect::<Vec<_>>()
        })
        .collect();
    drop(s);
    assert_eq!(active.len(), 3);
    let stored = (store.blobs)("SELECT ciphertext FROM key_versions WHERE ciphertext IS NOT NULL");
    assert_eq!(stored.len(), 3);
    for c in &stored {
        assert_eq!(c.len(), 48, "32 bytes and the tag");
        for key in &active {
            assert!(!c.windows(32).any(|w| w == key.as_slice()));
        }
    }
    assert!(
        (store.blobs)(
            "SELECT ciphertext FROM key_versions
             WHERE version = 1 AND scope = 'a' AND ciphertext IS NOT NULL"
        )
        .is_empty(),
        "a retired version keeps no ciphertext"
    );

    // The wrong master key does not decrypt.
    let mut wrong = (store.open)(master(8));
    assert!(format!("{:#}", wrong.load(ORG, "a").unwrap_err()).contains("wrong master key"));
    drop(wrong);

    // A ciphertext moved to another version does not decrypt (AAD).
    (store.execute)(
        "UPDATE key_versions SET nonce = (SELECT nonce FROM key_versions WHERE scope = 'b'),
         ciphertext = (SELECT ciphertext FROM key_versions WHERE scope = 'b')
         WHERE scope = 'a' AND version = 3",
    );
    let mut s = (store.open)(master(7));
    let moved = format!("{:#}", s.load(ORG, "a").unwrap_err());
    assert!(
        moved.contains("cannot decrypt key") && moved.contains("v3"),
        "{moved}"
    );
    assert!(s.load(ORG, "b").is_ok());
}

fn binding_keys_are_made_with_the_domain_encrypted_and_kept(store: &Store<'_>) {
    let mut s = (store.open)(master(7));
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
    assert!(a.for_provider(ORG, "a", "ura:00000001").is_err());
    drop(s);
    let stored = (store.blobs)("SELECT ciphertext FROM binding_keys");
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].windows(32).any(|w| w == first.as_slice()));
    // A domain from before binding keys gets one, once.
    (store.execute)("DELETE FROM binding_keys");
    let mut s = (store.open)(master(7));
    assert!(s.ensure_binding(ORG, "a").unwrap());
    assert!(!s.ensure_binding(ORG, "a").unwrap());
    assert_ne!(*s.load(ORG, "a").unwrap().binding_key().unwrap(), first);
    // The wrong master key cannot read it.
    let mut wrong = (store.open)(master(8));
    assert!(wrong.ensure(ORG, "c").is_ok(), "a new domain is fine");
    assert!(wrong.load(ORG, "a").is_err());
}

/// Two stores on one database (two operators, or replicas making a first
/// version) rotating at once: every version is made once, with its own
/// number, and a server's cache over a third sees each change at its next
/// use.
fn concurrent_changes_make_distinct_versions_and_caches_follow(store: &Store<'_>) {
    let cache = KeyCache::new((store.open)(master(7)));
    let first = cache.load(ORG, "a").unwrap();
    assert_eq!(first.version_numbers(), vec![1], "made on first use");
    const EACH: u32 = 8;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut store = (store.open)(master(7));
                for _ in 0..EACH {
                    store.rotate(ORG, "a").unwrap();
                }
            });
        }
    });
    let seen = cache.load(ORG, "a").unwrap();
    let expected: Vec<u32> = (1..=2 * EACH + 1).rev().collect();
    assert_eq!(seen.version_numbers(), expected);
    let mut other = (store.open)(master(7));
    other.retire(ORG, "a", 1, unix_now() + 3_600, 60).unwrap();
    assert!(!cache.load(ORG, "a").unwrap().version_numbers().contains(&1));
    // Unchanged epoch: the very same decrypted keys.
    let again = cache.load(ORG, "a").unwrap();
    assert!(Arc::ptr_eq(&again, &cache.load(ORG, "a").unwrap()));
}

// ---- SQLite --------------------------------------------------------------

fn sqlite_store<R>(test: impl FnOnce(&Store<'_>, &Path) -> R) -> R {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ttp.sqlite");
    let open = |m: MasterKey| KeyStore::open(&db, m).unwrap();
    let execute = |sql: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    };
    let blobs = |sql: &str| -> Vec<Vec<u8>> {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    test(
        &Store {
            open: &open,
            execute: &execute,
            blobs: &blobs,
        },
        &db,
    )
}

#[test]
fn sqlite_versions_rotate_retire_and_encryption_at_rest() {
    sqlite_store(|s, _| versions_rotate_retire_and_encryption_at_rest(s));
}

#[test]
fn sqlite_binding_keys() {
    sqlite_store(|s, _| binding_keys_are_made_with_the_domain_encrypted_and_kept(s));
}

#[test]
fn sqlite_concurrent_changes_and_caches() {
    sqlite_store(|s, _| concurrent_changes_make_distinct_versions_and_caches_follow(s));
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
fn sqlite_retire_leaves_no_ciphertext_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    sqlite_store(|store, db| {
        let mut s = (store.open)(master(7));
        s.ensure(ORG, "a").unwrap();
        s.rotate(ORG, "a").unwrap();
        let old = (store.blobs)("SELECT ciphertext FROM key_versions WHERE version = 1")
            .pop()
            .unwrap();
        let contains = |bytes: &[u8]| bytes.windows(old.len()).any(|w| w == old.as_slice());
        assert!(contains(&files_of(db)), "the ciphertext is stored before");
        for f in database_files(db) {
            if let Ok(m) = std::fs::metadata(&f) {
                assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", f.display());
            }
        }
        s.retire(ORG, "a", 1, unix_now(), 0).unwrap();
        assert!(
            !contains(&files_of(db)),
            "the retired ciphertext is gone from every file"
        );
        drop(s);
        // A database made readable by others is made owner-only again.
        std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop((store.open)(master(7)));
        let mode = std::fs::metadata(db).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    });
}

/// A database made before the key store's migrations (its tables, no
/// history) is taken over as it is: its keys still load.
#[test]
fn sqlite_a_database_from_before_migrations_is_taken_over() {
    sqlite_store(|store, db| {
        let mut s = (store.open)(master(7));
        s.ensure(ORG, "a").unwrap();
        let key = s.load(ORG, "a").unwrap().current().unwrap().1.to_bytes();
        drop(s);
        (store.execute)("DROP TABLE key_migrations");
        let mut s = (store.open)(master(7));
        assert_eq!(
            *s.load(ORG, "a").unwrap().current().unwrap().1.to_bytes(),
            *key
        );
        let history: i64 = rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM key_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(history, 2, "V1 (the tables) and V2 (the moved mark)");
    });
}

// ---- PostgreSQL ----------------------------------------------------------

fn postgres_store<R>(test: impl FnOnce(&Store<'_>, &Postgres, &KeysConfig) -> R) -> R {
    let pg = Postgres::start();
    let config = pg.keys_config();
    let database = database_of(config.url.as_deref().unwrap());
    let open = |m: MasterKey| KeyStore::open_postgres(&config, m).unwrap();
    let execute = |sql: &str| {
        std::thread::scope(|s| {
            s.spawn(|| pg.client(&database).unwrap().batch_execute(sql).unwrap())
                .join()
                .unwrap()
        })
    };
    let blobs = |sql: &str| -> Vec<Vec<u8>> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut client = pg.client(&database).unwrap();
                let rows = client.query(sql, &[]).unwrap();
                rows.iter().map(|r| r.get(0)).collect()
            })
            .join()
            .unwrap()
        })
    };
    test(
        &Store {
            open: &open,
            execute: &execute,
            blobs: &blobs,
        },
        &pg,
        &config,
    )
}

#[test]
fn postgres_versions_rotate_retire_and_encryption_at_rest() {
    postgres_store(|s, _, _| versions_rotate_retire_and_encryption_at_rest(s));
}

#[test]
fn postgres_binding_keys() {
    postgres_store(|s, _, _| binding_keys_are_made_with_the_domain_encrypted_and_kept(s));
}

#[test]
fn postgres_concurrent_changes_and_caches() {
    postgres_store(|s, _, _| concurrent_changes_make_distinct_versions_and_caches_follow(s));
}

/// The files of a table: its relation file and the segments after it.
fn relation_files(pg: &Postgres, database: &str, table: &str) -> Vec<PathBuf> {
    let relative: String = std::thread::scope(|s| {
        s.spawn(|| {
            pg.client(database)
                .unwrap()
                .query_one(&format!("SELECT pg_relation_filepath('{table}')"), &[])
                .unwrap()
                .get(0)
        })
        .join()
        .unwrap()
    });
    let first = pg.data_dir().join(relative);
    let mut files = vec![first.clone()];
    for n in 1.. {
        let next = PathBuf::from(format!("{}.{n}", first.display()));
        if !next.exists() {
            break;
        }
        files.push(next);
    }
    files
}

/// Retiring on PostgreSQL leaves the ciphertext in no page of the table:
/// it is in the table's file before (once written out by a checkpoint),
/// not in the rewritten file after, and the old file is gone or empty.
#[test]
fn postgres_retire_leaves_no_ciphertext_in_the_table() {
    postgres_store(|store, pg, config| {
        let database = database_of(config.url.as_deref().unwrap());
        let mut s = (store.open)(master(7));
        s.ensure(ORG, "a").unwrap();
        s.rotate(ORG, "a").unwrap();
        let old = (store.blobs)("SELECT ciphertext FROM key_versions WHERE version = 1")
            .pop()
            .unwrap();
        let holds = |files: &[PathBuf]| {
            files.iter().any(|f| {
                std::fs::read(f)
                    .unwrap_or_default()
                    .windows(old.len())
                    .any(|w| w == old.as_slice())
            })
        };
        (store.execute)("CHECKPOINT");
        let before = relation_files(pg, &database, "key_versions");
        assert!(
            holds(&before),
            "the ciphertext is in the table's file before"
        );
        s.retire(ORG, "a", 1, unix_now(), 0).unwrap();
        (store.execute)("CHECKPOINT");
        let after = relation_files(pg, &database, "key_versions");
        assert_ne!(before, after, "the table was rewritten");
        assert!(!holds(&after), "not in the rewritten table");
        for old_file in &before {
            let left = std::fs::metadata(old_file).map_or(0, |m| m.len());
            assert_eq!(left, 0, "{} still holds data", old_file.display());
        }
        assert_eq!(s.load(ORG, "a").unwrap().version_numbers(), vec![2]);
    });
}

/// After a restart of the database (here: every backend ended) a server's
/// next request reads its keys on new connections.
#[test]
fn postgres_connections_the_server_closed_are_replaced() {
    postgres_store(|store, pg, config| {
        let database = database_of(config.url.as_deref().unwrap());
        let cache = KeyCache::new((store.open)(master(7)));
        let keys = cache.load(ORG, "a").unwrap();
        let ended = pg.query_i64(
            &database,
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'pseudoform-ttp') AS t",
        );
        assert!(ended >= 1, "{ended}");
        assert!(Arc::ptr_eq(&keys, &cache.load(ORG, "a").unwrap()));
        let mut other = (store.open)(master(7));
        other.rotate(ORG, "a").unwrap();
        assert_eq!(cache.load(ORG, "a").unwrap().version_numbers(), vec![2, 1]);
        // A change on a store whose connections were all ended runs once,
        // on a new connection: one rotation, one version.
        pg.query_i64(
            &database,
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'pseudoform-ttp') AS t",
        );
        assert_eq!(other.rotate(ORG, "a").unwrap(), 3);
        assert_eq!(other.versions(ORG, "a").unwrap().len(), 3);
    });
}

/// The ledger and the key store in one database, each opened by three
/// replicas at once: both migrate once, into their own history.
#[test]
fn postgres_the_ledger_may_share_the_database() {
    let pg = Postgres::start();
    let keys = Arc::new(pg.keys_config());
    let ledger = Arc::new(pseudoform_ttp::ledger::LedgerConfig {
        url: keys.url.clone(),
        password_file: keys.password_file.clone(),
        ..Default::default()
    });
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let (keys, ledger) = (Arc::clone(&keys), Arc::clone(&ledger));
            std::thread::spawn(move || {
                let mut store = KeyStore::open_postgres(&keys, master(7))?;
                store.ensure(ORG, "a")?;
                PostgresLedger::open(&ledger, 10).map(|_| ())
            })
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    let database = database_of(keys.url.as_deref().unwrap());
    assert_eq!(
        pg.query_i64(&database, "SELECT COUNT(*) FROM key_migrations"),
        1
    );
    assert_eq!(
        pg.query_i64(&database, "SELECT COUNT(*) FROM refinery_schema_history"),
        1
    );
    assert_eq!(
        pg.query_i64(&database, "SELECT MAX(version) FROM key_versions"),
        1,
        "three first uses made one version"
    );
}

// ---- Moving from SQLite to PostgreSQL ------------------------------------

/// A TTP that served from its SQLite database and is given `[keys]`:
/// refused to start until its keys are moved (it would make new first
/// versions, and every pseudonym would change), then `move-keys` moves
/// every version sealed as it is, each active one the same key in
/// PostgreSQL, and the database holds none of them after.
#[test]
fn move_keys_takes_every_version_to_postgres_and_leaves_none_behind() {
    use pseudoform_testkit::ttp::{prepare, ORG_A, SCOPE_A};
    // It starts on SQLite, whatever the run.
    let (dir, path, config) = prepare(pseudoform_testkit::postgres::SQLITE_STORES);
    let mut old = KeyStore::open_config(&config).unwrap();
    old.ensure(ORG_A, SCOPE_A).unwrap();
    old.rotate(ORG_A, SCOPE_A).unwrap();
    old.rotate(ORG_A, SCOPE_A).unwrap();
    old.retire(ORG_A, SCOPE_A, 1, unix_now() + 3_600, 60)
        .unwrap();
    old.ensure(ORG, "b").unwrap();
    let before_a = old.load(ORG_A, SCOPE_A).unwrap();
    let before_b = old.load(ORG, "b").unwrap();
    let sealed: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(&config.database).unwrap();
        let mut stmt = conn
            .prepare("SELECT ciphertext FROM key_versions WHERE ciphertext IS NOT NULL")
            .unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(sealed.len(), 3);
    drop(old);

    let pg = Postgres::start();
    let (section, keys_database) = pg.keys_section();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{section}")).unwrap();
    let config = pseudoform_ttp::config::TtpConfig::from_toml_file(&path).unwrap();
    let refused = format!("{:#}", KeyStore::open_config(&config).unwrap_err());
    assert!(refused.contains("still holds key versions"), "{refused}");
    assert!(refused.contains("move-keys"), "{refused}");

    let ttp = env!("CARGO_BIN_EXE_pseudoform-ttp");
    let run = || {
        std::process::Command::new(ttp)
            .args(["move-keys", "--config", path.to_str().unwrap()])
            .env_remove(pseudoform_ttp::keys::MASTER_KEY_ENV)
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.contains("moved 4 versions (3 active, each decrypted in PostgreSQL) of 2 domains"),
        "{said}"
    );

    let mut moved = KeyStore::open_config(&config).unwrap();
    for (domain, before) in [((ORG_A, SCOPE_A), &before_a), ((ORG, "b"), &before_b)] {
        let after = moved.load(domain.0, domain.1).unwrap();
        assert_eq!(after.version_numbers(), before.version_numbers());
        for ((_, a), (_, b)) in after.active().zip(before.active()) {
            assert_eq!(*a.to_bytes(), *b.to_bytes());
        }
        assert_eq!(after.binding_key(), before.binding_key());
    }
    let infos = moved.versions(ORG_A, SCOPE_A).unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos[0].status, KeyStatus::Retired, "retired stays retired");
    assert_eq!(
        pg.query_i64(&keys_database, "SELECT COUNT(*) FROM key_versions"),
        4
    );
    // The next version continues the numbering.
    assert_eq!(moved.rotate(ORG_A, SCOPE_A).unwrap(), 4);
    drop(moved);
    let files = files_of(&config.database);
    for c in &sealed {
        assert!(
            !files.windows(c.len()).any(|w| w == c.as_slice()),
            "a sealed key stayed in the SQLite files"
        );
    }
    // A server still on the database makes no new key there.
    let mut left = KeyStore::open(&config.database, master_of(&dir)).unwrap();
    let refused = format!("{:#}", left.ensure(ORG, "new").unwrap_err());
    assert!(refused.contains("were moved to PostgreSQL"), "{refused}");
    drop(left);
    // A second run has nothing to move, and says so.
    let again = run();
    assert!(!again.status.success());
    let said = String::from_utf8(again.stderr).unwrap();
    assert!(said.contains("nothing to move"), "{said}");
    drop(dir);
}

/// The master key of a [`pseudoform_testkit::ttp::prepare`]d folder.
fn master_of(dir: &tempfile::TempDir) -> MasterKey {
    MasterKey::from_text(&std::fs::read_to_string(dir.path().join("master.key")).unwrap()).unwrap()
}

/// A database from before binding keys (its `key_versions` only) still
/// counts as holding keys: a server given `[keys]` refuses to start on it.
#[test]
fn a_database_with_versions_but_no_binding_keys_is_not_taken_for_empty() {
    use pseudoform_testkit::ttp::prepare;
    let (_dir, path, config) = prepare(pseudoform_testkit::postgres::SQLITE_STORES);
    let conn = rusqlite::Connection::open(&config.database).unwrap();
    conn.execute_batch(
        "CREATE TABLE key_versions (organization TEXT, scope TEXT, version INTEGER, status TEXT,
         created_at INTEGER, retired_at INTEGER, nonce BLOB, ciphertext BLOB);
         INSERT INTO key_versions VALUES ('o', 's', 1, 'active', 0, NULL, x'00', x'00');",
    )
    .unwrap();
    drop(conn);
    let pg = Postgres::start();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{}", pg.keys_section().0)).unwrap();
    let config = pseudoform_ttp::config::TtpConfig::from_toml_file(&path).unwrap();
    let refused = format!("{:#}", KeyStore::open_config(&config).unwrap_err());
    assert!(refused.contains("still holds key versions"), "{refused}");
}

/// A move into a store that already holds other keys is refused, and the
/// old store keeps its keys.
#[test]
fn move_keys_into_a_store_with_other_keys_is_refused() {
    sqlite_store(|store, _| {
        let mut old = (store.open)(master(7));
        old.ensure(ORG, "a").unwrap();
        let pg = Postgres::start();
        let config = pg.keys_config();
        let mut new = KeyStore::open_postgres(&config, master(7)).unwrap();
        new.ensure(ORG, "other").unwrap();
        let message = format!("{:#}", old.move_into(&mut new).unwrap_err());
        assert!(message.contains("already holds keys"), "{message}");
        assert_eq!(old.load(ORG, "a").unwrap().version_numbers(), vec![1]);
        assert!(new.load(ORG, "a").unwrap().current().is_none());
    });
}

/// Keys moved to a store whose master key differs do not open there: the
/// move stops before anything is deleted, and the old store is whole.
#[test]
fn move_keys_with_another_master_key_deletes_nothing() {
    sqlite_store(|store, _| {
        let mut old = (store.open)(master(7));
        old.ensure(ORG, "a").unwrap();
        let key = old.load(ORG, "a").unwrap().current().unwrap().1.to_bytes();
        let pg = Postgres::start();
        let config = pg.keys_config();
        let mut new = KeyStore::open_postgres(&config, master(8)).unwrap();
        let message = format!("{:#}", old.move_into(&mut new).unwrap_err());
        assert!(message.contains("is its master key the same"), "{message}");
        assert_eq!(
            *old.load(ORG, "a").unwrap().current().unwrap().1.to_bytes(),
            *key
        );
    });
}
