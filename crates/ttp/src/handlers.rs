//! The HTTP endpoints of the TTP.
//!
//! Every evaluating endpoint checks, in this order: the bearer token (401),
//! the JSON shape (422), the recipient (422 bad format, 404 unknown), the
//! caller's rights for it (403), the `Origin` (403), the types and limits
//! (422, 403), the caller's rate limit (429), and then evaluates — where a
//! bad blinded element fails the whole request (400). Each request is
//! audited, accepted or refused; an accepted one is answered only once its
//! audit row is committed.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_core::{PseudonymType, Recipient};
use pseudoform_protocol::ttp::{
    BatchRequest, BatchResponse, EvalRequest, EvalResponse, Policy, RecordResult, RekeyRequest,
    RekeyResponse, MAX_ITEMS_PER_RECORD, MAX_RECORDS_PER_REQUEST,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::config::is_oin_organization;
use crate::error::ApiError;
use crate::evaluation::{self, Audience, Item};
use crate::state::{AppState, RecipientState};

/// Most blinded pseudonyms in one `POST /v1/rekey`.
pub const MAX_REKEY_ELEMENTS: usize = 10_000;

/// Request members that may be named in an error's `field` (anything else
/// could be a caller-chosen string and is never echoed).
const MEMBERS: &[&str] = &[
    "encryptedPersonalId",
    "recipientOrganization",
    "recipientScope",
    "pseudonymType",
    "records",
    "items",
    "type",
    "blindedInput",
    "fromVersion",
    "toVersion",
    "blindedPseudonyms",
];

type Shared = State<Arc<AppState>>;

/// Whether a serde path (`records[3].items[0].type`) consists of known
/// member names and indices only.
fn is_member_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|segment| {
            let name = segment.split('[').next().unwrap_or_default();
            let indices_ok = segment
                .get(name.len()..)
                .unwrap_or_default()
                .split_terminator(']')
                .all(|ix| {
                    ix.strip_prefix('[')
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                });
            MEMBERS.contains(&name) && indices_ok
        })
}

/// Parses a JSON body into `T`; any failure is 422 with, where it is safe,
/// the member at fault. serde's messages are never passed on: they can
/// quote the input.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let inner = e.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(ApiError::unprocessable(
                    "request.malformedJson",
                    "the request body is not valid JSON",
                ));
            }
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            let text = inner.to_string();
            let missing = text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .filter(|name| MEMBERS.contains(name));
            return Err(match missing {
                Some(name) => {
                    let field = if path.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{path}.{name}")
                    };
                    let err = ApiError::unprocessable(
                        "request.missingMember",
                        "a required member is missing",
                    );
                    if is_member_path(&field) {
                        err.field(&field)
                    } else {
                        err
                    }
                }
                None => {
                    let err = ApiError::unprocessable(
                        "request.invalid",
                        "the request body does not have the required shape (a member has the wrong type)",
                    );
                    if is_member_path(&path) {
                        err.field(&path)
                    } else {
                        err
                    }
                }
            });
        }
    };
    de.end().map_err(|_| {
        ApiError::unprocessable(
            "request.malformedJson",
            "the request body is not valid JSON",
        )
    })?;
    Ok(value)
}

/// The body, or 413/400 when it could not be read.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large()
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.unreadable",
                "the request body could not be read",
            )
        }
    })
}

/// 422 for a malformed organisation or scope, 404 for an unknown recipient.
fn resolve_recipient(
    state: &AppState,
    organization: &str,
    scope: &str,
) -> Result<Arc<RecipientState>, ApiError> {
    if !is_oin_organization(organization) {
        return Err(ApiError::unprocessable(
            "recipientOrganization.invalid",
            "recipientOrganization must be `oin:` followed by 20 digits",
        )
        .field("recipientOrganization"));
    }
    if Recipient::new(organization, scope).is_err() {
        return Err(ApiError::unprocessable(
            "recipientScope.invalid",
            "recipientScope must be 1 to 128 visible ASCII characters without `|`",
        )
        .field("recipientScope"));
    }
    state
        .recipient(organization, scope)
        .ok_or_else(ApiError::recipient_unknown)
}

/// What a caller asks of a recipient: evaluations, or re-keying.
#[derive(Clone, Copy)]
enum Permission {
    Evaluate,
    Rekey,
}

/// The checks every evaluating request makes once its body is parsed: the
/// recipient exists, the caller may ask this of it, and the request's
/// `Origin` is one of the recipient's forms. Records the recipient in the
/// audit draft.
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    (organization, scope): (&str, &str),
    permission: Permission,
    draft: &mut Draft,
) -> Result<Arc<RecipientState>, ApiError> {
    let recipient = resolve_recipient(state, organization, scope)?;
    draft.recipient(&recipient);
    let (allowed, refusal) = match permission {
        Permission::Evaluate => (
            caller.may_call(&recipient.organization, &recipient.scope),
            "the caller may not request evaluations for this recipient",
        ),
        Permission::Rekey => (
            caller.may_rekey(&recipient.organization, &recipient.scope),
            "the caller may not rekey for this recipient",
        ),
    };
    if !allowed {
        return Err(ApiError::caller_not_allowed(refusal));
    }
    check_origin(headers, &recipient)?;
    Ok(recipient)
}

/// 403 when the request carries an `Origin` that is not the recipient's.
fn check_origin(headers: &HeaderMap, recipient: &RecipientState) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(value) => {
            let allowed = value.to_str().is_ok_and(|origin| {
                recipient
                    .allowed_origins
                    .contains(&origin.to_ascii_lowercase())
            });
            if allowed {
                Ok(())
            } else {
                Err(ApiError::origin_not_allowed())
            }
        }
    }
}

/// A pseudonym type code: 422 if unknown, 403 if the recipient may not have it.
fn check_type(
    recipient: &RecipientState,
    code: &str,
    field: &str,
) -> Result<PseudonymType, ApiError> {
    let t = PseudonymType::from_str(code).map_err(|_| {
        ApiError::unprocessable("pseudonymType.unknown", "not a known pseudonym type code")
            .field(field)
    })?;
    if recipient.allowed_types.contains(&t) {
        Ok(t)
    } else {
        Err(ApiError::type_not_allowed(field))
    }
}

/// What the audit row of a request will say, filled in as it is handled.
struct Draft {
    event: AuditEvent,
}

impl Draft {
    fn new(endpoint: &str) -> Self {
        Draft {
            event: AuditEvent {
                endpoint: endpoint.into(),
                ..AuditEvent::default()
            },
        }
    }

    fn caller(&mut self, caller: &Caller) {
        self.event.caller = caller.name().to_owned();
    }

    fn recipient(&mut self, recipient: &RecipientState) {
        self.event.organization = recipient.organization.clone();
        self.event.scope = recipient.scope.clone();
    }

    fn count(&mut self, label: &str, n: u64) {
        *self.event.types.entry(label.to_owned()).or_insert(0) += n;
        self.event.total += n;
    }

    fn finish(mut self, status: StatusCode, outcome: &str) -> AuditEvent {
        self.event.time_ms = pseudoform_protocol::unix_now_millis();
        self.event.status = status.as_u16();
        self.event.outcome = outcome.to_owned();
        self.event
    }
}

/// Audits a refused request and answers it.
async fn refuse(state: &AppState, draft: Draft, error: ApiError) -> Response {
    let code = error.code().to_owned();
    state
        .audit
        .record_detached(draft.finish(error.status(), &code))
        .await;
    error.into_response()
}

/// Audits an accepted request (waiting for the commit), then answers it.
async fn accept(state: &AppState, draft: Draft, response: Response) -> Result<Response, ApiError> {
    if state.audit.record(draft.finish(StatusCode::OK, "ok")).await {
        Ok(response)
    } else {
        Err(ApiError::internal())
    }
}

async fn keys_of(
    state: &AppState,
    recipient: &RecipientState,
) -> Result<Arc<crate::keys::DomainKeys>, ApiError> {
    state
        .domain_keys(&recipient.organization, &recipient.scope)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key domain unavailable");
            ApiError::internal()
        })
}

/// Audits and answers an evaluating request: its response if the audit row
/// is written (else a refusal, so nothing is answered unaudited), or the
/// refusal of its error.
async fn conclude(
    state: &Arc<AppState>,
    path: &'static str,
    draft: Draft,
    result: Result<Response, ApiError>,
) -> Response {
    match result {
        Ok(response) => match accept(state, draft, response).await {
            Ok(r) => r,
            Err(e) => refuse(state, Draft::new(path), e).await,
        },
        Err(e) => refuse(state, draft, e).await,
    }
}

/// `POST /oprf/eval`.
pub async fn oprf_eval(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut draft = Draft::new("/oprf/eval");
    let result = oprf_eval_inner(&state, &headers, body, &mut draft).await;
    conclude(&state, "/oprf/eval", draft, result).await
}

async fn oprf_eval_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    draft: &mut Draft,
) -> Result<Response, ApiError> {
    let caller = state.callers.authenticate(headers)?;
    draft.caller(&caller);
    let request: EvalRequest = parse_json(&body_bytes(body)?)?;
    let recipient = admit(
        state,
        headers,
        &caller,
        (&request.recipient_organization, &request.recipient_scope),
        Permission::Evaluate,
        draft,
    )?;
    let code = request.pseudonym_type.as_deref().unwrap_or("B");
    let pseudonym_type = check_type(&recipient, code, "pseudonymType").inspect_err(|_| {
        if let Ok(t) = PseudonymType::from_str(code) {
            draft.count(t.code(), 1);
        }
    })?;
    draft.count(pseudonym_type.code(), 1);
    caller.take(1)?;
    let keys = keys_of(state, &recipient).await?;
    draft.event.key_versions = keys.version_numbers();
    let item = Item {
        pseudonym_type,
        element: request.encrypted_personal_id,
        field: "encryptedPersonalId".into(),
    };
    let iat = pseudoform_protocol::unix_now();
    let signer = Arc::clone(&state.signing_key);
    let jwe = evaluation::run(move || {
        let to = Audience {
            organization: &recipient.organization,
            scope: &recipient.scope,
            key: &recipient.key,
            signer: &signer,
        };
        evaluation::single(&to, &keys, &item, iat)
    })
    .await?;
    Ok(Json(EvalResponse { jwe }).into_response())
}

/// `POST /v1/evaluate`.
pub async fn evaluate(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut draft = Draft::new("/v1/evaluate");
    let result = evaluate_inner(&state, &headers, body, &mut draft).await;
    conclude(&state, "/v1/evaluate", draft, result).await
}

/// The items of a batch, with types checked, limits enforced and counted.
fn batch_items(
    recipient: &RecipientState,
    request: BatchRequest,
    draft: &mut Draft,
) -> Result<Vec<Vec<Item>>, ApiError> {
    if request.records.is_empty() {
        return Err(
            ApiError::unprocessable("records.empty", "records must not be empty").field("records"),
        );
    }
    if request.records.len() > MAX_RECORDS_PER_REQUEST {
        return Err(ApiError::unprocessable(
            "records.tooMany",
            "too many records in one request (at most 1000)",
        )
        .field("records"));
    }
    let mut records = Vec::with_capacity(request.records.len());
    for (i, record) in request.records.into_iter().enumerate() {
        if record.items.is_empty() {
            return Err(ApiError::unprocessable(
                "record.empty",
                "a record must have at least one item",
            )
            .field(&format!("records[{i}].items")));
        }
        if record.items.len() > MAX_ITEMS_PER_RECORD {
            return Err(ApiError::unprocessable(
                "record.tooManyItems",
                "too many items in one record (at most 10)",
            )
            .field(&format!("records[{i}].items")));
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(record.items.len());
        for (j, item) in record.items.into_iter().enumerate() {
            let field = format!("records[{i}].items[{j}].type");
            let t = check_type(recipient, &item.pseudonym_type, &field).inspect_err(|_| {
                if let Ok(t) = PseudonymType::from_str(&item.pseudonym_type) {
                    draft.count(t.code(), 1);
                }
            })?;
            if !seen.insert(t) {
                return Err(ApiError::unprocessable(
                    "record.duplicateType",
                    "each pseudonym type may occur once per record",
                )
                .field(&field));
            }
            draft.count(t.code(), 1);
            items.push(Item {
                pseudonym_type: t,
                element: item.blinded_input,
                field: format!("records[{i}].items[{j}].blindedInput"),
            });
        }
        records.push(items);
    }
    Ok(records)
}

async fn evaluate_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    draft: &mut Draft,
) -> Result<Response, ApiError> {
    let caller = state.callers.authenticate(headers)?;
    draft.caller(&caller);
    let request: BatchRequest = parse_json(&body_bytes(body)?)?;
    let recipient = admit(
        state,
        headers,
        &caller,
        (&request.recipient_organization, &request.recipient_scope),
        Permission::Evaluate,
        draft,
    )?;
    let records = batch_items(&recipient, request, draft)?;
    caller.take(draft.event.total)?;
    let keys = keys_of(state, &recipient).await?;
    draft.event.key_versions = keys.version_numbers();
    let iat = pseudoform_protocol::unix_now();
    let signer = Arc::clone(&state.signing_key);
    let jwes = evaluation::run(move || {
        let to = Audience {
            organization: &recipient.organization,
            scope: &recipient.scope,
            key: &recipient.key,
            signer: &signer,
        };
        evaluation::batch(&to, &keys, &records, iat)
    })
    .await?;
    let response = BatchResponse {
        records: jwes.into_iter().map(|jwe| RecordResult { jwe }).collect(),
    };
    Ok(Json(response).into_response())
}

/// `POST /v1/rekey`.
pub async fn rekey(
    State(state): Shared,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut draft = Draft::new("/v1/rekey");
    let result = rekey_inner(&state, &headers, body, &mut draft).await;
    conclude(&state, "/v1/rekey", draft, result).await
}

async fn rekey_inner(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    draft: &mut Draft,
) -> Result<Response, ApiError> {
    let caller = state.callers.authenticate(headers)?;
    draft.caller(&caller);
    let request: RekeyRequest = parse_json(&body_bytes(body)?)?;
    let recipient = admit(
        state,
        headers,
        &caller,
        (&request.recipient_organization, &request.recipient_scope),
        Permission::Rekey,
        draft,
    )?;
    let n = request.blinded_pseudonyms.len();
    if n == 0 {
        return Err(ApiError::unprocessable(
            "blindedPseudonyms.empty",
            "blindedPseudonyms must not be empty",
        )
        .field("blindedPseudonyms"));
    }
    if n > MAX_REKEY_ELEMENTS {
        return Err(ApiError::unprocessable(
            "blindedPseudonyms.tooMany",
            "too many elements in one request (at most 10000)",
        )
        .field("blindedPseudonyms"));
    }
    if request.from_version == request.to_version {
        return Err(ApiError::unprocessable(
            "rekey.sameVersion",
            "fromVersion and toVersion must differ",
        )
        .field("toVersion"));
    }
    draft.count("rekey", u64::try_from(n).unwrap_or(u64::MAX));
    draft.event.key_versions = vec![request.from_version, request.to_version];
    let keys = keys_of(state, &recipient).await?;
    let not_active = |field: &str| {
        ApiError::unprocessable(
            "keyVersion.notActive",
            "the key version is not an active version of the recipient",
        )
        .field(field)
    };
    let from = keys
        .version(request.from_version)
        .ok_or_else(|| not_active("fromVersion"))?;
    let to = keys
        .version(request.to_version)
        .ok_or_else(|| not_active("toVersion"))?;
    let factor = evaluation::rekey_factor(from, to)?;
    caller.take(draft.event.total)?;
    let elements = request.blinded_pseudonyms;
    let elements = evaluation::run(move || evaluation::rekey(&factor, &elements)).await?;
    Ok(Json(RekeyResponse { elements }).into_response())
}

/// Query of `GET /v1/policy`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyQuery {
    recipient_organization: Option<String>,
    recipient_scope: Option<String>,
}

/// `GET /v1/policy`: public, no token.
pub async fn policy(
    State(state): Shared,
    query: Result<Query<PolicyQuery>, QueryRejection>,
) -> Response {
    match policy_inner(&state, query).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn policy_inner(
    state: &AppState,
    query: Result<Query<PolicyQuery>, QueryRejection>,
) -> Result<Policy, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::unprocessable(
            "request.invalid",
            "the query must have recipientOrganization and recipientScope",
        )
    })?;
    let missing = |field: &str| {
        ApiError::unprocessable(
            "request.missingMember",
            "a required query parameter is missing",
        )
        .field(field)
    };
    let organization = query
        .recipient_organization
        .ok_or_else(|| missing("recipientOrganization"))?;
    let scope = query
        .recipient_scope
        .ok_or_else(|| missing("recipientScope"))?;
    let recipient = resolve_recipient(state, &organization, &scope)?;
    let keys = keys_of(state, &recipient).await?;
    let (key_version, _) = keys.current().ok_or_else(ApiError::internal)?;
    Ok(Policy {
        recipient_organization: recipient.organization.clone(),
        recipient_scope: recipient.scope.clone(),
        allowed_types: recipient
            .allowed_types
            .iter()
            .map(|t| t.code().to_owned())
            .collect(),
        key_version,
        max_records_per_request: MAX_RECORDS_PER_REQUEST,
    })
}

/// `GET /v1/signing-keys`: public, no token. The JWKS of the key that signs
/// the claims inside every JWE, for registries to pin.
pub async fn signing_keys(State(state): Shared) -> Response {
    Json(serde_json::json!({ "keys": [state.signing_key.public_jwk()] })).into_response()
}

/// `GET /health`.
pub async fn health() -> Response {
    Json(BTreeMap::from([("status", "ok")])).into_response()
}

/// Any other path.
pub async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "notFound", "no such endpoint").into_response()
}

/// A known path with another method.
pub async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "methodNotAllowed",
        "the endpoint does not support this method",
    )
    .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn member_paths() {
        assert!(is_member_path("records[3].items[0].blindedInput"));
        assert!(is_member_path("recipientScope"));
        assert!(!is_member_path("records[3].foo"));
        assert!(!is_member_path("records[x]"));
        assert!(!is_member_path(""));
    }

    #[test]
    fn json_errors_never_echo_input() {
        let e = parse_json::<EvalRequest>(b"{\"encryptedPersonalId\": 123456789}").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body().field.as_deref(), Some("encryptedPersonalId"));
        assert!(!e.body().message.contains("123456789"));
        let e = parse_json::<EvalRequest>(
            b"{\"encryptedPersonalId\": \"x\", \"recipientOrganization\": \"o\"}",
        )
        .unwrap_err();
        assert_eq!(e.code(), "request.missingMember");
        assert_eq!(e.body().field.as_deref(), Some("recipientScope"));
        let e = parse_json::<BatchRequest>(
            b"{\"recipientOrganization\":\"o\",\"recipientScope\":\"s\",\"records\":[{\"items\":[{\"type\":\"B\"}]}]}",
        )
        .unwrap_err();
        assert_eq!(
            e.body().field.as_deref(),
            Some("records[0].items[0].blindedInput")
        );
        let e = parse_json::<EvalRequest>(b"{\"999990007\": [").unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
        let e = parse_json::<EvalRequest>(b"").unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
        let e = parse_json::<EvalRequest>(
            b"{\"encryptedPersonalId\":\"x\",\"recipientOrganization\":\"o\",\"recipientScope\":\"s\"} x",
        )
        .unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
    }
}
