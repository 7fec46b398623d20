//! The demo registry server (axum).
//!
//! | route | what |
//! |---|---|
//! | `POST /api/submissions` | a [`Submission`] → 201 [`Receipt`], or an [`ApiError`] |
//! | `GET /api/records` | the stored records (newest first, `?limit=`, default 500) |
//! | `GET /api/form-config` | what the demo form needs: TTP, recipient, provider, login, types, pinned TTP signing keys, the identity frame |
//! | `GET /registry` | HTML page of what the registry holds (Dutch) |
//! | `GET /health` | liveness: `{"status":"ok"}` |
//! | `GET /ready` | readiness: 200 while the database can be written, else 503 `server.notReady` |
//! | `GET /*` | static files of `www_dir` |
//!
//! Request bodies are limited to 256 KiB (413). Connections, header, body
//! and request times are bounded by [`RegistryConfig::limits`]
//! ([`pseudoform_server`]); a panicking request answers 500 and the server
//! lives. Every response carries
//! `Cache-Control: no-store`, `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`; the static files a CSP that allows only
//! this origin's scripts (and wasm), connections to this origin and the
//! TTP and, with `frame_url`, frames of the identity frame's origin. The log has one line per request: method, path, status, latency —
//! never a body, a label or data.
//!
//! `GET /api/records` and `/registry` make this a DEMO server: a production
//! registry puts its records behind authentication. The form's TTP
//! credential never comes from the registry: `/api/form-config` names the
//! provider portal's login popup (`login`), through which the browser gets a
//! short-lived token bound to its own key.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use pseudoform_protocol::registry::{Receipt, Submission};
use serde::{Deserialize, Serialize};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::RegistryConfig;
use crate::error::ApiError;
use crate::receiver::Receiver;
use crate::store::{StoreError, StoredRecord};
use crate::view;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Number of records `GET /api/records` returns without `limit`, and the
/// registry page shows.
pub const DEFAULT_RECORD_LIMIT: u32 = 500;
/// Largest `limit` of `GET /api/records`.
pub const MAX_RECORD_LIMIT: u32 = 10_000;

/// The CSP of the registry page.
const REGISTRY_PAGE_CSP: &str =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'";

/// `GET /api/form-config` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FormConfig {
    /// Base URL of the TTP.
    pub ttp: String,
    /// The registry's organisation.
    pub recipient_organization: String,
    /// The registry's scope.
    pub recipient_scope: String,
    /// The supplying provider of the demo form.
    pub provider: String,
    /// The provider portal's login popup URL (`data-pseudoform-login`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub login: String,
    /// DEVELOPMENT ONLY: a static TTP token (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_token: String,
    /// Pseudonym types the registry accepts.
    pub types: Vec<String>,
    /// The RFC 7638 thumbprints of the TTP signing keys this registry pins:
    /// the form accepts the registry's key only as signed by one of them.
    pub ttp_signing_keys: Vec<String>,
    /// The identity frame's page URL (`frame_url`), if the form may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<String>,
}

/// One record in `GET /api/records`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// The record id.
    pub id: i64,
    /// When it was received, RFC 3339 UTC.
    pub received_at: String,
    /// Its labels `TYPE:vN:<base64url>`: current ones first, then those of
    /// older key versions.
    pub pseudonyms: Vec<String>,
    /// The clinical fields: strings, and lists of strings.
    pub data: pseudoform_protocol::registry::Data,
    /// The `jti` of the TTP's JWE the record came from (several
    /// comma-separated), to trace it to the TTP's audit row.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ttp_jti: Option<String>,
    /// The provider the TTP named in its claims.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}

impl From<StoredRecord> for RecordView {
    fn from(record: StoredRecord) -> Self {
        let (current, old): (Vec<_>, Vec<_>) =
            record.pseudonyms.into_iter().partition(|p| p.is_current);
        RecordView {
            id: record.id,
            received_at: view::rfc3339(record.received_at),
            pseudonyms: current.into_iter().chain(old).map(|p| p.label).collect(),
            data: record.data,
            ttp_jti: record.ttp_jti,
            provider: record.provider,
        }
    }
}

#[derive(Clone, Debug)]
struct AppState {
    receiver: Arc<Receiver>,
    form_config: Arc<FormConfig>,
}

#[derive(Debug, Deserialize)]
struct RecordsQuery {
    limit: Option<u32>,
}

/// Runs blocking store work off the async executor; a failed task is a 500.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(ApiError::Internal))
}

/// A store error as an answer: logged, and a 500 without its details.
fn read_failed(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "reading records failed");
    ApiError::Internal
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<Submission>, JsonRejection>,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let Json(submission) = body?;
    // The one `DPoP` header (the submitter proof); several, or one that is
    // not text, is an invalid proof.
    let mut values = headers
        .get_all(pseudoform_protocol::auth::DPOP_HEADER)
        .iter();
    let proof = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().unwrap_or("-").to_owned()),
        (Some(_), Some(_)) => Some("-".to_owned()),
    };
    let receiver = Arc::clone(&state.receiver);
    let receipt = blocking(move || {
        Ok(receiver.receive_proved(
            submission,
            proof.as_deref(),
            pseudoform_protocol::unix_now(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)))
}

async fn records(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<Vec<RecordView>>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::InvalidLimit)?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_RECORD_LIMIT)
        .min(MAX_RECORD_LIMIT);
    let receiver = Arc::clone(&state.receiver);
    let records = blocking(move || receiver.store().records(limit).map_err(read_failed)).await?;
    Ok(Json(records.into_iter().map(RecordView::from).collect()))
}

async fn registry_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    let receiver = Arc::clone(&state.receiver);
    let records = blocking(move || {
        receiver
            .store()
            .records(DEFAULT_RECORD_LIMIT)
            .map_err(read_failed)
    })
    .await?;
    let html = view::registry_page(
        state.receiver.organization(),
        state.receiver.scope(),
        &records,
    );
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(REGISTRY_PAGE_CSP),
        ),
    ];
    Ok((headers, html).into_response())
}

async fn stylesheet() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        view::STYLESHEET,
    )
        .into_response()
}

async fn form_config(State(state): State<AppState>) -> Json<FormConfig> {
    Json((*state.form_config).clone())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: a small write commits (so a full disk or a read-only
/// database answers 503, and a load balancer sends no submissions).
async fn ready(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let receiver = Arc::clone(&state.receiver);
    blocking(move || {
        receiver
            .store()
            .probe(pseudoform_protocol::unix_now())
            .map_err(|err| {
                tracing::warn!(error = %err, "not ready: the database cannot be written");
                ApiError::NotReady
            })
    })
    .await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound
}

/// Logs method, path, status and latency of every request; nothing else.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// The CSP of the static files: scripts and wasm from this origin only,
/// connections to this origin and the TTP, and frames of the identity
/// frame's origin (if any).
pub fn static_csp(ttp_origin: &str, frame_origin: Option<&str>) -> String {
    let frame = frame_origin
        .map(|origin| format!("frame-src {origin}; "))
        .unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' {ttp_origin}; \
         {frame}object-src 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// The CORS of form origins on other origins: `POST` with `Content-Type`
/// and the submitter proof's `DPoP` header. None without such origins.
fn cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o))
        .collect::<Result<Vec<_>, _>>()
        .context("an allowed origin is not a valid header value")?;
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(tower_http::cors::AllowOrigin::list(origins))
            .allow_methods([axum::http::Method::POST])
            .allow_headers([header::CONTENT_TYPE, HeaderName::from_static("dpop")]),
    ))
}

/// The router of a registry around an existing [`Receiver`]; `config`
/// gives the static directory and the form configuration.
pub fn router(receiver: Arc<Receiver>, config: &RegistryConfig) -> anyhow::Result<Router> {
    let ttp_origin = config.ttp_origin()?;
    let frame_origin = config.frame_origin()?;
    let csp = HeaderValue::from_str(&static_csp(&ttp_origin, frame_origin.as_deref()))
        .context("ttp_url makes an invalid CSP header")?;
    let ttp_signing_keys = receiver
        .ttp_signing_kids()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let state = AppState {
        receiver,
        form_config: Arc::new(FormConfig {
            ttp: config.ttp_url.clone(),
            recipient_organization: config.recipient_organization.clone(),
            recipient_scope: config.recipient_scope.clone(),
            provider: config.provider.clone(),
            login: config.login_url.clone(),
            access_token: config.access_token.clone(),
            types: config.allowed_types.clone(),
            ttp_signing_keys,
            frame: config.frame_url.clone(),
        }),
    };
    let statics = ServeDir::new(&config.www_dir).append_index_html_on_directories(true);
    let router = Router::new()
        .route("/api/submissions", post(submit))
        .route("/api/records", get(records))
        .route("/api/form-config", get(form_config))
        .route("/api/{*rest}", any(api_not_found))
        .route("/registry", get(registry_page))
        .route(view::STYLESHEET_PATH, get(stylesheet))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback_service(statics)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ));
    let router = match cors(&config.allowed_origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = pseudoform_server::harden(router, &config.limits, || {
        ApiError::Internal.into_response()
    });
    Ok(router.layer(middleware::from_fn(log_request)))
}

/// The registry's router from its configuration: loads the keys, opens the
/// database and builds [`router`].
pub fn app(config: RegistryConfig) -> anyhow::Result<Router> {
    let receiver = Receiver::from_config(&config)?;
    if !config.www_dir.is_dir() {
        tracing::warn!(
            www_dir = %config.www_dir.display(),
            "the static directory does not exist; / will answer 404"
        );
    }
    router(Arc::new(receiver), &config)
}

/// Serves the registry on `listener` until the task is dropped or fails.
pub async fn serve(
    config: RegistryConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves the registry on `listener` until `shutdown` completes, then
/// finishes the requests in flight.
pub async fn serve_with_shutdown<F>(
    config: RegistryConfig,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let limits = config.limits;
    let app = app(config)?;
    pseudoform_server::serve(listener, app, &limits, shutdown)
        .await
        .context("the registry server failed")
}
