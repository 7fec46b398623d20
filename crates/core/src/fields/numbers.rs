//! BSN, local patient number (MRN) and provider identifier.

use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::Rule;

/// Longest MRN and provider identifier, in characters.
pub const MAX_IDENTIFIER: usize = 64;

/// BSN: nine digits (eight get a leading zero), dots and spaces ignored;
/// not all zeros; passes the 11-test.
pub(super) fn bsn(value: &str) -> Result<String, Rule> {
    // Capacity for the digits and a leading zero: no reallocation leaves a copy.
    let mut digits = Zeroizing::new(Vec::<u8>::with_capacity(11));
    for c in value.chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            '.' => {}
            c if c.is_whitespace() => {}
            _ => return Err(Rule::Format),
        }
        if digits.len() > 9 {
            return Err(Rule::Length);
        }
    }
    if digits.len() == 8 {
        digits.insert(0, 0);
    }
    if digits.len() != 9 {
        return Err(Rule::Length);
    }
    if digits.iter().all(|d| *d == 0) {
        return Err(Rule::Zero);
    }
    // 11-test: 9·d1 + 8·d2 + … + 2·d8 − 1·d9 ≡ 0 (mod 11).
    let sum: i32 = digits
        .iter()
        .zip([9, 8, 7, 6, 5, 4, 3, 2, -1])
        .map(|(d, w)| i32::from(*d) * w)
        .sum();
    if sum.rem_euclid(11) != 0 {
        return Err(Rule::Checksum);
    }
    Ok(digits.iter().map(|d| char::from(b'0' + d)).collect())
}

fn visible_ascii(value: &str) -> Result<String, Rule> {
    let out: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if !out.chars().all(|c| c.is_ascii_graphic() && c != '|') {
        return Err(Rule::Characters);
    }
    // All visible ASCII by now: bytes are characters.
    if out.len() > MAX_IDENTIFIER {
        return Err(Rule::TooLong);
    }
    Ok(out)
}

/// MRN: whitespace removed; visible ASCII except `|`; case kept.
pub(super) fn mrn(value: &str) -> Result<String, Rule> {
    visible_ascii(value)
}

/// Provider identifier (URA, AGB or OIN, with or without a prefix): visible
/// ASCII except `|`, no inner whitespace; case kept.
pub(super) fn provider(value: &str) -> Result<String, Rule> {
    if value.chars().any(char::is_whitespace) {
        return Err(Rule::Characters);
    }
    visible_ascii(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsns() {
        assert_eq!(bsn("999990007").unwrap(), "999990007");
        assert_eq!(bsn("9999.90.007").unwrap(), "999990007");
        assert_eq!(bsn("999990008"), Err(Rule::Checksum));
        assert_eq!(bsn("000000000"), Err(Rule::Zero));
        assert_eq!(bsn("12345"), Err(Rule::Length));
        assert_eq!(bsn("1234567890"), Err(Rule::Length));
        assert_eq!(bsn("99999000a"), Err(Rule::Format));
    }

    #[test]
    fn eight_digit_bsn_gets_leading_zero() {
        // 012345672: 0·9+1·8+2·7+3·6+4·5+5·4+6·3+7·2 = 112 = 10·11 + 2 → last digit 2.
        assert_eq!(bsn("12345672").unwrap(), "012345672");
    }

    #[test]
    fn identifiers() {
        assert_eq!(mrn(" 12 34-5 ").unwrap(), "1234-5");
        assert_eq!(mrn("a|b"), Err(Rule::Characters));
        assert_eq!(provider("ura:12345678").unwrap(), "ura:12345678");
        assert_eq!(provider("ura 1"), Err(Rule::Characters));
    }
}
