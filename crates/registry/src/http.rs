//! The demo registry server (axum).
//!
//! | route | what |
//! |---|---|
//! | `POST /api/submissions` | a [`Submission`] → 201 [`Receipt`], or an [`ApiError`] |
//! | `POST /api/batches` | a [`BatchSubmission`](pseudoform_protocol::registry::BatchSubmission) of a processor → 200 [`BatchReceipt`], one result per submission ([`crate::batch`]) |
//! | `POST /fhir` | a FHIR delivery Bundle (transaction), all or nothing → 200 `transaction-response`, or 4xx `OperationOutcome` ([`crate::fhir`]) |
//! | `GET /fhir/Patient` | the stored records as a FHIR `searchset` Bundle (DEMO, like `/api/records`) |
//! | `GET /api/records` | the stored records (newest first, `?limit=`, default 500; withdrawn ones only with `?include=withdrawn`) |
//! | `POST /api/validation-requests` | staff (DEMO, unauthenticated): ask the supplying providers about records with `R` |
//! | `GET /api/validation-requests` | provider: its validation requests ([`ValidatingProvider`]) |
//! | `POST /api/validation-requests/{id}/answers` | provider: answers per record |
//! | `GET /api/provider-records` | provider: its records with `R` (`?after=&limit=`) |
//! | `POST /api/withdrawals` | provider: withdraw records |
//! | `GET /api/validation-audit` | the validation audit rows (DEMO, newest first) |
//! | `POST /registry/validation-requests` | the registry page's form (`record=` repeated, `question`): 303 back |
//! | `GET /api/form-config` | what the demo form needs: TTP, recipient, provider, login, types, pinned TTP signing keys, the identity frame |
//! | `GET /registry` | HTML page of what the registry holds (Dutch) |
//! | `GET /health` | liveness: `{"status":"ok"}` |
//! | `GET /ready` | readiness: 200 while the database can be written, else 503 `server.notReady` |
//! | `GET /*` | static files of `www_dir` |
//!
//! Request bodies are limited to 256 KiB (413), those of `/api/batches`
//! to [`MAX_BATCH_BODY_BYTES`]. Connections, header, body
//! and request times are bounded by [`RegistryConfig::limits`]
//! ([`pseudoform_server`]); a panicking request answers 500 and the server
//! lives. Every response carries
//! `Cache-Control: no-store`, `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`; the static files a CSP that allows only
//! this origin's scripts (and wasm), connections to this origin and the
//! TTP and, with `frame_url`, frames of the identity frame's origin. The log has one line per request: method, path, status, latency —
//! never a body, a label or data.
//!
//! The provider endpoints take a TTP validate token and its DPoP proof
//! ([`crate::provider_auth`]) and allow CORS from `validation_origins` (and
//! only those routes, with `Authorization`, `DPoP` and `Content-Type`);
//! the submissions endpoint allows CORS from `allowed_origins`.
//!
//! `GET /api/records` and `/registry` make this a DEMO server: a production
//! registry puts its records behind authentication. The form's TTP
//! credential never comes from the registry: `/api/form-config` names the
//! provider portal's login popup (`login`), through which the browser gets a
//! short-lived token bound to its own key.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use pseudoform_protocol::registry::{BatchReceipt, Receipt, Submission, BATCH_PATH};
use pseudoform_server::correlation::{CLIENT_TRACE_ID, CORRELATION_ID, REQUEST_ID};
use serde::{Deserialize, Serialize};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::batch::BatchError;
use crate::config::RegistryConfig;
use crate::error::ApiError;
use crate::provider_auth::{ProviderAuth, ValidatingProvider};
use crate::receiver::Receiver;
use crate::store::{StoreError, StoredRecord};
use crate::validation::{
    Actor, Answers, AuditEntry, CreatedRequest, NewRequests, ProviderRecord, RequestView,
    ValidationError, Withdrawals, MAX_PROVIDER_RECORDS,
};
use crate::view;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Largest body of `POST /api/batches`, in bytes.
pub const MAX_BATCH_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Number of records `GET /api/records` returns without `limit`, and the
/// registry page shows.
pub const DEFAULT_RECORD_LIMIT: u32 = 500;
/// Largest `limit` of `GET /api/records`.
pub const MAX_RECORD_LIMIT: u32 = 10_000;

/// The CSP of the registry page.
const REGISTRY_PAGE_CSP: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// `GET /api/form-config` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormConfig {
    /// Base URL of the TTP.
    pub ttp: String,
    /// The registry's organisation.
    pub recipient_organization: String,
    /// The registry's scope.
    pub recipient_scope: String,
    /// The supplying provider of the demo form.
    pub provider: String,
    /// The provider portal's login popup URL (`data-pseudoform-login`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub login: String,
    /// DEVELOPMENT ONLY: a static TTP token (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_token: String,
    /// Pseudonym types the registry accepts.
    pub types: Vec<String>,
    /// The RFC 7638 thumbprints of the TTP signing keys this registry pins:
    /// the form accepts the registry's key only as signed by one of them.
    pub ttp_signing_keys: Vec<String>,
    /// The identity frame's page URL (`frame_url`), if the form may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

/// One record in `GET /api/records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// The record id.
    pub id: i64,
    /// When it was received, RFC 3339 UTC.
    pub received_at: String,
    /// Its labels `TYPE:vN:<base64url>`: current ones first, then those of
    /// older key versions.
    pub pseudonyms: Vec<String>,
    /// The clinical fields: strings, and lists of strings.
    pub data: pseudoform_protocol::registry::Data,
    /// The `jti` of the TTP's JWE the record came from (several
    /// comma-separated), to trace it to the TTP's audit row.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ttp_jti: Option<String>,
    /// The provider the TTP named in its claims.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
    /// The record's reversible pseudonym, by key id only (its ciphertext
    /// goes to its provider alone, `GET /api/validation-requests`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reversible: Option<ReversibleRef>,
    /// `active`, or `withdrawn` by its provider.
    pub status: String,
    /// The latest validation state: `open` (asked), `confirm`, `correct`
    /// or `withdraw`; absent if never asked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub validation: Option<String>,
}

/// A reversible pseudonym in `GET /api/records`: its provider key's id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReversibleRef {
    /// The provider key's id (RFC 7638 thumbprint).
    pub kid: String,
}

impl From<StoredRecord> for RecordView {
    fn from(record: StoredRecord) -> Self {
        let (current, old): (Vec<_>, Vec<_>) =
            record.pseudonyms.into_iter().partition(|p| p.is_current);
        RecordView {
            id: record.id,
            received_at: view::rfc3339(record.received_at),
            pseudonyms: current.into_iter().chain(old).map(|p| p.label).collect(),
            data: record.data,
            ttp_jti: record.ttp_jti,
            provider: record.provider,
            reversible: record.reversible.map(|r| ReversibleRef { kid: r.kid }),
            status: if record.withdrawn {
                "withdrawn"
            } else {
                "active"
            }
            .to_owned(),
            validation: record.validation,
        }
    }
}

#[derive(Clone, Debug)]
struct AppState {
    receiver: Arc<Receiver>,
    public_url: Arc<str>,
    form_config: Arc<FormConfig>,
    provider_auth: Arc<ProviderAuth>,
}

impl FromRef<AppState> for Arc<ProviderAuth> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.provider_auth)
    }
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    limit: Option<u32>,
    include: Option<String>,
}

/// Runs blocking store work off the async executor; a failed task is a 500.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(ApiError::Internal))
}

/// A store error as an answer: logged, and a 500 without its details.
fn read_failed(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "reading records failed");
    ApiError::Internal
}

/// The one `DPoP` header (a submitter proof); several, or one that is not
/// text, is an invalid proof.
fn dpop_of(headers: &HeaderMap) -> Option<String> {
    let mut values = headers
        .get_all(pseudoform_protocol::auth::DPOP_HEADER)
        .iter();
    match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().unwrap_or("-").to_owned()),
        (Some(_), Some(_)) => Some("-".to_owned()),
    }
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let Json(submission) = body?;
    let proof = dpop_of(&headers);
    let receiver = Arc::clone(&state.receiver);
    let receipt = blocking(move || {
        Ok(receiver.receive_proved(
            submission,
            proof.as_deref(),
            pseudoform_protocol::unix_now(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

/// Whether the request says its body is JSON (`application/json`, with
/// parameters or not).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// A refusal of the batch endpoint: of its body, or of the batch.
#[derive(Debug)]
enum BatchRefusal {
    Api(ApiError),
    Batch(BatchError),
}

impl IntoResponse for BatchRefusal {
    fn into_response(self) -> Response {
        match self {
            BatchRefusal::Api(err) => err.into_response(),
            BatchRefusal::Batch(err) => err.into_response(),
        }
    }
}

/// `POST /fhir`: a FHIR delivery Bundle ([`crate::fhir`]).
async fn submit_fhir(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    use crate::fhir::FhirRefusal;
    let refuse = |status: StatusCode, code: &str| {
        FhirRefusal {
            status,
            code: code.to_owned(),
            field: None,
        }
        .into_response()
    };
    let fhir_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(crate::fhir::FHIR_JSON));
    if !is_json(&headers) && !fhir_json {
        return refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "submission.contentType");
    }
    let body = match body {
        Ok(body) => body,
        Err(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "batch.tooLarge")
        }
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "submission.unreadable"),
    };
    let Ok(bundle) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            pseudoform_protocol::fhir::SHAPE,
        );
    };
    let proof = dpop_of(&headers);
    let receiver = Arc::clone(&state.receiver);
    let answer = tokio::task::spawn_blocking(move || {
        receiver.receive_fhir(&bundle, proof.as_deref(), pseudoform_protocol::unix_now())
    })
    .await;
    match answer {
        Ok(Ok(response)) => crate::fhir::fhir_response(StatusCode::OK, &response),
        Ok(Err(refusal)) => refusal.into_response(),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

/// `GET /fhir/Patient` (DEMO): the stored records as a `searchset`.
async fn fhir_patients(State(state): State<AppState>) -> Result<Response, ApiError> {
    let receiver = Arc::clone(&state.receiver);
    let records = blocking(move || {
        receiver
            .store()
            .records_where(DEFAULT_RECORD_LIMIT, false)
            .map_err(read_failed)
    })
    .await?;
    let bundle = crate::fhir::export(
        &records,
        state.receiver.organization(),
        state.receiver.scope(),
        &state.public_url,
    );
    Ok(crate::fhir::fhir_response(StatusCode::OK, &bundle))
}

/// `POST /api/batches`: a processor's batch ([`crate::batch`]).
async fn submit_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Json<BatchReceipt>, BatchRefusal> {
    if !is_json(&headers) {
        return Err(BatchRefusal::Api(ApiError::ContentType));
    }
    let body = match body {
        Ok(body) => body,
        Err(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(BatchRefusal::Batch(BatchError::TooLarge))
        }
        Err(_) => return Err(BatchRefusal::Api(ApiError::Unreadable)),
    };
    // Never serde's message, which can quote the body.
    let batch: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        BatchRefusal::Batch(BatchError::Shape {
            field: "submissions".into(),
        })
    })?;
    let proof = dpop_of(&headers);
    let receiver = Arc::clone(&state.receiver);
    let receipt = tokio::task::spawn_blocking(move || {
        receiver.receive_batch(batch, proof.as_deref(), pseudoform_protocol::unix_now())
    })
    .await
    .unwrap_or(Err(BatchError::Storage))
    .map_err(BatchRefusal::Batch)?;
    Ok(Json(receipt))
}

async fn records(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Vec<RecordView>>, Refusal> {
    let Query(query) = query.map_err(|_| ApiError::InvalidLimit)?;
    let include_withdrawn = match query.include.as_deref() {
        None => false,
        Some("withdrawn") => true,
        Some(_) => {
            return Err(ValidationError::InvalidQuery { field: "include" }.into());
        }
    };
    let limit = query
        .limit
        .unwrap_or(DEFAULT_RECORD_LIMIT)
        .min(MAX_RECORD_LIMIT);
    let receiver = Arc::clone(&state.receiver);
    let records = blocking(move || {
        receiver
            .store()
            .records_where(limit, include_withdrawn)
            .map_err(read_failed)
    })
    .await?;
    Ok(Json(records.into_iter().map(RecordView::from).collect()))
}

/// A refusal of a records or validation endpoint: an [`ApiError`] (body,
/// query) or a [`ValidationError`].
#[derive(Debug)]
enum Refusal {
    Api(ApiError),
    Validation(ValidationError),
}

impl From<ApiError> for Refusal {
    fn from(err: ApiError) -> Self {
        Refusal::Api(err)
    }
}

impl From<ValidationError> for Refusal {
    fn from(err: ValidationError) -> Self {
        Refusal::Validation(err)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Api(err) => err.into_response(),
            Refusal::Validation(err) => err.into_response(),
        }
    }
}

/// Runs blocking validation work off the async executor.
async fn blocking_validation<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ValidationError> + Send + 'static,
) -> Result<T, ValidationError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(ValidationError::Storage))
}

/// A JSON body of a validation endpoint, or its refusal (never serde's
/// message, which can quote the body).
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, Refusal> {
    match body {
        Ok(Json(value)) => Ok(value),
        Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::ContentType.into()),
        Err(JsonRejection::BytesRejection(b)) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge.into())
        }
        Err(_) => Err(ValidationError::Malformed.into()),
    }
}

/// `POST /api/validation-requests` answer (201).
#[derive(Debug, Serialize)]
struct CreatedRequests {
    requests: Vec<CreatedRequest>,
}

/// Staff (DEMO): one validation request per supplying provider.
async fn create_requests(
    State(state): State<AppState>,
    body: Result<Json<NewRequests>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedRequests>), Refusal> {
    let request = json_body(body)?;
    let receiver = Arc::clone(&state.receiver);
    let requests = blocking_validation(move || {
        receiver.store().create_requests(
            &request.record_ids,
            request.question.as_deref(),
            pseudoform_protocol::unix_now(),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedRequests { requests })))
}

/// The registry page's form: `record=ID` (repeated) and `question`; 303
/// back to the page (with `?fout=<code>` when refused).
async fn page_create_requests(State(state): State<AppState>, body: Bytes) -> Response {
    let mut record_ids = Vec::new();
    let mut question = None;
    let mut unreadable = false;
    for (key, value) in form_urlencoded::parse(&body) {
        match key.as_ref() {
            "record" => match value.parse::<i64>() {
                Ok(id) => record_ids.push(id),
                Err(_) => unreadable = true,
            },
            "question" => question = Some(value.into_owned()),
            _ => {}
        }
    }
    let outcome = if unreadable {
        Err(ValidationError::UnknownRecord {
            field: "record".into(),
        })
    } else {
        let receiver = Arc::clone(&state.receiver);
        blocking_validation(move || {
            receiver.store().create_requests(
                &record_ids,
                question.as_deref(),
                pseudoform_protocol::unix_now(),
            )
        })
        .await
    };
    let location = match outcome {
        Ok(_) => "/registry#validatieverzoeken".to_owned(),
        Err(err) => format!("/registry?fout={}#validatieverzoeken", err.code()),
    };
    let location =
        HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("/registry"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// `GET /api/validation-requests` answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderRequests {
    recipient_organization: String,
    recipient_scope: String,
    requests: Vec<RequestView>,
}

/// Provider: its own validation requests.
async fn provider_requests(
    State(state): State<AppState>,
    caller: ValidatingProvider,
) -> Result<Json<ProviderRequests>, ValidationError> {
    let receiver = Arc::clone(&state.receiver);
    let requests = blocking_validation(move || {
        let actor = Actor {
            provider: &caller.provider,
            person: caller.person.as_deref(),
        };
        receiver
            .store()
            .requests_of(actor, pseudoform_protocol::unix_now())
    })
    .await?;
    Ok(Json(ProviderRequests {
        recipient_organization: state.receiver.organization().to_owned(),
        recipient_scope: state.receiver.scope().to_owned(),
        requests,
    }))
}

/// `POST /api/validation-requests/{id}/answers` answer.
#[derive(Debug, Serialize)]
struct AnswerStatus {
    id: String,
    status: String,
}

/// Provider: answers about the records of one of its requests.
async fn answer_request(
    State(state): State<AppState>,
    caller: ValidatingProvider,
    id: Result<Path<String>, PathRejection>,
    body: Result<Json<Answers>, JsonRejection>,
) -> Result<Json<AnswerStatus>, Refusal> {
    let Path(id) = id.map_err(|_| ValidationError::UnknownRequest)?;
    let answers = json_body(body)?;
    let receiver = Arc::clone(&state.receiver);
    let request_id = id.clone();
    let status = blocking_validation(move || {
        let actor = Actor {
            provider: &caller.provider,
            person: caller.person.as_deref(),
        };
        receiver.store().answer(
            actor,
            &request_id,
            &answers.answers,
            pseudoform_protocol::unix_now(),
        )
    })
    .await?;
    Ok(Json(AnswerStatus { id, status }))
}

#[derive(Debug, Deserialize)]
struct ProviderRecordsQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/provider-records` answer.
#[derive(Debug, Serialize)]
struct ProviderRecords {
    records: Vec<ProviderRecord>,
    next: Option<i64>,
}

/// Provider: its records with a reversible pseudonym, in pages.
async fn provider_records(
    State(state): State<AppState>,
    caller: ValidatingProvider,
    query: Result<Query<ProviderRecordsQuery>, QueryRejection>,
) -> Result<Json<ProviderRecords>, ValidationError> {
    let Query(query) = query.map_err(|_| ValidationError::InvalidQuery {
        field: "after/limit",
    })?;
    let limit = query.limit.unwrap_or(MAX_PROVIDER_RECORDS);
    if limit == 0 || limit > MAX_PROVIDER_RECORDS {
        return Err(ValidationError::InvalidQuery { field: "limit" });
    }
    let after = query.after.unwrap_or(0);
    let receiver = Arc::clone(&state.receiver);
    let (records, next) = blocking_validation(move || {
        let actor = Actor {
            provider: &caller.provider,
            person: caller.person.as_deref(),
        };
        receiver
            .store()
            .provider_records(actor, after, limit, pseudoform_protocol::unix_now())
    })
    .await?;
    Ok(Json(ProviderRecords { records, next }))
}

/// `POST /api/withdrawals` answer.
#[derive(Debug, Serialize)]
struct Withdrawn {
    withdrawn: Vec<i64>,
}

/// Provider: withdraws records of its own (a patient's objection).
async fn withdraw(
    State(state): State<AppState>,
    caller: ValidatingProvider,
    body: Result<Json<Withdrawals>, JsonRejection>,
) -> Result<Json<Withdrawn>, Refusal> {
    let withdrawals = json_body(body)?;
    let receiver = Arc::clone(&state.receiver);
    let withdrawn = blocking_validation(move || {
        let actor = Actor {
            provider: &caller.provider,
            person: caller.person.as_deref(),
        };
        receiver.store().withdraw(
            actor,
            &withdrawals.record_ids,
            pseudoform_protocol::unix_now(),
        )
    })
    .await?;
    Ok(Json(Withdrawn { withdrawn }))
}

/// DEMO: the validation audit rows, newest first (`?limit=`).
async fn validation_audit(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, Refusal> {
    let Query(query) = query.map_err(|_| ApiError::InvalidLimit)?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_RECORD_LIMIT)
        .min(MAX_RECORD_LIMIT);
    let receiver = Arc::clone(&state.receiver);
    let rows = blocking_validation(move || receiver.store().validation_audit(limit)).await?;
    Ok(Json(rows))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    fout: Option<String>,
}

async fn registry_page(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let receiver = Arc::clone(&state.receiver);
    let (records, requests) = blocking(move || {
        let records = receiver
            .store()
            .records(DEFAULT_RECORD_LIMIT)
            .map_err(read_failed)?;
        let requests = receiver
            .store()
            .request_summaries(DEFAULT_RECORD_LIMIT)
            .map_err(|_| ApiError::Internal)?;
        Ok((records, requests))
    })
    .await?;
    let error = query.ok().and_then(|Query(q)| q.fout);
    let html = view::registry_page(
        state.receiver.organization(),
        state.receiver.scope(),
        &records,
        &requests,
        error.as_deref(),
    );
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(REGISTRY_PAGE_CSP),
        ),
    ];
    Ok((headers, html).into_response())
}

async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        view::STYLESHEET,
    )
        .into_response()
}

async fn form_config(State(state): State<AppState>) -> Json<FormConfig> {
    Json((*state.form_config).clone())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: a small write commits (so a full disk or a read-only
/// database answers 503, and a load balancer sends no submissions).
async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let receiver = Arc::clone(&state.receiver);
    blocking(move || {
        receiver
            .store()
            .probe(pseudoform_protocol::unix_now())
            .map_err(|err| {
                tracing::warn!(error = %err, "not ready: the database cannot be written");
                ApiError::NotReady
            })
    })
    .await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound
}

/// Logs method, path, status and latency of every request; nothing else.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let correlation = pseudoform_server::correlation::Correlation::of(request.headers());
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path = %path,
        request_id = %correlation.request_id,
        correlation_id = correlation.correlation_id.as_deref().unwrap_or_default(),
        client_trace_id = correlation.client_trace_id.as_deref().unwrap_or_default(),
        status = response.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// The CSP of the static files: scripts and wasm from this origin only,
/// connections to this origin and the TTP, and frames of the identity
/// frame's origin (if any).
pub fn static_csp(ttp_origin: &str, frame_origin: Option<&str>) -> String {
    let frame = frame_origin
        .map(|origin| format!("frame-src {origin}; "))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' {ttp_origin}; \
         {frame}object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// The CORS of form origins on other origins: `POST` with `Content-Type`
/// and the submitter proof's `DPoP` header. None without such origins.
fn cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    cors_of(origins, "an allowed origin").map(|layer| {
        layer.map(|l| {
            l.allow_methods([axum::http::Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    HeaderName::from_static("dpop"),
                    CORRELATION_ID,
                    CLIENT_TRACE_ID,
                ])
                .expose_headers([REQUEST_ID, CORRELATION_ID, CLIENT_TRACE_ID])
        })
    })
}

/// The CORS of providers' validation pages on the provider endpoints:
/// `GET` and `POST` with `Authorization`, `DPoP` and `Content-Type`. None
/// without such origins.
fn validation_cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    cors_of(origins, "a validation origin").map(|layer| {
        layer.map(|l| {
            l.allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("dpop"),
                    CORRELATION_ID,
                    CLIENT_TRACE_ID,
                ])
                .expose_headers([
                    header::WWW_AUTHENTICATE,
                    REQUEST_ID,
                    CORRELATION_ID,
                    CLIENT_TRACE_ID,
                ])
        })
    })
}

/// A CORS layer allowing exactly `origins` (`what` names them in the
/// error), or none without origins.
fn cors_of(origins: &[String], what: &str) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{what} is not a valid header value"))?;
    Ok(Some(tower_http::cors::CorsLayer::new().allow_origin(
        tower_http::cors::AllowOrigin::list(origins),
    )))
}

/// The router of a registry around an existing [`Receiver`]; `config`
/// gives the static directory and the form configuration.
pub fn router(receiver: Arc<Receiver>, config: &RegistryConfig) -> anyhow::Result<Router> {
    let ttp_origin = config.ttp_origin()?;
    let frame_origin = config.frame_origin()?;
    let csp = HeaderValue::from_str(&static_csp(&ttp_origin, frame_origin.as_deref()))
        .context("ttp_url makes an invalid CSP header")?;
    let ttp_signing_keys = receiver
        .ttp_signing_kids()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let provider_auth = Arc::new(ProviderAuth::from_config(config)?);
    let state = AppState {
        receiver,
        public_url: Arc::from(config.public_url()),
        provider_auth,
        form_config: Arc::new(FormConfig {
            ttp: config.ttp_url.clone(),
            recipient_organization: config.recipient_organization.clone(),
            recipient_scope: config.recipient_scope.clone(),
            provider: config.provider.clone(),
            login: config.login_url.clone(),
            access_token: config.access_token.clone(),
            types: config.allowed_types.clone(),
            ttp_signing_keys,
            frame: config.frame_url.clone(),
        }),
    };
    let statics = ServeDir::new(&config.www_dir).append_index_html_on_directories(true);
    let main = Router::new()
        .route("/api/submissions", post(submit))
        .route(
            BATCH_PATH,
            post(submit_batch).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route(
            pseudoform_protocol::fhir::FHIR_PATH,
            post(submit_fhir).layer(DefaultBodyLimit::max(MAX_BATCH_BODY_BYTES)),
        )
        .route("/fhir/Patient", get(fhir_patients))
        .route("/api/records", get(records))
        .route("/api/form-config", get(form_config))
        .route("/api/validation-audit", get(validation_audit))
        .route("/api/{*rest}", any(api_not_found))
        .route("/registry", get(registry_page))
        .route("/registry/validation-requests", post(page_create_requests))
        .route(view::STYLESHEET_PATH, get(stylesheet))
        .route("/health", get(health))
        .route("/ready", get(ready));
    // The form origins' CORS on the main routes, the validation pages' on
    // the provider routes only.
    let main = match cors(&config.allowed_origins)? {
        Some(cors) => main.layer(cors),
        None => main,
    };
    let provider = Router::new()
        .route(
            "/api/validation-requests",
            get(provider_requests).post(create_requests),
        )
        .route(
            "/api/validation-requests/{id}/answers",
            post(answer_request),
        )
        .route("/api/provider-records", get(provider_records))
        .route("/api/withdrawals", post(withdraw));
    let provider = match validation_cors(&config.validation_origins)? {
        Some(cors) => provider.layer(cors),
        None => provider,
    };
    let router = main
        .merge(provider)
        .fallback_service(statics)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ));
    let router = pseudoform_server::harden(router, &config.limits, || {
        ApiError::Internal.into_response()
    });
    Ok(pseudoform_server::correlation::correlate(
        router.layer(middleware::from_fn(log_request)),
    ))
}

/// The registry's router from its configuration: loads the keys, opens the
/// database and builds [`router`].
pub fn app(config: RegistryConfig) -> anyhow::Result<Router> {
    let receiver = Receiver::from_config(&config)?;
    if !config.www_dir.is_dir() {
        tracing::warn!(
            www_dir = %config.www_dir.display(),
            "the static directory does not exist; / will answer 404"
        );
    }
    router(Arc::new(receiver), &config)
}

/// Serves the registry on `listener` until the task is dropped or fails.
pub async fn serve(
    config: RegistryConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves the registry on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve_with_shutdown<F>(
    config: RegistryConfig,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let limits = config.limits;
    let app = app(config)?;
    pseudoform_server::serve(listener, app, &limits, shutdown)
        .await
        .context("the registry server failed")
}
