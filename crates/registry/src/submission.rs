//! The checks of a [`Submission`] that need no key: it is addressed to this
//! registry and method version, names each allowed pseudonym type once (as
//! keys of `blindFactors` or in `pseudonyms`), has every type this registry
//! requires, and its `data` is bounded, well-formed and holds no
//! identifying field.

use std::collections::{BTreeMap, BTreeSet};

use pseudoform_core::PseudonymType;
use pseudoform_protocol::registry::{identifying_name, Data, SubmittedPseudonym};

use crate::error::{At, ReceiveError};

/// Most values in `data`: a string counts one, a list its elements (an
/// empty list one).
pub const MAX_DATA_FIELDS: usize = 100;
/// Longest `data` key, in characters (`A-Z a-z 0-9 _ -`).
pub const MAX_FIELD_NAME: usize = 64;
/// Longest `data` value (each element of a list), in characters.
pub const MAX_FIELD_VALUE: usize = 4096;
/// The method versions this registry accepts.
pub const SUPPORTED_METHOD_VERSION: u32 = pseudoform_core::METHOD_VERSION;

/// The recipient and method of `submission`.
pub(crate) fn check_envelope(
    submission: &pseudoform_protocol::registry::Submission,
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
    Ok(())
}

/// At least one pseudonym and at most one per type, in the member `field`.
fn check_count(count: usize, field: &'static str) -> Result<(), ReceiveError> {
    if count == 0 {
        return Err(ReceiveError::NoPseudonyms { field });
    }
    if count > PseudonymType::ALL.len() {
        return Err(ReceiveError::TooManyPseudonyms { field });
    }
    Ok(())
}

/// The type of each pseudonym of the national packaging, in order: known,
/// `allowed` and distinct.
pub(crate) fn pseudonym_types(
    pseudonyms: &[SubmittedPseudonym],
    allowed: &BTreeSet<PseudonymType>,
) -> Result<Vec<PseudonymType>, ReceiveError> {
    check_count(pseudonyms.len(), "pseudonyms")?;
    let mut seen = BTreeSet::new();
    let mut types = Vec::with_capacity(pseudonyms.len());
    for (index, item) in pseudonyms.iter().enumerate() {
        let at = At::Pseudonym(index);
        let ty: PseudonymType = item
            .pseudonym_type
            .parse()
            .map_err(|_| ReceiveError::UnknownType { at })?;
        if !allowed.contains(&ty) {
            return Err(ReceiveError::TypeNotAllowed { at });
        }
        if !seen.insert(ty) {
            return Err(ReceiveError::DuplicateType { at });
        }
        types.push(ty);
    }
    Ok(types)
}

/// The types of the keys of `blindFactors` with their blind factors: known
/// (a key that is none is not echoed) and `allowed`.
pub(crate) fn blind_factor_types<'a>(
    blind_factors: &'a BTreeMap<String, String>,
    allowed: &BTreeSet<PseudonymType>,
) -> Result<BTreeMap<PseudonymType, &'a str>, ReceiveError> {
    check_count(blind_factors.len(), "blindFactors")?;
    let mut types = BTreeMap::new();
    for (code, blind) in blind_factors {
        let ty: PseudonymType = code.parse().map_err(|_| ReceiveError::UnknownType {
            at: At::BlindFactors,
        })?;
        if !allowed.contains(&ty) {
            return Err(ReceiveError::TypeNotAllowed {
                at: At::BlindFactor(ty),
            });
        }
        types.insert(ty, blind.as_str());
    }
    Ok(types)
}

/// Every type of `required` is among `made`; the first one missing (in the
/// order of the Wkz table) otherwise.
pub(crate) fn check_required(
    made: impl IntoIterator<Item = PseudonymType>,
    required: &BTreeSet<PseudonymType>,
) -> Result<(), ReceiveError> {
    let made: BTreeSet<PseudonymType> = made.into_iter().collect();
    match required.difference(&made).next() {
        Some(ty) => Err(ReceiveError::RequiredMissing { ty: *ty }),
        None => Ok(()),
    }
}

/// The `data` checks: bounded, well-formed keys, no identifying field.
pub(crate) fn check_data(data: &Data) -> Result<(), ReceiveError> {
    let values: usize = data.values().map(|v| v.items().len().max(1)).sum();
    if values > MAX_DATA_FIELDS {
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
        if value
            .items()
            .iter()
            .any(|item| item.chars().count() > MAX_FIELD_VALUE)
        {
            return Err(ReceiveError::ValueTooLong);
        }
    }
    Ok(())
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
        use pseudoform_protocol::registry::DataValue;
        let text = |s: &str| DataValue::Text(s.to_owned());
        let list =
            |items: &[&str]| DataValue::List(items.iter().map(|s| (*s).to_owned()).collect());
        let mut data = Data::new();
        data.insert("ok_field-1".to_owned(), text(&"x".repeat(MAX_FIELD_VALUE)));
        data.insert(
            "groep".to_owned(),
            list(&["a", &"y".repeat(MAX_FIELD_VALUE)]),
        );
        data.insert("leeg".to_owned(), list(&[]));
        assert_eq!(check_data(&data), Ok(()));
        data.insert("long".to_owned(), text(&"é".repeat(MAX_FIELD_VALUE + 1)));
        assert_eq!(check_data(&data), Err(ReceiveError::ValueTooLong));
        let mut data = Data::new();
        data.insert(
            "groep".to_owned(),
            list(&["a", &"é".repeat(MAX_FIELD_VALUE + 1)]),
        );
        assert_eq!(check_data(&data), Err(ReceiveError::ValueTooLong));
        let mut data = Data::new();
        data.insert("bad key".to_owned(), text(""));
        assert_eq!(check_data(&data), Err(ReceiveError::InvalidFieldName));
        let data: Data = (0..=MAX_DATA_FIELDS)
            .map(|i| (format!("f{i}"), text("")))
            .collect();
        assert_eq!(check_data(&data), Err(ReceiveError::TooManyFields));
        // A list counts its elements, an empty one as one value.
        let mut data = Data::new();
        let many: Vec<String> = (0..MAX_DATA_FIELDS).map(|i| i.to_string()).collect();
        data.insert("groep".to_owned(), DataValue::List(many));
        assert_eq!(check_data(&data), Ok(()));
        data.insert("meer".to_owned(), list(&[]));
        assert_eq!(check_data(&data), Err(ReceiveError::TooManyFields));
    }

    #[test]
    fn required_types_name_the_first_missing_one() {
        let required: BTreeSet<_> = [PseudonymType::Rgg, PseudonymType::Nggv].into();
        assert_eq!(
            check_required(
                [PseudonymType::Rgg, PseudonymType::Nggv, PseudonymType::Mrn],
                &required
            ),
            Ok(())
        );
        assert_eq!(
            check_required([PseudonymType::Mrn], &required),
            Err(ReceiveError::RequiredMissing {
                ty: PseudonymType::Nggv
            })
        );
        assert_eq!(check_required([], &BTreeSet::new()), Ok(()));
    }
}
