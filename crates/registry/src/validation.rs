//! Validation requests and withdrawals: the registry asks a supplying
//! provider about records, the provider answers per record, and withdraws
//! records of a patient who objects.
//!
//! The registry selects records that carry a reversible pseudonym (type
//! `R`, [`crate::store::NewReversible`]) and makes one request per supplying
//! provider ([`Store::create_requests`]). The provider, authenticated by a
//! TTP validate token ([`crate::provider_auth`]), lists its own requests
//! with the records' clinical data and their opaque reversible pseudonyms
//! ([`Store::requests_of`]), opens them on its side (the registry cannot),
//! and answers `confirm`, `correct` (with a correction) or `withdraw` per
//! record ([`Store::answer`]); the latest answer of a record wins. A
//! `withdraw` answer, or a withdrawal through [`Store::withdraw`], marks
//! the record withdrawn: `GET /api/records` leaves it out from then on.
//!
//! Every step writes a row to `validation_audit` ([`AuditEntry`]): the
//! event, the provider, the acting person, the request and record ids and
//! the answer — never a ciphertext, a correction or anything identifying
//! (the registry never has the number).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::registry::{Data, ReversibleEnvelope, REVERSIBLE_TYPE};
use pseudoform_protocol::ErrorBody;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::store::{record_state, Store};
use crate::view::rfc3339;

/// Longest `question` of a validation request, in characters.
pub const MAX_QUESTION_CHARS: usize = 500;
/// Longest `correction` of an answer, in characters.
pub const MAX_CORRECTION_CHARS: usize = 500;
/// Most record ids in one request body.
pub const MAX_RECORD_IDS: usize = 1000;
/// Most records one `GET /api/provider-records` answers (its `limit`).
pub const MAX_PROVIDER_RECORDS: u32 = 1000;
/// Most requests `GET /api/validation-requests` lists (newest first).
pub const MAX_LISTED_REQUESTS: u32 = 500;

/// The audit events.
pub mod event {
    /// The registry made a request.
    pub const REQUEST_CREATED: &str = "request.created";
    /// A provider listed its requests (one row per request).
    pub const REQUEST_LISTED: &str = "request.listed";
    /// A provider answered about a record.
    pub const ANSWER_RECORDED: &str = "answer.recorded";
    /// A provider listed its records with a reversible pseudonym.
    pub const RECORDS_LISTED: &str = "records.listed";
    /// A record was withdrawn.
    pub const RECORD_WITHDRAWN: &str = "record.withdrawn";
}

/// Why a validation call was refused. Never carries a request value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// No record ids (or no answers).
    #[error("the request names no records")]
    Empty {
        /// `recordIds` or `answers`.
        field: &'static str,
    },
    /// More record ids than [`MAX_RECORD_IDS`].
    #[error("the request names too many records")]
    TooMany {
        /// `recordIds` or `answers`.
        field: &'static str,
    },
    /// A record this registry does not hold (or withdrew), or one not in
    /// the request.
    #[error("a record is unknown")]
    UnknownRecord {
        /// `recordIds` or `answers[i].recordId`.
        field: String,
    },
    /// An answer other than `withdraw` to a record already withdrawn: the
    /// registry no longer processes it, so it is not confirmed or
    /// corrected afterwards (a repeated `withdraw`, a retry, is accepted).
    #[error("the record is withdrawn")]
    Withdrawn {
        /// `answers[i].recordId`.
        index: usize,
    },
    /// A record without a reversible pseudonym (or a supplying provider):
    /// nobody can be asked about it.
    #[error("a record has no reversible pseudonym")]
    NotReversible,
    /// A request or record of another provider.
    #[error("the request or record is another provider's")]
    NotYours {
        /// `id` or `recordIds`.
        field: &'static str,
    },
    /// No request with this id.
    #[error("no such validation request")]
    UnknownRequest,
    /// `question` is longer than [`MAX_QUESTION_CHARS`].
    #[error("the question is too long")]
    QuestionTooLong,
    /// A `correction` is longer than [`MAX_CORRECTION_CHARS`].
    #[error("the correction is too long")]
    CorrectionTooLong {
        /// Which answer.
        index: usize,
    },
    /// The body is not of the endpoint's shape.
    #[error("the body is not valid for this endpoint")]
    Malformed,
    /// A query parameter is invalid.
    #[error("a query parameter is invalid")]
    InvalidQuery {
        /// Its name.
        field: &'static str,
    },
    /// The store failed; nothing was changed.
    #[error("the registry failed; nothing was changed")]
    Storage,
}

impl ValidationError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ValidationError::Empty { .. } => "validation.empty",
            ValidationError::TooMany { .. } => "validation.tooMany",
            ValidationError::UnknownRecord { .. } => "validation.unknownRecord",
            ValidationError::Withdrawn { .. } => "validation.withdrawn",
            ValidationError::NotReversible => "validation.notReversible",
            ValidationError::NotYours { .. } => "validation.notYours",
            ValidationError::UnknownRequest => "validation.unknownRequest",
            ValidationError::QuestionTooLong => "validation.questionTooLong",
            ValidationError::CorrectionTooLong { .. } => "validation.correctionTooLong",
            ValidationError::Malformed => "validation.malformed",
            ValidationError::InvalidQuery { .. } => "query.invalid",
            ValidationError::Storage => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ValidationError::NotYours { .. } => StatusCode::FORBIDDEN,
            ValidationError::UnknownRequest => StatusCode::NOT_FOUND,
            ValidationError::Storage => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The request member it is about.
    pub fn field(&self) -> Option<String> {
        match self {
            ValidationError::Empty { field }
            | ValidationError::TooMany { field }
            | ValidationError::NotYours { field }
            | ValidationError::InvalidQuery { field } => Some((*field).to_owned()),
            ValidationError::UnknownRecord { field } => Some(field.clone()),
            ValidationError::Withdrawn { index } => Some(format!("answers[{index}].recordId")),
            ValidationError::NotReversible => Some("recordIds".into()),
            ValidationError::UnknownRequest => Some("id".into()),
            ValidationError::QuestionTooLong => Some("question".into()),
            ValidationError::CorrectionTooLong { index } => {
                Some(format!("answers[{index}].correction"))
            }
            ValidationError::Malformed => Some("body".into()),
            ValidationError::Storage => None,
        }
    }
}

impl IntoResponse for ValidationError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.code(), &self.to_string());
        if let Some(field) = self.field() {
            body = body.with_field(&field);
        }
        (self.status(), Json(body)).into_response()
    }
}

impl From<rusqlite::Error> for ValidationError {
    fn from(err: rusqlite::Error) -> Self {
        tracing::error!(error = %err, "the validation store failed");
        ValidationError::Storage
    }
}

impl From<crate::store::StoreError> for ValidationError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::error!(error = %err, "the validation store failed");
        ValidationError::Storage
    }
}

/// `POST /api/validation-requests` body (staff).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRequests {
    /// The records to ask about.
    pub record_ids: Vec<i64>,
    /// An optional question to the providers.
    #[serde(default)]
    pub question: Option<String>,
}

/// One request made: `POST /api/validation-requests` answers one per
/// supplying provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedRequest {
    /// `vr-` + 22 random base64url characters.
    pub id: String,
    /// The supplying provider asked.
    pub provider: String,
    /// Its records in the request, ascending.
    pub record_ids: Vec<i64>,
}

/// An answer about one record, as stored and listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerView {
    /// `confirm`, `correct` or `withdraw`.
    pub answer: String,
    /// The provider's correction (with `correct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    /// When, RFC 3339 UTC.
    pub answered_at: String,
}

/// A record of a request, as its provider lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// The record id.
    pub record_id: i64,
    /// When it was received, RFC 3339 UTC.
    pub received_at: String,
    /// Its clinical fields.
    pub data: Data,
    /// Its reversible pseudonym as it came.
    pub reversible: ReversibleEnvelope,
    /// The record's claims as the TTP signed them (compact JWS), whose
    /// `reversible` is the envelope's digest: the provider's page opens the
    /// envelope only under a valid TTP signature of its provider, this
    /// registry and that digest.
    pub claims: String,
    /// The latest answer in this request, if any.
    pub answer: Option<AnswerView>,
}

/// A validation request, as its provider lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request id.
    pub id: String,
    /// When it was made, RFC 3339 UTC.
    pub created_at: String,
    /// The registry's question, if any.
    pub question: Option<String>,
    /// `open` while a record has no answer, then `answered`.
    pub status: String,
    /// Its records.
    pub records: Vec<RequestRecord>,
}

/// A validation request as the registry page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSummary {
    /// The request id.
    pub id: String,
    /// The provider asked.
    pub provider: String,
    /// When it was made, seconds since the Unix epoch.
    pub created_at: i64,
    /// `open` or `answered`.
    pub status: String,
    /// Each record with its answer (`None`: not answered yet).
    pub records: Vec<(i64, Option<String>)>,
}

/// One answer of `POST /api/validation-requests/{id}/answers`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnswerInput {
    /// A record of the request.
    pub record_id: i64,
    /// The answer.
    pub answer: Answer,
    /// With `correct`: what is wrong (at most [`MAX_CORRECTION_CHARS`]).
    #[serde(default)]
    pub correction: Option<String>,
}

/// `POST /api/validation-requests/{id}/answers` body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Answers {
    /// One answer per record (a record answered twice: the last counts).
    pub answers: Vec<AnswerInput>,
}

/// A provider's answer about a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// The record is right.
    Confirm,
    /// The record needs a correction.
    Correct,
    /// The record must not be processed (it also withdraws it).
    Withdraw,
}

impl Answer {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Confirm => "confirm",
            Answer::Correct => "correct",
            Answer::Withdraw => "withdraw",
        }
    }
}

/// A record of `GET /api/provider-records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRecord {
    /// The record id.
    pub record_id: i64,
    /// When it was received, RFC 3339 UTC.
    pub received_at: String,
    /// `active` or `withdrawn`.
    pub status: String,
    /// Its reversible pseudonym.
    pub reversible: ReversibleEnvelope,
    /// The record's claims as the TTP signed them (compact JWS), as in
    /// [`RequestRecord::claims`].
    pub claims: String,
}

/// `POST /api/withdrawals` body.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Withdrawals {
    /// The records to withdraw.
    pub record_ids: Vec<i64>,
}

/// A row of `validation_audit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// One of [`event`].
    pub event: String,
    /// The provider, if any.
    pub provider: Option<String>,
    /// Who acted for it (a person or back-end id), if known.
    pub person: Option<String>,
    /// The request, if any.
    pub request_id: Option<String>,
    /// The record, if any.
    pub record_id: Option<i64>,
    /// The answer (`confirm`, `correct`, `withdraw`), if any.
    pub answer: Option<String>,
}

/// Who is acting on a provider endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    /// The provider.
    pub provider: &'a str,
    /// The person or back end acting for it.
    pub person: Option<&'a str>,
}

/// One audit row (what [`event`] happened to whom), never a value.
#[allow(clippy::too_many_arguments)]
fn audit(
    conn: &Connection,
    at: i64,
    event: &str,
    provider: Option<&str>,
    person: Option<&str>,
    request_id: Option<&str>,
    record_id: Option<i64>,
    answer: Option<&str>,
) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO validation_audit (at, event, provider, person, request_id, record_id, answer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        at, event, provider, person, request_id, record_id, answer
    ])?;
    Ok(())
}

/// A request id: `vr-` and 22 base64url characters of 16 random bytes.
pub fn new_request_id() -> Result<String, ValidationError> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|_| ValidationError::Storage)?;
    Ok(format!("vr-{}", Base64UrlUnpadded::encode_string(&bytes)))
}

/// The distinct ids of `ids`, ascending; empty or too many refused.
fn distinct(ids: &[i64], field: &'static str) -> Result<Vec<i64>, ValidationError> {
    if ids.is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if ids.len() > MAX_RECORD_IDS {
        return Err(ValidationError::TooMany { field });
    }
    Ok(ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// A record's supplying provider, whether it has a reversible pseudonym and
/// whether it is withdrawn; `None` if there is no such record.
fn record_facts(
    conn: &Connection,
    record_id: i64,
) -> Result<Option<(Option<String>, bool, bool)>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT r.provider,
                EXISTS (SELECT 1 FROM reversible v WHERE v.record_id = r.id),
                EXISTS (SELECT 1 FROM withdrawn w WHERE w.record_id = r.id)
         FROM records r WHERE r.id = ?1",
    )?
    .query_row(params![record_id], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
    .optional()
}

fn envelope(kid: String, enc: String, ct: String) -> ReversibleEnvelope {
    ReversibleEnvelope {
        r#type: REVERSIBLE_TYPE.to_owned(),
        kid,
        enc,
        ct,
    }
}

/// Whether every record of `request_id` has an answer.
fn request_status(conn: &Connection, request_id: &str) -> Result<String, rusqlite::Error> {
    let open: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM validation_items WHERE request_id = ?1 AND answer IS NULL)",
        )?
        .query_row(params![request_id], |row| row.get(0))?;
    Ok(if open { "open" } else { "answered" }.to_owned())
}

impl Store {
    /// Makes one validation request per supplying provider of `record_ids`
    /// (each a stored, not withdrawn record with a reversible pseudonym),
    /// with `question`, at `now`; all or nothing.
    pub fn create_requests(
        &self,
        record_ids: &[i64],
        question: Option<&str>,
        now: i64,
    ) -> Result<Vec<CreatedRequest>, ValidationError> {
        let ids = distinct(record_ids, "recordIds")?;
        let question = question.map(str::trim).filter(|q| !q.is_empty());
        if question.is_some_and(|q| q.chars().count() > MAX_QUESTION_CHARS) {
            return Err(ValidationError::QuestionTooLong);
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut by_provider: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for id in ids {
            let Some((provider, reversible, withdrawn)) = record_facts(&tx, id)? else {
                return Err(ValidationError::UnknownRecord {
                    field: "recordIds".into(),
                });
            };
            if withdrawn {
                return Err(ValidationError::UnknownRecord {
                    field: "recordIds".into(),
                });
            }
            let Some(provider) = provider.filter(|_| reversible) else {
                return Err(ValidationError::NotReversible);
            };
            by_provider.entry(provider).or_default().push(id);
        }
        let mut created = Vec::with_capacity(by_provider.len());
        for (provider, record_ids) in by_provider {
            let id = new_request_id()?;
            tx.execute(
                "INSERT INTO validation_requests (id, provider, created_at, question)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, provider, now, question],
            )?;
            for record_id in &record_ids {
                tx.execute(
                    "INSERT INTO validation_items (request_id, record_id) VALUES (?1, ?2)",
                    params![id, record_id],
                )?;
                audit(
                    &tx,
                    now,
                    event::REQUEST_CREATED,
                    Some(&provider),
                    None,
                    Some(&id),
                    Some(*record_id),
                    None,
                )?;
            }
            created.push(CreatedRequest {
                id,
                provider,
                record_ids,
            });
        }
        tx.commit()?;
        Ok(created)
    }

    /// The newest [`MAX_LISTED_REQUESTS`] requests to `actor`'s provider,
    /// newest first, with their records; audited per request.
    pub fn requests_of(
        &self,
        actor: Actor<'_>,
        now: i64,
    ) -> Result<Vec<RequestView>, ValidationError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let requests: Vec<(String, i64, Option<String>)> = tx
            .prepare(
                "SELECT id, created_at, question FROM validation_requests WHERE provider = ?1
                 ORDER BY created_at DESC, rowid DESC LIMIT ?2",
            )?
            .query_map(params![actor.provider, MAX_LISTED_REQUESTS], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(requests.len());
        for (id, created_at, question) in requests {
            let records = tx
                .prepare_cached(
                    "SELECT r.id, r.received_at, r.data_json, v.claims, v.kid, v.enc, v.ct,
                            i.answer, i.correction, i.answered_at
                     FROM validation_items i
                     JOIN records r ON r.id = i.record_id
                     JOIN reversible v ON v.record_id = r.id
                     WHERE i.request_id = ?1 ORDER BY r.id",
                )?
                .query_map(params![id], |row| {
                    let answer: Option<String> = row.get(7)?;
                    let answered_at: Option<i64> = row.get(9)?;
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        envelope(row.get(4)?, row.get(5)?, row.get(6)?),
                        answer.map(|answer| AnswerView {
                            answer,
                            correction: row.get(8).ok().flatten(),
                            answered_at: rfc3339(answered_at.unwrap_or_default()),
                        }),
                    ))
                })?
                .map(|row| {
                    let (record_id, received_at, data_json, claims, reversible, answer) = row?;
                    let data: Data =
                        serde_json::from_str(&data_json).map_err(|_| ValidationError::Storage)?;
                    Ok(RequestRecord {
                        record_id,
                        received_at: rfc3339(received_at),
                        data,
                        reversible,
                        claims,
                        answer,
                    })
                })
                .collect::<Result<Vec<_>, ValidationError>>()?;
            audit(
                &tx,
                now,
                event::REQUEST_LISTED,
                Some(actor.provider),
                actor.person,
                Some(&id),
                None,
                None,
            )?;
            out.push(RequestView {
                status: request_status(&tx, &id)?,
                id,
                created_at: rfc3339(created_at),
                question,
                records,
            });
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records `answers` of `actor` to its request `request_id` at `now`,
    /// all or nothing; a `withdraw` answer withdraws the record. Gives the
    /// request's status after.
    pub fn answer(
        &self,
        actor: Actor<'_>,
        request_id: &str,
        answers: &[AnswerInput],
        now: i64,
    ) -> Result<String, ValidationError> {
        if answers.is_empty() {
            return Err(ValidationError::Empty { field: "answers" });
        }
        if answers.len() > MAX_RECORD_IDS {
            return Err(ValidationError::TooMany { field: "answers" });
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let provider: Option<String> = tx
            .query_row(
                "SELECT provider FROM validation_requests WHERE id = ?1",
                params![request_id],
                |row| row.get(0),
            )
            .optional()?;
        match provider {
            None => return Err(ValidationError::UnknownRequest),
            Some(p) if p != actor.provider => {
                return Err(ValidationError::NotYours { field: "id" })
            }
            Some(_) => {}
        }
        for (index, item) in answers.iter().enumerate() {
            if item
                .correction
                .as_deref()
                .is_some_and(|c| c.chars().count() > MAX_CORRECTION_CHARS)
            {
                return Err(ValidationError::CorrectionTooLong { index });
            }
            let correction = item
                .correction
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty());
            let updated = tx.execute(
                "UPDATE validation_items SET answer = ?3, correction = ?4, answered_at = ?5
                 WHERE request_id = ?1 AND record_id = ?2",
                params![
                    request_id,
                    item.record_id,
                    item.answer.as_str(),
                    correction,
                    now
                ],
            )?;
            if updated == 0 {
                return Err(ValidationError::UnknownRecord {
                    field: format!("answers[{index}].recordId"),
                });
            }
            // The update is rolled back with the transaction.
            let withdrawn = tx
                .prepare_cached("SELECT 1 FROM withdrawn WHERE record_id = ?1")?
                .query_row(params![item.record_id], |_| Ok(()))
                .optional()?
                .is_some();
            if withdrawn && item.answer != Answer::Withdraw {
                return Err(ValidationError::Withdrawn { index });
            }
            audit(
                &tx,
                now,
                event::ANSWER_RECORDED,
                Some(actor.provider),
                actor.person,
                Some(request_id),
                Some(item.record_id),
                Some(item.answer.as_str()),
            )?;
            if item.answer == Answer::Withdraw {
                withdraw_one(&tx, actor, item.record_id, Some(request_id), now)?;
            }
        }
        let status = request_status(&tx, request_id)?;
        tx.commit()?;
        Ok(status)
    }

    /// `actor`'s records with a reversible pseudonym after record id
    /// `after`, ascending, at most `limit`; the id to continue after, if
    /// there may be more. Audited.
    pub fn provider_records(
        &self,
        actor: Actor<'_>,
        after: i64,
        limit: u32,
        now: i64,
    ) -> Result<(Vec<ProviderRecord>, Option<i64>), ValidationError> {
        let limit = limit.clamp(1, MAX_PROVIDER_RECORDS);
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let records = tx
            .prepare(
                "SELECT r.id, r.received_at, v.claims, v.kid, v.enc, v.ct,
                        EXISTS (SELECT 1 FROM withdrawn w WHERE w.record_id = r.id)
                 FROM records r JOIN reversible v ON v.record_id = r.id
                 WHERE r.provider = ?1 AND r.id > ?2 ORDER BY r.id LIMIT ?3",
            )?
            .query_map(params![actor.provider, after, limit], |row| {
                let withdrawn: bool = row.get(6)?;
                Ok(ProviderRecord {
                    record_id: row.get(0)?,
                    received_at: rfc3339(row.get(1)?),
                    status: if withdrawn { "withdrawn" } else { "active" }.to_owned(),
                    reversible: envelope(row.get(3)?, row.get(4)?, row.get(5)?),
                    claims: row.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        audit(
            &tx,
            now,
            event::RECORDS_LISTED,
            Some(actor.provider),
            actor.person,
            None,
            None,
            None,
        )?;
        tx.commit()?;
        let next = (records.len() == limit as usize)
            .then(|| records.last().map(|r| r.record_id))
            .flatten();
        Ok((records, next))
    }

    /// Withdraws `record_ids` (each a record of `actor`'s provider) at
    /// `now`, all or nothing; gives the ids, ascending. Withdrawing a
    /// withdrawn record again changes nothing.
    pub fn withdraw(
        &self,
        actor: Actor<'_>,
        record_ids: &[i64],
        now: i64,
    ) -> Result<Vec<i64>, ValidationError> {
        let ids = distinct(record_ids, "recordIds")?;
        let mut conn = self.lock()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in &ids {
            match record_facts(&tx, *id)? {
                None => {
                    return Err(ValidationError::UnknownRecord {
                        field: "recordIds".into(),
                    })
                }
                Some((provider, _, _)) if provider.as_deref() != Some(actor.provider) => {
                    return Err(ValidationError::NotYours { field: "recordIds" })
                }
                Some(_) => {}
            }
        }
        for id in &ids {
            withdraw_one(&tx, actor, *id, None, now)?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The newest `limit` audit rows, newest first.
    pub fn validation_audit(&self, limit: u32) -> Result<Vec<AuditEntry>, ValidationError> {
        let conn = self.lock()?;
        let rows = conn
            .prepare(
                "SELECT id, at, event, provider, person, request_id, record_id, answer
                 FROM validation_audit ORDER BY id DESC LIMIT ?1",
            )?
            .query_map(params![limit], |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: rfc3339(row.get(1)?),
                    event: row.get(2)?,
                    provider: row.get(3)?,
                    person: row.get(4)?,
                    request_id: row.get(5)?,
                    record_id: row.get(6)?,
                    answer: row.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The newest `limit` requests of every provider, for the registry page.
    pub fn request_summaries(&self, limit: u32) -> Result<Vec<RequestSummary>, ValidationError> {
        let conn = self.lock()?;
        let requests: Vec<(String, String, i64)> = conn
            .prepare(
                "SELECT id, provider, created_at FROM validation_requests
                 ORDER BY created_at DESC, rowid DESC LIMIT ?1",
            )?
            .query_map(params![limit], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(requests.len());
        for (id, provider, created_at) in requests {
            let records = conn
                .prepare_cached(
                    "SELECT record_id, answer FROM validation_items WHERE request_id = ?1
                     ORDER BY record_id",
                )?
                .query_map(params![id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            out.push(RequestSummary {
                status: request_status(&conn, &id)?,
                id,
                provider,
                created_at,
                records,
            });
        }
        Ok(out)
    }

    /// Whether the record `record_id` is withdrawn, and its latest
    /// validation state (for tests and tools).
    pub fn record_validation(
        &self,
        record_id: i64,
    ) -> Result<(bool, Option<String>), ValidationError> {
        let conn = self.lock()?;
        let (_, withdrawn, validation) = record_state(&conn, record_id)?;
        Ok((withdrawn, validation))
    }
}

/// Marks one record withdrawn by `actor` (audited once: a second
/// withdrawal changes nothing).
fn withdraw_one(
    conn: &Connection,
    actor: Actor<'_>,
    record_id: i64,
    request_id: Option<&str>,
    now: i64,
) -> Result<(), rusqlite::Error> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO withdrawn (record_id, at, provider, request_id) VALUES (?1, ?2, ?3, ?4)",
        params![record_id, now, actor.provider, request_id],
    )?;
    if inserted > 0 {
        audit(
            conn,
            now,
            event::RECORD_WITHDRAWN,
            Some(actor.provider),
            actor.person,
            request_id,
            Some(record_id),
            None,
        )?;
    }
    Ok(())
}
