//! # pseudoform-protocol
//!
//! The wire types shared by the browser module (through its JS layer), the
//! reference TTP (`crates/ttp`) and the registry receiver (`crates/registry`).
//! `docs/protocol.md` describes the flow; `docs/openapi-ttp.yaml` and
//! `docs/openapi-registry.yaml` the endpoints.
//!
//! Everything binary travels as padded base64url (unpadded is read too, as
//! the national reference service reads it). Nothing here ever holds an
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

/// `cty` of a JWE whose plaintext is the bare JSON claims, unsigned: the
/// national reference service's, and pseudoform's for a recipient of the
/// national profile.
pub const JSON_CONTENT: &str = "application/json";

/// Prefix of the `subject` claim before the base64url evaluated element.
pub const SUBJECT_PREFIX: &str = "pseudonym:eval:";

/// Exactly `N` bytes of base64url read off the wire: padded, the core's
/// canonical text ([`pseudoform_core::encoding::decode_array`]), or
/// unpadded, which the national reference service also reads (it pads
/// before decoding). Nothing else: no other alphabet, no whitespace, no
/// non-canonical trailing bits, no padding in the wrong place. Answers are
/// always written padded.
pub fn decode_wire<const N: usize>(text: &str) -> Result<[u8; N], pseudoform_core::Error> {
    let padded = N.div_ceil(3) * 4;
    let unpadded = (N * 4).div_ceil(3);
    if text.len() == unpadded && unpadded < padded {
        let mut full = String::with_capacity(padded);
        full.push_str(text);
        full.extend(std::iter::repeat_n('=', padded - unpadded));
        return pseudoform_core::encoding::decode_array(&full);
    }
    pseudoform_core::encoding::decode_array(text)
}

/// The prefix of an organisation's OIN on the wire (`recipientOrganization`,
/// a processor's or a registry's party id).
pub const OIN_PREFIX: &str = "oin:";

/// The length of an OIN (Organisatie-identificatienummer).
pub const OIN_LENGTH: usize = 20;

/// The OIN rule, as the national reference service checks it (Logius, OIN
/// 3.0.0 "samenstelling"), in words for error messages.
pub const OIN_RULE: &str = "`oin:` followed by an OIN of 20 characters: 8 digits, then 8 letters or digits and `0000`, or 9 letters or digits and `000`";

/// Whether `organization` is [`OIN_PREFIX`] followed by an OIN of the
/// national format: 8 digits (the register), a main number of 8 ASCII
/// letters or digits followed by `0000` or of 9 followed by `000` — the
/// national service's pattern `^\d{8}(?:[A-Za-z0-9]{8}0{4}|[A-Za-z0-9]{9}0{3})$`.
/// Nothing else: no other prefix or case of it, no whitespace.
pub fn is_oin(organization: &str) -> bool {
    let Some(oin) = organization.strip_prefix(OIN_PREFIX) else {
        return false;
    };
    let bytes = oin.as_bytes();
    if bytes.len() != OIN_LENGTH {
        return false;
    }
    let (register, number) = bytes.split_at(8);
    let main = |len: usize| {
        let (main, zeros) = number.split_at(len);
        main.iter().all(u8::is_ascii_alphanumeric) && zeros.iter().all(|b| *b == b'0')
    };
    // 12 characters after the register: 8 + `0000` or 9 + `000`.
    register.iter().all(u8::is_ascii_digit) && (main(8) || main(9))
}

/// Fewest characters of a recipient scope: the national service's
/// `min_length` of `recipientScope`.
pub const MIN_SCOPE_LENGTH: usize = 2;

/// The scope rule in words for error messages (the most is the core's
/// [`pseudoform_core::derivation::MAX_RECIPIENT_PART`]).
pub const SCOPE_RULE: &str =
    "2 to 128 visible ASCII characters without `|` (the national service's minimum is 2)";

/// Why a recipient `(organization, scope)` is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientRule {
    /// `recipientOrganization` is not [`OIN_RULE`].
    Organization,
    /// `recipientScope` is not [`SCOPE_RULE`].
    Scope,
}

impl RecipientRule {
    /// The request member the rule is about.
    pub const fn field(self) -> &'static str {
        match self {
            RecipientRule::Organization => "recipientOrganization",
            RecipientRule::Scope => "recipientScope",
        }
    }

    /// The rule, in words.
    pub const fn rule(self) -> &'static str {
        match self {
            RecipientRule::Organization => OIN_RULE,
            RecipientRule::Scope => SCOPE_RULE,
        }
    }
}

/// The recipient `(organization, scope)` of the wire: an organisation of
/// [`is_oin`], a scope of at least [`MIN_SCOPE_LENGTH`] characters that the
/// core takes as a recipient part. The one check of both, wherever a
/// recipient comes from (a request, the TTP's or a registry's
/// configuration).
pub fn recipient(
    organization: &str,
    scope: &str,
) -> Result<pseudoform_core::Recipient, RecipientRule> {
    if !is_oin(organization) {
        return Err(RecipientRule::Organization);
    }
    if scope.len() < MIN_SCOPE_LENGTH {
        return Err(RecipientRule::Scope);
    }
    pseudoform_core::Recipient::new(organization, scope).map_err(|e| match e {
        pseudoform_core::Error::Recipient {
            part: "recipientOrganization",
            ..
        } => RecipientRule::Organization,
        _ => RecipientRule::Scope,
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
    fn wire_base64url_is_padded_or_not() {
        let bytes = [0xfbu8; 32];
        let text = pseudoform_core::encoding::encode(&bytes);
        let bare = text.trim_end_matches('=');
        assert_eq!(bare.len(), 43);
        assert_eq!(decode_wire::<32>(&text), Ok(bytes));
        assert_eq!(decode_wire::<32>(bare), Ok(bytes));
        for bad in [
            format!("{}=", &bare[..42]),
            format!("{bare} "),
            bare[..42].to_owned(),
            bare.replace('-', "+").replace('_', "/"),
            format!("{bare}=="),
        ] {
            assert!(decode_wire::<32>(&bad).is_err(), "{bad}");
        }
        // Non-canonical trailing bits stay refused unpadded too.
        let mut last = bare.to_owned();
        last.pop();
        last.push('1');
        assert!(decode_wire::<32>(&last).is_err());
    }

    #[test]
    fn oin_format() {
        assert!(is_oin("oin:00000001000000001000"));
        assert!(!is_oin("oin:0000000100000000100"));
        assert!(!is_oin("00000001000000001000"));
        assert!(!is_oin("OIN:00000001000000001000"));
        assert!(!is_oin("oin:0000000100000000100x"));
        // The national rule: letters in the main number, trailing zeros.
        assert!(is_oin("oin:00000099000000001000"));
        assert!(is_oin("oin:12345678ABCDEFGH0000"));
        assert!(is_oin("oin:12345678abcdefghi000"));
        assert!(!is_oin("oin:1234567AABCDEFGH0000"));
        assert!(!is_oin("oin:12345678ABCDEFG10100"));
        assert!(!is_oin("oin:12345678ABCDEFGHI001"));
        assert!(!is_oin("oin:12345678ABCDEF-H0000"));
        assert!(!is_oin("oin: 2345678ABCDEFGH0000"));
        assert!(!is_oin("oin:12345678ABCDEFGHé000"));
    }

    #[test]
    fn recipient_rules() {
        assert!(recipient("oin:00000001000000001000", "ab").is_ok());
        assert_eq!(
            recipient("oin:00000001000000001000", "a").err(),
            Some(RecipientRule::Scope)
        );
        assert_eq!(
            recipient("oin:00000001000000001000", "a|b").err(),
            Some(RecipientRule::Scope)
        );
        assert_eq!(
            recipient("oin:00000001000000001000", &"s".repeat(129)).err(),
            Some(RecipientRule::Scope)
        );
        assert_eq!(
            recipient("oin:1", "scope").err(),
            Some(RecipientRule::Organization)
        );
        assert_eq!(RecipientRule::Scope.field(), "recipientScope");
        // The rule's words say the limits of the constants.
        let limits = format!(
            "{MIN_SCOPE_LENGTH} to {} ",
            pseudoform_core::derivation::MAX_RECIPIENT_PART
        );
        assert!(SCOPE_RULE.starts_with(&limits));
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
