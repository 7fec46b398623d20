//! Requests and answers of the TTP.
//!
//! - `POST /oprf/eval` — wire-compatible with the national reference service:
//!   one blinded input in, `{"jwe": …}` out.
//! - `POST /v1/evaluate` — batch: all blinded inputs of one or many records in
//!   one call, one JWE per record.
//! - `GET /v1/policy?recipientOrganization=…&recipientScope=…` — which
//!   pseudonym types the recipient may receive and which it requires, for
//!   the browser module.
//! - `POST /v1/rekey` — re-pseudonymisation by a registry from one key version
//!   to another on blinded pseudonyms.
//!
//! The credentials of these calls (`POST /v1/token`, DPoP) are [`crate::auth`].

use serde::{Deserialize, Serialize};

/// The path of the batch evaluation (`POST`).
pub const EVALUATE_PATH: &str = "/v1/evaluate";
/// The path of a recipient's policy (`GET`, query `recipientOrganization`,
/// `recipientScope`).
pub const POLICY_PATH: &str = "/v1/policy";
/// The path of the TTP's signing keys (`GET`, a JWK set).
pub const SIGNING_KEYS_PATH: &str = "/v1/signing-keys";
/// The `typ` of the TTP's statement of a recipient's key ([`Policy::recipient_key`]).
pub const TYP_RECIPIENT_KEY: &str = "pseudoform-recipient-key+jwt";

/// `POST /oprf/eval` body (national field names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalRequest {
    /// The blinded element, padded base64url (the national name is kept
    /// although it is a blinded element, not an encrypted identifier).
    pub encrypted_personal_id: String,
    /// `oin:` and the recipient's OIN ([`crate::is_oin`]).
    pub recipient_organization: String,
    /// The recipient's scope (key domain).
    pub recipient_scope: String,
    /// pseudoform extension: the pseudonym type code. Absent means `B`, the
    /// BSN, which is what the national service pseudonymises.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pseudonym_type: Option<String>,
}

/// `POST /oprf/eval` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalResponse {
    /// Compact JWE for the recipient; its payload is [`crate::claims::EvalClaims`].
    pub jwe: String,
}

/// One blinded input of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlindedItem {
    /// Pseudonym type code (`NGGV`, `RGG`, …).
    #[serde(rename = "type")]
    pub pseudonym_type: String,
    /// The blinded element, padded base64url.
    pub blinded_input: String,
}

/// The blinded inputs of one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// One item per pseudonym type, each type at most once.
    pub items: Vec<BlindedItem>,
    /// The digest of the record's reversible pseudonym `R`, sealed in the
    /// browser before this call ([`crate::registry::ReversibleEnvelope::digest`]:
    /// 43 unpadded base64url characters). The TTP evaluates nothing for it
    /// and charges no budget; it signs it into the record's claims
    /// ([`crate::claims::RecordClaims::reversible`]), which binds the
    /// envelope to this record, its provider and its recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversible: Option<String>,
}

/// `POST /v1/evaluate` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchRequest {
    /// `oin:` and the recipient's OIN ([`crate::is_oin`]).
    pub recipient_organization: String,
    /// The recipient's scope.
    pub recipient_scope: String,
    /// The records; at most [`MAX_RECORDS_PER_REQUEST`].
    pub records: Vec<BatchRecord>,
}

/// Most records in one batch request.
pub const MAX_RECORDS_PER_REQUEST: usize = 1000;

/// Most items in one record: one per pseudonym type of the core.
pub const MAX_ITEMS_PER_RECORD: usize = pseudoform_core::PseudonymType::ALL.len();

/// The answer for one record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordResult {
    /// Compact JWE for the recipient; its payload is
    /// [`crate::claims::RecordClaims`], with one evaluation per item, in order.
    pub jwe: String,
}

/// `POST /v1/evaluate` answer: one result per record, in request order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The records' results.
    pub records: Vec<RecordResult>,
}

/// `GET /v1/policy` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// The recipient organisation.
    pub recipient_organization: String,
    /// The recipient scope.
    pub recipient_scope: String,
    /// Pseudonym type codes the recipient may receive (`B` only where the
    /// recipient may process the BSN).
    pub allowed_types: Vec<String>,
    /// Pseudonym type codes every record for the recipient must have (a
    /// subset of `allowed_types`): a form refuses a record without one of
    /// them, inline, and the recipient refuses it too. Absent (an older
    /// TTP) means none.
    #[serde(default)]
    pub required_types: Vec<String>,
    /// The current key version of the recipient's key domain.
    pub key_version: u32,
    /// Most records per `POST /v1/evaluate`.
    pub max_records_per_request: usize,
    /// The recipient's RSA public key as the TTP vouches for it: a compact
    /// JWS (`ES256`, `typ: pseudoform-recipient-key+jwt`, the key of
    /// `GET /v1/signing-keys`) of `{"organization", "scope", "jwk", "iat"}`,
    /// where `jwk` has `kty` RSA, `n`, `e`, `kid`, `alg` `RSA-OAEP-256` and
    /// `use` `enc`. A browser encrypts the blind factors to it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recipient_key: Option<String>,
}

/// `POST /v1/rekey` body: pseudonyms of one key version, blinded by the
/// registry with its own random factor, to be moved to another version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RekeyRequest {
    /// The recipient organisation (must be the calling registry's).
    pub recipient_organization: String,
    /// The recipient scope.
    pub recipient_scope: String,
    /// Key version the pseudonyms were made under.
    pub from_version: u32,
    /// Key version to move them to.
    pub to_version: u32,
    /// `s·N` for each pseudonym `N`, padded base64url.
    pub blinded_pseudonyms: Vec<String>,
}

/// Most blinded pseudonyms in one `POST /v1/rekey`.
pub const MAX_REKEY_ELEMENTS: usize = 10_000;

/// `POST /v1/rekey` answer: `(k_to/k_from)·s·N` for each element, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RekeyResponse {
    /// The re-keyed blinded elements, padded base64url.
    pub elements: Vec<String>,
}
