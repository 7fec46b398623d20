//! The TTP's credentials on the wire: the token endpoint `POST /v1/token`
//! (OAuth 2.0) with its two grants, the access token it issues (an RFC 9068
//! JWT, `typ: at+jwt`, always DPoP-bound), the assertions a client signs
//! for it (RFC 7523 client assertion, the subject token of an RFC 8693
//! token exchange) and the DPoP proof (RFC 9449) that goes with every
//! request.
//!
//! These are the shapes only. The TTP verifies them (`crates/ttp`); the
//! client side that makes them is [`crate::client`] (feature `client`).
//! `docs/protocol.md` describes the flow and the checks.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/v1/token";

/// `grant_type` of a back end: RFC 6749 §4.4 client credentials.
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";

/// `grant_type` of a browser: RFC 8693 token exchange.
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// `client_assertion_type` of RFC 7523 §2.2 (`private_key_jwt`).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `subject_token_type` of the subject token: a JWT (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `issued_token_type` of a token exchange's answer.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `token_type` of every access token: DPoP-bound (RFC 9449 §5), used with
/// `Authorization: DPoP <token>`.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";

/// `typ` of an access token (RFC 9068 §2.1).
pub const TYP_ACCESS_TOKEN: &str = "at+jwt";

/// `typ` of a DPoP proof (RFC 9449 §4.2).
pub const TYP_DPOP: &str = "dpop+jwt";

/// `typ` of a subject token: pseudoform's explicit type (RFC 8725 §3.11),
/// so that no other JWT of the same key passes for one.
pub const TYP_SUBJECT_TOKEN: &str = "pseudoform-subject+jwt";

/// The request header that carries a DPoP proof.
pub const DPOP_HEADER: &str = "DPoP";

/// The error code of a DPoP proof whose `jti` was used before (401). A
/// client that did not send the proof twice itself — a load balancer
/// resent the request after a replica died — sends the request again with
/// a fresh proof (the browser module once, `pseudoform batch` within its
/// retries).
pub const PROOF_REPLAYED: &str = "auth.proofReplayed";

/// The only signature algorithm of client keys, DPoP keys and the TTP's
/// tokens: ECDSA P-256 with SHA-256 (what WebCrypto offers for a
/// non-extractable key).
pub const ALG: &str = "ES256";

/// The scope of an evaluation token (`/oprf/eval`, `/v1/evaluate`).
pub const SCOPE_EVALUATE: &str = "evaluate";

/// The scope of a re-keying token (`/v1/rekey`), the only one a recipient gets.
pub const SCOPE_REKEY: &str = "rekey";

/// The scope of a validation token: a provider's (or its processor's)
/// credential for a registry's validation endpoints, whose `aud` is that
/// registry ([`validation_audience`]). The TTP itself refuses it.
pub const SCOPE_VALIDATE: &str = "validate";

/// The `audience` parameter and `aud` claim of a validation token: the
/// recipient `organization|scope` it may be presented to.
pub fn validation_audience(organization: &str, scope: &str) -> String {
    format!("{organization}|{scope}")
}

/// Longest lifetime of a browser's access token, in seconds (15 minutes).
pub const MAX_BROWSER_TOKEN_SECONDS: i64 = 900;

/// Longest lifetime of a back end's access token, in seconds.
pub const MAX_BACKEND_TOKEN_SECONDS: i64 = 300;

/// Longest lifetime of a client assertion (`exp` ≤ now + this), in seconds.
pub const MAX_ASSERTION_SECONDS: i64 = 300;

/// Longest lifetime of a subject token (`exp` ≤ `iat` + this), in seconds.
pub const MAX_SUBJECT_TOKEN_SECONDS: i64 = 120;

/// How far a DPoP proof's `iat` may lie from the TTP's clock, in seconds.
pub const DPOP_WINDOW_SECONDS: i64 = 60;

/// Longest acting-person id (`sub` of a subject token), in characters.
pub const MAX_PERSON_ID: usize = 128;

/// Longest `jti` the TTP accepts, in characters.
pub const MAX_JTI: usize = 128;

/// Whether `person` is an acceptable acting-person id: 1 to
/// [`MAX_PERSON_ID`] visible ASCII characters (an employee or UZI number,
/// never a patient's).
pub fn is_person_id(person: &str) -> bool {
    (1..=MAX_PERSON_ID).contains(&person.len()) && person.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `jti` is an acceptable token id: 1 to [`MAX_JTI`] visible ASCII
/// characters.
pub fn is_jti(jti: &str) -> bool {
    (1..=MAX_JTI).contains(&jti.len()) && jti.bytes().all(|b| b.is_ascii_graphic())
}

/// `ath` of a DPoP proof (RFC 9449 §4.2): the unpadded base64url SHA-256
/// of the access token it goes with.
pub fn ath(access_token: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(access_token.as_bytes()))
}

/// `cnf` (RFC 7800) of a DPoP-bound token: the RFC 7638 thumbprint of the
/// key the holder proves possession of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// `jkt`: SHA-256 thumbprint, unpadded base64url.
    pub jkt: String,
}

/// `act` (RFC 8693 §4.1): who acts for the subject. A clinician's browser
/// token has `{"sub": <person>}`; a processor's back-end token
/// `{"sub": <processor>}`; a processor's browser token
/// `{"sub": <person>, "act": {"sub": <processor>}}` (the person acts
/// through the processor).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The acting party.
    pub sub: String,
    /// The party it acts through, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// An actor without a further one.
    pub fn of(sub: &str) -> Self {
        Act {
            sub: sub.to_owned(),
            act: None,
        }
    }
}

/// The claims of an access token (RFC 9068 §2.2), signed `ES256` by the
/// TTP's signing key with `typ: at+jwt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The TTP's configured `issuer`.
    pub iss: String,
    /// The TTP itself (equal to `iss`); of a validation token the registry
    /// `organization|scope` ([`validation_audience`]).
    pub aud: String,
    /// The provider (`ura:…`) of an evaluation token, the recipient
    /// organisation (`oin:…`) of a rekey token.
    pub sub: String,
    /// The caller's client id.
    pub client_id: String,
    /// Who acts (the person of a browser token, the processor), if anyone.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Act>,
    /// The DPoP key the token is bound to.
    pub cnf: Cnf,
    /// The form origin of a browser token; requests must carry exactly this `Origin`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub origin: Option<String>,
    /// [`SCOPE_EVALUATE`], [`SCOPE_REKEY`] or [`SCOPE_VALIDATE`].
    pub scope: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique id of the token (the budget of a browser token is counted on it).
    pub jti: String,
}

/// The claims of a client assertion (RFC 7523 §3): signed `ES256` by one
/// of the client's registered keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAssertionClaims {
    /// The client id.
    pub iss: String,
    /// The client id again.
    pub sub: String,
    /// The TTP's issuer or the token endpoint's URL (a string or a list
    /// that holds one of them).
    pub aud: serde_json::Value,
    /// Expires at: at most [`MAX_ASSERTION_SECONDS`] from now.
    pub exp: i64,
    /// Issued at (optional in RFC 7523, always written by pseudoform).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iat: Option<i64>,
    /// Single use: the TTP remembers it until `exp`.
    pub jti: String,
}

/// The claims of a subject token for a browser's token exchange: signed
/// `ES256` (`typ` [`TYP_SUBJECT_TOKEN`]) by a provider's or processor's
/// client key; its login session vouches that the clinician `sub` is
/// signed in and asks for a token bound to the browser's key `cnf.jkt`
/// for the form at `origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectTokenClaims {
    /// The provider's or processor's client id.
    pub iss: String,
    /// The TTP's issuer.
    pub aud: String,
    /// The acting person ([`is_person_id`]).
    pub sub: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at: at most [`MAX_SUBJECT_TOKEN_SECONDS`] after `iat`.
    pub exp: i64,
    /// Single use.
    pub jti: String,
    /// The browser's DPoP key.
    pub cnf: Cnf,
    /// The form origin the browser runs (and calls the TTP) from.
    pub origin: String,
    /// The provider a processor acts for (one of its `acts_for`); a
    /// provider may leave it out or name itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}

/// The claims of a DPoP proof (RFC 9449 §4.2). Its protected header has
/// `typ: dpop+jwt`, `alg: ES256` and the public `jwk`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpopClaims {
    /// Single use within the window.
    pub jti: String,
    /// The HTTP method (`POST`).
    pub htm: String,
    /// The URL of the endpoint, without query or fragment.
    pub htu: String,
    /// Issued at: within [`DPOP_WINDOW_SECONDS`] of the TTP's clock.
    pub iat: i64,
    /// With an access token: the unpadded base64url SHA-256 of it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ath: Option<String>,
}

/// A successful answer of `POST /v1/token` (RFC 6749 §5.1, RFC 8693 §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token (a JWT; opaque to the client).
    pub access_token: String,
    /// Always [`TOKEN_TYPE_DPOP`].
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// [`SCOPE_EVALUATE`], [`SCOPE_REKEY`] or [`SCOPE_VALIDATE`].
    pub scope: String,
    /// [`TOKEN_TYPE_ACCESS_TOKEN`] (token exchange only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub issued_token_type: Option<String>,
    /// The provider the token evaluates for (evaluation tokens) or
    /// validates for (validation tokens).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}

/// An error answer of `POST /v1/token` (RFC 6749 §5.2) with pseudoform's
/// stable `code`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    /// The OAuth error (`invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `invalid_dpop_proof`).
    pub error: String,
    /// A fixed English sentence, never a request value.
    pub error_description: String,
    /// pseudoform's code (`token.invalidClient`, …).
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_act() {
        let both = Act {
            sub: "clinician-1".into(),
            act: Some(Box::new(Act::of("oin:00000003000000003000"))),
        };
        let json = serde_json::to_string(&both).unwrap();
        assert_eq!(
            json,
            r#"{"sub":"clinician-1","act":{"sub":"oin:00000003000000003000"}}"#
        );
        assert_eq!(serde_json::from_str::<Act>(&json).unwrap(), both);
    }

    #[test]
    fn ids() {
        assert!(is_person_id("uzi:900012345"));
        assert!(!is_person_id(""));
        assert!(!is_person_id("a b"));
        assert!(!is_person_id(&"x".repeat(MAX_PERSON_ID + 1)));
        assert!(is_jti("0f"));
        assert!(!is_jti("é"));
    }
}
