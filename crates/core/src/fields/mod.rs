//! Validation and normalisation of every identifying field (method v1).
//!
//! [`Field`] names the fields; [`normalise`] is the one entry point: it takes a field, the raw text a
//! clinician typed and today's date, and returns the canonical form or a
//! [`FieldError`] naming the rule. The rules of each field live in their own
//! module; `docs/method.md` states them in prose with known-answer vectors.

mod address;
mod birth_date;
mod name;
mod numbers;
mod sex;

use alloc::string::String;

use core::fmt;

use zeroize::Zeroizing;

use crate::{CalendarDate, FieldError, Rule};

/// An input field of the method: the identifying fields of a form plus the
/// supplying provider that scopes the local patient number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Birth name (geslachtsnaam at birth, with or without particles).
    BirthName,
    /// Birth date.
    BirthDate,
    /// Sex, as ISO/IEC 5218.
    Sex,
    /// Initial of the first given name.
    Initial,
    /// Dutch postcode, PC6 (`1234AB`) or PC4 (`1234`).
    Postcode,
    /// House number, 1 to 99999.
    HouseNumber,
    /// House-number addition (huisletter and toevoeging), may be empty.
    HouseNumberAddition,
    /// Burgerservicenummer.
    Bsn,
    /// Local patient number (medical record number) at the supplying provider.
    Mrn,
    /// Identifier of the supplying provider, which scopes the MRN.
    Provider,
}

impl Field {
    /// Every field, in the order of the method document.
    pub const ALL: [Field; 10] = [
        Field::BirthName,
        Field::BirthDate,
        Field::Sex,
        Field::Initial,
        Field::Postcode,
        Field::HouseNumber,
        Field::HouseNumberAddition,
        Field::Bsn,
        Field::Mrn,
        Field::Provider,
    ];

    /// The field's name in the JS API, the vectors and error codes
    /// (`birthName`, `birthDate`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Field::BirthName => "birthName",
            Field::BirthDate => "birthDate",
            Field::Sex => "sex",
            Field::Initial => "initial",
            Field::Postcode => "postcode",
            Field::HouseNumber => "houseNumber",
            Field::HouseNumberAddition => "houseNumberAddition",
            Field::Bsn => "bsn",
            Field::Mrn => "mrn",
            Field::Provider => "provider",
        }
    }

    /// The field with this API name, if there is one (case-sensitive).
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The position of this field in [`Field::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub use address::MAX_HOUSE_NUMBER;
pub use birth_date::EARLIEST;

/// A normalised value; wiped from memory when dropped.
pub type Normalised = Zeroizing<String>;

/// Longest raw input accepted for any field, in characters. Longer input is
/// refused with `<field>.tooLong` before any other work.
pub const MAX_INPUT_CHARS: usize = 256;

/// The number of characters of `s`, `s.chars().count()`: its bytes that are
/// not UTF-8 continuation bytes (`0b10xx_xxxx`), without the large generic
/// counting code of `Chars::count` (size of the browser module).
fn char_count(s: &str) -> usize {
    s.bytes().filter(|&b| b & 0xC0 != 0x80).count()
}

/// Normalises the raw value of `field` by the rules of method v1.
///
/// `today` bounds birth dates (`birthDate.future`). An empty or
/// whitespace-only value is `<field>.required`, except for
/// `houseNumberAddition`, where it means "no addition" and yields `""`.
pub fn normalise(field: Field, raw: &str, today: CalendarDate) -> Result<Normalised, FieldError> {
    // Cheap bound first (bytes), exact bound next (characters).
    if raw.len() > 4 * MAX_INPUT_CHARS || char_count(raw) > MAX_INPUT_CHARS {
        return Err(FieldError::new(field, Rule::TooLong));
    }
    let value = raw.trim();
    if value.is_empty() {
        return match field {
            Field::HouseNumberAddition => Ok(Zeroizing::new(String::new())),
            _ => Err(FieldError::new(field, Rule::Required)),
        };
    }
    let result = match field {
        Field::BirthName => name::birth_name(value),
        Field::Initial => name::initial(value),
        Field::BirthDate => birth_date::birth_date(value, today),
        Field::Sex => sex::sex(value),
        Field::Postcode => address::postcode(value),
        Field::HouseNumber => address::house_number(value),
        Field::HouseNumberAddition => address::addition(value),
        Field::Bsn => numbers::bsn(value),
        Field::Mrn => numbers::mrn(value),
        Field::Provider => numbers::provider(value),
    };
    result
        .map(Zeroizing::new)
        .map_err(|rule| FieldError::new(field, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_count_equals_chars_count() {
        for s in [
            "",
            "a",
            "van der Berg-Jansen",
            "Öztürk",
            "ĳ\u{301}ẞ",
            "Иванов",
            "日本語",
            "😀 e\u{0}\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
        ] {
            assert_eq!(char_count(s), s.chars().count(), "{s:?}");
        }
        let every: String = (0..0x11_0000)
            .filter_map(char::from_u32)
            .step_by(97)
            .collect();
        assert_eq!(char_count(&every), every.chars().count());
    }

    #[test]
    fn sex_key_equals_uppercase_words_joined() {
        for value in [
            "vrouw",
            "Niet  van\ttoepassing",
            "n.v.t.",
            "not\u{a0}applicable",
            "mÄn",
            "x y",
        ] {
            let joined = value
                .split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect::<alloc::vec::Vec<_>>()
                .join(" ");
            let expected = sex::SPELLINGS
                .iter()
                .find(|(spelling, _)| *spelling == joined)
                .map(|(_, code)| (*code).to_string())
                .ok_or(Rule::UnknownValue);
            assert_eq!(sex::sex(value), expected, "{value:?}");
        }
    }
}
