//! Fuzzes every parsing entry point of the core with arbitrary bytes: the
//! field normalisers, the pseudonym-type inputs, the base64url decoder and
//! the decoding of OPRF elements and scalars. None may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pseudoform_core::encoding::decode_array;
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::{fields, CalendarDate, Field, Identity, PseudonymType};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let today = CalendarDate::EPOCH;
    let field = Field::ALL[usize::from(selector) % Field::ALL.len()];
    let _ = fields::normalise(field, &text, today);

    // Split the rest into ten parts: one raw value per field.
    let mut identity = Identity::new();
    for (field, part) in Field::ALL.iter().zip(text.split('\u{1f}')) {
        identity.set(*field, part);
    }
    for ty in PseudonymType::ALL {
        let _ = ty.canonical_input(&identity, today);
    }
    let _ = text.parse::<PseudonymType>();
    let _ = decode_array::<32>(&text);

    if let Ok(bytes) = <[u8; 32]>::try_from(rest.get(..32).unwrap_or_default()) {
        let _ = oprf::decode_element(&bytes);
        let _ = Blind::from_bytes(&bytes);
        if let Ok(key) = ServerKey::from_bytes(&bytes) {
            let _ = key.evaluate(&bytes);
        }
    }
});
