//! The checks of a [`Submission`] that need no key: it is addressed to this
//! registry and method version, names each allowed pseudonym type once,
//! and its `data` is bounded, well-formed and holds no identifying field.

use std::collections::{BTreeMap, BTreeSet};

use pseudoform_core::PseudonymType;
use pseudoform_protocol::registry::{Submission, IDENTIFYING_FIELD_NAMES};

use crate::error::ReceiveError;

/// Most fields in `data`.
pub const MAX_DATA_FIELDS: usize = 100;
/// Longest `data` key, in characters (`A-Z a-z 0-9 _ -`).
pub const MAX_FIELD_NAME: usize = 64;
/// Longest `data` value, in characters.
pub const MAX_FIELD_VALUE: usize = 4096;
/// The method versions this registry accepts.
pub const SUPPORTED_METHOD_VERSION: u32 = pseudoform_core::METHOD_VERSION;

/// The recipient and method of `submission`, and the number of its
/// pseudonyms (at least one, at most one per type).
pub(crate) fn check_envelope(
    submission: &Submission,
    organization: &str,
    scope: &str,
) -> Result<(), ReceiveError> {
    if submission.recipient_organization != organization {
        return Err(ReceiveError::RecipientMismatch {
            field: "recipientOrganization",
        });
    }
    if submission.recipient_scope != scope {
        return Err(ReceiveError::RecipientMismatch {
            field: "recipientScope",
        });
    }
    if submission.method_version != SUPPORTED_METHOD_VERSION {
        return Err(ReceiveError::UnsupportedMethod);
    }
    if submission.pseudonyms.is_empty() {
        return Err(ReceiveError::NoPseudonyms);
    }
    if submission.pseudonyms.len() > PseudonymType::ALL.len() {
        return Err(ReceiveError::TooManyPseudonyms);
    }
    Ok(())
}

/// The type of each pseudonym of `submission`, in order: known, `allowed`
/// and distinct.
pub(crate) fn check_types(
    submission: &Submission,
    allowed: &BTreeSet<PseudonymType>,
) -> Result<Vec<PseudonymType>, ReceiveError> {
    let mut seen = BTreeSet::new();
    let mut types = Vec::with_capacity(submission.pseudonyms.len());
    for (index, item) in submission.pseudonyms.iter().enumerate() {
        let ty: PseudonymType = item
            .pseudonym_type
            .parse()
            .map_err(|_| ReceiveError::UnknownType { index })?;
        if !allowed.contains(&ty) {
            return Err(ReceiveError::TypeNotAllowed { index });
        }
        if !seen.insert(ty) {
            return Err(ReceiveError::DuplicateType { index });
        }
        types.push(ty);
    }
    Ok(types)
}

/// The `data` checks: bounded, well-formed keys, no identifying field.
pub(crate) fn check_data(data: &BTreeMap<String, String>) -> Result<(), ReceiveError> {
    if data.len() > MAX_DATA_FIELDS {
        return Err(ReceiveError::TooManyFields);
    }
    for (key, value) in data {
        if key.is_empty()
            || key.len() > MAX_FIELD_NAME
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ReceiveError::InvalidFieldName);
        }
        if let Some(name) = identifying_name(key) {
            return Err(ReceiveError::IdentifyingField { name });
        }
        if value.chars().count() > MAX_FIELD_VALUE {
            return Err(ReceiveError::ValueTooLong);
        }
    }
    Ok(())
}

/// The identifying field name `key` is a spelling of: compared without case,
/// `_` and `-` (so `BSN`, `birth_name` and `birth-date` are caught too).
fn identifying_name(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key = squash(key);
    IDENTIFYING_FIELD_NAMES
        .iter()
        .copied()
        .find(|name| squash(name) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifying_names_are_caught_in_any_spelling() {
        assert_eq!(identifying_name("bsn"), Some("bsn"));
        assert_eq!(identifying_name("BSN"), Some("bsn"));
        assert_eq!(identifying_name("birth_name"), Some("birthName"));
        assert_eq!(identifying_name("Birth-Date"), Some("birthDate"));
        assert_eq!(identifying_name("diagnosis"), None);
    }

    #[test]
    fn data_bounds() {
        let mut data = BTreeMap::new();
        data.insert("ok_field-1".to_owned(), "x".repeat(MAX_FIELD_VALUE));
        assert_eq!(check_data(&data), Ok(()));
        data.insert("long".to_owned(), "é".repeat(MAX_FIELD_VALUE + 1));
        assert_eq!(check_data(&data), Err(ReceiveError::ValueTooLong));
        let mut data = BTreeMap::new();
        data.insert("bad key".to_owned(), String::new());
        assert_eq!(check_data(&data), Err(ReceiveError::InvalidFieldName));
        let data: BTreeMap<String, String> = (0..=MAX_DATA_FIELDS)
            .map(|i| (format!("f{i}"), String::new()))
            .collect();
        assert_eq!(check_data(&data), Err(ReceiveError::TooManyFields));
    }
}
