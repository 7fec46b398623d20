//! The reversible pseudonym (type `R`) at the registry and the validation
//! requests around it, against a real registry on loopback with SQLite:
//! submissions with `reversible`, the staff API and the registry page, the
//! provider endpoints with TTP validate tokens and DPoP proofs, withdrawals,
//! the audit and the CORS of the validation pages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use pseudoform_protocol::auth::AccessTokenClaims;
use pseudoform_protocol::registry::Submission;
use pseudoform_testkit::keys::{forger_signing, ttp_signing};
use pseudoform_testkit::registry::{Registry, DEFAULT_TYPES};
use pseudoform_testkit::ttp::{ORG_B, ORIGIN_A};
use pseudoform_testkit::validation::{
    envelope, sign_access_token, submission_claiming, submission_of, validate_claims,
    ProviderCaller, PROVIDER_A, PROVIDER_B, REGISTRY_PUBLIC_URL, VALIDATION_ORIGIN,
};
use serde_json::{json, Value};

/// The claims of a record as the registry serves them: a compact JWS whose
/// signature verifies with the test TTP's public key (as the provider's
/// page checks it), its payload.
fn signed_claims(jws: &str) -> Value {
    let verifier = josekit::jws::ES256
        .verifier_from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    let (payload, header) = josekit::jws::deserialize_compact(jws, &verifier).unwrap();
    assert_eq!(header.key_id(), Some(ttp_signing().kid.as_str()));
    serde_json::from_slice(&payload).unwrap()
}

/// The registry's types with `R`.
fn types_with_r() -> Vec<&'static str> {
    DEFAULT_TYPES.iter().copied().chain(["R"]).collect()
}

/// Registry A accepting `R`, reached as [`REGISTRY_PUBLIC_URL`], with the
/// validation page's origin and a form origin elsewhere.
async fn registry() -> Registry {
    registry_with(&types_with_r(), &[]).await
}

async fn registry_with(types: &[&str], required: &[&str]) -> Registry {
    let required: Vec<String> = required.iter().map(|t| (*t).to_owned()).collect();
    Registry::start_configured(types, move |c| {
        c.required_types = required;
        c.public_url = Some(REGISTRY_PUBLIC_URL.into());
        c.validation_origins = vec![VALIDATION_ORIGIN.into()];
        c.allowed_origins = vec![ORIGIN_A.into()];
    })
    .await
}

/// A provider's call of `method` on `path` (with its query) with `body`.
async fn call(
    registry: &Registry,
    caller: &ProviderCaller,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let bare = path.split('?').next().unwrap();
    let mut request = registry
        .client
        .request(method.parse().unwrap(), registry.url(path));
    for (name, value) in caller.headers(method, bare) {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Staff: asks about `ids`; status and body.
async fn ask(registry: &Registry, ids: &[i64]) -> (u16, Value) {
    let response = registry
        .client
        .post(registry.url("/api/validation-requests"))
        .json(&json!({"recordIds": ids, "question": "Klopt de diagnose?"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Stores a submission and gives its record id.
async fn store(registry: &Registry, submission: &Submission) -> i64 {
    registry.accept(submission).await["recordId"]
        .as_i64()
        .unwrap()
}

/// The records of `/api/records?include=withdrawn`, by id.
async fn all_records(registry: &Registry) -> Vec<Value> {
    registry
        .get("/api/records?include=withdrawn")
        .await
        .json()
        .await
        .unwrap()
}

fn sqlite(registry: &Registry) -> rusqlite::Connection {
    rusqlite::Connection::open(registry.db()).unwrap()
}

#[tokio::test]
async fn a_submission_with_r_is_stored_opaque_and_listed_by_kid() {
    let registry = registry().await;
    let reversible = envelope();
    let submission = submission_of(PROVIDER_A, Some(reversible.clone()));
    let first = registry.accept(&submission).await;
    let id = first["recordId"].as_i64().unwrap();
    // Stored as it came, with the record's TTP-signed claims, which name
    // its digest.
    let (kid, enc, ct, claims): (String, String, String, String) = sqlite(&registry)
        .query_row(
            "SELECT kid, enc, ct, claims FROM reversible WHERE record_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (kid, enc, ct),
        (
            reversible.kid.clone(),
            reversible.enc.clone(),
            reversible.ct.clone()
        )
    );
    let claims = signed_claims(&claims);
    assert_eq!(claims["reversible"], reversible.digest());
    assert_eq!(claims["provider"], PROVIDER_A);
    // Listed by kid only, active, never asked.
    let listed = &registry.records().await[0];
    assert_eq!(
        listed["reversible"],
        json!({"kid": reversible.kid}),
        "{listed}"
    );
    assert_eq!(listed["status"], "active");
    assert!(listed.get("validation").is_none(), "{listed}");
    let text = listed.to_string();
    assert!(!text.contains(&reversible.enc) && !text.contains(&reversible.ct));
    // The resend of the same submission: the first receipt, nothing new.
    assert_eq!(registry.accept(&submission).await, first);
    // The same record with another reversible pseudonym: not the one the
    // TTP signed into it. Without one: a partial record.
    let other = Submission {
        reversible: Some(envelope()),
        ..submission.clone()
    };
    registry.refuse(&other, 422, "reversible.unbound").await;
    let without = Submission {
        reversible: None,
        ..submission
    };
    registry
        .refuse(&without, 422, "pseudonyms.partialRecord")
        .await;
    assert_eq!(registry.rows_in("reversible"), 1);
    assert_eq!(registry.count().await, 1);
}

#[tokio::test]
async fn r_refusals_store_nothing() {
    // Required and missing.
    let required = registry_with(&types_with_r(), &["NGGV", "R"]).await;
    let (status, body) = required.submit(&submission_of(PROVIDER_A, None)).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (422, Some("pseudonyms.requiredMissing"), Some("R")),
        "{body}"
    );
    assert_eq!(required.count().await, 0);
    required
        .accept(&submission_of(PROVIDER_A, Some(envelope())))
        .await;

    // Not allowed here.
    let plain = registry_with(DEFAULT_TYPES, &[]).await;
    let (status, body) = plain
        .submit(&submission_of(PROVIDER_A, Some(envelope())))
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (403, Some("type.notAllowed"), Some("R")),
        "{body}"
    );
    assert_eq!(plain.count().await, 0);

    // Malformed.
    let registry = registry().await;
    let good = envelope();
    let b64 = |bytes: &[u8]| {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(bytes)
    };
    for bad in [
        pseudoform_protocol::registry::ReversibleEnvelope {
            r#type: "MRN".into(),
            ..good.clone()
        },
        pseudoform_protocol::registry::ReversibleEnvelope {
            kid: "short".into(),
            ..good.clone()
        },
        pseudoform_protocol::registry::ReversibleEnvelope {
            enc: b64(&[2; 65]),
            ..good.clone()
        },
        pseudoform_protocol::registry::ReversibleEnvelope {
            ct: b64(&[0; 257]),
            ..good.clone()
        },
        pseudoform_protocol::registry::ReversibleEnvelope {
            ct: b64(&[0; 8]),
            ..good.clone()
        },
    ] {
        let (status, body) = registry.submit(&submission_of(PROVIDER_A, Some(bad))).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (422, Some("reversible.malformed"), Some("reversible")),
            "{body}"
        );
    }
    // Unknown members in the envelope: not a submission.
    let mut raw = serde_json::to_value(submission_of(PROVIDER_A, Some(good.clone()))).unwrap();
    raw["reversible"]["mrn"] = json!("12345");
    let response = registry
        .client
        .post(registry.url("/api/submissions"))
        .json(&raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(!body.to_string().contains("12345"), "{body}");

    // R without a record: with the national packaging.
    let national = Submission {
        reversible: Some(good),
        ..pseudoform_testkit::registry::one("NGGV", pseudoform_testkit::registry::temporary("NGGV"))
    };
    let (status, body) = registry.submit(&national).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (422, Some("submission.shape"), Some("reversible")),
        "{body}"
    );
    assert_eq!(registry.count().await, 0);
    assert_eq!(registry.rows_in("reversible"), 0);
}

#[tokio::test]
async fn an_envelope_the_ttp_did_not_sign_into_its_record_is_refused() {
    let registry = registry().await;
    let good = envelope();
    let refused = |status, code: &str, field: &str, body: &Value| {
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (422, Some(code), Some(field)),
            "{body}"
        );
    };
    // Another envelope than the record's claims name (a forgery made with
    // the provider's public key, or one moved from another record).
    let (status, body) = registry
        .submit(&submission_claiming(
            PROVIDER_A,
            Some(envelope()),
            Some(&good.digest()),
        ))
        .await;
    refused(status, "reversible.unbound", "reversible", &body);
    // An envelope whose record's claims name none.
    let (status, body) = registry
        .submit(&submission_claiming(PROVIDER_A, Some(good.clone()), None))
        .await;
    refused(status, "reversible.unbound", "reversible", &body);
    // The envelope stripped from a record whose claims name one.
    let (status, body) = registry
        .submit(&submission_claiming(PROVIDER_A, None, Some(&good.digest())))
        .await;
    refused(status, "pseudonyms.partialRecord", "R", &body);
    assert_eq!(registry.count().await, 0);
    assert_eq!(registry.rows_in("reversible"), 0);
    // Bound: stored.
    registry
        .accept(&submission_claiming(
            PROVIDER_A,
            Some(good.clone()),
            Some(&good.digest()),
        ))
        .await;
    assert_eq!(registry.rows_in("reversible"), 1);
}

#[tokio::test]
async fn validation_requests_go_one_per_provider_and_only_for_records_with_r() {
    let registry = registry().await;
    let a1 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let a2 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let b1 = store(&registry, &submission_of(PROVIDER_B, Some(envelope()))).await;
    let plain = store(&registry, &submission_of(PROVIDER_A, None)).await;

    // Refusals: nothing made.
    for (ids, code) in [
        (vec![], "validation.empty"),
        (vec![a1, plain], "validation.notReversible"),
        (vec![a1, 9999], "validation.unknownRecord"),
    ] {
        let (status, body) = ask(&registry, &ids).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (422, Some(code), Some("recordIds")),
            "{body}"
        );
    }
    let long = registry
        .client
        .post(registry.url("/api/validation-requests"))
        .json(&json!({"recordIds": [a1], "question": "x".repeat(501)}))
        .send()
        .await
        .unwrap();
    assert_eq!(long.status().as_u16(), 422);
    assert_eq!(registry.rows_in("validation_requests"), 0);

    let (status, body) = ask(&registry, &[b1, a2, a1, a1]).await;
    assert_eq!(status, 201, "{body}");
    let requests = body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2, "{body}");
    let of = |provider: &str| requests.iter().find(|r| r["provider"] == provider).unwrap();
    assert_eq!(of(PROVIDER_A)["recordIds"], json!([a1, a2]));
    assert_eq!(of(PROVIDER_B)["recordIds"], json!([b1]));
    for request in requests {
        let id = request["id"].as_str().unwrap();
        assert!(id.starts_with("vr-") && id.len() == 25, "{id}");
    }
    // The records show the open request.
    let listed = registry.records().await;
    let state = |id: i64| listed.iter().find(|r| r["id"] == id).unwrap()["validation"].clone();
    assert_eq!(
        (state(a1), state(b1), state(plain)),
        (json!("open"), json!("open"), Value::Null)
    );
}

#[tokio::test]
async fn a_provider_lists_only_its_own_requests_and_answers_them() {
    let registry = registry().await;
    let reversible = envelope();
    let a1 = store(
        &registry,
        &submission_of(PROVIDER_A, Some(reversible.clone())),
    )
    .await;
    let a2 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let b1 = store(&registry, &submission_of(PROVIDER_B, Some(envelope()))).await;
    let (_, body) = ask(&registry, &[a1, a2, b1]).await;
    let request_of = |provider: &str| {
        body["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["provider"] == provider)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (request_a, request_b) = (request_of(PROVIDER_A), request_of(PROVIDER_B));
    let a = ProviderCaller::new(PROVIDER_A);
    let b = ProviderCaller::new(PROVIDER_B);

    let (status, listed) = call(&registry, &a, "GET", "/api/validation-requests", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["recipientOrganization"],
        pseudoform_testkit::ttp::ORG_A
    );
    let requests = listed["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{listed}");
    let request = &requests[0];
    assert_eq!(
        (request["id"].as_str(), request["status"].as_str()),
        (Some(request_a.as_str()), Some("open"))
    );
    assert_eq!(request["question"], "Klopt de diagnose?");
    let first = &request["records"][0];
    assert_eq!(first["recordId"], a1);
    assert_eq!(first["data"], json!({"diagnose": "C50.9"}));
    assert_eq!(
        first["reversible"],
        serde_json::to_value(&reversible).unwrap()
    );
    assert_eq!(first["answer"], Value::Null);
    assert!(first.get("rec").is_none(), "{first}");
    let claims = signed_claims(first["claims"].as_str().unwrap());
    assert_eq!(claims["reversible"], reversible.digest());
    assert_eq!(
        (claims["provider"].as_str(), claims["aud"].as_str()),
        (Some(PROVIDER_A), Some(pseudoform_testkit::ttp::ORG_A))
    );
    let (_, listed_b) = call(&registry, &b, "GET", "/api/validation-requests", None).await;
    assert_eq!(listed_b["requests"].as_array().unwrap().len(), 1);
    assert_eq!(listed_b["requests"][0]["id"], request_b.as_str());

    // B may not answer A's request: 403, nothing changed.
    let path_a = format!("/api/validation-requests/{request_a}/answers");
    let confirm = json!({"answers": [{"recordId": a1, "answer": "withdraw"}]});
    let (status, refused) = call(&registry, &b, "POST", &path_a, Some(&confirm)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("validation.notYours")),
        "{refused}"
    );
    assert_eq!(registry.rows_in("withdrawn"), 0);
    // A record not in the request, an unknown request, a bad answer.
    let (status, refused) = call(
        &registry,
        &a,
        "POST",
        &path_a,
        Some(&json!({"answers": [{"recordId": b1, "answer": "confirm"}]})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str(), refused["field"].as_str()),
        (
            422,
            Some("validation.unknownRecord"),
            Some("answers[0].recordId")
        ),
        "{refused}"
    );
    let (status, refused) = call(
        &registry,
        &a,
        "POST",
        "/api/validation-requests/vr-nothing/answers",
        Some(&confirm),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (404, Some("validation.unknownRequest")),
        "{refused}"
    );
    let (status, refused) = call(
        &registry,
        &a,
        "POST",
        &path_a,
        Some(&json!({"answers": [{"recordId": a1, "answer": "maybe"}]})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("validation.malformed")),
        "{refused}"
    );
    let (status, refused) = call(&registry, &a, "POST", &path_a, Some(&json!({"answers": [{"recordId": a1, "answer": "correct", "correction": "y".repeat(501)}]}))).await;
    assert_eq!(
        (status, refused["code"].as_str(), refused["field"].as_str()),
        (
            422,
            Some("validation.correctionTooLong"),
            Some("answers[0].correction")
        ),
        "{refused}"
    );
    assert_eq!(
        registry.rows_in("validation_items WHERE answer IS NOT NULL"),
        0
    );

    // Answers: one record, then both; the latest answer of a record wins.
    let (status, answered) = call(&registry, &a, "POST", &path_a, Some(&json!({"answers": [{"recordId": a1, "answer": "correct", "correction": "Diagnose is C50.1"}]}))).await;
    assert_eq!(
        (status, &answered),
        (200, &json!({"id": request_a, "status": "open"}))
    );
    let (status, answered) = call(&registry, &a, "POST", &path_a, Some(&json!({"answers": [{"recordId": a1, "answer": "confirm"}, {"recordId": a2, "answer": "withdraw"}]}))).await;
    assert_eq!(
        (status, &answered),
        (200, &json!({"id": request_a, "status": "answered"}))
    );
    let (_, listed) = call(&registry, &a, "GET", "/api/validation-requests", None).await;
    let records = &listed["requests"][0]["records"];
    assert_eq!(listed["requests"][0]["status"], "answered");
    assert_eq!(records[0]["answer"]["answer"], "confirm");
    assert!(
        records[0]["answer"].get("correction").is_none(),
        "{records}"
    );
    assert_eq!(records[1]["answer"]["answer"], "withdraw");

    // The withdrawn record is gone from /api/records, shown with include=withdrawn.
    let active: Vec<i64> = registry
        .records()
        .await
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(!active.contains(&a2) && active.contains(&a1), "{active:?}");
    let all = all_records(&registry).await;
    let a2_listed = all.iter().find(|r| r["id"] == a2).unwrap();
    assert_eq!(
        (
            a2_listed["status"].as_str(),
            a2_listed["validation"].as_str()
        ),
        (Some("withdrawn"), Some("withdraw"))
    );
    let a1_listed = all.iter().find(|r| r["id"] == a1).unwrap();
    assert_eq!(a1_listed["validation"], "confirm");
    let bad = registry.get("/api/records?include=everything").await;
    assert_eq!(bad.status().as_u16(), 422);

    // A withdrawn record cannot be asked about again.
    let (status, body) = ask(&registry, &[a2]).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation.unknownRecord")),
        "{body}"
    );
    // Nor confirmed or corrected afterwards: 422, nothing changed. A
    // repeated withdraw (a retry) is accepted and changes nothing.
    let audited = registry.rows_in("validation_audit");
    for answer in ["confirm", "correct"] {
        let late = json!({"answers": [{"recordId": a1, "answer": "confirm"}, {"recordId": a2, "answer": answer}]});
        let (status, body) = call(&registry, &a, "POST", &path_a, Some(&late)).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (
                422,
                Some("validation.withdrawn"),
                Some("answers[1].recordId")
            ),
            "{body}"
        );
    }
    assert_eq!(registry.rows_in("validation_audit"), audited);
    let again = json!({"answers": [{"recordId": a2, "answer": "withdraw"}]});
    let (status, body) = call(&registry, &a, "POST", &path_a, Some(&again)).await;
    assert_eq!(status, 200, "{body}");
    let all = all_records(&registry).await;
    let a2_listed = all.iter().find(|r| r["id"] == a2).unwrap();
    assert_eq!(
        (
            a2_listed["status"].as_str(),
            a2_listed["validation"].as_str()
        ),
        (Some("withdrawn"), Some("withdraw"))
    );
    assert_eq!(registry.rows_in("withdrawn"), 1);
}

#[tokio::test]
async fn withdrawals_and_provider_records() {
    let registry = registry().await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await);
    }
    let theirs = store(&registry, &submission_of(PROVIDER_B, Some(envelope()))).await;
    let _plain = store(&registry, &submission_of(PROVIDER_A, None)).await;
    let a = ProviderCaller::new(PROVIDER_A);

    // Pages of the provider's records with R, ascending.
    let (status, page) = call(&registry, &a, "GET", "/api/provider-records?limit=2", None).await;
    assert_eq!(status, 200, "{page}");
    let ids = |page: &Value| -> Vec<i64> {
        page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recordId"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids(&page), mine[..2]);
    assert_eq!(page["next"], mine[1]);
    assert_eq!(page["records"][0]["status"], "active");
    assert_eq!(page["records"][0]["reversible"]["type"], "R");
    let claims = signed_claims(page["records"][0]["claims"].as_str().unwrap());
    assert_eq!(
        claims["reversible"],
        serde_json::from_value::<pseudoform_protocol::registry::ReversibleEnvelope>(
            page["records"][0]["reversible"].clone()
        )
        .unwrap()
        .digest()
    );
    assert!(page["records"][0].get("rec").is_none());
    let (_, rest) = call(
        &registry,
        &a,
        "GET",
        &format!("/api/provider-records?after={}&limit=2", mine[1]),
        None,
    )
    .await;
    assert_eq!(ids(&rest), mine[2..]);
    assert_eq!(rest["next"], Value::Null);
    for query in ["?limit=0", "?limit=1001", "?after=x"] {
        let (status, body) = call(
            &registry,
            &a,
            "GET",
            &format!("/api/provider-records{query}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("query.invalid")),
            "{query} {body}"
        );
    }

    // Another provider's record: 403 and nothing withdrawn.
    let (status, body) = call(
        &registry,
        &a,
        "POST",
        "/api/withdrawals",
        Some(&json!({"recordIds": [mine[0], theirs]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("validation.notYours")),
        "{body}"
    );
    let (status, body) = call(
        &registry,
        &a,
        "POST",
        "/api/withdrawals",
        Some(&json!({"recordIds": []})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("validation.empty")),
        "{body}"
    );
    assert_eq!(registry.rows_in("withdrawn"), 0);

    let (status, body) = call(
        &registry,
        &a,
        "POST",
        "/api/withdrawals",
        Some(&json!({"recordIds": [mine[2], mine[0]]})),
    )
    .await;
    assert_eq!(
        (status, &body),
        (200, &json!({"withdrawn": [mine[0], mine[2]]}))
    );
    // Again: the same answer, nothing more.
    let (status, _) = call(
        &registry,
        &a,
        "POST",
        "/api/withdrawals",
        Some(&json!({"recordIds": [mine[0]]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(registry.rows_in("withdrawn"), 2);
    let active: Vec<i64> = registry
        .records()
        .await
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(!active.contains(&mine[0]) && !active.contains(&mine[2]) && active.contains(&mine[1]));
    let (_, page) = call(&registry, &a, "GET", "/api/provider-records", None).await;
    assert_eq!(page["records"][0]["status"], "withdrawn");
}

#[tokio::test]
async fn bad_credentials_are_refused_and_change_nothing() {
    let registry = registry().await;
    let a1 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let path = "/api/withdrawals";
    let body = json!({"recordIds": [a1]});

    let with = |change: fn(&mut AccessTokenClaims)| {
        ProviderCaller::with_claims(|key| {
            let mut claims = validate_claims(PROVIDER_A, key);
            change(&mut claims);
            claims
        })
    };
    let cases: Vec<(&str, ProviderCaller, u16, &str)> = vec![
        (
            "wrong aud",
            with(|c| c.aud = format!("{ORG_B}|kwaliteitsregistratie-b")),
            403,
            "auth.wrongAudience",
        ),
        (
            "the TTP as aud",
            with(|c| c.aud = c.iss.clone()),
            403,
            "auth.wrongAudience",
        ),
        (
            "evaluate scope",
            with(|c| c.scope = "evaluate".into()),
            403,
            "auth.wrongScope",
        ),
        (
            "other issuer",
            with(|c| c.iss = "https://other-ttp.example.nl".into()),
            401,
            "auth.invalidToken",
        ),
        (
            "expired",
            with(|c| {
                c.iat -= 1000;
                c.exp = c.iat + 300;
            }),
            401,
            "auth.tokenExpired",
        ),
        (
            "too long",
            with(|c| c.exp = c.iat + 3600),
            401,
            "auth.invalidToken",
        ),
        (
            "a back end's token (no origin) longer than 300 s",
            with(|c| {
                c.origin = None;
                c.exp = c.iat + 600;
            }),
            401,
            "auth.invalidToken",
        ),
        (
            "bound to another key",
            with(|c| c.cnf.jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
            401,
            "auth.wrongKey",
        ),
        (
            "browser token from another origin",
            with(|c| c.origin = Some("https://evil.example".into())),
            403,
            "auth.wrongOrigin",
        ),
    ];
    for (what, caller, status, code) in &cases {
        let mut request = registry
            .client
            .post(registry.url(path))
            .json(&body)
            .header("origin", VALIDATION_ORIGIN);
        for (name, value) in caller.headers("POST", path) {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        let got = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let answer: Value = response.json().await.unwrap();
        assert_eq!(
            (got, answer["code"].as_str()),
            (*status, Some(*code)),
            "{what}: {answer}"
        );
        assert!(challenge.is_some_and(|c| c.starts_with("DPoP")), "{what}");
    }
    // A browser's token (with its origin) may live 900 s, as the TTP issues it.
    let browser = ProviderCaller::with_claims(|key| {
        let mut claims = validate_claims(PROVIDER_A, key);
        claims.origin = Some(VALIDATION_ORIGIN.into());
        claims.exp = claims.iat + 900;
        claims
    });
    let (status, listed) = call(&registry, &browser, "GET", "/api/provider-records", None).await;
    assert_eq!(status, 200, "{listed}");

    // Signed by another key; not signed at all; not a token.
    let key = pseudoform_protocol::client::EcKey::generate().unwrap();
    let forged = sign_access_token(&validate_claims(PROVIDER_A, &key), forger_signing());
    let claims = validate_claims(PROVIDER_A, &key);
    let unsigned = {
        use base64ct::{Base64UrlUnpadded, Encoding};
        format!(
            "{}.{}.",
            Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"at+jwt"}"#),
            Base64UrlUnpadded::encode_string(&serde_json::to_vec(&claims).unwrap())
        )
    };
    for token in [forged, unsigned, "garbage".to_owned()] {
        let caller = ProviderCaller {
            key: pseudoform_protocol::client::EcKey::generate().unwrap(),
            token,
        };
        let (status, answer) = call(&registry, &caller, "POST", path, Some(&body)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (401, Some("auth.invalidToken")),
            "{answer}"
        );
    }

    // No token; a Bearer token; no proof; a proof for another path or method.
    let good = ProviderCaller::new(PROVIDER_A);
    let post = || registry.client.post(registry.url(path)).json(&body);
    let answer = |r: reqwest::Response| async move {
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap()["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    assert_eq!(
        answer(post().send().await.unwrap()).await,
        (401, "auth.missingToken".into())
    );
    let [auth, proof] = good.headers("POST", path);
    assert_eq!(
        answer(
            post()
                .header("authorization", format!("Bearer {}", good.token))
                .header("dpop", &proof.1)
                .send()
                .await
                .unwrap()
        )
        .await,
        (401, "auth.missingToken".into())
    );
    assert_eq!(
        answer(
            post()
                .header("authorization", &auth.1)
                .send()
                .await
                .unwrap()
        )
        .await,
        (401, "auth.missingProof".into())
    );
    let [_, other_path] = good.headers("POST", "/api/validation-requests");
    assert_eq!(
        answer(
            post()
                .header("authorization", &auth.1)
                .header("dpop", &other_path.1)
                .send()
                .await
                .unwrap()
        )
        .await,
        (401, "auth.invalidProof".into())
    );
    let [_, other_method] = good.headers("GET", path);
    assert_eq!(
        answer(
            post()
                .header("authorization", &auth.1)
                .header("dpop", &other_method.1)
                .send()
                .await
                .unwrap()
        )
        .await,
        (401, "auth.invalidProof".into())
    );
    // A proof of another token (ath).
    let other_token = sign_access_token(
        &validate_claims(PROVIDER_A, &good.key),
        pseudoform_testkit::keys::ttp_signing(),
    );
    let other_ath = good
        .key
        .dpop_proof(
            "POST",
            &format!("{REGISTRY_PUBLIC_URL}{path}"),
            Some(&other_token),
            pseudoform_protocol::unix_now(),
        )
        .unwrap();
    assert_eq!(
        answer(
            post()
                .header("authorization", &auth.1)
                .header("dpop", &other_ath)
                .send()
                .await
                .unwrap()
        )
        .await,
        (401, "auth.invalidProof".into())
    );
    assert_eq!(registry.rows_in("withdrawn"), 0);

    // The right credential once; its proof a second time is a replay.
    assert_eq!(
        post()
            .header("authorization", &auth.1)
            .header("dpop", &proof.1)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (status, code) = answer(
        post()
            .header("authorization", &auth.1)
            .header("dpop", &proof.1)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (401, "auth.proofReplayed"));
    // The browser token from its own origin is fine.
    let page = ProviderCaller::with_claims(|key| AccessTokenClaims {
        origin: Some(VALIDATION_ORIGIN.into()),
        ..validate_claims(PROVIDER_A, key)
    });
    let mut request = registry
        .client
        .get(registry.url("/api/validation-requests"))
        .header("origin", VALIDATION_ORIGIN);
    for (name, value) in page.headers("GET", "/api/validation-requests") {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn the_audit_names_events_never_values() {
    let registry = registry().await;
    let reversible = envelope();
    let a1 = store(
        &registry,
        &submission_of(PROVIDER_A, Some(reversible.clone())),
    )
    .await;
    let a2 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let (_, body) = ask(&registry, &[a1]).await;
    let request = body["requests"][0]["id"].as_str().unwrap().to_owned();
    let a = ProviderCaller::new(PROVIDER_A);
    call(&registry, &a, "GET", "/api/validation-requests", None).await;
    let correction = "Diagnose is C50.1 volgens het dossier";
    let (status, _) = call(
        &registry,
        &a,
        "POST",
        &format!("/api/validation-requests/{request}/answers"),
        Some(
            &json!({"answers": [{"recordId": a1, "answer": "correct", "correction": correction}]}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    call(&registry, &a, "GET", "/api/provider-records", None).await;
    call(
        &registry,
        &a,
        "POST",
        "/api/withdrawals",
        Some(&json!({"recordIds": [a2]})),
    )
    .await;

    let rows: Vec<Value> = registry
        .get("/api/validation-audit")
        .await
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = rows
        .iter()
        .rev()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "request.created",
            "request.listed",
            "answer.recorded",
            "records.listed",
            "record.withdrawn"
        ]
    );
    let answered = rows
        .iter()
        .find(|r| r["event"] == "answer.recorded")
        .unwrap();
    assert_eq!(
        (
            answered["provider"].as_str(),
            answered["person"].as_str(),
            answered["requestId"].as_str(),
            answered["recordId"].as_i64(),
            answered["answer"].as_str()
        ),
        (
            Some(PROVIDER_A),
            Some(pseudoform_testkit::ttp::CLINICIAN),
            Some(request.as_str()),
            Some(a1),
            Some("correct")
        )
    );
    // No ciphertext, key id or correction in the audit, neither over the API nor in the table.
    let text = serde_json::to_string(&rows).unwrap();
    let dump: String = sqlite(&registry)
        .prepare("SELECT * FROM validation_audit")
        .unwrap()
        .query_map([], |row| {
            Ok((0..8)
                .map(|i| {
                    row.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        &reversible.enc,
        &reversible.ct,
        &reversible.kid,
        &correction.to_owned(),
    ] {
        assert!(
            !text.contains(needle.as_str()) && !dump.contains(needle.as_str()),
            "{needle}"
        );
    }
}

#[tokio::test]
async fn cors_of_the_provider_routes_is_for_validation_origins_only() {
    let registry = registry().await;
    let preflight = |path: &'static str, origin: &'static str, method: &'static str| {
        registry
            .client
            .request(reqwest::Method::OPTIONS, registry.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,dpop,content-type",
            )
            .send()
    };
    for (path, method) in [
        ("/api/validation-requests", "GET"),
        ("/api/validation-requests/vr-x/answers", "POST"),
        ("/api/provider-records", "GET"),
        ("/api/withdrawals", "POST"),
    ] {
        let allowed = preflight(path, VALIDATION_ORIGIN, method).await.unwrap();
        let h = allowed.headers();
        assert_eq!(
            h.get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some(VALIDATION_ORIGIN),
            "{path}"
        );
        let headers = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("dpop"),
            "{headers}"
        );
        // The form's origin is not a validation origin.
        let form = preflight(path, ORIGIN_A, method).await.unwrap();
        assert!(
            form.headers().get("access-control-allow-origin").is_none(),
            "{path}"
        );
        let stranger = preflight(path, "https://evil.example", method)
            .await
            .unwrap();
        assert!(
            stranger
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
    // The submissions endpoint is the form origin's, not the validation page's.
    let form = preflight("/api/submissions", ORIGIN_A, "POST")
        .await
        .unwrap();
    assert_eq!(form.headers()["access-control-allow-origin"], ORIGIN_A);
    let page = preflight("/api/submissions", VALIDATION_ORIGIN, "POST")
        .await
        .unwrap();
    assert!(page.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_registry_page_asks_for_validation_with_a_plain_form() {
    let registry = registry().await;
    let a1 = store(&registry, &submission_of(PROVIDER_A, Some(envelope()))).await;
    let plain = store(&registry, &submission_of(PROVIDER_A, None)).await;
    let response = registry.get("/registry").await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<form method=\"post\" action=\"/registry/validation-requests\""),
        "{html}"
    );
    assert!(html.contains(&format!("name=\"record\" value=\"{a1}\"")));
    assert!(!html.contains(&format!("name=\"record\" value=\"{plain}\"")));
    assert!(html.contains("Validatie vragen") && html.contains("Validatieverzoeken"));
    assert!(!html.contains("<script") && !html.contains("style="));

    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |form: String| {
        no_redirect
            .post(registry.url("/registry/validation-requests"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    // Nothing ticked: back with the refusal, shown in Dutch.
    let refused = post("question=".into()).await.unwrap();
    assert_eq!(refused.status().as_u16(), 303);
    let location = refused.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/registry?fout=validation.empty"),
        "{location}"
    );
    let shown = registry.get(&location).await.text().await.unwrap();
    assert!(shown.contains("Kies eerst een of meer records"), "{shown}");
    // One ticked, with a question.
    let made = post(format!("record={a1}&question=Klopt+de+diagnose%3F"))
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 303);
    assert_eq!(made.headers()["location"], "/registry#validatieverzoeken");
    let html = registry.get("/registry").await.text().await.unwrap();
    assert!(html.contains("gevraagd, nog geen antwoord"), "{html}");
    assert!(html.contains(PROVIDER_A));
    assert_eq!(registry.rows_in("validation_requests"), 1);
}

#[test]
fn r_required_but_not_allowed_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = pseudoform_testkit::registry::config(dir.path(), DEFAULT_TYPES);
    config.required_types = vec!["R".into()];
    let err = pseudoform_registry::Receiver::from_config(&config).unwrap_err();
    assert!(format!("{err:#}").contains("required_types"), "{err:#}");
    config.allowed_types.push("R".into());
    let receiver = pseudoform_registry::Receiver::from_config(&config).unwrap();
    assert!(receiver.allows_reversible());
    // "R" is no OPRF type: it is not among the types the receiver evaluates.
    assert!(receiver.required_types().next().is_none());
}
