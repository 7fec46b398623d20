//! The ten pseudonym types of the Wkz and the canonical input value of each.
//!
//! The canonical input value joins the normalised fields with `|` in the order
//! of the Wkz table: NGGV is `name8|date|sex|initial`, A is
//! `PC6|number|addition` (empty addition when there is none), MRN is
//! `provider|mrn` so that equal numbers at two providers never collide.

use alloc::string::String;

use core::fmt;
use core::str::FromStr;

use zeroize::Zeroizing;

use crate::{CalendarDate, Error, Field, FieldError, Identity, Rule};

/// A pseudonym type of the Wkz (FAQ Q42).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PseudonymType {
    /// BSN.
    B,
    /// Birth name (8 letters), birth date, sex, initial.
    Nggv,
    /// Birth name (4 letters), birth date, sex, initial.
    SNggv,
    /// Birth name (8 letters), birth date, sex.
    Ngg,
    /// Birth name (4 letters), birth date, sex.
    SNgg,
    /// Postcode (PC6), birth date, sex.
    C,
    /// Postcode (PC4), birth date, sex.
    Rgg,
    /// Birth date, sex.
    Gg,
    /// Postcode (PC6), house number, house-number addition.
    A,
    /// Local patient number, scoped to the supplying provider.
    Mrn,
}

impl PseudonymType {
    /// Every type, in the order of the Wkz table.
    pub const ALL: [PseudonymType; 10] = [
        PseudonymType::B,
        PseudonymType::Nggv,
        PseudonymType::SNggv,
        PseudonymType::Ngg,
        PseudonymType::SNgg,
        PseudonymType::C,
        PseudonymType::Rgg,
        PseudonymType::Gg,
        PseudonymType::A,
        PseudonymType::Mrn,
    ];

    /// The type's code as the Wkz writes it (`B`, `NGGV`, `sNGGV`, …).
    pub const fn code(self) -> &'static str {
        match self {
            PseudonymType::B => "B",
            PseudonymType::Nggv => "NGGV",
            PseudonymType::SNggv => "sNGGV",
            PseudonymType::Ngg => "NGG",
            PseudonymType::SNgg => "sNGG",
            PseudonymType::C => "C",
            PseudonymType::Rgg => "RGG",
            PseudonymType::Gg => "GG",
            PseudonymType::A => "A",
            PseudonymType::Mrn => "MRN",
        }
    }

    /// The `type` member of the identifier that is hashed. For B it is `BSN`,
    /// as in the national reference client, so that a BSN pseudonym equals
    /// the national one; the other types use their code.
    pub const fn identifier_type(self) -> &'static str {
        match self {
            PseudonymType::B => "BSN",
            other => other.code(),
        }
    }

    /// The fields the type needs, in the order they are joined.
    pub const fn fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            PseudonymType::B => &[Bsn],
            PseudonymType::Nggv | PseudonymType::SNggv => &[BirthName, BirthDate, Sex, Initial],
            PseudonymType::Ngg | PseudonymType::SNgg => &[BirthName, BirthDate, Sex],
            PseudonymType::C | PseudonymType::Rgg => &[Postcode, BirthDate, Sex],
            PseudonymType::Gg => &[BirthDate, Sex],
            PseudonymType::A => &[Postcode, HouseNumber, HouseNumberAddition],
            PseudonymType::Mrn => &[Provider, Mrn],
        }
    }

    /// How many letters of the birth name the type uses, if any.
    const fn name_letters(self) -> usize {
        match self {
            PseudonymType::Nggv | PseudonymType::Ngg => 8,
            PseudonymType::SNggv | PseudonymType::SNgg => 4,
            _ => usize::MAX,
        }
    }

    /// The canonical input value of this type for `identity`, or the first
    /// field (in join order) that is missing or invalid. Nothing is made from
    /// an identity that lacks an input: the error is the reason.
    pub fn canonical_input(
        self,
        identity: &Identity,
        today: CalendarDate,
    ) -> Result<Zeroizing<String>, FieldError> {
        // Large enough for the longest input (MRN: 64 + 1 + 64) so that no
        // reallocation leaves an unwiped copy behind.
        let mut out = Zeroizing::new(String::with_capacity(160));
        for (i, field) in self.fields().iter().enumerate() {
            let value = identity.normalised(*field, today)?;
            let part: &str = match field {
                Field::BirthName => prefix(&value, self.name_letters()),
                Field::Postcode if self == PseudonymType::Rgg => prefix(&value, 4),
                Field::Postcode if value.len() != 6 => {
                    return Err(FieldError::new(Field::Postcode, Rule::FullPostcodeRequired))
                }
                _ => &value,
            };
            if i > 0 {
                out.push('|');
            }
            out.push_str(part);
        }
        Ok(out)
    }
}

/// The first `n` characters of an ASCII string (all of it when shorter).
fn prefix(value: &str, n: usize) -> &str {
    value.get(..n.min(value.len())).unwrap_or(value)
}

impl fmt::Display for PseudonymType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for PseudonymType {
    type Err = Error;

    /// Parses a type code exactly as [`PseudonymType::code`] writes it.
    fn from_str(code: &str) -> Result<Self, Error> {
        PseudonymType::ALL
            .into_iter()
            .find(|t| t.code() == code)
            .ok_or(Error::UnknownType)
    }
}
