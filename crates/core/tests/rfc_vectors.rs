//! Known-answer tests from the RFCs the method stands on:
//! RFC 9497 (OPRF, ristretto255-SHA512, mode OPRF), RFC 9380
//! (`expand_message_xmd` with SHA-512) and RFC 5869 (HKDF-SHA256).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use pseudoform_core::derivation::hkdf_sha256;
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::xmd::expand_message_xmd;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode).
const SEED: &str = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
const KEY_INFO: &str = "74657374206b6579";
const SK_SM: &str = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";
const BLIND: &str = "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706";

struct OprfVector {
    input: &'static str,
    blinded: &'static str,
    evaluated: &'static str,
    output: &'static str,
}

const OPRF_VECTORS: [OprfVector; 2] = [
    OprfVector {
        input: "00",
        blinded: "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
        evaluated: "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
        output: "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
    },
    OprfVector {
        input: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
        blinded: "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
        evaluated: "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
        output: "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
    },
];

#[test]
fn rfc9497_derive_key_pair() {
    let key = ServerKey::derive(&unhex(SEED), &hex::decode(KEY_INFO).unwrap()).unwrap();
    assert_eq!(hex::encode(key.to_bytes().as_ref()), SK_SM);
}

#[test]
fn rfc9497_oprf_mode_vectors() {
    let key = ServerKey::from_bytes(&unhex(SK_SM)).unwrap();
    let r = Blind::from_bytes(&unhex(BLIND)).unwrap();
    for v in &OPRF_VECTORS {
        let input = hex::decode(v.input).unwrap();
        let blinded = oprf::blind(&input, &r).unwrap();
        assert_eq!(hex::encode(blinded), v.blinded);
        let evaluated = key.evaluate(&blinded).unwrap();
        assert_eq!(hex::encode(evaluated), v.evaluated);
        let n = oprf::unblind(&r, &evaluated).unwrap();
        assert_eq!(hex::encode(oprf::finalize(&input, &n).unwrap()), v.output);
        // N is the unblinded evaluation: k·HashToGroup(input), whatever the blind.
        let other = Blind::from_uniform_bytes(&[0x5a; 64]).unwrap();
        let again = oprf::unblind(
            &other,
            &key.evaluate(&oprf::blind(&input, &other).unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(n, again);
    }
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
    let mut empty = [0u8; 0];
    assert!(expand_message_xmd(&[b"x"], b"dst", &mut empty).is_err());
    let mut huge = vec![0u8; 255 * 64 + 1];
    assert!(expand_message_xmd(&[b"x"], b"dst", &mut huge).is_err());
    assert!(expand_message_xmd(&[b"x"], &[0u8; 256], &mut [0u8; 32]).is_err());
    assert!(expand_message_xmd(&[b"x"], b"", &mut [0u8; 32]).is_err());
}

/// RFC 5869 Appendix A.1 (basic) and A.3 (no salt, no info): the method
/// uses HKDF without salt.
#[test]
fn rfc5869_hkdf_sha256() {
    let ikm = [0x0bu8; 22];
    let mut okm = [0u8; 42];
    hkdf_sha256(&ikm, b"", &mut okm).unwrap();
    assert_eq!(
        hex::encode(okm),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
    // A.1 has a salt, which the method never uses: check it with the crate
    // directly to pin the primitive under the wrapper.
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    let mut okm = [0u8; 42];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm)
        .expand(&info, &mut okm)
        .unwrap();
    assert_eq!(
        hex::encode(okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
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
