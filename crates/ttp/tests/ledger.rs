//! The ledger's properties, checked the same way on both stores: the
//! embedded SQLite file and PostgreSQL (a real server of the test,
//! [`pseudoform_testkit::postgres`]). On PostgreSQL also what replicas
//! need of it: two ledgers on one database (as two replicas) never book
//! more than a budget between them, nor accept one id twice, and three
//! opening a fresh database at once migrate it once.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pseudoform_testkit::postgres::{Postgres, PASSWORD};
use pseudoform_ttp::config::{Limit, TtpConfig};
use pseudoform_ttp::ledger::{
    self, Charge, Charged, Dimension, Ledger, LedgerConfig, Once, OnceKind, PostgresLedger,
    SqliteLedger, Window,
};

const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn charge(dimension: Dimension, key: &str, per_minute: u64, per_day: u64) -> Charge {
    Charge {
        dimension,
        key: key.into(),
        limit: Limit {
            per_minute,
            per_day,
        },
    }
}

/// Opens a ledger on one store, again and again (a restart, another process).
type Open<'a> = &'a dyn Fn(u64) -> Box<dyn Ledger>;

fn budgets_per_minute_and_day_all_or_nothing_and_persistent(open: Open<'_>) {
    let ledger = open(100);
    let token = charge(Dimension::Credential, "token:1", 60, 600);
    let provider = charge(Dimension::Provider, "ura:00000001", 100, 1000);
    let both = [token.clone(), provider.clone()];
    assert_eq!(ledger.charge(&both, 50, T0 + 10).unwrap(), Charged::Booked);
    // 50 + 11 > 60: refused until the minute ends, and the provider's
    // budget is not booked either.
    assert_eq!(
        ledger.charge(&both, 11, T0 + 10).unwrap(),
        Charged::Exceeded {
            dimension: Dimension::Credential,
            window: Window::Minute,
            retry_after: Some(50)
        }
    );
    assert_eq!(
        ledger
            .charge(std::slice::from_ref(&provider), 50, T0 + 11)
            .unwrap(),
        Charged::Booked
    );
    assert!(matches!(
        ledger
            .charge(std::slice::from_ref(&provider), 1, T0 + 12)
            .unwrap(),
        Charged::Exceeded {
            dimension: Dimension::Provider,
            ..
        }
    ));
    // More than a limit in one go can never pass.
    assert!(matches!(
        ledger.charge(&both, 61, T0 + 12).unwrap(),
        Charged::Exceeded {
            retry_after: None,
            ..
        }
    ));
    drop(ledger);

    // Another process (or a restart) sees the same counts.
    let ledger = open(100);
    assert!(matches!(
        ledger.charge(&both, 11, T0 + 20).unwrap(),
        Charged::Exceeded { .. }
    ));
    // A new minute: the minute budget is back, the day keeps counting.
    for minute in 1..=9 {
        assert_eq!(
            ledger
                .charge(std::slice::from_ref(&token), 60, T0 + 60 * minute)
                .unwrap(),
            Charged::Booked
        );
    }
    // 50 + 9·60 = 590 of 600 today: 11 more wait for the next UTC day.
    assert_eq!(
        ledger
            .charge(std::slice::from_ref(&token), 11, T0 + 600)
            .unwrap(),
        Charged::Exceeded {
            dimension: Dimension::Credential,
            window: Window::Day,
            retry_after: Some(86_400 - 600)
        }
    );
    assert_eq!(
        ledger.charge(&[token], 60, T0 + 86_400).unwrap(),
        Charged::Booked
    );
}

/// The issuer of the single-use test whose bytes must not be stored.
const THIRD: &str = "issuer-key-number-3";

fn single_use_ids_expire_and_are_bounded(open: Open<'_>) {
    let ledger = open(3);
    let once = |issuer: &str, jti: &str, exp: i64, now: i64| {
        ledger
            .use_once(OnceKind::Proof, issuer, jti, exp, now)
            .unwrap()
    };
    assert_eq!(once("k1", "a", T0 + 60, T0), Once::Fresh);
    assert_eq!(once("k1", "a", T0 + 60, T0 + 1), Once::Replayed);
    // The same id of another key or kind is another id.
    assert_eq!(once("k2", "a", T0 + 60, T0), Once::Fresh);
    assert_eq!(
        ledger
            .use_once(OnceKind::ClientAssertion, "k1", "a", T0 + 60, T0)
            .unwrap(),
        Once::Fresh
    );
    // Full: no fourth id while three are unexpired, but a replay is a replay.
    assert_eq!(once(THIRD, "b", T0 + 60, T0 + 2), Once::Full);
    assert_eq!(once("k1", "a", T0 + 60, T0 + 2), Once::Replayed);
    // Once they expire, they are swept and room is made (past any clock
    // skew the store allows for: PostgreSQL keeps an id 300 s longer).
    assert_eq!(once(THIRD, "b", T0 + 1000, T0 + 400), Once::Fresh);
    assert_eq!(
        once("k1", "a", T0 + 1000, T0 + 401),
        Once::Fresh,
        "expired ids may come again"
    );
    assert_eq!(once("k1", "a", T0 + 1000, T0 + 402), Once::Replayed);
}

// ---- SQLite --------------------------------------------------------------

fn sqlite(dir: &std::path::Path) -> impl Fn(u64) -> Box<dyn Ledger> + '_ {
    move |capacity| Box::new(SqliteLedger::open(&dir.join("ttp.ledger.sqlite"), capacity).unwrap())
}

#[test]
fn sqlite_budgets() {
    let dir = tempfile::tempdir().unwrap();
    budgets_per_minute_and_day_all_or_nothing_and_persistent(&sqlite(dir.path()));
}

#[test]
fn sqlite_single_use_ids() {
    let dir = tempfile::tempdir().unwrap();
    single_use_ids_expire_and_are_bounded(&sqlite(dir.path()));
    // Nothing the caller chose is stored as such.
    let db = dir.path().join("ttp.ledger.sqlite");
    let mut bytes = std::fs::read(&db).unwrap();
    bytes.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
    assert!(!bytes.windows(THIRD.len()).any(|w| w == THIRD.as_bytes()));
}

// ---- PostgreSQL ----------------------------------------------------------

fn postgres(config: &LedgerConfig) -> impl Fn(u64) -> Box<dyn Ledger> + '_ {
    move |capacity| Box::new(PostgresLedger::open(config, capacity).unwrap())
}

fn database_of(config: &LedgerConfig) -> String {
    pseudoform_testkit::postgres::database_of(config.url.as_deref().unwrap())
}

#[test]
fn postgres_budgets() {
    let pg = Postgres::start();
    let config = pg.ledger_config();
    budgets_per_minute_and_day_all_or_nothing_and_persistent(&postgres(&config));
}

#[test]
fn postgres_single_use_ids() {
    let pg = Postgres::start();
    let config = pg.ledger_config();
    single_use_ids_expire_and_are_bounded(&postgres(&config));
    // Nothing the caller chose is stored as such: every value of the
    // ledger's tables, as text.
    let mut client = pg.client(&database_of(&config)).unwrap();
    let mut stored = String::new();
    for table in ["single_use", "budgets"] {
        for row in client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .unwrap()
        {
            stored.push_str(row.get::<_, &str>(0));
        }
    }
    assert!(stored.contains("\\x"), "the ids are there: {stored}");
    assert!(!stored.contains(THIRD) && !stored.contains(&hex::encode(THIRD)));
}

/// Two ledgers on one database, as two replicas, and 16 threads charging
/// one budget at once: exactly the budget is booked between them, and of
/// 64 ids each presented at both, each is accepted once.
#[test]
fn postgres_replicas_share_one_budget_and_one_set_of_ids() {
    let pg = Postgres::start();
    let config = pg.ledger_config();
    let replicas: Vec<Arc<dyn Ledger>> = (0..2)
        .map(|_| Arc::new(PostgresLedger::open(&config, 10_000).unwrap()) as Arc<dyn Ledger>)
        .collect();
    let budget = [
        charge(Dimension::Credential, "client:bulk", 100, 10_000),
        charge(
            Dimension::Recipient,
            "oin:00000001123456780000|kwaliteit",
            1_000,
            100_000,
        ),
    ];
    let booked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let fresh = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let ledger = Arc::clone(&replicas[t % 2]);
            let budget = budget.clone();
            let (booked, refused, fresh) = (
                Arc::clone(&booked),
                Arc::clone(&refused),
                Arc::clone(&fresh),
            );
            std::thread::spawn(move || {
                for i in 0..20 {
                    match ledger.charge(&budget, 1, T0 + 5).unwrap() {
                        Charged::Booked => booked.fetch_add(1, Ordering::Relaxed),
                        Charged::Exceeded {
                            dimension: Dimension::Credential,
                            window: Window::Minute,
                            retry_after: Some(55),
                        } => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected {other:?}"),
                    };
                    // Threads t and t + 8 are on different replicas and
                    // present the same ids.
                    let jti = format!("proof-{}-{i}", t % 8);
                    if ledger
                        .use_once(OnceKind::Proof, "jkt", &jti, T0 + 300, T0 + 5)
                        .unwrap()
                        == Once::Fresh
                    {
                        fresh.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(booked.load(Ordering::Relaxed), 100);
    assert_eq!(refused.load(Ordering::Relaxed), 16 * 20 - 100);
    assert_eq!(fresh.load(Ordering::Relaxed), 8 * 20);
    // The recipient's budget was booked with the credential's, no more.
    let mut client = pg.client(&database_of(&config)).unwrap();
    let used: i64 = client
        .query_one(
            "SELECT used FROM budgets WHERE dimension = 'recipient' AND span = 'minute'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(used, 100);
}

/// Replicas whose clocks differ: one a minute ahead does not reset the
/// window the others are still counting in, and its sweeps delete neither
/// their window nor an id they still hold unexpired.
#[test]
fn postgres_a_clock_ahead_resets_no_window_and_frees_no_id() {
    let pg = Postgres::start();
    let config = pg.ledger_config();
    let (a, b) = (
        PostgresLedger::open(&config, 100).unwrap(),
        PostgresLedger::open(&config, 100).unwrap(),
    );
    let budget = [charge(Dimension::Provider, "ura:00000002", 10, 1_000)];
    assert_eq!(b.charge(&budget, 10, T0 + 61).unwrap(), Charged::Booked);
    // a is still in the minute before: its charge counts against the newer
    // window rather than opening its own.
    assert!(matches!(
        a.charge(&budget, 1, T0 + 59).unwrap(),
        Charged::Exceeded {
            dimension: Dimension::Provider,
            window: Window::Minute,
            ..
        }
    ));

    // A slow replica (c, two minutes behind) takes an id and a budget; the
    // fast one (b) sweeps at its next minute.
    let c = PostgresLedger::open(&config, 100).unwrap();
    let slow = [charge(Dimension::Person, "ura:00000002|p1", 5, 1_000)];
    assert_eq!(
        c.use_once(OnceKind::Proof, "jkt", "held", T0 + 90, T0 + 30)
            .unwrap(),
        Once::Fresh
    );
    assert_eq!(c.charge(&slow, 5, T0 + 30).unwrap(), Charged::Booked);
    assert_eq!(
        b.charge(&budget, 1, T0 + 61 + 120).unwrap(),
        Charged::Booked,
        "b sweeps here"
    );
    assert_eq!(
        c.use_once(OnceKind::Proof, "jkt", "held", T0 + 90, T0 + 40)
            .unwrap(),
        Once::Replayed,
        "the fast replica's sweep must not free an id the slow one holds"
    );
    assert!(
        matches!(
            c.charge(&slow, 1, T0 + 40).unwrap(),
            Charged::Exceeded { .. }
        ),
        "the fast replica's sweep must not delete the slow one's window"
    );
}

/// The database ends every connection of the ledger (as a restart of the
/// server does): the next charge and id go through on new connections, and
/// what was booked before is still there.
#[test]
fn postgres_connections_the_server_closed_are_replaced() {
    let pg = Postgres::start();
    let config = pg.ledger_config();
    let ledger = PostgresLedger::open(&config, 100).unwrap();
    let budget = [charge(Dimension::Provider, "ura:00000003", 10, 1_000)];
    // Several connections in the pool, all of them to be ended.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(ledger.charge(&budget, 1, T0).unwrap(), Charged::Booked));
        }
    });
    let ended = pg.query_i64(
        &database_of(&config),
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = 'pseudoform-ttp') AS t",
    );
    assert!(ended >= 1, "{ended}");
    assert_eq!(ledger.charge(&budget, 6, T0 + 1).unwrap(), Charged::Booked);
    assert!(matches!(
        ledger.charge(&budget, 1, T0 + 2).unwrap(),
        Charged::Exceeded { .. }
    ));
    assert_eq!(
        ledger
            .use_once(OnceKind::Proof, "jkt", "after-restart", T0 + 60, T0 + 2)
            .unwrap(),
        Once::Fresh
    );
}

/// Three replicas starting on a fresh database at once: one migrates, all open.
#[test]
fn postgres_replicas_starting_together_migrate_once() {
    let pg = Postgres::start();
    let config = Arc::new(pg.ledger_config());
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let config = Arc::clone(&config);
            std::thread::spawn(move || PostgresLedger::open(&config, 10).map(|_| ()))
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    let mut client = pg.client(&database_of(&config)).unwrap();
    let versions: i64 = client
        .query_one("SELECT COUNT(*) FROM refinery_schema_history", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
}

/// What an operator gets wrong is said plainly, and never with the password,
/// in both sections that name a PostgreSQL database (`[ledger]`, `[keys]`).
#[test]
fn postgres_configuration_errors_are_clear_and_keep_the_password() {
    for section in ["ledger", "keys"] {
        configuration_errors_of(section);
    }
    // A wrong password is refused by the server, and the error is the server's.
    let pg = Postgres::start();
    let mut config = pg.ledger_config();
    let wrong = tempfile::tempdir().unwrap();
    let file = wrong.path().join("password");
    pseudoform_protocol::secret_file::create(&file, b"not-the-password").unwrap();
    config.password_file = Some(file);
    config.connect_timeout_seconds = 2;
    let message = format!("{:#}", ledger::open(&config, wrong.path(), 10).unwrap_err());
    assert!(
        message.contains("cannot connect to the PostgreSQL of [ledger]"),
        "{message}"
    );
    assert!(!message.contains("not-the-password") && !message.contains(PASSWORD));
}

/// The configuration checks of the PostgreSQL section `section`.
fn configuration_errors_of(section: &str) {
    let base = |ledger: &str| {
        format!("database = \"ttp.sqlite\"\nsigning_key = \"signing.pem\"\n[{section}]\n{ledger}\n")
    };
    let refused = |ledger: &str| {
        format!(
            "{:#}",
            TtpConfig::from_toml_str(&base(ledger), std::path::Path::new("/tmp")).unwrap_err()
        )
    };
    let secret = "s3cret-in-url";
    let with_password = refused(&format!(
        "url = \"postgresql://ttp:{secret}@127.0.0.1/ttp\""
    ));
    assert!(
        with_password.contains("url holds a password"),
        "{with_password}"
    );
    assert!(!with_password.contains(secret));
    let garbage = refused(&format!("url = \"postgresql://ttp:{secret}@[::1/ttp\""));
    assert!(
        garbage.contains("not a PostgreSQL connection string"),
        "{garbage}"
    );
    assert!(!garbage.contains(secret));
    assert!(refused("url = \"postgresql://ttp@127.0.0.1\"").contains("names no database"));
    assert!(refused("password_file = \"pw\"").contains("there is no url"));
    // The password never crosses a network without TLS.
    for url in [
        "postgresql://ttp@db.internal/ttp",
        "postgresql://ttp@db.internal/ttp?sslmode=prefer",
        "host=db.internal user=ttp dbname=ttp",
    ] {
        let message = refused(&format!("url = \"{url}\""));
        assert!(message.contains("sslmode=require"), "{url}: {message}");
    }
    for url in [
        "postgresql://ttp@db.internal/ttp?sslmode=disable",
        // The address connected to is not this machine, whatever the name.
        "host=localhost hostaddr=10.0.0.5 user=ttp dbname=ttp sslmode=disable",
    ] {
        let message = refused(&format!("url = \"{url}\""));
        assert!(
            message.contains("for a host on the network"),
            "{url}: {message}"
        );
    }
    for url in [
        "postgresql://ttp@db.internal/ttp?sslmode=require",
        "postgresql://ttp@127.0.0.1:5433/ttp?sslmode=disable",
        "postgresql://ttp@[::1]/ttp?sslmode=disable",
        "host=/run/postgresql user=ttp dbname=ttp sslmode=disable",
    ] {
        TtpConfig::from_toml_str(
            &base(&format!("url = \"{url}\"")),
            std::path::Path::new("/tmp"),
        )
        .unwrap_or_else(|e| panic!("{url}: {e:#}"));
    }
    assert!(
        refused("url = \"postgresql://ttp@h/d?sslmode=require\"\npool_size = 0")
            .contains("pool_size")
    );
}
