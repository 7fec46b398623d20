//! The registry as an operator runs it (issue 10), bounded in time, on
//! loopback: `kill -9` under load loses no acknowledged record and, with
//! the retries, stores each submission exactly once; a registry that was
//! down longer than the JWEs' lifetime answers the retry with the first
//! receipt; rotation and an early retire under load keep every identity
//! linkable; readiness follows a full disk (a small tmpfs) and recovers.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pseudoform_core::encoding::encode;
use pseudoform_protocol::registry::Submission;
use pseudoform_registry::rekey::{Authority, Rekey};
use pseudoform_registry::store::Store;
use pseudoform_registry::RegistryConfig;
use pseudoform_testkit::disk::Tmpfs;
use pseudoform_testkit::process::Process;
use pseudoform_testkit::registry::*;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use pseudoform_ttp::keys::KeyStore;
use serde_json::{json, Value};

const REGISTRY: &str = env!("CARGO_BIN_EXE_pseudoform-registry");

/// Writes `config` as the registry's TOML file in `dir`; its path.
fn write_config(dir: &std::path::Path, config: &RegistryConfig) -> String {
    let path = dir.join("registry.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn serve_args(config: &str) -> Vec<&str> {
    vec!["serve", "--config", config, "--listen", "127.0.0.1:0"]
}

/// Posts a submission: `Some((status, body))`, `None` when the connection failed.
async fn post(
    client: &reqwest::Client,
    base: &str,
    submission: &Submission,
) -> Option<(u16, Value)> {
    let response = client
        .post(format!("{base}/api/submissions"))
        .json(submission)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.ok()?;
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_nothing_and_retries_store_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), DEFAULT_TYPES);
    let path = write_config(dir.path(), &config);
    // 3 rounds of 6 clients × 8 submissions of two pseudonyms each.
    let rounds: Vec<Vec<Vec<Submission>>> = (0..3)
        .map(|_| {
            (0..6)
                .map(|_| {
                    (0..8)
                        .map(|i| {
                            submission(
                                vec![("NGGV", temporary("NGGV")), ("RGG", temporary("RGG"))],
                                &[("diagnose", &format!("C{i}"))],
                            )
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let client = reqwest::Client::new();
    let mut acknowledged: BTreeMap<i64, Value> = BTreeMap::new();
    let mut unanswered: Vec<Submission> = Vec::new();
    for (round, clients) in rounds.into_iter().enumerate() {
        let mut registry = Process::start(REGISTRY, &serve_args(&path)).await;
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|submissions| {
                let (client, base, answered) =
                    (client.clone(), registry.base.clone(), Arc::clone(&answered));
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for s in submissions {
                        let answer = post(&client, &base, &s).await;
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        out.push((s, answer));
                    }
                    out
                })
            })
            .collect();
        // Kill it in the middle: after a third of this round was answered.
        let started = Instant::now();
        while answered.load(std::sync::atomic::Ordering::SeqCst) < 16 {
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        registry.kill();
        for t in tasks {
            for (s, answer) in t.await.unwrap() {
                match answer {
                    Some((201, receipt)) => {
                        acknowledged.insert(receipt["recordId"].as_i64().unwrap(), receipt);
                    }
                    Some((status, body)) => panic!("answered {status}: {body}"),
                    None => unanswered.push(s),
                }
            }
        }
        // What was acknowledged is stored, whole.
        let store = Store::open(&config.database).unwrap();
        let records = store.records(100_000).unwrap();
        let ids: BTreeSet<i64> = records.iter().map(|r| r.id).collect();
        for (id, receipt) in &acknowledged {
            assert!(
                ids.contains(id),
                "round {round}: acknowledged record {id} lost"
            );
            let record = records.iter().find(|r| r.id == *id).unwrap();
            let labels: Vec<&str> = record.pseudonyms.iter().map(|p| p.label.as_str()).collect();
            for label in receipt["pseudonyms"].as_array().unwrap() {
                assert!(labels.contains(&label.as_str().unwrap()));
            }
        }
        assert!(
            records.iter().all(|r| r.pseudonyms.len() == 2),
            "no partial record"
        );
        eprintln!(
            "kill -9 #{}: {} acknowledged, {} unanswered, {} stored",
            round + 1,
            acknowledged.len(),
            unanswered.len(),
            records.len()
        );
    }
    // The form retries what was not answered: each is stored exactly once
    // (a retry of a stored one gets its first receipt).
    let registry = Process::start(REGISTRY, &serve_args(&path)).await;
    for s in &unanswered {
        let (status, receipt) = post(&client, &registry.base, s).await.unwrap();
        assert_eq!(status, 201, "{receipt}");
        acknowledged.insert(receipt["recordId"].as_i64().unwrap(), receipt);
    }
    let store = Store::open(&config.database).unwrap();
    assert_eq!(
        store.record_count().unwrap(),
        3 * 6 * 8,
        "each submission once"
    );
    assert_eq!(acknowledged.len(), 3 * 6 * 8);
}

/// The TTP of these tests with JWEs that live 1 s, requests of at most
/// 5 s (debug builds on a busy machine) and no clock skew: a retire window
/// of 6 s. The registry's re-keying holds a DPoP-bound token of its
/// `private_key_jwt` client; the records come through a development static
/// token, so they are bound to no submitter key and need no submitter proof
/// (that proof is tested in `submitter.rs`, `end_to_end.rs` and the page
/// tests).
async fn short_lived_ttp() -> TestTtp {
    TestTtp::start_with(
        true,
        &format!("{DEV}\njwe_lifetime_seconds = 1\nregistry_clock_skew_seconds = 0\n[limits]\nrequest_timeout_seconds = 5\n"),
    )
    .await
}

/// Registry A's configuration in `dir` for the test TTP, without clock skew.
fn config_of_the_ttp(dir: &std::path::Path) -> RegistryConfig {
    let mut config = config(dir, DEFAULT_TYPES);
    config.keys[0].kid = Some(KID_A.into());
    config.clock_skew_seconds = 0;
    config
}

/// One record of `types` for the input `identity` through the TTP's batch
/// endpoint: a submission.
async fn pseudonymise(ttp: &TestTtp, identity: &str, types: &[&str]) -> Submission {
    let blinds: Vec<_> = types.iter().map(|_| random_blind()).collect();
    let items: Vec<Value> = types
        .iter()
        .zip(&blinds)
        .map(|(t, r)| {
            let b = pseudoform_core::oprf::blind(format!("{identity}/{t}").as_bytes(), r).unwrap();
            json!({"type": t, "blindedInput": encode(&b)})
        })
        .collect();
    let request = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "records": [{"items": items}]});
    let (status, _, answer) = ttp.post("/v1/evaluate", Some(TOKEN_FORM), &request).await;
    assert_eq!(status, 200, "{answer}");
    let jwe = answer["records"][0]["jwe"].as_str().unwrap().to_owned();
    let pairs: Vec<(&str, &pseudoform_core::oprf::Blind)> =
        types.iter().copied().zip(&blinds).collect();
    record_submission_kid(KID_A, &jwe, &pairs, &[("diagnose", "C50.9")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_down_past_the_jwe_lifetime_answers_the_retry_with_the_first_receipt() {
    let ttp = short_lived_ttp().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_of_the_ttp(dir.path());
    let path = write_config(dir.path(), &config);
    let client = reqwest::Client::new();

    let mut registry = Process::start(REGISTRY, &serve_args(&path)).await;
    let stored = pseudonymise(&ttp, "a new user", &["NGGV", "RGG"]).await;
    let never_sent = pseudonymise(&ttp, "another new user", &["NGGV", "RGG"]).await;
    let (status, first) = post(&client, &registry.base, &stored).await.unwrap();
    assert_eq!(status, 201, "{first}");
    // The answer is lost, and the registry goes down for longer than the
    // JWEs live (1 s; polled on the clock, bounded).
    registry.kill();
    let exp = pseudoform_protocol::unix_now() + 1;
    while pseudoform_protocol::unix_now() <= exp + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registry = Process::start(REGISTRY, &serve_args(&path)).await;
    // The form resends exactly what it sent: the first receipt, nothing new.
    let (status, again) = post(&client, &registry.base, &stored).await.unwrap();
    assert_eq!((status, &again), (201, &first));
    // A submission the registry never had is too late: the form may then
    // pseudonymise afresh, since the registry said it does not have it.
    let (status, body) = post(&client, &registry.base, &never_sent).await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("pseudonym.expired")),
        "{body}"
    );
    assert_eq!(
        Store::open(&config.database)
            .unwrap()
            .record_count()
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_retire_under_load_keep_every_identity_linkable() {
    let ttp = Arc::new(short_lived_ttp().await);
    let dir = tempfile::tempdir().unwrap();
    let config = config_of_the_ttp(dir.path());
    let path = write_config(dir.path(), &config);
    let registry = Process::start(REGISTRY, &serve_args(&path)).await;
    let identities: Vec<String> = (0..12).map(|i| format!("identity {i}")).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let by_identity = Arc::new(std::sync::Mutex::new(BTreeMap::<String, Vec<i64>>::new()));
    let load: Vec<_> = (0..3)
        .map(|c| {
            let (ttp, base, stop) = (Arc::clone(&ttp), registry.base.clone(), Arc::clone(&stop));
            let (identities, by_identity) = (identities.clone(), Arc::clone(&by_identity));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut i = c;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let identity = &identities[i % identities.len()];
                    i += 1;
                    let s = pseudonymise(&ttp, identity, &["NGGV"]).await;
                    let (status, receipt) = post(&client, &base, &s).await.unwrap();
                    assert_eq!(status, 201, "{receipt}");
                    let id = receipt["recordId"].as_i64().unwrap();
                    by_identity
                        .lock()
                        .unwrap()
                        .entry(identity.clone())
                        .or_default()
                        .push(id);
                }
            })
        })
        .collect();
    let count = || {
        Store::open(&config.database)
            .unwrap()
            .record_count()
            .unwrap()
    };
    let wait_for = |n: i64| async move {
        let started = Instant::now();
        while count() < n {
            assert!(started.elapsed() < Duration::from_secs(60), "no progress");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    wait_for(20).await;
    // Rotate, and try to retire the old version at once: refused.
    let mut keys = KeyStore::open_config(&ttp.config).unwrap();
    assert_eq!(keys.rotate(ORG_A, SCOPE_A).unwrap(), 2);
    let window = ttp.config.retire_window_seconds();
    let early = keys.retire(ORG_A, SCOPE_A, 1, pseudoform_protocol::unix_now(), window);
    assert!(early.is_err(), "retired while it may still be current");
    // Within the window the registry re-keys; then v1 is retired.
    let rotated = pseudoform_protocol::unix_now();
    while pseudoform_protocol::unix_now() <= rotated + window {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = Store::open(&config.database).unwrap();
    // The registry as the TTP's recipient caller: private_key_jwt + DPoP.
    let authority = Authority::client(
        &ttp.base,
        Client::RegistryA.id(),
        Client::RegistryA.key(),
        Some(ISSUER),
    )
    .unwrap();
    let rekey = Rekey {
        ttp_url: ttp.base.clone(),
        authority,
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        from: 1,
        to: 2,
        chunk: 1000,
    };
    rekey.run(&store).await.unwrap();
    keys.retire(ORG_A, SCOPE_A, 1, pseudoform_protocol::unix_now(), window)
        .unwrap();
    let retired_at = count();
    wait_for(retired_at + 20).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    // Every record of an identity shares one v2 label with its others, and
    // no two identities share one.
    let records: BTreeMap<i64, BTreeSet<String>> = store
        .records(100_000)
        .unwrap()
        .into_iter()
        .map(|r| {
            let v2 = r
                .pseudonyms
                .into_iter()
                .filter(|p| p.key_version == 2)
                .map(|p| p.label)
                .collect();
            (r.id, v2)
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (identity, ids) in by_identity.lock().unwrap().iter() {
        let mut common: Option<BTreeSet<String>> = None;
        for id in ids {
            let labels = &records[id];
            common = Some(match common {
                None => labels.clone(),
                Some(c) => c.intersection(labels).cloned().collect(),
            });
        }
        let common = common.unwrap();
        assert_eq!(
            common.len(),
            1,
            "{identity}: its {} records are not linked",
            ids.len()
        );
        assert!(
            seen.insert(common.into_iter().next().unwrap()),
            "two identities share a label"
        );
    }
    eprintln!(
        "rotation under load: {} records, {} after the retire",
        records.len(),
        records.len() as i64 - retired_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_full_disk_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    let Some(tmpfs) = Tmpfs::mount(&disk, 8) else {
        eprintln!("SKIPPED readiness_follows_a_full_disk_and_recovers: cannot mount a tmpfs here (needs root)");
        return;
    };
    let mut config = config(dir.path(), DEFAULT_TYPES);
    config.database = disk.join("registry.sqlite");
    let path = write_config(dir.path(), &config);
    let client = reqwest::Client::new();
    let status_of = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    let mut registry = Process::start(REGISTRY, &serve_args(&path)).await;
    let (status, _) = post(&client, &registry.base, &one("NGGV", temporary("NGGV")))
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(status_of(format!("{}/ready", registry.base)).await, 200);

    let filler = tmpfs.fill();
    let mut refused = false;
    for _ in 0..2000 {
        match post(&client, &registry.base, &one("NGGV", temporary("NGGV"))).await {
            Some((201, _)) => {}
            Some((500, body)) => {
                assert_eq!(body["code"], "internal");
                refused = true;
                break;
            }
            other => panic!("answered {other:?}"),
        }
    }
    assert!(refused, "submissions were stored with a full disk");
    assert_eq!(status_of(format!("{}/health", registry.base)).await, 200);
    assert_eq!(status_of(format!("{}/ready", registry.base)).await, 503);

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(status_of(format!("{}/ready", registry.base)).await, 200);
    let (status, _) = post(&client, &registry.base, &one("NGGV", temporary("NGGV")))
        .await
        .unwrap();
    assert_eq!(status, 201);

    // Full again, a crash, space freed: a restart recovers.
    let filler = tmpfs.fill();
    registry.kill();
    std::fs::remove_file(&filler).unwrap();
    let registry = Process::start(REGISTRY, &serve_args(&path)).await;
    assert_eq!(status_of(format!("{}/ready", registry.base)).await, 200);
    let (status, _) = post(&client, &registry.base, &one("NGGV", temporary("NGGV")))
        .await
        .unwrap();
    assert_eq!(status, 201);
}

/// Damaged submissions against the real process: a valid submission (two
/// JWEs, data) with one deterministic mutation each. None may
/// answer a 5xx or end the process; every refusal names a code. The suite
/// sends 300; `PSEUDOFORM_MUTATIONS=N` sends N (an operator's run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_submissions_never_answer_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), DEFAULT_TYPES);
    let path = write_config(dir.path(), &config);
    let registry = Process::start(REGISTRY, &serve_args(&path)).await;
    let client = reqwest::Client::new();
    let n = pseudoform_testkit::mutate::count(300);
    let mut seen: BTreeMap<u16, u32> = BTreeMap::new();
    let mut valid = Vec::new();
    // The record each valid submission was stored as: its JWEs in a
    // damaged copy never make a second one.
    let mut stored: BTreeMap<u32, i64> = BTreeMap::new();
    for i in 0..n {
        // A fresh valid submission every 8 mutations (a stored one's JWEs
        // in a damaged copy are a replay).
        if i % 8 == 0 {
            valid = serde_json::to_vec(&submission(
                vec![("NGGV", temporary("NGGV")), ("RGG", temporary("RGG"))],
                &[("diagnose", "C50.9")],
            ))
            .unwrap();
        }
        let body = pseudoform_testkit::mutate::mutate(&valid, i);
        let response = client
            .post(format!("{}/api/submissions", registry.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("mutation {i}: no answer ({e})"));
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status < 500, "mutation {i}: {status} {answer}");
        if status == 201 {
            let id = answer["recordId"].as_i64().unwrap();
            assert_eq!(
                *stored.entry(i / 8).or_insert(id),
                id,
                "mutation {i}: stored twice"
            );
        } else {
            assert!(answer["code"].is_string(), "mutation {i}: {answer}");
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    eprintln!("registry: {n} mutated submissions answered {seen:?}");
    assert!(seen.len() >= 2, "{seen:?}");
    assert_eq!(
        Store::open(&config.database)
            .unwrap()
            .record_count()
            .unwrap(),
        i64::try_from(stored.len()).unwrap()
    );
    let ready = client
        .get(format!("{}/ready", registry.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}
