//! JOSE helpers of the TTP over `josekit` (OpenSSL): P-256 public keys and
//! their RFC 7638 thumbprints, the protected header of a compact JWS read
//! before verification (to pick the key), and verification itself. No
//! signature is checked here by hand.

use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jws::alg::ecdsa::EcdsaJwsVerifier;
use josekit::jws::JwsHeader;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcKeyRef;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey};
use pseudoform_protocol::jwk::ec_thumbprint;
use serde_json::{Map, Value};

/// Longest compact JWS the TTP reads (access tokens, assertions, proofs), in bytes.
pub const MAX_JWT_BYTES: usize = 8 * 1024;

/// The curve name of P-256 in a JWK.
pub const P256: &str = "P-256";

/// The affine coordinates (32 bytes each) of a P-256 public key.
pub fn p256_coordinates<T: HasPublic>(ec: &EcKeyRef<T>) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        anyhow::bail!("the key is not on curve P-256");
    }
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    ec.public_key()
        .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
    Ok((x.to_vec_padded(32)?, y.to_vec_padded(32)?))
}

/// A P-256 public key that verifies `ES256`, with its thumbprint.
pub struct PublicKey {
    /// The RFC 7638 thumbprint.
    pub thumbprint: String,
    /// The verifier (without a `kid` of its own: the caller checks it).
    pub verifier: EcdsaJwsVerifier,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// A P-256 public key from SPKI PEM.
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let key =
            PKey::public_key_from_pem(pem).map_err(|_| anyhow::anyhow!("not a PEM public key"))?;
        let ec = key
            .ec_key()
            .map_err(|_| anyhow::anyhow!("not an EC public key"))?;
        ec.check_key()
            .map_err(|_| anyhow::anyhow!("the public key is invalid"))?;
        let (x, y) = p256_coordinates(&ec)?;
        let verifier = josekit::jws::ES256
            .verifier_from_der(key.public_key_to_der()?)
            .map_err(|e| anyhow::anyhow!("unusable public key: {e}"))?;
        Ok(PublicKey {
            thumbprint: ec_thumbprint(P256, &x, &y),
            verifier,
        })
    }

    /// A P-256 public key from a JWK (`kty` `EC`, `crv` `P-256`, `x`, `y`,
    /// no private part), and its thumbprint. The coordinates must be the
    /// canonical unpadded base64url of 32 bytes, so that one key has one
    /// thumbprint.
    pub fn from_jwk(jwk: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        if text("kty") != Some("EC") || text("crv") != Some(P256) || jwk.contains_key("d") {
            return None;
        }
        let coordinate = |name: &str| -> Option<Vec<u8>> {
            let t = text(name)?;
            let bytes = Base64UrlUnpadded::decode_vec(t).ok()?;
            (bytes.len() == 32 && Base64UrlUnpadded::encode_string(&bytes) == t).then_some(bytes)
        };
        let (x, y) = (coordinate("x")?, coordinate("y")?);
        let mut clean = Map::new();
        for name in ["kty", "crv", "x", "y"] {
            clean.insert(name.into(), jwk.get(name)?.clone());
        }
        let jwk = josekit::jwk::Jwk::from_map(clean).ok()?;
        // OpenSSL refuses a point that is not on the curve.
        let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).ok()?;
        Some(PublicKey {
            thumbprint: ec_thumbprint(P256, &x, &y),
            verifier,
        })
    }
}

/// The protected header of a compact JWS, unverified: only to choose the
/// key that then verifies it.
pub fn peek_header(token: &str) -> Option<Map<String, Value>> {
    if token.len() > MAX_JWT_BYTES {
        return None;
    }
    let (header, _) = token.split_once('.')?;
    let bytes = Base64UrlUnpadded::decode_vec(header).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The payload of a compact JWS signed `ES256` by `verifier`'s key, and
/// its protected header; `None` for anything else.
pub fn verify(token: &str, verifier: &EcdsaJwsVerifier) -> Option<(Vec<u8>, JwsHeader)> {
    if token.len() > MAX_JWT_BYTES {
        return None;
    }
    josekit::jws::deserialize_compact(token, verifier).ok()
}

/// Whether a `typ` header names `expected` (media types compare without
/// case, RFC 9449 §4.2).
pub fn typ_is(header: &JwsHeader, expected: &str) -> bool {
    header
        .token_type()
        .is_some_and(|t| t.eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jwk_of_rfc9449_example() {
        // The public key of RFC 9449 §4.1's example proof, and its jkt (§6.1).
        let jwk = json!({"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"});
        let key = PublicKey::from_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!(
            key.thumbprint,
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        let mut with_d = jwk.clone();
        with_d["d"] = json!("AAAA");
        assert!(PublicKey::from_jwk(with_d.as_object().unwrap()).is_none());
        let mut off_curve = jwk.clone();
        off_curve["y"] = json!("9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDB");
        assert!(PublicKey::from_jwk(off_curve.as_object().unwrap()).is_none());
        let mut padded = jwk;
        padded["x"] = json!("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs=");
        assert!(PublicKey::from_jwk(padded.as_object().unwrap()).is_none());
    }

    #[test]
    fn headers_are_peeked_only_when_small() {
        assert_eq!(peek_header("eyJhIjoxfQ.x.y").unwrap()["a"], 1);
        assert!(peek_header("nope").is_none());
        assert!(peek_header(&format!("eyJhIjoxfQ.{}", "x".repeat(MAX_JWT_BYTES))).is_none());
    }
}
