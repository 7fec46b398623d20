//! Who may evaluate what, on the TTP's DPoP-bound credentials: tokens and
//! proofs (401: missing, forged, expired, unbound, replayed, from another
//! key), roles (403: a recipient's credential never evaluates), recipients
//! and types (403/404/422), origins (403: a browser token only from its
//! own form origin), and the persistent budgets that stop a dictionary run
//! with a lifted browser token (429 + `Retry-After`, kept over a restart);
//! the tests of the single-use ids and the budgets on both ledgers (SQLite
//! and PostgreSQL).

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_protocol::auth::{
    AccessTokenClaims, CLIENT_ASSERTION_TYPE, GRANT_CLIENT_CREDENTIALS, SCOPE_EVALUATE,
};
use pseudoform_protocol::client::EcKey;
use pseudoform_testkit::postgres::Postgres;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};

/// A batch of `records` records of `types` for a recipient.
fn batch(org: &str, scope: &str, types: &[&str], records: usize) -> Value {
    batch_request(org, scope, types, records, "access")
}

/// A `client_credentials` request with `assertion`, `extra` parameters and
/// a DPoP proof of `key` (if any).
async fn client_credentials(
    ttp: &TestTtp,
    assertion: &str,
    extra: &[(&str, &str)],
    key: Option<&EcKey>,
) -> Answer {
    let mut form = vec![
        ("grant_type", GRANT_CLIENT_CREDENTIALS),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    ttp.token_request(&form, key, None).await
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

// The two tests of what the ledger holds (single-use proofs, assertions
// and subject tokens; budgets) run on both ledgers: the SQLite file and a
// database of a PostgreSQL server of the test. (Every other test here runs
// on both too: `./build.sh test` runs the TTP's tests a second time with
// the stores in PostgreSQL, `with-postgres`.)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_proofs_are_required_and_bound_sqlite() {
    tokens_and_proofs_are_required_and_bound(pseudoform_testkit::postgres::SQLITE_STORES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_proofs_are_required_and_bound_postgres() {
    let pg = Postgres::start();
    tokens_and_proofs_are_required_and_bound(&pg.ledger_section().0).await;
}

async fn tokens_and_proofs_are_required_and_bound(ledger: &str) {
    let ttp = TestTtp::start_with(false, ledger).await;
    let single = eval_request(ORG_A, SCOPE_A, "NGGV", "x");
    for path in ["/oprf/eval", "/v1/evaluate", "/v1/rekey"] {
        let (status, headers, err) = ttp.post_raw(path, None, None, body(&single)).await;
        assert_error(status, &err, 401, "auth.missingToken");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("DPoP"));
        let (status, _, err) = ttp
            .call_with("not-a-token", None, path, None, body(&single))
            .await;
        assert_error(status, &err, 401, "auth.invalidToken");
    }
    // Without the development switch a static token is no token at all.
    let (status, _, err) = ttp
        .post_raw("/oprf/eval", Some(TOKEN_FORM), None, body(&single))
        .await;
    assert_eq!(status, 401, "{err}");

    let backend = ttp.backend(Client::ProviderA).await;
    let url = ttp.url("/oprf/eval");
    // A token without a proof, or with a proof of another key (a token
    // lifted from its holder), or with a proof made for another request.
    let (status, _, err) = ttp
        .call_with(&backend.token, None, "/oprf/eval", None, body(&single))
        .await;
    assert_error(status, &err, 401, "auth.missingProof");
    let thief = EcKey::generate().unwrap();
    let stolen = thief
        .dpop_proof("POST", &url, Some(&backend.token), now())
        .unwrap();
    let (status, _, err) = ttp
        .call_with(
            &backend.token,
            Some(&stolen),
            "/oprf/eval",
            None,
            body(&single),
        )
        .await;
    assert_error(status, &err, 401, "auth.wrongKey");
    let elsewhere = backend
        .key
        .dpop_proof(
            "POST",
            &ttp.url("/v1/evaluate"),
            Some(&backend.token),
            now(),
        )
        .unwrap();
    let (status, _, err) = ttp
        .call_with(
            &backend.token,
            Some(&elsewhere),
            "/oprf/eval",
            None,
            body(&single),
        )
        .await;
    assert_error(status, &err, 401, "auth.invalidProof");
    let stale = backend
        .key
        .dpop_proof("POST", &url, Some(&backend.token), now() - 300)
        .unwrap();
    let (status, _, err) = ttp
        .call_with(
            &backend.token,
            Some(&stale),
            "/oprf/eval",
            None,
            body(&single),
        )
        .await;
    assert_error(status, &err, 401, "auth.invalidProof");
    // A proof serves once.
    let proof = backend
        .key
        .dpop_proof("POST", &url, Some(&backend.token), now())
        .unwrap();
    let (status, _, err) = ttp
        .call_with(
            &backend.token,
            Some(&proof),
            "/oprf/eval",
            None,
            body(&single),
        )
        .await;
    assert_eq!(status, 200, "{err}");
    let (status, _, err) = ttp
        .call_with(
            &backend.token,
            Some(&proof),
            "/oprf/eval",
            None,
            body(&single),
        )
        .await;
    assert_error(status, &err, 401, "auth.proofReplayed");

    // An expired browser token, though signed by the TTP and bound to the
    // key that proves: refused; so is one of another issuer.
    let browser = ttp.browser().await;
    let claims = token_claims(&browser);
    assert_eq!(claims.origin.as_deref(), Some(ORIGIN_A));
    assert_eq!(claims.act.as_ref().map(|a| a.sub.as_str()), Some(CLINICIAN));
    assert_eq!(claims.sub, Client::ProviderA.id());
    assert_eq!(claims.cnf.jkt, browser.key.thumbprint());
    for (change, code) in [
        (
            Box::new(|c: &mut AccessTokenClaims| {
                c.iat = now() - 1000;
                c.exp = now() - 10;
            }) as Box<dyn Fn(&mut AccessTokenClaims)>,
            "auth.tokenExpired",
        ),
        (
            Box::new(|c: &mut AccessTokenClaims| {
                c.iss = "https://other-ttp.test".into();
                c.aud = c.iss.clone();
            }),
            "auth.invalidToken",
        ),
    ] {
        let holder = ttp.browser().await;
        let mut claims = token_claims(&holder);
        change(&mut claims);
        let forged = Credential {
            token: forge_access_token(&claims),
            ..holder
        };
        let (status, _, err) = ttp.call(&forged, "/oprf/eval", &single).await;
        assert_error(status, &err, 401, code);
    }
    // A browser token is bound to its form origin: without `Origin`, with
    // another, or used as a back end's: refused.
    let url_body = body(&single);
    for origin in [None, Some(ORIGIN_B), Some("https://evil.example")] {
        let (status, _, err) = ttp
            .call_raw(&browser, "/oprf/eval", origin, url_body.clone())
            .await;
        assert_error(status, &err, 403, "origin.notAllowed");
    }
    let (status, _, err) = ttp.call(&browser, "/oprf/eval", &single).await;
    assert_eq!(status, 200, "{err}");
    // A back end's token is never used from a page.
    let (status, _, err) = ttp
        .call_raw(&backend, "/oprf/eval", Some(ORIGIN_A), url_body)
        .await;
    assert_error(status, &err, 403, "origin.notAllowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_checks_every_grant() {
    let ttp = TestTtp::start(false).await;
    // A back end: DPoP-bound token, scope by role.
    let backend = ttp.backend(Client::ProviderA).await;
    assert_eq!(backend.answer["token_type"], "DPoP");
    assert_eq!(backend.answer["scope"], SCOPE_EVALUATE);
    assert_eq!(backend.answer["expires_in"], 300);
    let claims = token_claims(&backend);
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISSUER, ISSUER));
    assert_eq!(claims.client_id, Client::ProviderA.id());
    assert!(claims.origin.is_none() && claims.act.is_none());
    let registry = ttp.backend(Client::RegistryA).await;
    assert_eq!(registry.answer["scope"], "rekey");
    assert_eq!(token_claims(&registry).sub, ORG_A);

    // A client assertion serves once; a stranger's key is no client's.
    let key = EcKey::generate().unwrap();
    let assertion = ttp.assertion(Client::ProviderB);
    let (status, _, err) = client_credentials(&ttp, &assertion, &[], Some(&key)).await;
    assert_eq!(status, 200, "{err}");
    let (status, _, err) = client_credentials(&ttp, &assertion, &[], Some(&key)).await;
    assert_token_error(
        status,
        &err,
        401,
        "invalid_client",
        "token.assertionReplayed",
    );
    let forged = stranger_key()
        .client_assertion(Client::ProviderB.id(), ISSUER, now())
        .unwrap();
    let (status, _, err) = client_credentials(&ttp, &forged, &[], Some(&key)).await;
    assert_token_error(status, &err, 401, "invalid_client", "token.invalidClient");
    // Without a DPoP proof there is no token (every token is bound).
    let (status, _, err) =
        client_credentials(&ttp, &ttp.assertion(Client::ProviderB), &[], None).await;
    assert_token_error(status, &err, 400, "invalid_dpop_proof", "auth.missingProof");
    // A recipient never gets an evaluation token; a processor only for the
    // providers it acts for.
    let registry_assertion = ttp.assertion(Client::RegistryA);
    let (status, _, err) = client_credentials(
        &ttp,
        &registry_assertion,
        &[("scope", SCOPE_EVALUATE)],
        Some(&key),
    )
    .await;
    assert_token_error(
        status,
        &err,
        403,
        "unauthorized_client",
        "caller.notAllowed",
    );
    let ((status, _, err), _) = ttp
        .backend_answer(Client::Processor, Some("ura:00000002"))
        .await;
    assert_token_error(
        status,
        &err,
        403,
        "unauthorized_client",
        "provider.notAllowed",
    );
    let processor = ttp.backend_for(Client::Processor, Some(PROVIDER_C)).await;
    assert_eq!(processor.answer["provider"], PROVIDER_C);
    let claims = token_claims(&processor);
    assert_eq!(claims.sub, PROVIDER_C);
    assert_eq!(claims.act.unwrap().sub, Client::Processor.id());

    // Browsers: the subject token names the browser's key and origin.
    let browser_key = EcKey::generate().unwrap();
    let subject_of = |c: Client, key: &EcKey, origin: &str| {
        let claims = ttp.subject_claims(c, CLINICIAN, key.thumbprint(), origin);
        c.key().subject_token(&claims).unwrap()
    };
    let subject = subject_of(Client::ProviderA, &browser_key, ORIGIN_A);
    // Another key than the one it names (a token replayed from another key).
    let (status, _, err) = ttp.exchange_answer(&subject, &key, Some(ORIGIN_A)).await;
    assert_token_error(status, &err, 400, "invalid_grant", "token.wrongKey");
    let (status, _, err) = ttp
        .exchange_answer(&subject, &browser_key, Some(ORIGIN_B))
        .await;
    assert_token_error(status, &err, 400, "invalid_grant", "token.originMismatch");
    let (status, _, err) = ttp
        .exchange_answer(&subject, &browser_key, Some(ORIGIN_A))
        .await;
    assert_eq!(status, 200, "{err}");
    assert_eq!(err["expires_in"], 900);
    assert_eq!(
        err["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(err["provider"], Client::ProviderA.id());
    let (status, _, err) = ttp
        .exchange_answer(&subject, &browser_key, Some(ORIGIN_A))
        .await;
    assert_token_error(
        status,
        &err,
        400,
        "invalid_grant",
        "token.subjectTokenReplayed",
    );
    // Provider B delivers to A only: B's form origin is not its to use.
    let subject = subject_of(Client::ProviderB, &browser_key, ORIGIN_B);
    let (status, _, err) = ttp
        .exchange_answer(&subject, &browser_key, Some(ORIGIN_B))
        .await;
    assert_token_error(
        status,
        &err,
        403,
        "unauthorized_client",
        "origin.notAllowed",
    );
    // An unsigned or stranger-signed subject token, a long-lived one.
    let mut long = ttp.subject_claims(
        Client::ProviderA,
        CLINICIAN,
        browser_key.thumbprint(),
        ORIGIN_A,
    );
    long.exp = long.iat + 3600;
    for subject in [
        stranger_key()
            .subject_token(&ttp.subject_claims(
                Client::ProviderA,
                CLINICIAN,
                browser_key.thumbprint(),
                ORIGIN_A,
            ))
            .unwrap(),
        Client::ProviderA.key().subject_token(&long).unwrap(),
    ] {
        let (status, _, err) = ttp
            .exchange_answer(&subject, &browser_key, Some(ORIGIN_A))
            .await;
        assert_token_error(
            status,
            &err,
            400,
            "invalid_grant",
            "token.invalidSubjectToken",
        );
    }
    // Not a grant.
    let (status, _, err) = ttp
        .token_request(&[("grant_type", "password")], Some(&key), None)
        .await;
    assert_token_error(
        status,
        &err,
        400,
        "unsupported_grant_type",
        "token.unsupportedGrant",
    );
}

/// One request and its expected answer: path, credential, body, status,
/// code and field.
type Case<'a> = (
    &'a str,
    &'a Credential,
    Value,
    u16,
    Option<&'a str>,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_recipients_types_and_origins() {
    let ttp = TestTtp::start(false).await;
    let single = |org, scope, t| eval_request(org, scope, t, "x");
    let mut national = single(ORG_B, SCOPE_B, "B");
    national.as_object_mut().unwrap().remove("pseudonymType");
    let rekey = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "fromVersion": 1, "toVersion": 2,
        "blindedPseudonyms": [encoding::encode(&blinded(b"n", "n").1)]});
    let a = ttp.backend(Client::ProviderA).await;
    let b = ttp.backend(Client::ProviderB).await;
    let registry = ttp.backend(Client::RegistryA).await;
    let (eval, evaluate) = ("/oprf/eval", "/v1/evaluate");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // A recipient's credential never evaluates, on any route.
        (eval, &registry, single(ORG_A, SCOPE_A, "NGGV"), 403, Some("caller.notAllowed"), None),
        (evaluate, &registry, batch(ORG_A, SCOPE_A, &["NGGV"], 1), 403, Some("caller.notAllowed"), None),
        // A provider never re-keys.
        ("/v1/rekey", &a, rekey.clone(), 403, Some("caller.notAllowed"), None),
        // Provider B delivers to A only.
        (eval, &b, single(ORG_B, SCOPE_B, "NGGV"), 403, Some("caller.notAllowed"), None),
        (eval, &b, single(ORG_A, SCOPE_A, "NGGV"), 200, None, None),
        // Unknown recipients; a malformed OIN is 422.
        (eval, &a, single("oin:99999999999999999000", SCOPE_A, "NGGV"), 404, Some("recipient.unknown"), None),
        (eval, &a, single("oin:123", SCOPE_A, "NGGV"), 422, Some("recipientOrganization.invalid"), Some("recipientOrganization")),
        // B where the BSN is not allowed: single, absent type, batch.
        (eval, &a, single(ORG_B, SCOPE_B, "B"), 403, Some("type.notAllowed"), Some("pseudonymType")),
        (eval, &a, national, 403, Some("type.notAllowed"), None),
        (evaluate, &a, batch(ORG_B, SCOPE_B, &["NGGV", "B"], 3), 403, Some("type.notAllowed"), Some("records[0].items[1].type")),
        (eval, &a, single(ORG_B, SCOPE_B, "XYZ"), 422, Some("pseudonymType.unknown"), None),
        (eval, &a, single(ORG_A, SCOPE_A, "B"), 200, None, None),
    ];
    for (path, credential, request, want, code, field) in cases {
        let (status, _, answer) = ttp.call(credential, path, &request).await;
        match code {
            None => assert_eq!(status, want, "{request}: {answer}"),
            Some(code) => assert_error(status, &answer, want, code),
        }
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{request}");
        }
    }
    // The recipient re-keys its own domain (version 2 does not exist: the
    // refusal is about the version, not the role).
    let (status, _, answer) = ttp.call(&registry, "/v1/rekey", &rekey).await;
    assert_error(status, &answer, 422, "keyVersion.notActive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_run_with_a_lifted_browser_token_stops_at_its_budget_sqlite() {
    let ttp = a_dictionary_run_with_a_lifted_browser_token_stops_at_its_budget(
        pseudoform_testkit::postgres::SQLITE_STORES,
    )
    .await;
    // The counts are in the ledger, a file of its own (owner-only), not in
    // the database the audit writer commits to.
    let ledger = pseudoform_ttp::ledger::ledger_path(&ttp.database());
    assert_eq!(ledger.file_name().unwrap(), "ttp.ledger.sqlite");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ledger).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner only");
    }
    let counted: i64 = rusqlite::Connection::open(&ledger)
        .unwrap()
        .query_row("SELECT COALESCE(MAX(used), 0) FROM budgets", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(counted >= 60, "{counted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dictionary_run_with_a_lifted_browser_token_stops_at_its_budget_postgres() {
    let pg = Postgres::start();
    let (ledger, database) = pg.ledger_section();
    let ttp = a_dictionary_run_with_a_lifted_browser_token_stops_at_its_budget(&ledger).await;
    // The counts are in PostgreSQL, and no ledger file was made.
    assert!(!pseudoform_ttp::ledger::ledger_path(&ttp.database()).exists());
    let counted = pg.query_i64(
        &database,
        "SELECT COALESCE(MAX(used), 0) FROM budgets WHERE dimension = 'credential'",
    );
    assert!(counted >= 60, "{counted}");
}

/// The run on the ledger `ledger` names (a `[ledger]` table, or none for
/// the SQLite file); returns the stopped TTP for the ledger's own checks.
async fn a_dictionary_run_with_a_lifted_browser_token_stops_at_its_budget(ledger: &str) -> TestTtp {
    let budgets =
        format!("[budgets]\nbrowser_token = {{ per_minute = 60, per_day = 60 }}\n{ledger}");
    let mut ttp = TestTtp::start_with(false, &budgets).await;
    // Whoever lifted the token also lifted the key (the worst case): they
    // try birth dates one evaluation at a time.
    let lifted = ttp.browser().await;
    let mut guesses = 0;
    let (status, headers, err) = loop {
        let guess = eval_request(ORG_A, SCOPE_A, "GG", &format!("guess-{guesses}"));
        let answer = ttp.call(&lifted, "/oprf/eval", &guess).await;
        if answer.0 != 200 {
            break answer;
        }
        guesses += 1;
        assert!(guesses <= 60, "the budget did not stop the run");
    };
    assert_error(status, &err, 429, "rateLimited");
    assert_eq!(guesses, 60, "the browser token's budget here is 60 a day");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    // Both the minute and the day are spent: retry when the UTC day ends.
    let day_left = 86_400 - u64::try_from(now()).unwrap() % 86_400;
    assert!(retry.abs_diff(day_left) <= 2, "{retry} vs {day_left}");
    // A batch larger than the budget can never pass: no Retry-After.
    let other = ttp
        .browser_for(Client::ProviderA, "clinician-2", ORIGIN_A, None)
        .await;
    let (status, headers, err) = ttp
        .call(&other, "/v1/evaluate", &batch(ORG_A, SCOPE_A, &["GG"], 61))
        .await;
    assert_error(status, &err, 429, "rateLimited");
    assert!(headers.get("retry-after").is_none());
    // The count is in the database: a restarted TTP still refuses.
    ttp.restart().await;
    let guess = eval_request(ORG_A, SCOPE_A, "GG", "after-restart");
    let (status, _, err) = ttp.call(&lifted, "/oprf/eval", &guess).await;
    assert_error(status, &err, 429, "rateLimited");
    ttp.stop().await;
    // The refusals are audited without the guesses.
    let conn = rusqlite::Connection::open(ttp.database()).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'budgets'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "no budgets in the main database");
    let refused: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM audit_rows WHERE status = 429",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(refused >= 2, "{refused}");
    ttp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_back_end_client_gets_tokens_and_calls() {
    use pseudoform_protocol::client::TtpClient;
    let ttp = TestTtp::start(false).await;
    let http = reqwest::Client::new();
    // A processor acting for provider C: a token once, renewed only near
    // its expiry, and a fresh proof for every request.
    let processor = TtpClient::new(
        http.clone(),
        &ttp.base,
        Client::Processor.id(),
        Client::Processor.key(),
    )
    .unwrap()
    .issuer(ISSUER)
    .acting_for(PROVIDER_C);
    let token = processor.token().await.unwrap();
    assert_eq!(processor.token().await.unwrap(), token, "cached");
    for label in ["one", "two"] {
        let response = processor
            .post_json("/oprf/eval", &eval_request(ORG_A, SCOPE_A, "MRN", label))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let (_, claims) = open_jwe(body["jwe"].as_str().unwrap(), true);
        assert_eq!(claims["provider"], PROVIDER_C);
        assert_eq!(claims["act"]["sub"], Client::Processor.id());
        assert_eq!(claims["cnf"]["jkt"], processor.dpop_key().thumbprint());
    }
    // The registry's back end: a rekey token, which never evaluates.
    let registry = TtpClient::new(
        http,
        &ttp.base,
        Client::RegistryA.id(),
        Client::RegistryA.key(),
    )
    .unwrap()
    .issuer(ISSUER);
    assert_eq!(registry.fetch_token().await.unwrap().scope, "rekey");
    let response = registry
        .post_json("/oprf/eval", &eval_request(ORG_A, SCOPE_A, "GG", "x"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}
