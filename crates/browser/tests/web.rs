//! Browser tests of the wasm binding (`wasm-pack test --headless --chrome`):
//! the method's known-answer vectors through the exported functions, the
//! shape of thrown errors, and hostile arguments.

#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use js_sys::{Array, Object, Reflect};
use pseudoform::{method_version, normalise, pseudonym_input};
use serde::Deserialize;
use std::collections::BTreeMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    fields: Vec<FieldVector>,
    pseudonym_inputs: Vec<InputVector>,
    recipients: Vec<RecipientVector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecipientVector {
    recipient_organization: String,
    recipient_scope: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct FieldVector {
    field: String,
    input: String,
    output: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct InputVector {
    #[serde(rename = "type")]
    pseudonym_type: String,
    identity: BTreeMap<String, String>,
    output: Option<String>,
    error: Option<String>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("../../../docs/vectors/method-v1.json")).unwrap()
}

/// The outcome as the vectors write it: `Ok(output)` or `Err(code)`, after
/// checking that a thrown value is a real `Error` named `PseudoformError`.
fn outcome(
    result: Result<js_sys::JsString, pseudoform::PseudoformError>,
) -> Result<String, String> {
    match result {
        Ok(s) => Ok(String::from(s)),
        Err(e) => {
            let value = JsValue::from(e);
            let error: &js_sys::Error = value.dyn_ref().expect("a real Error object");
            assert_eq!(String::from(error.name()), "PseudoformError");
            let code = Reflect::get(&value, &"code".into())
                .unwrap()
                .as_string()
                .unwrap();
            assert!(String::from(error.message()).contains(&code));
            Err(code)
        }
    }
}

fn identity(members: &BTreeMap<String, String>) -> JsValue {
    let object = Object::new();
    for (k, v) in members {
        Reflect::set(&object, &k.into(), &v.into()).unwrap();
    }
    object.into()
}

#[wasm_bindgen_test]
fn field_vectors_in_the_browser() {
    let v = vectors();
    assert!(v.fields.len() >= 60);
    for case in &v.fields {
        // The browser's clock decides `future`; the file keeps such dates far
        // enough ahead (year 2100 and later) to be future on any test day.
        if case.error.as_deref() == Some("birthDate.future") {
            let year = case
                .input
                .split(|c: char| !c.is_ascii_digit())
                .find_map(|run| (run.len() >= 4).then(|| run[..4].parse::<u32>().unwrap()))
                .unwrap();
            assert!(
                year >= 2100,
                "future vector {:?} must lie in 2100 or later",
                case.input
            );
        }
        let got = outcome(normalise(
            case.field.clone().into(),
            case.input.clone().into(),
        ));
        let want = match (&case.output, &case.error) {
            (Some(o), None) => Ok(o.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => panic!("vector needs output or error"),
        };
        assert_eq!(got, want, "{} {:?}", case.field, case.input);
    }
}

#[wasm_bindgen_test]
fn pseudonym_input_vectors_in_the_browser() {
    let v = vectors();
    for case in &v.pseudonym_inputs {
        let got = outcome(pseudonym_input(
            case.pseudonym_type.clone().into(),
            identity(&case.identity),
        ));
        let want = match (&case.output, &case.error) {
            (Some(o), None) => Ok(o.clone()),
            (None, Some(e)) => Err(e.clone()),
            _ => panic!("vector needs output or error"),
        };
        assert_eq!(got, want, "{}", case.pseudonym_type);
    }
}

/// The recipient vectors through `prepare`: a valid recipient prepares a
/// GG pseudonym, an invalid one throws its code.
#[wasm_bindgen_test]
fn recipient_vectors_in_the_browser() {
    let v = vectors();
    let members: BTreeMap<String, String> = [("birthDate", "1980-03-07"), ("sex", "v")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    for case in &v.recipients {
        let options = Object::new();
        for (key, value) in [
            (
                "recipientOrganization",
                case.recipient_organization.as_str(),
            ),
            ("recipientScope", case.recipient_scope.as_str()),
            ("types", "GG"),
        ] {
            Reflect::set(&options, &key.into(), &value.into()).unwrap();
        }
        let got = outcome(
            pseudoform::prepare(identity(&members), options.into()).map(|result| {
                let prepared = Array::from(&get(&result.into(), "prepared"));
                assert_eq!(prepared.length(), 1, "one GG pseudonym prepared");
                "prepared".into()
            }),
        );
        let want = match &case.error {
            Some(code) => Err(code.clone()),
            None => Ok("prepared".to_owned()),
        };
        assert_eq!(
            got, want,
            "{:?} {:?}",
            case.recipient_organization, case.recipient_scope
        );
    }
}

#[wasm_bindgen_test]
fn errors_name_the_field_and_never_the_value() {
    let secret = "999990008";
    let value = JsValue::from(normalise("bsn".into(), secret.into()).unwrap_err());
    assert_eq!(
        Reflect::get(&value, &"field".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "bsn"
    );
    assert_eq!(
        Reflect::get(&value, &"code".into())
            .unwrap()
            .as_string()
            .unwrap(),
        "bsn.checksum"
    );
    let message = String::from(value.dyn_ref::<js_sys::Error>().unwrap().message());
    assert!(
        !message.contains(secret) && !message.contains("99999"),
        "{message}"
    );
}

#[wasm_bindgen_test]
fn hostile_arguments_are_errors_not_panics() {
    let code = |r| outcome(r).unwrap_err();
    assert_eq!(
        code(normalise(JsValue::from(12), "x".into())),
        "argument.type"
    );
    assert_eq!(
        code(normalise("bsn".into(), JsValue::NULL)),
        "argument.type"
    );
    assert_eq!(
        code(normalise("bsn".into(), Array::new().into())),
        "argument.type"
    );
    assert_eq!(code(normalise("nope".into(), "x".into())), "field.unknown");
    assert_eq!(
        code(normalise("birthName".into(), "a".repeat(5_000_000).into())),
        "birthName.tooLong"
    );
    assert_eq!(
        code(normalise("birthName".into(), "a".repeat(300).into())),
        "birthName.tooLong"
    );
    assert_eq!(
        code(normalise("birthName".into(), "\u{0}\u{ffff}".into())),
        "birthName.characters"
    );
    assert_eq!(
        code(pseudonym_input("NGGV".into(), JsValue::from(3))),
        "argument.type"
    );
    assert_eq!(
        code(pseudonym_input("XYZ".into(), Object::new().into())),
        "type.unknown"
    );
    assert_eq!(
        code(pseudonym_input("B".into(), Object::new().into())),
        "bsn.required"
    );
    let with_number = identity(&BTreeMap::new());
    Reflect::set(&with_number, &"bsn".into(), &JsValue::from(999990007)).unwrap();
    assert_eq!(
        code(pseudonym_input("B".into(), with_number)),
        "argument.type"
    );
    // A lone surrogate cannot crash the module either.
    let lone = js_sys::JsString::from_char_code1(0xd800);
    assert!(normalise("birthName".into(), lone.into()).is_err());
    // After all of that the module still works.
    assert_eq!(
        String::from(normalise("sex".into(), "vrouw".into()).unwrap()),
        "2"
    );
    assert_eq!(method_version(), 1);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Derivations {
    derivations: Vec<DerivationVector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DerivationVector {
    #[serde(rename = "type")]
    pseudonym_type: String,
    recipient_organization: String,
    recipient_scope: String,
    server_key: String,
    pseudonym: String,
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap()
}

/// `prepare` in the browser, against the derivation vectors: whatever random
/// blind the browser draws, evaluating its blinded input with the vector's
/// server key and de-blinding with its blind factor gives the vector's
/// definitive pseudonym.
#[wasm_bindgen_test]
fn prepare_gives_the_known_pseudonyms() {
    use pseudoform_core::encoding::{decode_array, encode};
    use pseudoform_core::oprf::{unblind, Blind, ServerKey};

    let v: Derivations =
        serde_json::from_str(include_str!("../../../docs/vectors/method-v1.json")).unwrap();
    let identity_for = |ty: &str| -> Vec<(&str, &str)> {
        match ty {
            "B" => vec![("bsn", "9999 90 007")],
            "NGGV" | "sNGGV" | "NGG" | "sNGG" | "GG" | "C" | "RGG" => vec![
                ("birthName", "van der Berg-Jansen"),
                ("birthDate", "01-02-1980"),
                ("sex", "vrouw"),
                ("initial", "J.P."),
                ("postcode", "1234 ab"),
            ],
            "A" => vec![
                ("postcode", "1234AB"),
                ("houseNumber", "012"),
                ("houseNumberAddition", ""),
            ],
            _ => vec![("mrn", "PAT-0001"), ("provider", "ura:00000001")],
        }
    };
    let mut checked = 0;
    for case in &v.derivations {
        let members: BTreeMap<String, String> = identity_for(&case.pseudonym_type)
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let options = Object::new();
        Reflect::set(
            &options,
            &"recipientOrganization".into(),
            &case.recipient_organization.clone().into(),
        )
        .unwrap();
        Reflect::set(
            &options,
            &"recipientScope".into(),
            &case.recipient_scope.clone().into(),
        )
        .unwrap();
        Reflect::set(
            &options,
            &"types".into(),
            &case.pseudonym_type.clone().into(),
        )
        .unwrap();
        let result: JsValue = pseudoform::prepare(identity(&members), options.into())
            .unwrap()
            .into();
        let prepared = Array::from(&get(&result, "prepared"));
        if prepared.length() == 0 {
            // Vectors whose canonical input differs from these identities
            // (an A with an addition, the second provider's MRN) are skipped
            // by design; at least the others must have been made.
            continue;
        }
        let item = prepared.get(0);
        assert_eq!(get(&item, "type").as_string().unwrap(), case.pseudonym_type);
        let blinded: [u8; 32] =
            decode_array(&get(&item, "blindedInput").as_string().unwrap()).unwrap();
        let blind = Blind::from_bytes(
            &decode_array(&get(&item, "blindFactor").as_string().unwrap()).unwrap(),
        )
        .unwrap();
        let key = ServerKey::from_bytes(&decode_array(&case.server_key).unwrap()).unwrap();
        let n = unblind(&blind, &key.evaluate(&blinded).unwrap()).unwrap();
        if encode(&n) == case.pseudonym {
            checked += 1;
        }
    }
    // 15 vectors: all but A-with-addition and the two other MRNs match.
    assert_eq!(checked, 12, "vectors reproduced in the browser");
}

#[wasm_bindgen_test]
fn prepare_skips_missing_and_validate_lists_all() {
    let mut members = BTreeMap::new();
    members.insert("birthDate".to_string(), "1980-02-01".to_string());
    members.insert("sex".to_string(), "m".to_string());
    let options = Object::new();
    Reflect::set(
        &options,
        &"recipientOrganization".into(),
        &"oin:00000001000000001000".into(),
    )
    .unwrap();
    Reflect::set(&options, &"recipientScope".into(), &"demo".into()).unwrap();
    Reflect::set(&options, &"types".into(), &"GG NGGV MRN".into()).unwrap();
    let result: JsValue = pseudoform::prepare(identity(&members), options.clone().into())
        .unwrap()
        .into();
    assert_eq!(Array::from(&get(&result, "prepared")).length(), 1);
    let skipped = Array::from(&get(&result, "skipped"));
    let codes: Vec<String> = skipped
        .iter()
        .map(|s| get(&s, "code").as_string().unwrap())
        .collect();
    assert_eq!(codes, ["birthName.required", "provider.required"]);
    // Two blinds of the same input differ: fresh randomness each call.
    let again: JsValue = pseudoform::prepare(identity(&members), options.clone().into())
        .unwrap()
        .into();
    let first = get(
        &Array::from(&get(&result, "prepared")).get(0),
        "blindedInput",
    )
    .as_string()
    .unwrap();
    let second = get(
        &Array::from(&get(&again, "prepared")).get(0),
        "blindedInput",
    )
    .as_string()
    .unwrap();
    assert_ne!(first, second);

    members.insert("bsn".to_string(), "123456789".to_string());
    members.insert("postcode".to_string(), "0000 AA".to_string());
    let problems = pseudoform::validate(identity(&members)).unwrap();
    let codes: Vec<String> = problems
        .iter()
        .map(|p| get(&p, "code").as_string().unwrap())
        .collect();
    assert_eq!(codes, ["postcode.format", "bsn.checksum"]);
    let thrown = outcome(
        pseudoform::prepare(identity(&members), options.into()).map(|_| js_sys::JsString::from("")),
    );
    assert_eq!(thrown, Err("postcode.format".to_string()));
}
