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
    serde_json::from_str(include_str!("../docs/vectors/method-v1.json")).unwrap()
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
