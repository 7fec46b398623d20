//! Runs the known-answer vectors of the published method
//! (`docs/vectors/method-v1.json`) natively. The browser tests run the same
//! file through the wasm module.

#![cfg(test)]

use pseudoform_core::derivation::{identifier_json, oprf_input_of};
use pseudoform_core::encoding::{decode_array, encode};
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::{fields, CalendarDate, Field, Identity, PseudonymType, Recipient};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Vectors {
    method: String,
    version: u32,
    today: String,
    fields: Vec<FieldVector>,
    pseudonym_inputs: Vec<InputVector>,
    derivations: Vec<DerivationVector>,
    recipients: Vec<RecipientVector>,
    blind_factors: Vec<BlindFactorVector>,
    // The hand-over formats of method §5.4 are not the core's: they are run
    // by `crates/protocol/tests/method_vectors.rs`.
    #[allow(dead_code)]
    temporary_pseudonyms: IgnoredAny,
    #[allow(dead_code)]
    jwk_thumbprints: IgnoredAny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldVector {
    field: String,
    input: String,
    output: Option<String>,
    error: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputVector {
    #[serde(rename = "type")]
    pseudonym_type: String,
    identity: BTreeMap<String, String>,
    output: Option<String>,
    error: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DerivationVector {
    #[serde(rename = "type")]
    pseudonym_type: String,
    canonical_input: String,
    recipient_organization: String,
    recipient_scope: String,
    identifier: String,
    oprf_input: String,
    blind: String,
    blinded_input: String,
    server_key: String,
    evaluated_element: String,
    pseudonym: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RecipientVector {
    recipient_organization: String,
    recipient_scope: String,
    hkdf_info: Option<String>,
    error: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BlindFactorVector {
    blind_factor: String,
    /// The decoded 32 bytes in hex.
    output: Option<String>,
    error: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn load() -> Vectors {
    let text = include_str!("../../../docs/vectors/method-v1.json");
    serde_json::from_str(text).expect("method vectors parse")
}

fn today(v: &Vectors) -> CalendarDate {
    let parts: Vec<u16> = v.today.split('-').map(|p| p.parse().unwrap()).collect();
    CalendarDate::new(parts[0], parts[1] as u8, parts[2] as u8).unwrap()
}

#[test]
fn header() {
    let v = load();
    assert_eq!(v.method, "pseudoform");
    assert_eq!(v.version, pseudoform_core::METHOD_VERSION);
}

/// The browser tests run the vectors on the real date, so a date that must be
/// in the future lies in 2100 or later; the exact boundary (today valid,
/// tomorrow `birthDate.future`) is a unit test of the core.
#[test]
fn future_dates_are_far_enough_ahead() {
    let v = load();
    let year_of = |s: &str| {
        s.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() >= 4)
            .map(|run| run[..4].parse::<u32>().unwrap())
            .unwrap()
    };
    let future = "birthDate.future";
    let fields = v
        .fields
        .iter()
        .filter(|c| c.error.as_deref() == Some(future))
        .map(|c| c.input.clone());
    let inputs = v
        .pseudonym_inputs
        .iter()
        .filter(|c| c.error.as_deref() == Some(future))
        .map(|c| c.identity["birthDate"].clone());
    let all: Vec<String> = fields.chain(inputs).collect();
    assert!(all.len() >= 3);
    for date in all {
        assert!(year_of(&date) >= 2100, "{date}");
    }
}

#[test]
fn field_vectors() {
    let v = load();
    let today = today(&v);
    assert!(
        v.fields.len() >= 60,
        "only {} field vectors",
        v.fields.len()
    );
    let mut failures = Vec::new();
    for (i, case) in v.fields.iter().enumerate() {
        let field = Field::from_name(&case.field).unwrap_or_else(|| panic!("vector {i}: field"));
        let got = fields::normalise(field, &case.input, today);
        let ok = match (&case.output, &case.error, &got) {
            (Some(want), None, Ok(out)) => want == out.as_str(),
            (None, Some(want), Err(e)) => *want == e.code(),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "#{i} {} {:?}: want {:?}/{:?}, got {:?}",
                case.field,
                case.input,
                case.output,
                case.error,
                got.as_ref()
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| e.code())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pseudonym_input_vectors() {
    let v = load();
    let today = today(&v);
    assert!(v.pseudonym_inputs.len() >= 10);
    let mut failures = Vec::new();
    for (i, case) in v.pseudonym_inputs.iter().enumerate() {
        let ty: PseudonymType = case.pseudonym_type.parse().unwrap();
        let mut identity = Identity::new();
        for (name, value) in &case.identity {
            identity.set(
                Field::from_name(name).unwrap_or_else(|| panic!("#{i}: {name}")),
                value.clone(),
            );
        }
        let got = ty.canonical_input(&identity, today);
        let ok = match (&case.output, &case.error, &got) {
            (Some(want), None, Ok(out)) => want == out.as_str(),
            (None, Some(want), Err(e)) => *want == e.code(),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "#{i} {}: want {:?}/{:?}, got {:?}",
                case.pseudonym_type,
                case.output,
                case.error,
                got.as_ref()
                    .map(|s| s.as_str().to_owned())
                    .map_err(|e| e.code())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn derivation_vectors() {
    let v = load();
    assert!(v.derivations.len() >= 10);
    // Two recipients never share a pseudonym for the same input.
    let b: Vec<&DerivationVector> = v
        .derivations
        .iter()
        .filter(|d| d.pseudonym_type == "B")
        .collect();
    assert!(b.len() >= 2 && b[0].pseudonym != b[1].pseudonym);
    for case in &v.derivations {
        let ty: PseudonymType = case.pseudonym_type.parse().unwrap();
        let recipient =
            Recipient::new(&case.recipient_organization, &case.recipient_scope).unwrap();
        assert_eq!(
            identifier_json(ty.identifier_type(), &case.canonical_input).as_str(),
            case.identifier
        );
        let input = oprf_input_of(ty, &case.canonical_input, &recipient).unwrap();
        assert_eq!(encode(input.as_ref()), case.oprf_input);
        let r = Blind::from_bytes(&decode_array(&case.blind).unwrap()).unwrap();
        let blinded = oprf::blind(input.as_ref(), &r).unwrap();
        assert_eq!(encode(&blinded), case.blinded_input);
        // The same blinded and evaluated elements from an independent implementation.
        let scalar = curve25519_dalek::scalar::Scalar::from_canonical_bytes(
            decode_array(&case.blind).unwrap(),
        )
        .unwrap();
        let theirs = voprf::OprfClient::<voprf::Ristretto255>::deterministic_blind_unchecked(
            input.as_ref(),
            scalar,
        )
        .unwrap();
        assert_eq!(encode(&theirs.message.serialize()[..]), case.blinded_input);
        let server = voprf::OprfServer::<voprf::Ristretto255>::new_with_key(
            &decode_array::<32>(&case.server_key).unwrap(),
        )
        .unwrap();
        assert_eq!(
            encode(&server.blind_evaluate(&theirs.message).serialize()[..]),
            case.evaluated_element
        );
        let key = ServerKey::from_bytes(&decode_array(&case.server_key).unwrap()).unwrap();
        let evaluated = key.evaluate(&blinded).unwrap();
        assert_eq!(encode(&evaluated), case.evaluated_element);
        let n = oprf::unblind(&r, &evaluated).unwrap();
        assert_eq!(encode(&n), case.pseudonym);
    }
}

#[test]
fn recipient_vectors() {
    let v = load();
    assert!(v.recipients.len() >= 8);
    for case in &v.recipients {
        let got = Recipient::new(&case.recipient_organization, &case.recipient_scope)
            .map(|r| r.hkdf_info())
            .map_err(|e| e.code());
        let want = match (&case.hkdf_info, &case.error) {
            (Some(info), None) => Ok(info.clone()),
            (None, Some(code)) => Err(code.clone()),
            _ => panic!("vector needs hkdfInfo or error"),
        };
        assert_eq!(
            got, want,
            "{:?} {:?}",
            case.recipient_organization, case.recipient_scope
        );
    }
}

/// The recipient's reading of a blind factor: exactly the two steps of the
/// registry (`decode_array`, then `Blind::from_bytes`).
#[test]
fn blind_factor_vectors() {
    let v = load();
    assert!(v.blind_factors.len() >= 10);
    for case in &v.blind_factors {
        let got = decode_array::<32>(&case.blind_factor)
            .map_err(|e| e.code())
            .and_then(|bytes| {
                Blind::from_bytes(&bytes)
                    .map(|blind| hex::encode(blind.to_bytes().as_ref()))
                    .map_err(|e| e.code())
            });
        let want = match (&case.output, &case.error) {
            (Some(hex), None) => Ok(hex.clone()),
            (None, Some(code)) => Err(code.clone()),
            _ => panic!("vector needs output or error"),
        };
        assert_eq!(got, want, "{:?}", case.blind_factor);
        // A valid blind factor is the canonical text of its bytes.
        if let Ok(hex) = &got {
            assert_eq!(encode(&hex::decode(hex).unwrap()), case.blind_factor);
        }
    }
}
