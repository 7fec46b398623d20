//! Hostile and malformed requests: oversized bodies (413), bad elements
//! (400), bad shapes and limits (422), unknown paths and methods, mutated
//! bodies — always a JSON problem answer, never a 5xx, never an echo.

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BSN: &str = "999990007";

fn good_element() -> String {
    encoding::encode(&blinded(b"good", "good").1)
}

fn single(element: &str) -> Value {
    json!({"encryptedPersonalId": element, "recipientOrganization": ORG_A, "recipientScope": SCOPE_A,
        "pseudonymType": "NGGV"})
}

fn batch(records: Vec<Value>) -> Value {
    json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "records": records})
}

fn record(types: &[&str]) -> Value {
    let items: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": t, "blindedInput": good_element()}))
        .collect();
    json!({ "items": items })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413() {
    let ttp = TestTtp::start_dev(false).await;
    let mut big = single(&good_element());
    big["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let body = serde_json::to_vec(&big).unwrap();
    for path in ["/oprf/eval", "/v1/evaluate", "/v1/rekey"] {
        let (status, err) = post_oversized(&ttp.base, path, TOKEN_FORM, &body).await;
        assert_error(status, &err, 413, "request.tooLarge");
    }
    // Just under the limit is read (and then judged on its content).
    let mut fits = single(&good_element());
    fits["padding"] = json!("x".repeat(1024 * 1024 - 400));
    let (status, _, body) = ttp.post("/oprf/eval", Some(TOKEN_FORM), &fits).await;
    assert_eq!(status, 200, "{body}");
}

/// POSTs `body` over a raw connection and returns the status and JSON body.
/// The TTP answers 413 from the Content-Length and closes the connection
/// without reading the body, so the answer is read while the body is still
/// being written (an HTTP client that first finishes its upload may see a
/// reset instead of the answer).
async fn post_oversized(base: &str, path: &str, token: &str, body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let reading = tokio::spawn(async move {
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the server closes (or resets) the connection.
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        answer
    });
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {token}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    // Writing may fail once the server has answered and closed: expected.
    if writer.write_all(head.as_bytes()).await.is_ok() {
        let _ = writer.write_all(body).await;
    }
    let answer = String::from_utf8_lossy(&reading.await.unwrap()).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 "),
        "no HTTP answer: {answer:?}"
    );
    let status = answer[9..12].parse().unwrap();
    let json = match (answer.find('{'), answer.rfind('}')) {
        (Some(start), Some(end)) => {
            serde_json::from_str(&answer[start..=end]).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    (status, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_elements_get_400() {
    let ttp = TestTtp::start_dev(false).await;
    let good = blinded(b"good", "good").1;
    let mut non_canonical = [0xffu8; 32];
    non_canonical[31] = 0x7f;
    let mut odd = [0u8; 32];
    odd[0] = 1;
    let cases: Vec<String> = vec![
        encoding::encode(&[0u8; 32]),     // identity
        encoding::encode(&non_canonical), // not a field element
        encoding::encode(&odd),           // negative s: not canonical
        encoding::encode(&[0x42u8; 32]),  // not on the curve (most likely)
        "not base64 at all!".into(),
        good_element().replace('-', "+").replace('_', "/"), // standard alphabet
        encoding::encode(&good[..31]),                      // 31 bytes
        encoding::encode(&[good.as_slice(), &[0]].concat()), // 33 bytes
        String::new(),
        BSN.into(),
    ];
    for element in &cases {
        let (status, _, body) = ttp
            .post("/oprf/eval", Some(TOKEN_FORM), &single(element))
            .await;
        // The standard-alphabet variant is only invalid if it differs.
        if element == &good_element() {
            continue;
        }
        assert_error(status, &body, 400, "blindedInput.invalid");
        assert_eq!(body["field"], "encryptedPersonalId");
        if !element.is_empty() {
            assert!(
                !body.to_string().contains(element.as_str()),
                "echo of {element}"
            );
        }
    }
    // One bad item fails the whole batch, naming the first bad item.
    let mut records: Vec<Value> = (0..8).map(|_| record(&["NGGV", "RGG"])).collect();
    records[5]["items"][1]["blindedInput"] = json!(encoding::encode(&[0u8; 32]));
    records[6]["items"][0]["blindedInput"] = json!("garbage");
    let (status, _, body) = ttp
        .post("/v1/evaluate", Some(TOKEN_FORM), &batch(records))
        .await;
    assert_error(status, &body, 400, "blindedInput.invalid");
    assert_eq!(
        body["field"], "records[6].items[0].blindedInput",
        "syntax is checked first, in order"
    );
    let mut records: Vec<Value> = (0..8).map(|_| record(&["NGGV", "RGG"])).collect();
    records[5]["items"][1]["blindedInput"] = json!(encoding::encode(&[0u8; 32]));
    let (status, _, body) = ttp
        .post("/v1/evaluate", Some(TOKEN_FORM), &batch(records))
        .await;
    assert_error(status, &body, 400, "blindedInput.invalid");
    assert_eq!(body["field"], "records[5].items[1].blindedInput");
    assert!(body.get("records").is_none(), "no partial results");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_422() {
    let ttp = TestTtp::start_dev(false).await;
    let element = good_element();
    let raw_cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        ("/oprf/eval", b"".to_vec(), "request.malformedJson", None),
        ("/oprf/eval", b"not json".to_vec(), "request.malformedJson", None),
        ("/oprf/eval", b"{\"encryptedPersonalId\":".to_vec(), "request.malformedJson", None),
        ("/oprf/eval", b"null".to_vec(), "request.invalid", None),
        ("/oprf/eval", b"[]".to_vec(), "request.invalid", None),
        ("/oprf/eval", format!("{{\"encryptedPersonalId\":\"{element}\"}}").into_bytes(), "request.missingMember", Some("recipientOrganization")),
        ("/oprf/eval", format!("{{\"encryptedPersonalId\":{BSN},\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\"}}").into_bytes(), "request.invalid", Some("encryptedPersonalId")),
        ("/oprf/eval", format!("{{\"encryptedPersonalId\":\"{element}\",\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\",\"pseudonymType\":[\"{BSN}\"]}}").into_bytes(), "request.invalid", Some("pseudonymType")),
        ("/v1/evaluate", format!("{{\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\"}}").into_bytes(), "request.missingMember", Some("records")),
        ("/v1/evaluate", format!("{{\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\",\"records\":[{{\"items\":[{{\"type\":\"NGGV\"}}]}}]}}").into_bytes(), "request.missingMember", Some("records[0].items[0].blindedInput")),
        ("/v1/evaluate", format!("{{\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\",\"records\":\"{BSN}\"}}").into_bytes(), "request.invalid", Some("records")),
        ("/v1/rekey", format!("{{\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\",\"fromVersion\":-1,\"toVersion\":2,\"blindedPseudonyms\":[]}}").into_bytes(), "request.invalid", Some("fromVersion")),
        ("/oprf/eval", format!("{{\"encryptedPersonalId\":\"{element}\",\"recipientOrganization\":\"oin:{BSN}\",\"recipientScope\":\"{SCOPE_A}\"}}").into_bytes(), "recipientOrganization.invalid", Some("recipientOrganization")),
        ("/oprf/eval", format!("{{\"encryptedPersonalId\":\"{element}\",\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"a|{BSN}\"}}").into_bytes(), "recipientScope.invalid", Some("recipientScope")),
    ];
    for (path, body, code, field) in raw_cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let token = if path == "/v1/rekey" {
            TOKEN_REGISTRY
        } else {
            TOKEN_FORM
        };
        let (status, _, err) = ttp.post_raw(path, Some(token), None, body).await;
        assert_error(status, &err, 422, code);
        assert_eq!(err["field"].as_str(), field, "{shown}");
        assert!(!err.to_string().contains(BSN), "echo in {err}");
    }

    let cases: Vec<(Value, &str, &str)> = vec![
        (batch(vec![]), "records.empty", "records"),
        (
            batch(
                (0..1001)
                    .map(|_| json!({"items": [{"type": "NGGV", "blindedInput": element}]}))
                    .collect(),
            ),
            "records.tooMany",
            "records",
        ),
        (
            batch(vec![record(&["NGGV"]), json!({"items": []})]),
            "record.empty",
            "records[1].items",
        ),
        (
            batch(vec![
                json!({"items": (0..11).map(|_| json!({"type": "NGGV", "blindedInput": element})).collect::<Vec<_>>()}),
            ]),
            "record.tooManyItems",
            "records[0].items",
        ),
        (
            batch(vec![record(&["NGGV", "RGG", "NGGV"])]),
            "record.duplicateType",
            "records[0].items[2].type",
        ),
        (
            batch(vec![record(&["NGGV", "nggv"])]),
            "pseudonymType.unknown",
            "records[0].items[1].type",
        ),
    ];
    for (request, code, field) in cases {
        let (status, _, err) = ttp.post("/v1/evaluate", Some(TOKEN_FORM), &request).await;
        assert_error(status, &err, 422, code);
        assert_eq!(err["field"], field);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_methods_and_mutations_never_5xx() {
    let ttp = TestTtp::start_dev(false).await;
    let (status, _, body) = ttp.get("/nope", None).await;
    assert_error(status, &body, 404, "notFound");
    let (status, _, body) = ttp.get("/oprf/eval", None).await;
    assert_error(status, &body, 405, "methodNotAllowed");
    let (status, _, body) = ttp.post_raw("/v1/policy", None, None, Vec::new()).await;
    assert_error(status, &body, 405, "methodNotAllowed");
    let (status, _, body) = ttp
        .get(
            "/v1/policy?recipientOrganization=%FF%FE&recipientScope=%00",
            None,
        )
        .await;
    assert!(status == 422, "{status} {body}");

    // Deterministic mutations of valid requests: flipped, cut and repeated bytes.
    let valid_single = serde_json::to_vec(&single(&good_element())).unwrap();
    let valid_batch =
        serde_json::to_vec(&batch(vec![record(&["NGGV", "RGG"]), record(&["GG"])])).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for i in 0u32..150 {
        let seed = Sha256::digest(i.to_be_bytes());
        let (path, base) = if i % 2 == 0 {
            ("/oprf/eval", &valid_single)
        } else {
            ("/v1/evaluate", &valid_batch)
        };
        let mut body = base.clone();
        let at = usize::from(u16::from_be_bytes([seed[0], seed[1]])) % body.len();
        match seed[2] % 4 {
            0 => body[at] ^= seed[3] | 1,
            1 => body.truncate(at),
            2 => body.insert(at, seed[3]),
            _ => {
                let end = (at + usize::from(seed[3])).min(body.len());
                let chunk = body[at..end].to_vec();
                body.splice(at..at, chunk);
            }
        }
        let (status, _, err) = ttp.post_raw(path, Some(TOKEN_FORM), None, body).await;
        assert!(status < 500, "mutation {i}: {status} {err}");
        if status != 200 {
            assert!(err["code"].is_string(), "mutation {i}: {err}");
        }
        *seen.entry(status).or_insert(0) += 1;
    }
    assert!(seen.len() >= 3, "{seen:?}");
}
