//! Fuzzes the TTP's request bodies: arbitrary bytes as the JSON of
//! `POST /oprf/eval`, `/v1/evaluate` and `/v1/rekey`, with a valid caller's
//! token (a development-mode static token of a provider, and of the
//! recipient for re-keying), through the real router (`pseudoform_ttp::app`: authentication,
//! extraction, admission, the evaluation queue, the audit log in SQLite).
//! No answer may be a 5xx: bad input gets a 4xx.

#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, Request};
use axum::Router;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _dir: tempfile::TempDir,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let f = common::fixture();
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("a.pem"), &f.rsa_public_pem).unwrap();
        std::fs::write(path("signing.pem"), &f.signing_private_pem).unwrap();
        let master = pseudoform_ttp::keys::MasterKey::generate().unwrap();
        std::fs::write(path("master.key"), master.to_text().as_bytes()).unwrap();
        let config = format!(
            r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"
development_static_tokens = true
[budgets]
browser_token = {{ per_minute = 1000000000, per_day = 1000000000 }}
person = {{ per_minute = 1000000000, per_day = 1000000000 }}
provider = {{ per_minute = 1000000000, per_day = 1000000000 }}
recipient = {{ per_minute = 1000000000, per_day = 1000000000 }}
client = {{ per_minute = 1000000000, per_day = 1000000000 }}
[[recipients]]
organization = "{org}"
scope = "{scope}"
public_key = "a.pem"
allowed_types = ["NGGV", "RGG", "MRN", "GG"]
[[callers]]
id = "ura:00000001"
role = "provider"
token_sha256 = "{hash}"
recipients = [{{ organization = "{org}", scope = "{scope}" }}]
[[callers]]
id = "fuzz-recipient"
party = "{org}"
role = "recipient"
token_sha256 = "{rekey_hash}"
recipient = {{ organization = "{org}", scope = "{scope}" }}
"#,
            org = common::ORG,
            scope = common::SCOPE,
            hash = pseudoform_ttp::callers::hash_token(common::TOKEN),
            rekey_hash = pseudoform_ttp::callers::hash_token(common::REKEY_TOKEN),
        );
        let config = pseudoform_ttp::TtpConfig::from_toml_str(&config, dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let router = runtime
            .block_on(async { pseudoform_ttp::app(config) })
            .unwrap();
        Server {
            runtime,
            router,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = ["/oprf/eval", "/v1/evaluate", "/v1/rekey"][usize::from(selector) % 3];
    // Re-keying is the recipient's alone; evaluating the provider's.
    let token = if path == "/v1/rekey" {
        common::REKEY_TOKEN
    } else {
        common::TOKEN
    };
    let server = server();
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body.to_vec()))
        .unwrap();
    let router = server.router.clone();
    let status = server
        .runtime
        .block_on(async move { router.oneshot(request).await })
        .unwrap()
        .status();
    assert!(
        status.as_u16() < 500,
        "{path} answered {status} to a bad body"
    );
});
