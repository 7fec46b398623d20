//! Typed errors of the method.
//!
//! Every rejection names the [`Field`] and the [`Rule`] it broke, and has a
//! stable machine-readable code such as `bsn.checksum` or `birthDate.future`.
//! No error type in this crate can carry the rejected value: messages are
//! static strings, so nothing identifying reaches a log through an error.

use alloc::string::String;

use core::fmt;

use crate::Field;

/// A rule of the method that an input can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The field is empty or absent but needed.
    Required,
    /// The input is longer than the field allows.
    TooLong,
    /// The input holds a character the field does not allow (digits in a
    /// name, punctuation in a number, control characters, `|`).
    Characters,
    /// A letter that the method cannot fold to A–Z (a non-Latin script).
    UnsupportedLetter,
    /// After normalisation no letter is left.
    NoLetters,
    /// The input does not have the field's shape.
    Format,
    /// A date that does not exist in the calendar (31 February).
    Calendar,
    /// A birth date after today.
    Future,
    /// A birth date before 1 January 1890.
    TooEarly,
    /// A value that is not one of the field's accepted words or codes.
    UnknownValue,
    /// A postcode with the letter pairs SA, SD or SS, which are never issued.
    ReservedLetters,
    /// A number outside the allowed range (house number 0 or above 99999).
    Range,
    /// A number with the wrong count of digits.
    Length,
    /// A BSN that fails the 11-test.
    Checksum,
    /// A BSN of only zeros.
    Zero,
    /// A pseudonym type needs the full PC6 postcode but only PC4 was given.
    FullPostcodeRequired,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Rule; 16] = [
        Rule::Required,
        Rule::TooLong,
        Rule::Characters,
        Rule::UnsupportedLetter,
        Rule::NoLetters,
        Rule::Format,
        Rule::Calendar,
        Rule::Future,
        Rule::TooEarly,
        Rule::UnknownValue,
        Rule::ReservedLetters,
        Rule::Range,
        Rule::Length,
        Rule::Checksum,
        Rule::Zero,
        Rule::FullPostcodeRequired,
    ];

    /// The rule's name, the second half of an error code.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::TooLong => "tooLong",
            Rule::Characters => "characters",
            Rule::UnsupportedLetter => "unsupportedLetter",
            Rule::NoLetters => "noLetters",
            Rule::Format => "format",
            Rule::Calendar => "calendar",
            Rule::Future => "future",
            Rule::TooEarly => "tooEarly",
            Rule::UnknownValue => "unknownValue",
            Rule::ReservedLetters => "reservedLetters",
            Rule::Range => "range",
            Rule::Length => "length",
            Rule::Checksum => "checksum",
            Rule::Zero => "zero",
            Rule::FullPostcodeRequired => "fullPostcodeRequired",
        }
    }

    /// A short English description of the rule, free of any input value.
    pub const fn description(self) -> &'static str {
        match self {
            Rule::Required => "a value is required",
            Rule::TooLong => "the value is too long",
            Rule::Characters => "the value contains characters that are not allowed",
            Rule::UnsupportedLetter => "the value contains a letter outside the Latin alphabet",
            Rule::NoLetters => "the value contains no letters",
            Rule::Format => "the value does not have the expected format",
            Rule::Calendar => "the date does not exist",
            Rule::Future => "the date lies in the future",
            Rule::TooEarly => "the date lies before 1890",
            Rule::UnknownValue => "the value is not one of the accepted values",
            Rule::ReservedLetters => "the postcode letters SA, SD and SS are never issued",
            Rule::Range => "the number is outside the allowed range",
            Rule::Length => "the number has the wrong number of digits",
            Rule::Checksum => "the number fails the 11-test",
            Rule::Zero => "the number consists of zeros only",
            Rule::FullPostcodeRequired => {
                "the full postcode (four digits and two letters) is needed"
            }
        }
    }
}

/// A field that broke a rule. Carries no value by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldError {
    /// The field that was rejected.
    pub field: Field,
    /// The rule it broke.
    pub rule: Rule,
}

impl FieldError {
    /// A new error for `field` breaking `rule`.
    pub const fn new(field: Field, rule: Rule) -> Self {
        FieldError { field, rule }
    }

    /// The stable code, `<field>.<rule>` (`bsn.checksum`).
    pub fn code(&self) -> String {
        // Concatenation rather than `format!`: no core::fmt in the browser
        // module's reachable code (its size, docs/size.md).
        crate::concat(&[self.field.name(), ".", self.rule.name()])
    }

    /// The English message, `<field>: <rule description>`: the same text as
    /// `to_string()`, made without core::fmt.
    pub fn message(&self) -> String {
        crate::concat(&[self.field.name(), ": ", self.rule.description()])
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for FieldError {}

/// Any error of the method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// An identifying field broke a rule.
    Field(FieldError),
    /// The recipient organisation or scope is malformed.
    Recipient {
        /// `recipientOrganization` or `recipientScope`.
        part: &'static str,
        /// The rule it broke.
        rule: Rule,
    },
    /// A field name that the method does not know.
    UnknownField,
    /// A pseudonym type that the method does not know.
    UnknownType,
    /// Binary data that is not padded base64url of the expected length.
    Encoding,
    /// A length outside what a hash construction allows: an
    /// `expand_message_xmd` output or domain tag, an HKDF output, or a
    /// length-prefixed input of more than 65535 bytes.
    UnsupportedLength,
    /// A group element that does not decode, or is the identity element.
    InvalidElement,
    /// A scalar that does not decode, or is zero.
    InvalidScalar,
    /// The system's random number generator failed.
    RandomUnavailable,
}

impl Error {
    /// The stable machine-readable code (`bsn.checksum`, `type.unknown`, …).
    pub fn code(&self) -> String {
        match self {
            Error::Field(e) => e.code(),
            Error::Recipient { part, rule } => crate::concat(&[part, ".", rule.name()]),
            Error::UnknownField => "field.unknown".into(),
            Error::UnknownType => "type.unknown".into(),
            Error::Encoding => "encoding.base64url".into(),
            Error::UnsupportedLength => "length.unsupported".into(),
            Error::InvalidElement => "oprf.invalidElement".into(),
            Error::InvalidScalar => "oprf.invalidScalar".into(),
            Error::RandomUnavailable => "random.unavailable".into(),
        }
    }

    /// The name of the field the error is about, if it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Field(e) => Some(e.field.name()),
            Error::Recipient { part, .. } => Some(part),
            _ => None,
        }
    }
}

impl Error {
    /// The English message: the same text as `to_string()`, made without
    /// core::fmt (size of the browser module).
    pub fn message(&self) -> String {
        match self {
            Error::Field(e) => e.message(),
            Error::Recipient { part, rule } => crate::concat(&[part, ": ", rule.description()]),
            Error::UnknownField => "unknown field name".into(),
            Error::UnknownType => "unknown pseudonym type".into(),
            Error::Encoding => "not padded base64url of the expected length".into(),
            Error::UnsupportedLength => "a length the hash construction does not support".into(),
            Error::InvalidElement => "not a valid ristretto255 element".into(),
            Error::InvalidScalar => "not a valid non-zero scalar".into(),
            Error::RandomUnavailable => "no secure random numbers available".into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl core::error::Error for Error {}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::Field(e)
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn rule_all_lists_every_rule_once_in_order() {
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(*rule as usize, i, "{}", rule.name());
        }
        assert_eq!(Rule::ALL.len(), Rule::FullPostcodeRequired as usize + 1);
    }
}
