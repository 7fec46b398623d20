//! Throughput of batch evaluation over loopback (ignored by default: run
//! `cargo test --release -p pseudoform-ttp --test throughput -- --ignored --nocapture`).
//! A quick smoke version with a few requests runs always.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Instant;

use common::*;
use pseudoform_core::encoding;
use serde_json::{json, Value};

const TYPES: [&str; 5] = ["NGGV", "sNGGV", "C", "RGG", "GG"];

fn body(records: usize, salt: usize) -> Vec<u8> {
    let records: Vec<Value> = (0..records)
        .map(|i| {
            let items: Vec<Value> = TYPES
                .iter()
                .map(|t| {
                    let label = format!("{salt}/{i}/{t}");
                    json!({"type": t, "blindedInput": encoding::encode(&blinded(label.as_bytes(), &label).1)})
                })
                .collect();
            json!({ "items": items })
        })
        .collect();
    serde_json::to_vec(
        &json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "records": records}),
    )
    .unwrap()
}

async fn measure(requests: usize, records: usize, clients: usize, rotate: bool) -> f64 {
    let ttp = TestTtp::start_with(false, "").await;
    // Warm up (first use makes the key).
    let (status, _, _) = ttp
        .post_raw("/v1/evaluate", Some(TOKEN_FORM), None, body(1, 0))
        .await;
    assert_eq!(status, 200);
    if rotate {
        pseudoform_ttp::keys::KeyStore::open_config(&ttp.config)
            .unwrap()
            .rotate(ORG_A, SCOPE_A)
            .unwrap();
    }
    let bodies: Vec<Vec<u8>> = (0..clients).map(|c| body(records, c)).collect();
    let ttp = std::sync::Arc::new(ttp);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for body in bodies {
        let ttp = std::sync::Arc::clone(&ttp);
        tasks.push(tokio::spawn(async move {
            for _ in 0..requests / clients {
                let (status, _, answer) = ttp
                    .post_raw("/v1/evaluate", Some(TOKEN_FORM), None, body.clone())
                    .await;
                assert_eq!(status, 200, "{answer}");
                assert_eq!(answer["records"].as_array().unwrap().len(), records);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let evaluations = (requests / clients * clients * records * TYPES.len()) as f64;
    let per_second = evaluations / seconds;
    println!(
        "{evaluations} evaluations ({} JWEs) in {seconds:.2} s with {clients} clients{}: {per_second:.0} evaluations/s",
        requests / clients * clients * records,
        if rotate { ", two active key versions" } else { "" }
    );
    per_second
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_smoke() {
    assert!(measure(2, 5, 2, false).await > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test; run in release with --ignored"]
async fn batch_throughput() {
    measure(40, 200, 4, false).await;
    measure(40, 200, 4, true).await;
    measure(400, 1, 8, false).await;
}
