//! A processor's batch delivery (`POST /api/batches`): up to
//! [`MAX_SUBMISSIONS_PER_BATCH`] submissions under one submitter proof,
//! each checked and stored exactly as `POST /api/submissions` would
//! ([`Receiver::open_submission`], [`Receiver::prepare_write`]: the same
//! checks, the same codes), each all or nothing, with one result per
//! submission.
//!
//! In order:
//! 1. the batch's shape: an object of exactly `batchId`
//!    ([`is_batch_id`]) and `submissions` (1 to
//!    [`MAX_SUBMISSIONS_PER_BATCH`], each a [`Submission`]), every one
//!    addressed to this registry — else the whole batch is refused
//!    ([`BatchError`]), nothing stored;
//! 2. its one proof (`DPoP`, `htu` `{public_url}/api/batches`, `rec` the
//!    [`batch_rec`] of the submissions' `rec`s), verified and used once
//!    before any RSA work — a wrong proof refuses the whole batch;
//! 3. each submission opened and de-blinded; one whose claims bind it to
//!    another key than the proof's is refused `submitter.wrongKey`, one
//!    bound to none as `POST /api/submissions` would (`submitter.unbound`
//!    where a proof is required); a bound one in a batch without a proof
//!    makes the whole batch `submitter.missingProof`;
//! 4. idempotency: the store keeps (provider of the record's signed
//!    claims, `batchId`, index) → the first receipt ([`Store::batch_item`]).
//!    An item found there with the same definitive pseudonyms and data is
//!    `alreadyStored` with that receipt (the batch resent after a crash,
//!    even re-pseudonymised with new JWEs); with other ones it is refused
//!    `batch.itemConflict`. A resend of the very same submission is
//!    answered its first receipt as always. The batch's new records are
//!    written in one transaction (one commit for the batch); if it fails —
//!    a concurrent resend stored one of them first — each is written on its
//!    own and answered as above.
//!
//! [`Store::batch_item`]: crate::store::Store::batch_item

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::registry::{
    batch_rec, is_batch_id, submission_rec, BatchItemResult, BatchItemStatus, BatchReceipt,
    Receipt, Submission, MAX_SUBMISSIONS_PER_BATCH,
};
use pseudoform_protocol::ErrorBody;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ReceiveError;
use crate::receiver::{OpenedSubmission, Pending, Receiver, Write};
use crate::store::BatchItem;
use crate::submission::check_envelope;
use crate::submitter::SubmitterError;

/// The code of an item whose batch and index hold another record.
pub const ITEM_CONFLICT: &str = "batch.itemConflict";

/// A refusal of a whole batch: nothing of it is stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// 422 `batch.shape`: not a batch (`field`: `batchId`, `submissions` or
    /// `submissions[i]`).
    #[error("the body is not a batch of submissions")]
    Shape {
        /// The member that is wrong.
        field: String,
    },
    /// 413 `batch.tooLarge`: more submissions (or bytes) than allowed.
    #[error("the batch is too large")]
    TooLarge,
    /// 422 `recipient.mismatch`: a submission is addressed to another
    /// registry.
    #[error("a submission of the batch is addressed to another registry")]
    Recipient {
        /// `submissions[i].recipientOrganization` or `….recipientScope`.
        field: String,
    },
    /// 401 (or 503) `submitter.*`: the batch's proof is missing or wrong.
    #[error(transparent)]
    Submitter(SubmitterError),
    /// 500 `internal`: the store failed; items stored before it stay, and
    /// a resend answers them `alreadyStored`.
    #[error("the registry failed")]
    Storage,
}

impl BatchError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            BatchError::Shape { .. } => "batch.shape",
            BatchError::TooLarge => "batch.tooLarge",
            BatchError::Recipient { .. } => "recipient.mismatch",
            BatchError::Submitter(e) => e.code(),
            BatchError::Storage => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            BatchError::Shape { .. } | BatchError::Recipient { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            BatchError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BatchError::Submitter(e) => e.status(),
            BatchError::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem answer.
    pub fn to_body(&self) -> ErrorBody {
        let body = ErrorBody::new(self.code(), &self.to_string());
        match self {
            BatchError::Shape { field } | BatchError::Recipient { field } => body.with_field(field),
            BatchError::Submitter(e) => match e.field() {
                Some(field) => body.with_field(field),
                None => body,
            },
            BatchError::TooLarge | BatchError::Storage => body,
        }
    }
}

impl IntoResponse for BatchError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.to_body())).into_response()
    }
}

/// A batch whose shape passed: its id and submissions.
struct Parsed {
    batch_id: String,
    submissions: Vec<Submission>,
}

/// Step 1: the batch's shape, from its JSON.
fn parse(body: Value, organization: &str, scope: &str) -> Result<Parsed, BatchError> {
    let shape = |field: &str| BatchError::Shape {
        field: field.to_owned(),
    };
    let Value::Object(mut members) = body else {
        return Err(shape("submissions"));
    };
    let batch_id = match members.remove("batchId") {
        Some(Value::String(id)) if is_batch_id(&id) => id,
        _ => return Err(shape("batchId")),
    };
    let Some(Value::Array(items)) = members.remove("submissions") else {
        return Err(shape("submissions"));
    };
    if !members.is_empty() || items.is_empty() {
        return Err(shape("submissions"));
    }
    if items.len() > MAX_SUBMISSIONS_PER_BATCH {
        return Err(BatchError::TooLarge);
    }
    let mut submissions = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let submission: Submission =
            serde_json::from_value(item).map_err(|_| shape(&format!("submissions[{index}]")))?;
        if let Err(ReceiveError::RecipientMismatch { field }) =
            check_envelope(&submission, organization, scope)
        {
            return Err(BatchError::Recipient {
                field: format!("submissions[{index}].{field}"),
            });
        }
        submissions.push(submission);
    }
    Ok(Parsed {
        batch_id,
        submissions,
    })
}

/// The result of a refused item.
fn refused(index: usize, code: &str, field: Option<String>) -> BatchItemResult {
    BatchItemResult {
        index,
        status: BatchItemStatus::Refused,
        record_id: None,
        pseudonyms: None,
        code: Some(code.to_owned()),
        field,
    }
}

/// The result of a stored item.
fn receipted(index: usize, status: BatchItemStatus, receipt: Receipt) -> BatchItemResult {
    BatchItemResult {
        index,
        status,
        record_id: Some(receipt.record_id),
        pseudonyms: Some(receipt.pseudonyms),
        code: None,
        field: None,
    }
}

/// The hex SHA-256 of a record's data as stored.
pub(crate) fn data_digest(submission: &Submission) -> String {
    serde_json::to_vec(&submission.data)
        .map(|bytes| hex::encode(Sha256::digest(bytes)))
        .unwrap_or_default()
}

impl Receiver {
    /// Checks and stores a batch (its JSON `body`) with the request's
    /// `DPoP` header `proof`, at `now`: one result per submission, or the
    /// refusal of the whole batch.
    pub fn receive_batch(
        &self,
        body: Value,
        proof: Option<&str>,
        now: i64,
    ) -> Result<BatchReceipt, BatchError> {
        let Parsed {
            batch_id,
            submissions,
        } = parse(body, self.organization(), self.scope())?;

        // Step 2: the one proof, before any RSA work.
        let proof_key = match (self.submitter(), proof) {
            (Some(check), Some(proof)) => {
                let recs: Vec<String> = submissions.iter().map(submission_rec).collect();
                let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
                Some(
                    check
                        .check_batch(proof, &batch_rec(&recs), now)
                        .map_err(BatchError::Submitter)?,
                )
            }
            _ => None,
        };

        // Step 3: each opened, its key checked.
        let mut opened: Vec<Result<OpenedSubmission, ReceiveError>> = submissions
            .into_iter()
            .map(|s| self.open_submission(s))
            .collect();
        if let Some(check) = self.submitter() {
            for item in &mut opened {
                let Ok(submission) = item else { continue };
                let checked = match check.key_of(&submission.bound_keys()) {
                    Ok(None) => Ok(()),
                    Ok(Some(jkt)) => match &proof_key {
                        Some(key) if key == jkt => Ok(()),
                        Some(_) => Err(SubmitterError::WrongKey),
                        None => return Err(BatchError::Submitter(SubmitterError::MissingProof)),
                    },
                    Err(err) => Err(err),
                };
                if let Err(err) = checked {
                    *item = Err(ReceiveError::Submitter(err));
                }
            }
        }

        // Step 4: each stored once; the batch's new records in one
        // transaction (one commit, not one per record), or, if that fails
        // (a concurrent resend stored one of them first), each on its own.
        let mut results: Vec<Option<BatchItemResult>> = Vec::with_capacity(opened.len());
        let mut new = Vec::new();
        for (index, item) in opened.into_iter().enumerate() {
            let result = match item {
                Ok(submission) => self.check_item(&batch_id, index, submission, now, &mut new)?,
                Err(err) => Some(refused(index, err.code(), err.field())),
            };
            results.push(result);
        }
        let written = self.store().insert_records(
            new.iter()
                .map(|(_, item, pending)| pending.record(now, Some(item)))
                .collect(),
            self.purge_before(now),
        );
        match written {
            Ok(ids) if ids.len() == new.len() => {
                for ((index, _, pending), id) in new.iter().zip(ids) {
                    if let Some(slot) = results.get_mut(*index) {
                        *slot = Some(receipted(
                            *index,
                            BatchItemStatus::Stored,
                            pending.receipt(id),
                        ));
                    }
                }
            }
            _ => {
                for (index, item, pending) in &new {
                    let result = self.write_item(item, *index, pending, now)?;
                    if let Some(slot) = results.get_mut(*index) {
                        *slot = Some(result);
                    }
                }
            }
        }
        let results = results
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                r.unwrap_or_else(|| refused(index, ReceiveError::Storage.code(), None))
            })
            .collect();
        Ok(BatchReceipt { batch_id, results })
    }

    /// Checks one opened item of a batch: its answer if it was stored
    /// before (under this batch and index, or as the very same submission)
    /// or is refused now; `None` if it is new, with its record added to
    /// `new` for the batch's transaction.
    fn check_item(
        &self,
        batch_id: &str,
        index: usize,
        submission: OpenedSubmission,
        now: i64,
        new: &mut Vec<(usize, BatchItem, Box<Pending>)>,
    ) -> Result<Option<BatchItemResult>, BatchError> {
        let item = BatchItem {
            provider: submission.provider().unwrap_or_default().to_owned(),
            batch_id: batch_id.to_owned(),
            index: i64::try_from(index).unwrap_or(i64::MAX),
            data_digest: data_digest(&submission.submission),
        };
        if let Some(result) = self.stored_item(&item, submission.labels(), index)? {
            return Ok(Some(result));
        }
        match self.prepare_write(submission, now) {
            Ok(Write::Known(receipt)) => Ok(Some(receipted(
                index,
                BatchItemStatus::AlreadyStored,
                receipt,
            ))),
            Ok(Write::New(pending)) => {
                new.push((index, item, pending));
                Ok(None)
            }
            Err(ReceiveError::Storage) => Err(BatchError::Storage),
            Err(err) => Ok(Some(refused(index, err.code(), err.field()))),
        }
    }

    /// Writes one new item of a batch on its own (when the batch's
    /// transaction failed), or answers it from its first time.
    fn write_item(
        &self,
        item: &BatchItem,
        index: usize,
        pending: &Pending,
        now: i64,
    ) -> Result<BatchItemResult, BatchError> {
        let labels = pending.labels();
        if let Some(result) = self.stored_item(item, labels, index)? {
            return Ok(result);
        }
        match self.write_pending(pending, now, Some(item)) {
            Ok((receipt, true)) => Ok(receipted(index, BatchItemStatus::Stored, receipt)),
            Ok((receipt, false)) => Ok(receipted(index, BatchItemStatus::AlreadyStored, receipt)),
            // A concurrent resend of the batch stored this item first.
            Err(ReceiveError::Replayed) => Ok(self
                .stored_item(item, labels, index)?
                .unwrap_or_else(|| refused(index, ReceiveError::Replayed.code(), None))),
            Err(ReceiveError::Storage) => Err(BatchError::Storage),
            Err(err) => Ok(refused(index, err.code(), err.field())),
        }
    }

    /// The answer of an item stored before under the same batch and index:
    /// `alreadyStored` with its first receipt if its definitive pseudonyms
    /// (`labels`) and data are the same, `batch.itemConflict` if not.
    fn stored_item(
        &self,
        item: &BatchItem,
        labels: &[String],
        index: usize,
    ) -> Result<Option<BatchItemResult>, BatchError> {
        let failed = |what: &str| {
            tracing::error!(what, "reading a batch item failed");
            BatchError::Storage
        };
        let Some(stored) = self
            .store()
            .batch_item(&item.provider, &item.batch_id, item.index)
            .map_err(|_| failed("store"))?
        else {
            return Ok(None);
        };
        let receipt: Receipt =
            serde_json::from_str(&stored.receipt).map_err(|_| failed("receipt"))?;
        Ok(Some(
            if receipt.pseudonyms == labels && stored.data_digest == item.data_digest {
                receipted(index, BatchItemStatus::AlreadyStored, receipt)
            } else {
                refused(index, ITEM_CONFLICT, None)
            },
        ))
    }
}
