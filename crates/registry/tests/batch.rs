//! `POST /api/batches` against a real registry (loopback, SQLite): a
//! processor's batch under one submitter proof, each submission stored all
//! or nothing as `POST /api/submissions` would, with one result each; a
//! resend of the batch — the same, or re-pseudonymised after a crash —
//! stores nothing twice.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use pseudoform_protocol::auth::TYP_DPOP;
use pseudoform_protocol::client::EcKey;
use pseudoform_protocol::registry::Submission;
use pseudoform_testkit::keys::client_key;
use pseudoform_testkit::registry::{batch_proof_claims, bound_submission, Registry, DEFAULT_TYPES};
use pseudoform_testkit::ttp::ORG_B;
use pseudoform_testkit::vectors::vector;
use serde_json::{json, Value};

const PUBLIC_URL: &str = "https://registratie-a.example.nl";
const PROVIDER: &str = "ura:00000001";

/// A registry requiring submitter proofs, under its public URL.
async fn registry() -> Registry {
    Registry::start_configured(DEFAULT_TYPES, |c| {
        c.public_url = Some(PUBLIC_URL.into());
        c.require_submitter_proof = true;
        c.allowed_origins = vec!["https://formulier.example.nl".into()];
    })
    .await
}

/// A record submission of the vector patient with `types`, bound to `key`,
/// from `PROVIDER`, with `data`: fresh blinds and JWE each call.
fn bound(key: &EcKey, types: &[&'static str], data: &[(&str, &str)]) -> Submission {
    bound_submission(key.thumbprint(), PROVIDER, types, data)
}

/// The batch's proof of `key` with its claims changed by `change`.
fn proof_with(key: &EcKey, submissions: &[Submission], change: impl FnOnce(&mut Value)) -> String {
    let mut claims = batch_proof_claims(submissions, &format!("{PUBLIC_URL}/api/batches"));
    change(&mut claims);
    key.sign(Some(TYP_DPOP), true, &claims).unwrap()
}

fn proof(key: &EcKey, submissions: &[Submission]) -> String {
    proof_with(key, submissions, |_| {})
}

/// POSTs `body` (JSON) to /api/batches with the `DPoP` header `proof`.
async fn post(registry: &Registry, body: &Value, proof: Option<&str>) -> (u16, Value) {
    let mut request = registry
        .client
        .post(registry.url("/api/batches"))
        .json(body);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn batch(id: &str, submissions: &[Submission]) -> Value {
    json!({ "batchId": id, "submissions": submissions })
}

/// Sends a batch with a good proof of `key`.
async fn send(registry: &Registry, key: &EcKey, id: &str, items: &[Submission]) -> (u16, Value) {
    post(registry, &batch(id, items), Some(&proof(key, items))).await
}

fn statuses(receipt: &Value) -> Vec<String> {
    receipt["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn stored_and_refused_items_side_by_side_and_a_resend_stores_nothing_twice() {
    let registry = registry().await;
    let key = client_key(0);
    let items = vec![
        bound(&key, &["NGGV", "RGG"], &[("diagnose", "Heupartrose")]),
        bound(&key, &["NGGV", "RGG"], &[("diagnose", "Knieartrose")]),
        // Refused as /api/submissions would: an identifying data field.
        bound(&key, &["NGGV"], &[("geboortedatum", "x")]),
        bound(&key, &["NGGV", "MRN"], &[("diagnose", "Coxartrose")]),
    ];
    let (status, receipt) = send(&registry, &key, "run-7-0", &items).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["batchId"], "run-7-0");
    assert_eq!(
        statuses(&receipt),
        ["stored", "stored", "refused", "stored"]
    );
    let results = receipt["results"].as_array().unwrap();
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
    }
    assert_eq!(results[2]["code"], "data.identifyingField");
    assert_eq!(results[2]["field"], "data.geboortedatum");
    assert!(results[2].get("recordId").is_none());
    let nggv = format!("NGGV:v1:{}", vector("NGGV").pseudonym);
    assert_eq!(
        results[0]["pseudonyms"],
        json!([nggv, format!("RGG:v1:{}", vector("RGG").pseudonym)])
    );
    // The same item alone at /api/submissions gives the same code.
    let (single, body) = registry.submit(&items[2]).await;
    assert_eq!(
        (single, body["code"].as_str()),
        (422, Some("data.identifyingField"))
    );
    assert_eq!(registry.count().await, 3);
    assert_eq!(registry.rows_in("batch_items"), 3);
    let ids: Vec<i64> = [0, 1, 3]
        .iter()
        .map(|i| results[*i]["recordId"].as_i64().unwrap())
        .collect();

    // The very same batch again (a lost answer), with a new proof.
    let (status, again) = send(&registry, &key, "run-7-0", &items).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        statuses(&again),
        ["alreadyStored", "alreadyStored", "refused", "alreadyStored"]
    );
    for (n, i) in [0, 1, 3].iter().enumerate() {
        assert_eq!(again["results"][*i]["recordId"], ids[n]);
        assert_eq!(
            again["results"][*i]["pseudonyms"],
            results[*i]["pseudonyms"]
        );
    }

    // Re-pseudonymised after a crash: new blinds, new JWEs, new proof; the
    // same batch id, patients and data.
    let redone = vec![
        bound(&key, &["NGGV", "RGG"], &[("diagnose", "Heupartrose")]),
        bound(&key, &["NGGV", "RGG"], &[("diagnose", "Knieartrose")]),
        bound(&key, &["NGGV"], &[("diagnose", "nu goed")]),
        bound(&key, &["NGGV", "MRN"], &[("diagnose", "Coxartrose")]),
    ];
    assert_ne!(redone[0].record, items[0].record);
    let (status, third) = send(&registry, &key, "run-7-0", &redone).await;
    assert_eq!(status, 200, "{third}");
    // The item refused the first time is stored now; the others were.
    assert_eq!(
        statuses(&third),
        ["alreadyStored", "alreadyStored", "stored", "alreadyStored"]
    );
    for (n, i) in [0, 1, 3].iter().enumerate() {
        assert_eq!(third["results"][*i]["recordId"], ids[n]);
    }
    assert_eq!(registry.rows_in("records"), 4, "no duplicate record");
    assert_eq!(registry.rows_in("pseudonyms"), 7, "no duplicate label");
    assert_eq!(registry.rows_in("batch_items"), 4);

    // Another batch id is another delivery: stored again.
    let (_, other) = send(&registry, &key, "run-8-0", &redone[..1]).await;
    assert_eq!(statuses(&other), ["stored"]);
    assert_eq!(registry.rows_in("records"), 5);
}

#[tokio::test]
async fn a_resent_item_with_other_pseudonyms_or_data_is_an_item_conflict() {
    let registry = registry().await;
    let key = client_key(0);
    let first = vec![
        bound(&key, &["NGGV"], &[("diagnose", "a")]),
        bound(&key, &["NGGV"], &[("diagnose", "b")]),
    ];
    let (_, receipt) = send(&registry, &key, "run-1", &first).await;
    assert_eq!(statuses(&receipt), ["stored", "stored"]);
    let before = registry.rows_in("records");
    let resent = vec![
        // Other definitive pseudonyms at index 0.
        bound(&key, &["NGGV", "RGG"], &[("diagnose", "a")]),
        // Other data at index 1.
        bound(&key, &["NGGV"], &[("diagnose", "c")]),
        // A new index.
        bound(&key, &["NGGV"], &[("diagnose", "d")]),
    ];
    let (status, receipt) = send(&registry, &key, "run-1", &resent).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(statuses(&receipt), ["refused", "refused", "stored"]);
    assert_eq!(receipt["results"][0]["code"], "batch.itemConflict");
    assert_eq!(receipt["results"][1]["code"], "batch.itemConflict");
    assert_eq!(registry.rows_in("records"), before + 1);
}

#[tokio::test]
async fn an_item_bound_to_another_key_is_refused_alone() {
    let registry = registry().await;
    let key = client_key(0);
    let other = client_key(1);
    let items = vec![
        bound(&key, &["NGGV"], &[("diagnose", "a")]),
        bound(&other, &["NGGV"], &[("diagnose", "b")]),
    ];
    let (status, receipt) = send(&registry, &key, "run-2", &items).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(statuses(&receipt), ["stored", "refused"]);
    assert_eq!(receipt["results"][1]["code"], "submitter.wrongKey");
    assert_eq!(registry.count().await, 1);
}

#[tokio::test]
async fn the_batch_proof_is_checked_once_for_the_whole_batch() {
    let registry = registry().await;
    let key = client_key(0);
    let items = vec![
        bound(&key, &["NGGV"], &[("diagnose", "a")]),
        bound(&key, &["RGG"], &[("diagnose", "b")]),
    ];
    let body = batch("run-3", &items);
    let refuse = |status: u16, code: &'static str, proof: Option<String>| {
        let (registry, body) = (&registry, &body);
        async move {
            let (got, answer) = post(registry, body, proof.as_deref()).await;
            assert_eq!(
                (got, answer["code"].as_str()),
                (status, Some(code)),
                "{answer}"
            );
            assert_eq!(registry.rows_in("records"), 0, "nothing stored");
        }
    };
    refuse(401, "submitter.missingProof", None).await;
    // For the submissions endpoint, not this one.
    let at_submissions = proof_with(&key, &items, |c| {
        c["htu"] = json!(format!("{PUBLIC_URL}/api/submissions"))
    });
    refuse(401, "submitter.invalidProof", Some(at_submissions)).await;
    // For another batch: one item left out, or their order changed.
    refuse(401, "submitter.wrongRecord", Some(proof(&key, &items[..1]))).await;
    let swapped = [items[1].clone(), items[0].clone()];
    refuse(401, "submitter.wrongRecord", Some(proof(&key, &swapped))).await;
    let stale = proof_with(&key, &items, |c| {
        c["iat"] = json!(pseudoform_protocol::unix_now() - 120)
    });
    refuse(401, "submitter.invalidProof", Some(stale)).await;
    // Signed by another key than the records': each item refused.
    let (status, receipt) = post(&registry, &body, Some(&proof(&client_key(1), &items))).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(&receipt), ["refused", "refused"]);
    assert_eq!(receipt["results"][0]["code"], "submitter.wrongKey");
    // The good proof, once.
    let good = proof(&key, &items);
    let (status, receipt) = post(&registry, &body, Some(&good)).await;
    assert_eq!(
        (status, statuses(&receipt)),
        (200, vec!["stored".into(), "stored".into()])
    );
    refuse_after(&registry, &body, &good).await;
}

/// A used proof again: 401 `submitter.proofReplayed`, nothing more stored.
async fn refuse_after(registry: &Registry, body: &Value, used: &str) {
    let before = registry.rows_in("records");
    let (status, answer) = post(registry, body, Some(used)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (401, Some("submitter.proofReplayed"))
    );
    assert_eq!(registry.rows_in("records"), before);
}

#[tokio::test]
async fn too_large_and_bad_shapes_are_4xx_and_store_nothing() {
    let registry = registry().await;
    let key = client_key(0);
    let one = bound(&key, &["NGGV"], &[("diagnose", "a")]);
    let good = serde_json::to_value(&one).unwrap();

    // More than 500 submissions.
    let many: Vec<Value> = (0..501).map(|_| good.clone()).collect();
    let (status, answer) = post(
        &registry,
        &json!({"batchId": "b", "submissions": many}),
        None,
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("batch.tooLarge"))
    );
    // More bytes than allowed.
    let huge = json!({"batchId": "b", "submissions": [good.clone()], "pad": "x".repeat(9 << 20)});
    let (status, answer) = post(&registry, &huge, None).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (413, Some("batch.tooLarge"))
    );
    // A batch of 500 bound submissions of the browser's size is within it.
    let full: Vec<Submission> = (0..500).map(|_| one.clone()).collect();
    let bytes = serde_json::to_vec(&batch("b", &full)).unwrap().len();
    assert!(
        bytes < pseudoform_registry::http::MAX_BATCH_BODY_BYTES,
        "{bytes}"
    );

    let mut other_registry = one.clone();
    other_registry.recipient_organization = ORG_B.into();
    let mut wrong_member = good.clone();
    wrong_member["bsn"] = json!("1");
    for (body, field) in [
        (json!([]), "submissions"),
        (json!({"submissions": [good]}), "batchId"),
        (json!({"batchId": "", "submissions": [good]}), "batchId"),
        (json!({"batchId": "a b", "submissions": [good]}), "batchId"),
        (json!({"batchId": 7, "submissions": [good]}), "batchId"),
        (
            json!({"batchId": "x".repeat(129), "submissions": [good]}),
            "batchId",
        ),
        (json!({"batchId": "b", "submissions": []}), "submissions"),
        (json!({"batchId": "b", "submissions": {}}), "submissions"),
        (json!({"batchId": "b"}), "submissions"),
        (
            json!({"batchId": "b", "submissions": [good], "x": 1}),
            "submissions",
        ),
        (
            json!({"batchId": "b", "submissions": [good, wrong_member]}),
            "submissions[1]",
        ),
        (
            json!({"batchId": "b", "submissions": [good, 3]}),
            "submissions[1]",
        ),
    ] {
        let (status, answer) = post(&registry, &body, None).await;
        assert_eq!(
            (status, answer["code"].as_str(), answer["field"].as_str()),
            (422, Some("batch.shape"), Some(field)),
            "{body}"
        );
    }
    let (status, answer) = post(&registry, &batch("b", &[one.clone(), other_registry]), None).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["field"].as_str()),
        (
            422,
            Some("recipient.mismatch"),
            Some("submissions[1].recipientOrganization")
        )
    );
    // Not JSON, or not said to be.
    let response = registry
        .client
        .post(registry.url("/api/batches"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let response = registry
        .client
        .post(registry.url("/api/batches"))
        .header("content-type", "text/plain")
        .body(serde_json::to_vec(&batch("b", std::slice::from_ref(&one))).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);

    // Damaged bodies of a good batch (with its proof): never a 5xx.
    let items = vec![one.clone(), bound(&key, &["RGG"], &[("diagnose", "b")])];
    let body = serde_json::to_vec(&batch("m", &items)).unwrap();
    for i in 0..120 {
        let damaged = pseudoform_testkit::mutate::mutate(&body, i);
        let response = registry
            .client
            .post(registry.url("/api/batches"))
            .header("content-type", "application/json")
            .header("DPoP", proof(&key, &items))
            .body(damaged)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status < 500, "mutation {i}: {status}");
    }
    // Only whole, well-formed items could have been stored, and at most
    // once per (batch, index).
    assert!(registry.rows_in("records") <= 2);
}

#[tokio::test]
async fn form_origins_may_call_it_with_a_proof() {
    let registry = registry().await;
    let response = registry
        .client
        .request(reqwest::Method::OPTIONS, registry.url("/api/batches"))
        .header("origin", "https://formulier.example.nl")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,dpop")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let allowed = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default()
    };
    assert_eq!(
        allowed("access-control-allow-origin"),
        "https://formulier.example.nl"
    );
    assert!(allowed("access-control-allow-headers").contains("dpop"));
    let stranger = registry
        .client
        .request(reqwest::Method::OPTIONS, registry.url("/api/batches"))
        .header("origin", "https://elders.example.nl")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(stranger
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
