//! Who calls the provider endpoints: a supplying provider with a TTP
//! validate token and its DPoP proof.
//!
//! The provider endpoints (`GET /api/validation-requests`,
//! `POST /api/validation-requests/{id}/answers`, `GET /api/provider-records`,
//! `POST /api/withdrawals`) take `Authorization: DPoP <token>` and a
//! `DPoP` proof (RFC 9449). The token is the TTP's access token (RFC 9068,
//! `typ` `at+jwt`, ES256) signed by one of the pinned `ttp_signing_keys`
//! (selected by `kid`), with `iss` = `ttp_issuer`, `aud` =
//! `"{recipient_organization}|{recipient_scope}"` (this registry),
//! `scope` = `validate`, `iat`/`exp` within the clock skew and a lifetime
//! of at most [`MAX_BROWSER_TOKEN_SECONDS`] for a browser's token (with
//! `origin`) and [`MAX_BACKEND_TOKEN_SECONDS`] for a back end's, and `cnf.jkt` = the
//! thumbprint of the proof's key. The proof names the request's method
//! (`htm`) and `{public_url}{path}` (`htu`, one of the registry's public
//! URLs), lies within [`crate::submitter::PROOF_WINDOW_SECONDS`] of the registry's clock,
//! carries `ath` of the token and is used once (the registry's
//! [`ProofLedger`], shared with the submitter proofs). A browser token
//! (with `origin`) is taken only from that `Origin`, when the request
//! names one.
//!
//! The token's `sub` is the provider (`ura:…`); `act.sub` (else `client_id`) the
//! person or back end acting for it. [`ValidatingProvider`] is the axum
//! extractor that does all this; [`AuthError`] its refusals, each with a
//! stable code (401 with `WWW-Authenticate: DPoP …`, 403 for a token for
//! another registry or scope).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::auth::{
    ath, AccessTokenClaims, DPOP_HEADER, MAX_BACKEND_TOKEN_SECONDS, MAX_BROWSER_TOKEN_SECONDS,
    TOKEN_TYPE_DPOP, TYP_ACCESS_TOKEN,
};
use pseudoform_protocol::ErrorBody;

use crate::config::RegistryConfig;
use crate::jwe::SignatureKeys;
use crate::submitter::{verify_proof, ProofLedger, SubmitterError};

/// The `scope` of a validate token.
pub use pseudoform_protocol::auth::SCOPE_VALIDATE;

/// Why a provider request was refused. Never carries a request value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: DPoP …` header.
    #[error("the request needs a TTP validate token (Authorization: DPoP …)")]
    MissingToken,
    /// The token is not a valid TTP access token for this registry: header,
    /// signature, issuer, times or claims.
    #[error("the token is not a valid TTP token")]
    InvalidToken,
    /// The token has expired.
    #[error("the token has expired")]
    TokenExpired,
    /// No (single) `DPoP` header.
    #[error("the request needs a DPoP proof of the token's key")]
    MissingProof,
    /// The proof is not valid for this request.
    #[error("the DPoP proof is not valid for this request")]
    InvalidProof,
    /// The proof was used before.
    #[error("the DPoP proof was used before")]
    ProofReplayed,
    /// The proof is signed by another key than the token's.
    #[error("the DPoP proof is signed by another key than the token is bound to")]
    WrongKey,
    /// The token is for another registry (`aud`).
    #[error("the token is for another registry")]
    WrongAudience,
    /// The token is not a validate token.
    #[error("the token's scope does not allow this")]
    WrongScope,
    /// The browser token is used from another origin than it was issued for.
    #[error("the token is for another origin")]
    WrongOrigin,
    /// The proof store failed.
    #[error("the request cannot be checked now")]
    Unavailable,
}

impl AuthError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::MissingToken => "auth.missingToken",
            AuthError::InvalidToken => "auth.invalidToken",
            AuthError::TokenExpired => "auth.tokenExpired",
            AuthError::MissingProof => "auth.missingProof",
            AuthError::InvalidProof => "auth.invalidProof",
            AuthError::ProofReplayed => pseudoform_protocol::auth::PROOF_REPLAYED,
            AuthError::WrongKey => "auth.wrongKey",
            AuthError::WrongAudience => "auth.wrongAudience",
            AuthError::WrongScope => "auth.wrongScope",
            AuthError::WrongOrigin => "auth.wrongOrigin",
            AuthError::Unavailable => "server.notReady",
        }
    }

    /// 401 for a missing or wrong credential, 403 for a valid one that
    /// does not allow this, 503 when the check cannot run.
    pub fn status(self) -> StatusCode {
        match self {
            AuthError::WrongAudience | AuthError::WrongScope | AuthError::WrongOrigin => {
                StatusCode::FORBIDDEN
            }
            AuthError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The request member it is about: the header.
    pub fn field(self) -> Option<&'static str> {
        match self {
            AuthError::MissingProof
            | AuthError::InvalidProof
            | AuthError::ProofReplayed
            | AuthError::WrongKey => Some(DPOP_HEADER),
            AuthError::WrongOrigin => Some("Origin"),
            AuthError::Unavailable => None,
            _ => Some("Authorization"),
        }
    }

    /// The `error` of the `WWW-Authenticate` challenge (RFC 9449 §7.1).
    fn challenge(self) -> &'static str {
        match self {
            AuthError::MissingProof
            | AuthError::InvalidProof
            | AuthError::ProofReplayed
            | AuthError::WrongKey => "invalid_dpop_proof",
            AuthError::WrongAudience | AuthError::WrongScope | AuthError::WrongOrigin => {
                "insufficient_scope"
            }
            _ => "invalid_token",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.code(), &self.to_string());
        if let Some(field) = self.field() {
            body = body.with_field(field);
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(
            self.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            let challenge = match self {
                AuthError::MissingToken => "DPoP algs=\"ES256\"".to_owned(),
                other => format!("DPoP algs=\"ES256\", error=\"{}\"", other.challenge()),
            };
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// The check of provider credentials of one registry.
#[derive(Debug)]
pub struct ProviderAuth {
    keys: SignatureKeys,
    issuer: String,
    audience: String,
    public_urls: Vec<String>,
    skew: i64,
    ledger: ProofLedger,
}

impl ProviderAuth {
    /// The check of a registry's configuration: its pinned TTP signing
    /// keys, `ttp_issuer`, recipient, public URLs and clock skew, with the
    /// proof ledger in its database.
    pub fn from_config(config: &RegistryConfig) -> anyhow::Result<Self> {
        Self::new(
            crate::load::ttp_signing_keys(config)?,
            &config.ttp_issuer(),
            &pseudoform_protocol::auth::validation_audience(
                &config.recipient_organization,
                &config.recipient_scope,
            ),
            &config.public_urls(),
            config.clock_skew_seconds,
            &config.database,
        )
    }

    /// A check of tokens signed by `keys`, issued by `issuer` for
    /// `audience`, with proofs naming a path under one of `public_urls`.
    pub fn new(
        keys: SignatureKeys,
        issuer: &str,
        audience: &str,
        public_urls: &[String],
        skew: i64,
        database: &Path,
    ) -> anyhow::Result<Self> {
        Ok(ProviderAuth {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            public_urls: public_urls
                .iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            skew: skew.max(0),
            ledger: ProofLedger::open(database)?,
        })
    }

    /// Verifies the token and its proof for `method` on `path`, at `now`,
    /// from `origin` (the request's `Origin`, if any). The proof's id is
    /// used up only when everything else holds.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        proof: Option<&str>,
        method: &str,
        path: &str,
        origin: Option<&str>,
        now: i64,
    ) -> Result<ValidatingProvider, AuthError> {
        let authorization = authorization.ok_or(AuthError::MissingToken)?;
        let (scheme, token) = authorization
            .split_once(' ')
            .ok_or(AuthError::InvalidToken)?;
        if !scheme.eq_ignore_ascii_case(TOKEN_TYPE_DPOP) {
            return Err(AuthError::MissingToken);
        }
        let token = token.trim();
        let payload = self
            .keys
            .verify_typed(token, TYP_ACCESS_TOKEN)
            .map_err(|_| AuthError::InvalidToken)?;
        let claims: AccessTokenClaims =
            serde_json::from_slice(&payload).map_err(|_| AuthError::InvalidToken)?;
        // A browser's token names its origin; a back end's has none and a
        // shorter life, as the TTP issues them.
        let max_lifetime = if claims.origin.is_some() {
            MAX_BROWSER_TOKEN_SECONDS
        } else {
            MAX_BACKEND_TOKEN_SECONDS
        };
        if claims.iss != self.issuer
            || claims.iat > now + self.skew
            || claims.exp - claims.iat > max_lifetime
            || !pseudoform_protocol::is_ura(&claims.sub)
        {
            return Err(AuthError::InvalidToken);
        }
        if claims.exp + self.skew <= now {
            return Err(AuthError::TokenExpired);
        }
        if claims.aud != self.audience {
            return Err(AuthError::WrongAudience);
        }
        if claims.scope != SCOPE_VALIDATE {
            return Err(AuthError::WrongScope);
        }
        let proof = proof.ok_or(AuthError::MissingProof)?;
        let urls: Vec<String> = self
            .public_urls
            .iter()
            .map(|base| format!("{base}{path}"))
            .collect();
        let (verified, proof_claims) =
            verify_proof(proof, method, &urls, now).map_err(|_| AuthError::InvalidProof)?;
        if proof_claims.ath.as_deref() != Some(ath(token).as_str()) {
            return Err(AuthError::InvalidProof);
        }
        if verified.jkt != claims.cnf.jkt {
            return Err(AuthError::WrongKey);
        }
        if let (Some(expected), Some(origin)) = (&claims.origin, origin) {
            if expected != origin {
                return Err(AuthError::WrongOrigin);
            }
        }
        self.ledger
            .use_once(&verified, now)
            .map_err(|err| match err {
                SubmitterError::Replayed => AuthError::ProofReplayed,
                _ => AuthError::Unavailable,
            })?;
        Ok(ValidatingProvider {
            provider: claims.sub,
            person: claims.act.map(|a| a.sub).or(Some(claims.client_id)),
            jkt: verified.jkt,
        })
    }
}

/// A provider request whose validate token and DPoP proof passed
/// ([`ProviderAuth::verify`]); the axum extractor of the provider endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatingProvider {
    /// The supplying provider (`ura:…`), the token's `sub`.
    pub provider: String,
    /// Who acts for it: the person of a browser token (`act.sub`), else
    /// the client id of the back end.
    pub person: Option<String>,
    /// The thumbprint of the DPoP key.
    pub jkt: String,
}

/// The one value of header `name`, if there is exactly one and it is text;
/// `Err` if there are several or it is not text.
fn single_header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = parts.headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v.to_str().map(Some).map_err(|_| ()),
        (Some(_), Some(_)) => Err(()),
    }
}

impl<S> FromRequestParts<S> for ValidatingProvider
where
    Arc<ProviderAuth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Arc::<ProviderAuth>::from_ref(state);
        let authorization = single_header(parts, header::AUTHORIZATION.as_str())
            .map_err(|()| AuthError::InvalidToken)?;
        let proof = single_header(parts, DPOP_HEADER).map_err(|()| AuthError::InvalidProof)?;
        let origin =
            single_header(parts, header::ORIGIN.as_str()).map_err(|()| AuthError::WrongOrigin)?;
        let (authorization, proof, origin) = (
            authorization.map(str::to_owned),
            proof.map(str::to_owned),
            origin.map(str::to_owned),
        );
        let method = parts.method.as_str().to_owned();
        let path = parts.uri.path().to_owned();
        // The proof ledger writes to SQLite: off the async executor.
        tokio::task::spawn_blocking(move || {
            auth.verify(
                authorization.as_deref(),
                proof.as_deref(),
                &method,
                &path,
                origin.as_deref(),
                pseudoform_protocol::unix_now(),
            )
        })
        .await
        .unwrap_or(Err(AuthError::Unavailable))
    }
}
