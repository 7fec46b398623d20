//! The provider portal against the real TTP: a subject token only for a
//! logged-in clinician, only from the portal's own pages, only for a form
//! origin it is configured for; and the token it signs is one the TTP
//! exchanges for a browser token bound to the browser's key.

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

/// The portal on a loopback port: its origin.
async fn start_portal() -> String {
    start_portal_with(None).await
}

/// The portal, with a validation page whose package is in `pkg_dir`.
async fn start_portal_with(pkg_dir: Option<std::path::PathBuf>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let app = router(PortalConfig {
        origin: origin.clone(),
        provider: Client::ProviderA.id().into(),
        issuer: ISSUER.into(),
        form_origins: vec![ORIGIN_A.into()],
        account: Account {
            username: USER.into(),
            password: PASSWORD.into(),
            id: ACCOUNT.into(),
        },
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
                four_eyes: false,
            },
            pkg_dir,
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
    assert!(html.contains("lang=\"nl\"") && html.contains("/pseudoform-validation.js"));
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
