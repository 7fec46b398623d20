//! Concurrent batches: several clients at once, each sending several
//! `POST /v1/evaluate` requests, all answered with one signed JWE per record
//! that holds exactly the evaluations of its own blinded elements, no JWE or
//! `jti` twice, and one audit row per request with its counts. (How fast the
//! TTP is under load is measured by `./build.sh bench`, not here.)

#![cfg(test)]

use std::collections::HashSet;
use std::sync::Arc;

use pseudoform_core::encoding;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};

const CLIENTS: usize = 4;
const REQUESTS: usize = 2;
const RECORDS: usize = 3;
const TYPES: [&str; 5] = ["NGGV", "sNGGV", "C", "RGG", "GG"];

/// A batch body whose elements are made from `salt`, and those elements
/// (record by record, in type order).
fn batch(salt: &str) -> (Value, Vec<Vec<[u8; 32]>>) {
    let mut elements = Vec::new();
    let records: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut sent = Vec::new();
            let items: Vec<Value> = TYPES
                .iter()
                .map(|t| {
                    let label = format!("{salt}/{i}/{t}");
                    let (_, b) = blinded(label.as_bytes(), &label);
                    sent.push(b);
                    json!({"type": t, "blindedInput": encoding::encode(&b)})
                })
                .collect();
            elements.push(sent);
            json!({ "items": items })
        })
        .collect();
    let body =
        json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "records": records});
    (body, elements)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_are_all_answered_correctly_and_audited() {
    let ttp_ref = Arc::new(TestTtp::start(true).await);
    let credential = Arc::new(ttp_ref.backend(Client::ProviderA).await);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let ttp = Arc::clone(&ttp_ref);
        let credential = Arc::clone(&credential);
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for request in 0..REQUESTS {
                let (body, elements) = batch(&format!("{client}/{request}"));
                let (status, _, answer) = ttp.call(&credential, "/v1/evaluate", &body).await;
                assert_eq!(status, 200, "{answer}");
                answers.push((answer, elements));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.extend(task.await.unwrap());
    }
    assert_eq!(answers.len(), CLIENTS * REQUESTS);

    let key = server_key_v1();
    let (mut jwes, mut jtis) = (HashSet::new(), HashSet::new());
    for (answer, elements) in &answers {
        let records = answer["records"].as_array().unwrap();
        assert_eq!(records.len(), RECORDS);
        for (record, sent) in records.iter().zip(elements) {
            let jwe = record["jwe"].as_str().unwrap();
            assert!(jwes.insert(jwe.to_owned()), "a JWE twice");
            // Decrypts for recipient A and carries the TTP's signature.
            let (_, claims) = open_jwe(jwe, true);
            assert!(
                jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
                "a jti twice"
            );
            assert_eq!(claims["aud"], ORG_A);
            assert_eq!(claims["key_version"], 1);
            let evaluations = claims["evaluations"].as_array().unwrap();
            assert_eq!(evaluations.len(), TYPES.len());
            for ((evaluation, t), b) in evaluations.iter().zip(TYPES).zip(sent) {
                assert_eq!(evaluation["type"], t);
                // The evaluation of this record's own element, not another's.
                assert_eq!(
                    subject_element(&evaluation["subject"]),
                    key.evaluate(b).unwrap()
                );
            }
        }
    }
    assert_eq!(jwes.len(), CLIENTS * REQUESTS * RECORDS);

    let mut ttp = Arc::into_inner(ttp_ref).unwrap();
    ttp.stop().await;
    let v = verify_audit(&ttp);
    assert!(v.ok(), "{v:?}");
    // One row per evaluation request, and one of the token request.
    assert_eq!(v.rows, u64::try_from(CLIENTS * REQUESTS + 1).unwrap());
    let conn = rusqlite::Connection::open(ttp.database()).unwrap();
    let mut stmt = conn
        .prepare("SELECT endpoint, caller, types, total, status, outcome FROM audit_rows WHERE endpoint != '/v1/token'")
        .unwrap();
    let rows: Vec<(String, String, String, i64, i64, String)> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    // The row's counts as the audit log writes them: type codes in order.
    let mut types = TYPES.to_vec();
    types.sort_unstable();
    let counts: Vec<String> = types.iter().map(|t| format!("\"{t}\":{RECORDS}")).collect();
    let counts = format!("{{{}}}", counts.join(","));
    let total = i64::try_from(RECORDS * TYPES.len()).unwrap();
    for row in rows {
        assert_eq!(
            row,
            (
                "/v1/evaluate".into(),
                Client::ProviderA.id().into(),
                counts.clone(),
                total,
                200,
                "ok".into()
            )
        );
    }
}
