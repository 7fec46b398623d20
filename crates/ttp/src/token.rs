//! `POST /v1/token`: the OAuth 2.0 token endpoint (form-urlencoded). Every
//! token it issues is DPoP-bound ([`crate::access`]); a `DPoP` proof of the
//! key to bind comes with every token request.
//!
//! - **Back ends**: `grant_type=client_credentials` with `private_key_jwt`
//!   (RFC 7523 §2.2): a client assertion signed by one of the caller's keys,
//!   `iss` = `sub` = its client id, `aud` the issuer or this endpoint's URL,
//!   `exp` at most 300 s ahead, its `jti` used once. A processor names the
//!   `provider` it acts for (one of its `acts_for`). A recipient gets only
//!   `scope=rekey`; asking to evaluate is 403.
//! - **Browsers**: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`
//!   (RFC 8693) with a subject token (`typ: pseudoform-subject+jwt`) signed
//!   by a provider's or processor's key for the clinician `sub`, the
//!   browser's key `cnf.jkt` and the form `origin`: the proof must be by
//!   that key, the request's `Origin` must be that origin, and the origin one
//!   of a recipient the caller delivers to (an identity frame's origin is
//!   one of every recipient, [`crate::config::FrameConfig`]). At most 120 s
//!   between `iat` and `exp`; its `jti` used once.
//! - **Validation tokens**: either grant with `scope=validate` and
//!   `audience=<recipientOrganization>|<recipientScope>`, for a provider or
//!   processor that delivers to that recipient; a browser's from one of the
//!   caller's `validation_origins` (not a form origin). The same DPoP-bound
//!   token with `aud` the recipient string: the registry accepts it at its
//!   validation endpoints, the TTP at none of its own
//!   ([`crate::access::verify_token`]). Nothing is charged for it.
//!
//! Answers are RFC 6749 §5.1 / §5.2 JSON with `Cache-Control: no-store`;
//! errors carry pseudoform's `code` too. Every request is audited: an
//! issued token with its own row, a refusal in its minute's aggregate.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::RawFormRejection;
use axum::extract::{RawForm, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::auth::{
    is_jti, is_person_id, validation_audience, AccessTokenClaims, Act, ClientAssertionClaims, Cnf,
    SubjectTokenClaims, TokenError as TokenErrorBody, TokenResponse, CLIENT_ASSERTION_TYPE,
    DPOP_WINDOW_SECONDS, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, MAX_ASSERTION_SECONDS,
    MAX_SUBJECT_TOKEN_SECONDS, TOKEN_PATH, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_DPOP,
    TOKEN_TYPE_JWT, TYP_SUBJECT_TOKEN,
};
use serde_json::Value;

use crate::access::{self, Scope};
use crate::audit::AuditDraft;
use crate::callers::Caller;
use crate::config::Role;
use crate::dpop::{self, Proof, ProofError};
use crate::error::ApiError;
use crate::jose;
use crate::ledger::{Once, OnceKind};
use crate::security::{self, Event, Subject};
use crate::state::AppState;

/// A refusal of the token endpoint, with its OAuth error, status and code;
/// its `Display` is the `error_description`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// 400 `invalid_request`: not a form, a parameter missing or twice.
    #[error(
        "the token request is malformed: a parameter is missing, repeated or not form-urlencoded"
    )]
    Malformed,
    /// 400 `unsupported_grant_type`.
    #[error("the grant type is not supported (client_credentials or token-exchange)")]
    UnsupportedGrant,
    /// 401 `invalid_client`: the client assertion is not valid.
    #[error("client authentication failed: the client assertion is not a valid private_key_jwt of a configured client")]
    InvalidClient,
    /// 401 `invalid_client`: the client assertion's `jti` was used before.
    #[error("the client assertion was used before; make a new one for each request")]
    AssertionReplayed,
    /// 400 `invalid_grant`: the subject token is not valid.
    #[error(
        "the subject token is not a valid subject token of a configured provider or processor"
    )]
    InvalidSubject,
    /// 400 `invalid_grant`: the subject token was used before.
    #[error("the subject token was used before")]
    SubjectReplayed,
    /// 400 `invalid_grant`: the proof's key is not the subject token's.
    #[error("the DPoP proof is not signed by the key the subject token names")]
    WrongKey,
    /// 400 `invalid_grant`: the `Origin` is not the subject token's.
    #[error("the request's Origin is not the origin the subject token names")]
    OriginMismatch,
    /// 403 `unauthorized_client`: the origin is not one of the caller's forms.
    #[error("the origin is not a form origin of a recipient the caller delivers to")]
    OriginNotAllowed,
    /// 403 `unauthorized_client`: the origin is not one of the caller's
    /// validation pages (`validation_origins`).
    #[error("the origin is not a validation origin of the caller")]
    ValidationOriginNotAllowed,
    /// 403 `unauthorized_client`: the caller's role never has this scope.
    #[error("the caller's role does not allow this scope (a recipient only re-keys; providers and processors evaluate and validate)")]
    RoleNotAllowed,
    /// 403 `unauthorized_client`: not a provider the caller may act for.
    #[error("the caller may not evaluate for this provider")]
    ProviderNotAllowed,
    /// 403 `unauthorized_client`: a validation token for a recipient the
    /// caller does not deliver to.
    #[error("the caller does not deliver to the recipient the audience names")]
    AudienceNotAllowed,
    /// 400 `invalid_request`: a validation token without its `audience`
    /// (`organization|scope`), or an `audience` for another scope.
    #[error("scope=validate needs audience=<recipientOrganization>|<recipientScope>, and only it takes an audience")]
    AudienceMissing,
    /// 400 `invalid_scope`.
    #[error("the scope is not known (evaluate, rekey or validate)")]
    InvalidScope,
    /// 400 `invalid_dpop_proof`: no proof.
    #[error("a DPoP proof is required (header DPoP)")]
    MissingProof,
    /// 400 `invalid_dpop_proof`: the proof is not valid for this request.
    #[error("the DPoP proof is not valid for this request")]
    InvalidProof,
    /// 400 `invalid_dpop_proof`: the proof was used before.
    #[error("the DPoP proof was used before")]
    ProofReplayed,
    /// 503 `temporarily_unavailable`.
    #[error("the TTP is busy; retry later")]
    Busy,
    /// 500 `server_error`.
    #[error("the TTP could not issue a token")]
    Internal,
}

impl TokenError {
    /// The OAuth `error`.
    pub fn error(self) -> &'static str {
        use TokenError::*;
        match self {
            Malformed | AudienceMissing => "invalid_request",
            UnsupportedGrant => "unsupported_grant_type",
            InvalidClient | AssertionReplayed => "invalid_client",
            InvalidSubject | SubjectReplayed | WrongKey | OriginMismatch => "invalid_grant",
            OriginNotAllowed
            | ValidationOriginNotAllowed
            | RoleNotAllowed
            | ProviderNotAllowed
            | AudienceNotAllowed => "unauthorized_client",
            InvalidScope => "invalid_scope",
            MissingProof | InvalidProof | ProofReplayed => "invalid_dpop_proof",
            Busy => "temporarily_unavailable",
            Internal => "server_error",
        }
    }

    /// pseudoform's stable code (the audit outcome).
    pub fn code(self) -> &'static str {
        use TokenError::*;
        match self {
            Malformed | AudienceMissing => "token.invalidRequest",
            UnsupportedGrant => "token.unsupportedGrant",
            InvalidClient => "token.invalidClient",
            AssertionReplayed => "token.assertionReplayed",
            InvalidSubject => "token.invalidSubjectToken",
            SubjectReplayed => "token.subjectTokenReplayed",
            WrongKey => "token.wrongKey",
            OriginMismatch => "token.originMismatch",
            OriginNotAllowed | ValidationOriginNotAllowed => "origin.notAllowed",
            RoleNotAllowed => "caller.notAllowed",
            ProviderNotAllowed | AudienceNotAllowed => "provider.notAllowed",
            InvalidScope => "token.invalidScope",
            MissingProof => "auth.missingProof",
            InvalidProof => "auth.invalidProof",
            ProofReplayed => pseudoform_protocol::auth::PROOF_REPLAYED,
            Busy => "service.busy",
            Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        use TokenError::*;
        match self {
            InvalidClient | AssertionReplayed => StatusCode::UNAUTHORIZED,
            OriginNotAllowed
            | ValidationOriginNotAllowed
            | RoleNotAllowed
            | ProviderNotAllowed
            | AudienceNotAllowed => StatusCode::FORBIDDEN,
            Busy => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = TokenErrorBody {
            error: self.error().into(),
            error_description: self.to_string(),
            code: self.code().into(),
        };
        let mut response = (self.status(), Json(body)).into_response();
        no_store(&mut response);
        if self == TokenError::Busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        }
        response
    }
}

/// The parameters of a token request: each at most once.
fn parameters(form: &[u8]) -> Result<HashMap<String, String>, TokenError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(form).map_err(|_| TokenError::Malformed)?;
    let mut map = HashMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        if map.insert(name, value).is_some() {
            return Err(TokenError::Malformed);
        }
    }
    Ok(map)
}

/// The payload of a compact JWS, unverified (only to find its issuer).
fn peek_payload(token: &str) -> Option<serde_json::Map<String, Value>> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    if token.len() > jose::MAX_JWT_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    match serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).ok()?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The configured caller that claims to have issued `token` (`iss`), and
/// the token's verified payload as `T` if one of its keys signed it.
fn signed_by_caller<T: serde::de::DeserializeOwned>(
    state: &AppState,
    token: &str,
) -> Option<(Arc<Caller>, T, Option<String>)> {
    let iss = peek_payload(token)?.get("iss")?.as_str()?.to_owned();
    let caller = state.callers.get(&iss)?;
    let (payload, header) = caller.verify(token)?;
    let claims = serde_json::from_slice(&payload).ok()?;
    Some((caller, claims, header.token_type().map(str::to_owned)))
}

/// Whether an assertion's `aud` (a string or a list) names `one` of `wanted`.
fn audience_ok(aud: &Value, wanted: &[&str]) -> bool {
    match aud {
        Value::String(s) => wanted.contains(&s.as_str()),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|s| wanted.contains(&s))),
        _ => false,
    }
}

/// Remembers a single-use id; its replay is `replayed`.
async fn once(
    state: &AppState,
    kind: OnceKind,
    issuer: &str,
    jti: &str,
    expires_at: i64,
    now: i64,
    replayed: TokenError,
) -> Result<(), TokenError> {
    match state.use_once(kind, issuer, jti, expires_at, now).await {
        Ok(Once::Fresh) => Ok(()),
        Ok(Once::Replayed) => Err(replayed),
        Ok(Once::Full) => Err(TokenError::Busy),
        Err(_) => Err(TokenError::Internal),
    }
}

/// The request's verified DPoP proof for the token endpoint.
fn proof_of(state: &AppState, headers: &HeaderMap, now: i64) -> Result<Proof, TokenError> {
    let proof = dpop::header(headers).map_err(|e| match e {
        ProofError::Missing => TokenError::MissingProof,
        ProofError::Invalid => TokenError::InvalidProof,
    })?;
    let url = format!("{}{TOKEN_PATH}", state.public_url);
    dpop::verify(proof, "POST", &url, None, now).map_err(|_| TokenError::InvalidProof)
}

/// The `aud` of the token asked for: for `scope=validate` the recipient
/// `organization|scope` of the `audience` parameter, which the caller must
/// deliver to (recorded in `draft`); else the TTP's issuer, and an
/// `audience` parameter is refused.
fn audience(
    state: &AppState,
    caller: &Caller,
    audience: Option<&str>,
    scope: Scope,
    draft: &mut AuditDraft,
) -> Result<String, TokenError> {
    if scope != Scope::Validate {
        return match audience {
            None => Ok(state.issuer.clone()),
            Some(_) => Err(TokenError::AudienceMissing),
        };
    }
    let (organization, recipient_scope) = audience
        .and_then(|a| a.split_once('|'))
        .ok_or(TokenError::AudienceMissing)?;
    let recipient = state
        .recipient(organization, recipient_scope)
        .filter(|r| caller.may_validate(&r.organization, &r.scope))
        .ok_or(TokenError::AudienceNotAllowed)?;
    draft.recipient(&recipient.organization, &recipient.scope);
    Ok(validation_audience(
        &recipient.organization,
        &recipient.scope,
    ))
}

/// What a grant decided: the token's claims.
struct Grant {
    caller: Arc<Caller>,
    claims: AccessTokenClaims,
    person: Option<String>,
}

/// `client_credentials` with `private_key_jwt`.
async fn client_credentials(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    draft: &mut AuditDraft,
    now: i64,
) -> Result<Grant, TokenError> {
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
        return Err(TokenError::InvalidClient);
    }
    let assertion = param("client_assertion").ok_or(TokenError::InvalidClient)?;
    let (caller, claims, _) = signed_by_caller::<ClientAssertionClaims>(state, assertion)
        .ok_or(TokenError::InvalidClient)?;
    draft.caller(caller.id());
    let token_url = format!("{}{TOKEN_PATH}", state.public_url);
    let valid = claims.iss == caller.id()
        && claims.sub == caller.id()
        && param("client_id").is_none_or(|id| id == caller.id())
        && audience_ok(&claims.aud, &[&state.issuer, &token_url])
        && claims.exp > now
        && claims.exp <= now + MAX_ASSERTION_SECONDS + DPOP_WINDOW_SECONDS
        && claims
            .iat
            .is_none_or(|iat| iat <= now + DPOP_WINDOW_SECONDS)
        && is_jti(&claims.jti);
    if !valid {
        return Err(TokenError::InvalidClient);
    }
    let scope = match param("scope") {
        None => Scope::of(caller.role()),
        Some(s) => Scope::parse(s).ok_or(TokenError::InvalidScope)?,
    };
    // A provider or processor also validates; a recipient only re-keys.
    let validates = scope == Scope::Validate && caller.role() != Role::Recipient;
    if scope != Scope::of(caller.role()) && !validates {
        return Err(TokenError::RoleNotAllowed);
    }
    let (sub, act) = match caller.role() {
        Role::Recipient => {
            if param("provider").is_some() {
                return Err(TokenError::Malformed);
            }
            (caller.party().to_owned(), None)
        }
        Role::Provider => (
            caller
                .provider_for(param("provider"))
                .ok_or(TokenError::ProviderNotAllowed)?,
            None,
        ),
        Role::Processor => (
            caller
                .provider_for(param("provider"))
                .ok_or(TokenError::ProviderNotAllowed)?,
            Some(Act::of(caller.party())),
        ),
    };
    let aud = audience(state, &caller, param("audience"), scope, draft)?;
    let proof = proof_of(state, headers, now)?;
    once(
        state,
        OnceKind::ClientAssertion,
        caller.id(),
        &claims.jti,
        claims.exp,
        now,
        TokenError::AssertionReplayed,
    )
    .await?;
    once(
        state,
        OnceKind::Proof,
        &proof.jkt,
        &proof.jti,
        proof.remember_until(now),
        now,
        TokenError::ProofReplayed,
    )
    .await?;
    Ok(Grant {
        claims: AccessTokenClaims {
            iss: state.issuer.clone(),
            aud,
            sub,
            client_id: caller.id().to_owned(),
            act,
            cnf: Cnf { jkt: proof.jkt },
            origin: None,
            scope: scope.name().to_owned(),
            iat: now,
            exp: now + state.tokens.backend_seconds,
            jti: random_jti()?,
        },
        caller,
        person: None,
    })
}

/// The token exchange of a browser.
async fn exchange(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    draft: &mut AuditDraft,
    now: i64,
) -> Result<Grant, TokenError> {
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("subject_token_type") != Some(TOKEN_TYPE_JWT) {
        return Err(TokenError::Malformed);
    }
    let subject = param("subject_token").ok_or(TokenError::Malformed)?;
    let (caller, claims, typ) =
        signed_by_caller::<SubjectTokenClaims>(state, subject).ok_or(TokenError::InvalidSubject)?;
    draft.caller(caller.id());
    if caller.role() == Role::Recipient {
        return Err(TokenError::RoleNotAllowed);
    }
    let valid = typ.is_some_and(|t| t.eq_ignore_ascii_case(TYP_SUBJECT_TOKEN))
        && claims.iss == caller.id()
        && claims.aud == state.issuer
        && is_person_id(&claims.sub)
        && is_jti(&claims.jti)
        && claims.iat <= now + DPOP_WINDOW_SECONDS
        && claims.exp > now
        && claims.exp - claims.iat <= MAX_SUBJECT_TOKEN_SECONDS;
    if !valid {
        return Err(TokenError::InvalidSubject);
    }
    let scope = match param("scope").map(Scope::parse) {
        None => Scope::Evaluate,
        Some(Some(s @ (Scope::Evaluate | Scope::Validate))) => s,
        Some(_) => return Err(TokenError::InvalidScope),
    };
    let provider = caller
        .provider_for(claims.provider.as_deref())
        .ok_or(TokenError::ProviderNotAllowed)?;
    draft.issued_for(Some(&provider), Some(&claims.sub));
    let aud = audience(state, &caller, param("audience"), scope, draft)?;
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .ok_or(TokenError::OriginMismatch)?;
    if origin != claims.origin {
        return Err(TokenError::OriginMismatch);
    }
    if scope == Scope::Validate {
        // A validation page, never a form: its own list.
        if !caller.validates_from(origin) {
            return Err(TokenError::ValidationOriginNotAllowed);
        }
    } else {
        let lowercase = origin.to_ascii_lowercase();
        let delivers_from = caller.domains().any(|(org, scope)| {
            state
                .recipient(org, scope)
                .is_some_and(|r| r.allowed_origins.contains(&lowercase))
        });
        if !delivers_from {
            return Err(TokenError::OriginNotAllowed);
        }
    }
    let proof = proof_of(state, headers, now)?;
    if proof.jkt != claims.cnf.jkt {
        return Err(TokenError::WrongKey);
    }
    once(
        state,
        OnceKind::SubjectToken,
        caller.id(),
        &claims.jti,
        claims.exp,
        now,
        TokenError::SubjectReplayed,
    )
    .await?;
    once(
        state,
        OnceKind::Proof,
        &proof.jkt,
        &proof.jti,
        proof.remember_until(now),
        now,
        TokenError::ProofReplayed,
    )
    .await?;
    let act = Act {
        sub: claims.sub.clone(),
        act: (caller.role() == Role::Processor).then(|| Box::new(Act::of(caller.party()))),
    };
    Ok(Grant {
        claims: AccessTokenClaims {
            iss: state.issuer.clone(),
            aud,
            sub: provider,
            client_id: caller.id().to_owned(),
            act: Some(act),
            cnf: Cnf { jkt: proof.jkt },
            origin: Some(claims.origin),
            scope: scope.name().to_owned(),
            iat: now,
            exp: now + state.tokens.browser_seconds,
            jti: random_jti()?,
        },
        person: Some(claims.sub),
        caller,
    })
}

/// A random 128-bit token id, hex.
fn random_jti() -> Result<String, TokenError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|_| TokenError::Internal)?;
    Ok(hex::encode(bytes))
}

/// `POST /v1/token`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<RawForm, RawFormRejection>,
) -> Response {
    let mut draft = AuditDraft::new(TOKEN_PATH);
    let now = pseudoform_protocol::unix_now();
    let result = async {
        let RawForm(form) = form.map_err(|_| TokenError::Malformed)?;
        let params = parameters(&form)?;
        let grant = match params.get("grant_type").map(String::as_str) {
            Some(GRANT_CLIENT_CREDENTIALS) => {
                client_credentials(&state, &params, &headers, &mut draft, now).await?
            }
            Some(GRANT_TOKEN_EXCHANGE) => {
                exchange(&state, &params, &headers, &mut draft, now).await?
            }
            Some(_) => return Err(TokenError::UnsupportedGrant),
            None => return Err(TokenError::Malformed),
        };
        let token = access::issue(&state.signing_key, &grant.claims).map_err(|e| {
            tracing::error!(error = %e, "signing an access token failed");
            TokenError::Internal
        })?;
        Ok((grant, token))
    }
    .await;
    match result {
        Ok((grant, token)) => {
            let c = &grant.claims;
            // An evaluation or validation token is for a provider.
            let evaluates = c.scope != Scope::Rekey.name();
            draft.issued_for(evaluates.then_some(c.sub.as_str()), grant.person.as_deref());
            draft.jti(&c.jti);
            let body = TokenResponse {
                access_token: token,
                token_type: TOKEN_TYPE_DPOP.into(),
                expires_in: c.exp - c.iat,
                scope: c.scope.clone(),
                issued_token_type: c.origin.is_some().then(|| TOKEN_TYPE_ACCESS_TOKEN.into()),
                provider: evaluates.then(|| c.sub.clone()),
            };
            if !state.audit.record(draft.finish(200, "ok")).await {
                return TokenError::Internal.into_response();
            }
            security::emit(
                Event::TokenIssued,
                &Subject {
                    endpoint: TOKEN_PATH,
                    client: grant.caller.id(),
                    provider: body.provider.as_deref().unwrap_or_default(),
                    person: grant.person.as_deref().unwrap_or_default(),
                    outcome: "ok",
                    ..Subject::default()
                },
            );
            let mut response = (StatusCode::OK, Json(body)).into_response();
            no_store(&mut response);
            response
        }
        Err(error) => {
            refused(&state, draft, error).await;
            error.into_response()
        }
    }
}

/// Audits a refused token request, with a security event when the caller
/// is known (a replay gets its own).
async fn refused(state: &AppState, draft: AuditDraft, error: TokenError) {
    if !draft.caller_id().is_empty() {
        let event = match error {
            TokenError::AssertionReplayed
            | TokenError::SubjectReplayed
            | TokenError::ProofReplayed => Event::ReplayDetected,
            TokenError::RoleNotAllowed => Event::RoleViolation,
            _ => Event::TokenRefused,
        };
        security::emit(
            event,
            &Subject {
                endpoint: TOKEN_PATH,
                client: draft.caller_id(),
                outcome: error.code(),
                ..Subject::default()
            },
        );
    }
    state
        .audit
        .refuse(draft.finish(error.status().as_u16(), error.code()))
        .await;
}

impl From<ApiError> for TokenError {
    fn from(_: ApiError) -> Self {
        TokenError::Internal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_once_each_and_audiences() {
        let p = parameters(b"grant_type=client_credentials&scope=rekey").unwrap();
        assert_eq!(p["scope"], "rekey");
        assert_eq!(parameters(b"a=1&a=2"), Err(TokenError::Malformed));
        assert!(audience_ok(&Value::from("https://ttp"), &["https://ttp"]));
        assert!(audience_ok(
            &serde_json::json!(["x", "https://ttp"]),
            &["https://ttp"]
        ));
        assert!(!audience_ok(&serde_json::json!(["x"]), &["https://ttp"]));
        assert!(!audience_ok(&Value::from(1), &["https://ttp"]));
        assert_eq!(TokenError::RoleNotAllowed.status(), StatusCode::FORBIDDEN);
        assert_eq!(TokenError::InvalidClient.error(), "invalid_client");
    }
}
