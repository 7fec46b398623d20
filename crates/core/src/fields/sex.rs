//! Sex, canonical as an ISO/IEC 5218 digit: 1 male, 2 female, 0 not known,
//! 9 not applicable. Accepts the digit, Dutch and English words and letters,
//! case-insensitively.

use alloc::string::{String, ToString};

use zeroize::Zeroizing;

use crate::Rule;

/// Accepted spellings (uppercase, inner spaces collapsed) and their code.
pub const SPELLINGS: &[(&str, &str)] = &[
    ("1", "1"),
    ("M", "1"),
    ("MAN", "1"),
    ("MANNELIJK", "1"),
    ("MALE", "1"),
    ("2", "2"),
    ("V", "2"),
    ("VROUW", "2"),
    ("VROUWELIJK", "2"),
    ("F", "2"),
    ("FEMALE", "2"),
    ("0", "0"),
    ("O", "0"),
    ("X", "0"),
    ("U", "0"),
    ("ONBEKEND", "0"),
    ("UNKNOWN", "0"),
    ("9", "9"),
    ("NVT", "9"),
    ("N.V.T.", "9"),
    ("NIET VAN TOEPASSING", "9"),
    ("NOT APPLICABLE", "9"),
];

/// Normalises a sex value (already trimmed, non-empty).
pub(super) fn sex(value: &str) -> Result<String, Rule> {
    // The words in ASCII uppercase joined by one space, built in place: the
    // capacity (the input's length) is never exceeded, so no reallocation
    // leaves a copy, and no join code reaches the browser module.
    let mut key = Zeroizing::new(String::with_capacity(value.len()));
    for word in value.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.chars().map(|c| c.to_ascii_uppercase()));
    }
    SPELLINGS
        .iter()
        .find(|(spelling, _)| *spelling == key.as_str())
        .map(|(_, code)| (*code).to_string())
        .ok_or(Rule::UnknownValue)
}
