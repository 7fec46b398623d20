//! Fuzzes the registry's JWE and claims parsing: arbitrary compact
//! strings, a valid JWE with one part replaced by arbitrary bytes (the IV,
//! tag and key lengths that once reached an assertion of the AES-GCM layer),
//! and arbitrary plaintexts as signed claims. None may panic.

#![no_main]

#[path = "common.rs"]
mod common;

use base64ct::{Base64UrlUnpadded, Encoding};
use libfuzzer_sys::fuzz_target;
use pseudoform_registry::jwe::{check_parts, JweAlg, KeyRing, SignatureKeys};
use std::sync::OnceLock;

fn rings() -> &'static (KeyRing, SignatureKeys) {
    static RINGS: OnceLock<(KeyRing, SignatureKeys)> = OnceLock::new();
    RINGS.get_or_init(|| {
        let f = common::fixture();
        let mut keys = KeyRing::new();
        keys.add_pem(&f.rsa_private_pem, None).unwrap();
        let mut pins = SignatureKeys::new();
        pins.add_pem(&f.signing_public_pem).unwrap();
        (keys, pins)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (keys, pins) = rings();
    match selector % 4 {
        0 => {
            let text = String::from_utf8_lossy(rest);
            let _ = check_parts(&text);
            let _ = keys.decrypt(&text, JweAlg::RsaOaep256);
            let _ = keys.decrypt(&text, JweAlg::RsaOaep);
        }
        1 | 2 => {
            // One part of a valid JWE replaced: as base64url of the bytes,
            // or as the text itself.
            let mut parts: Vec<String> = common::fixture()
                .valid_jwe
                .split('.')
                .map(str::to_owned)
                .collect();
            let Some((&which, bytes)) = rest.split_first() else {
                return;
            };
            let index = usize::from(which) % parts.len();
            parts[index] = if selector % 4 == 1 {
                Base64UrlUnpadded::encode_string(bytes)
            } else {
                String::from_utf8_lossy(bytes).into_owned()
            };
            let jwe = parts.join(".");
            if let Ok(plain) = keys.decrypt(&jwe, JweAlg::RsaOaep256) {
                let _ = pins.verify(&plain);
            }
        }
        _ => {
            if let Ok(pseudoform_registry::jwe::Plaintext::Signed(claims)) = pins.verify(rest) {
                let _ =
                    serde_json::from_slice::<pseudoform_protocol::claims::RecordClaims>(&claims);
            }
            let _ = serde_json::from_slice::<pseudoform_protocol::claims::EvalClaims>(rest);
            let _ = serde_json::from_slice::<pseudoform_protocol::claims::RecordClaims>(rest);
        }
    }
});
