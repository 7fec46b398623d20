//! # pseudoform-protocol
//!
//! The wire types shared by the browser module (through its JS layer), the
//! reference TTP (`crates/ttp`) and the registry receiver (`crates/registry`).
//! `docs/protocol.md` describes the flow; `docs/openapi-ttp.yaml` and
//! `docs/openapi-registry.yaml` the endpoints.
//!
//! Everything binary travels as padded base64url. Nothing here ever holds an
//! identifying value: only blinded elements, JWEs, blind factors, labels.

pub mod auth;
pub mod claims;
#[cfg(feature = "client")]
pub mod client;
pub mod fhir;
pub mod jwk;
pub mod package;
pub mod registry;
pub mod secret_file;
pub mod ttp;

/// The protocol version written in the `version` claim, as the national
/// reference service does.
pub const PROTOCOL_VERSION: &str = "1.1";

/// `alg` of a JWE to a recipient: RSAES-OAEP with SHA-256 and MGF1-SHA-256,
/// the pseudoform TTP's default.
pub const JWE_ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";

/// `alg` of a JWE to a recipient: RSAES-OAEP with SHA-1, what the national
/// reference service uses since August 2026.
pub const JWE_ALG_RSA_OAEP: &str = "RSA-OAEP";

/// `enc` of every JWE to a recipient, the only content encryption accepted.
pub const JWE_ENC_A256GCM: &str = "A256GCM";

/// Lifetime of a JWE from the TTP, in seconds (the national `exp` is 5 minutes).
pub const JWE_LIFETIME_SECONDS: i64 = 300;

/// The JWS algorithm of the TTP's signature on the claims (ECDSA P-256 with
/// SHA-256).
pub const SIGNATURE_ALG: &str = "ES256";

/// `cty` of a JWE whose plaintext is a signed JWT (nested JWT, RFC 7519
/// §5.2), and `typ` of that JWS.
pub const NESTED_JWT: &str = "JWT";

/// Prefix of the `subject` claim before the base64url evaluated element.
pub const SUBJECT_PREFIX: &str = "pseudonym:eval:";

/// The number of digits of an OIN (Organisatie-identificatienummer).
pub const OIN_DIGITS: usize = 20;

/// Whether `organization` is `oin:` followed by exactly [`OIN_DIGITS`] digits.
pub fn is_oin(organization: &str) -> bool {
    organization.strip_prefix("oin:").is_some_and(|digits| {
        digits.len() == OIN_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The number of digits of a URA (UZI-register number of a care provider).
pub const URA_DIGITS: usize = 8;

/// Whether `provider` is `ura:` followed by exactly [`URA_DIGITS`] digits,
/// the party id of a care provider.
pub fn is_ura(provider: &str) -> bool {
    provider.strip_prefix("ura:").is_some_and(|digits| {
        digits.len() == URA_DIGITS && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Current time, seconds since the Unix epoch (0 before it).
pub fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Current time, milliseconds since the Unix epoch (0 before it).
pub fn unix_now_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// A problem answer of the TTP or the registry (any 4xx/5xx): a stable
/// `code`, a human sentence without any input value, and the `field` (a
/// request member) where there is one. `detail` repeats the message, the
/// member name FastAPI-style services such as the national reference use.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Stable machine-readable code (`recipient.unknown`, `auth.missingToken`, …).
    pub code: String,
    /// Human-readable sentence (English), never containing request values.
    pub message: String,
    /// Same sentence, for clients of the national reference service.
    pub detail: String,
    /// The request member the error is about, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

impl ErrorBody {
    /// A problem answer with `code` and `message`.
    pub fn new(code: &str, message: &str) -> Self {
        ErrorBody {
            code: code.into(),
            message: message.into(),
            detail: message.into(),
            field: None,
        }
    }

    /// The same answer naming the request member it is about.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oin_format() {
        assert!(is_oin("oin:00000001000000001000"));
        assert!(!is_oin("oin:0000000100000000100"));
        assert!(!is_oin("00000001000000001000"));
        assert!(!is_oin("OIN:00000001000000001000"));
        assert!(!is_oin("oin:0000000100000000100x"));
    }

    #[test]
    fn ura_format() {
        assert!(is_ura("ura:00000001"));
        assert!(!is_ura("ura:0000001"));
        assert!(!is_ura("URA:00000001"));
        assert!(!is_ura("ura:0000000x"));
    }

    #[test]
    fn clock() {
        let (s, ms) = (unix_now(), unix_now_millis());
        assert!(s > 1_700_000_000);
        assert!((ms / 1000 - s).abs() <= 1);
    }
}
