//! The method's derivation vectors (`docs/vectors/method-v1.json`) and the
//! OPRF steps around them: a browser's blinding, a TTP's evaluation, the
//! definitive pseudonym a recipient must store.

use std::sync::OnceLock;

use pseudoform_core::derivation::oprf_input_of;
use pseudoform_core::encoding::{decode_array, encode};
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::{PseudonymType, Recipient};
use pseudoform_protocol::SUBJECT_PREFIX;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// `docs/vectors/method-v1.json`.
pub fn vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| {
        serde_json::from_str(include_str!("../../../docs/vectors/method-v1.json")).unwrap()
    })
}

/// One derivation vector.
#[derive(Clone, Debug)]
pub struct Vector {
    /// The pseudonym type code.
    pub pseudonym_type: String,
    /// The canonical input value.
    pub canonical_input: String,
    /// The recipient organisation.
    pub organization: String,
    /// The recipient scope.
    pub scope: String,
    /// The blind factor.
    pub blind: [u8; 32],
    /// The TTP's key.
    pub server_key: [u8; 32],
    /// The evaluated element, padded base64url.
    pub evaluated: String,
    /// The definitive pseudonym, padded base64url.
    pub pseudonym: String,
}

impl Vector {
    fn of(v: &Value) -> Vector {
        let text = |name: &str| v[name].as_str().unwrap().to_owned();
        Vector {
            pseudonym_type: text("type"),
            canonical_input: text("canonicalInput"),
            organization: text("recipientOrganization"),
            scope: text("recipientScope"),
            blind: decode_array(&text("blind")).unwrap(),
            server_key: decode_array(&text("serverKey")).unwrap(),
            evaluated: text("evaluatedElement"),
            pseudonym: text("pseudonym"),
        }
    }
}

/// The first derivation vector of type `code` for `organization`.
pub fn vector_for(code: &str, organization: &str) -> Vector {
    vectors()["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .map(Vector::of)
        .find(|v| v.pseudonym_type == code && v.organization == organization)
        .unwrap()
}

/// The first derivation vector of type `code` for recipient A.
pub fn vector(code: &str) -> Vector {
    vector_for(code, crate::ttp::ORG_A)
}

/// The vectors' server key, as key version 1.
pub fn server_key_v1() -> ServerKey {
    ServerKey::from_bytes(&vector("NGGV").server_key).unwrap()
}

/// A second, fixed server key, as key version 2.
pub fn server_key_v2() -> ServerKey {
    ServerKey::from_uniform_bytes(&[7u8; 64]).unwrap()
}

/// 64 pseudo-random bytes from a label (deterministic, for test blinds).
pub fn wide(label: &str) -> [u8; 64] {
    Sha512::digest(label.as_bytes()).into()
}

/// A fresh random blind.
pub fn random_blind() -> Blind {
    let mut bytes = [0u8; 64];
    getrandom::getrandom(&mut bytes).unwrap();
    Blind::from_uniform_bytes(&bytes).unwrap()
}

/// A deterministic blind of `label` and the blinded element of `input`.
pub fn blinded(input: &[u8], label: &str) -> (Blind, [u8; 32]) {
    let r = Blind::from_uniform_bytes(&wide(label)).unwrap();
    let b = oprf::blind(input, &r).unwrap();
    (r, b)
}

/// A browser's blinding of a vector's input with `blind`.
pub fn blind_vector(v: &Vector, blind: &Blind) -> [u8; 32] {
    let ty: PseudonymType = v.pseudonym_type.parse().unwrap();
    let recipient = Recipient::new(&v.organization, &v.scope).unwrap();
    let input = oprf_input_of(ty, &v.canonical_input, &recipient).unwrap();
    oprf::blind(input.as_ref(), blind).unwrap()
}

/// The definitive pseudonym of `v` under `key` (what a registry must store).
pub fn expected_pseudonym(v: &Vector, key: &ServerKey) -> String {
    let r = random_blind();
    let z = key.evaluate(&blind_vector(v, &r)).unwrap();
    encode(&oprf::unblind(&r, &z).unwrap())
}

/// The TTP's evaluation of a blinded element, as a `subject` claim.
pub fn subject(key: &ServerKey, blinded: &[u8; 32]) -> String {
    format!(
        "{SUBJECT_PREFIX}{}",
        encode(&key.evaluate(blinded).unwrap())
    )
}

/// The element of a `subject` claim.
pub fn subject_element(subject: &Value) -> [u8; 32] {
    let text = subject
        .as_str()
        .unwrap()
        .strip_prefix(SUBJECT_PREFIX)
        .unwrap();
    decode_array::<32>(text).unwrap()
}
