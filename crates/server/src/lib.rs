//! # pseudoform-server
//!
//! How pseudoform's two servers (the TTP and the registry) take HTTP
//! connections, so that no client can hold one open or take one down:
//!
//! - [`Limits`]: the documented defaults and their configuration table
//!   (`[limits]` in both servers' TOML files);
//! - [`harden`]: the layers every router gets — a panic in a handler (or in
//!   work the handler awaits) answers 500 while the process lives; a
//!   request body that stalls is cut off; a request that takes too long
//!   answers 408;
//! - [`serve`]: the accept loop (hyper's HTTP/1 connection builder, since
//!   `axum::serve` sets no timeout): at most [`Limits::max_connections`] at
//!   once (more wait in the kernel's backlog), a header-read timeout that
//!   also closes idle keep-alive connections, and a graceful shutdown that
//!   finishes the requests in flight;
//! - [`correlation`]: `X-Request-ID` on every answer, the national
//!   correlation headers echoed.

pub mod correlation;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// Connection and request limits of a server (`[limits]` in its TOML file).
/// Every field has a default; a value of 0 is refused by [`Limits::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Seconds a connection may take to send a request's line and headers
    /// (default 10). The same timer runs while a keep-alive connection
    /// waits for its next request, so it is also the idle timeout.
    pub header_timeout_seconds: u64,
    /// Seconds a request body may go without sending data (default 10);
    /// a stalled body fails the request.
    pub body_timeout_seconds: u64,
    /// Seconds from a request's headers to its answer (default 30); past
    /// that the answer is 408 and the work is dropped.
    pub request_timeout_seconds: u64,
    /// Most connections served at once (default 1024); further ones wait
    /// in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout_seconds: 10,
            body_timeout_seconds: 10,
            request_timeout_seconds: 30,
            max_connections: 1024,
        }
    }
}

/// A [`Limits`] value that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidLimits(&'static str);

impl std::fmt::Display for InvalidLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "limits.{} must be positive", self.0)
    }
}

impl std::error::Error for InvalidLimits {}

impl Limits {
    /// Refuses zero values: a zero timeout or cap would refuse everything.
    pub fn validate(&self) -> Result<(), InvalidLimits> {
        for (value, name) in [
            (self.header_timeout_seconds, "header_timeout_seconds"),
            (self.body_timeout_seconds, "body_timeout_seconds"),
            (self.request_timeout_seconds, "request_timeout_seconds"),
        ] {
            if value == 0 {
                return Err(InvalidLimits(name));
            }
        }
        if self.max_connections == 0 {
            return Err(InvalidLimits("max_connections"));
        }
        Ok(())
    }

    /// [`Limits::header_timeout_seconds`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds)
    }

    /// [`Limits::body_timeout_seconds`] as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds)
    }

    /// [`Limits::request_timeout_seconds`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// `router` with the layers of [`Limits`]: a body that stalls past
/// `body_timeout` fails, a request past `request_timeout` answers 408, and a
/// panic while handling a request answers `internal()` (the server's own
/// 500 problem body) — the panic's message goes to the log, never to the
/// client.
pub fn harden(router: Router, limits: &Limits, internal: fn() -> Response) -> Router {
    router
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout()))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout(),
        ))
        .layer(CatchPanicLayer::custom(
            move |_: Box<dyn std::any::Any + Send>| {
                tracing::error!("a request handler panicked; answered 500");
                internal()
            },
        ))
}

/// Serves `router` on `listener` with the connection limits of `limits`
/// until `shutdown` completes; then stops accepting and waits up to
/// `request_timeout` for the connections in flight.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .keep_alive(true);
    let service = TowerToHyperService::new(router);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = builder.serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A timed-out or reset connection is the client's business.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.request_timeout(), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at shutdown were closed");
    }
    Ok(())
}
