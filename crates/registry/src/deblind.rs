//! De-blinding: from the evaluated element in a JWE and the blind factor of
//! the temporary pseudonym to the definitive pseudonym `N = r⁻¹·Z`, and the
//! labels `TYPE:vN:<base64url of N>` the registry stores. Evaluations under
//! older key versions (`extra_versions`) are de-blinded too, so that records
//! received during a key rotation link to older ones.

use pseudoform_core::encoding;
use pseudoform_core::oprf::{self, Blind};
use pseudoform_core::PseudonymType;
use pseudoform_protocol::registry::label;
use pseudoform_protocol::SUBJECT_PREFIX;
use zeroize::Zeroizing;

use crate::claims::{parse_version, Evaluated};
use crate::error::{At, ReceiveError};
use crate::store::NewPseudonym;

/// The blind factor at `at` of a submission (base64url, padded or not, of a
/// canonical non-zero scalar).
pub(crate) fn decode_blind(text: &str, at: At) -> Result<Blind, ReceiveError> {
    let bytes = Zeroizing::new(
        pseudoform_protocol::decode_wire::<32>(text)
            .map_err(|_| ReceiveError::InvalidBlind { at })?,
    );
    Blind::from_bytes(&bytes).map_err(|_| ReceiveError::InvalidBlind { at })
}

/// `N = r⁻¹·Z` for an evaluated element in padded base64url, bare (as the
/// national service writes `extra_versions` values) or after
/// `pseudonym:eval:`.
fn deblind(blind: &Blind, element: &str, at: At) -> Result<[u8; 32], ReceiveError> {
    let invalid = || ReceiveError::InvalidEvaluation { at };
    let b64 = element.strip_prefix(SUBJECT_PREFIX).unwrap_or(element);
    let z = pseudoform_protocol::decode_wire::<32>(b64).map_err(|_| invalid())?;
    oprf::unblind(blind, &z).map_err(|_| invalid())
}

/// The labels of type `ty` (its blind factor at `at`): the current one
/// first (from `subject`, which must have its `pseudonym:eval:` prefix),
/// then one per older key version.
pub(crate) fn labels(
    ty: PseudonymType,
    evaluated: &Evaluated<'_>,
    blind: &Blind,
    at: At,
) -> Result<Vec<NewPseudonym>, ReceiveError> {
    let subject = evaluated
        .subject
        .strip_prefix(SUBJECT_PREFIX)
        .ok_or(ReceiveError::InvalidEvaluation { at })?;
    let stored = |key_version: u32, element: &str, is_current: bool| {
        let n = deblind(blind, element, at)?;
        Ok(NewPseudonym {
            pseudonym_type: ty.code().to_owned(),
            key_version,
            label: label(ty.code(), key_version, &encoding::encode(&n)),
            is_current,
        })
    };
    let mut labels = vec![stored(evaluated.key_version, subject, true)?];
    for (version, element) in evaluated.extra_versions {
        let version = parse_version(version)
            .filter(|v| *v != evaluated.key_version)
            .ok_or(ReceiveError::InvalidClaims { at })?;
        labels.push(stored(version, element, false)?);
    }
    Ok(labels)
}
