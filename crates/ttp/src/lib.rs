//! # pseudoform-ttp
//!
//! The reference Trusted Third Party of pseudoform: it evaluates the OPRF on
//! blinded elements with one key per recipient key domain and returns the
//! result as a JWE that only the recipient can read. It never sees an
//! identity, an unblinded hash or a definitive pseudonym, and stores none.
//!
//! Endpoints (see `docs/openapi-ttp.yaml`):
//!
//! - `POST /oprf/eval` — one blinded element, wire-compatible with the
//!   national reference service;
//! - `POST /v1/evaluate` — a batch of records, one JWE per record;
//! - `GET /v1/policy` — the types a recipient may receive and its key version;
//! - `GET /v1/signing-keys` — the JWKS of the key that signs every JWE's claims;
//! - `GET /v1/provider-keys` — the providers' encryption keys, each signed
//!   by the TTP ([`provider_keys`]);
//! - `POST /v1/rekey` — moves blinded pseudonyms between key versions;
//! - `POST /v1/token` — OAuth 2.0 token endpoint: DPoP-bound access tokens
//!   for back ends (`private_key_jwt`) and browsers (token exchange), and
//!   validation tokens for a registry's validation endpoints;
//! - `GET /health` — liveness: the process answers;
//! - `GET /ready` — readiness: the audit log can be written and the keys
//!   read (503 otherwise);
//! - `GET /frame/…` — the identity frame, when `[frame] dir` is set
//!   ([`frame`]).
//!
//! Modules, one concern each: [`config`] (the TOML file, roles, budgets),
//! [`keys`] (key versions and binding keys, encryption at rest, cache),
//! [`binding`] (MRN bound to the provider), [`signing`] (the TTP's
//! signatures), [`provider_keys`] (the providers' encryption keys and
//! their signed directory), [`jwe`] (encryption to the recipient), [`jose`] (JWS
//! helpers), [`callers`] (the callers and their keys), [`dpop`] (proofs of
//! possession), [`access`] (access tokens and the principal of a request),
//! [`token`] (the token endpoint), [`ledger`] (single-use ids and budgets
//! in the database), [`budget`] (what a request is charged to),
//! [`admission`] (who may ask what of which recipient), [`audit`] (signed
//! hash chain, aggregated refusals, export), [`security`] (security
//! events), [`evaluation`] (the CPU work), [`queue`] (admission control of
//! the CPU work), [`extract`] (the JSON body and the principal of a
//! request), [`handlers`] (the evaluating endpoints), [`state`], [`error`]
//! (the problem answers), [`frame`] (the identity frame's host).
//!
//! Embedding: [`app`] gives an [`axum::Router`]; [`serve`] runs it on a
//! listener until Ctrl-C/SIGTERM, [`serve_with_shutdown`] until a future ends,
//! both with the connection limits and timeouts of [`TtpConfig::limits`]
//! (`pseudoform_server`).

pub mod access;
pub mod admission;
pub mod audit;
pub mod binding;
pub mod budget;
pub mod callers;
pub mod config;
pub mod dpop;
pub mod error;
pub mod evaluation;
pub mod extract;
pub mod frame;
pub mod handlers;
pub mod hsm;
pub mod jose;
pub mod jwe;
pub mod keys;
pub mod ledger;
mod pg;
pub mod provider_keys;
pub mod queue;
pub mod security;
pub mod signing;
pub mod state;
pub mod token;

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method, Request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

use handlers::Evaluating as _;
use pseudoform_protocol::auth::TOKEN_PATH;
use pseudoform_protocol::ttp::{BatchRequest, EvalRequest, RekeyRequest};
use pseudoform_server::correlation::{
    self, Correlation, CLIENT_TRACE_ID, CORRELATION_ID, REQUEST_ID,
};

pub use config::TtpConfig;

/// Largest request body, in bytes (1 MiB); larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The router and the audit writer thread behind it.
fn build(config: &TtpConfig) -> anyhow::Result<(Router, JoinHandle<()>)> {
    let (state, audit_thread) = state::AppState::new(config)?;
    let frame = match &config.frame.dir {
        Some(dir) => {
            let host = frame::FrameHost {
                dir: dir.clone(),
                settings: frame::Settings::from_config(config, state.signing_key.kid()),
            };
            host.check()?;
            host.log_start();
            Some(host.router()?)
        }
        None => None,
    };
    let origins = state
        .all_origins
        .iter()
        .map(|o| HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()
        .context("an allowed origin is not a valid header value")?;
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("dpop"),
            CORRELATION_ID,
            CLIENT_TRACE_ID,
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            REQUEST_ID,
            CORRELATION_ID,
            CLIENT_TRACE_ID,
        ])
        .max_age(state.cors_max_age);
    // Method, path, status, latency and the correlation headers (sanitised
    // by `correlate`) only: never other headers, queries or bodies.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let c = Correlation::of(request.headers());
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %c.request_id,
                correlation_id = c.correlation_id.as_deref().unwrap_or_default(),
                client_trace_id = c.client_trace_id.as_deref().unwrap_or_default(),
            )
        })
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_failure(());
    let state = Arc::new(state);
    // The directory is public data for any page (a registry's, a
    // provider's): CORS `*`, without credentials.
    let directory = Router::new()
        .route(provider_keys::PATH, get(provider_keys::provider_keys))
        .with_state(Arc::clone(&state))
        .layer(
            CorsLayer::new()
                .allow_origin(tower_http::cors::Any)
                .allow_methods([Method::GET])
                .allow_headers([CORRELATION_ID, CLIENT_TRACE_ID])
                .expose_headers([REQUEST_ID, CORRELATION_ID, CLIENT_TRACE_ID])
                .max_age(state.cors_max_age),
        )
        .method_not_allowed_fallback(handlers::method_not_allowed);
    let router = Router::new()
        .route(EvalRequest::PATH, post(handlers::audited::<EvalRequest>))
        .route(BatchRequest::PATH, post(handlers::audited::<BatchRequest>))
        .route(pseudoform_protocol::ttp::POLICY_PATH, get(handlers::policy))
        .route(
            pseudoform_protocol::ttp::SIGNING_KEYS_PATH,
            get(handlers::signing_keys),
        )
        .route(RekeyRequest::PATH, post(handlers::audited::<RekeyRequest>))
        .route(TOKEN_PATH, post(token::token))
        .route("/health", get(handlers::health))
        .route("/ready", get(handlers::ready))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(
            access::refuse_trusted_proxy_headers,
        ))
        .layer(cors)
        .merge(directory);
    // The frame has its own headers and no CORS: it is a page, not an API.
    let router = match frame {
        Some(frame) => router.merge(frame),
        None => router,
    };
    let router = pseudoform_server::harden(router, &config.limits, || {
        error::ApiError::Internal.into_response()
    })
    .layer(trace);
    Ok((correlation::correlate(router), audit_thread))
}

/// The TTP as an [`axum::Router`], for embedding. It opens the database,
/// checks the master key and starts the audit writer, which writes until
/// the router (and every clone) is dropped. Without `public_url` the TTP
/// takes `http://` + `listen` as its public URL.
pub fn app(config: TtpConfig) -> anyhow::Result<Router> {
    Ok(build(&config)?.0)
}

/// Serves the TTP on `listener` until Ctrl-C or SIGTERM, then finishes the
/// requests in flight and the audit log.
pub async fn serve(config: TtpConfig, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    serve_with_shutdown(config, listener, shutdown_signal()).await
}

/// Serves the TTP on `listener` until `shutdown` completes, then finishes
/// the requests in flight and the audit log. Without `public_url` the TTP
/// takes `http://` + the listener's address as its public URL.
pub async fn serve_with_shutdown<F>(
    config: TtpConfig,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut config = config;
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{address}"));
    }
    let (router, audit_thread) = build(&config)?;
    tracing::info!(%address, public_url = %config.public_url(), "pseudoform-ttp listening");
    pseudoform_server::serve(listener, router, &config.limits, shutdown)
        .await
        .context("server failed")?;
    let joined = tokio::task::spawn_blocking(move || audit_thread.join());
    match tokio::time::timeout(Duration::from_secs(10), joined).await {
        Ok(Ok(Ok(()))) => {}
        _ => tracing::warn!("the audit writer did not finish in time"),
    }
    Ok(())
}

/// Completes on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
