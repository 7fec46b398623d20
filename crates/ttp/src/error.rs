//! Problem answers of the TTP: every refusal is an [`ApiError`], which
//! answers as an HTTP status, a [`pseudoform_protocol::ErrorBody`] and the
//! headers some statuses need (`WWW-Authenticate` on 401, `Retry-After` on
//! 429 and 503). The token endpoint answers OAuth errors of its own
//! ([`crate::token::TokenError`]).
//!
//! Messages are fixed sentences (limits are formatted from their
//! constants): no error ever repeats a request value. A `field` names a
//! request member, never its content.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::ttp::{MAX_ITEMS_PER_RECORD, MAX_RECORDS_PER_REQUEST, MAX_REKEY_ELEMENTS};
use pseudoform_protocol::{ErrorBody, OIN_RULE, SCOPE_RULE};

use crate::MAX_BODY_BYTES;

/// The `WWW-Authenticate` challenge of the TTP (RFC 9449 §7.1).
const CHALLENGE: &str = "DPoP realm=\"pseudoform-ttp\", algs=\"ES256\"";
/// The challenge when the token is not valid (RFC 6750 §3.1).
const CHALLENGE_INVALID: &str =
    "DPoP realm=\"pseudoform-ttp\", algs=\"ES256\", error=\"invalid_token\"";
/// The challenge when the DPoP proof is missing or not valid (RFC 9449 §7.1).
const CHALLENGE_PROOF: &str =
    "DPoP realm=\"pseudoform-ttp\", algs=\"ES256\", error=\"invalid_dpop_proof\"";
/// `Retry-After` of a 503, in seconds.
const BUSY_RETRY_SECONDS: u64 = 60;

/// A refusal of the TTP API, with its stable code ([`ApiError::code`]),
/// status ([`ApiError::status`]) and the request member it is about
/// ([`ApiError::field`]); its `Display` is the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 401 `auth.missingToken`: no access token.
    #[error("an access token is required (Authorization: DPoP …, with a DPoP proof)")]
    MissingToken,
    /// 401 `auth.invalidToken`: not an access token of this TTP for a
    /// configured caller (or, without the development switch, a static token).
    #[error("the access token is not valid")]
    InvalidToken,
    /// 401 `auth.tokenExpired`.
    #[error("the access token has expired")]
    TokenExpired,
    /// 401 `auth.missingProof`: a DPoP-bound token without its proof.
    #[error("a DPoP proof is required with the access token (header DPoP)")]
    MissingProof,
    /// 401 `auth.invalidProof`: the proof is not valid for this request.
    #[error("the DPoP proof is not valid for this request (typ, alg, jwk, signature, htm, htu, iat or ath)")]
    InvalidProof,
    /// 401 `auth.proofReplayed`: the proof's `jti` was used before.
    #[error("the DPoP proof was used before; make a new one for each request")]
    ProofReplayed,
    /// 400 `auth.proxyHeaders`: a trusted-proxy header of the national
    /// service (`x-gf-sub`, …) at a listener that takes none.
    #[error("the trusted-proxy headers (x-gf-sub, x-gf-act-sub, x-gf-act-cn, x-gf-audience) are accepted on no listener of this TTP; authenticate with its DPoP-bound access token")]
    ProxyHeaders {
        /// The header.
        field: &'static str,
    },
    /// 401 `auth.wrongKey`: the proof is by another key than the token's.
    #[error("the DPoP proof is not signed by the key the access token is bound to")]
    WrongKey,
    /// 403 `caller.notAllowed`: the caller may not evaluate for the recipient.
    #[error("the caller may not request evaluations for this recipient")]
    MayNotEvaluate,
    /// 403 `caller.notAllowed`: a recipient's credential asked to evaluate.
    #[error("a recipient's credential may only re-key its own domain; it never evaluates")]
    RecipientMayNotEvaluate,
    /// 403 `caller.notAllowed`: the caller may not rekey for the recipient.
    #[error("the caller may not rekey for this recipient")]
    MayNotRekey,
    /// 403 `caller.notAllowed`: a validation token (`scope=validate`) at
    /// the TTP: it is for the registry it names only.
    #[error("a validation token is for the registry it names; the TTP accepts none")]
    ValidationToken,
    /// 403 `type.notAllowed`: a pseudonym type the recipient may not receive.
    #[error("the recipient may not receive this pseudonym type")]
    TypeNotAllowed {
        /// The request member of the type.
        field: String,
    },
    /// 403 `origin.notAllowed`: an `Origin` that is not one of the
    /// recipient's form origins.
    #[error("requests from this origin are not allowed for the recipient")]
    OriginNotAllowed,
    /// 403 `origin.notAllowed`: a browser token without its exact `Origin`,
    /// or a back end's token with one.
    #[error("the access token may only be used from the origin it was issued for")]
    OriginMismatch,
    /// 404 `recipient.unknown`: no such recipient organisation and scope.
    #[error("the recipient organisation and scope are not known to this TTP")]
    RecipientUnknown,
    /// 400 `blindedInput.invalid`: not a canonical non-identity element.
    #[error("not a valid blinded element: base64url (padded or unpadded) of a canonical, non-identity ristretto255 element is required")]
    BlindedInvalid {
        /// The request member of the element.
        field: String,
    },
    /// 400 `request.unreadable`: the body could not be read.
    #[error("the request body could not be read")]
    Unreadable,
    /// 413 `request.tooLarge`: a body over [`MAX_BODY_BYTES`].
    #[error("the request body is larger than {} MiB", MAX_BODY_BYTES >> 20)]
    TooLarge,
    /// 422 `request.malformedJson`: the body is not JSON.
    #[error("the request body is not valid JSON")]
    MalformedJson,
    /// 422 `request.missingMember`: a required member of the body is absent.
    #[error("a required member is missing")]
    MissingMember {
        /// The absent member, where it is a known member's path.
        field: Option<String>,
    },
    /// 422 `request.invalid`: a member of the body has the wrong type.
    #[error("the request body does not have the required shape (a member has the wrong type)")]
    WrongShape {
        /// The member, where it is a known member's path.
        field: Option<String>,
    },
    /// 422 `request.invalid`: the query string does not parse.
    #[error("the query must have recipientOrganization and recipientScope")]
    WrongQuery,
    /// 422 `request.missingMember`: a required query parameter is absent.
    #[error("a required query parameter is missing")]
    MissingParameter {
        /// The parameter.
        field: &'static str,
    },
    /// 422 `recipientOrganization.invalid`.
    #[error("recipientOrganization must be {OIN_RULE}")]
    OrganizationInvalid,
    /// 422 `recipientScope.invalid`.
    #[error("recipientScope must be {SCOPE_RULE}")]
    ScopeInvalid,
    /// 422 `pseudonymType.unknown`: not a pseudonym type code of the core.
    #[error("not a known pseudonym type code")]
    TypeUnknown {
        /// The request member of the type.
        field: String,
    },
    /// 422 `type.notEvaluable`: type R, the reversible pseudonym, which
    /// the browser encrypts to the provider's key and the TTP never
    /// evaluates.
    #[error(
        "type R (the reversible pseudonym) is encrypted in the browser, never evaluated by the TTP"
    )]
    TypeNotEvaluable {
        /// The request member of the type.
        field: String,
    },
    /// 400 `request.missingMember`: `GET /v1/provider-keys` without `provider`.
    #[error("the query parameter provider is required")]
    ProviderMissing,
    /// 400 `request.invalid`: a `provider` that is not `ura:` and 8 digits.
    #[error("provider must be `ura:` followed by 8 digits")]
    ProviderInvalid,
    /// 404 `provider.unknown`: a provider the TTP does not know.
    #[error("the provider is not known to this TTP")]
    ProviderUnknown,
    /// 422 `recipient.nationalProfile`: `POST /v1/evaluate` for a
    /// recipient of the national profile, which receives single evaluations.
    #[error("the recipient has the national profile: it receives single evaluations (POST /oprf/eval) only")]
    NationalSingleOnly,
    /// 422 `records.empty`.
    #[error("records must not be empty")]
    NoRecords,
    /// 422 `records.tooMany`: over [`MAX_RECORDS_PER_REQUEST`].
    #[error("too many records in one request (at most {MAX_RECORDS_PER_REQUEST})")]
    TooManyRecords,
    /// 422 `record.empty`: a record without items.
    #[error("a record must have at least one item")]
    EmptyRecord {
        /// The record's `items`.
        field: String,
    },
    /// 422 `record.tooManyItems`: over [`MAX_ITEMS_PER_RECORD`].
    #[error("too many items in one record (at most {MAX_ITEMS_PER_RECORD})")]
    TooManyItems {
        /// The record's `items`.
        field: String,
    },
    /// 422 `record.duplicateType`: a type twice in one record.
    #[error("each pseudonym type may occur once per record")]
    DuplicateType {
        /// The second item's `type`.
        field: String,
    },
    /// 422 `blindedPseudonyms.empty`.
    #[error("blindedPseudonyms must not be empty")]
    NoElements,
    /// 422 `blindedPseudonyms.tooMany`: over [`MAX_REKEY_ELEMENTS`].
    #[error("too many elements in one request (at most {MAX_REKEY_ELEMENTS})")]
    TooManyElements,
    /// 422 `rekey.sameVersion`.
    #[error("fromVersion and toVersion must differ")]
    SameVersion,
    /// 422 `keyVersion.notActive`.
    #[error("the key version is not an active version of the recipient")]
    VersionNotActive {
        /// `fromVersion` or `toVersion`.
        field: &'static str,
    },
    /// 429 `rateLimited` without `Retry-After`: more evaluations in one
    /// request than a budget allows in a whole minute or day.
    #[error("the request has more evaluations than a budget allows at all; split it")]
    OverBudget,
    /// 429 `rateLimited`: a budget is spent for now.
    #[error("an evaluation budget is spent; retry after the given seconds")]
    RateLimited {
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// 503 `service.busy`: the replay store is full; retry later.
    #[error("the TTP is busy; retry later")]
    Busy,
    /// 503 `server.overloaded`: the evaluation queue is full, or the
    /// request waited in it too long ([`crate::queue`]); retry after the
    /// given seconds.
    #[error("the TTP is busy; retry after the given seconds")]
    Overloaded {
        /// Seconds for `Retry-After`.
        retry_after: u64,
    },
    /// 503 `server.notReady`: the audit log cannot be written or the keys
    /// cannot be read (`GET /ready`).
    #[error("the TTP is not ready: its audit log or its keys are unavailable")]
    NotReady,
    /// 404 `notFound`: no such endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// 405 `methodNotAllowed`.
    #[error("the endpoint does not support this method")]
    MethodNotAllowed,
    /// 500 `internal`: the details go to the log, not to the caller.
    #[error("the TTP could not complete the request")]
    Internal,
}

impl ApiError {
    /// The stable code of the answer (what the audit log records as outcome).
    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            MissingToken => "auth.missingToken",
            InvalidToken => "auth.invalidToken",
            TokenExpired => "auth.tokenExpired",
            ProxyHeaders { .. } => "auth.proxyHeaders",
            MissingProof => "auth.missingProof",
            InvalidProof => "auth.invalidProof",
            ProofReplayed => pseudoform_protocol::auth::PROOF_REPLAYED,
            WrongKey => "auth.wrongKey",
            MayNotEvaluate | RecipientMayNotEvaluate | MayNotRekey | ValidationToken => {
                "caller.notAllowed"
            }
            TypeNotAllowed { .. } => "type.notAllowed",
            OriginNotAllowed | OriginMismatch => "origin.notAllowed",
            RecipientUnknown => "recipient.unknown",
            BlindedInvalid { .. } => "blindedInput.invalid",
            Unreadable => "request.unreadable",
            TooLarge => "request.tooLarge",
            MalformedJson => "request.malformedJson",
            MissingMember { .. } | MissingParameter { .. } | ProviderMissing => {
                "request.missingMember"
            }
            WrongShape { .. } | WrongQuery | ProviderInvalid => "request.invalid",
            TypeNotEvaluable { .. } => "type.notEvaluable",
            ProviderUnknown => "provider.unknown",
            OrganizationInvalid => "recipientOrganization.invalid",
            ScopeInvalid => "recipientScope.invalid",
            TypeUnknown { .. } => "pseudonymType.unknown",
            NoRecords => "records.empty",
            NationalSingleOnly => "recipient.nationalProfile",
            TooManyRecords => "records.tooMany",
            EmptyRecord { .. } => "record.empty",
            TooManyItems { .. } => "record.tooManyItems",
            DuplicateType { .. } => "record.duplicateType",
            NoElements => "blindedPseudonyms.empty",
            TooManyElements => "blindedPseudonyms.tooMany",
            SameVersion => "rekey.sameVersion",
            VersionNotActive { .. } => "keyVersion.notActive",
            OverBudget | RateLimited { .. } => "rateLimited",
            Busy => "service.busy",
            Overloaded { .. } => "server.overloaded",
            NotReady => "server.notReady",
            NotFound => "notFound",
            MethodNotAllowed => "methodNotAllowed",
            Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            MissingToken | InvalidToken | TokenExpired | MissingProof | InvalidProof
            | ProofReplayed | WrongKey => StatusCode::UNAUTHORIZED,
            MayNotEvaluate
            | RecipientMayNotEvaluate
            | MayNotRekey
            | ValidationToken
            | TypeNotAllowed { .. }
            | OriginNotAllowed
            | OriginMismatch => StatusCode::FORBIDDEN,
            RecipientUnknown | ProviderUnknown | NotFound => StatusCode::NOT_FOUND,
            BlindedInvalid { .. }
            | Unreadable
            | ProviderMissing
            | ProviderInvalid
            | ProxyHeaders { .. } => StatusCode::BAD_REQUEST,
            TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            OverBudget | RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Busy => StatusCode::SERVICE_UNAVAILABLE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Overloaded { .. } | NotReady => StatusCode::SERVICE_UNAVAILABLE,
            // The request does not have the shape, values or limits required.
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The request member the answer is about, if any.
    pub fn field(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            ProxyHeaders { field } => Some(field),
            TypeNotAllowed { field }
            | BlindedInvalid { field }
            | TypeUnknown { field }
            | TypeNotEvaluable { field }
            | EmptyRecord { field }
            | TooManyItems { field }
            | DuplicateType { field } => Some(field),
            MissingMember { field } | WrongShape { field } => field.as_deref(),
            MissingParameter { field } | VersionNotActive { field } => Some(field),
            OrganizationInvalid => Some("recipientOrganization"),
            ScopeInvalid => Some("recipientScope"),
            ProviderMissing | ProviderInvalid | ProviderUnknown => Some("provider"),
            NoRecords | TooManyRecords => Some("records"),
            NoElements | TooManyElements => Some("blindedPseudonyms"),
            SameVersion => Some("toVersion"),
            _ => None,
        }
    }

    /// Seconds for `Retry-After` (429 and 503).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::Overloaded { retry_after } => {
                Some(*retry_after)
            }
            ApiError::Busy => Some(BUSY_RETRY_SECONDS),
            _ => None,
        }
    }

    /// Whether the refusal is of a credential (401), which a security event
    /// reports when the caller is known.
    pub fn is_auth(&self) -> bool {
        self.status() == StatusCode::UNAUTHORIZED
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let body = ErrorBody::new(self.code(), &self.to_string());
        match self.field() {
            Some(field) => body.with_field(field),
            None => body,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        let challenge = match self {
            ApiError::MissingToken => Some(CHALLENGE),
            ApiError::InvalidToken | ApiError::TokenExpired | ApiError::WrongKey => {
                Some(CHALLENGE_INVALID)
            }
            ApiError::MissingProof | ApiError::InvalidProof | ApiError::ProofReplayed => {
                Some(CHALLENGE_PROOF)
            }
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
