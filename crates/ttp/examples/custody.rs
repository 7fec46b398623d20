//! Benchmark of the TTP's key custody (in `./build.sh bench`): the same
//! in-process TTP on SQLite, once with its master key and signing key in
//! files and once with both on a SoftHSM2 token (`[hsm]`), side by side in
//! one run:
//!
//! - batch evaluations/s: `POST /v1/evaluate`, 100 records of
//!   NGGV+RGG+MRN (300 evaluations, 100 signed JWEs), from `--clients`
//!   concurrent clients for `--seconds` each after a warm-up;
//! - signatures/s of the signing key alone (one thread), where the
//!   token's cost shows;
//! - key loads/s: decrypting a domain's key versions and binding key
//!   (what a key-epoch change costs each server).
//!
//! `cargo run --release -p pseudoform-ttp --example custody -- [--seconds S] [--clients C] [--out FILE]`
//! prints a table and writes the figures as JSON. The load runs in the
//! TTP's own process and shares its cores, the same for both custodies.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pseudoform_testkit::softhsm;
use pseudoform_testkit::ttp::*;
use pseudoform_ttp::hsm::{self, InitSource};
use pseudoform_ttp::keys::KeyStore;
use pseudoform_ttp::signing::SigningKey;
use serde_json::{json, Value};

const RECORDS: usize = 100;
const TYPES: [&str; 3] = ["NGGV", "RGG", "MRN"];

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Evaluations per second of `clients` concurrent clients for `seconds`.
async fn evaluations_per_second(ttp: &Arc<TestTtp>, clients: usize, seconds: u64) -> f64 {
    let credential = Arc::new(ttp.backend(Client::ProviderA).await);
    let warm = batch_request(ORG_A, SCOPE_A, &TYPES, RECORDS, "warm-up");
    let (status, _, body) = ttp.call(&credential, "/v1/evaluate", &warm).await;
    assert_eq!(status, 200, "{body}");
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (ttp, credential, done) =
                (Arc::clone(ttp), Arc::clone(&credential), Arc::clone(&done));
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < end {
                    let request =
                        batch_request(ORG_A, SCOPE_A, &TYPES, RECORDS, &format!("{c}/{n}"));
                    let (status, _, body) = ttp.call(&credential, "/v1/evaluate", &request).await;
                    assert_eq!(status, 200, "{body}");
                    done.fetch_add((RECORDS * TYPES.len()) as u64, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Operations per second of `f` for about one second.
fn per_second(mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        f();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn measure(ttp: TestTtp, clients: usize, seconds: u64) -> Value {
    let ttp = Arc::new(ttp);
    let evaluations = evaluations_per_second(&ttp, clients, seconds).await;
    let key = SigningKey::load(&ttp.config).unwrap();
    let signatures = per_second(|| {
        key.sign(b"{\"bench\":1}").unwrap();
    });
    let mut store = KeyStore::open_config(&ttp.config).unwrap();
    let loads = per_second(|| {
        store.load(ORG_A, SCOPE_A).unwrap();
    });
    json!({
        "evaluationsPerSecond": evaluations.round() as u64,
        "signaturesPerSecond": signatures.round() as u64,
        "keyLoadsPerSecond": loads.round() as u64,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = arg("--seconds").map_or(10, |s| s.parse().unwrap());
    let clients: usize = arg("--clients").map_or(4, |s| s.parse().unwrap());
    let out = arg("--out");
    softhsm::conf();

    eprintln!("custody: key files, {clients} clients, {seconds} s");
    let files = measure(TestTtp::start(false).await, clients, seconds).await;
    eprintln!("custody: SoftHSM2 token, {clients} clients, {seconds} s");
    let label = format!("bench-{}", std::process::id());
    let token = TestTtp::start_edited(false, "", |dir, text| {
        let config = softhsm::config_for(dir, &label);
        hsm::init(&config, &InitSource::default()).unwrap();
        softhsm::on_token(&text, &config)
    })
    .await;
    let token = measure(token, clients, seconds).await;

    let ratio =
        |k: &str| (token[k].as_f64().unwrap() / files[k].as_f64().unwrap() * 100.0).round() / 100.0;
    let result = json!({
        "clients": clients,
        "seconds": seconds,
        "recordsPerBatch": RECORDS,
        "types": TYPES,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "keyFiles": files,
        "softhsm2": token,
        "ratio": {
            "evaluations": ratio("evaluationsPerSecond"),
            "signatures": ratio("signaturesPerSecond"),
            "keyLoads": ratio("keyLoadsPerSecond"),
        },
    });
    println!("| custody | evaluations/s (batches) | signatures/s | key loads/s |");
    println!("|---|---:|---:|---:|");
    for (name, r) in [("key files", &files), ("SoftHSM2 token", &token)] {
        println!(
            "| {name} | {} | {} | {} |",
            r["evaluationsPerSecond"], r["signaturesPerSecond"], r["keyLoadsPerSecond"]
        );
    }
    println!(
        "| token / files | {} | {} | {} |",
        result["ratio"]["evaluations"], result["ratio"]["signatures"], result["ratio"]["keyLoads"]
    );
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    }
}
