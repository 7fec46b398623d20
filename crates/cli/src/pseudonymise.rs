//! The local work on a chunk of rows, pure and blocking (no I/O): blinding
//! each valid row's types with the method's core ([`prepare_rows`]), and
//! sealing each record's blind factors to the registry once the TTP has
//! evaluated them ([`submissions_of`]). Both run on the blocking pool, so
//! the chunks in flight use every core.

use std::collections::BTreeMap;

use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::Blind;
use pseudoform_core::preparation::{prepare, Outcome};
use pseudoform_core::{CalendarDate, Error, PseudonymType, Recipient};
use pseudoform_protocol::registry::{
    record_digest, BlindFactorsPlaintext, Data, Submission, BLIND_FACTORS_CTY,
};
use pseudoform_protocol::ttp::{BatchRecord, BlindedItem};
use zeroize::Zeroize;

use crate::connection::RecipientKey;
use crate::rows::{Problem, Row};

/// A row ready for the TTP: its blinded items and the blinds to seal.
#[derive(Debug)]
pub struct PreparedRow {
    /// The row number.
    pub row: u64,
    /// What goes to the TTP: blinded elements only.
    pub request: BatchRecord,
    /// The blind of each type (wiped on drop).
    pub blinds: Vec<(PseudonymType, Blind)>,
    /// The clinical data.
    pub data: Data,
    /// Types not made because a field they need is not given (not required).
    pub skipped: Vec<PseudonymType>,
}

/// What became of a row before the TTP.
#[derive(Debug)]
pub enum Local {
    /// Ready for the TTP.
    Prepared(PreparedRow),
    /// The patient objects.
    OptedOut(u64),
    /// Refused, with its problems.
    Refused(u64, Vec<Problem>),
}

/// Fills 64 bytes from the system's CSPRNG.
pub fn system_random(bytes: &mut [u8; 64]) -> Result<(), Error> {
    getrandom::getrandom(bytes).map_err(|_| Error::RandomUnavailable)
}

/// Blinds every valid row of `rows` for `recipient`.
pub fn prepare_rows(
    rows: Vec<(u64, Row)>,
    recipient: &Recipient,
    types: &[PseudonymType],
    today: CalendarDate,
) -> Vec<Local> {
    rows.into_iter()
        .map(|(row, read)| match read {
            Row::OptedOut => Local::OptedOut(row),
            Row::Refused(problems) => Local::Refused(row, problems),
            Row::Valid { identity, data } => {
                match prepare(&identity, recipient, types, today, system_random) {
                    Err(e) => Local::Refused(
                        row,
                        vec![Problem {
                            field: e.field().map(str::to_owned),
                            code: e.code(),
                        }],
                    ),
                    Ok(outcomes) => {
                        let mut items = Vec::new();
                        let mut blinds = Vec::new();
                        let mut skipped = Vec::new();
                        for outcome in outcomes {
                            match outcome {
                                Outcome::Prepared(item) => {
                                    items.push(BlindedItem {
                                        pseudonym_type: item.pseudonym_type.code().to_owned(),
                                        blinded_input: encode(&item.blinded_input),
                                    });
                                    blinds.push((item.pseudonym_type, item.blind));
                                }
                                Outcome::Skipped { pseudonym_type, .. } => {
                                    skipped.push(pseudonym_type)
                                }
                            }
                        }
                        if items.is_empty() {
                            // Nothing to pseudonymise: the reason of the first type.
                            return Local::Refused(
                                row,
                                vec![Problem {
                                    field: None,
                                    code: "pseudonyms.none".into(),
                                }],
                            );
                        }
                        Local::Prepared(PreparedRow {
                            row,
                            request: BatchRecord {
                                items,
                                reversible: None,
                            },
                            blinds,
                            data,
                            skipped,
                        })
                    }
                }
            }
        })
        .collect()
}

/// Why a record could not be sealed.
#[derive(Debug, thiserror::Error)]
#[error("the blind factors cannot be sealed to the registry's key: {0}")]
pub struct SealError(String);

/// `encryptedBlindFactors`: the blind factors sealed to the registry's key
/// (compact JWE, `RSA-OAEP-256`, `A256GCM`, `kid`, `cty` JSON), bound to
/// `record` by its digest — exactly what the browser sends.
pub fn seal(
    key: &RecipientKey,
    blinds: &[(PseudonymType, Blind)],
    record: &str,
) -> Result<String, SealError> {
    let blind_factors: BTreeMap<String, String> = blinds
        .iter()
        .map(|(t, b)| (t.code().to_owned(), encode(b.to_bytes().as_ref())))
        .collect();
    let mut plaintext = serde_json::to_vec(&BlindFactorsPlaintext {
        blind_factors,
        rec: record_digest(record),
    })
    .map_err(|e| SealError(e.to_string()))?;
    let mut header = josekit::jwe::JweHeader::new();
    header.set_content_encryption(pseudoform_protocol::JWE_ENC_A256GCM);
    header.set_content_type(BLIND_FACTORS_CTY);
    header.set_key_id(&key.kid);
    let sealed = josekit::jwe::serialize_compact(&plaintext, &header, &key.encrypter)
        .map_err(|e| SealError(e.to_string()));
    plaintext.zeroize();
    sealed
}

/// The submissions of `rows`, whose record JWEs the TTP returned in
/// `records` (same order), each with its blind factors sealed.
pub fn submissions_of(
    rows: Vec<PreparedRow>,
    records: Vec<String>,
    key: &RecipientKey,
    recipient: &Recipient,
) -> Result<Vec<(u64, Submission, Vec<PseudonymType>)>, SealError> {
    rows.into_iter()
        .zip(records)
        .map(|(row, record)| {
            let sealed = seal(key, &row.blinds, &record)?;
            Ok((
                row.row,
                Submission {
                    recipient_organization: recipient.organization().to_owned(),
                    recipient_scope: recipient.scope().to_owned(),
                    method_version: pseudoform_core::METHOD_VERSION,
                    record: Some(record),
                    blind_factors: None,
                    encrypted_blind_factors: Some(sealed),
                    pseudonyms: None,
                    reversible: None,
                    data: row.data,
                },
                row.skipped,
            ))
        })
        .collect()
}
