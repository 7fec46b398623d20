//! Load generator for the TTP (`bench/ttp-load.mjs` runs it).
//!
//! ```text
//! pseudoform-ttp-load --url http://127.0.0.1:8470 --token-file DIR/provider-token \
//!   --organization oin:… --scope … [--seconds 10] [--warmup 1] [--clients 1,16,64]
//!   [--modes single,batch] [--records 100] [--types NGGV,RGG,MRN]
//! ```
//!
//! Every request carries real blinded elements (`r·HashToGroup(x)` for random
//! `x` and `r`, made with pseudoform-core before the clock starts). `single`
//! is `POST /oprf/eval` with one element and a `pseudonymType`; `batch` is
//! `POST /v1/evaluate` with `--records` records of one item per type. Each
//! client is one task on one keep-alive HTTP/1.1 connection that sends its
//! next request as soon as the answer is read in full (a closed loop); the
//! generator runs on one thread. After `--warmup` seconds unrecorded, each
//! scenario runs `--seconds`: no request starts after that, the ones in
//! flight are awaited. Latencies go into an HDR histogram (1 µs to 60 s,
//! three significant digits). Any answer other than 200, and any transport
//! error, is an error. Prints one JSON line per scenario.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pseudoform_core::{encoding, oprf};
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Batch,
    /// What the form sends: `POST /v1/evaluate` with one record of every type.
    Form,
}

struct Options {
    url: String,
    token: String,
    organization: String,
    scope: String,
    seconds: f64,
    warmup: f64,
    clients: Vec<usize>,
    modes: Vec<Mode>,
    records: usize,
    types: Vec<String>,
    /// Bulk clients of the mixed scenario (0: none).
    mixed: usize,
    /// Clients of the overload scenario (0: none).
    overload: usize,
}

fn options() -> Result<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let need = |name: &str| get(name).ok_or_else(|| format!("{name} is required"));
    let list = |text: String| -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let token = std::fs::read_to_string(need("--token-file")?)?
        .trim()
        .to_owned();
    let modes = list(get("--modes").unwrap_or_else(|| "single,batch".into()))
        .iter()
        .map(|m| match m.as_str() {
            "single" => Ok(Mode::Single),
            "batch" => Ok(Mode::Batch),
            other => Err(format!("unknown mode {other}")),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let clients = list(get("--clients").unwrap_or_else(|| "1,16,64".into()))
        .iter()
        .map(|c| c.parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Options {
        url: need("--url")?.trim_end_matches('/').to_owned(),
        token,
        organization: need("--organization")?,
        scope: need("--scope")?,
        seconds: get("--seconds").map_or(Ok(10.0), |s| s.parse())?,
        warmup: get("--warmup").map_or(Ok(1.0), |s| s.parse())?,
        clients,
        modes,
        records: get("--records").map_or(Ok(100), |s| s.parse())?,
        types: list(get("--types").unwrap_or_else(|| "NGGV,RGG,MRN".into())),
        mixed: get("--mixed").map_or(Ok(0), |s| s.parse())?,
        overload: get("--overload").map_or(Ok(0), |s| s.parse())?,
    })
}

/// `n` valid blinded elements: `r·HashToGroup(x)` for random `x` and `r`.
fn blinded_elements(n: usize) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut input = [0u8; 32];
        let mut wide = [0u8; 64];
        getrandom::getrandom(&mut input)?;
        getrandom::getrandom(&mut wide)?;
        let blind = oprf::Blind::from_uniform_bytes(&wide)?;
        out.push(encoding::encode(&oprf::blind(&input, &blind)?));
    }
    Ok(out)
}

/// Request bodies to cycle through, and the evaluations each asks for.
fn bodies(o: &Options, mode: Mode, elements: &[String]) -> (Vec<Bytes>, usize) {
    let mut next = elements.iter().cycle();
    let mut element = || next.next().cloned().unwrap_or_default();
    match mode {
        Mode::Single => {
            let bodies = (0..elements.len())
                .map(|i| {
                    let t = o.types.get(i % o.types.len().max(1)).cloned();
                    Bytes::from(
                        json!({
                            "encryptedPersonalId": element(),
                            "recipientOrganization": o.organization,
                            "recipientScope": o.scope,
                            "pseudonymType": t,
                        })
                        .to_string(),
                    )
                })
                .collect();
            (bodies, 1)
        }
        Mode::Batch | Mode::Form => {
            let records = if mode == Mode::Form { 1 } else { o.records };
            let count = (elements.len() / (records * o.types.len()).max(1)).max(1);
            let bodies = (0..count)
                .map(|_| {
                    let records: Vec<Value> = (0..records)
                        .map(|_| {
                            let items: Vec<Value> = o
                                .types
                                .iter()
                                .map(|t| json!({ "type": t, "blindedInput": element() }))
                                .collect();
                            json!({ "items": items })
                        })
                        .collect();
                    Bytes::from(
                        json!({
                            "recipientOrganization": o.organization,
                            "recipientScope": o.scope,
                            "records": records,
                        })
                        .to_string(),
                    )
                })
                .collect();
            (bodies, records * o.types.len())
        }
    }
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    checked: bool,
}

/// One request; the answer is read in full. `Ok(status, body)`.
async fn send(client: &HttpClient, url: &str, token: &str, body: Bytes) -> Result<(u16, Bytes)> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(body))?;
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Whether a 200 answer has the expected shape (one JWE per record).
fn answer_ok(mode: Mode, records: usize, body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    match mode {
        Mode::Single => v.get("jwe").and_then(Value::as_str).is_some(),
        Mode::Batch => v
            .get("records")
            .and_then(Value::as_array)
            .is_some_and(|r| r.len() == records),
        Mode::Form => v
            .get("records")
            .and_then(Value::as_array)
            .is_some_and(|r| r.len() == 1),
    }
}

/// One client: requests back to back until `until`; latencies recorded from
/// `record_from` on.
#[allow(clippy::too_many_arguments)]
async fn client_loop(
    client: HttpClient,
    url: String,
    token: String,
    bodies: Vec<Bytes>,
    offset: usize,
    mode: Mode,
    records: usize,
    record_from: Instant,
    until: Instant,
) -> Result<(Histogram<u64>, Tally)> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut tally = Tally::default();
    let mut i = offset;
    while Instant::now() < until {
        let body = bodies
            .get(i % bodies.len().max(1))
            .cloned()
            .unwrap_or_default();
        i += 1;
        let start = Instant::now();
        let result = send(&client, &url, &token, body).await;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        if start < record_from {
            continue;
        }
        histogram.saturating_record(micros.max(1));
        match result {
            Ok((200, body)) => {
                if !tally.checked {
                    tally.checked = true;
                    if !answer_ok(mode, records, &body) {
                        tally.errors += 1;
                        *tally.statuses.entry("200 malformed".into()).or_default() += 1;
                        continue;
                    }
                }
                tally.ok += 1;
                *tally.statuses.entry("200".into()).or_default() += 1;
            }
            Ok((status, _)) => {
                tally.errors += 1;
                *tally.statuses.entry(status.to_string()).or_default() += 1;
                if status == 503 {
                    // Shed: as told by Retry-After (1 s), then again.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Err(_) => {
                tally.errors += 1;
                *tally.statuses.entry("transport".into()).or_default() += 1;
            }
        }
    }
    Ok((histogram, tally))
}

async fn scenario(o: &Options, mode: Mode, clients: usize, elements: &[String]) -> Result<Value> {
    let (bodies, evaluations_per_request) = bodies(o, mode, elements);
    let path = path_of(mode);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http();
    let record_from = Instant::now() + Duration::from_secs_f64(o.warmup);
    let until = record_from + Duration::from_secs_f64(o.seconds);
    let tasks = spawn_clients(o, mode, clients, bodies, &client, record_from, until);
    let (histogram, tally) = merge(tasks).await?;
    let elapsed = record_from.elapsed().as_secs_f64();
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let requests = tally.ok + tally.errors;
    Ok(json!({
        "mode": name_of(mode),
        "path": path,
        "clients": clients,
        "seconds": elapsed,
        "evaluationsPerRequest": evaluations_per_request,
        "records": if mode == Mode::Batch { o.records } else { 1 },
        "over10s": histogram.count_between(10_000_000, 60_000_000),
        "types": o.types,
        "requests": requests,
        "ok": tally.ok,
        "errors": tally.errors,
        "statuses": tally.statuses,
        "requestsPerSecond": tally.ok as f64 / elapsed,
        "evaluationsPerSecond": (tally.ok as f64) * (evaluations_per_request as f64) / elapsed,
        "p50Ms": ms(0.50),
        "p90Ms": ms(0.90),
        "p99Ms": ms(0.99),
        "maxMs": histogram.max() as f64 / 1000.0,
        "meanMs": histogram.mean() / 1000.0,
    }))
}

fn path_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Single => "/oprf/eval",
        Mode::Batch | Mode::Form => "/v1/evaluate",
    }
}

fn name_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Single => "single",
        Mode::Batch => "batch",
        Mode::Form => "form",
    }
}

/// One closed-loop client: its latency histogram and tally.
type ClientTask = tokio::task::JoinHandle<Result<(Histogram<u64>, Tally)>>;

/// `clients` closed-loop clients of `mode`, sending `bodies` in turn and
/// recording from `record_from` until `until`; [`merge`] their results.
fn spawn_clients(
    o: &Options,
    mode: Mode,
    clients: usize,
    bodies: Vec<Bytes>,
    client: &HttpClient,
    record_from: Instant,
    until: Instant,
) -> Vec<ClientTask> {
    let url = format!("{}{}", o.url, path_of(mode));
    (0..clients)
        .map(|c| {
            tokio::spawn(client_loop(
                client.clone(),
                url.clone(),
                o.token.clone(),
                bodies.clone(),
                c * 7,
                mode,
                o.records,
                record_from,
                until,
            ))
        })
        .collect()
}

/// The merged histogram and tally of clients' tasks.
async fn merge(tasks: Vec<ClientTask>) -> Result<(Histogram<u64>, Tally)> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut tally = Tally::default();
    for task in tasks {
        let (h, t) = task.await??;
        histogram.add(&h)?;
        tally.ok += t.ok;
        tally.errors += t.errors;
        for (k, v) in t.statuses {
            *tally.statuses.entry(k).or_default() += v;
        }
    }
    Ok((histogram, tally))
}

/// `bulk` batch clients saturate the TTP while `forms` form clients send
/// one record each: the form's p99 under bulk load, and the bulk p99
/// against the first-in-first-out ideal (Little's law: with `bulk`
/// requests always waiting, each waits `bulk / throughput` on average).
async fn mixed_scenario(
    o: &Options,
    bulk: usize,
    forms: usize,
    elements: &[String],
) -> Result<Value> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(bulk + forms)
        .build_http();
    let record_from = Instant::now() + Duration::from_secs_f64(o.warmup);
    let until = record_from + Duration::from_secs_f64(o.seconds);
    let (bulk_bodies, _) = bodies(o, Mode::Batch, elements);
    let (form_bodies, _) = bodies(o, Mode::Form, elements);
    let bulk_tasks = spawn_clients(
        o,
        Mode::Batch,
        bulk,
        bulk_bodies,
        &client,
        record_from,
        until,
    );
    let form_tasks = spawn_clients(
        o,
        Mode::Form,
        forms,
        form_bodies,
        &client,
        record_from,
        until,
    );
    let (bh, bt) = merge(bulk_tasks).await?;
    let (fh, ft) = merge(form_tasks).await?;
    let elapsed = record_from.elapsed().as_secs_f64();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let bulk_rps = bt.ok as f64 / elapsed;
    let fifo_ideal_ms = if bulk_rps > 0.0 {
        bulk as f64 / bulk_rps * 1000.0
    } else {
        0.0
    };
    Ok(json!({
        "mode": "mixed",
        "clients": bulk + forms,
        "bulkClients": bulk,
        "formClients": forms,
        "seconds": elapsed,
        "records": o.records,
        "types": o.types,
        "bulk": {"ok": bt.ok, "errors": bt.errors, "statuses": bt.statuses,
            "requestsPerSecond": bulk_rps,
            "evaluationsPerSecond": bulk_rps * (o.records * o.types.len()) as f64,
            "p50Ms": ms(&bh, 0.5), "p99Ms": ms(&bh, 0.99), "maxMs": bh.max() as f64 / 1000.0,
            "fifoIdealMs": fifo_ideal_ms,
            "p99OverFifoIdeal": if fifo_ideal_ms > 0.0 { ms(&bh, 0.99) / fifo_ideal_ms } else { 0.0 }},
        "form": {"ok": ft.ok, "errors": ft.errors, "statuses": ft.statuses,
            "p50Ms": ms(&fh, 0.5), "p99Ms": ms(&fh, 0.99), "maxMs": fh.max() as f64 / 1000.0},
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let o = options()?;
    if o.types.is_empty() || o.records == 0 || o.clients.is_empty() {
        return Err("--types, --records and --clients must not be empty".into());
    }
    // Enough distinct elements for a few batch bodies and many single ones.
    let elements = blinded_elements((4 * o.records * o.types.len()).max(2000))?;
    for &mode in &o.modes {
        for &clients in &o.clients {
            let result = scenario(&o, mode, clients, &elements).await?;
            println!("{result}");
        }
    }
    if o.mixed > 0 {
        println!("{}", mixed_scenario(&o, o.mixed, 4, &elements).await?);
    }
    if o.overload > 0 {
        // Form requests from many clients: each served or shed (503, then
        // it waits Retry-After) — `over10s` counts any past the form's 10 s.
        let mut result = scenario(&o, Mode::Form, o.overload, &elements).await?;
        result["mode"] = json!("overload");
        println!("{result}");
    }
    Ok(())
}
