//! Who is asking: the TTP's access tokens and the [`Principal`] of a
//! request.
//!
//! Access tokens are JWTs (RFC 9068, `typ: at+jwt`) that the TTP signs
//! with its signing key ([`issue`]) and verifies statelessly
//! ([`verify_token`]); every one is bound to a DPoP key (`cnf.jkt`). A
//! request presents one as `Authorization: DPoP <token>` with a `DPoP`
//! proof by that key for this very request ([`authenticate`]); the proof's
//! `jti` is used once. Only with `development_static_tokens` may a caller
//! present a static `Authorization: Bearer <token>` instead.
//!
//! The principal carries what the TTP takes from the credential and never
//! from the request: the caller, the provider, the acting person and
//! processor, the DPoP key and, for a browser, the form origin.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use pseudoform_protocol::auth::{
    AccessTokenClaims, Act, Cnf, DPOP_WINDOW_SECONDS, SCOPE_EVALUATE, SCOPE_REKEY, SCOPE_VALIDATE,
    TOKEN_TYPE_DPOP, TYP_ACCESS_TOKEN,
};

use crate::callers::Caller;
use crate::config::Role;
use crate::dpop::{self, ProofError};
use crate::error::ApiError;
use crate::ledger::{Once, OnceKind};
use crate::security::{self, Event, Subject};
use crate::signing::SigningKey;
use crate::state::AppState;

/// What a credential may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `POST /oprf/eval`, `POST /v1/evaluate`.
    Evaluate,
    /// `POST /v1/rekey`.
    Rekey,
    /// A registry's validation endpoints (the token's `aud`), never the
    /// TTP's: a provider or processor asks for it beside `evaluate`.
    Validate,
}

impl Scope {
    /// The scope's name in a token.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Evaluate => SCOPE_EVALUATE,
            Scope::Rekey => SCOPE_REKEY,
            Scope::Validate => SCOPE_VALIDATE,
        }
    }

    /// The scope of a token's `scope` claim.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            SCOPE_EVALUATE => Some(Scope::Evaluate),
            SCOPE_REKEY => Some(Scope::Rekey),
            SCOPE_VALIDATE => Some(Scope::Validate),
            _ => None,
        }
    }

    /// The scope of a role at the TTP's own endpoints.
    pub const fn of(role: Role) -> Self {
        match role {
            Role::Recipient => Scope::Rekey,
            Role::Provider | Role::Processor => Scope::Evaluate,
        }
    }
}

/// What kind of credential a request presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A browser's token (token exchange): short-lived, with an origin and a person.
    Browser,
    /// A back end's token (`client_credentials`).
    Backend,
    /// A static token (development only).
    Static,
}

/// The authenticated party of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The configured caller.
    pub caller: Arc<Caller>,
    /// The kind of credential.
    pub kind: Kind,
    /// What it may be used for.
    pub scope: Scope,
    /// The provider evaluations are made for (evaluation credentials).
    pub provider: Option<String>,
    /// Who acts for the provider (person, processor), as in the token.
    pub act: Option<Act>,
    /// The acting person of a browser token.
    pub person: Option<String>,
    /// The form origin of a browser token.
    pub origin: Option<String>,
    /// The DPoP key's thumbprint.
    pub jkt: Option<String>,
    /// The access token's `jti`.
    pub token_jti: Option<String>,
}

impl Principal {
    /// `cnf` for the claims of the evaluations this principal obtains.
    pub fn cnf(&self) -> Option<Cnf> {
        self.jkt.clone().map(|jkt| Cnf { jkt })
    }
}

/// Signs `claims` as an access token.
pub fn issue(key: &SigningKey, claims: &AccessTokenClaims) -> anyhow::Result<String> {
    key.sign_as(TYP_ACCESS_TOKEN, &serde_json::to_vec(claims)?)
}

/// The claims of an access token this TTP issued, and its caller: signed by
/// the TTP's key with `typ: at+jwt`, of this issuer, not expired, of a
/// caller that is still configured with a role that fits its scope. A
/// validation token is refused (403): it is for a registry.
pub fn verify_token(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<(AccessTokenClaims, Arc<Caller>), ApiError> {
    let payload = state
        .signing_key
        .verify_as(TYP_ACCESS_TOKEN, token)
        .ok_or(ApiError::InvalidToken)?;
    let claims: AccessTokenClaims =
        serde_json::from_slice(&payload).map_err(|_| ApiError::InvalidToken)?;
    if claims.scope == SCOPE_VALIDATE {
        return Err(ApiError::ValidationToken);
    }
    if claims.iss != state.issuer
        || claims.aud != state.issuer
        || claims.iat > now + DPOP_WINDOW_SECONDS
    {
        return Err(ApiError::InvalidToken);
    }
    if claims.exp <= now {
        return Err(ApiError::TokenExpired);
    }
    let caller = state
        .callers
        .get(&claims.client_id)
        .ok_or(ApiError::InvalidToken)?;
    if Scope::parse(&claims.scope) != Some(Scope::of(caller.role())) {
        return Err(ApiError::InvalidToken);
    }
    Ok((claims, caller))
}

/// The credential of the `Authorization` header: its scheme and token.
fn authorization(headers: &HeaderMap) -> Result<(&str, &str), ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(ApiError::MissingToken),
        (Some(v), None) => v.to_str().map_err(|_| ApiError::InvalidToken)?,
        (Some(_), Some(_)) => return Err(ApiError::InvalidToken),
    };
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::InvalidToken)?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok((scheme, token))
}

/// Authenticates a `method` request to `path`: its DPoP-bound access token
/// and proof (whose `jti` is used up here), or a development static token.
pub async fn authenticate(
    state: &AppState,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let (scheme, token) = authorization(headers)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return static_principal(state, token);
    }
    if !scheme.eq_ignore_ascii_case(TOKEN_TYPE_DPOP) {
        return Err(ApiError::MissingToken);
    }
    let now = pseudoform_protocol::unix_now();
    let (claims, caller) = match verify_token(state, token, now) {
        Err(e @ (ApiError::TokenExpired | ApiError::ValidationToken)) => {
            // Signed by this TTP: the client is known.
            return Err(refused(path, &claims_client(state, token), e));
        }
        other => other?,
    };
    let proof = async {
        let proof = dpop::header(headers).map_err(|e| match e {
            ProofError::Missing => ApiError::MissingProof,
            ProofError::Invalid => ApiError::InvalidProof,
        })?;
        let url = format!("{}{path}", state.public_url);
        let proof = dpop::verify(proof, method, &url, Some(token), now)
            .map_err(|_| ApiError::InvalidProof)?;
        if proof.jkt != claims.cnf.jkt {
            return Err(ApiError::WrongKey);
        }
        match state
            .use_once(
                OnceKind::Proof,
                &proof.jkt,
                &proof.jti,
                proof.remember_until(now),
                now,
            )
            .await?
        {
            Once::Fresh => Ok(proof),
            Once::Replayed => Err(ApiError::ProofReplayed),
            Once::Full => Err(ApiError::Busy),
        }
    }
    .await;
    if let Err(e) = proof {
        return Err(refused(path, caller.id(), e));
    }
    let scope = Scope::of(caller.role());
    let browser = claims.origin.is_some();
    Ok(Principal {
        kind: if browser {
            Kind::Browser
        } else {
            Kind::Backend
        },
        scope,
        provider: (scope == Scope::Evaluate).then(|| claims.sub.clone()),
        person: if browser {
            claims.act.as_ref().map(|a| a.sub.clone())
        } else {
            None
        },
        act: claims.act,
        origin: claims.origin,
        jkt: Some(claims.cnf.jkt),
        token_jti: Some(claims.jti),
        caller,
    })
}

/// The client id of a token signed by this TTP (empty if it is not one).
fn claims_client(state: &AppState, token: &str) -> String {
    state
        .signing_key
        .verify_as(TYP_ACCESS_TOKEN, token)
        .and_then(|p| serde_json::from_slice::<AccessTokenClaims>(&p).ok())
        .map(|c| c.client_id)
        .unwrap_or_default()
}

/// `error`, after the security event of a known client's refused credential.
fn refused(endpoint: &str, client: &str, error: ApiError) -> ApiError {
    let event = if error == ApiError::ProofReplayed {
        Event::ReplayDetected
    } else {
        Event::AuthRefused
    };
    security::emit(
        event,
        &Subject {
            endpoint,
            client,
            outcome: error.code(),
            ..Subject::default()
        },
    );
    error
}

/// The principal of a static bearer token (development only).
fn static_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if !state.static_tokens {
        // An access token sent as a bearer token is not DPoP-bound use.
        return Err(ApiError::InvalidToken);
    }
    let caller = state
        .callers
        .by_static_token(token)
        .ok_or(ApiError::InvalidToken)?;
    let scope = Scope::of(caller.role());
    Ok(Principal {
        kind: Kind::Static,
        scope,
        provider: (scope == Scope::Evaluate).then(|| caller.party().to_owned()),
        act: None,
        person: None,
        origin: None,
        jkt: None,
        token_jti: None,
        caller,
    })
}

/// The national reference service's trusted-proxy headers: the
/// organisation, the acting organisation and its certificate's common name,
/// and the audience, set by its mTLS-terminating proxy.
pub const TRUSTED_PROXY_HEADERS: [&str; 4] =
    ["x-gf-sub", "x-gf-act-sub", "x-gf-act-cn", "x-gf-audience"];

/// Refuses a request with any [`TRUSTED_PROXY_HEADERS`] (400
/// `auth.proxyHeaders`, naming the first): this TTP has no listener behind
/// an mTLS proxy, so such a header is either a misconfigured proxy that
/// believes it authenticates its callers, or a caller posing as one.
/// Refused before anything else, so that nobody is authenticated by them
/// even by accident.
pub async fn refuse_trusted_proxy_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = request.headers();
    match TRUSTED_PROXY_HEADERS
        .into_iter()
        .find(|name| headers.contains_key(*name))
    {
        Some(field) => ApiError::ProxyHeaders { field }.into_response(),
        None => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn authorization_schemes() {
        let mut h = HeaderMap::new();
        assert_eq!(authorization(&h), Err(ApiError::MissingToken));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("DPoP abc"));
        assert_eq!(authorization(&h), Ok(("DPoP", "abc")));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer   abc "),
        );
        assert_eq!(authorization(&h), Ok(("bearer", "abc")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("DPoP "));
        assert_eq!(authorization(&h), Err(ApiError::InvalidToken));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("abc"));
        assert_eq!(authorization(&h), Err(ApiError::InvalidToken));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("DPoP x"));
        assert_eq!(
            authorization(&h),
            Err(ApiError::InvalidToken),
            "two credentials"
        );
        assert_eq!(Scope::of(Role::Recipient), Scope::Rekey);
        assert_eq!(Scope::parse("evaluate"), Some(Scope::Evaluate));
        assert_eq!(Scope::parse("admin"), None);
        assert_eq!(Scope::parse("validate"), Some(Scope::Validate));
        assert_eq!(Scope::Validate.name(), SCOPE_VALIDATE);
    }
}
