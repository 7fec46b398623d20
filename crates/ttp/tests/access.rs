//! Who may evaluate what: tokens (401), callers and recipients (403/404),
//! types per recipient (403, B where the BSN is not allowed), form origins
//! (403) and per-caller rate limits counted in evaluations (429, recovery).

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};

/// A batch of `records` records of `types` for a recipient.
fn batch(org: &str, scope: &str, types: &[&str], records: usize) -> Value {
    batch_request(org, scope, types, records, "access")
}

/// What one request should get: the status, and for a refusal its code
/// and (where given) its field.
struct Expect {
    status: u16,
    code: Option<&'static str>,
    field: Option<&'static str>,
}

/// 200.
const OK: Expect = Expect {
    status: 200,
    code: None,
    field: None,
};

/// A refusal with `status` and `code`.
const fn refused(status: u16, code: &'static str) -> Expect {
    Expect {
        status,
        code: Some(code),
        field: None,
    }
}

impl Expect {
    /// The same refusal naming `field`.
    const fn at(self, field: &'static str) -> Expect {
        Expect {
            field: Some(field),
            ..self
        }
    }
}

/// POSTs each `(path, token, origin, body)` and checks its answer.
async fn check(ttp: &TestTtp, cases: Vec<(&str, &str, Option<&str>, Value, Expect)>) {
    for (path, token, origin, body, expect) in cases {
        let shown = body.to_string();
        let bytes = serde_json::to_vec(&body).unwrap();
        let (status, _, answer) = ttp.post_raw(path, Some(token), origin, bytes).await;
        match expect.code {
            None => assert_eq!(status, expect.status, "{shown}: {answer}"),
            Some(code) => assert_error(status, &answer, expect.status, code),
        }
        if let Some(field) = expect.field {
            assert_eq!(answer["field"], field, "{shown}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_checked() {
    let ttp = TestTtp::start(false).await;
    let body = serde_json::to_vec(&eval_request(ORG_A, SCOPE_A, "NGGV", "x")).unwrap();
    for path in ["/oprf/eval", "/v1/evaluate", "/v1/rekey"] {
        let (status, headers, err) = ttp.post_raw(path, None, None, body.clone()).await;
        assert_error(status, &err, 401, "auth.missingToken");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let (status, headers, err) = ttp
            .post_raw(path, Some("not-a-token"), None, body.clone())
            .await;
        assert_error(status, &err, 401, "auth.invalidToken");
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    // Another scheme is no bearer token.
    let response = ttp
        .client
        .post(format!("{}/oprf/eval", ttp.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let err: Value = response.json().await.unwrap();
    assert_eq!(err["code"], "auth.missingToken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_recipients_types_and_origins() {
    let ttp = TestTtp::start(false).await;
    let single = |org, scope, t| eval_request(org, scope, t, "x");
    // The national request: no pseudonymType means B.
    let mut national = single(ORG_B, SCOPE_B, "B");
    national.as_object_mut().unwrap().remove("pseudonymType");
    let rekey = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "fromVersion": 1, "toVersion": 2,
        "blindedPseudonyms": [encoding::encode(&blinded(b"n", "n").1)]});
    let (eval, evaluate) = ("/oprf/eval", "/v1/evaluate");
    // One case a line: path, token, Origin, body, expected answer.
    #[rustfmt::skip]
    let cases = vec![
        // The form caller may call A and B; form-b only B.
        (eval, TOKEN_B_ONLY, None, single(ORG_A, SCOPE_A, "NGGV"), refused(403, "caller.notAllowed")),
        (evaluate, TOKEN_B_ONLY, None, batch(ORG_A, SCOPE_A, &["NGGV"], 1), refused(403, "caller.notAllowed")),
        (eval, TOKEN_B_ONLY, None, single(ORG_B, SCOPE_B, "NGGV"), OK),
        // Unknown recipients; a malformed OIN is 422.
        (eval, TOKEN_FORM, None, single("oin:99999999999999999999", SCOPE_A, "NGGV"), refused(404, "recipient.unknown")),
        (eval, TOKEN_FORM, None, single(ORG_A, "nope", "NGGV"), refused(404, "recipient.unknown")),
        (eval, TOKEN_FORM, None, single("oin:123", SCOPE_A, "NGGV"), refused(422, "recipientOrganization.invalid").at("recipientOrganization")),
        // B where the BSN is not allowed: refused, single, absent type, and batch.
        (eval, TOKEN_FORM, None, single(ORG_B, SCOPE_B, "B"), refused(403, "type.notAllowed").at("pseudonymType")),
        (eval, TOKEN_FORM, None, national, refused(403, "type.notAllowed")),
        (evaluate, TOKEN_FORM, None, batch(ORG_B, SCOPE_B, &["NGGV", "B"], 3), refused(403, "type.notAllowed").at("records[0].items[1].type")),
        // A type the recipient does not have, and an unknown code.
        (eval, TOKEN_FORM, None, single(ORG_B, SCOPE_B, "MRN"), refused(403, "type.notAllowed")),
        (eval, TOKEN_FORM, None, single(ORG_B, SCOPE_B, "XYZ"), refused(422, "pseudonymType.unknown")),
        // B is fine for A.
        (eval, TOKEN_FORM, None, single(ORG_A, SCOPE_A, "B"), OK),
        // Origins: the recipient's own is fine, another recipient's or a foreign one is not.
        (eval, TOKEN_FORM, Some(ORIGIN_A), single(ORG_A, SCOPE_A, "NGGV"), OK),
        (eval, TOKEN_FORM, Some(ORIGIN_B), single(ORG_A, SCOPE_A, "NGGV"), refused(403, "origin.notAllowed")),
        (eval, TOKEN_FORM, Some("https://evil.example"), single(ORG_A, SCOPE_A, "NGGV"), refused(403, "origin.notAllowed")),
        (eval, TOKEN_FORM, Some("null"), single(ORG_A, SCOPE_A, "NGGV"), refused(403, "origin.notAllowed")),
        (evaluate, TOKEN_FORM, Some(ORIGIN_B), batch(ORG_A, SCOPE_A, &["NGGV"], 2), refused(403, "origin.notAllowed")),
        // Only a registry caller may rekey.
        ("/v1/rekey", TOKEN_FORM, None, rekey, refused(403, "caller.notAllowed")),
    ];
    check(&ttp, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_counts_evaluations_and_recovers() {
    let ttp = TestTtp::start(false).await;
    let gg = |label| eval_request(ORG_A, SCOPE_A, "GG", label);
    // `slow`: 60 per minute (1 per second), burst 5.
    let (four, six) = (
        batch(ORG_A, SCOPE_A, &["NGGV", "RGG"], 2),
        batch(ORG_A, SCOPE_A, &["NGGV", "RGG"], 3),
    );
    let (status, _, body) = ttp.post("/v1/evaluate", Some(TOKEN_SLOW), &four).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = ttp.post("/oprf/eval", Some(TOKEN_SLOW), &gg("1")).await;
    assert_eq!(status, 200, "the fifth evaluation is within the burst");
    let (status, headers, body) = ttp.post("/oprf/eval", Some(TOKEN_SLOW), &gg("2")).await;
    assert_error(status, &body, 429, "rateLimited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Other callers are not affected.
    let (status, _, _) = ttp.post("/oprf/eval", Some(TOKEN_FORM), &gg("3")).await;
    assert_eq!(status, 200);
    // More than the burst in one request can never pass: no Retry-After.
    let (status, headers, body) = ttp.post("/v1/evaluate", Some(TOKEN_SLOW), &six).await;
    assert_error(status, &body, 429, "rateLimited");
    assert!(headers.get("retry-after").is_none());

    tokio::time::sleep(std::time::Duration::from_millis(retry * 1000 + 100)).await;
    let (status, _, body) = ttp.post("/oprf/eval", Some(TOKEN_SLOW), &gg("4")).await;
    assert_eq!(status, 200, "recovered: {body}");
}
