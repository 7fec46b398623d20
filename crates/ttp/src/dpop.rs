//! DPoP proofs (RFC 9449): the proof of possession of the key an access
//! token is bound to, sent with every request in the `DPoP` header.
//!
//! [`verify`] checks everything but single use: the protected header
//! (`typ: dpop+jwt`, `alg: ES256`, a P-256 public `jwk` without private
//! part), the signature by that key, `htm`, `htu` (the TTP's public URL of
//! the endpoint, compared without query and fragment), `iat` within
//! [`DPOP_WINDOW_SECONDS`] of the TTP's clock, and `ath` when an access
//! token comes with it. The caller then remembers the proof's `jti` in the
//! ledger until [`Proof::remember_until`].

use pseudoform_protocol::auth::{ath, is_jti, DpopClaims, ALG, DPOP_WINDOW_SECONDS, TYP_DPOP};
use serde_json::Value;

use crate::jose::{self, PublicKey};

/// A verified proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's id.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
}

impl Proof {
    /// Until when its `jti` must be remembered: as long as a proof with its
    /// `iat` would be accepted, plus a second.
    pub fn remember_until(&self, now: i64) -> i64 {
        self.iat.max(now) + DPOP_WINDOW_SECONDS + 1
    }
}

/// Why a proof was refused (never more detail than the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofError {
    /// No `DPoP` header, or more than one.
    Missing,
    /// Not a valid proof for this request.
    Invalid,
}

/// The one `DPoP` header of a request, if exactly one.
pub fn header(headers: &axum::http::HeaderMap) -> Result<&str, ProofError> {
    let mut values = headers
        .get_all(pseudoform_protocol::auth::DPOP_HEADER)
        .iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().map_err(|_| ProofError::Invalid),
        _ => Err(ProofError::Missing),
    }
}

/// `url` without its query and fragment.
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url.get(..end).unwrap_or(url)
}

/// Verifies `proof` for a `method` request to `url` at time `now`, with
/// `access_token` if one is presented.
pub fn verify(
    proof: &str,
    method: &str,
    url: &str,
    access_token: Option<&str>,
    now: i64,
) -> Result<Proof, ProofError> {
    let header = jose::peek_header(proof).ok_or(ProofError::Invalid)?;
    let text = |name: &str| header.get(name).and_then(Value::as_str);
    if !text("typ").is_some_and(|t| t.eq_ignore_ascii_case(TYP_DPOP)) || text("alg") != Some(ALG) {
        return Err(ProofError::Invalid);
    }
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or(ProofError::Invalid)?;
    let key = PublicKey::from_jwk(jwk).ok_or(ProofError::Invalid)?;
    let (payload, _) = jose::verify(proof, &key.verifier).ok_or(ProofError::Invalid)?;
    let claims: DpopClaims = serde_json::from_slice(&payload).map_err(|_| ProofError::Invalid)?;
    let fresh = (claims.iat - now).abs() <= DPOP_WINDOW_SECONDS;
    let bound = match access_token {
        Some(token) => claims.ath.as_deref() == Some(ath(token).as_str()),
        None => true,
    };
    if !is_jti(&claims.jti)
        || claims.htm != method
        || without_query(&claims.htu) != url
        || !fresh
        || !bound
    {
        return Err(ProofError::Invalid);
    }
    Ok(Proof {
        jkt: key.thumbprint,
        jti: claims.jti,
        iat: claims.iat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pseudoform_protocol::client::EcKey;

    const URL: &str = "https://ttp.example.nl/v1/evaluate";

    #[test]
    fn proofs_are_checked_rule_by_rule() {
        let key = EcKey::generate().unwrap();
        let now = 1_767_225_600;
        let good = key.dpop_proof("POST", URL, Some("token"), now).unwrap();
        let p = verify(&good, "POST", URL, Some("token"), now + 59).unwrap();
        assert_eq!(p.jkt, key.thumbprint());
        assert_eq!(p.remember_until(now), now + 61);
        // A query on the proof's htu is ignored.
        let q = key
            .dpop_proof("POST", &format!("{URL}?x=1"), Some("token"), now)
            .unwrap();
        assert!(verify(&q, "POST", URL, Some("token"), now).is_ok());
        for (proof, method, url, token, at) in [
            (&good, "GET", URL, Some("token"), now),
            (
                &good,
                "POST",
                "https://ttp.example.nl/oprf/eval",
                Some("token"),
                now,
            ),
            (&good, "POST", URL, Some("another token"), now),
            (&good, "POST", URL, Some("token"), now + 61),
            (&good, "POST", URL, Some("token"), now - 61),
        ] {
            assert_eq!(
                verify(proof, method, url, token, at),
                Err(ProofError::Invalid)
            );
        }
        // No ath where a token is presented.
        let unbound = key.dpop_proof("POST", URL, None, now).unwrap();
        assert!(verify(&unbound, "POST", URL, Some("token"), now).is_err());
        assert!(verify(&unbound, "POST", URL, None, now).is_ok());
        // Wrong typ, a changed payload, a key that did not sign.
        let claims = DpopClaims {
            jti: "j".into(),
            htm: "POST".into(),
            htu: URL.into(),
            iat: now,
            ath: None,
        };
        let plain_jwt = key.sign(Some("JWT"), true, &claims).unwrap();
        assert!(verify(&plain_jwt, "POST", URL, None, now).is_err());
        let no_jwk = key.sign(Some(TYP_DPOP), false, &claims).unwrap();
        assert!(verify(&no_jwk, "POST", URL, None, now).is_err());
        let mut parts: Vec<&str> = unbound.split('.').collect();
        let other = key.dpop_proof("POST", URL, None, now + 1).unwrap();
        parts[1] = other.split('.').nth(1).unwrap();
        assert!(verify(&parts.join("."), "POST", URL, None, now).is_err());
        assert!(verify("not.a.proof", "POST", URL, None, now).is_err());
    }
}
