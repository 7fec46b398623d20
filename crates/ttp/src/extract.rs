//! The request extractors of the TTP: [`ApiJson`], a JSON body whose
//! rejection is an [`ApiError`], and [`Authenticated`], the principal of
//! the request's access token and DPoP proof ([`crate::access`]).
//!
//! A body that is not JSON is `request.malformedJson`; JSON of the wrong
//! shape is `request.missingMember` or `request.invalid`, naming the member
//! where that is one of the request's known members. The kind of a shape
//! error comes from serde's error kinds (its `missing_field`), never from
//! the text of an error: serde's messages can quote the input, and none of
//! them is ever passed on.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_value::{DeserializerError, ValueDeserializer};

use crate::access::{self, Principal};
use crate::error::ApiError;
use crate::state::AppState;

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
    "reversible",
    "fromVersion",
    "toVersion",
    "blindedPseudonyms",
];

/// A JSON request body of type `T`. Rejected with 413 over the body limit,
/// 400 when the body cannot be read, and 422 when it is not JSON of the
/// shape of `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge
                } else {
                    ApiError::Unreadable
                }
            })?;
        parse(&body).map(ApiJson)
    }
}

/// The authenticated party of a request; rejected with 401 (or 503 when
/// the replay store is full).
#[derive(Debug)]
pub struct Authenticated(pub Principal);

impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        access::authenticate(
            state,
            parts.method.as_str(),
            parts.uri.path(),
            &parts.headers,
        )
        .await
        .map(Authenticated)
    }
}

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

/// A path as the `field` of an answer: the path itself where it names
/// known members only, else none.
fn member(path: String) -> Option<String> {
    is_member_path(&path).then_some(path)
}

/// The path of a serde error, empty for the whole body.
fn path_of<E>(error: &serde_path_to_error::Error<E>) -> String {
    let path = error.path().to_string();
    if path == "." {
        String::new()
    } else {
        path
    }
}

/// Parses a JSON body into `T`.
///
/// `T` is read straight from the bytes, so that member order, duplicate
/// members and numbers are judged as serde_json judges them. serde_json's
/// errors carry a category (syntax or data) but no kind; when the data
/// does not fit, [`shape_error`] asks serde for the kind.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => {
            de.end().map_err(|_| ApiError::MalformedJson)?;
            Ok(value)
        }
        Err(e) if e.inner().is_data() => Err(shape_error::<T>(body, &path_of(&e))),
        Err(_) => Err(ApiError::MalformedJson),
    }
}

/// Why `body` (JSON that does not fit `T` at `path`) is refused: a missing
/// member, or a member of the wrong type. `T` is read again from the
/// body's JSON tree through a deserializer with serde_value's error type,
/// which keeps serde's error kind (`MissingField` with the member's name);
/// when that reading fails at the same place for a missing member, that is
/// the answer, else the member at `path` has the wrong shape.
fn shape_error<T: DeserializeOwned>(body: &[u8], path: &str) -> ApiError {
    let wrong_shape = || ApiError::WrongShape {
        field: member(path.to_owned()),
    };
    let Ok(tree) = serde_json::from_slice::<serde_value::Value>(body) else {
        return wrong_shape();
    };
    let again =
        serde_path_to_error::deserialize::<_, T>(ValueDeserializer::<DeserializerError>::new(tree));
    match again {
        Err(e) if path_of(&e) == path => match e.inner() {
            DeserializerError::MissingField(name) => ApiError::MissingMember {
                field: member(if path.is_empty() {
                    (*name).to_owned()
                } else {
                    format!("{path}.{name}")
                }),
            },
            _ => wrong_shape(),
        },
        _ => wrong_shape(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pseudoform_protocol::ttp::{BatchRequest, EvalRequest, RekeyRequest};

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
        let e = parse::<EvalRequest>(b"{\"encryptedPersonalId\": 123456789}").unwrap_err();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field(), Some("encryptedPersonalId"));
        assert!(!e.to_string().contains("123456789"));
        let e = parse::<EvalRequest>(
            b"{\"encryptedPersonalId\": \"x\", \"recipientOrganization\": \"o\"}",
        )
        .unwrap_err();
        assert_eq!(e.code(), "request.missingMember");
        assert_eq!(e.field(), Some("recipientScope"));
        let e = parse::<BatchRequest>(
            b"{\"recipientOrganization\":\"o\",\"recipientScope\":\"s\",\"records\":[{\"items\":[{\"type\":\"B\"}]}]}",
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("records[0].items[0].blindedInput"));
        let e = parse::<EvalRequest>(b"{\"999990007\": [").unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
        let e = parse::<EvalRequest>(b"").unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
        let e = parse::<EvalRequest>(
            b"{\"encryptedPersonalId\":\"x\",\"recipientOrganization\":\"o\",\"recipientScope\":\"s\"} x",
        )
        .unwrap_err();
        assert_eq!(e.code(), "request.malformedJson");
    }

    #[test]
    fn shape_errors_have_their_kind() {
        // A member of the wrong type is not a missing one, wherever it is.
        let e = parse::<RekeyRequest>(
            b"{\"recipientOrganization\":\"o\",\"recipientScope\":\"s\",\"fromVersion\":-1,\"toVersion\":2,\"blindedPseudonyms\":[]}",
        )
        .unwrap_err();
        assert_eq!(
            (e.code(), e.field()),
            ("request.invalid", Some("fromVersion"))
        );
        let e =
            parse::<BatchRequest>(b"{\"recipientOrganization\":\"o\",\"records\":[]}").unwrap_err();
        assert_eq!(
            (e.code(), e.field()),
            ("request.missingMember", Some("recipientScope"))
        );
        // A duplicate member is refused, as serde_json refuses it.
        let e = parse::<EvalRequest>(
            b"{\"encryptedPersonalId\":\"x\",\"recipientOrganization\":\"o\",\"recipientScope\":\"s\",\"recipientScope\":\"t\"}",
        )
        .unwrap_err();
        assert_eq!(e.code(), "request.invalid");
        // A member name the caller chose is never named.
        let e = parse::<EvalRequest>(b"[1]").unwrap_err();
        assert_eq!((e.code(), e.field()), ("request.invalid", None));
    }
}
