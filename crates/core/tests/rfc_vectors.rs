//! Known-answer tests from the RFCs the method stands on, through the
//! public API: RFC 9497 (OPRF key derivation, ristretto255-SHA512) and
//! RFC 9380 (`expand_message_xmd` with SHA-512). The RFC 9497 blind,
//! evaluate and output vectors and the cross-check against the `voprf`
//! crate are unit tests of `oprf.rs` (the output needs `Finalize`, which
//! the method does not use); the RFC 5869 HKDF vectors are unit tests of
//! `derivation.rs`.

#![cfg(test)]

use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::xmd::expand_message_xmd;
use pseudoform_core::Error;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode).
const SEED: &str = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
const KEY_INFO: &str = "74657374206b6579";
const SK_SM: &str = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";
const BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";

#[test]
fn rfc9497_derive_key_pair() {
    let key = ServerKey::derive(&unhex(SEED), &hex::decode(KEY_INFO).unwrap()).unwrap();
    assert_eq!(hex::encode(key.to_bytes().as_ref()), SK_SM);
}

#[test]
fn rfc9380_expand_message_xmd_sha512() {
    let dst = b"QUUX-V01-CS02-with-expander-SHA512-256";
    let cases: [(&[u8], usize, &str); 4] = [
        (b"", 32, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
        (b"abc", 32, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
        (b"abcdef0123456789", 32, "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58"),
        (b"", 128, "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921b052b62eaed99b46f72f2ef4cc96bfaf254ebbbec091e1a3b9e4fb5e5b619d2e0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7eb00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961"),
    ];
    for (msg, len, want) in cases {
        let mut out = vec![0u8; len];
        expand_message_xmd(&[msg], dst, &mut out).unwrap();
        assert_eq!(hex::encode(&out), want, "msg {msg:?} len {len}");
    }
    // The message may come in parts; the result is that of the concatenation.
    let mut split = [0u8; 32];
    expand_message_xmd(&[b"abcdef", b"", b"0123456789"], dst, &mut split).unwrap();
    assert_eq!(hex::encode(split), cases[2].2);
}

#[test]
fn expand_message_xmd_refuses_bad_lengths() {
    let refused: Result<(), Error> = Err(Error::UnsupportedLength);
    let mut empty = [0u8; 0];
    assert_eq!(expand_message_xmd(&[b"x"], b"dst", &mut empty), refused);
    let mut huge = vec![0u8; 255 * 64 + 1];
    assert_eq!(expand_message_xmd(&[b"x"], b"dst", &mut huge), refused);
    assert_eq!(
        expand_message_xmd(&[b"x"], &[0u8; 256], &mut [0u8; 32]),
        refused
    );
    assert_eq!(expand_message_xmd(&[b"x"], b"", &mut [0u8; 32]), refused);
    assert_eq!(Error::UnsupportedLength.code(), "length.unsupported");
}

#[test]
fn invalid_elements_and_scalars_are_refused() {
    let key = ServerKey::from_bytes(&unhex(SK_SM)).unwrap();
    // Identity element, a non-canonical encoding, and a non-point.
    assert!(key.evaluate(&[0u8; 32]).is_err());
    assert!(key.evaluate(&[0xffu8; 32]).is_err());
    let mut not_on_curve = [0u8; 32];
    not_on_curve[0] = 1;
    assert!(key.evaluate(&not_on_curve).is_err());
    assert!(ServerKey::from_bytes(&[0u8; 32]).is_err());
    assert!(ServerKey::from_uniform_bytes(&[0u8; 64]).is_err());
    assert!(Blind::from_uniform_bytes(&[0u8; 64]).is_err());
    assert!(Blind::from_bytes(&[0xffu8; 32]).is_err());
    let r = Blind::from_bytes(&unhex(BLIND)).unwrap();
    assert!(oprf::unblind(&r, &[0u8; 32]).is_err());
}
