//! Three TTP processes behind HAProxy (Debian's `haproxy`, which
//! `./build.sh setup` installs) on loopback, as an operator runs replicas
//! on several machines (docs/operations.md, "Replicas behind a load
//! balancer"): each with a database of its own (its own signed audit
//! chain), all sharing PostgreSQL (the key versions and the ledger's
//! budgets and single-use ids, two databases of one server) and one
//! SoftHSM2 token:
//!
//! - `kill -9` of a replica under load, three times (each replica once,
//!   restarted after): the clients, which do not retry themselves, see no
//!   error (HAProxy retries a failed connection or an empty answer on
//!   another replica, and its stats socket shows it did); at least as many
//!   committed audit rows, over the three chains, as acknowledged batches;
//!   no answer is partial; each replica's chain verifies;
//! - a caller's budget holds across the replicas: spread round-robin over
//!   all three, it gets exactly its budget, not three times it, booked in
//!   PostgreSQL;
//! - a rotation made with the CLI of one replica's machine is current on
//!   every replica at its next request: the versions are in PostgreSQL,
//!   not in a replica's database.
//!
//! The replicas run in development mode with a static token: these
//! properties do not depend on the credential (DPoP-bound credentials are
//! tested in `access.rs`; a DPoP client retries with a fresh proof).

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pseudoform_testkit::balancer::{free_port, until_all_up, Balancer};
use pseudoform_testkit::keys::ttp_signing;
use pseudoform_testkit::postgres::Postgres;
use pseudoform_testkit::process::Process;
use pseudoform_testkit::softhsm;
use pseudoform_testkit::ttp::*;
use pseudoform_ttp::hsm::{self, InitSource};
use rusqlite::Connection;
use serde_json::Value;
use zeroize::Zeroizing;

const TTP: &str = env!("CARGO_BIN_EXE_pseudoform-ttp");
const REPLICAS: usize = 3;
/// Records of NGGV+RGG+MRN per batch of the load (HAProxy holds the
/// whole request to retry it: well under its buffer).
const RECORDS: usize = 10;
const TYPES: [&str; 3] = ["NGGV", "RGG", "MRN"];

/// The tests of this file one at a time: each runs three replicas and a
/// balancer under load, and two such sets on 2 cores (and one SoftHSM2
/// store, whose tokens the other test's set-up is writing) only measure
/// each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The configurations of the replicas: the test TTP's with `extra`, its
/// keys on the token (the test's master key and signing key imported, so
/// the test's openers verify), its key versions and its ledger in two
/// databases of `pg`, its public URL the balancer's; one file per replica,
/// each naming a database of its own ([`replica_configs`]).
struct Replicas {
    dir: tempfile::TempDir,
    configs: Vec<PathBuf>,
    ledger_database: String,
    keys_database: String,
}

impl Replicas {
    fn database(&self, i: usize) -> PathBuf {
        replica_database(self.dir.path(), i)
    }
}

fn replicas_of(test: &str, extra: &str, balancer: u16, pg: &Postgres) -> Replicas {
    softhsm::conf();
    let (ledger, ledger_database) = pg.ledger_section();
    let (keys, keys_database) = pg.keys_section();
    let extra =
        format!("{DEV}\npublic_url = \"http://127.0.0.1:{balancer}\"\n{extra}\n{ledger}\n{keys}");
    let (dir, path, _) = prepare(&extra);
    let hsm = softhsm::config_for(dir.path(), test);
    let master = Zeroizing::new([0x42u8; 32]);
    hsm::init(
        &hsm,
        &InitSource {
            master_key: Some(&master),
            signing_key_pem: Some(ttp_signing().private_pem.as_bytes()),
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, softhsm::on_token(&text, &hsm)).unwrap();
    std::fs::remove_file(dir.path().join("master.key")).unwrap();
    std::fs::remove_file(dir.path().join("signing.pem")).unwrap();
    let configs = replica_configs(&path, REPLICAS);
    std::fs::remove_file(&path).unwrap();
    Replicas {
        dir,
        configs,
        ledger_database,
        keys_database,
    }
}

/// Starts replica `i` on `port`.
async fn replica(path: &Path, port: u16) -> Process {
    let listen = format!("127.0.0.1:{port}");
    Process::start(
        TTP,
        &[
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            &listen,
        ],
    )
    .await
}

/// POSTs `body` with the static token; the status and the JSON body, or
/// `None` when no answer came.
async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &Value,
) -> Option<(u16, Option<String>, Value)> {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN_FORM)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let replica = r
        .headers()
        .get("x-replica")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = r.json().await.unwrap_or(Value::Null);
    Some((status, replica, body))
}

fn accepted_rows(db: &Path) -> u64 {
    let conn = Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM audit_rows WHERE status = 200",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_loses_nothing_and_the_clients_see_no_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    let port = free_port();
    let pg = Postgres::start();
    let set = replicas_of("replicas-kill", "", port, &pg);
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let mut replicas = Vec::new();
    for (config, &p) in set.configs.iter().zip(&ports) {
        replicas.push(Some(replica(config, p).await));
    }
    let balancer = Balancer::start(set.dir.path(), port, &ports);
    let client = reqwest::Client::new();
    until_all_up(&client, &balancer.base, REPLICAS).await;

    let acknowledged = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let partial = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let base = balancer.base.clone();
            let (acknowledged, errors, partial, stop) = (
                Arc::clone(&acknowledged),
                Arc::clone(&errors),
                Arc::clone(&partial),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let body = batch_request(ORG_A, SCOPE_A, &TYPES, RECORDS, &format!("{c}/{i}"));
                    match post(&client, &base, "/v1/evaluate", &body).await {
                        Some((200, _, answer)) => {
                            let records = answer["records"].as_array().map_or(0, Vec::len);
                            if records == RECORDS {
                                acknowledged.fetch_add(1, Ordering::SeqCst);
                            } else {
                                partial.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Some((status, _, answer)) => {
                            eprintln!("client {c}: {status} {answer}");
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {
                            eprintln!("client {c}: no answer");
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();

    // Each replica in turn: killed once 20 more batches were answered,
    // then started again on its port and back in the balancer.
    let mut kills = 0;
    for i in 0..REPLICAS {
        let before = acknowledged.load(Ordering::SeqCst);
        let started = Instant::now();
        while acknowledged.load(Ordering::SeqCst) < before + 20 {
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        replicas[i].take().unwrap().kill();
        kills += 1;
        let after = acknowledged.load(Ordering::SeqCst);
        while acknowledged.load(Ordering::SeqCst) < after + 20 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no progress after the kill"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        replicas[i] = Some(replica(&set.configs[i], ports[i]).await);
        until_all_up(&client, &balancer.base, REPLICAS).await;
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let (acked, errors, partial) = (
        acknowledged.load(Ordering::SeqCst),
        errors.load(Ordering::SeqCst),
        partial.load(Ordering::SeqCst),
    );
    drop(replicas);
    let rows: u64 = (0..REPLICAS).map(|i| accepted_rows(&set.database(i))).sum();
    let (resent, redispatched) = balancer.retries();
    eprintln!(
        "replicas: {kills} kills, {acked} batches acknowledged, {rows} accepted audit rows, {errors} errors, {partial} partial, HAProxy resent {resent} and redispatched {redispatched}"
    );
    assert_eq!(kills, REPLICAS);
    assert_eq!(errors, 0, "the clients saw errors through the balancer");
    assert_eq!(partial, 0, "an answer was partial");
    assert!(acked >= 3 * 40, "{acked} batches");
    // The clients saw no error because the balancer retried what the
    // killed replicas dropped, not because nothing was dropped.
    assert!(resent + redispatched > 0, "HAProxy retried nothing");
    // Nothing acknowledged is lost: at least as many committed audit rows
    // as acknowledged batches (a batch whose answer died with its replica
    // and was retried elsewhere has two).
    assert!(rows >= acked, "{acked} acknowledged, {rows} audited");
    // Each replica's chain verifies, and each replica served (after its
    // restart, too: its chain goes on where it ended).
    for i in 0..REPLICAS {
        let verification = verify_audit_file(&set.database(i));
        assert!(verification.ok(), "replica {i}: {verification:?}");
        assert!(
            accepted_rows(&set.database(i)) > 0,
            "replica {i} served nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_holds_across_replicas_and_a_rotation_reaches_each() {
    let _one = ONE_AT_A_TIME.lock().await;
    let port = free_port();
    let budgets = "[budgets]\nbrowser_token = { per_minute = 1000, per_day = 1000 }\nperson = { per_minute = 1000, per_day = 1000 }\nprovider = { per_minute = 100000, per_day = 100000 }\nrecipient = { per_minute = 100000, per_day = 100000 }\nclient = { per_minute = 30, per_day = 30 }\n";
    let pg = Postgres::start();
    let set = replicas_of("replicas-budget", budgets, port, &pg);
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let mut replicas = Vec::new();
    for (config, &p) in set.configs.iter().zip(&ports) {
        replicas.push(replica(config, p).await);
    }
    let balancer = Balancer::start(set.dir.path(), port, &ports);
    let client = reqwest::Client::new();
    until_all_up(&client, &balancer.base, REPLICAS).await;

    // A rotation by the CLI of one replica's machine, on the shared
    // PostgreSQL and token, is current on every replica, asked directly,
    // at its next request.
    let direct = |p: u16| format!("http://127.0.0.1:{p}");
    let version_on = |base: String, label: String| {
        let client = client.clone();
        async move {
            let body = eval_request(ORG_A, SCOPE_A, "NGGV", &label);
            let (status, _, answer) = post(&client, &base, "/oprf/eval", &body).await.unwrap();
            assert_eq!(status, 200, "{answer}");
            open_jwe(answer["jwe"].as_str().unwrap(), true).1["key_version"].clone()
        }
    };
    for &p in &ports {
        assert_eq!(version_on(direct(p), format!("before/{p}")).await, 1);
    }
    let out = Command::new(TTP)
        .args(["rotate", "--config", set.configs[1].to_str().unwrap()])
        .args(["--organization", ORG_A, "--scope", SCOPE_A])
        .env("SOFTHSM2_CONF", softhsm::conf())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for &p in &ports {
        assert_eq!(version_on(direct(p), format!("after/{p}")).await, 2);
    }

    // Then 60 single evaluations round-robin over the three replicas: the
    // caller's budget of 30 less the 6 above, each replica serving some.
    let mut accepted = 0;
    let mut refused = 0;
    let mut served_by = std::collections::HashSet::new();
    for i in 0..60 {
        let body = eval_request(ORG_A, SCOPE_A, "NGGV", &format!("budget/{i}"));
        let (status, replica, answer) = post(&client, &balancer.base, "/oprf/eval", &body)
            .await
            .unwrap();
        served_by.insert(replica.unwrap());
        match status {
            200 => accepted += 1,
            429 => {
                assert_error(status, &answer, 429, "rateLimited");
                refused += 1;
            }
            other => panic!("{other} {answer}"),
        }
    }
    assert_eq!(served_by.len(), REPLICAS, "{served_by:?}");
    assert_eq!((accepted, refused), (24, 36), "three replicas, one budget");
    // Booked in PostgreSQL, not in a file of each replica; the versions
    // are there too, and in no replica's database.
    for i in 0..REPLICAS {
        let db = set.database(i);
        assert!(!pseudoform_ttp::ledger::ledger_path(&db).exists());
        let tables: i64 = Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'key_versions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "replica {i} holds key versions");
    }
    assert_eq!(
        pg.query_i64(&set.keys_database, "SELECT MAX(version) FROM key_versions"),
        2
    );
    let used = pg.query_i64(
        &set.ledger_database,
        "SELECT used FROM budgets WHERE dimension = 'credential' AND span = 'day'",
    );
    assert_eq!(used, 30);
    drop(replicas);
}
