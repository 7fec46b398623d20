//! From a canonical input value to the 32-byte OPRF input.
//!
//! The identifier `{"landCode":"NL","type":<type>,"value":<canonical input>}`
//! is serialised as RFC 8785 canonical JSON (members sorted, no whitespace)
//! and fed to HKDF-SHA256 with no salt and info
//! `"{recipient_organization}|{recipient_scope}|v1"`, 32 bytes out — the
//! construction of the national Generic Function Pseudonymisation, so that a
//! type-B pseudonym equals the national one for the same recipient.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{CalendarDate, Error, Identity, PseudonymType, Rule};

/// Longest recipient organisation or scope, in bytes.
pub const MAX_RECIPIENT_PART: usize = 128;

/// The recipient a pseudonym is made for: the registry's organisation
/// (`oin:` + OIN in the national service) and its scope (key domain).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Recipient {
    organization: String,
    scope: String,
}

fn check_part(part: &'static str, value: &str) -> Result<(), Error> {
    let rule = if value.is_empty() {
        Rule::Required
    } else if value.len() > MAX_RECIPIENT_PART {
        Rule::TooLong
    } else if !value.bytes().all(|b| b.is_ascii_graphic() && b != b'|') {
        Rule::Characters
    } else {
        return Ok(());
    };
    Err(Error::Recipient { part, rule })
}

impl Recipient {
    /// A recipient; both parts are 1 to 128 visible ASCII characters without
    /// `|` (which separates them in the HKDF info).
    pub fn new(organization: &str, scope: &str) -> Result<Self, Error> {
        check_part("recipientOrganization", organization)?;
        check_part("recipientScope", scope)?;
        Ok(Recipient {
            organization: organization.into(),
            scope: scope.into(),
        })
    }

    /// The recipient organisation.
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// The recipient scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The HKDF info: `"{organization}|{scope}|v1"`.
    pub fn hkdf_info(&self) -> String {
        format!("{}|{}|v1", self.organization, self.scope)
    }
}

/// Appends `s` as a JSON string in the RFC 8785 form (the ECMAScript
/// `JSON.stringify` escaping: `"` `\` and control characters only, short
/// escapes where they exist, lowercase `\u00xx` otherwise).
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The identifier of `value` under `identifier_type` as RFC 8785 canonical
/// JSON: `{"landCode":"NL","type":"…","value":"…"}` (members already in
/// canonical order).
pub fn identifier_json(identifier_type: &str, value: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(48 + value.len()));
    out.push_str("{\"landCode\":\"NL\",\"type\":");
    push_json_string(&mut out, identifier_type);
    out.push_str(",\"value\":");
    push_json_string(&mut out, value);
    out.push('}');
    out
}

/// HKDF-SHA256 (RFC 5869) with no salt: `length`-byte output key material.
pub fn hkdf_sha256(ikm: &[u8], info: &[u8], okm: &mut [u8]) -> Result<(), Error> {
    Hkdf::<Sha256>::new(None, ikm)
        .expand(info, okm)
        .map_err(|_| Error::Encoding)
}

/// The 32-byte OPRF input of a canonical input value for `recipient`.
pub fn oprf_input_of(
    pseudonym_type: PseudonymType,
    canonical_input: &str,
    recipient: &Recipient,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let identifier = identifier_json(pseudonym_type.identifier_type(), canonical_input);
    let mut okm = Zeroizing::new([0u8; 32]);
    hkdf_sha256(
        identifier.as_bytes(),
        recipient.hkdf_info().as_bytes(),
        okm.as_mut(),
    )?;
    Ok(okm)
}

/// Normalises what `pseudonym_type` needs from `identity` and derives its
/// 32-byte OPRF input for `recipient`.
pub fn oprf_input(
    pseudonym_type: PseudonymType,
    identity: &Identity,
    recipient: &Recipient,
    today: CalendarDate,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let input = pseudonym_type.canonical_input(identity, today)?;
    oprf_input_of(pseudonym_type, &input, recipient)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifier_matches_serde_jcs() {
        for value in [
            "999990007",
            "BERGJANS|19800101|2|J",
            "a\"b\\c\u{1}\n\u{7f}é",
        ] {
            let expected = serde_jcs::to_string(&serde_json::json!({
                "value": value, "type": "BSN", "landCode": "NL"
            }))
            .unwrap();
            assert_eq!(identifier_json("BSN", value).as_str(), expected);
        }
    }

    #[test]
    fn recipient_rules() {
        assert!(Recipient::new("oin:00000001234567890000", "nvi").is_ok());
        assert_eq!(
            Recipient::new("", "x").unwrap_err().code(),
            "recipientOrganization.required"
        );
        assert_eq!(
            Recipient::new("a", "x|y").unwrap_err().code(),
            "recipientScope.characters"
        );
        assert_eq!(
            Recipient::new("a", &"x".repeat(129)).unwrap_err().code(),
            "recipientScope.tooLong"
        );
    }
}
