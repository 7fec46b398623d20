//! The demo's identity frame on its own origin: the real
//! `pseudoform-demo` process on free loopback ports with a frame folder of
//! its own, then without one. The frame host's headers and settings follow
//! the TTP's configuration; the clinician's login at the portal, the TTP's
//! token exchange and an evaluation all work for the frame's origin, and
//! registry A hands the frame to its form.

#![cfg(test)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use pseudoform_protocol::auth::{DPOP_HEADER, GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_JWT};
use pseudoform_protocol::client::EcKey;
use pseudoform_testkit::ttp::{batch_request, now};
use pseudoform_ttp::frame::sri;
use serde_json::{json, Value};

/// A running demo, killed when dropped.
struct Demo {
    child: Child,
    urls: Value,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo with its data in `dir` and the frame files of `frame`,
/// every port free; its `--json` line.
fn start(dir: &Path, frame: &Path) -> Demo {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pseudoform-demo"))
        .args(["--dir", &dir.join("demo").to_string_lossy()])
        .args(["--www", &www.to_string_lossy()])
        .args(["--frame-dir", &frame.to_string_lossy()])
        .args([
            "--ttp-port",
            "0",
            "--registry-port",
            "0",
            "--framed-registry-port",
            "0",
            "--second-registry-port",
            "0",
        ])
        .args(["--portal-port", "0", "--frame-port", "0", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let urls = serde_json::from_str(&line).unwrap_or_else(|_| panic!("no JSON line: {line:?}"));
    Demo { child, urls }
}

/// Runs `node scripts/verify-frame.mjs <url> <manifest>`: its exit status
/// and what it printed.
fn verify(url: &str, manifest: &Path) -> (Option<i32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("node")
        .arg(root.join("scripts/verify-frame.mjs"))
        .arg(url)
        .arg(manifest)
        .output()
        .expect("node (20 or later) runs scripts/verify-frame.mjs; ./build.sh setup installs it");
    let report = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code(), report)
}

/// GETs `url` once the server answers (the servers start after the JSON
/// line is printed).
async fn get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    for _ in 0..200 {
        if let Ok(response) = http.get(url).send().await {
            return response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{url} does not answer");
}

/// The `http://127.0.0.1:P` and `http://localhost:P` origins of `url`.
fn both(url: &str) -> [String; 2] {
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ]
}

#[tokio::test]
async fn the_frame_origin_serves_the_frame_and_is_a_form_origin_of_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let frame = dir.path().join("frame");
    std::fs::create_dir_all(&frame).unwrap();
    let files: [(&str, &[u8]); 4] = [
        ("index.html", b"<!DOCTYPE html><title>frame</title>"),
        ("frame.js", b"export {};\n"),
        ("pseudoform_bg.wasm", b"\0asm\x01\0\0\0"),
        ("frame.css", b"body { margin: 0 }\n"),
    ];
    let mut manifest = serde_json::Map::new();
    for (name, bytes) in files {
        std::fs::write(frame.join(name), bytes).unwrap();
        manifest.insert(name.into(), sri(bytes).into());
    }
    std::fs::write(
        frame.join("manifest.json"),
        json!({ "version": 1, "files": manifest }).to_string(),
    )
    .unwrap();

    let demo = start(dir.path(), &frame);
    let urls = &demo.urls;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let (ttp, frame_url, a, b) = (
        text(&urls["ttp"]),
        text(&urls["frame"]),
        text(&urls["registryA"]),
        text(&urls["registryB"]),
    );
    let (portal, login) = (text(&urls["portal"]), text(&urls["login"]));
    // Registry A's frame-mode origin: a frame parent, nothing more.
    let framed = text(&urls["registryAFramed"]);
    assert_ne!(framed, a);
    assert_eq!(urls["frameForm"], format!("{framed}/frame.html").as_str());
    assert!(frame_url.ends_with("/frame/"), "{frame_url}");
    assert_eq!(urls["frameBuilt"], true);
    let frame_origin = frame_url.trim_end_matches("/frame/").to_owned();
    assert_ne!(frame_origin, a);

    // The frame host: framed by registry A's frame-mode pages only (both
    // names), talks to itself and the TTP.
    let page = get(&http, &frame_url).await;
    assert_eq!(page.status(), 200);
    let ancestors = both(&framed).join(" ");
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("; frame-ancestors {ancestors};")),
        "{csp}"
    );
    assert!(csp.contains(&format!("connect-src 'self' {ttp};")), "{csp}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        page.text().await.unwrap(),
        "<!DOCTYPE html><title>frame</title>"
    );
    let kid = get(&http, &format!("{ttp}/v1/signing-keys"))
        .await
        .json::<Value>()
        .await
        .unwrap()["keys"][0]["kid"]
        .clone();
    let settings: Value = get(&http, &format!("{frame_url}settings.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        settings,
        json!({
            "version": 1,
            "ttp": ttp,
            "recipients": [
                { "organization": urls["recipientA"]["organization"], "scope": urls["recipientA"]["scope"], "origins": both(&framed) },
                { "organization": urls["recipientB"]["organization"], "scope": urls["recipientB"]["scope"], "origins": [] },
            ],
            "providers": [{ "provider": urls["provider"], "login": login }],
            "ttpSigningKeys": [kid],
        })
    );
    assert_eq!(
        get(&http, &format!("{frame_url}ttp.toml")).await.status(),
        404
    );

    // Registry A hands its form the frame; registry B's is in-page only.
    let form_page = get(&http, &format!("{a}/api/form-config")).await;
    let config: Value = form_page.json().await.unwrap();
    assert_eq!(config["frame"], frame_url.as_str());
    let index = get(&http, &format!("{a}/")).await;
    let csp = index.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains(&format!("frame-src {frame_origin};")), "{csp}");
    let config: Value = get(&http, &format!("{b}/api/form-config"))
        .await
        .json()
        .await
        .unwrap();
    assert!(config.get("frame").is_none(), "{config}");

    // Each demo page's link to the other mode: a redirect to the other origin.
    for (from, to) in [
        (format!("{a}/frame.html"), format!("{framed}/frame.html")),
        (format!("{framed}/"), format!("{a}/")),
    ] {
        let answer = get(&http, &from).await;
        assert_eq!(answer.status(), 307, "{from}");
        assert_eq!(answer.headers()["location"], to.as_str());
    }
    // The same registry answers there (its form's settings name the frame).
    let framed_config: Value = get(&http, &format!("{framed}/api/form-config"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(framed_config["frame"], frame_url.as_str());

    // The portal vouches for no frame parent: its page could otherwise get
    // a TTP token of its own.
    let refused = http
        .post(format!("{portal}/login"))
        .form(&[
            ("username", text(&urls["account"]["username"])),
            ("password", text(&urls["account"]["password"])),
            ("jkt", EcKey::generate().unwrap().thumbprint().to_owned()),
            ("origin", framed.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // The clinician logs in at the portal for the frame's origin; the TTP
    // exchanges the subject token for a browser token of that origin.
    let key = EcKey::generate().unwrap();
    let account = &urls["account"];
    let done = http
        .post(format!("{portal}/login"))
        .form(&[
            ("username", text(&account["username"])),
            ("password", text(&account["password"])),
            ("jkt", key.thumbprint().to_owned()),
            ("origin", frame_origin.clone()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let cookie = done.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let subject: Value = http
        .post(format!("{portal}/api/subject-token"))
        .header("origin", &portal)
        .header("cookie", &cookie)
        .json(&json!({ "jkt": key.thumbprint(), "origin": frame_origin }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subject = subject["subjectToken"].as_str().unwrap();
    let token_url = format!("{ttp}/v1/token");
    let answer = http
        .post(&token_url)
        .header("origin", &frame_origin)
        .header(
            DPOP_HEADER,
            key.dpop_proof("POST", &token_url, None, now()).unwrap(),
        )
        .form(&[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_JWT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let token = answer.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let evaluate = |origin: &str| {
        let url = format!("{ttp}/v1/evaluate");
        let body = batch_request(
            urls["recipientA"]["organization"].as_str().unwrap(),
            urls["recipientA"]["scope"].as_str().unwrap(),
            &["NGGV", "RGG"],
            1,
            "demo-frame",
        );
        http.post(&url)
            .header("origin", origin)
            .header("authorization", format!("DPoP {token}"))
            .header(
                DPOP_HEADER,
                key.dpop_proof("POST", &url, Some(&token), now()).unwrap(),
            )
            .json(&body)
            .send()
    };
    assert_eq!(evaluate(&frame_origin).await.unwrap().status(), 200);
    assert_eq!(evaluate(&a).await.unwrap().status(), 403);

    // An auditor's check of the served files against the build's manifest
    // (scripts/verify-frame.mjs): all match; then a tampered frame.js does not.
    let manifest = std::fs::read(frame.join("manifest.json")).unwrap();
    assert_eq!(urls["frameManifest"], sri(&manifest));
    let (status, report) = verify(&frame_url, &frame.join("manifest.json"));
    assert_eq!(status, Some(0), "{report}");
    for (name, _) in files {
        assert!(
            report.contains(&format!("match     {name} sha384-")),
            "{report}"
        );
    }
    assert!(
        report.contains(&format!("match     manifest.json {}", sri(&manifest))),
        "{report}"
    );
    assert!(
        report.contains(&format!("frame-ancestors of the page: {ancestors}\n")),
        "{report}"
    );
    std::fs::write(frame.join("frame.js"), "export const x = 1;\n").unwrap();
    let (status, report) = verify(&frame_url, &frame.join("manifest.json"));
    assert_eq!(status, Some(1), "{report}");
    assert!(
        report.contains("MISMATCH  frame.js: served sha384-"),
        "{report}"
    );
    assert!(report.contains("match     frame.css"), "{report}");
    assert!(report.contains("1 of 5 files do not match"), "{report}");
    let (status, report) = verify(
        &format!("{frame_origin}/elsewhere/"),
        &frame.join("manifest.json"),
    );
    assert_eq!(status, Some(1), "{report}");
    assert!(
        report.contains("FAILED    index.html: HTTP 404"),
        "{report}"
    );
    let (status, _) = verify("not a url", &frame.join("manifest.json"));
    assert_eq!(status, Some(2));
    drop(demo);

    // Without the built frame the chain still starts; the frame host says why.
    let demo = start(dir.path(), &dir.path().join("not-built"));
    assert_eq!(demo.urls["frameBuilt"], false);
    let missing = get(&http, demo.urls["frame"].as_str().unwrap()).await;
    assert_eq!(missing.status(), 503);
    assert!(missing.text().await.unwrap().contains("./build.sh build"));
    let health = get(&http, &format!("{}/health", text(&demo.urls["registryA"]))).await;
    assert_eq!(health.status(), 200);
}
