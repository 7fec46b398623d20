//! The CPU work of the TTP: OPRF evaluation under every active key version
//! (type `MRN` with the provider-bound keys, [`crate::binding`]), the JWE
//! claims and their encryption, and rekeying. Synchronous on purpose: the
//! handlers run it on the workers of the evaluation queue
//! ([`crate::queue`]), never on the async executor; a batch is cut into
//! chunks of records there.

use std::collections::BTreeMap;

use curve25519_dalek::scalar::Scalar;
use pseudoform_core::encoding;
use pseudoform_core::oprf::{ServerKey, ELEMENT_BYTES};
use pseudoform_core::PseudonymType;
use pseudoform_protocol::auth::{Act, Cnf};
use pseudoform_protocol::claims::{EvalClaims, Evaluation, RecordClaims};
use pseudoform_protocol::{PROTOCOL_VERSION, SUBJECT_PREFIX};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::jwe::RecipientKey;
use crate::keys::DomainKeys;
use crate::signing::SigningKey;
use crate::state::RecipientState;

/// One blinded input to evaluate, with the request member it came from.
#[derive(Debug)]
pub(crate) struct Item {
    /// The pseudonym type.
    pub pseudonym_type: PseudonymType,
    /// The blinded element as sent (padded base64url).
    pub element: String,
    /// The request member, for an error answer.
    pub field: String,
}

/// The work of one record of a batch: its items, and the digest of its
/// reversible pseudonym, signed into its claims unchanged (nothing is
/// evaluated for it).
#[derive(Debug)]
pub(crate) struct RecordWork {
    /// The blinded inputs, in request order.
    pub items: Vec<Item>,
    /// The request's `reversible`, its form checked.
    pub reversible: Option<String>,
}

/// The 32 bytes of a base64url element (padded or not), or 400 naming `field`.
pub(crate) fn decode(text: &str, field: &str) -> Result<[u8; ELEMENT_BYTES], ApiError> {
    pseudoform_protocol::decode_wire::<ELEMENT_BYTES>(text).map_err(|_| ApiError::BlindedInvalid {
        field: field.to_owned(),
    })
}

/// The current-version subject and the older versions' elements of one
/// blinded element.
fn evaluate_element(
    keys: &DomainKeys,
    blinded: &[u8; ELEMENT_BYTES],
    field: &str,
) -> Result<(String, BTreeMap<String, String>), ApiError> {
    let mut subject = None;
    let mut extra = BTreeMap::new();
    for (version, key) in keys.active() {
        let evaluated = key
            .evaluate(blinded)
            .map_err(|_| ApiError::BlindedInvalid {
                field: field.to_owned(),
            })?;
        let text = encoding::encode(&evaluated);
        if subject.is_none() {
            subject = Some(format!("{SUBJECT_PREFIX}{text}"));
        } else {
            extra.insert(version.to_string(), text);
        }
    }
    let subject = subject.ok_or(ApiError::Internal)?;
    Ok((subject, extra))
}

/// A random 128-bit `jti`, hex: the id of a request's audit row and JWEs.
pub(crate) fn jti() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|_| ApiError::Internal)?;
    Ok(hex::encode(bytes))
}

/// The keys of a request: the domain's, and for type `MRN` those bound to
/// the credential's provider.
#[derive(Debug)]
pub(crate) struct Keys {
    /// The domain's active versions.
    pub domain: std::sync::Arc<DomainKeys>,
    /// `k · t_p` of each version, when the request has an `MRN` item.
    pub mrn: Option<DomainKeys>,
}

impl Keys {
    /// The keys that evaluate type `t`.
    fn of(&self, t: PseudonymType) -> Result<&DomainKeys, ApiError> {
        match (t, &self.mrn) {
            (PseudonymType::Mrn, Some(bound)) => Ok(bound),
            (PseudonymType::Mrn, None) => Err(ApiError::Internal),
            _ => Ok(&self.domain),
        }
    }
}

/// Signs the claims and encrypts the JWS to the recipient (a nested JWT);
/// to a national recipient, encrypts the bare claims.
fn encrypt<T: serde::Serialize>(to: &Audience<'_>, claims: &T) -> Result<String, ApiError> {
    let payload = serde_json::to_vec(claims).map_err(|_| ApiError::Internal)?;
    let plaintext = if to.key.is_national() {
        payload
    } else {
        let jws = to.signer.sign(&payload).map_err(|e| {
            tracing::error!(error = %e, "signing the claims failed");
            ApiError::Internal
        })?;
        jws.into_bytes()
    };
    to.key.encrypt(&plaintext).map_err(|e| {
        tracing::error!(error = %e, "JWE encryption failed");
        ApiError::Internal
    })
}

/// Who a JWE is for, and what the credential says about who asked.
#[derive(Debug)]
pub(crate) struct Audience<'a> {
    /// The recipient organisation.
    pub organization: &'a str,
    /// The recipient scope.
    pub scope: &'a str,
    /// The recipient's public key.
    pub key: &'a RecipientKey,
    /// The TTP's signing key.
    pub signer: &'a SigningKey,
    /// The request's `jti` (of its audit row).
    pub jti: &'a str,
    /// The credential's provider.
    pub provider: Option<&'a str>,
    /// The credential's acting parties.
    pub act: Option<&'a Act>,
    /// The credential's DPoP key.
    pub cnf: Option<&'a Cnf>,
    /// Seconds from `iat` to `exp`.
    pub lifetime: i64,
}

/// What the credential of a request says about who asked: its provider,
/// acting parties and DPoP key.
pub(crate) type Said<'a> = (Option<&'a str>, Option<&'a Act>, Option<&'a Cnf>);

impl<'a> Audience<'a> {
    /// The JWEs for `recipient`, signed by `signer`, valid `lifetime`
    /// seconds, of the request `jti` for `provider` (acting: `act`, key
    /// `cnf`).
    pub fn of(
        recipient: &'a RecipientState,
        signer: &'a SigningKey,
        lifetime: i64,
        jti: &'a str,
        (provider, act, cnf): Said<'a>,
    ) -> Self {
        Audience {
            organization: &recipient.organization,
            scope: &recipient.scope,
            key: &recipient.key,
            signer,
            jti,
            provider,
            act,
            cnf,
            lifetime,
        }
    }
}

/// `POST /oprf/eval`: one element, one JWE of [`EvalClaims`].
pub(crate) fn single(
    to: &Audience<'_>,
    keys: &Keys,
    item: &Item,
    iat: i64,
) -> Result<String, ApiError> {
    let blinded = decode(&item.element, &item.field)?;
    let type_keys = keys.of(item.pseudonym_type)?;
    let (subject, extra_versions) = evaluate_element(type_keys, &blinded, &item.field)?;
    let (version, _) = type_keys.current().ok_or(ApiError::Internal)?;
    // Unsigned national claims name no party: a registry could not tell
    // them from claims anybody with its public key made.
    let national = to.key.is_national();
    let claims = EvalClaims {
        subject,
        aud: to.organization.to_owned(),
        scope: to.scope.to_owned(),
        version: PROTOCOL_VERSION.to_owned(),
        iat,
        exp: iat + to.lifetime,
        extra_versions,
        jti: Some(to.jti.to_owned()),
        key_version: Some(version),
        pseudonym_type: (!national || item.pseudonym_type != PseudonymType::B)
            .then(|| item.pseudonym_type.code().to_owned()),
        provider: to.provider.filter(|_| !national).map(str::to_owned),
        act: to.act.filter(|_| !national).cloned(),
        cnf: to.cnf.filter(|_| !national).cloned(),
    };
    encrypt(to, &claims)
}

fn record(
    to: &Audience<'_>,
    keys: &Keys,
    (index, work): (usize, &RecordWork),
    iat: i64,
) -> Result<String, ApiError> {
    let (version, _) = keys.domain.current().ok_or(ApiError::Internal)?;
    let mut evaluations = Vec::with_capacity(work.items.len());
    for item in &work.items {
        let blinded = decode(&item.element, &item.field)?;
        let type_keys = keys.of(item.pseudonym_type)?;
        let (subject, extra_versions) = evaluate_element(type_keys, &blinded, &item.field)?;
        evaluations.push(Evaluation {
            pseudonym_type: item.pseudonym_type.code().to_owned(),
            subject,
            extra_versions,
        });
    }
    let claims = RecordClaims {
        aud: to.organization.to_owned(),
        scope: to.scope.to_owned(),
        version: PROTOCOL_VERSION.to_owned(),
        iat,
        exp: iat + to.lifetime,
        jti: format!("{}-{index}", to.jti),
        key_version: version,
        evaluations,
        provider: to.provider.map(str::to_owned),
        act: to.act.cloned(),
        cnf: to.cnf.cloned(),
        reversible: work.reversible.clone(),
    };
    encrypt(to, &claims)
}

/// `POST /v1/evaluate`, one chunk: one JWE of [`RecordClaims`] per record,
/// in order; the chunk's records are the request's from index `first` on
/// (each JWE's `jti` is the request's with the record's index). An invalid
/// element fails the chunk (and so the batch); check every element with
/// [`decode`] first, in request order, so that the error names the first
/// invalid item.
pub(crate) fn records(
    to: &Audience<'_>,
    keys: &Keys,
    (first, records): (usize, &[RecordWork]),
    iat: i64,
) -> Result<Vec<String>, ApiError> {
    records
        .iter()
        .enumerate()
        .map(|(i, work)| record(to, keys, (first + i, work), iat))
        .collect()
}

/// The scalar of a key (inside this crate only, for rekeying).
fn scalar_of(key: &ServerKey) -> Result<Zeroizing<Scalar>, ApiError> {
    let bytes = key.to_bytes();
    Option::<Scalar>::from(Scalar::from_canonical_bytes(*bytes))
        .map(Zeroizing::new)
        .ok_or(ApiError::Internal)
}

/// The rekey factor `k_to · k_from⁻¹` as a key: evaluating an element with
/// it moves a pseudonym (blinded or not) from version `from` to `to`.
pub fn rekey_factor(from: &ServerKey, to: &ServerKey) -> Result<ServerKey, ApiError> {
    let k_from = scalar_of(from)?;
    let k_to = scalar_of(to)?;
    let inverse = Zeroizing::new(k_from.invert());
    let factor = Zeroizing::new(*k_to * *inverse);
    let bytes = Zeroizing::new(factor.to_bytes());
    ServerKey::from_bytes(&bytes).map_err(|_| ApiError::Internal)
}

/// `POST /v1/rekey`: `factor·E` for each element, in order; the elements
/// are the request's from index `offset` on (for the error's field).
pub(crate) fn rekey(
    factor: &ServerKey,
    elements: &[String],
    offset: usize,
) -> Result<Vec<String>, ApiError> {
    let fields: Vec<String> = (offset..offset + elements.len())
        .map(|i| format!("blindedPseudonyms[{i}]"))
        .collect();
    let decoded = elements
        .iter()
        .zip(&fields)
        .map(|(e, f)| decode(e, f))
        .collect::<Result<Vec<_>, _>>()?;
    let results: Vec<Result<String, ApiError>> = decoded
        .iter()
        .zip(fields.iter())
        .map(|(element, field)| {
            factor
                .evaluate(element)
                .map(|out| encoding::encode(&out))
                .map_err(|_| ApiError::BlindedInvalid {
                    field: field.to_owned(),
                })
        })
        .collect();
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pseudoform_core::oprf::{blind, unblind, Blind};

    #[test]
    fn rekey_factor_moves_a_pseudonym_between_versions() {
        let k1 = ServerKey::from_uniform_bytes(&[3; 64]).unwrap();
        let k2 = ServerKey::from_uniform_bytes(&[4; 64]).unwrap();
        let r = Blind::from_uniform_bytes(&[5; 64]).unwrap();
        let blinded = blind(b"input", &r).unwrap();
        let n1 = unblind(&r, &k1.evaluate(&blinded).unwrap()).unwrap();
        let n2 = unblind(&r, &k2.evaluate(&blinded).unwrap()).unwrap();
        let factor = rekey_factor(&k1, &k2).unwrap();
        assert_eq!(factor.evaluate(&n1).unwrap(), n2);
        // Through a registry's blind s: s·N1 → factor·s·N1 → N2.
        let s = Blind::from_uniform_bytes(&[6; 64]).unwrap();
        let s_n1 = Blind::from_bytes(&s.to_bytes()).unwrap();
        let sn1 = ServerKey::from_bytes(&s_n1.to_bytes())
            .unwrap()
            .evaluate(&n1)
            .unwrap();
        let moved = rekey(&factor, &[encoding::encode(&sn1)], 0).unwrap();
        let moved = encoding::decode_array::<32>(&moved[0]).unwrap();
        assert_eq!(unblind(&s, &moved).unwrap(), n2);
    }
}
