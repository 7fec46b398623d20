//! Who may evaluate what: tokens (401), callers and recipients (403/404),
//! types per recipient (403, B where the BSN is not allowed), form origins
//! (403) and per-caller rate limits counted in evaluations (429, recovery).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use pseudoform_core::encoding;
use serde_json::{json, Value};

fn eval_request(org: &str, scope: &str, pseudonym_type: &str, label: &str) -> Value {
    let (_, b) = blinded(label.as_bytes(), label);
    json!({
        "encryptedPersonalId": encoding::encode(&b),
        "recipientOrganization": org,
        "recipientScope": scope,
        "pseudonymType": pseudonym_type,
    })
}

fn batch_request(org: &str, scope: &str, types: &[&str], records: usize) -> Value {
    let records: Vec<Value> = (0..records)
        .map(|i| {
            let items: Vec<Value> = types
                .iter()
                .map(|t| {
                    let label = format!("{i}{t}");
                    let (_, b) = blinded(label.as_bytes(), &label);
                    json!({"type": t, "blindedInput": encoding::encode(&b)})
                })
                .collect();
            json!({ "items": items })
        })
        .collect();
    json!({"recipientOrganization": org, "recipientScope": scope, "records": records})
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
    // The form caller may call A and B; form-b only B.
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_B_ONLY),
            &eval_request(ORG_A, SCOPE_A, "NGGV", "x"),
        )
        .await;
    assert_error(status, &body, 403, "caller.notAllowed");
    let (status, _, body) = ttp
        .post(
            "/v1/evaluate",
            Some(TOKEN_B_ONLY),
            &batch_request(ORG_A, SCOPE_A, &["NGGV"], 1),
        )
        .await;
    assert_error(status, &body, 403, "caller.notAllowed");
    let (status, _, _) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_B_ONLY),
            &eval_request(ORG_B, SCOPE_B, "NGGV", "x"),
        )
        .await;
    assert_eq!(status, 200);

    // Unknown recipient.
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request("oin:99999999999999999999", SCOPE_A, "NGGV", "x"),
        )
        .await;
    assert_error(status, &body, 404, "recipient.unknown");
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_A, "nope", "NGGV", "x"),
        )
        .await;
    assert_error(status, &body, 404, "recipient.unknown");
    // Malformed OIN is 422.
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request("oin:123", SCOPE_A, "NGGV", "x"),
        )
        .await;
    assert_error(status, &body, 422, "recipientOrganization.invalid");
    assert_eq!(body["field"], "recipientOrganization");

    // B where the BSN is not allowed: refused, single, absent type, and batch.
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_B, SCOPE_B, "B", "x"),
        )
        .await;
    assert_error(status, &body, 403, "type.notAllowed");
    assert_eq!(body["field"], "pseudonymType");
    let mut national = eval_request(ORG_B, SCOPE_B, "B", "x");
    national.as_object_mut().unwrap().remove("pseudonymType");
    let (status, _, body) = ttp.post("/oprf/eval", Some(TOKEN_FORM), &national).await;
    assert_error(status, &body, 403, "type.notAllowed");
    let (status, _, body) = ttp
        .post(
            "/v1/evaluate",
            Some(TOKEN_FORM),
            &batch_request(ORG_B, SCOPE_B, &["NGGV", "B"], 3),
        )
        .await;
    assert_error(status, &body, 403, "type.notAllowed");
    assert_eq!(body["field"], "records[0].items[1].type");
    // A type the recipient does not have, and an unknown code.
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_B, SCOPE_B, "MRN", "x"),
        )
        .await;
    assert_error(status, &body, 403, "type.notAllowed");
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_B, SCOPE_B, "XYZ", "x"),
        )
        .await;
    assert_error(status, &body, 422, "pseudonymType.unknown");
    // B is fine for A.
    let (status, _, _) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_A, SCOPE_A, "B", "x"),
        )
        .await;
    assert_eq!(status, 200);

    // Origins: the recipient's own is fine, another recipient's or a foreign one is not.
    let body = serde_json::to_vec(&eval_request(ORG_A, SCOPE_A, "NGGV", "x")).unwrap();
    let (status, _, _) = ttp
        .post_raw("/oprf/eval", Some(TOKEN_FORM), Some(ORIGIN_A), body.clone())
        .await;
    assert_eq!(status, 200);
    for origin in [ORIGIN_B, "https://evil.example", "null"] {
        let (status, _, err) = ttp
            .post_raw("/oprf/eval", Some(TOKEN_FORM), Some(origin), body.clone())
            .await;
        assert_error(status, &err, 403, "origin.notAllowed");
    }
    let batch = serde_json::to_vec(&batch_request(ORG_A, SCOPE_A, &["NGGV"], 2)).unwrap();
    let (status, _, err) = ttp
        .post_raw("/v1/evaluate", Some(TOKEN_FORM), Some(ORIGIN_B), batch)
        .await;
    assert_error(status, &err, 403, "origin.notAllowed");

    // Only a registry caller may rekey.
    let rekey = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "fromVersion": 1, "toVersion": 2,
        "blindedPseudonyms": [encoding::encode(&blinded(b"n", "n").1)]});
    let (status, _, body) = ttp.post("/v1/rekey", Some(TOKEN_FORM), &rekey).await;
    assert_error(status, &body, 403, "caller.notAllowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_counts_evaluations_and_recovers() {
    let ttp = TestTtp::start(false).await;
    // `slow`: 60 per minute (1 per second), burst 5.
    let (status, _, body) = ttp
        .post(
            "/v1/evaluate",
            Some(TOKEN_SLOW),
            &batch_request(ORG_A, SCOPE_A, &["NGGV", "RGG"], 2),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_SLOW),
            &eval_request(ORG_A, SCOPE_A, "GG", "1"),
        )
        .await;
    assert_eq!(status, 200, "the fifth evaluation is within the burst");
    let (status, headers, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_SLOW),
            &eval_request(ORG_A, SCOPE_A, "GG", "2"),
        )
        .await;
    assert_error(status, &body, 429, "rateLimited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Other callers are not affected.
    let (status, _, _) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_FORM),
            &eval_request(ORG_A, SCOPE_A, "GG", "3"),
        )
        .await;
    assert_eq!(status, 200);
    // More than the burst in one request can never pass: no Retry-After.
    let (status, headers, body) = ttp
        .post(
            "/v1/evaluate",
            Some(TOKEN_SLOW),
            &batch_request(ORG_A, SCOPE_A, &["NGGV", "RGG"], 3),
        )
        .await;
    assert_error(status, &body, 429, "rateLimited");
    assert!(headers.get("retry-after").is_none());

    tokio::time::sleep(std::time::Duration::from_millis(retry * 1000 + 100)).await;
    let (status, _, body) = ttp
        .post(
            "/oprf/eval",
            Some(TOKEN_SLOW),
            &eval_request(ORG_A, SCOPE_A, "GG", "4"),
        )
        .await;
    assert_eq!(status, 200, "recovered: {body}");
}
