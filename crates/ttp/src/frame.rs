//! The frame host: serves the identity frame (the cross-origin page that
//! holds the identifying fields, `docs/frame.md`) under [`BASE_PATH`].
//!
//! It serves exactly the built files of [`FILES`] from one folder
//! (`/frame/` is `index.html`; any other name answers 404, so there is no
//! listing and no way out of the folder) and `settings.json`, made from
//! the TTP's configuration ([`Settings`]): the TTP URL, the recipients
//! with the origins of their frame-mode pages, the providers' login popups and the TTP's
//! signing keys. The parent page chooses none of these.
//!
//! Every answer carries the frame's headers ([`FrameHost::csp`]): a CSP
//! with `frame-ancestors` the union of those origins and
//! `connect-src` this origin and the TTP's, `X-Content-Type-Options`,
//! `Referrer-Policy`, `Permissions-Policy` and, on every file but the page,
//! `Cross-Origin-Resource-Policy: same-origin`. A file missing from the
//! folder answers 503 with a plain-text reason, never 5xx on a request.
//!
//! The TTP mounts [`FrameHost::router`] on its own origin when
//! `[frame] dir` is set; [`serve`] runs it alone (the demo's frame
//! host, on an origin of its own). A care provider may serve the same files with a web server of
//! its own (`docs/operations.md`).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha384};

use crate::config::{unique_origins, Role, TtpConfig};

/// Where the frame is served: the frame page is `/frame/`.
pub const BASE_PATH: &str = "/frame/";

/// The name of the generated settings file.
pub const SETTINGS_FILE: &str = "settings.json";

/// The name of the build's manifest (`{"version":1,"files":{name: sha384}}`).
pub const MANIFEST_FILE: &str = "manifest.json";

/// The frame page.
pub const INDEX_FILE: &str = "index.html";

/// The built frame files the host serves, with their `Content-Type`; no
/// other file of the folder is ever served.
pub const FILES: [(&str, &str); 5] = [
    (INDEX_FILE, "text/html; charset=utf-8"),
    ("frame.js", "text/javascript; charset=utf-8"),
    ("pseudoform_bg.wasm", "application/wasm"),
    ("frame.css", "text/css; charset=utf-8"),
    (MANIFEST_FILE, "application/json"),
];

/// The frame's `Permissions-Policy`: no powerful feature at all.
pub const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), hid=(), magnetometer=(), microphone=(), payment=(), serial=(), usb=()";

/// Version of [`Settings`].
pub const SETTINGS_VERSION: u32 = 1;

/// `settings.json`: what the frame takes from its host, never from the
/// parent page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// [`SETTINGS_VERSION`].
    pub version: u32,
    /// The TTP's public base URL: where the frame sends blinded elements.
    pub ttp: String,
    /// The recipients and the origins of their forms (the parent pages the
    /// frame serves).
    pub recipients: Vec<SettingsRecipient>,
    /// The providers whose clinicians log in through a popup.
    pub providers: Vec<SettingsProvider>,
    /// RFC 7638 thumbprints of the TTP's current signing keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttp_signing_keys: Vec<String>,
}

/// One recipient of [`Settings`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsRecipient {
    /// The recipient organisation (`oin:…`).
    pub organization: String,
    /// The recipient scope.
    pub scope: String,
    /// The origins of the recipient's pages that embed the frame (its
    /// `frame_parent_origins`; never a browser origin of the TTP).
    pub origins: Vec<String>,
}

/// One provider of [`Settings`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsProvider {
    /// The provider (`ura:…`).
    pub provider: String,
    /// Its portal's login popup URL.
    pub login: String,
}

impl Settings {
    /// The settings of the TTP `config` whose current signing key has the
    /// thumbprint `signing_kid`: its public URL, every recipient with its
    /// frame-parent origins, every provider caller with a `login`.
    pub fn from_config(config: &TtpConfig, signing_kid: &str) -> Settings {
        Settings {
            version: SETTINGS_VERSION,
            ttp: config.public_url(),
            recipients: config
                .recipients
                .iter()
                .map(|r| SettingsRecipient {
                    organization: r.organization.clone(),
                    scope: r.scope.clone(),
                    origins: r.frame_parent_origins.clone(),
                })
                .collect(),
            providers: config
                .callers
                .iter()
                .filter(|c| c.role == Role::Provider)
                .filter_map(|c| {
                    c.login.as_ref().map(|login| SettingsProvider {
                        provider: c.party().to_owned(),
                        login: login.clone(),
                    })
                })
                .collect(),
            ttp_signing_keys: vec![signing_kid.to_owned()],
        }
    }

    /// The origins that may frame the page: every recipient's frame-parent
    /// origins, lowercase, each once, in configuration order.
    pub fn ancestors(&self) -> Vec<String> {
        unique_origins(self.recipients.iter().flat_map(|r| &r.origins))
    }
}

/// The origin (`scheme://host[:port]`) of `url`.
fn origin_of(url: &str) -> anyhow::Result<String> {
    let parsed = url::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    let origin = parsed.origin();
    anyhow::ensure!(origin.is_tuple(), "{url:?} has no origin");
    Ok(origin.ascii_serialization())
}

/// A frame host: the folder of built files and the settings it serves.
#[derive(Clone, Debug)]
pub struct FrameHost {
    /// The folder of the built frame files ([`FILES`]).
    pub dir: PathBuf,
    /// What `settings.json` says.
    pub settings: Settings,
}

/// A frame host ready to answer: settings and headers made once.
#[derive(Debug)]
struct Ready {
    dir: PathBuf,
    settings: Vec<u8>,
    csp: HeaderValue,
}

impl FrameHost {
    /// The frame's `Content-Security-Policy`: its own scripts, styles and
    /// wasm only, connections to itself and the TTP, framed only by the
    /// recipients' frame-parent origins (`'none'` when there are none).
    pub fn csp(&self) -> anyhow::Result<String> {
        let ttp = origin_of(&self.settings.ttp).context("the frame's TTP URL")?;
        let ancestors = self.settings.ancestors();
        let ancestors = if ancestors.is_empty() {
            "'none'".to_owned()
        } else {
            ancestors.join(" ")
        };
        Ok(format!(
            "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self' {ttp}; frame-ancestors {ancestors}; \
             base-uri 'none'; form-action 'none'"
        ))
    }

    /// The built files missing from the folder (empty: all there).
    pub fn missing_files(&self) -> Vec<&'static str> {
        FILES
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !self.dir.join(name).is_file())
            .collect()
    }

    /// Fails, naming the folder and the files, unless every built file is
    /// there.
    pub fn check(&self) -> anyhow::Result<()> {
        let missing = self.missing_files();
        anyhow::ensure!(
            missing.is_empty(),
            "the identity frame folder {} lacks {} (build the frame with ./build.sh build)",
            self.dir.display(),
            missing.join(", ")
        );
        Ok(())
    }

    /// `sha384-…` (base64) of the folder's `manifest.json`, for an operator
    /// to compare with a build of the tagged source; `None` without one.
    pub fn manifest_digest(&self) -> Option<String> {
        let manifest = std::fs::read(self.dir.join(MANIFEST_FILE)).ok()?;
        Some(sri(&manifest))
    }

    /// Logs the manifest's digest, or that the frame is not built.
    pub fn log_start(&self) {
        match self.manifest_digest() {
            Some(digest) => tracing::info!(
                dir = %self.dir.display(),
                manifest = %digest,
                "identity frame served at {BASE_PATH}"
            ),
            None => tracing::warn!(
                dir = %self.dir.display(),
                "identity frame not built: {BASE_PATH} answers 503 (./build.sh build)"
            ),
        }
    }

    /// The router of [`BASE_PATH`]: `GET /frame/`, `/frame/<file>`,
    /// `/frame/settings.json`; `/frame` redirects to `/frame/`. Without a
    /// fallback, to be merged into another router (the TTP's).
    pub fn router(&self) -> anyhow::Result<Router> {
        self.build(false)
    }

    /// [`FrameHost::router`]; `alone`: with its own 404 and 405 answers
    /// (with the frame's headers) for every other path and method.
    fn build(&self, alone: bool) -> anyhow::Result<Router> {
        let csp = HeaderValue::from_str(&self.csp()?)
            .context("the frame's origins make an invalid CSP header")?;
        let settings =
            serde_json::to_vec(&self.settings).context("the frame settings do not serialise")?;
        let ready = Arc::new(Ready {
            dir: self.dir.clone(),
            settings,
            csp,
        });
        let router = Router::new()
            .route("/frame", get(|| async { Redirect::permanent(BASE_PATH) }))
            .route("/frame/", get(index))
            .route("/frame/{name}", get(file))
            .route("/frame/{name}/", get(not_found))
            .route("/frame/{name}/{*rest}", get(not_found));
        let router = if alone {
            router
                .fallback(not_found)
                .method_not_allowed_fallback(|| async {
                    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
                })
        } else {
            router
        };
        Ok(router
            .layer(middleware::from_fn_with_state(
                Arc::clone(&ready),
                frame_headers,
            ))
            .with_state(ready))
    }
}

/// `sha384-` and the base64 SHA-384 of `bytes` (the form of SRI).
pub fn sri(bytes: &[u8]) -> String {
    format!("sha384-{}", Base64::encode_string(&Sha384::digest(bytes)))
}

/// A plain-text answer.
fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

async fn index(State(ready): State<Arc<Ready>>) -> Response {
    serve_file(&ready, INDEX_FILE).await
}

async fn file(
    State(ready): State<Arc<Ready>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    if name == SETTINGS_FILE {
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            ready.settings.clone(),
        )
            .into_response();
    }
    serve_file(&ready, &name).await
}

/// One of [`FILES`] by name (anything else is 404); 503 when it is not in
/// the folder.
async fn serve_file(ready: &Ready, name: &str) -> Response {
    let Some((name, content_type)) = FILES.iter().find(|(file, _)| *file == name) else {
        return not_found().await;
    };
    match tokio::fs::read(ready.dir.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(file = %name, dir = %ready.dir.display(), error = %e, "a frame file cannot be read");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the identity frame is not available on this host: its files are not built or not readable (./build.sh build)\n",
            )
        }
    }
}

/// The frame's headers on every answer of the router.
async fn frame_headers(State(ready): State<Arc<Ready>>, request: Request, next: Next) -> Response {
    let page = matches!(request.uri().path(), "/frame/" | "/frame/index.html");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, ready.csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    if !page {
        headers.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serves `host` alone on `listener` (a frame origin of its own, as the
/// demo's) with the default limits until `shutdown` completes.
pub async fn serve<F>(
    host: &FrameHost,
    listener: tokio::net::TcpListener,
    shutdown: F,
) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let limits = pseudoform_server::Limits::default();
    let router = pseudoform_server::harden(host.build(true)?, &limits, || {
        text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
    });
    host.log_start();
    pseudoform_server::serve(listener, router, &limits, shutdown)
        .await
        .context("the frame host failed")
}
