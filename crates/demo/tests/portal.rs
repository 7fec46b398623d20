//! The provider portal against the real TTP: a subject token only for a
//! logged-in clinician, only from the portal's own pages, only for a form
//! origin it is configured for; and the token it signs is one the TTP
//! exchanges for a browser token bound to the browser's key. With
//! four-eyes, a subject token for the validation page only for an account
//! approved by another account, for a bounded time.

#![cfg(test)]

use pseudoform_demo::portal::{
    router, Account, PortalConfig, Validation, ValidationPageConfig, ValidationRegistry,
};
use pseudoform_protocol::client::EcKey;
use pseudoform_testkit::ttp::{token_claims, Client, Credential, TestTtp, ISSUER, ORIGIN_A};
use serde_json::{json, Value};

const USER: &str = "zorgverlener";
const PASSWORD: &str = "een-lang-demo-wachtwoord";
const ACCOUNT: &str = "medewerker-0001";
const SECOND_USER: &str = "controleur";
const SECOND_PASSWORD: &str = "een-ander-lang-demo-wachtwoord";
const SECOND_ACCOUNT: &str = "medewerker-0002";
/// How long an approval holds in the four-eyes test.
const APPROVAL_SECONDS: i64 = 3;

/// The portal on a loopback port: its origin.
async fn start_portal() -> String {
    start_portal_with(None).await
}

/// The portal, with a validation page whose package is in `pkg_dir`.
async fn start_portal_with(pkg_dir: Option<std::path::PathBuf>) -> String {
    start_portal_full(pkg_dir, false).await
}

/// The portal with both accounts; `four_eyes` for its validation page.
async fn start_portal_full(pkg_dir: Option<std::path::PathBuf>, four_eyes: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = router(PortalConfig {
        origin: origin.clone(),
        provider: Client::ProviderA.id().into(),
        issuer: ISSUER.into(),
        form_origins: vec![ORIGIN_A.into()],
        accounts: vec![
            Account {
                username: USER.into(),
                password: PASSWORD.into(),
                id: ACCOUNT.into(),
            },
            Account {
                username: SECOND_USER.into(),
                password: SECOND_PASSWORD.into(),
                id: SECOND_ACCOUNT.into(),
            },
        ],
        key: Client::ProviderA.key(),
        validation: pkg_dir.map(|pkg_dir| Validation {
            config: ValidationPageConfig {
                ttp: "http://127.0.0.1:8470".into(),
                provider: Client::ProviderA.id().into(),
                ttp_signing_keys: vec!["kid-of-the-ttp".into()],
                registries: vec![ValidationRegistry {
                    name: "registry-a".into(),
                    url: "http://127.0.0.1:8480".into(),
                    recipient_organization: "oin:00000001000000001000".into(),
                    recipient_scope: "kwaliteitsregistratie-a".into(),
                }],
                four_eyes,
            },
            pkg_dir,
            approval_seconds: APPROVAL_SECONDS,
        }),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

/// POSTs `{jkt, origin}` for a subject token with `cookie` and an `Origin` header.
async fn ask(
    http: &reqwest::Client,
    portal: &str,
    cookie: Option<&str>,
    from: &str,
    body: Value,
) -> (u16, Value) {
    let mut request = http
        .post(format!("{portal}/api/subject-token"))
        .header("origin", from)
        .json(&body);
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_logged_in_clinician_gets_a_subject_token_the_real_ttp_exchanges() {
    let ttp = TestTtp::start(false).await;
    let portal = start_portal().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser_key = EcKey::generate().unwrap();
    let jkt = browser_key.thumbprint().to_owned();
    let target = json!({ "jkt": jkt, "origin": ORIGIN_A });

    // Login required.
    let (status, body) = ask(&http, &portal, None, &portal, target.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("login.required"))
    );
    // A form origin the portal is not configured for is refused at the popup and the login.
    let popup = |origin: &str| {
        http.get(format!("{portal}/popup"))
            .query(&[("jkt", jkt.as_str()), ("origin", origin)])
            .send()
    };
    assert_eq!(
        popup("https://elders.example.nl").await.unwrap().status(),
        403
    );
    let ok = popup(ORIGIN_A).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("/popup.js"));
    let login = |password: &str, origin: &str| {
        http.post(format!("{portal}/login"))
            .form(&[
                ("username", USER),
                ("password", password),
                ("jkt", jkt.as_str()),
                ("origin", origin),
            ])
            .send()
    };
    assert_eq!(
        login(PASSWORD, "https://elders.example.nl")
            .await
            .unwrap()
            .status(),
        403
    );
    let wrong = login("geraden", ORIGIN_A).await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    // The login: a strict, HttpOnly session cookie, back to the popup.
    let done = login(PASSWORD, ORIGIN_A).await.unwrap();
    assert_eq!(done.status(), 303);
    assert!(done.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/popup?"));
    let set_cookie = done.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // Only the portal's own pages may ask, only for a configured origin and a thumbprint.
    let (status, _) = ask(&http, &portal, Some(&cookie), ORIGIN_A, target.clone()).await;
    assert_eq!(status, 403, "a request from another origin");
    let (status, body) = ask(
        &http,
        &portal,
        Some(&cookie),
        &portal,
        json!({ "jkt": jkt, "origin": "https://elders.example.nl" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("origin.notAllowed"))
    );
    let (status, _) = ask(
        &http,
        &portal,
        Some(&cookie),
        &portal,
        json!({ "jkt": "kort", "origin": ORIGIN_A }),
    )
    .await;
    assert_eq!(status, 403);

    // The token: for this clinician's account id, this key and origin.
    let (status, body) = ask(&http, &portal, Some(&cookie), &portal, target).await;
    assert_eq!(status, 200, "{body}");
    let subject = body["subjectToken"].as_str().unwrap();
    let (status, _, answer) = ttp
        .exchange_answer(subject, &browser_key, Some(ORIGIN_A))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["provider"], Client::ProviderA.id());
    let credential = Credential {
        token: answer["access_token"].as_str().unwrap().to_owned(),
        key: browser_key,
        origin: Some(ORIGIN_A.into()),
        answer: answer.clone(),
    };
    let claims = token_claims(&credential);
    assert_eq!(claims.act.as_ref().map(|a| a.sub.as_str()), Some(ACCOUNT));
    assert_eq!(claims.cnf.jkt, jkt);
    assert!(claims.exp - claims.iat <= 900);
    // Single use: the same subject token again is refused.
    let (status, _, _) = ttp
        .exchange_answer(subject, &credential.key, Some(ORIGIN_A))
        .await;
    assert_eq!(status, 400);
    // Another browser key than the one the portal signed for is refused.
    let (status, body) = ask(
        &http,
        &portal,
        Some(&cookie),
        &portal,
        json!({ "jkt": jkt, "origin": ORIGIN_A }),
    )
    .await;
    assert_eq!(status, 200);
    let stranger = EcKey::generate().unwrap();
    let (status, _, refused) = ttp
        .exchange_answer(
            body["subjectToken"].as_str().unwrap(),
            &stranger,
            Some(ORIGIN_A),
        )
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["code"], "token.wrongKey");
}

#[tokio::test]
async fn the_validation_page_its_login_and_its_own_origin_for_subject_tokens() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jkt = EcKey::generate().unwrap().thumbprint().to_owned();

    // Without a validation page: no routes, and its own origin is no target.
    let plain = start_portal().await;
    assert_eq!(
        http.get(format!("{plain}/validation"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let signed_in = |portal: String| {
        let http = http.clone();
        async move {
            let done = http
                .post(format!("{portal}/validation/login"))
                .form(&[("username", USER), ("password", PASSWORD)])
                .send()
                .await
                .unwrap();
            (done.status().as_u16(), done.headers().clone())
        }
    };
    assert_eq!(signed_in(plain.clone()).await.0, 404);

    let pkg = tempfile::tempdir().unwrap();
    std::fs::write(pkg.path().join("pseudoform-validation.js"), "export {};\n").unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../www/validation.html"),
        pkg.path().join("validation.html"),
    )
    .unwrap();
    let portal = start_portal_with(Some(pkg.path().to_owned())).await;

    // The page: Dutch, its script, a CSP with the TTP and the registry only.
    let page = http
        .get(format!("{portal}/validation"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("connect-src 'self' http://127.0.0.1:8470 http://127.0.0.1:8480;"),
        "{csp}"
    );
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval';"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"nl\"") && html.contains("src=\"pseudoform-validation.js\""));
    assert!(html.contains("Bezwaar van een patiënt"));
    let config: Value = http
        .get(format!("{portal}/validation-config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["provider"], Client::ProviderA.id());
    assert_eq!(
        config["registries"][0]["recipientOrganization"],
        "oin:00000001000000001000"
    );
    assert_eq!(config["fourEyes"], false);
    let script = http
        .get(format!("{portal}/pseudoform-validation.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let wasm = http
        .get(format!("{portal}/pseudoform_bg.wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        wasm.status(),
        404,
        "a package without the wasm: a clear 404"
    );

    // Its login comes back to the page with the strict session cookie.
    let wrong = http
        .post(format!("{portal}/validation/login"))
        .form(&[("username", USER), ("password", "geraden")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (status, headers) = signed_in(portal.clone()).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/validation");
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // A subject token for the portal's own origin, from its own page only.
    let own = json!({ "jkt": jkt, "origin": portal });
    let (status, body) = ask(&http, &portal, Some(&cookie), &portal, own.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["subjectToken"].as_str().is_some());
    let (status, _) = ask(&http, &portal, Some(&cookie), ORIGIN_A, own).await;
    assert_eq!(status, 403, "from another origin");
    let (status, _) = ask(
        &http,
        &portal,
        Some(&cookie),
        &portal,
        json!({ "jkt": "kort", "origin": portal }),
    )
    .await;
    assert_eq!(status, 403, "a malformed thumbprint");
    let (status, body) = ask(
        &http,
        &portal,
        None,
        &portal,
        json!({ "jkt": jkt, "origin": portal }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("login.required"))
    );

    // The plain portal does not vouch for its own origin.
    let (_, headers) = signed_in(plain.clone()).await;
    assert!(headers.get("set-cookie").is_none());
}

/// Logs `user` in at the validation login: the session cookie.
async fn session_of(http: &reqwest::Client, portal: &str, user: &str, password: &str) -> String {
    let done = http
        .post(format!("{portal}/validation/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303, "{user} logs in");
    let set_cookie = done.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// An approval call: `method` `path` with `cookie` and `origin` (if any).
async fn approval_call(
    http: &reqwest::Client,
    portal: &str,
    post: bool,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> (u16, Value) {
    let url = format!("{portal}{path}");
    let mut request = if post { http.post(url) } else { http.get(url) };
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    if let Some(o) = origin {
        request = request.header("origin", o);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn four_eyes_a_validation_subject_token_only_after_another_account_approved() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jkt = EcKey::generate().unwrap().thumbprint().to_owned();
    let pkg = tempfile::tempdir().unwrap();

    // Four-eyes off: the approval API is not there, the page's token is issued.
    let off = start_portal_full(Some(pkg.path().to_owned()), false).await;
    let off_cookie = session_of(&http, &off, USER, PASSWORD).await;
    let (status, body) = approval_call(
        &http,
        &off,
        true,
        "/api/approvals",
        Some(&off_cookie),
        Some(&off),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("approval.notEnabled"))
    );
    let (status, _) = ask(
        &http,
        &off,
        Some(&off_cookie),
        &off,
        json!({ "jkt": jkt, "origin": off }),
    )
    .await;
    assert_eq!(status, 200);

    let portal = start_portal_full(Some(pkg.path().to_owned()), true).await;
    let config: Value = http
        .get(format!("{portal}/validation-config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["fourEyes"], true);
    let first = session_of(&http, &portal, USER, PASSWORD).await;
    let second = session_of(&http, &portal, SECOND_USER, SECOND_PASSWORD).await;
    let own = json!({ "jkt": jkt, "origin": portal });
    let token = |cookie: String| {
        let (http, portal, own) = (http.clone(), portal.clone(), own.clone());
        async move { ask(&http, &portal, Some(&cookie), &portal, own).await }
    };

    // Without an approval: no subject token for the validation page …
    let (status, body) = token(first.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval.required")),
        "{body}"
    );
    assert!(body["message"].is_string() && body.get("subjectToken").is_none());
    // … while the form origins' tokens are not affected.
    let (status, _) = ask(
        &http,
        &portal,
        Some(&first),
        &portal,
        json!({ "jkt": jkt, "origin": ORIGIN_A }),
    )
    .await;
    assert_eq!(status, 200);

    // The API: the portal's own pages only, a session required.
    let (status, body) =
        approval_call(&http, &portal, true, "/api/approvals", None, Some(&portal)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("login.required"))
    );
    let (status, body) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals",
        Some(&first),
        Some(ORIGIN_A),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("origin.notAllowed"))
    );
    let (status, _) =
        approval_call(&http, &portal, true, "/api/approvals", Some(&first), None).await;
    assert_eq!(status, 403, "a POST without Origin");
    let cross_site = http
        .get(format!("{portal}/api/approvals"))
        .header("cookie", &first)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);

    // The first account asks (one ask per account: asking again gives the same one).
    let (status, asked) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals",
        Some(&first),
        Some(&portal),
    )
    .await;
    assert_eq!(status, 201, "{asked}");
    assert_eq!(asked["status"], "pending");
    let id = asked["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ap-") && id.len() == 25, "{id}");
    let (status, again) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals",
        Some(&first),
        Some(&portal),
    )
    .await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    let (status, mine) =
        approval_call(&http, &portal, false, "/api/approvals", Some(&first), None).await;
    assert_eq!(status, 200);
    assert_eq!(mine["own"]["id"], id.as_str());
    assert_eq!(
        mine["pending"],
        json!([]),
        "one's own ask is not among the others'"
    );
    let (status, theirs) = approval_call(
        &http,
        &portal,
        false,
        "/api/approvals",
        Some(&second),
        Some(&portal),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(theirs["own"], Value::Null);
    assert_eq!(theirs["pending"][0]["id"], id.as_str());
    assert_eq!(theirs["pending"][0]["account"], ACCOUNT, "account ids only");
    assert_eq!(theirs["pending"].as_array().unwrap().len(), 1);

    // Pending is not approved; the asker cannot approve itself; unknown ids.
    let (status, _) = token(first.clone()).await;
    assert_eq!(status, 403);
    let approve_path = format!("/api/approvals/{id}/approve");
    let (status, body) = approval_call(
        &http,
        &portal,
        true,
        &approve_path,
        Some(&first),
        Some(&portal),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval.sameAccount"))
    );
    let (status, _) = token(first.clone()).await;
    assert_eq!(status, 403, "a self-approval gives nothing");
    let (status, body) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals/ap-AAAAAAAAAAAAAAAAAAAAAA/approve",
        Some(&second),
        Some(&portal),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("approval.unknown"))
    );
    let (status, _) = approval_call(
        &http,
        &portal,
        true,
        &approve_path,
        Some(&second),
        Some(ORIGIN_A),
    )
    .await;
    assert_eq!(status, 403, "approving from another origin");

    // The second account approves: now the first gets its token, the second not (no approval of its own).
    let (status, approved) = approval_call(
        &http,
        &portal,
        true,
        &approve_path,
        Some(&second),
        Some(&portal),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approvedBy"], SECOND_ACCOUNT);
    let (status, body) = token(first.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["subjectToken"].is_string());
    let (status, body) = token(second.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval.required"))
    );
    let (status, body) = approval_call(
        &http,
        &portal,
        true,
        &approve_path,
        Some(&second),
        Some(&portal),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("approval.notPending"))
    );
    let (_, theirs) =
        approval_call(&http, &portal, false, "/api/approvals", Some(&second), None).await;
    assert_eq!(
        theirs["pending"],
        json!([]),
        "an approved ask is no longer pending"
    );

    // The second account asks too and is left waiting; after the approval's time both have expired.
    let (status, waiting) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals",
        Some(&second),
        Some(&portal),
    )
    .await;
    assert_eq!(status, 201);
    let waiting_path = format!("/api/approvals/{}/approve", waiting["id"].as_str().unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(APPROVAL_SECONDS as u64 + 1)).await;
    let (status, body) = token(first.clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("approval.required")),
        "the approval expired"
    );
    let (status, body) = approval_call(
        &http,
        &portal,
        true,
        &waiting_path,
        Some(&first),
        Some(&portal),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (410, Some("approval.expired"))
    );
    let (_, mine) =
        approval_call(&http, &portal, false, "/api/approvals", Some(&first), None).await;
    assert_eq!(
        mine["own"],
        Value::Null,
        "an expired approval is not shown as the account's state"
    );
    // Asking again after expiry: a new ask.
    let (status, renewed) = approval_call(
        &http,
        &portal,
        true,
        "/api/approvals",
        Some(&first),
        Some(&portal),
    )
    .await;
    assert_eq!(status, 201);
    assert_ne!(renewed["id"].as_str(), Some(id.as_str()));
}

/// The page a provider hosts (`www/validation.html`) has every element the
/// validation page's script looks up by id: without one the page would stop.
#[test]
fn the_shipped_validation_page_has_every_element_the_script_needs() {
    let script = include_str!("../../browser/js/validation-page.js");
    let page = include_str!("../../../www/validation.html");
    let ids: Vec<&str> = script
        .split("byId(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(ids.len() >= 10, "{ids:?}");
    for id in ids {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "www/validation.html lacks id=\"{id}\""
        );
    }
}
