//! The local work of `pseudoform batch` per row, without a network: read
//! and validate (`--check`'s work), blind NGGV+RGG+MRN, and seal the blind
//! factors to a 3072-bit registry key (RSA-OAEP-256 + A256GCM, what the
//! demo's registries use). On `threads` threads, each on its own share of
//! the chunks, as the command's blocking pool does. For `./build.sh bench`
//! (bench/batch.mjs):
//!
//! ```sh
//! cargo run --release -p pseudoform-cli --example local_work -- EXTRACT.csv MAPPING.toml [threads]
//! ```
//!
//! Prints one JSON line: rows, seconds and rows/s of each stage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;

use pseudoform_cli::connection::RecipientKey;
use pseudoform_cli::input::Extract;
use pseudoform_cli::mapping::Mapping;
use pseudoform_cli::pseudonymise::{prepare_rows, seal, Local};
use pseudoform_cli::rows::{read_row, Row};
use pseudoform_core::{CalendarDate, PseudonymType, Recipient};

const CHUNK: usize = 500;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, mapping) = (&args[1], &args[2]);
    let threads: usize = args.get(3).map_or(2, |t| t.parse().unwrap());
    let mapping = Mapping::from_file(input_path(mapping)).unwrap();
    let today = CalendarDate::today_utc().unwrap();
    let types = [PseudonymType::Nggv, PseudonymType::Rgg, PseudonymType::Mrn];
    let recipient = Recipient::new("oin:00000001000000001000", "kwaliteitsregistratie-a").unwrap();
    let pair = josekit::jwe::RSA_OAEP_256.generate_key_pair(3072).unwrap();
    let mut jwk = pair.to_jwk_public_key();
    jwk.set_key_id("bench");
    let key = RecipientKey {
        kid: "bench".into(),
        encrypter: josekit::jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).unwrap(),
    };

    // Stage 1: read and validate, one thread (the command reads on one).
    let started = Instant::now();
    let extract = Extract::open(
        input_path(input),
        mapping.encoding,
        mapping.delimiter_byte().unwrap(),
    )
    .unwrap();
    let columns = mapping.resolve(&extract.header).unwrap();
    let mut chunks: Vec<Vec<(u64, Row)>> = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    for record in extract.records() {
        let (row, record) = record.unwrap();
        chunk.push((row, read_row(&record, &columns, "ura:00000001", &[], today)));
        if chunk.len() == CHUNK {
            chunks.push(std::mem::take(&mut chunk));
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    let rows: usize = chunks.iter().map(Vec::len).sum();
    let read_seconds = started.elapsed().as_secs_f64();

    // Stages 2 and 3: blind, then seal (a stand-in record JWE of the usual
    // length: sealing binds to its digest only), on `threads` threads.
    let record = "e".repeat(2400);
    let mut shares: Vec<Vec<Vec<(u64, Row)>>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, c) in chunks.into_iter().enumerate() {
        shares[i % threads].push(c);
    }
    let started = Instant::now();
    let (blind_seconds, sealed): (Vec<f64>, Vec<usize>) = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                let (recipient, key, record) = (&recipient, &key, &record);
                s.spawn(move || {
                    let t = Instant::now();
                    let prepared: Vec<Vec<Local>> = share
                        .into_iter()
                        .map(|c| prepare_rows(c, recipient, &types, today))
                        .collect();
                    let blind = t.elapsed().as_secs_f64();
                    let mut n = 0;
                    for local in prepared.iter().flatten() {
                        if let Local::Prepared(p) = local {
                            seal(key, &p.blinds, record).unwrap();
                            n += 1;
                        }
                    }
                    (blind, n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).unzip()
    });
    let total = started.elapsed().as_secs_f64();
    let blind = blind_seconds.iter().cloned().fold(0.0, f64::max);
    let sealed: usize = sealed.iter().sum();
    println!(
        "{}",
        serde_json::json!({
            "rows": rows,
            "threads": threads,
            "types": "NGGV+RGG+MRN",
            "readValidateSeconds": read_seconds,
            "readValidateRowsPerSecond": rows as f64 / read_seconds,
            "blindSeconds": blind,
            "blindRowsPerSecond": rows as f64 / blind,
            "blindSealSeconds": total,
            "sealed": sealed,
            "blindSealRowsPerSecond": rows as f64 / total,
            "localRowsPerSecond": rows as f64 / (read_seconds + total),
        })
    );
}

fn input_path(p: &str) -> &std::path::Path {
    std::path::Path::new(p)
}
