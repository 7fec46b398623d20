//! Fuzzes the registry's request body: arbitrary bytes as the JSON of
//! `POST /api/submissions`, and submissions around a valid JWE with an
//! arbitrary package and data, through the real receiver (in-memory
//! SQLite). None may panic; a refusal is a `ReceiveError`, whose status is
//! never a 5xx except a storage failure.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use pseudoform_core::PseudonymType;
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::Submission;
use pseudoform_registry::jwe::{KeyRing, SignatureKeys};
use pseudoform_registry::store::Store;
use pseudoform_registry::{ReceiveError, Receiver};

fn receiver() -> &'static Receiver {
    static RECEIVER: OnceLock<Receiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let f = common::fixture();
        let mut keys = KeyRing::new();
        keys.add_pem(&f.rsa_private_pem, None).unwrap();
        let mut pins = SignatureKeys::new();
        pins.add_pem(&f.signing_public_pem).unwrap();
        let store = Arc::new(Store::open_in_memory().unwrap());
        Receiver::new(common::ORG, common::SCOPE, &PseudonymType::ALL, keys, store)
            .unwrap()
            .with_ttp_signing_keys(pins)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let body: Vec<u8> = if selector % 2 == 0 {
        rest.to_vec()
    } else {
        // A submission whose package carries the valid JWE and the
        // arbitrary text as blind factor, type and data.
        let text = String::from_utf8_lossy(rest);
        let mut pieces = text.splitn(3, '\u{1f}');
        let blind = pieces.next().unwrap_or_default();
        let code = pieces.next().unwrap_or("NGGV");
        let data = pieces.next().unwrap_or_default();
        let package = TemporaryPseudonym {
            evaluated_output: common::fixture().valid_jwe.clone(),
            blind_factor: blind.to_owned(),
        }
        .encode();
        serde_json::to_vec(&serde_json::json!({
            "recipientOrganization": common::ORG, "recipientScope": common::SCOPE,
            "methodVersion": 1,
            "pseudonyms": [{"type": code, "temporaryPseudonym": package}],
            "data": {"diagnose": data}
        }))
        .unwrap()
    };
    let Ok(submission) = serde_json::from_slice::<Submission>(&body) else {
        return;
    };
    match receiver().receive_at(submission, 4102444750) {
        Ok(_) | Err(ReceiveError::Storage) => {}
        Err(e) => assert!(
            e.status().as_u16() < 500,
            "a bad submission answered {}",
            e.status()
        ),
    }
});
