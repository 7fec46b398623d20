//! Compatibility with the national reference service's wire profile
//! (`minvws/gfmodules-pseudoniemendienst`), byte-exact where it matters:
//! its correlation headers, its identifier formats, its claims for a
//! recipient configured as national, its security events.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use pseudoform_testkit::ttp::*;
use serde_json::json;

/// A POST of `/oprf/eval` with `credential` and extra `headers`.
async fn eval_with_headers(
    ttp: &TestTtp,
    credential: &Credential,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let url = ttp.url("/oprf/eval");
    let proof = credential
        .key
        .dpop_proof("POST", &url, Some(&credential.token), now())
        .unwrap();
    let mut request = ttp
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("DPoP {}", credential.token))
        .header("dpop", proof)
        .body(serde_json::to_vec(body).unwrap());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn request_id(response: &reqwest::Response) -> String {
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // A UUID, made by the TTP.
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(id.matches('-').count(), 4);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_headers_are_echoed_and_every_answer_has_a_request_id() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "a new user");

    // Echoed byte for byte when in the national charset.
    let ok = eval_with_headers(
        &ttp,
        &provider,
        &body,
        &[
            ("X-GF-Correlation-ID", "corr-0123_abc"),
            ("X-Client-Trace-ID", "trace-42"),
            ("X-Request-ID", "chosen-by-the-client"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-gf-correlation-id"], "corr-0123_abc");
    assert_eq!(ok.headers()["x-client-trace-id"], "trace-42");
    // The request id is the TTP's own, never the client's.
    let first = request_id(&ok);
    assert_ne!(first, "chosen-by-the-client");

    // Sanitised as the national service does: characters outside
    // [A-Za-z0-9_-] dropped, cut to 64; a value left empty is dropped.
    let long = format!("{}{}", "x".repeat(60), "y:z;yy yy");
    let sanitised = eval_with_headers(
        &ttp,
        &provider,
        &body,
        &[
            ("X-GF-Correlation-ID", &long),
            ("X-Client-Trace-ID", ";;; "),
        ],
    )
    .await;
    assert_eq!(sanitised.status(), 200);
    let expected = format!("{}yzyyyy", "x".repeat(60));
    assert_eq!(sanitised.headers()["x-gf-correlation-id"], &expected[..64]);
    assert!(sanitised.headers().get("x-client-trace-id").is_none());
    assert_ne!(request_id(&sanitised), first);

    // Errors too: a refusal without a token, an unknown path.
    let refused = ttp
        .client
        .post(ttp.url("/oprf/eval"))
        .header("x-gf-correlation-id", "refused-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["x-gf-correlation-id"], "refused-1");
    request_id(&refused);
    let missing = ttp.client.get(ttp.url("/nowhere")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    request_id(&missing);
    let health = ttp.client.get(ttp.url("/health")).send().await.unwrap();
    request_id(&health);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_and_exposes_the_correlation_headers() {
    let ttp = TestTtp::start(false).await;
    let preflight = ttp
        .client
        .request(reqwest::Method::OPTIONS, ttp.url("/oprf/eval"))
        .header("origin", ORIGIN_A)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,dpop,content-type,x-gf-correlation-id,x-client-trace-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-gf-correlation-id"), "{allowed}");
    assert!(allowed.contains("x-client-trace-id"), "{allowed}");
    request_id(&preflight);

    let answer = ttp
        .client
        .post(ttp.url("/oprf/eval"))
        .header("origin", ORIGIN_A)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["x-request-id", "x-gf-correlation-id", "x-client-trace-id"] {
        assert!(exposed.contains(name), "{exposed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpadded_base64url_is_evaluated_as_the_padded_form() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let padded = eval_request(ORG_A, SCOPE_A, "NGGV", "a new user");
    let element = padded["encryptedPersonalId"].as_str().unwrap();
    assert!(element.ends_with('='));
    let mut unpadded = padded.clone();
    unpadded["encryptedPersonalId"] = json!(element.trim_end_matches('='));
    let (s1, _, b1) = ttp.call(&provider, "/oprf/eval", &padded).await;
    let (s2, _, b2) = ttp.call(&provider, "/oprf/eval", &unpadded).await;
    assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
    let (_, c1) = open_jwe(b1["jwe"].as_str().unwrap(), true);
    let (_, c2) = open_jwe(b2["jwe"].as_str().unwrap(), true);
    assert_eq!(c1["subject"], c2["subject"]);

    // The batch takes it too.
    let mut batch = batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "a new user");
    let item = &mut batch["records"][0]["items"][0]["blindedInput"];
    *item = json!(item.as_str().unwrap().trim_end_matches('='));
    let (status, _, body) = ttp.call(&provider, "/v1/evaluate", &batch).await;
    assert_eq!(status, 200, "{body}");

    // Not weaker than before: wrong lengths, padding in the wrong place,
    // the standard alphabet and whitespace are still refused, naming the
    // member, never the value.
    let trimmed = element.trim_end_matches('=');
    for bad in [
        format!("{}=", &trimmed[..42]),
        format!("{trimmed} "),
        trimmed[..42].to_owned(),
        trimmed.replace('-', "+").replace('_', "/"),
    ] {
        if bad == trimmed {
            continue;
        }
        let mut request = padded.clone();
        request["encryptedPersonalId"] = json!(bad);
        let (status, _, body) = ttp.call(&provider, "/oprf/eval", &request).await;
        assert_error(status, &body, 400, "blindedInput.invalid");
        assert_eq!(body["field"], "encryptedPersonalId");
        assert!(!body.to_string().contains(&bad));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_oin_format_and_scope_minimum() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let with = |org: &str, scope: &str| {
        let mut body = eval_request(ORG_A, SCOPE_A, "NGGV", "a new user");
        body["recipientOrganization"] = json!(org);
        body["recipientScope"] = json!(scope);
        body
    };
    // Well-formed by the national rule (its own example, a main number
    // with letters, 8 + `0000` and 9 + `000`), but not configured here: 404.
    for org in [
        "oin:00000099000000001000",
        "oin:12345678ABCDEFGH0000",
        "oin:12345678abcdefghi000",
    ] {
        let (status, _, body) = ttp.call(&provider, "/oprf/eval", &with(org, SCOPE_A)).await;
        assert_error(status, &body, 404, "recipient.unknown");
    }
    // Not the national rule: 422 naming the member and the rule.
    for org in [
        "00000099000000001000",
        "OIN:00000099000000001000",
        "oin:0000009900000000100",
        "oin:12345678ABCDEFG10100",
        "oin:1234567XABCDEFGH0000",
        "oin:12345678ABCDEFGHI001",
        "oin:12345678ABCD-FGH0000",
    ] {
        let (status, _, body) = ttp.call(&provider, "/oprf/eval", &with(org, SCOPE_A)).await;
        assert_error(status, &body, 422, "recipientOrganization.invalid");
        assert_eq!(body["field"], "recipientOrganization");
        assert!(body["message"].as_str().unwrap().contains("0000"));
        assert!(!body.to_string().contains(&org[4..]), "{body}");
    }
    // A scope of one character is refused, as the national service refuses it.
    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &with(ORG_A, "k")).await;
    assert_error(status, &body, 422, "recipientScope.invalid");
    assert_eq!(body["field"], "recipientScope");
    assert!(body["message"].as_str().unwrap().contains("2 to 128"));
    // Two characters are well-formed (unknown here).
    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &with(ORG_A, "kr")).await;
    assert_error(status, &body, 404, "recipient.unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_recipient_gets_bare_claims_under_rsa_oaep() {
    use pseudoform_testkit::jose::{oaep, open_bare_jwe};
    use pseudoform_testkit::keys::recipient_a;
    let ttp = TestTtp::start_edited(true, "", |_, text| national_a(text)).await;
    let provider = ttp.backend(Client::ProviderA).await;

    for (ty, named) in [("B", false), ("NGGV", true)] {
        let mut body = eval_request(ORG_A, SCOPE_A, ty, "a new user");
        if ty == "B" {
            // Exactly the national request: no pseudonymType.
            body.as_object_mut().unwrap().remove("pseudonymType");
        }
        let (status, _, answer) = ttp.call(&provider, "/oprf/eval", &body).await;
        assert_eq!(status, 200, "{answer}");
        let token = answer["jwe"].as_str().unwrap();
        // The national protected header, byte for byte in its values.
        let (header, claims) = open_bare_jwe(token, recipient_a(), oaep());
        assert_eq!(header.algorithm(), Some("RSA-OAEP"));
        assert_eq!(header.content_encryption(), Some("A256GCM"));
        assert_eq!(header.content_type(), Some("application/json"));
        assert_eq!(header.key_id(), Some(KID_A));
        // The national claim names, plus the explicit key version and jti;
        // no party: unsigned claims could be anybody's.
        let mut names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        names.sort_unstable();
        let mut want = vec![
            "aud",
            "exp",
            "extra_versions",
            "iat",
            "jti",
            "key_version",
            "scope",
            "subject",
            "version",
        ];
        if named {
            want.push("pseudonym_type");
            want.sort_unstable();
        }
        assert_eq!(names, want);
        assert!(claims["subject"]
            .as_str()
            .unwrap()
            .starts_with("pseudonym:eval:"));
        assert_eq!(claims["aud"], ORG_A);
        assert_eq!(claims["scope"], SCOPE_A);
        assert_eq!(claims["version"], "1.1");
        assert_eq!(claims["key_version"], 1);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
    }

    // No batch for a national recipient: its claims could not bind a record.
    let batch = batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "a new user");
    let (status, _, body) = ttp.call(&provider, "/v1/evaluate", &batch).await;
    assert_error(status, &body, 422, "recipient.nationalProfile");

    // Recipient B keeps the signed nested JWT.
    let b = ttp.backend(Client::ProviderA).await;
    let (status, _, answer) = ttp
        .call(
            &b,
            "/oprf/eval",
            &eval_request(ORG_B, SCOPE_B, "NGGV", "a new user"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (header, _) = open_jwe(answer["jwe"].as_str().unwrap(), false);
    assert_eq!(header.content_type(), Some("JWT"));
}

#[test]
fn a_national_recipient_is_rsa_oaep_and_never_reversible() {
    let (_dir, _, config) = prepare_edited("", |_, text| {
        national_a(text).replacen(
            "profile = \"national\"\n",
            "profile = \"national\"\njwe_alg = \"RSA-OAEP-256\"\n",
            1,
        )
    });
    let error = format!("{:#}", config.unwrap_err());
    assert!(error.contains("can only be RSA-OAEP"), "{error}");
    let (_dir, _, config) = prepare_edited("", |_, text| {
        national_a(text).replacen("\"MRN\"]", "\"MRN\", \"R\"]", 1)
    });
    let error = format!("{:#}", config.unwrap_err());
    assert!(error.contains("cannot receive type R"), "{error}");
}

/// Everything the TTPs of this test binary log, from the first call on.
fn captured_log() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
}

/// A writer into the captured log.
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured lines with `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    let log = captured_log().lock().unwrap();
    String::from_utf8_lossy(&log)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_have_the_national_security_events_with_the_acting_party() {
    captured_log();
    let ttp = TestTtp::start(true).await;
    // A processor acting for provider A: the acting party and the one it
    // acts for differ.
    let processor = ttp
        .backend_for(Client::Processor, Some(Client::ProviderA.id()))
        .await;
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "a new user");
    let element = body["encryptedPersonalId"].as_str().unwrap().to_owned();
    let ok = eval_with_headers(
        &ttp,
        &processor,
        &body,
        &[("X-GF-Correlation-ID", "event-ok-1")],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let mut bad = body.clone();
    bad["encryptedPersonalId"] = json!("not base64url");
    let failed = eval_with_headers(
        &ttp,
        &processor,
        &bad,
        &[("X-GF-Correlation-ID", "event-failed-1")],
    )
    .await;
    assert_eq!(failed.status(), 400);
    let mut unknown = body.clone();
    unknown["recipientScope"] = json!("an-unknown-scope");
    let refused = eval_with_headers(
        &ttp,
        &processor,
        &unknown,
        &[("X-GF-Correlation-ID", "event-refused-1")],
    )
    .await;
    assert_eq!(refused.status(), 404);

    let processor_id = Client::Processor.id();
    let provider_id = Client::ProviderA.id();
    let one = |correlation: &str, code: &str| {
        let lines: Vec<String> = lines_with(correlation)
            .into_iter()
            .filter(|l| l.contains(code))
            .collect();
        assert_eq!(lines.len(), 1, "{code} for {correlation}: {lines:?}");
        let line = lines[0].clone();
        assert!(line.contains(&format!("event=\"{code}\"")), "{line}");
        assert!(
            line.contains(&format!("handelende_oin=\"{processor_id}\"")),
            "{line}"
        );
        assert!(
            line.contains(&format!("namens_oin=\"{provider_id}\"")),
            "{line}"
        );
        // The request's correlation is on the event, through its span.
        assert!(line.contains("request_id="), "{line}");
        assert!(!line.contains(&element), "no element: {line}");
        line
    };
    let line = one("event-ok-1", "PRS-OPRF-001");
    assert!(line.contains(&format!("doel_oin=\"{ORG_A}\"")), "{line}");
    assert!(line.contains("oprf_secret_versie=1"), "{line}");
    assert!(
        line.contains(&format!("ontvanger_pubkey_id=\"{KID_A}\"")),
        "{line}"
    );
    let line = one("event-failed-1", "PRS-OPRF-003");
    assert!(
        line.contains("error_type=\"invalid_blinded_input\""),
        "{line}"
    );
    assert!(line.contains("endpoint=\"/oprf/eval\""), "{line}");
    let line = one("event-refused-1", "PRS-OPRF-004");
    // The unknown recipient the caller typed is not logged.
    assert!(line.contains("doel_oin=\"\""), "{line}");
    assert!(!line.contains("an-unknown-scope"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_headers_are_refused_on_the_public_listener() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let body = eval_request(ORG_A, SCOPE_A, "NGGV", "a new user");
    // With a valid credential or without any: whoever sets them, they
    // authenticate nobody here.
    for name in ["x-gf-sub", "x-gf-act-sub", "x-gf-act-cn", "x-gf-audience"] {
        let value = if name == "x-gf-act-cn" {
            "a proxy"
        } else {
            "00000001000000001000"
        };
        let with_token = eval_with_headers(&ttp, &provider, &body, &[(name, value)]).await;
        assert_eq!(with_token.status(), 400, "{name}");
        request_id(&with_token);
        let answer: serde_json::Value = with_token.json().await.unwrap();
        assert_eq!(answer["code"], "auth.proxyHeaders");
        assert_eq!(answer["field"], name);
        assert!(!answer.to_string().contains(value));
        let without = ttp
            .client
            .post(ttp.url("/oprf/eval"))
            .header(name, value)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(without.status(), 400, "{name}");
    }
    // Without them the same request is answered.
    let plain = eval_with_headers(&ttp, &provider, &body, &[]).await;
    assert_eq!(plain.status(), 200);
}
