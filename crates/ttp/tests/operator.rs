//! The TTP as an operator runs it (issue 10), bounded in time, on
//! loopback: `kill -9` under load loses no acknowledged evaluation and
//! leaves a verifiable audit log; a full queue sheds with 503; a slow
//! client is dropped while others are served; readiness follows a full
//! disk (a small tmpfs) and recovers, also across a restart.
//!
//! The TTP runs in development mode with the static token [`TOKEN_FORM`]:
//! these properties do not depend on the credential, and a static token
//! keeps the load on the evaluation path. The DPoP-bound credentials are
//! tested in `access.rs`.

#![cfg(test)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pseudoform_testkit::disk::Tmpfs;
use pseudoform_testkit::process::Process;
use pseudoform_testkit::ttp::*;
use rusqlite::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TTP: &str = env!("CARGO_BIN_EXE_pseudoform-ttp");

fn serve_args(config: &str) -> Vec<&str> {
    vec!["serve", "--config", config, "--listen", "127.0.0.1:0"]
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: &serde_json::Value,
) -> Option<u16> {
    client
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN_FORM)
        .json(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

fn accepted_rows(db: &std::path::Path) -> u64 {
    let conn = Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM audit_rows WHERE status = 200",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_evaluation() {
    let (_dir, path, config) = prepare(DEV);
    let path = path.to_str().unwrap().to_owned();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mut kills = 0;
    for round in 0..3 {
        let mut ttp = Process::start(TTP, &serve_args(&path)).await;
        let base = ttp.base.clone();
        let before = acknowledged.load(Ordering::SeqCst);
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (base, acknowledged) = (base.clone(), Arc::clone(&acknowledged));
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    for i in 0.. {
                        let body =
                            eval_request(ORG_A, SCOPE_A, "NGGV", &format!("{round}/{c}/{i}"));
                        match post(&client, &base, "/oprf/eval", &body).await {
                            Some(200) => {
                                acknowledged.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(status) => panic!("answered {status}"),
                            None => return, // the process is gone
                        }
                    }
                })
            })
            .collect();
        // Kill it in the middle of the load: once 40 more were answered.
        let started = Instant::now();
        while acknowledged.load(Ordering::SeqCst) < before + 40 {
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        ttp.kill();
        kills += 1;
        for c in clients {
            c.await.unwrap();
        }
        // Every acknowledged evaluation has its committed audit row, and
        // the chain verifies after the crash.
        let verification = verify_audit_file(&config.database);
        assert!(verification.ok(), "{verification:?}");
        let rows = accepted_rows(&config.database);
        let acked = acknowledged.load(Ordering::SeqCst);
        assert!(
            rows >= acked,
            "round {round}: {acked} acknowledged, {rows} audited"
        );
        eprintln!("kill -9 #{kills}: {acked} acknowledged so far, {rows} accepted rows");
    }
    // And it starts again on the same database.
    let ttp = Process::start(TTP, &serve_args(&path)).await;
    let client = reqwest::Client::new();
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "after the crashes");
    assert_eq!(
        post(&client, &ttp.base, "/oprf/eval", &body).await,
        Some(200)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    // One worker, a queue of 50 evaluations: of 8 batches of 40 sent at
    // once one runs, one waits, and those that do not fit are shed at once.
    let ttp = TestTtp::start_with(
        false,
        &format!("{DEV}\n[queue]\nworkers = 1\nmax_queued_evaluations = 50\nmax_wait_ms = 5000\n"),
    )
    .await;
    let ttp = Arc::new(ttp);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let ttp = Arc::clone(&ttp);
            tokio::spawn(async move {
                let body = batch_request(ORG_A, SCOPE_A, &["NGGV"], 40, &format!("full/{i}"));
                ttp.post("/v1/evaluate", Some(TOKEN_FORM), &body).await
            })
        })
        .collect();
    let (mut served, mut shed) = (0, 0);
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        match status {
            200 => served += 1,
            503 => {
                assert_error(status, &body, 503, "server.overloaded");
                assert_eq!(headers["retry-after"], "1");
                shed += 1;
            }
            other => panic!("answered {other}: {body}"),
        }
    }
    assert!(served >= 1 && shed >= 1, "{served} served, {shed} shed");
    // A single record still goes through afterwards.
    let (status, _, _) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_A, SCOPE_A, "NGGV", "after"),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_while_others_are_served() {
    let ttp = TestTtp::start_with(
        false,
        &format!("{DEV}\n[limits]\nheader_timeout_seconds = 1\n"),
    )
    .await;
    let address = ttp.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"POST /oprf/eval HTTP/1.1\r\nHost: ttp\r\nAuthor")
        .await
        .unwrap();
    for i in 0..5 {
        let (status, _, _) = ttp
            .post(
                "/oprf/eval",
                Some(TOKEN_FORM),
                &eval_request(ORG_A, SCOPE_A, "NGGV", &format!("fast/{i}")),
            )
            .await;
        assert_eq!(status, 200);
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the half-sent request was not dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_full_disk_and_recovers() {
    let (dir, path, _config) = prepare(DEV);
    let disk = dir.path().join("disk");
    let Some(tmpfs) = Tmpfs::mount(&disk, 8) else {
        eprintln!("SKIPPED readiness_follows_a_full_disk_and_recovers: cannot mount a tmpfs here (needs root)");
        return;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "database = \"ttp.sqlite\"",
            "database = \"disk/ttp.sqlite\"",
        ),
    )
    .unwrap();
    let path = path.to_str().unwrap().to_owned();
    let db = disk.join("ttp.sqlite");
    let client = reqwest::Client::new();
    let status_of = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };

    let mut ttp = Process::start(TTP, &serve_args(&path)).await;
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "before");
    assert_eq!(
        post(&client, &ttp.base, "/oprf/eval", &body).await,
        Some(200)
    );
    assert_eq!(status_of(format!("{}/ready", ttp.base)).await, 200);

    let filler = tmpfs.fill();
    // Evaluations fail closed once the audit log cannot grow.
    let mut refused = false;
    for i in 0..2000 {
        let body = eval_request(ORG_A, SCOPE_A, "NGGV", &format!("full/{i}"));
        match post(&client, &ttp.base, "/oprf/eval", &body).await {
            Some(200) => {}
            Some(500) => {
                refused = true;
                break;
            }
            other => panic!("answered {other:?}"),
        }
    }
    assert!(refused, "evaluations went on with a full disk");
    // Alive, but not ready.
    assert_eq!(status_of(format!("{}/health", ttp.base)).await, 200);
    assert_eq!(status_of(format!("{}/ready", ttp.base)).await, 503);

    // Space freed: ready again without a restart, and it evaluates.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(status_of(format!("{}/ready", ttp.base)).await, 200);
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "freed");
    assert_eq!(
        post(&client, &ttp.base, "/oprf/eval", &body).await,
        Some(200)
    );

    // A crash with the disk full again, then space freed: a restart recovers.
    let filler = tmpfs.fill();
    ttp.kill();
    std::fs::remove_file(&filler).unwrap();
    let ttp = Process::start(TTP, &serve_args(&path)).await;
    assert_eq!(status_of(format!("{}/ready", ttp.base)).await, 200);
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "restarted");
    assert_eq!(
        post(&client, &ttp.base, "/oprf/eval", &body).await,
        Some(200)
    );
    let wal = std::fs::metadata(db.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    assert!(
        wal <= pseudoform_ttp::keys::WAL_SIZE_LIMIT as u64 + 1024 * 1024,
        "WAL {wal} B"
    );
    assert!(verify_audit_file(&db).ok());
    drop(ttp);
}

/// Damaged evaluation requests against the real process: a valid single
/// request and a valid batch, each with one deterministic mutation. None
/// may answer a 5xx or end the process; every refusal names a code. The
/// suite sends 300; `PSEUDOFORM_MUTATIONS=N` sends N (an operator's run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_never_answer_5xx() {
    let (_dir, path, _config) = prepare(DEV);
    let ttp = Process::start(TTP, &serve_args(path.to_str().unwrap())).await;
    let client = reqwest::Client::new();
    let single = serde_json::to_vec(&eval_request(ORG_A, SCOPE_A, "NGGV", "mutated")).unwrap();
    let batch = serde_json::to_vec(&batch_request(
        ORG_A,
        SCOPE_A,
        &["NGGV", "RGG"],
        3,
        "mutated",
    ))
    .unwrap();
    let n = pseudoform_testkit::mutate::count(300);
    let mut seen: std::collections::BTreeMap<(&str, u16), u32> = Default::default();
    for i in 0..n {
        let (endpoint, valid) = if i % 2 == 0 {
            ("/oprf/eval", &single)
        } else {
            ("/v1/evaluate", &batch)
        };
        let response = client
            .post(format!("{}{endpoint}", ttp.base))
            .bearer_auth(TOKEN_FORM)
            .header("content-type", "application/json")
            .body(pseudoform_testkit::mutate::mutate(valid, i))
            .send()
            .await
            .unwrap_or_else(|e| panic!("mutation {i}: no answer ({e})"));
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        assert!(
            status < 500,
            "mutation {i} of {endpoint}: {status} {answer}"
        );
        if status != 200 {
            assert!(answer["code"].is_string(), "mutation {i}: {answer}");
        }
        *seen.entry((endpoint, status)).or_insert(0) += 1;
    }
    eprintln!("ttp: {n} mutated requests answered {seen:?}");
    assert!(seen.len() >= 4, "{seen:?}");
    let ready = client
        .get(format!("{}/ready", ttp.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}
