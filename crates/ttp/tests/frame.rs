//! The identity frame on the TTP's own origin (`[frame] dir`) and the frame
//! origins at the token endpoint and the evaluating endpoints: a real TTP
//! on 127.0.0.1, its frame folder in a temporary directory, raw HTTP for
//! the paths a URL library would normalise away.

#![cfg(test)]

use pseudoform_testkit::keys::ttp_signing;
use pseudoform_testkit::ttp::*;
use pseudoform_ttp::frame::{sri, FILES};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A frame hosted elsewhere (`[frame] origins`).
const FRAME_ORIGIN: &str = "https://frame.example.nl";

/// A folder with the five built files (small stand-ins), their manifest and
/// a file that must never be served.
fn frame_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8]); 4] = [
        ("index.html", b"<!DOCTYPE html><title>frame</title>"),
        ("frame.js", b"export {};\n"),
        ("pseudoform_bg.wasm", b"\0asm\x01\0\0\0"),
        ("frame.css", b"body { margin: 0 }\n"),
    ];
    let mut manifest = serde_json::Map::new();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        manifest.insert(name.into(), sri(bytes).into());
    }
    let manifest = json!({ "version": 1, "files": manifest });
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("secret.txt"), "not a frame file").unwrap();
    dir
}

/// The `[frame]` table serving `dir` with [`FRAME_ORIGIN`] elsewhere.
fn frame_table(dir: &std::path::Path) -> String {
    format!(
        "[frame]\ndir = {}\norigins = [\"{FRAME_ORIGIN}\"]\n",
        Value::String(dir.to_string_lossy().into_owned())
    )
}

/// A raw `GET` (or `method`) of `path` as sent, without normalisation: the
/// status and the whole answer.
async fn raw(base: &str, method: &str, path: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, answer)
}

#[tokio::test]
async fn the_ttp_serves_exactly_the_frame_files_with_the_frame_headers() {
    let folder = frame_folder();
    let ttp = TestTtp::start_with(false, &frame_table(folder.path())).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(ttp.url(path)).header("origin", ORIGIN_A).send();
    let csp = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self' {}; frame-ancestors {FRAME_PARENT_A} {FRAME_PARENT_B}; base-uri 'none'; form-action 'none'",
        ttp.base
    );

    for page in ["/frame/", "/frame/index.html"] {
        let response = get(page).await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        let h = response.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8");
        assert_eq!(h["content-security-policy"], csp.as_str());
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h["permissions-policy"]
            .to_str()
            .unwrap()
            .contains("camera=(), "));
        // Framed from other origins: no CORP, no X-Frame-Options; a page, no CORS.
        for absent in [
            "cross-origin-resource-policy",
            "x-frame-options",
            "access-control-allow-origin",
        ] {
            assert!(!h.contains_key(absent), "{page}: {absent}");
        }
        assert_eq!(
            response.bytes().await.unwrap(),
            std::fs::read(folder.path().join("index.html")).unwrap()
        );
    }
    for (name, content_type) in FILES {
        let response = get(&format!("/frame/{name}")).await.unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let h = response.headers().clone();
        assert_eq!(h["content-type"], content_type, "{name}");
        assert_eq!(h["content-security-policy"], csp.as_str());
        assert_eq!(h["x-content-type-options"], "nosniff");
        if name != "index.html" {
            assert_eq!(h["cross-origin-resource-policy"], "same-origin", "{name}");
        }
        assert_eq!(
            response.bytes().await.unwrap(),
            std::fs::read(folder.path().join(name)).unwrap(),
            "{name}"
        );
    }

    let response = get("/frame/settings.json").await.unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["cross-origin-resource-policy"], "same-origin");
    assert_eq!(h["content-security-policy"], csp.as_str());
    let settings: Value = response.json().await.unwrap();
    assert_eq!(
        settings,
        json!({
            "version": 1,
            "ttp": ttp.base,
            "recipients": [
                { "organization": ORG_A, "scope": SCOPE_A, "origins": [FRAME_PARENT_A] },
                { "organization": ORG_B, "scope": SCOPE_B, "origins": [FRAME_PARENT_B] },
            ],
            "providers": [{ "provider": "ura:00000001", "login": PORTAL_LOGIN }],
            "ttpSigningKeys": [ttp_signing().kid],
        })
    );

    // Only the listed names, one level, nothing outside the folder; each
    // refusal still carries the frame's headers.
    let secret = std::fs::read_to_string(&ttp.config_path).unwrap();
    for path in [
        "/frame/secret.txt",
        "/frame/SECRET.TXT",
        "/frame/INDEX.HTML",
        "/frame/..%2fttp.toml",
        "/frame/%2e%2e/ttp.toml",
        "/frame/%2e%2e%2fttp.toml",
        "/frame/..%5cttp.toml",
        "/frame/sub/index.html",
        "/frame/index.html/",
        "/frame/index.html%00",
        "/frame/./index.html/..",
        "/frame/%2e",
    ] {
        let (status, answer) = raw(&ttp.base, "GET", path).await;
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(!answer.contains("master_key_file"), "{path}");
        assert!(!answer.contains("not a frame file"), "{path}");
        assert!(answer.contains("frame-ancestors"), "{path}: {answer}");
    }
    assert!(secret.contains("master_key_file"));
    let (status, answer) = raw(&ttp.base, "GET", "/frame").await;
    assert_eq!(status, 308, "{answer}");
    assert!(answer.to_ascii_lowercase().contains("location: /frame/"));
    let (status, answer) = raw(&ttp.base, "POST", "/frame/index.html").await;
    assert_eq!(status, 405, "{answer}");
    assert!(answer.contains("frame-ancestors"), "{answer}");
    // The TTP's API is where it was.
    let (status, _, health) = ttp.get("/health", None).await;
    assert_eq!((status, health), (200, json!({"status": "ok"})));
}

#[tokio::test]
async fn a_frame_origin_is_a_form_origin_of_every_recipient_and_no_other_origin_is() {
    let folder = frame_folder();
    let ttp = TestTtp::start_with(false, &frame_table(folder.path())).await;
    let batch = |org: &str, scope: &str| batch_request(org, scope, &["NGGV"], 1, "frame");

    // The frame elsewhere and the TTP's own frame, for both recipients.
    for origin in [FRAME_ORIGIN, ttp.base.as_str()] {
        let credential = ttp
            .browser_for(Client::ProviderA, CLINICIAN, origin, None)
            .await;
        for (org, scope) in [(ORG_A, SCOPE_A), (ORG_B, SCOPE_B)] {
            let (status, _, body) = ttp
                .call(&credential, "/v1/evaluate", &batch(org, scope))
                .await;
            assert_eq!(status, 200, "{origin} {org}: {body}");
        }
        // The token is of the frame's origin: from the recipient's own
        // form origin it is refused.
        let url = ttp.url("/v1/evaluate");
        let proof = credential
            .key
            .dpop_proof("POST", &url, Some(&credential.token), now())
            .unwrap();
        let (status, _, body) = ttp
            .call_with(
                &credential.token,
                Some(&proof),
                "/v1/evaluate",
                Some(ORIGIN_A),
                serde_json::to_vec(&batch(ORG_A, SCOPE_A)).unwrap(),
            )
            .await;
        assert_error(status, &body, 403, "origin.notAllowed");
    }

    // CORS answers the frame origin's preflight.
    let preflight = ttp
        .client
        .request(reqwest::Method::OPTIONS, ttp.url("/v1/evaluate"))
        .header("origin", FRAME_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, dpop, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        FRAME_ORIGIN
    );

    // A frame's parent is no browser origin: no CORS for it.
    let preflight = ttp
        .client
        .request(reqwest::Method::OPTIONS, ttp.url("/v1/token"))
        .header("origin", FRAME_PARENT_A)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!preflight
        .headers()
        .contains_key("access-control-allow-origin"));

    // A subject token for an origin that is neither a form nor a frame,
    // and for a frame's parent (the registry's frame-mode page: a token of
    // its own would let it evaluate guesses).
    for stranger in [
        "https://elsewhere.example.nl",
        "https://frame.example.nl:8443",
        FRAME_PARENT_A,
        FRAME_PARENT_B,
    ] {
        let key = pseudoform_protocol::client::EcKey::generate().unwrap();
        let claims = ttp.subject_claims(Client::ProviderA, CLINICIAN, key.thumbprint(), stranger);
        let subject = Client::ProviderA.key().subject_token(&claims).unwrap();
        let (status, _, body) = ttp.exchange_answer(&subject, &key, Some(stranger)).await;
        assert_token_error(
            status,
            &body,
            403,
            "unauthorized_client",
            "origin.notAllowed",
        );
    }
}

#[tokio::test]
async fn without_a_frame_table_there_is_no_frame_and_no_frame_origin() {
    let ttp = TestTtp::start(false).await;
    let (status, answer) = raw(&ttp.base, "GET", "/frame/").await;
    assert_eq!(status, 404, "{answer}");
    assert!(!answer.contains("frame-ancestors"));
    let key = pseudoform_protocol::client::EcKey::generate().unwrap();
    let claims = ttp.subject_claims(Client::ProviderA, CLINICIAN, key.thumbprint(), &ttp.base);
    let subject = Client::ProviderA.key().subject_token(&claims).unwrap();
    let (status, _, body) = ttp.exchange_answer(&subject, &key, Some(&ttp.base)).await;
    assert_token_error(
        status,
        &body,
        403,
        "unauthorized_client",
        "origin.notAllowed",
    );
}

#[test]
fn a_frame_folder_without_its_files_stops_the_start() {
    let folder = frame_folder();
    std::fs::remove_file(folder.path().join("frame.js")).unwrap();
    let (_dir, _path, config) = prepare(&frame_table(folder.path()));
    let err = pseudoform_ttp::app(config).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("frame.js"), "{message}");
    assert!(message.contains("./build.sh build"), "{message}");
    let (_dir, _path, config) = prepare(&frame_table(&folder.path().join("missing")));
    let message = format!("{:#}", pseudoform_ttp::app(config).unwrap_err());
    assert!(message.contains("index.html"), "{message}");
}
