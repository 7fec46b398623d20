//! The claims the TTP signs (compact JWS, `ES256`) and encrypts to a
//! recipient: the plaintext of each JWE is that JWS (`cty: JWT`, a nested
//! JWT, RFC 7519 §5.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::auth::{Act, Cnf};

/// Payload of the JWE of `POST /oprf/eval`: the national claims plus
/// pseudoform's `jti`, `key_version` and `pseudonym_type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalClaims {
    /// `pseudonym:eval:` + the evaluated element under the current key version.
    pub subject: String,
    /// The recipient organisation.
    pub aud: String,
    /// The recipient scope.
    pub scope: String,
    /// Protocol version, [`crate::PROTOCOL_VERSION`].
    pub version: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at: `iat` + [`crate::JWE_LIFETIME_SECONDS`].
    pub exp: i64,
    /// Evaluations under older, still active key versions: version → element.
    #[serde(default)]
    pub extra_versions: BTreeMap<String, String>,
    /// pseudoform: unique id of this JWE, so a registry can refuse
    /// replays; the `jti` of the TTP's audit row of the request.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
    /// pseudoform: the key version of `subject`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key_version: Option<u32>,
    /// pseudoform: the pseudonym type; absent means `B`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pseudonym_type: Option<String>,
    /// pseudoform: the provider the evaluation was made for, taken from
    /// the caller's credential (never from the request).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
    /// pseudoform: who acted for the provider (the clinician, the
    /// processor), from the credential.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Act>,
    /// pseudoform: the DPoP key of the caller that obtained the
    /// evaluation; a registry can require a submission signed by it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Cnf>,
}

/// One evaluation inside a record JWE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Pseudonym type code.
    #[serde(rename = "type")]
    pub pseudonym_type: String,
    /// `pseudonym:eval:` + the evaluated element under `key_version`.
    pub subject: String,
    /// Evaluations under older, still active key versions: version → element.
    #[serde(default)]
    pub extra_versions: BTreeMap<String, String>,
}

/// Payload of a record JWE of `POST /v1/evaluate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordClaims {
    /// The recipient organisation.
    pub aud: String,
    /// The recipient scope.
    pub scope: String,
    /// Protocol version, [`crate::PROTOCOL_VERSION`].
    pub version: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at: `iat` + [`crate::JWE_LIFETIME_SECONDS`].
    pub exp: i64,
    /// Unique id of this JWE, so a registry can refuse replays: the id of
    /// the TTP's audit row of the request, `-`, and the record's index in
    /// it (from 0).
    pub jti: String,
    /// The current key version, of every `subject`.
    pub key_version: u32,
    /// One evaluation per item of the record, in request order.
    pub evaluations: Vec<Evaluation>,
    /// The provider the evaluations were made for (from the credential).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
    /// Who acted for the provider, from the credential.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub act: Option<Act>,
    /// The DPoP key of the caller that obtained the evaluations.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cnf: Option<Cnf>,
    /// The digest of the record's reversible pseudonym `R`
    /// ([`crate::registry::ReversibleEnvelope::digest`]), as the request
    /// named it: the registry stores the envelope only when it matches, and
    /// the provider's page opens it only under these claims' signature.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reversible: Option<String>,
}
