//! The HTTP endpoints of the TTP.
//!
//! The evaluating endpoints (`POST /oprf/eval`, `/v1/evaluate`,
//! `/v1/rekey`) are one handler, [`audited`], over their request types
//! ([`Evaluating`]). Each checks, in this order: the access token and its
//! DPoP proof (401, [`Authenticated`]), the JSON shape (413, 422,
//! [`ApiJson`]), the recipient, the caller's role and rights for it and the
//! `Origin` ([`admission`]), the types and limits (422, 403), the budgets
//! (429, [`budget`]), and then evaluates — where a bad blinded element
//! fails the whole request (400). Each request is audited, accepted or
//! refused; an accepted one is answered only once its audit row is
//! committed. The token endpoint is [`crate::token`].

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_core::PseudonymType;
use pseudoform_protocol::registry::is_reversible_digest;
use pseudoform_protocol::ttp::{
    BatchRecord, BatchRequest, BatchResponse, EvalRequest, EvalResponse, Policy, RecordResult,
    RekeyRequest, RekeyResponse, MAX_ITEMS_PER_RECORD, MAX_RECORDS_PER_REQUEST, MAX_REKEY_ELEMENTS,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::access::Principal;
use crate::admission::{self, Permission};
use crate::audit::AuditDraft;
use crate::budget;
use crate::config::REVERSIBLE_TYPE;
use crate::error::ApiError;
use crate::evaluation::{self, Audience, Item, Keys, RecordWork};
use crate::extract::{ApiJson, Authenticated};
use crate::keys::DomainKeys;
use crate::queue::{Class, CHUNK_EVALUATIONS};
use crate::security;
use crate::state::{AppState, RecipientState};

type Shared = State<Arc<AppState>>;

/// The request of an evaluating endpoint: what it asks of which recipient,
/// answered once its caller is authenticated, its body parsed and the
/// caller admitted. [`audited`] is its handler.
pub trait Evaluating: DeserializeOwned + Send + 'static {
    /// The endpoint's path, as routed and audited.
    const PATH: &'static str;
    /// What the caller must be allowed for the recipient.
    const PERMISSION: Permission;

    /// The recipient `(organization, scope)` the request names.
    fn recipient(&self) -> (&str, &str);

    /// Answers the admitted request, filling in `draft`.
    fn answer(
        self,
        to: Admitted<'_>,
        draft: &mut AuditDraft,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send;
}

/// An admitted request's context: the state, its recipient and its principal.
#[derive(Debug)]
pub struct Admitted<'a> {
    /// The TTP's state.
    pub state: &'a AppState,
    /// The recipient the caller may ask this of.
    pub recipient: Arc<RecipientState>,
    /// The authenticated party.
    pub principal: &'a Principal,
}

impl Admitted<'_> {
    /// Charges `n` evaluations to the principal's budgets (429 when spent).
    async fn spend(&self, endpoint: &str, n: u64) -> Result<(), ApiError> {
        budget::spend(self.state, endpoint, self.principal, &self.recipient, n).await
    }
}

/// The handler of every evaluating endpoint: authenticates, parses the
/// body as `R`, admits the caller to its recipient, answers it, and audits
/// the request whatever the outcome.
pub async fn audited<R: Evaluating>(
    State(state): Shared,
    headers: HeaderMap,
    caller: Result<Authenticated, ApiError>,
    body: Result<ApiJson<R>, ApiError>,
) -> Response {
    let mut draft = AuditDraft::new(R::PATH);
    let result = async {
        let Authenticated(principal) = caller?;
        draft.principal(&principal);
        let ApiJson(request) = body?;
        let recipient = admission::admit(
            &state,
            &headers,
            &principal,
            request.recipient(),
            R::PERMISSION,
            &mut draft,
        )?;
        let to = Admitted {
            state: &state,
            recipient,
            principal: &principal,
        };
        request.answer(to, &mut draft).await
    }
    .await;
    if R::PERMISSION == Permission::Evaluate {
        evaluation_event(&state, &draft, &result);
    }
    conclude(&state, draft, result).await
}

/// The national service's evaluation event of an authenticated caller's
/// evaluating request ([`security::OprfEvent`]); none for a refusal that
/// has its own event or none there (credentials, roles, budgets, shapes).
fn evaluation_event(state: &AppState, draft: &AuditDraft, result: &Result<Response, ApiError>) {
    use security::{OprfEvent, OprfSubject};
    let row = draft.so_far();
    if row.caller.is_empty() {
        return;
    }
    let (event, error_type) = match result {
        Ok(_) => (OprfEvent::EvalOk, ""),
        Err(ApiError::RecipientUnknown) => (OprfEvent::NoRecipientKey, ""),
        Err(ApiError::BlindedInvalid { .. }) => (OprfEvent::EvalFailed, "invalid_blinded_input"),
        Err(ApiError::Internal) => (OprfEvent::EvalFailed, "crypto_evaluation_failure"),
        Err(_) => return,
    };
    let recipient = state.recipient(&row.organization, &row.scope);
    security::emit_oprf(
        event,
        &OprfSubject {
            endpoint: &row.endpoint,
            acting: &row.caller,
            on_behalf_of: &row.provider,
            person: &row.person,
            target: &row.organization,
            key_version: row.key_versions.first().copied(),
            recipient_kid: recipient.as_ref().map_or("", |r| r.key.kid()),
            error_type,
        },
    );
}

/// Audits the request of `draft` and gives its answer: an accepted one only
/// once its row is committed (else a 500, itself audited, so that nothing
/// is answered unaudited); a refused one at once.
async fn conclude(
    state: &AppState,
    draft: AuditDraft,
    result: Result<Response, ApiError>,
) -> Response {
    let (draft, error) = match result {
        Ok(response) => {
            let endpoint = draft.endpoint().to_owned();
            if state
                .audit
                .record(draft.finish(StatusCode::OK.as_u16(), "ok"))
                .await
            {
                return response;
            }
            (AuditDraft::new(&endpoint), ApiError::Internal)
        }
        Err(error) => (draft, error),
    };
    state
        .audit
        .refuse(draft.finish(error.status().as_u16(), error.code()))
        .await;
    error.into_response()
}

/// The keys of a recipient's domain; 500 when they cannot be had.
async fn keys_of(
    state: &AppState,
    recipient: &RecipientState,
) -> Result<Arc<DomainKeys>, ApiError> {
    state
        .domain_keys(&recipient.organization, &recipient.scope)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "key domain unavailable");
            ApiError::Internal
        })
}

/// Runs the pieces of `works` (cost, work) in the evaluation queue as
/// `class`, each with the JWEs' audience (one new `jti` for the request,
/// recorded in `draft`, and what the credential says), the recipient's keys
/// as they are when the piece starts (read there, so that a rotation or
/// retirement counts from the next piece on; the first piece's versions are
/// recorded in `draft`; `with_mrn`: also those bound to the credential's
/// provider) and the time of issue.
async fn evaluate_for<T, F>(
    to: &Admitted<'_>,
    draft: &mut AuditDraft,
    (class, with_mrn): (Class, bool),
    works: Vec<(usize, F)>,
) -> Result<Vec<T>, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Audience<'_>, &Keys, i64) -> Result<T, ApiError> + Send + 'static,
{
    let provider = to.principal.provider.clone();
    if with_mrn && provider.is_none() {
        // Admission lets type MRN through only for a provider's credential.
        return Err(ApiError::Internal);
    }
    let jti: Arc<str> = Arc::from(evaluation::jti()?);
    draft.jti(&jti);
    let lifetime = to.state.jwe_lifetime;
    let said = Arc::new((provider, to.principal.act.clone(), to.principal.cnf()));
    let pieces = works
        .into_iter()
        .map(|(cost, work)| {
            let recipient = Arc::clone(&to.recipient);
            let signer = Arc::clone(&to.state.signing_key);
            let cache = Arc::clone(&to.state.keys);
            let (jti, said) = (Arc::clone(&jti), Arc::clone(&said));
            let piece = move || {
                let (organization, scope) = (&recipient.organization, &recipient.scope);
                let domain = cache.load(organization, scope).map_err(|e| {
                    tracing::error!(error = %e, "key domain unavailable");
                    ApiError::Internal
                })?;
                let (provider, act, cnf) = &*said;
                let mrn = match (with_mrn, provider) {
                    (true, Some(p)) => {
                        Some(domain.for_provider(organization, scope, p).map_err(|e| {
                            tracing::error!(error = %e, "provider binding unavailable");
                            ApiError::Internal
                        })?)
                    }
                    _ => None,
                };
                let iat = pseudoform_protocol::unix_now();
                let audience = Audience::of(
                    &recipient,
                    &signer,
                    lifetime,
                    &jti,
                    (provider.as_deref(), act.as_ref(), cnf.as_ref()),
                );
                let versions = domain.version_numbers();
                let keys = Keys { domain, mrn };
                // The versions are audited whether the work succeeds or not.
                Ok((versions, work(&audience, &keys, iat)))
            };
            (cost, piece)
        })
        .collect();
    let results = to.state.queue.run_all(class, pieces).await?;
    if let Some((versions, _)) = results.first() {
        draft.key_versions(versions.clone());
    }
    results.into_iter().map(|(_, result)| result).collect()
}

/// `POST /oprf/eval`: one blinded element, the national request.
impl Evaluating for EvalRequest {
    const PATH: &'static str = "/oprf/eval";
    const PERMISSION: Permission = Permission::Evaluate;

    async fn answer(self, to: Admitted<'_>, draft: &mut AuditDraft) -> Result<Response, ApiError> {
        const FIELD: &str = "pseudonymType";
        // No type is the national request: the BSN.
        let code = self.pseudonym_type.as_deref().unwrap_or("B");
        let pseudonym_type = admission::known_type(code, FIELD)?;
        draft.count(pseudonym_type.code(), 1);
        admission::allowed_type(&to.recipient, pseudonym_type, FIELD)?;
        to.spend(Self::PATH, 1).await?;
        let item = Item {
            pseudonym_type,
            element: self.encrypted_personal_id,
            field: "encryptedPersonalId".into(),
        };
        let mrn = pseudonym_type == PseudonymType::Mrn;
        let work = move |audience: &Audience<'_>, keys: &Keys, iat| {
            evaluation::single(audience, keys, &item, iat)
        };
        let jwe = evaluate_for(&to, draft, (Class::Interactive, mrn), vec![(1, work)])
            .await?
            .pop()
            .ok_or(ApiError::Internal)?;
        Ok(Json(EvalResponse { jwe }).into_response())
    }

    fn recipient(&self) -> (&str, &str) {
        (&self.recipient_organization, &self.recipient_scope)
    }
}

/// The items of a batch, with types checked, limits enforced and counted,
/// and each record's `reversible` digest checked: its form (422
/// `request.invalid`) and that the recipient may receive `R` (403
/// `type.notAllowed`), both naming `records[i].reversible`. A digest is not
/// counted: nothing is evaluated for it.
fn batch_items(
    recipient: &RecipientState,
    records: Vec<BatchRecord>,
    draft: &mut AuditDraft,
) -> Result<Vec<RecordWork>, ApiError> {
    if records.is_empty() {
        return Err(ApiError::NoRecords);
    }
    if records.len() > MAX_RECORDS_PER_REQUEST {
        return Err(ApiError::TooManyRecords);
    }
    let mut batch = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        let field = || format!("records[{i}].items");
        if record.items.is_empty() {
            return Err(ApiError::EmptyRecord { field: field() });
        }
        if record.items.len() > MAX_ITEMS_PER_RECORD {
            return Err(ApiError::TooManyItems { field: field() });
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(record.items.len());
        for (j, item) in record.items.into_iter().enumerate() {
            let field = format!("records[{i}].items[{j}].type");
            let t = admission::known_type(&item.pseudonym_type, &field)?;
            admission::allowed_type(recipient, t, &field)
                .inspect_err(|_| draft.count(t.code(), 1))?;
            if !seen.insert(t) {
                return Err(ApiError::DuplicateType { field });
            }
            draft.count(t.code(), 1);
            items.push(Item {
                pseudonym_type: t,
                element: item.blinded_input,
                field: format!("records[{i}].items[{j}].blindedInput"),
            });
        }
        if let Some(digest) = &record.reversible {
            let field = || format!("records[{i}].reversible");
            if !is_reversible_digest(digest) {
                return Err(ApiError::WrongShape {
                    field: Some(field()),
                });
            }
            if !recipient.allows_reversible {
                return Err(ApiError::TypeNotAllowed { field: field() });
            }
        }
        batch.push(RecordWork {
            items,
            reversible: record.reversible,
        });
    }
    Ok(batch)
}

/// `POST /v1/evaluate`: a batch of records, one JWE per record.
impl Evaluating for BatchRequest {
    const PATH: &'static str = pseudoform_protocol::ttp::EVALUATE_PATH;
    const PERMISSION: Permission = Permission::Evaluate;

    async fn answer(self, to: Admitted<'_>, draft: &mut AuditDraft) -> Result<Response, ApiError> {
        if to.recipient.key.is_national() {
            return Err(ApiError::NationalSingleOnly);
        }
        let records = batch_items(&to.recipient, self.records, draft)?;
        // Cheap syntax check first, in order, so the error names the first bad item.
        for item in records.iter().flat_map(|r| &r.items) {
            evaluation::decode(&item.element, &item.field)?;
        }
        to.spend(Self::PATH, draft.total()).await?;
        let mrn = records
            .iter()
            .flat_map(|r| &r.items)
            .any(|i| i.pseudonym_type == PseudonymType::Mrn);
        // One record is what a form sends: interactive. Larger batches are
        // bulk work, cut into chunks of about CHUNK_EVALUATIONS evaluations.
        let class = if records.len() == 1 {
            Class::Interactive
        } else {
            Class::Bulk
        };
        // (index of the chunk's first record, evaluations, records)
        let mut chunks: Vec<(usize, usize, Vec<RecordWork>)> = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            let cost = record.items.len();
            match chunks.last_mut() {
                Some((_, n, chunk)) if *n + cost <= CHUNK_EVALUATIONS => {
                    *n += cost;
                    chunk.push(record);
                }
                _ => chunks.push((i, cost, vec![record])),
            }
        }
        let works = chunks
            .into_iter()
            .map(|(first, cost, chunk)| {
                let work = move |audience: &Audience<'_>, keys: &Keys, iat| {
                    evaluation::records(audience, keys, (first, &chunk), iat)
                };
                (cost, work)
            })
            .collect();
        let jwes = evaluate_for(&to, draft, (class, mrn), works).await?;
        let records = jwes
            .into_iter()
            .flatten()
            .map(|jwe| RecordResult { jwe })
            .collect();
        Ok(Json(BatchResponse { records }).into_response())
    }

    fn recipient(&self) -> (&str, &str) {
        (&self.recipient_organization, &self.recipient_scope)
    }
}

/// `POST /v1/rekey`: blinded pseudonyms moved between key versions.
impl Evaluating for RekeyRequest {
    const PATH: &'static str = "/v1/rekey";
    const PERMISSION: Permission = Permission::Rekey;

    async fn answer(self, to: Admitted<'_>, draft: &mut AuditDraft) -> Result<Response, ApiError> {
        let n = self.blinded_pseudonyms.len();
        if n == 0 {
            return Err(ApiError::NoElements);
        }
        if n > MAX_REKEY_ELEMENTS {
            return Err(ApiError::TooManyElements);
        }
        if self.from_version == self.to_version {
            return Err(ApiError::SameVersion);
        }
        draft.count("rekey", u64::try_from(n).unwrap_or(u64::MAX));
        draft.key_versions(vec![self.from_version, self.to_version]);
        let keys = keys_of(to.state, &to.recipient).await?;
        let version = |version, field| {
            keys.version(version)
                .ok_or(ApiError::VersionNotActive { field })
        };
        let from = version(self.from_version, "fromVersion")?;
        let to_key = version(self.to_version, "toVersion")?;
        let factor = evaluation::rekey_factor(from, to_key)?;
        to.spend(Self::PATH, draft.total()).await?;
        // Bulk work, in chunks; the error of a bad element names it.
        let factor = Arc::new(factor);
        let mut works = Vec::new();
        let mut elements = self.blinded_pseudonyms.into_iter();
        let mut offset = 0;
        loop {
            let chunk: Vec<String> = elements.by_ref().take(CHUNK_EVALUATIONS).collect();
            if chunk.is_empty() {
                break;
            }
            let (factor, start) = (Arc::clone(&factor), offset);
            offset += chunk.len();
            let cost = chunk.len();
            works.push((cost, move || evaluation::rekey(&factor, &chunk, start)));
        }
        let elements = to
            .state
            .queue
            .run_all(Class::Bulk, works)
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(Json(RekeyResponse { elements }).into_response())
    }

    fn recipient(&self) -> (&str, &str) {
        (&self.recipient_organization, &self.recipient_scope)
    }
}

/// Query of `GET /v1/policy`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyQuery {
    recipient_organization: Option<String>,
    recipient_scope: Option<String>,
}

/// `GET /v1/policy`: public, no token, not audited (not an evaluation).
/// Its `recipientKey` is the TTP's signed statement of the recipient's
/// public key, to which a browser encrypts the blind factors.
pub async fn policy(
    State(state): Shared,
    query: Result<Query<PolicyQuery>, QueryRejection>,
) -> Result<Json<Policy>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::WrongQuery)?;
    let organization = query
        .recipient_organization
        .ok_or(ApiError::MissingParameter {
            field: "recipientOrganization",
        })?;
    let scope = query.recipient_scope.ok_or(ApiError::MissingParameter {
        field: "recipientScope",
    })?;
    let recipient = admission::resolve(&state, &organization, &scope)?;
    let keys = keys_of(&state, &recipient).await?;
    let (key_version, _) = keys.current().ok_or(ApiError::Internal)?;
    Ok(Json(Policy {
        recipient_organization: recipient.organization.clone(),
        recipient_scope: recipient.scope.clone(),
        allowed_types: with_reversible(&recipient.allowed_types, recipient.allows_reversible),
        required_types: with_reversible(&recipient.required_types, recipient.requires_reversible),
        key_version,
        max_records_per_request: MAX_RECORDS_PER_REQUEST,
        recipient_key: Some(recipient.key_statement.clone()),
    }))
}

/// The codes of `types`, then [`REVERSIBLE_TYPE`] if `reversible`.
fn with_reversible(types: &[PseudonymType], reversible: bool) -> Vec<String> {
    types
        .iter()
        .map(|t| t.code().to_owned())
        .chain(reversible.then(|| REVERSIBLE_TYPE.to_owned()))
        .collect()
}

/// `GET /v1/signing-keys`: public, no token. The JWKS of the key that signs
/// the claims inside every JWE, for registries to pin.
pub async fn signing_keys(State(state): Shared) -> Response {
    Json(serde_json::json!({ "keys": [state.signing_key.public_jwk()] })).into_response()
}

/// `GET /health`: liveness — the process answers.
pub async fn health() -> Response {
    Json(BTreeMap::from([("status", "ok")])).into_response()
}

/// `GET /ready`: readiness — 200 while the audit log can be written and
/// the keys read, else 503 `server.notReady` (a load balancer sends no
/// evaluations to a TTP that would refuse them all).
pub async fn ready(State(state): Shared) -> Response {
    if state.ready().await {
        Json(BTreeMap::from([("status", "ready")])).into_response()
    } else {
        ApiError::NotReady.into_response()
    }
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// A known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
