//! The demo provider portal: the care provider's own login for the
//! clinician, on its own loopback origin, that vouches for the clinician's
//! browser at the TTP.
//!
//! | route | what |
//! |---|---|
//! | `GET /popup?jkt=…&origin=…` | the page that hands the form a subject token; without a session it goes on to the login |
//! | `GET /login?jkt=…&origin=…` | the login page (Dutch) |
//! | `POST /login` | checks the demo account, sets the session cookie, back to the popup |
//! | `POST /api/subject-token` | `{jkt, origin}` → `{subjectToken}`, for a logged-in clinician, from the portal's own pages only |
//! | `GET /popup.js`, `GET /portal.css` | the popup page's script and style |
//! | `GET /validation` | the provider's validation page (with [`Validation`]) |
//! | `GET /validation/login`, `POST /validation/login` | the login for the validation page, which comes back to it |
//! | `GET /validation-config.json` | the validation page's configuration |
//! | `GET /pseudoform-validation.js`, `GET /pseudoform_bg.wasm` | its script bundle and the wasm module it loads (from the built package) |
//! | `GET /api/approvals`, `POST /api/approvals` | four-eyes: the account's own ask and the other accounts' pending asks; ask for an approval |
//! | `POST /api/approvals/{id}/approve` | four-eyes: another account approves an ask |
//!
//! The session cookie is `HttpOnly; SameSite=Strict` on the portal's
//! origin, and lives in this process only. Because a strict cookie does not
//! come with the popup's first navigation from a form on another site, the
//! popup page asks for the token with a same-origin `fetch` (which carries
//! it) and only on `401` goes on to the login page. A subject token (`typ`
//! `pseudoform-subject+jwt`, ES256 by the provider's client key, which the
//! TTP knows as the provider caller's `public_keys`) names the clinician's
//! account id (`sub`, never a name), the browser's DPoP key (`cnf.jkt`) and
//! the form origin; it is valid for [`SUBJECT_TOKEN_SECONDS`] and single
//! use at the TTP. The form origin must be one of the portal's configured
//! form origins, checked when the popup opens and again when the token is
//! signed; the popup page posts the token to exactly that origin
//! (`postMessage(…, origin)`).
//!
//! With [`Validation`] the portal also serves the provider's validation
//! page on its own origin (docs/protocol.md, "Validation: the provider's
//! side"): the page asks `/api/subject-token` for a token naming the
//! portal's own origin, which the TTP accepts for scope `validate` only,
//! because the portal is one of the provider's `validation_origins` there.
//!
//! Four-eyes ([`ValidationPageConfig::four_eyes`]): the portal then signs
//! a subject token for its own origin (the validation page's, so the
//! `validate` purpose) only for an account that holds an approval by
//! *another* account, for [`Validation::approval_seconds`] after it was
//! given ([`APPROVAL_SECONDS`] in the demo); otherwise `/api/subject-token`
//! answers `403 approval.required`. The rule is the portal's, the
//! provider's identity provider: the page cannot get round it, because
//! without a subject token the TTP issues no validation token and the
//! registry lists nothing. An account asks (`POST /api/approvals`, one ask
//! per account; an ask waits as long as an approval lasts), another account
//! sees the pending asks (account ids only) and approves one. Tokens for
//! the form origins are not affected. Like the sessions, approvals live in
//! this process only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64ct::{Base64UrlUnpadded, Encoding};
use pseudoform_protocol::auth::{Cnf, SubjectTokenClaims};
use pseudoform_protocol::client::{random_jti, EcKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Lifetime of a subject token, in seconds (the TTP allows at most 120).
pub const SUBJECT_TOKEN_SECONDS: i64 = 60;

/// Lifetime of a login session, in seconds (a working day).
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// How long an approval lets its account open the validation page, and how
/// long an ask waits for one, in seconds (the demo's setting).
pub const APPROVAL_SECONDS: i64 = 15 * 60;

/// The session cookie's name.
const COOKIE: &str = "portal_session";

/// The pages' CSP: scripts, styles and connections of this origin only, no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A demo account of the portal (a clinician or another employee).
#[derive(Clone)]
pub struct Account {
    /// What the clinician types as the user name.
    pub username: String,
    /// The password (a development secret made by the demo).
    pub password: String,
    /// The employee id the subject token names (`sub`): no name.
    pub id: String,
}

impl std::fmt::Debug for Account {
    /// The user name and id, never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What the portal needs.
#[derive(Debug)]
pub struct PortalConfig {
    /// The portal's own origin (`http://127.0.0.1:8490`).
    pub origin: String,
    /// The provider's client id at the TTP (`ura:…`).
    pub provider: String,
    /// The TTP's issuer: the `aud` of every subject token.
    pub issuer: String,
    /// The form origins the portal vouches for.
    pub form_origins: Vec<String>,
    /// The demo accounts (with four-eyes: at least two).
    pub accounts: Vec<Account>,
    /// The provider's client key: signs subject tokens.
    pub key: EcKey,
    /// The validation page, if the portal serves one.
    pub validation: Option<Validation>,
}

/// The provider's validation page at the portal.
#[derive(Debug)]
pub struct Validation {
    /// Its configuration, served as `/validation-config.json`.
    pub config: ValidationPageConfig,
    /// The built browser package (`www/pkg`): `pseudoform-validation.js`
    /// and `pseudoform_bg.wasm` are served from it.
    pub pkg_dir: PathBuf,
    /// With four-eyes: how long an approval holds and an ask waits, in
    /// seconds ([`APPROVAL_SECONDS`] in the demo).
    pub approval_seconds: i64,
}

/// The validation page's configuration (`/validation-config.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationPageConfig {
    /// The TTP's URL, as browsers reach it.
    pub ttp: String,
    /// The provider (`ura:…`): the page opens only pseudonyms naming it.
    pub provider: String,
    /// The pinned thumbprints of the TTP's signing keys.
    pub ttp_signing_keys: Vec<String>,
    /// The registries the provider delivers to.
    pub registries: Vec<ValidationRegistry>,
    /// Four-eyes: whether another account must approve before an account
    /// gets a subject token for the validation page (and so sees numbers).
    /// Enforced by the portal, not only by the page.
    pub four_eyes: bool,
}

/// One registry of the validation page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationRegistry {
    /// Its name on the page.
    pub name: String,
    /// Its public URL (the `htu` base of the provider endpoints).
    pub url: String,
    /// Its recipient organization (`oin:…`).
    pub recipient_organization: String,
    /// Its recipient scope.
    pub recipient_scope: String,
}

/// The portal's state: its configuration, the live sessions (SHA-256 of
/// the cookie value → account id and expiry) and the four-eyes asks (by the
/// asking account's id: one per account).
struct Portal {
    config: PortalConfig,
    sessions: Mutex<HashMap<[u8; 32], (String, i64)>>,
    approvals: Mutex<HashMap<String, Approval>>,
}

/// One account's ask for a four-eyes approval.
#[derive(Debug, Clone)]
struct Approval {
    /// `ap-` and 22 random base64url characters.
    id: String,
    /// The asking account's id.
    account: String,
    /// When it was asked (Unix seconds).
    asked_at: i64,
    /// The approving account's id and when it approved.
    approved: Option<(String, i64)>,
}

impl Approval {
    /// Until when it holds: a pending ask waits, an approval lasts, `seconds`.
    fn expires_at(&self, seconds: i64) -> i64 {
        match &self.approved {
            Some((_, at)) => at + seconds,
            None => self.asked_at + seconds,
        }
    }

    /// Its state for its own account (`GET`/`POST /api/approvals`).
    fn own_json(&self, seconds: i64) -> serde_json::Value {
        let status = if self.approved.is_some() {
            "approved"
        } else {
            "pending"
        };
        let mut value = serde_json::Map::new();
        value.insert("id".into(), self.id.clone().into());
        value.insert("status".into(), status.into());
        value.insert("askedAt".into(), self.asked_at.into());
        value.insert("expiresAt".into(), self.expires_at(seconds).into());
        if let Some((by, at)) = &self.approved {
            value.insert("approvedBy".into(), by.clone().into());
            value.insert("approvedAt".into(), (*at).into());
        }
        value.into()
    }
}

type Shared = Arc<Portal>;

/// The popup's query: the browser's DPoP key thumbprint and the form origin.
#[derive(Debug, Deserialize)]
struct Target {
    jkt: String,
    origin: String,
}

/// The login form.
#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
    jkt: String,
    origin: String,
}

/// Whether `jkt` looks like an RFC 7638 SHA-256 thumbprint.
fn is_jkt(jkt: &str) -> bool {
    jkt.len() == 43
        && jkt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A Dutch HTML page with the portal's CSP.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/portal.css\"></head><body><main>\
         <h1>Zorgportaal (demo)</h1>{body}</main></body></html>\n"
    );
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
    ];
    (status, headers, html).into_response()
}

fn now() -> i64 {
    pseudoform_protocol::unix_now()
}

/// The login page for `target`, with a message after a failed attempt.
fn login_page(status: StatusCode, target: &Target, message: Option<&str>) -> Response {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p>Log in bij uw zorgaanbieder om gegevens voor de registratie te pseudonimiseren.</p>{error}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"jkt\" value=\"{jkt}\">\
         <input type=\"hidden\" name=\"origin\" value=\"{origin}\">\
         <label for=\"username\">Gebruikersnaam</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
         <label for=\"password\">Wachtwoord</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Inloggen</button></form>",
        jkt = escape(&target.jkt),
        origin = escape(&target.origin),
    );
    page(status, "Inloggen — zorgportaal", &body)
}

/// The page for a target the portal does not vouch for.
/// The refusal of a malformed login request.
const INVALID_REQUEST: &str = "Dit verzoek om in te loggen is ongeldig.";

fn refused(why: &str) -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Geweigerd — zorgportaal",
        &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(why)),
    )
}

impl Portal {
    /// Refuses a target with a malformed thumbprint or an unknown form origin.
    fn check(&self, target: &Target) -> Result<(), &'static str> {
        if !is_jkt(&target.jkt) {
            return Err(INVALID_REQUEST);
        }
        if !self.config.form_origins.iter().any(|o| o == &target.origin) {
            return Err("Dit formulier is niet bekend bij uw zorgaanbieder.");
        }
        Ok(())
    }

    /// Refuses a subject token's target unless it is a known form origin,
    /// or the portal's own origin when it serves the validation page.
    fn check_token_target(&self, target: &Target) -> Result<(), &'static str> {
        if self.config.validation.is_some()
            && target.origin == self.config.origin
            && is_jkt(&target.jkt)
        {
            return Ok(());
        }
        self.check(target)
    }

    /// The `Set-Cookie` value of a new session if the user name and
    /// password are one demo account's.
    fn authenticate(&self, username: &str, password: &str) -> Result<HeaderValue, LoginFailure> {
        // Compared as digests: equal length, no early exit on the secret's
        // bytes; every account is compared.
        let same = |a: &str, b: &str| Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes());
        let mut found = None;
        for account in &self.config.accounts {
            let user_ok = same(username, &account.username);
            let password_ok = same(password, &account.password);
            if user_ok && password_ok {
                found = Some(account);
            }
        }
        let Some(account) = found else {
            return Err(LoginFailure::Wrong);
        };
        let value = self
            .open_session(&account.id)
            .ok_or(LoginFailure::Unavailable)?;
        HeaderValue::from_str(&format!(
            "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}"
        ))
        .map_err(|_| LoginFailure::Unavailable)
    }

    /// The account id of the request's live session, if any.
    fn session(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                pair.trim()
                    .strip_prefix(&format!("{COOKIE}="))
                    .map(str::to_owned)
            })?;
        let id: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        let mut sessions = self.sessions.lock().ok()?;
        let now = now();
        sessions.retain(|_, (_, expires)| *expires > now);
        sessions.get(&id).map(|(account, _)| account.clone())
    }

    /// A new session for `account`: the cookie value.
    fn open_session(&self, account: &str) -> Option<String> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).ok()?;
        let value = Base64UrlUnpadded::encode_string(&bytes);
        let id: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        self.sessions
            .lock()
            .ok()?
            .insert(id, (account.to_owned(), now() + SESSION_SECONDS));
        Some(value)
    }
}

/// The popup URL for `target`.
fn popup_url(target: &Target) -> String {
    let query = serde_urlencoded::to_string([("jkt", &target.jkt), ("origin", &target.origin)])
        .unwrap_or_default();
    format!("/popup?{query}")
}

/// The query's target if it is well-formed and for a known form origin;
/// else why it is refused.
fn checked(
    portal: &Portal,
    query: Result<Query<Target>, QueryRejection>,
) -> Result<Target, &'static str> {
    let Ok(Query(target)) = query else {
        return Err(INVALID_REQUEST);
    };
    portal.check(&target)?;
    Ok(target)
}

async fn login_form(
    State(portal): State<Shared>,
    query: Result<Query<Target>, QueryRejection>,
) -> Response {
    let target = match checked(&portal, query) {
        Ok(target) => target,
        Err(why) => return refused(why),
    };
    login_page(StatusCode::OK, &target, None)
}

async fn popup(
    State(portal): State<Shared>,
    query: Result<Query<Target>, QueryRejection>,
) -> Response {
    let target = match checked(&portal, query) {
        Ok(target) => target,
        Err(why) => return refused(why),
    };
    let body = format!(
        "<p id=\"status\" data-form-origin=\"{}\">Bezig met aanmelden bij het formulier…</p>\
         <script type=\"module\" src=\"/popup.js\"></script>",
        escape(&target.origin)
    );
    page(StatusCode::OK, "Aanmelden — zorgportaal", &body)
}

async fn login(State(portal): State<Shared>, form: Result<Form<Login>, FormRejection>) -> Response {
    let Ok(Form(login)) = form else {
        return refused(INVALID_REQUEST);
    };
    let target = Target {
        jkt: login.jkt,
        origin: login.origin,
    };
    if let Err(why) = portal.check(&target) {
        return refused(why);
    }
    let cookie = match portal.authenticate(&login.username, &login.password) {
        Ok(cookie) => cookie,
        Err(LoginFailure::Wrong) => {
            return login_page(StatusCode::UNAUTHORIZED, &target, Some(WRONG_LOGIN));
        }
        Err(LoginFailure::Unavailable) => return login_unavailable(),
    };
    let mut response = Redirect::to(&popup_url(&target)).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// Why a login did not open a session.
enum LoginFailure {
    /// Not a demo account's user name and password.
    Wrong,
    /// No randomness for the session.
    Unavailable,
}

const WRONG_LOGIN: &str = "Gebruikersnaam of wachtwoord is onjuist.";

fn login_unavailable() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Fout — zorgportaal",
        "<p class=\"error\">Inloggen lukt nu niet.</p>",
    )
}

/// An error answer of the token API: `{code, message}`.
fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "code": code, "message": message })),
    )
        .into_response()
}

async fn subject_token(
    State(portal): State<Shared>,
    headers: HeaderMap,
    body: Result<Json<Target>, JsonRejection>,
) -> Response {
    // Only the portal's own pages may ask (a cross-origin fetch carries its
    // Origin; the cookie is SameSite=Strict besides).
    let own = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|o| o == portal.config.origin);
    if !own {
        return api_error(
            StatusCode::FORBIDDEN,
            "origin.notAllowed",
            "only the portal's own pages may ask for a subject token",
        );
    }
    let Some(account) = portal.session(&headers) else {
        return api_error(StatusCode::UNAUTHORIZED, "login.required", "log in first");
    };
    let Ok(Json(target)) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "request.invalid",
            "the body must be {jkt, origin}",
        );
    };
    if let Err(why) = portal.check_token_target(&target) {
        let code = if is_jkt(&target.jkt) {
            "origin.notAllowed"
        } else {
            "jkt.invalid"
        };
        return api_error(StatusCode::FORBIDDEN, code, why);
    }
    if target.origin == portal.config.origin && !portal.approved(&account) {
        return api_error(
            StatusCode::FORBIDDEN,
            "approval.required",
            "four-eyes: the validation page needs an approval by another account",
        );
    }
    let iat = now();
    let Ok(jti) = random_jti() else {
        return api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "no randomness",
        );
    };
    let claims = SubjectTokenClaims {
        iss: portal.config.provider.clone(),
        aud: portal.config.issuer.clone(),
        sub: account,
        iat,
        exp: iat + SUBJECT_TOKEN_SECONDS,
        jti,
        cnf: Cnf { jkt: target.jkt },
        origin: target.origin,
        provider: Some(portal.config.provider.clone()),
    };
    match portal.config.key.subject_token(&claims) {
        Ok(token) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(serde_json::json!({ "subjectToken": token })),
        )
            .into_response(),
        Err(err) => {
            tracing_error(&err);
            api_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "signing failed",
            )
        }
    }
}

/// Reports a signing failure on stderr (the demo has no log subscriber).
fn tracing_error(err: &dyn std::fmt::Display) {
    eprintln!("portal: signing a subject token failed: {err}");
}

/// The popup page's script: asks for the subject token and posts it to the
/// form origin the server checked, then closes.
const POPUP_JS: &str = r#"// Hands the form (window.opener) a subject token, posted to its origin only.
const status = document.getElementById("status");
const origin = status.dataset.formOrigin;
const jkt = new URLSearchParams(location.search).get("jkt");
try {
  if (!window.opener) throw new Error("no form window");
  const answer = await fetch("/api/subject-token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jkt, origin }),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (answer.status === 401) {
    // No session (or the first navigation came without the strict cookie): log in.
    location.replace(`/login${location.search}`);
  } else {
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const { subjectToken } = await answer.json();
    window.opener.postMessage({ type: "pseudoform:subject-token", subjectToken }, origin);
    status.textContent = "Aangemeld. Dit venster sluit vanzelf.";
    window.close();
  }
} catch {
  status.textContent = "Aanmelden bij het formulier lukte niet. Sluit dit venster en probeer het opnieuw.";
}
"#;

const PORTAL_CSS: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:26rem}\
label{display:block;margin-top:.8rem}input{display:block;width:100%;padding:.4rem;box-sizing:border-box}\
button{margin-top:1rem;padding:.5rem 1rem}.error{color:#a00}\n";

async fn popup_js() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        POPUP_JS,
    )
        .into_response()
}

async fn portal_css() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        PORTAL_CSS,
    )
        .into_response()
}

// ------------------------------------------------------------ validation

/// The validation page's CSP: the portal's scripts (and the wasm module it
/// compiles), connections to the portal, the TTP and the registries only.
fn validation_csp(config: &ValidationPageConfig) -> String {
    let mut connect = vec!["'self'".to_owned()];
    for url in std::iter::once(&config.ttp).chain(config.registries.iter().map(|r| &r.url)) {
        if let Some(origin) = origin_of(url) {
            if !connect.contains(&origin) {
                connect.push(origin);
            }
        }
    }
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; connect-src {}; \
         img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// The origin (`scheme://host[:port]`) of an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let safe = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    safe.then(|| format!("{scheme}://{authority}"))
}

/// The validation page of the portal, if it serves one.
fn validation(portal: &Portal) -> Option<&Validation> {
    portal.config.validation.as_ref()
}

/// `GET /validation`: the page as the package ships it (`www/validation.html`,
/// copied into the package by `./build.sh build`), under the page's CSP.
async fn validation_page(State(portal): State<Shared>) -> Response {
    let Some(validation) = validation(&portal) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(csp) = HeaderValue::from_str(&validation_csp(&validation.config)) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = package_file(&portal, "validation.html", "text/html; charset=utf-8").await;
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn validation_config(State(portal): State<Shared>) -> Response {
    match validation(&portal) {
        Some(v) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(v.config.clone()),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A file of the built package: the validation page, its style, its bundle or the wasm.
async fn package_file(portal: &Portal, name: &str, content_type: &'static str) -> Response {
    let Some(validation) = validation(portal) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match tokio::fs::read(validation.pkg_dir.join(name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => api_error(
            StatusCode::NOT_FOUND,
            "package.missing",
            "the browser package is not built (./build.sh build)",
        ),
    }
}

async fn validation_js(State(portal): State<Shared>) -> Response {
    package_file(
        &portal,
        "pseudoform-validation.js",
        "text/javascript; charset=utf-8",
    )
    .await
}

async fn validation_wasm(State(portal): State<Shared>) -> Response {
    package_file(&portal, "pseudoform_bg.wasm", "application/wasm").await
}

async fn validation_css(State(portal): State<Shared>) -> Response {
    package_file(&portal, "validation.css", "text/css; charset=utf-8").await
}

/// The validation page's login form.
#[derive(Deserialize)]
struct ValidationLogin {
    username: String,
    password: String,
}

/// The login page of the validation page, with a message after a failed attempt.
fn validation_login_page(status: StatusCode, message: Option<&str>) -> Response {
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let body = format!(
        "<p>Log in bij uw zorgaanbieder om de validatieverzoeken van de registers te zien.</p>{error}\
         <form method=\"post\" action=\"/validation/login\">\
         <label for=\"username\">Gebruikersnaam</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
         <label for=\"password\">Wachtwoord</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Inloggen</button></form>"
    );
    page(status, "Inloggen — validatie", &body)
}

async fn validation_login_form(State(portal): State<Shared>) -> Response {
    if validation(&portal).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    validation_login_page(StatusCode::OK, None)
}

async fn validation_login(
    State(portal): State<Shared>,
    form: Result<Form<ValidationLogin>, FormRejection>,
) -> Response {
    if validation(&portal).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Ok(Form(login)) = form else {
        return refused(INVALID_REQUEST);
    };
    match portal.authenticate(&login.username, &login.password) {
        Ok(cookie) => {
            let mut response = Redirect::to("/validation").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(LoginFailure::Wrong) => {
            validation_login_page(StatusCode::UNAUTHORIZED, Some(WRONG_LOGIN))
        }
        Err(LoginFailure::Unavailable) => login_unavailable(),
    }
}

// ------------------------------------------------------------ four-eyes

/// What an approval request of the portal's own pages may carry: no query
/// or body from another site. `POST` must name the portal's origin (every
/// browser sends `Origin` with a POST); a `GET` may come without one (a
/// same-origin GET carries none), but not from another origin or site.
fn from_own_page(portal: &Portal, headers: &HeaderMap, post: bool) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let origin_ok = match origin {
        Some(o) => o == portal.config.origin,
        None => !post,
    };
    origin_ok && site.is_none_or(|s| s == "same-origin")
}

impl Portal {
    /// With four-eyes, how long approvals hold; `None` when four-eyes is off.
    fn four_eyes(&self) -> Option<i64> {
        self.config
            .validation
            .as_ref()
            .filter(|v| v.config.four_eyes)
            .map(|v| v.approval_seconds)
    }

    /// Whether `account` may have a subject token for the validation page:
    /// always without four-eyes; with it, only with a live approval by
    /// another account.
    fn approved(&self, account: &str) -> bool {
        let Some(seconds) = self.four_eyes() else {
            return true;
        };
        let Ok(approvals) = self.approvals.lock() else {
            return false;
        };
        approvals.get(account).is_some_and(|a| {
            a.approved.as_ref().is_some_and(|(by, _)| by != account)
                && a.expires_at(seconds) > now()
        })
    }
}

/// The session's account for an approval request, or the refusal: four-eyes
/// off (`404 approval.notEnabled`), not from the portal's own page (`403
/// origin.notAllowed`), no session (`401 login.required`).
fn approval_caller(
    portal: &Portal,
    headers: &HeaderMap,
    post: bool,
) -> Result<(String, i64), Box<Response>> {
    let Some(seconds) = portal.four_eyes() else {
        return Err(Box::new(api_error(
            StatusCode::NOT_FOUND,
            "approval.notEnabled",
            "four-eyes approval is not switched on",
        )));
    };
    if !from_own_page(portal, headers, post) {
        return Err(Box::new(api_error(
            StatusCode::FORBIDDEN,
            "origin.notAllowed",
            "only the portal's own pages may use approvals",
        )));
    }
    let Some(account) = portal.session(headers) else {
        return Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "login.required",
            "log in first",
        )));
    };
    Ok((account, seconds))
}

fn approvals_unavailable() -> Response {
    api_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "approvals unavailable",
    )
}

/// `GET /api/approvals`: the account's own ask (or `null`) and the other
/// accounts' pending asks, by account id.
async fn approvals(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    let (account, seconds) = match approval_caller(&portal, &headers, false) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    let Ok(mut approvals) = portal.approvals.lock() else {
        return approvals_unavailable();
    };
    let now = now();
    // An expired ask or approval is kept a while longer, so that approving
    // it answers "expired" rather than "unknown".
    approvals.retain(|_, a| a.expires_at(seconds) + seconds > now);
    let own = approvals
        .get(&account)
        .filter(|a| a.expires_at(seconds) > now)
        .map(|a| a.own_json(seconds));
    let mut pending: Vec<&Approval> = approvals
        .values()
        .filter(|a| a.account != account && a.approved.is_none() && a.expires_at(seconds) > now)
        .collect();
    pending.sort_by_key(|a| a.asked_at);
    let pending: Vec<serde_json::Value> = pending
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id, "account": a.account, "askedAt": a.asked_at,
                "expiresAt": a.expires_at(seconds),
            })
        })
        .collect();
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(serde_json::json!({ "account": account, "own": own, "pending": pending })),
    )
        .into_response()
}

/// `POST /api/approvals`: asks for an approval. One ask per account: a live
/// ask or approval is answered as it is (`200`), else a new ask (`201`).
async fn ask_approval(State(portal): State<Shared>, headers: HeaderMap) -> Response {
    let (account, seconds) = match approval_caller(&portal, &headers, true) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    let Ok(mut approvals) = portal.approvals.lock() else {
        return approvals_unavailable();
    };
    let now = now();
    if let Some(live) = approvals
        .get(&account)
        .filter(|a| a.expires_at(seconds) > now)
    {
        return (StatusCode::OK, Json(live.own_json(seconds))).into_response();
    }
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        return approvals_unavailable();
    }
    let ask = Approval {
        id: format!("ap-{}", Base64UrlUnpadded::encode_string(&bytes)),
        account: account.clone(),
        asked_at: now,
        approved: None,
    };
    let answer = ask.own_json(seconds);
    approvals.insert(account, ask);
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `POST /api/approvals/{id}/approve`: another account approves a pending
/// ask. `404 approval.unknown`, `403 approval.sameAccount` (one's own ask),
/// `409 approval.notPending` (approved already), `410 approval.expired`.
async fn approve(
    State(portal): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (account, seconds) = match approval_caller(&portal, &headers, true) {
        Ok(caller) => caller,
        Err(refused) => return *refused,
    };
    let Ok(mut approvals) = portal.approvals.lock() else {
        return approvals_unavailable();
    };
    let now = now();
    let Some(ask) = approvals.values_mut().find(|a| a.id == id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "approval.unknown",
            "no such ask for approval",
        );
    };
    if ask.account == account {
        return api_error(
            StatusCode::FORBIDDEN,
            "approval.sameAccount",
            "an ask must be approved by another account",
        );
    }
    if ask.approved.is_some() {
        return api_error(
            StatusCode::CONFLICT,
            "approval.notPending",
            "this ask is approved already",
        );
    }
    if ask.expires_at(seconds) <= now {
        return api_error(
            StatusCode::GONE,
            "approval.expired",
            "this ask has expired; the account asks again",
        );
    }
    ask.approved = Some((account, now));
    (StatusCode::OK, Json(ask.own_json(seconds))).into_response()
}

/// The portal's router.
pub fn router(config: PortalConfig) -> Router {
    let portal = Arc::new(Portal {
        config,
        sessions: Mutex::new(HashMap::new()),
        approvals: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/popup", get(popup))
        .route("/login", get(login_form).post(login))
        .route("/api/subject-token", post(subject_token))
        .route("/popup.js", get(popup_js))
        .route("/portal.css", get(portal_css))
        .route("/validation", get(validation_page))
        .route(
            "/validation/login",
            get(validation_login_form).post(validation_login),
        )
        .route("/validation-config.json", get(validation_config))
        .route("/validation.css", get(validation_css))
        // No icon: an empty answer rather than a 404 in every page's console.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/pseudoform-validation.js", get(validation_js))
        .route("/pseudoform_bg.wasm", get(validation_wasm))
        .route("/api/approvals", get(approvals).post(ask_approval))
        .route("/api/approvals/{id}/approve", post(approve))
        .with_state(portal)
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprints_and_escaping() {
        assert!(is_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert!(!is_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4"));
        assert!(!is_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4="));
        assert_eq!(escape("\"><script>"), "&quot;&gt;&lt;script&gt;");
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("http://127.0.0.1:8470/v1/").as_deref(),
            Some("http://127.0.0.1:8470")
        );
        assert_eq!(
            origin_of("https://ttp.example").as_deref(),
            Some("https://ttp.example")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("http://a b/"), None);
        assert_eq!(origin_of("http://x;script-src *"), None);
    }
}
