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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64ct::{Base64UrlUnpadded, Encoding};
use pseudoform_protocol::auth::{Cnf, SubjectTokenClaims};
use pseudoform_protocol::client::{random_jti, EcKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Lifetime of a subject token, in seconds (the TTP allows at most 120).
pub const SUBJECT_TOKEN_SECONDS: i64 = 60;

/// Lifetime of a login session, in seconds (a working day).
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// The session cookie's name.
const COOKIE: &str = "portal_session";

/// The pages' CSP: scripts, styles and connections of this origin only, no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The demo clinician's account.
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
    /// The demo account.
    pub account: Account,
    /// The provider's client key: signs subject tokens.
    pub key: EcKey,
}

/// The portal's state: its configuration and the live sessions (SHA-256 of
/// the cookie value → account id and expiry).
struct Portal {
    config: PortalConfig,
    sessions: Mutex<HashMap<[u8; 32], (String, i64)>>,
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
    let account = &portal.config.account;
    // Compared as digests: equal length, no early exit on the secret's bytes.
    let same = |a: &str, b: &str| Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes());
    let user_ok = same(&login.username, &account.username);
    let password_ok = same(&login.password, &account.password);
    if !(user_ok && password_ok) {
        return login_page(
            StatusCode::UNAUTHORIZED,
            &target,
            Some("Gebruikersnaam of wachtwoord is onjuist."),
        );
    }
    let Some(value) = portal.open_session(&account.id) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Fout — zorgportaal",
            "<p class=\"error\">Inloggen lukt nu niet.</p>",
        );
    };
    let cookie =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}");
    let mut response = Redirect::to(&popup_url(&target)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
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
    if let Err(why) = portal.check(&target) {
        let code = if is_jkt(&target.jkt) {
            "origin.notAllowed"
        } else {
            "jkt.invalid"
        };
        return api_error(StatusCode::FORBIDDEN, code, why);
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

/// The portal's router.
pub fn router(config: PortalConfig) -> Router {
    let portal = Arc::new(Portal {
        config,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/popup", get(popup))
        .route("/login", get(login_form).post(login))
        .route("/api/subject-token", post(subject_token))
        .route("/popup.js", get(popup_js))
        .route("/portal.css", get(portal_css))
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
}
