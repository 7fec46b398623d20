//! Correlation headers, as the national reference service has them:
//!
//! - `X-Request-ID`: a fresh UUID (v4) on every answer, errors and CORS
//!   preflights included. A client's own `X-Request-ID` is removed before
//!   anything sees it: the id is the server's, never a value a caller chose.
//! - `X-GF-Correlation-ID` and `X-Client-Trace-ID`: echoed on the answer.
//!   Like the national service, a value is *sanitised*, not refused: every
//!   byte outside `A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_` is dropped and the
//!   rest cut to [`MAX_CORRELATION_LEN`] characters; a value left empty (or
//!   not readable) is dropped, header and all. What the handlers, the log
//!   and the answer see is the sanitised value only.
//!
//! [`correlate`] adds the three to a router (outermost, so that every
//! answer has them); [`Correlation::of`] reads them back in a handler, for
//! the log and security events — correlation, never identity.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// `X-Request-ID`: the server's id of one request.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `X-GF-Correlation-ID`: the caller's id of a chain of calls (national).
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-gf-correlation-id");
/// `X-Client-Trace-ID`: the caller's own trace id (national).
pub const CLIENT_TRACE_ID: HeaderName = HeaderName::from_static("x-client-trace-id");
/// Longest correlation or trace id kept, in characters (the national limit).
pub const MAX_CORRELATION_LEN: usize = 64;

/// The caller's two echoed headers.
const ECHOED: [HeaderName; 2] = [CORRELATION_ID, CLIENT_TRACE_ID];

/// A correlation or trace id as it is kept: only `A`–`Z`, `a`–`z`, `0`–`9`,
/// `-` and `_`, at most [`MAX_CORRELATION_LEN`] of them; `None` when none is
/// left.
pub fn sanitize(value: &[u8]) -> Option<String> {
    let kept: String = value
        .iter()
        .filter(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b'_')
        .take(MAX_CORRELATION_LEN)
        .map(|b| char::from(*b))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// The correlation of a request, as [`correlate`] left its headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Correlation {
    /// The server's `X-Request-ID` (empty outside [`correlate`]).
    pub request_id: String,
    /// The sanitised `X-GF-Correlation-ID`.
    pub correlation_id: Option<String>,
    /// The sanitised `X-Client-Trace-ID`.
    pub client_trace_id: Option<String>,
}

impl Correlation {
    /// The correlation in the headers of a request that passed [`correlate`].
    pub fn of(headers: &HeaderMap) -> Self {
        let text = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Correlation {
            request_id: text(&REQUEST_ID).unwrap_or_default(),
            correlation_id: text(&CORRELATION_ID),
            client_trace_id: text(&CLIENT_TRACE_ID),
        }
    }
}

/// Removes a client's `X-Request-ID`, sanitises the echoed headers in the
/// request, and copies them onto the answer.
async fn normalise(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    headers.remove(REQUEST_ID);
    let mut echoed = Vec::with_capacity(ECHOED.len());
    for name in ECHOED {
        // The first value, as the national service reads it.
        let kept = headers
            .get(&name)
            .and_then(|v| sanitize(v.as_bytes()))
            .and_then(|v| HeaderValue::from_str(&v).ok());
        headers.remove(&name);
        if let Some(value) = kept {
            headers.insert(name.clone(), value.clone());
            echoed.push((name, value));
        }
    }
    let mut response = next.run(request).await;
    for (name, value) in echoed {
        response.headers_mut().insert(name, value);
    }
    response
}

/// `router` with the correlation headers: put it around everything else,
/// so that every answer has an `X-Request-ID`.
pub fn correlate(router: Router) -> Router {
    router
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::from_fn(normalise))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitising_keeps_the_national_charset_and_length() {
        assert_eq!(sanitize(b"abc-DEF_123").as_deref(), Some("abc-DEF_123"));
        assert_eq!(sanitize(b"a b\tc;d=e").as_deref(), Some("abcde"));
        assert_eq!(sanitize(b" ;:/ "), None);
        assert_eq!(sanitize(b""), None);
        let long = "x".repeat(100);
        assert_eq!(sanitize(long.as_bytes()).map(|s| s.len()), Some(64));
        assert_eq!(sanitize("é-1".as_bytes()).as_deref(), Some("-1"));
    }
}
