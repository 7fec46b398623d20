//! `pseudoform batch` against a real TTP and a real registry on loopback
//! (in this process; the command itself in process through its library, or
//! as its binary where exit codes and `kill -9` are the point).
//!
//! What a new user of the command relies on: the example extract of
//! docs/examples delivers exactly its valid, non-objecting rows; nothing
//! identifying reaches the TTP's or the registry's storage; a run killed
//! with `kill -9` resumes without a duplicate; the exit codes say what
//! happened; memory does not grow with the file.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pseudoform_cli::output::{Format, CSV_COLUMNS};
use pseudoform_cli::run::{run, Options};
use pseudoform_testkit::keys::{client_key_pem, ttp_signing};
use pseudoform_testkit::registry::Registry;
use pseudoform_testkit::ttp::{Client, TestTtp, KID_A, ORG_A, SCOPE_A};
use serde_json::Value;

const PUBLIC_URL: &str = "https://registry-a.test";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// A TTP and registry A that requires submitter proofs (the demo's setting).
async fn chain() -> (TestTtp, Registry) {
    let ttp = TestTtp::start(false).await;
    // The test TTP's types for A, but B.
    let types = ["NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"];
    let registry = Registry::start_configured(&types, |c| {
        c.keys[0].kid = Some(KID_A.into());
        c.public_url = Some(PUBLIC_URL.into());
        c.require_submitter_proof = true;
    })
    .await;
    (ttp, registry)
}

/// The processor's connection file in `dir`, with `client_key` as its key.
fn connection(dir: &Path, ttp: &TestTtp, registry: &Registry, client_key: &str) -> PathBuf {
    let key = dir.join("processor-key.pem");
    if !key.exists() {
        pseudoform_protocol::secret_file::create(&key, client_key.as_bytes()).unwrap();
    }
    std::fs::write(dir.join("ttp-signing.pem"), &ttp_signing().public_pem).unwrap();
    let path = dir.join("connection.toml");
    std::fs::write(
        &path,
        format!(
            "ttp_url = \"{}\"\nttp_issuer = \"{}\"\nclient_id = \"{}\"\nclient_key = \"processor-key.pem\"\nprovider = \"ura:00000001\"\nttp_signing_keys = [\"ttp-signing.pem\"]\n\n[registry]\norganization = \"{ORG_A}\"\nscope = \"{SCOPE_A}\"\nurl = \"http://{}\"\npublic_url = \"{PUBLIC_URL}\"\n",
            ttp.base,
            pseudoform_testkit::ttp::ISSUER,
            Client::Processor.id(),
            registry.addr,
        ),
    )
    .unwrap();
    path
}

fn options(input: PathBuf, mapping: PathBuf, connection: Option<PathBuf>, dir: &Path) -> Options {
    Options {
        input,
        mapping,
        connection,
        check: false,
        output: None,
        format: Format::Csv,
        deliver: false,
        report: Some(dir.join("report.csv")),
        checkpoint: Some(dir.join("checkpoint.json")),
        resume: false,
        allow_refused: false,
        chunk_size: 500,
        parallel: 4,
        retries: 1,
        types: Vec::new(),
        require: Vec::new(),
        progress: false,
    }
}

/// The options of a run of the example extract of docs/examples as the
/// processor, with its files in `dir`.
fn example(dir: &Path, ttp: &TestTtp, registry: &Registry) -> Options {
    let conn = connection(dir, ttp, registry, client_key_pem(2));
    options(
        repo("docs/examples/processor-extract.csv"),
        repo("docs/examples/processor-mapping.toml"),
        Some(conn),
        dir,
    )
}

/// The example extract's identifying values, as typed and as normalised.
const EXAMPLE_IDENTITY: &[&str] = &[
    "Brontë",
    "BRONTE",
    "van der Berg",
    "JANSEN",
    "Jansen",
    "'t Hart",
    "de Vries",
    "Müller",
    "MULLER",
    "Öztürk",
    "OZTURK",
    "12-03-1961",
    "19610312",
    "1961-03-12",
    "01-02-1980",
    "19800201",
    "1234 AB",
    "3511 LX",
    "3511LX",
    "9711 PB",
    "9711PB",
];

fn contains_any(bytes: &[u8], needles: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    needles
        .iter()
        .find(|n| text.contains(**n))
        .map(|n| (*n).to_owned())
}

/// Every file under `dir`, read.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_extract_delivers_exactly_its_valid_rows_and_nothing_identifying() {
    let (ttp, registry) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut o = example(dir.path(), &ttp, &registry);
    o.deliver = true;
    o.output = Some(dir.path().join("out.csv"));
    let summary = run(o).await.unwrap();
    let c = &summary.counts;
    assert_eq!(
        (
            c.rows,
            c.valid,
            c.pseudonymised,
            c.opted_out,
            c.refused,
            c.stored
        ),
        (6, 4, 4, 1, 1, 4),
        "{summary:?} {}",
        std::fs::read_to_string(dir.path().join("report.csv")).unwrap()
    );
    assert_eq!(summary.exit_code, 1, "a refused row makes the exit code 1");
    assert_eq!(summary.encoding, "windows-1252");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("report.csv")).unwrap(),
        "row,field,code\r\n5,birthDate,birthDate.calendar\r\n"
    );
    assert!(
        !dir.path().join("checkpoint.json").exists(),
        "a finished run leaves no checkpoint"
    );

    // The registry holds the four valid rows' clinical data, with NGGV and
    // RGG (its required types) and the rest the policy allows.
    let records = registry.records().await;
    let mut diagnoses: Vec<&str> = records
        .iter()
        .map(|r| r["data"]["diagnose"].as_str().unwrap())
        .collect();
    diagnoses.sort();
    assert_eq!(diagnoses, ["I21.0", "I21.4", "I25.1", "I25.5"]);
    for r in &records {
        let labels = r["pseudonyms"].to_string();
        for ty in ["NGGV:v", "RGG:v", "MRN:v", "A:v"] {
            assert!(labels.contains(ty), "{ty} missing in {labels}");
        }
    }
    // The output is what was delivered: one line per record.
    let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let mut lines = out.strip_prefix('\u{feff}').unwrap().lines();
    let header: Vec<&str> = lines.next().unwrap().split(';').collect();
    assert_eq!(header[..7], CSV_COLUMNS);
    assert_eq!(header[7..], ["diagnose", "ingreep"]);
    let rows: Vec<&str> = lines.map(|l| l.split(';').next().unwrap()).collect();
    assert_eq!(
        rows,
        ["2", "3", "4", "7"],
        "the rows of the extract, in order"
    );

    // Nothing identifying in what the TTP or the registry stored, nor in
    // the command's own files but the extract.
    for (path, bytes) in files_under(ttp.dir.path())
        .into_iter()
        .chain(files_under(registry.dir.path()))
        .chain(files_under(dir.path()))
    {
        if let Some(found) = contains_any(&bytes, EXAMPLE_IDENTITY) {
            panic!("{} holds `{found}`", path.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fhir_output_is_one_valid_delivery_bundle_per_chunk() {
    let (ttp, registry) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let mut o = example(dir.path(), &ttp, &registry);
    o.output = Some(dir.path().join("out.ndjson"));
    o.format = Format::Fhir;
    o.chunk_size = 3;
    o.types = vec!["NGGV".parse().unwrap(), "RGG".parse().unwrap()];
    let summary = run(o).await.unwrap();
    assert_eq!(summary.counts.pseudonymised, 4);
    let text = std::fs::read_to_string(dir.path().join("out.ndjson")).unwrap();
    let bundles: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Rows 2-4 (row 4 valid), rows 5-7 (5 refused, 6 objecting): 3 + 1 records.
    assert_eq!(bundles.len(), 2);
    let mut records = 0;
    for bundle in &bundles {
        let batch = pseudoform_protocol::fhir::batch_of(bundle, ORG_A, SCOPE_A).unwrap();
        records += batch.submissions.len();
        for s in &batch.submissions {
            assert!(s.record.is_some() && s.encrypted_blind_factors.is_some());
        }
        assert!(contains_any(bundle.to_string().as_bytes(), EXAMPLE_IDENTITY).is_none());
        // An independent FHIR R4 validator (scripts/fhir-validate.mjs).
        let file = dir.path().join("bundle.json");
        std::fs::write(&file, bundle.to_string()).unwrap();
        let validated = Command::new("node")
            .arg(repo("scripts/fhir-validate.mjs"))
            .arg(&file)
            .current_dir(repo(""))
            .output()
            .unwrap();
        assert!(
            validated.status.success(),
            "{}{}",
            String::from_utf8_lossy(&validated.stdout),
            String::from_utf8_lossy(&validated.stderr)
        );
    }
    assert_eq!(records, 4);
    assert_eq!(registry.count().await, 0, "no --deliver: nothing delivered");
}

/// A synthetic extract of `n` valid rows (`;`, UTF-8), every 10th objecting.
fn synthetic(path: &Path, n: usize) {
    use std::io::Write;
    const SYLLABLES: [&str; 8] = ["ba", "de", "ki", "lo", "mu", "ne", "ri", "so"];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(
        out,
        "naam;letter;geboren;geslacht;postcode;nummer;opmerking;bezwaar"
    )
    .unwrap();
    for i in 0..n {
        let name: String = (0..3).map(|k| SYLLABLES[(i >> (3 * k)) % 8]).collect();
        let day = 1 + i % 28;
        let month = 1 + (i / 28) % 12;
        let year = 1930 + i % 80;
        let letters = ["AB", "CD", "EF", "GH"][i % 4];
        let objects = if i % 10 == 9 { "ja" } else { "nee" };
        writeln!(
            out,
            "{name};{};{day:02}-{month:02}-{year};{};{} {letters};{};rij {i};{objects}",
            (b'A' + (i % 26) as u8) as char,
            ["M", "V"][i % 2],
            1000 + i % 9000,
            1 + i % 200,
        )
        .unwrap();
    }
}

const SYNTHETIC_MAPPING: &str = "opt_out = \"bezwaar\"\n[identity]\nbirthName = \"naam\"\ninitial = \"letter\"\nbirthDate = \"geboren\"\nsex = \"geslacht\"\npostcode = \"postcode\"\nhouseNumber = \"nummer\"\n[data]\nopmerking = \"opmerking\"\n";

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pseudoform"))
}

fn summary_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("no summary: {}", String::from_utf8_lossy(&output.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_with_sigkill_resumes_and_stores_every_row_once() {
    let (ttp, registry) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let conn = connection(dir.path(), &ttp, &registry, client_key_pem(2));
    let input = dir.path().join("extract.csv");
    let rows = 2000;
    synthetic(&input, rows);
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(&mapping, SYNTHETIC_MAPPING).unwrap();
    let checkpoint = dir.path().join("checkpoint.json");
    let args = |resume: bool| {
        let mut cmd = binary();
        cmd.arg("batch")
            .arg(&input)
            .args(["--mapping".as_ref(), mapping.as_os_str()])
            .args(["--connection".as_ref(), conn.as_os_str()])
            .args(["--checkpoint".as_ref(), checkpoint.as_os_str()])
            .args([
                "--deliver",
                "--quiet",
                "--chunk",
                "50",
                "--parallel",
                "2",
                "--types",
                "NGGV,RGG",
            ]);
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let mut child = args(false)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a few chunks are checkpointed and more are in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|c| c["chunksDone"].as_u64())
            .unwrap_or(0);
        if done >= 4 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no checkpoint within 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stored_before = registry.count().await;
    assert!(
        stored_before > 0 && stored_before < rows,
        "killed mid-run: {stored_before}"
    );

    // Without --resume the checkpoint is not overwritten.
    let refused = args(false).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = args(true).output().unwrap();
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let summary = summary_of(&resumed);
    let objecting = rows / 10;
    assert_eq!(summary["rows"], rows);
    assert_eq!(summary["optedOut"], objecting);
    assert_eq!(summary["pseudonymised"], rows - objecting);
    assert_eq!(summary["resumed"], true);
    let stored = summary["stored"].as_u64().unwrap() + summary["alreadyStored"].as_u64().unwrap();
    assert_eq!(stored, (rows - objecting) as u64, "{summary}");
    // Every valid row exactly once, none of the objecting ones.
    assert_eq!(registry.rows_in("records"), (rows - objecting) as i64);
    let records: Vec<Value> = registry
        .get(&format!("/api/records?limit={rows}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(records.len(), rows - objecting);
    let mut seen: Vec<u64> = records
        .iter()
        .map(|r| {
            let text = r["data"]["opmerking"].as_str().unwrap();
            text.trim_start_matches("rij ").parse().unwrap()
        })
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), rows - objecting, "a row stored twice");
    assert!(
        seen.iter().all(|i| i % 10 != 9),
        "an objecting row was delivered"
    );
    assert!(!checkpoint.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_say_what_happened() {
    let (ttp, registry) = chain().await;
    let dir = tempfile::tempdir().unwrap();
    let extract = repo("docs/examples/processor-extract.csv");
    let mapping = repo("docs/examples/processor-mapping.toml");
    let run_with = |conn: &Path, extra: &[&str]| {
        binary()
            .arg("batch")
            .arg(&extract)
            .args(["--mapping".as_ref(), mapping.as_os_str()])
            .args(["--connection".as_ref(), conn.as_os_str()])
            .arg("--report")
            .arg(dir.path().join("report.csv"))
            .arg("--checkpoint")
            .arg(dir.path().join("checkpoint.json"))
            .arg("--quiet")
            .args(extra)
            .output()
            .unwrap()
    };
    // A key the TTP does not know: 3, before any row is read.
    let stranger = tempfile::tempdir().unwrap();
    let wrong = connection(stranger.path(), &ttp, &registry, client_key_pem(4));
    let out = run_with(&wrong, &["--deliver"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(registry.count().await, 0);

    let conn = connection(dir.path(), &ttp, &registry, client_key_pem(2));
    // Nowhere to put the pseudonyms: 2.
    assert_eq!(run_with(&conn, &[]).status.code(), Some(2));
    // A refused row: 1; told otherwise: 0.
    let out = run_with(&conn, &["--deliver"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(summary_of(&out)["stored"], 4);
    let out = run_with(&conn, &["--deliver", "--allow-refused"]);
    assert_eq!(out.status.code(), Some(0));
    // A mapping naming a column the file lacks: 2, and the message names it.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[identity]\nbsn = \"BSN-nummer\"\n").unwrap();
    let out = binary()
        .args(["batch", "--check", "--quiet", "--mapping"])
        .arg(&bad)
        .arg(&extract)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("`BSN-nummer` is not in the file's header row"));
    // An unreachable registry: 3, and the checkpoint stays for --resume.
    let mut unreachable = std::fs::read_to_string(&conn).unwrap();
    unreachable = unreachable.replace(&registry.addr.to_string(), "127.0.0.1:9");
    std::fs::write(&conn, unreachable).unwrap();
    let out = run_with(&conn, &["--deliver", "--chunk", "2", "--retries", "1"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_mode_memory_does_not_grow_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("mapping.toml");
    std::fs::write(&mapping, SYNTHETIC_MAPPING).unwrap();
    let peak = |rows: usize| {
        let input = dir.path().join(format!("extract-{rows}.csv"));
        synthetic(&input, rows);
        let out = binary()
            .args([
                "batch",
                "--check",
                "--quiet",
                "--require",
                "NGGV,RGG",
                "--mapping",
            ])
            .arg(&mapping)
            .arg(&input)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = summary_of(&out);
        assert_eq!(summary["rows"], rows);
        assert_eq!(summary["valid"], rows - rows / 10);
        summary["peakRssBytes"].as_u64().unwrap()
    };
    // The issue's million rows: a hundred times the small file.
    let small = peak(10_000);
    let large = peak(1_000_000);
    assert!(small > 0);
    assert!(
        large < small + 8 * 1024 * 1024,
        "peak RSS grew from {small} to {large} bytes with 100 times the rows"
    );
}

/// A proxy on `listener` in front of `upstream` that, as a load balancer
/// does after a replica died mid-request, sends the first `POST
/// /v1/evaluate` on twice and answers with the second answer (the TTP
/// refuses the spent proof); everything else it passes. One request per
/// connection (`connection: close`). Counts the evaluations it forwarded.
async fn resending_proxy(
    listener: tokio::net::TcpListener,
    upstream: String,
) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let forwarded = Arc::new(AtomicU64::new(0));
    let resent = Arc::new(AtomicBool::new(false));
    let counter = Arc::clone(&forwarded);
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (http, upstream) = (http.clone(), upstream.clone());
            let (forwarded, resent) = (Arc::clone(&counter), Arc::clone(&resent));
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..at]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        break (at + 4, length);
                    }
                };
                while raw.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    raw.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
                let body = raw[head_end..head_end + length].to_vec();
                let mut lines = head.split("\r\n");
                let mut start = lines.next().unwrap().split(' ');
                let (method, path) = (
                    start.next().unwrap().to_owned(),
                    start.next().unwrap().to_owned(),
                );
                let send = || {
                    let mut request =
                        http.request(method.parse().unwrap(), format!("{upstream}{path}"));
                    for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
                        let (name, value) = line.split_once(':').unwrap();
                        if !["host", "content-length", "connection"]
                            .contains(&name.to_lowercase().as_str())
                        {
                            request = request.header(name, value.trim());
                        }
                    }
                    request.body(body.clone()).send()
                };
                let evaluation = method == "POST" && path == "/v1/evaluate";
                if evaluation && !resent.swap(true, Ordering::SeqCst) {
                    forwarded.fetch_add(1, Ordering::SeqCst);
                    let first = send().await.unwrap();
                    assert_eq!(first.status(), 200);
                }
                if evaluation {
                    forwarded.fetch_add(1, Ordering::SeqCst);
                }
                let answer = send().await.unwrap();
                let status = answer.status();
                let content_type = answer
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                let bytes = answer.bytes().await.unwrap();
                let mut out = format!(
                    "HTTP/1.1 {} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    bytes.len()
                );
                if let Some(t) = content_type {
                    out.push_str(&format!("content-type: {t}\r\n"));
                }
                out.push_str("\r\n");
                socket.write_all(out.as_bytes()).await.unwrap();
                socket.write_all(&bytes).await.unwrap();
                let _ = socket.shutdown().await;
            });
        }
    });
    forwarded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_resent_on_the_way_is_sent_again_with_a_fresh_proof() {
    // The TTP's public URL is the proxy's: the command's proofs name it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let ttp = TestTtp::start_with(false, &format!("public_url = \"{proxy}\"")).await;
    let types = ["NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"];
    let registry = Registry::start_configured(&types, |c| {
        c.keys[0].kid = Some(KID_A.into());
        c.public_url = Some(PUBLIC_URL.into());
        c.require_submitter_proof = true;
    })
    .await;
    let forwarded = resending_proxy(listener, ttp.base.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut o = example(dir.path(), &ttp, &registry);
    // The command talks to the TTP through the proxy.
    let conn = std::fs::read_to_string(o.connection.as_ref().unwrap()).unwrap();
    std::fs::write(
        o.connection.as_ref().unwrap(),
        conn.replace(
            &format!("ttp_url = \"{}\"", ttp.base),
            &format!("ttp_url = \"{proxy}\""),
        ),
    )
    .unwrap();
    o.deliver = true;
    o.retries = 2;
    let summary = run(o).await.unwrap();
    // The first evaluation went to the TTP twice on the way (the second
    // refused: its proof was spent), then once more with a fresh proof.
    assert_eq!(forwarded.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(summary.counts.stored, 4, "{summary:?}");
    assert_eq!(registry.records().await.len(), 4);
}
