//! JWS and JWE as the TTP makes them — a compact JWE (`RSA-OAEP-256` or
//! `RSA-OAEP`, `A256GCM`, `cty: JWT`, `kid`) around the TTP's compact JWS
//! (`ES256`, `typ: JWT`, `kid`) of the claims — and their opening by a
//! recipient.

use josekit::jwe::alg::rsaes::RsaesJweAlgorithm;
use josekit::jwe::JweHeader;
use pseudoform_protocol::{JWE_ENC_A256GCM, NESTED_JWT, SIGNATURE_ALG};
use serde_json::Value;

use crate::keys::{ttp_signing, RsaKey, SigningKey};

/// `RSA-OAEP-256`, the TTP's default.
pub fn oaep256() -> RsaesJweAlgorithm {
    josekit::jwe::RSA_OAEP_256
}

/// `RSA-OAEP` (SHA-1), the national reference service's.
pub fn oaep() -> RsaesJweAlgorithm {
    josekit::jwe::RSA_OAEP
}

/// The compact JWS of `claims` with `key`, naming `kid` (ES256, typ JWT).
pub fn sign_with(claims: &Value, key: &SigningKey, kid: &str) -> String {
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type(NESTED_JWT);
    header.set_key_id(kid);
    let signer = josekit::jws::ES256
        .signer_from_pem(key.private_pem.as_bytes())
        .unwrap();
    josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &header, &signer).unwrap()
}

/// A compact JWE (A256GCM) of any plaintext with content type `cty` to
/// `to`, naming `kid` if given.
pub fn encrypt_plaintext(
    plaintext: &[u8],
    cty: &str,
    alg: RsaesJweAlgorithm,
    to: &RsaKey,
    kid: Option<&str>,
) -> String {
    let mut header = JweHeader::new();
    header.set_content_encryption(JWE_ENC_A256GCM);
    header.set_content_type(cty);
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    let encrypter = alg.encrypter_from_pem(to.public_pem.as_bytes()).unwrap();
    josekit::jwe::serialize_compact(plaintext, &header, &encrypter).unwrap()
}

/// The JWE the TTP makes of `claims` for `to`, with `to`'s kid.
pub fn jwe(claims: &Value, alg: RsaesJweAlgorithm, to: &RsaKey) -> String {
    jwe_with_kid(claims, alg, to, Some(&to.kid))
}

/// [`jwe`] naming `kid` (or none).
pub fn jwe_with_kid(
    claims: &Value,
    alg: RsaesJweAlgorithm,
    to: &RsaKey,
    kid: Option<&str>,
) -> String {
    let key = ttp_signing();
    let jws = sign_with(claims, key, &key.kid);
    encrypt_plaintext(jws.as_bytes(), NESTED_JWT, alg, to, kid)
}

/// A JWE of the bare claims, unsigned, as the national reference service
/// makes it (`cty: application/json`).
pub fn jwe_unsigned(claims: &Value, alg: RsaesJweAlgorithm, to: &RsaKey) -> String {
    let plaintext = serde_json::to_vec(claims).unwrap();
    encrypt_plaintext(&plaintext, "application/json", alg, to, Some(&to.kid))
}

/// A JWE (`RSA-OAEP-256`) to `to` of a JWS of the claims signed by `key`
/// naming `kid`.
pub fn jwe_signed_by(claims: &Value, key: &SigningKey, kid: &str, to: &RsaKey) -> String {
    let jws = sign_with(claims, key, kid);
    encrypt_plaintext(jws.as_bytes(), NESTED_JWT, oaep256(), to, Some(&to.kid))
}

/// Decrypts a JWE with `to`'s private key under `alg`, and checks that its
/// plaintext is a JWS of the claims with the TTP's signing key (`ES256`,
/// its kid, `typ: JWT`); returns the JWE's protected header and the claims.
pub fn open_jwe(token: &str, to: &RsaKey, alg: RsaesJweAlgorithm) -> (JweHeader, Value) {
    let decrypter = alg.decrypter_from_pem(to.private_pem.as_bytes()).unwrap();
    let (payload, header) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    assert_eq!(header.content_type(), Some(NESTED_JWT));
    let signer = ttp_signing();
    let verifier = josekit::jws::ES256
        .verifier_from_pem(signer.public_pem.as_bytes())
        .unwrap();
    let (claims, jws_header) = josekit::jws::deserialize_compact(&payload, &verifier).unwrap();
    assert_eq!(jws_header.algorithm(), Some(SIGNATURE_ALG));
    assert_eq!(jws_header.key_id(), Some(signer.kid.as_str()));
    assert_eq!(jws_header.token_type(), Some(NESTED_JWT));
    (header, serde_json::from_slice(&claims).unwrap())
}

/// Decrypts a JWE of bare claims (the national profile: `cty:
/// application/json`, no signature) with `to`'s private key under `alg`;
/// returns its protected header and the claims.
pub fn open_bare_jwe(token: &str, to: &RsaKey, alg: RsaesJweAlgorithm) -> (JweHeader, Value) {
    let decrypter = alg.decrypter_from_pem(to.private_pem.as_bytes()).unwrap();
    let (payload, header) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    (header, serde_json::from_slice(&payload).unwrap())
}
