//! Postcode, house number and house-number addition.

use alloc::string::{String, ToString};

use crate::fold::{fold_char, Folded};
use crate::Rule;

/// Longest normalised house-number addition (huisletter plus a toevoeging of
/// up to four characters in the BAG, with one to spare).
pub const MAX_ADDITION: usize = 6;

/// Largest house number (`houseNumber.range` above it).
pub const MAX_HOUSE_NUMBER: u32 = 99_999;

/// Postcode: PC6 `1234AB` (first digit 1–9; letters not SA, SD or SS) or PC4
/// `1234`; spaces and case ignored.
pub(super) fn postcode(value: &str) -> Result<String, Rule> {
    let compact: String = value
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = compact.as_bytes();
    let (digits, letters) = bytes.split_at(bytes.len().min(4));
    let digits_ok = digits.len() == 4
        && digits.iter().all(u8::is_ascii_digit)
        && digits.first().is_some_and(|d| *d != b'0');
    let letters_ok =
        letters.is_empty() || (letters.len() == 2 && letters.iter().all(u8::is_ascii_uppercase));
    if !digits_ok || !letters_ok {
        return Err(Rule::Format);
    }
    if matches!(letters, b"SA" | b"SD" | b"SS") {
        return Err(Rule::ReservedLetters);
    }
    Ok(compact)
}

/// House number: digits only, 1 to 99999; leading zeros are dropped.
pub(super) fn house_number(value: &str) -> Result<String, Rule> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rule::Format);
    }
    let significant = value.trim_start_matches('0');
    if significant.is_empty() || significant.len() > 5 {
        return Err(Rule::Range);
    }
    Ok(significant.to_string())
}

/// House-number addition: letters (folded) and digits, uppercase; spaces,
/// hyphens, dots and slashes dropped; at most [`MAX_ADDITION`] characters.
pub(super) fn addition(value: &str) -> Result<String, Rule> {
    let mut out = String::new();
    for c in value.chars() {
        if c.is_whitespace() || matches!(c, '-' | '.' | '/') {
            continue;
        }
        match fold_char(c) {
            _ if c.is_ascii_digit() => out.push(c),
            Folded::One(a) => out.push(char::from(a)),
            Folded::Two(a, b) => {
                out.push(char::from(a));
                out.push(char::from(b));
            }
            Folded::Mark => {}
            Folded::Unsupported => return Err(Rule::UnsupportedLetter),
            Folded::NotLetter => return Err(Rule::Characters),
        }
        if out.len() > MAX_ADDITION {
            return Err(Rule::TooLong);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes() {
        assert_eq!(postcode("1234 ab").unwrap(), "1234AB");
        assert_eq!(postcode("9999").unwrap(), "9999");
        assert_eq!(postcode("0123AB"), Err(Rule::Format));
        assert_eq!(postcode("1234SS"), Err(Rule::ReservedLetters));
        assert_eq!(postcode("1234A"), Err(Rule::Format));
        assert_eq!(postcode("1234ÄB"), Err(Rule::Format));
    }

    #[test]
    fn numbers_and_additions() {
        assert_eq!(house_number("007").unwrap(), "7");
        assert_eq!(house_number("0"), Err(Rule::Range));
        assert_eq!(house_number("100000"), Err(Rule::Range));
        assert_eq!(house_number("12a"), Err(Rule::Format));
        let max = MAX_HOUSE_NUMBER.to_string();
        assert_eq!(house_number(&max).unwrap(), max);
        let above = (MAX_HOUSE_NUMBER + 1).to_string();
        assert_eq!(house_number(&above), Err(Rule::Range));
        assert_eq!(addition("-a").unwrap(), "A");
        assert_eq!(addition("1 hoog").unwrap(), "1HOOG");
        assert_eq!(addition("bis#"), Err(Rule::Characters));
        assert_eq!(addition("abcdefg"), Err(Rule::TooLong));
    }
}
