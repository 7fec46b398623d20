//! Sex, canonical as an ISO/IEC 5218 digit: 1 male, 2 female, 0 not known,
//! 9 not applicable. Accepts the digit, Dutch and English words and letters,
//! case-insensitively.

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
    let upper: Vec<Zeroizing<String>> = value
        .split_whitespace()
        .map(|w| Zeroizing::new(w.to_ascii_uppercase()))
        .collect();
    let key = Zeroizing::new(
        upper
            .iter()
            .map(|w| w.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    SPELLINGS
        .iter()
        .find(|(spelling, _)| *spelling == key.as_str())
        .map(|(_, code)| (*code).to_string())
        .ok_or(Rule::UnknownValue)
}
