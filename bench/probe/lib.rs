//! Each export runs one piece of a blind `n` times inside wasm and returns
//! a value derived from the results, so nothing is optimised away.
#![allow(missing_docs, clippy::unwrap_used)]

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use pseudoform_core::preparation::{self, Outcome};
use pseudoform_core::{
    derivation, oprf, xmd, CalendarDate, Field, Identity, PseudonymType, Recipient,
};
use wasm_bindgen::prelude::*;

const DST: &[u8] = b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512";

fn recipient() -> Recipient {
    Recipient::new("oin:00000001234567890000", "nkr").unwrap()
}

/// HKDF-SHA256 of the RFC 8785 identifier (the 32-byte OPRF input).
#[wasm_bindgen]
pub fn hkdf(n: u32) -> u32 {
    let r = recipient();
    (0..n).fold(0, |s, _| {
        s ^ derivation::oprf_input_of(PseudonymType::Gg, "19800201|2", &r).unwrap()[0] as u32
    })
}

/// expand_message_xmd (SHA-512) to 64 bytes: the hash half of HashToGroup.
#[wasm_bindgen]
pub fn xmd(n: u32) -> u32 {
    let mut out = [0u8; 64];
    (0..n).fold(0, |s, i| {
        xmd::expand_message_xmd(&[&[7u8; 32], &i.to_le_bytes()], DST, &mut out).unwrap();
        s ^ out[0] as u32
    })
}

/// The ristretto255 one-way map of 64 bytes: the curve half of HashToGroup.
#[wasm_bindgen]
pub fn map(n: u32) -> u32 {
    let mut u = [3u8; 64];
    (0..n).fold(0, |s, i| {
        u[0] = i as u8;
        s ^ RistrettoPoint::from_uniform_bytes(&u).compress().as_bytes()[0] as u32
    })
}

/// Constant-time variable-base scalar multiplication r·P.
#[wasm_bindgen]
pub fn mul(n: u32) -> u32 {
    let r = Scalar::from_bytes_mod_order_wide(&[9u8; 64]);
    let mut p = oprf::hash_to_group(&[7u8; 32]).unwrap();
    for _ in 0..n {
        p = p * r;
    }
    p.compress().as_bytes()[0] as u32
}

/// Encoding a point (one field inversion).
#[wasm_bindgen]
pub fn compress(n: u32) -> u32 {
    let p = oprf::hash_to_group(&[7u8; 32]).unwrap();
    (0..n).fold(0, |s, _| s ^ p.compress().as_bytes()[0] as u32)
}

/// The whole RFC 9497 Blind: HashToGroup, r·P, encoding.
#[wasm_bindgen]
pub fn blind(n: u32) -> u32 {
    let mut wide = [5u8; 64];
    (0..n).fold(0, |s, i| {
        wide[0] = i as u8 | 1;
        let r = oprf::Blind::from_uniform_bytes(&wide).unwrap();
        s ^ oprf::blind(&[7u8; 32], &r).unwrap()[0] as u32
    })
}

/// The core's prepare of GG from canonical values (fixed randomness): what
/// the browser's prepare() does less the JS conversions and getrandom.
#[wasm_bindgen]
pub fn prepare(n: u32) -> u32 {
    let r = recipient();
    let mut id = Identity::new();
    id.set(Field::BirthDate, "19800201");
    id.set(Field::Sex, "2");
    let today = CalendarDate::new(2026, 11, 23).unwrap();
    (0..n).fold(0, |s, i| {
        let out = preparation::prepare(&id, &r, &[PseudonymType::Gg], today, |b| {
            b.fill(i as u8 | 1);
            Ok(())
        })
        .unwrap();
        match out.first() {
            Some(Outcome::Prepared(item)) => s ^ item.blinded_input[0] as u32,
            _ => s,
        }
    })
}
