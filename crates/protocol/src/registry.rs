//! What the browser submits to the registry, and what the registry answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One temporary pseudonym of a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmittedPseudonym {
    /// Pseudonym type code.
    #[serde(rename = "type")]
    pub pseudonym_type: String,
    /// The temporary pseudonym ([`crate::package::TemporaryPseudonym`], encoded).
    pub temporary_pseudonym: String,
}

/// `POST /api/submissions` body: one pseudonymised record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submission {
    /// The recipient organisation the pseudonyms were made for.
    pub recipient_organization: String,
    /// The recipient scope.
    pub recipient_scope: String,
    /// The method version the browser used.
    pub method_version: u32,
    /// One temporary pseudonym per type, each type at most once.
    pub pseudonyms: Vec<SubmittedPseudonym>,
    /// The clinical fields of the form, by name; never identifying fields.
    pub data: BTreeMap<String, String>,
}

/// `POST /api/submissions` answer (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The registry's id of the stored record.
    pub record_id: i64,
    /// The stored definitive pseudonyms as labels `TYPE:vN:<base64url>`.
    pub pseudonyms: Vec<String>,
}

/// A definitive pseudonym as a registry stores it: type and key version
/// readable from the label `TYPE:vN:<base64url of N>`.
pub fn label(pseudonym_type: &str, key_version: u32, element_b64: &str) -> String {
    format!("{pseudonym_type}:v{key_version}:{element_b64}")
}

/// Names of form fields that identify a patient, English and Dutch; a
/// registry refuses a submission whose `data` has any of them (compared
/// without case, `_` and `-`). `postcode`, `bsn` and `mrn` are the same in
/// both languages.
pub const IDENTIFYING_FIELD_NAMES: &[&str] = &[
    "birthName",
    "birthDate",
    "sex",
    "initial",
    "postcode",
    "houseNumber",
    "houseNumberAddition",
    "bsn",
    "mrn",
    // The Dutch names a form would use.
    "geboortenaam",
    "achternaam",
    "naam",
    "voornaam",
    "voorletter",
    "voorletters",
    "geboortedatum",
    "geslacht",
    "huisnummer",
    "toevoeging",
    "huisnummertoevoeging",
    "adres",
    "straat",
    "woonplaats",
    "burgerservicenummer",
    "patientnummer",
    "patiëntnummer",
    "patientid",
    "ziekenhuisnummer",
];
