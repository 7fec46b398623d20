//! Problem answers of the TTP: an HTTP status, a
//! [`pseudoform_protocol::ErrorBody`] and the headers some statuses need
//! (`WWW-Authenticate` on 401, `Retry-After` on 429).
//!
//! Messages are fixed sentences: no error ever repeats a request value.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::ErrorBody;

/// The `WWW-Authenticate` challenge of the TTP.
const CHALLENGE: &str = "Bearer realm=\"pseudoform-ttp\"";
/// The challenge when a token was presented but is not known.
const CHALLENGE_INVALID: &str = "Bearer realm=\"pseudoform-ttp\", error=\"invalid_token\"";

/// An error answer of the TTP API (boxed: errors are rare, results small).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
    challenge: Option<&'static str>,
}

impl ApiError {
    /// An answer with `status`, `code` and a fixed `message`.
    pub fn new(status: StatusCode, code: &str, message: &str) -> Self {
        ApiError(Box::new(Inner {
            status,
            body: ErrorBody::new(code, message),
            retry_after: None,
            challenge: None,
        }))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The JSON body.
    pub fn body(&self) -> &ErrorBody {
        &self.0.body
    }

    /// Seconds for `Retry-After` (429 only).
    pub fn retry_after(&self) -> Option<u64> {
        self.0.retry_after
    }

    /// The same answer naming the request member it is about.
    pub fn field(mut self, field: &str) -> Self {
        self.0.body.field = Some(field.into());
        self
    }

    /// The stable code of the answer (what the audit log records as outcome).
    pub fn code(&self) -> &str {
        &self.0.body.code
    }

    /// 401: no bearer token.
    pub fn missing_token() -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth.missingToken",
            "a bearer token is required (Authorization: Bearer …)",
        );
        e.0.challenge = Some(CHALLENGE);
        e
    }

    /// 401: a token that is not a configured caller's.
    pub fn invalid_token() -> Self {
        let mut e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "auth.invalidToken",
            "the bearer token is not valid",
        );
        e.0.challenge = Some(CHALLENGE_INVALID);
        e
    }

    /// 403: the caller may not call for this recipient (or may not rekey).
    pub fn caller_not_allowed(message: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "caller.notAllowed", message)
    }

    /// 403: a pseudonym type the recipient may not receive.
    pub fn type_not_allowed(field: &str) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "type.notAllowed",
            "the recipient may not receive this pseudonym type",
        )
        .field(field)
    }

    /// 403: an `Origin` that is not one of the recipient's form origins.
    pub fn origin_not_allowed() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "origin.notAllowed",
            "requests from this origin are not allowed for the recipient",
        )
    }

    /// 404: no such recipient organisation and scope.
    pub fn recipient_unknown() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "recipient.unknown",
            "the recipient organisation and scope are not known to this TTP",
        )
    }

    /// 400: a blinded element that is not a canonical non-identity element.
    pub fn blinded_invalid(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "blindedInput.invalid",
            "not a valid blinded element: padded base64url of a canonical, non-identity ristretto255 element is required",
        )
        .field(field)
    }

    /// 422: a request that does not have the required shape.
    pub fn unprocessable(code: &str, message: &str) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 429: the caller's evaluation budget is spent.
    pub fn rate_limited(retry_after: Option<u64>, message: &str) -> Self {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rateLimited", message);
        e.0.retry_after = retry_after;
        e
    }

    /// 413: a body over the limit.
    pub fn too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.tooLarge",
            "the request body is larger than 1 MiB",
        )
    }

    /// 500: an internal fault; the details go to the log, not to the caller.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the TTP could not complete the request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Inner {
            status,
            body,
            retry_after,
            challenge,
        } = *self.0;
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
