//! Validation and normalisation of every identifying field (method v1).
//!
//! [`normalise`] is the one entry point: it takes a field, the raw text a
//! clinician typed and today's date, and returns the canonical form or a
//! [`FieldError`] naming the rule. The rules of each field live in their own
//! module; `docs/method.md` states them in prose with known-answer vectors.

mod address;
mod birth_date;
mod name;
mod numbers;
mod sex;

use zeroize::Zeroizing;

use crate::{CalendarDate, Field, FieldError, Rule};

/// A normalised value; wiped from memory when dropped.
pub type Normalised = Zeroizing<String>;

/// Longest raw input accepted for any field, in characters. Longer input is
/// refused with `<field>.tooLong` before any other work.
pub const MAX_INPUT_CHARS: usize = 256;

/// Normalises the raw value of `field` by the rules of method v1.
///
/// `today` bounds birth dates (`birthDate.future`). An empty or
/// whitespace-only value is `<field>.required`, except for
/// `houseNumberAddition`, where it means "no addition" and yields `""`.
pub fn normalise(field: Field, raw: &str, today: CalendarDate) -> Result<Normalised, FieldError> {
    // Cheap bound first (bytes), exact bound next (characters).
    if raw.len() > 4 * MAX_INPUT_CHARS || raw.chars().count() > MAX_INPUT_CHARS {
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
