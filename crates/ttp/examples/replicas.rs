//! Benchmark of TTP replicas (in `./build.sh bench`): batch evaluations/s
//! of one `pseudoform-ttp serve` process asked directly with its ledger and
//! key versions in SQLite and in PostgreSQL, of one behind HAProxy, and of
//! three behind HAProxy (sharing PostgreSQL, each with a database of its
//! own for its audit chain), on this host, side by side in one run; and the CPU each took per 1 000 evaluations (the TTP processes,
//! HAProxy and PostgreSQL, from `/proc`), which docs/bench.md turns into a
//! model of how throughput scales with cores and replicas.
//!
//! `cargo run --release -p pseudoform-ttp --example replicas -- [--seconds S] [--clients C] [--out FILE]`
//!
//! The master and signing keys are key files (the token's cost is
//! `--example custody`'s), a PostgreSQL server of the run that flushes
//! every commit (`fsync = on`, as in production) holds the ledger and the
//! key versions, and the replicas run in development mode with a static token,
//! so that the load stays on the evaluation path; batches of 100 records of
//! NGGV+RGG+MRN (300 evaluations). The load generator runs in this process
//! and shares the host's cores with the replicas and HAProxy.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pseudoform_testkit::balancer::Balancer;
use pseudoform_testkit::postgres::Postgres;
use pseudoform_testkit::process::Process;
use pseudoform_testkit::ttp::*;
use serde_json::{json, Value};

const RECORDS: usize = 100;
const TYPES: [&str; 3] = ["NGGV", "RGG", "MRN"];

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ, 100 on Linux.
    ticks / 100.0
}

/// Evaluations/s of `clients` for `seconds` against `base`.
async fn load(base: &str, clients: usize, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (base, done) = (base.to_owned(), Arc::clone(&done));
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut n = 0;
                while Instant::now() < end {
                    let body = batch_request(ORG_A, SCOPE_A, &TYPES, RECORDS, &format!("{c}/{n}"));
                    let r = client
                        .post(format!("{base}/v1/evaluate"))
                        .bearer_auth(TOKEN_FORM)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    r.bytes().await.unwrap();
                    done.fetch_add((RECORDS * TYPES.len()) as u64, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// CPU seconds of every process whose command line names `needle`.
fn cpu_seconds_of(needle: &str) -> f64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(cpu_seconds)
        .sum()
}

/// One setup: `replicas` processes, behind HAProxy or not, their ledger in
/// a database of `postgres` or in SQLite.
async fn measure(
    replicas: usize,
    balanced: bool,
    postgres: Option<&Postgres>,
    clients: usize,
    seconds: u64,
) -> Value {
    let ledger = postgres.map_or(String::new(), common::postgres_stores);
    let common::Replicas {
        dir,
        processes,
        balancer,
        base,
    } = common::start(replicas, balanced, &ledger).await;
    // A warm-up: the domain's first key version and the connections.
    load(&base, clients, 1).await;
    // PostgreSQL's backends and background processes run as `postgres: …`.
    let pg_cpu = || postgres.map_or(0.0, |_| cpu_seconds_of("postgres"));
    let cpu = |processes: &[Process], balancer: &Option<Balancer>| {
        let ttp: f64 = processes.iter().map(|p| cpu_seconds(p.id())).sum();
        (
            ttp,
            balancer.as_ref().map_or(0.0, |b| cpu_seconds(b.id())),
            pg_cpu(),
        )
    };
    let (ttp_before, lb_before, pg_before) = cpu(&processes, &balancer);
    let started = Instant::now();
    let rate = load(&base, clients, seconds).await;
    let elapsed = started.elapsed().as_secs_f64();
    let (ttp_after, lb_after, pg_after) = cpu(&processes, &balancer);
    let evaluations = rate * elapsed;
    drop(balancer);
    drop(processes);
    drop(dir);
    json!({
        "replicas": replicas,
        "haproxy": balanced,
        "ledger": if postgres.is_some() { "postgres" } else { "sqlite" },
        "evaluationsPerSecond": rate.round() as u64,
        "ttpCpuMsPer1000": ((ttp_after - ttp_before) / evaluations * 1e6).round() as u64,
        "haproxyCpuMsPer1000": ((lb_after - lb_before) / evaluations * 1e6).round() as u64,
        "postgresCpuMsPer1000": ((pg_after - pg_before) / evaluations * 1e6).round() as u64,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: u64 = common::arg("--seconds").map_or(10, |s| s.parse().unwrap());
    let clients: usize = common::arg("--clients").map_or(8, |s| s.parse().unwrap());
    let out = common::arg("--out");
    let pg = tokio::task::spawn_blocking(Postgres::start_durable)
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (replicas, balanced, shared) in [
        (1, false, false),
        (1, false, true),
        (1, true, true),
        (3, true, true),
    ] {
        eprintln!(
            "replicas: {replicas} replica(s), haproxy {balanced}, postgres {shared}, {clients} clients, {seconds} s"
        );
        let postgres = shared.then_some(&pg);
        rows.push(measure(replicas, balanced, postgres, clients, seconds).await);
    }
    let direct = rows[0]["evaluationsPerSecond"].as_f64().unwrap();
    println!("| setup | ledger | evaluations/s | ratio | TTP CPU ms / 1 000 | HAProxy CPU ms / 1 000 | PostgreSQL CPU ms / 1 000 |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        let name = match (
            r["replicas"].as_u64().unwrap(),
            r["haproxy"].as_bool().unwrap(),
        ) {
            (1, false) => "1 replica, direct".to_owned(),
            (1, true) => "1 replica, HAProxy".to_owned(),
            (n, _) => format!("{n} replicas, HAProxy"),
        };
        println!(
            "| {name} | {} | {} | {:.2} | {} | {} | {} |",
            r["ledger"].as_str().unwrap(),
            r["evaluationsPerSecond"],
            r["evaluationsPerSecond"].as_f64().unwrap() / direct,
            r["ttpCpuMsPer1000"],
            r["haproxyCpuMsPer1000"],
            r["postgresCpuMsPer1000"]
        );
    }
    drop(pg);
    let result = json!({
        "clients": clients,
        "seconds": seconds,
        "recordsPerBatch": RECORDS,
        "types": TYPES,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "setups": rows,
    });
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
    }
}
