//! The raw identity a form holds: one optional text per [`Field`].

use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::fields::{self, Normalised};
use crate::{CalendarDate, Field, FieldError, Rule};

/// The raw values of the identifying fields as typed, zeroised on drop.
/// An absent field and an empty one are the same: not given.
#[derive(Default)]
pub struct Identity {
    values: [Option<Zeroizing<String>>; Field::ALL.len()],
}

impl Identity {
    /// An identity with no field given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the raw value of `field` (replacing any earlier value).
    pub fn set(&mut self, field: Field, raw: impl Into<String>) {
        if let Some(slot) = self.values.get_mut(field.index()) {
            *slot = Some(Zeroizing::new(raw.into()));
        }
    }

    /// Builder form of [`Identity::set`].
    pub fn with(mut self, field: Field, raw: impl Into<String>) -> Self {
        self.set(field, raw);
        self
    }

    /// The raw value of `field`, if given and not blank.
    pub fn get(&self, field: Field) -> Option<&str> {
        self.values
            .get(field.index())
            .and_then(Option::as_ref)
            .map(|v| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }

    /// The normalised value of `field`; `<field>.required` if not given
    /// (an absent addition normalises to the empty string). A given value,
    /// blank or not, goes through [`fields::normalise`] exactly as typed.
    pub fn normalised(&self, field: Field, today: CalendarDate) -> Result<Normalised, FieldError> {
        let raw = self.values.get(field.index()).and_then(Option::as_ref);
        match raw.map(|v| v.as_str()) {
            Some(raw) => fields::normalise(field, raw, today),
            None if field == Field::HouseNumberAddition => Ok(Zeroizing::new(String::new())),
            None => Err(FieldError::new(field, Rule::Required)),
        }
    }
}

impl core::fmt::Debug for Identity {
    /// Lists which fields are given, never their values.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let given: Vec<&str> = Field::ALL
            .iter()
            .filter(|field| self.get(**field).is_some())
            .map(|field| field.name())
            .collect();
        f.debug_struct("Identity").field("given", &given).finish()
    }
}
