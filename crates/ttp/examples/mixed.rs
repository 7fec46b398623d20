//! Benchmark of the TTP's mixed load on its shared store (in `./build.sh
//! bench`): the reliability figures of `bench/ttp-load.mjs` — single
//! evaluations/s, the form's p99 while bulk batches saturate the TTP, and
//! a burst of 256 forms served or shed — on one replica asked directly
//! with its ledger and key versions in SQLite and in PostgreSQL, and on
//! three replicas behind HAProxy sharing PostgreSQL (each with a database
//! of its own for its audit chain), side by side in one run.
//!
//! `cargo run --release -p pseudoform-ttp --example mixed -- [--seconds S] [--out FILE]`
//!
//! The load is `bench/ttp-load`'s generator (built into
//! `target/bench-load` when missing), against replicas in development mode
//! with a static token and key files (the token's cost is `--example
//! custody`'s); PostgreSQL is a server of the run that flushes every
//! commit. The generator, the replicas, HAProxy and
//! PostgreSQL share this host's cores.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use pseudoform_testkit::postgres::Postgres;
use pseudoform_testkit::ttp::*;
use serde_json::{json, Value};

/// Bulk clients of the mixed scenario; form clients of the burst; clients
/// of the single-evaluation scenario.
const MIXED_BULK: usize = 64;
const OVERLOAD: usize = 256;
const SINGLE_CLIENTS: usize = 16;
const BUDGETS: &str = "[budgets]\nbrowser_token = { per_minute = 1000000000, per_day = 1000000000 }\nperson = { per_minute = 1000000000, per_day = 1000000000 }\nprovider = { per_minute = 1000000000, per_day = 1000000000 }\nrecipient = { per_minute = 1000000000, per_day = 1000000000 }\nclient = { per_minute = 1000000000, per_day = 1000000000 }\n";

/// The workspace's root (this example's manifest is crates/ttp's).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The load generator, built when missing.
fn load_generator() -> PathBuf {
    let target = root().join("target/bench-load");
    let binary = target.join("release/pseudoform-ttp-load");
    if !binary.exists() {
        eprintln!("mixed: building the load generator (bench/ttp-load)");
        let status = Command::new("cargo")
            .args(["build", "--release", "--quiet", "--target-dir"])
            .arg(&target)
            .current_dir(root().join("bench/ttp-load"))
            .status()
            .unwrap();
        assert!(status.success(), "cannot build bench/ttp-load");
    }
    binary
}

/// One setup's scenarios, as the generator's JSON lines.
async fn measure(
    replicas: usize,
    postgres: Option<&Postgres>,
    balanced: bool,
    seconds: u64,
) -> Value {
    let ledger = postgres.map_or(String::new(), common::postgres_stores);
    let common::Replicas {
        dir,
        processes,
        balancer,
        base,
    } = common::start(replicas, balanced, &format!("{BUDGETS}{ledger}")).await;
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN_FORM).unwrap();
    let generator = load_generator();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(generator)
            .args(["--url", &base, "--token-file"])
            .arg(&token)
            .args(["--organization", ORG_A, "--scope", SCOPE_A])
            .args(["--seconds", &seconds.to_string(), "--warmup", "1"])
            .args([
                "--clients",
                &SINGLE_CLIENTS.to_string(),
                "--modes",
                "single",
            ])
            .args(["--records", "100", "--types", "NGGV,RGG,MRN"])
            .args(["--mixed", &MIXED_BULK.to_string()])
            .args(["--overload", &OVERLOAD.to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the load generator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(balancer);
    drop(processes);
    drop(dir);
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |mode: &str| lines.iter().find(|l| l["mode"] == mode).unwrap().clone();
    json!({
        "replicas": replicas,
        "haproxy": balanced,
        "ledger": if postgres.is_some() { "postgres" } else { "sqlite" },
        "single": of("single"),
        "mixed": of("mixed"),
        "overload": of("overload"),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = common::arg("--seconds").map_or(10, |s| s.parse().unwrap());
    let out = common::arg("--out");
    let pg = tokio::task::spawn_blocking(Postgres::start_durable)
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (replicas, shared, balanced) in [(1, false, false), (1, true, false), (3, true, true)] {
        eprintln!("mixed: {replicas} replica(s), PostgreSQL {shared}, HAProxy {balanced}, {seconds} s per scenario");
        rows.push(measure(replicas, shared.then_some(&pg), balanced, seconds).await);
    }
    drop(pg);
    println!("| setup | single evaluations/s ({SINGLE_CLIENTS} clients) | single p99 | form p99 under bulk | bulk evaluations/s | bulk p99 / FIFO ideal | burst of {OVERLOAD}: served, shed, past 10 s | errors |");
    println!("|---|---:|---:|---:|---:|---:|---|---:|");
    for r in &rows {
        let name = format!(
            "{} replica(s), {}, {}",
            r["replicas"],
            if r["haproxy"].as_bool().unwrap() {
                "HAProxy"
            } else {
                "direct"
            },
            r["ledger"].as_str().unwrap()
        );
        let (single, mixed, burst) = (&r["single"], &r["mixed"], &r["overload"]);
        let statuses = &burst["statuses"];
        let errors = single["errors"].as_u64().unwrap()
            + mixed["bulk"]["errors"].as_u64().unwrap()
            + mixed["form"]["errors"].as_u64().unwrap();
        println!(
            "| {name} | {:.0} | {:.1} ms | {:.1} ms | {:.0} | {:.2} | {}, {}, {} | {errors} |",
            single["evaluationsPerSecond"].as_f64().unwrap(),
            single["p99Ms"].as_f64().unwrap(),
            mixed["form"]["p99Ms"].as_f64().unwrap(),
            mixed["bulk"]["evaluationsPerSecond"].as_f64().unwrap(),
            mixed["bulk"]["p99OverFifoIdeal"].as_f64().unwrap(),
            statuses["200"].as_u64().unwrap_or(0),
            statuses["503"].as_u64().unwrap_or(0),
            burst["over10s"],
        );
    }
    let result = json!({
        "seconds": seconds,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "setups": rows,
    });
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    }
}
