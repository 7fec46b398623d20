//! The registry over HTTP: a real server on 127.0.0.1:0, real SQLite in a
//! temporary directory, JWEs made the way the TTP makes them, and the
//! method's derivation vectors as the expected definitive pseudonyms.

#![cfg(test)]

use base64ct::Encoding as _;
use std::collections::BTreeMap;

use pseudoform_core::encoding::encode;
use pseudoform_protocol::registry::record_digest;
use pseudoform_protocol::unix_now;
use pseudoform_registry::store::Store;
use pseudoform_testkit::jose::*;
use pseudoform_testkit::keys::*;
use pseudoform_testkit::registry::*;
use pseudoform_testkit::ttp::{ORG_A, ORG_B, SCOPE_A};
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};

#[tokio::test]
async fn happy_path_stores_the_record_and_the_vector_pseudonym() {
    let registry = Registry::start().await;
    let v = vector("NGGV");
    // The vector's own blind and server key: the stored label must end with
    // the vector's pseudonym.
    let r = pseudoform_core::oprf::Blind::from_bytes(&v.blind).unwrap();
    let blinded = blind_vector(&v, &r);
    let subject = subject(&server_key_v1(), &blinded);
    assert_eq!(subject, format!("pseudonym:eval:{}", v.evaluated));
    let tp = package(
        &jwe(&eval_claims("NGGV", &subject), oaep256(), recipient_a()),
        &r,
    );
    let body = registry
        .accept(&submission(
            vec![("NGGV", tp)],
            &[("diagnose", "C50.9"), ("stadium", "II")],
        ))
        .await;
    let expected = format!("NGGV:v1:{}", v.pseudonym);
    assert_eq!(labels(&body), vec![expected.clone()]);
    let id = body["recordId"].as_i64().unwrap();

    let records = registry.records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["id"].as_i64(), Some(id));
    assert_eq!(records[0]["pseudonyms"], json!([expected]));
    assert_eq!(
        records[0]["data"],
        json!({"diagnose": "C50.9", "stadium": "II"})
    );
    assert!(records[0]["receivedAt"].as_str().unwrap().ends_with('Z'));

    // Nothing but labels and data: no blind factor, no JWE in the database.
    let store = Store::open(&registry.db()).unwrap();
    assert_eq!(store.records_with_label(&expected).unwrap(), vec![id]);
    let raw = std::fs::read(registry.db()).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(!raw.contains(&encode(&v.blind)));
    assert!(!raw.contains("eyJ"), "no JWE may be stored");
}

#[tokio::test]
async fn the_same_person_twice_gets_the_same_label() {
    let registry = Registry::start().await;
    let (s1, b1) = registry
        .submit(&submission(
            vec![("RGG", temporary("RGG"))],
            &[("bezoek", "1")],
        ))
        .await;
    let (s2, b2) = registry
        .submit(&submission(
            vec![("RGG", temporary("RGG"))],
            &[("bezoek", "2")],
        ))
        .await;
    assert_eq!((s1, s2), (201, 201));
    let expected = format!("RGG:v1:{}", vector("RGG").pseudonym);
    assert_eq!(labels(&b1), vec![expected.clone()]);
    assert_eq!(labels(&b2), vec![expected.clone()]);
    let store = Store::open(&registry.db()).unwrap();
    assert_eq!(store.records_with_label(&expected).unwrap().len(), 2);
}

#[tokio::test]
async fn a_record_jwe_with_three_types() {
    let registry = Registry::start().await;
    let (record_jwe, blinds) = fresh_record(&["NGGV", "RGG", "MRN"]);
    // The record JWE once, the blind factor of each type beside it.
    let body = registry
        .accept(&record_submission(
            &record_jwe,
            &refs(&blinds),
            &[("ok", "ja")],
        ))
        .await;
    // The receipt lists the labels in the record's order.
    assert_eq!(labels(&body), v1_labels(&["NGGV", "RGG", "MRN"]));
    assert_eq!(
        registry.records().await[0]["pseudonyms"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The same record JWE again: replay.
    registry
        .refuse(
            &record_submission(&record_jwe, &refs(&blinds), &[]),
            409,
            "pseudonym.replayed",
        )
        .await;
}

#[tokio::test]
async fn a_record_is_used_whole_with_one_blind_factor_per_evaluation() {
    let registry = Registry::start().await;
    let (record_jwe, blinds) = fresh_record(&["NGGV", "RGG"]);
    let (_, other) = fresh_record(&["C"]);
    let all = refs(&blinds);
    let nggv = vec![all[0]];
    let with_c = vec![all[0], all[1], (other[0].0, &other[0].1)];
    let refuse = |blinds: Vec<(&'static str, &pseudoform_core::oprf::Blind)>, code, field| {
        let submission = record_submission(&record_jwe, &blinds, &[]);
        let registry = &registry;
        async move {
            let before = registry.count().await;
            let (status, body) = registry.submit(&submission).await;
            assert_eq!(status, 422, "{body}");
            assert_eq!(body["code"], code, "{body}");
            assert_eq!(body["field"], field, "{body}");
            assert_eq!(registry.count().await, before);
        }
    };
    // RGG is evaluated but its blind factor is left out: a partial record.
    refuse(nggv, "pseudonyms.partialRecord", "blindFactors.RGG").await;
    // A blind factor for a type the record does not evaluate.
    refuse(with_c, "pseudonym.typeMismatch", "blindFactors.C").await;
    // The blind factors as given, sealed for this record.
    let sealed = |map: BTreeMap<String, String>| {
        let rec = record_digest(&record_jwe);
        sealed_submission(
            &record_jwe,
            seal(&map, &rec, recipient_a(), &recipient_a().kid),
            &[],
        )
    };
    let with = |code: &str, value: String| {
        let mut map = blind_map(&refs(&blinds));
        map.insert(code.into(), value);
        sealed(map)
    };
    // A blind factor that is no scalar.
    let (status, body) = registry.submit(&with("RGG", encode(&[0u8; 32]))).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            422,
            &json!("pseudonym.invalidBlind"),
            &json!("blindFactors.RGG")
        )
    );
    // Keys that are no type, or a type this registry may not receive; none at all.
    let (status, body) = registry
        .submit(&with("999990007", encode(&[1u8; 32])))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (422, &json!("type.unknown"), &json!("blindFactors"))
    );
    assert!(
        !body.to_string().contains("999990007"),
        "the key is not echoed"
    );
    registry
        .refuse(&with("B", encode(&[1u8; 32])), 403, "type.notAllowed")
        .await;
    registry
        .refuse(
            &record_submission(&record_jwe, &[], &[]),
            422,
            "pseudonyms.empty",
        )
        .await;
    // The refusals did not use the record up: whole, it is accepted.
    let body = registry
        .accept(&record_submission(&record_jwe, &refs(&blinds), &[]))
        .await;
    assert_eq!(labels(&body), v1_labels(&["NGGV", "RGG"]));
}

#[tokio::test]
async fn each_jwe_kind_has_its_shape_and_a_submission_exactly_one() {
    let registry = Registry::start().await;
    let (record_jwe, blinds) = fresh_record(&["NGGV"]);
    // A record JWE in the national packaging, a single evaluation as a record.
    let (status, body) = registry
        .submit(&submission(
            vec![("NGGV", package(&record_jwe, &blinds[0].1))],
            &[],
        ))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            422,
            &json!("pseudonym.wrongKind"),
            &json!("pseudonyms[0].temporaryPseudonym")
        )
    );
    let (claims, r) = fresh_eval("RGG");
    let single = jwe(&claims, oaep256(), recipient_a());
    let (status, body) = registry
        .submit(&record_submission(&single, &[("RGG", &r)], &[]))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (422, &json!("pseudonym.wrongKind"), &json!("record"))
    );
    // Both shapes at once, or a record without its blind factors.
    let mut both = record_submission(&record_jwe, &refs(&blinds), &[]);
    both.pseudonyms = Some(vec![]);
    let (status, body) = registry.submit(&both).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (422, &json!("submission.shape"), &json!("pseudonyms"))
    );
    let mut bare = record_submission(&record_jwe, &refs(&blinds), &[]);
    bare.encrypted_blind_factors = None;
    let (status, body) = registry.submit(&bare).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            422,
            &json!("submission.shape"),
            &json!("encryptedBlindFactors")
        )
    );
    // Single evaluations, one JWE each, combine (the national flow).
    let (c1, r1) = fresh_eval("NGGV");
    let (c2, r2) = fresh_eval("RGG");
    let singles = vec![
        ("NGGV", package(&jwe(&c1, oaep256(), recipient_a()), &r1)),
        ("RGG", package(&jwe(&c2, oaep256(), recipient_a()), &r2)),
    ];
    registry.accept(&submission(singles, &[])).await;
    registry
        .accept(&record_submission(&record_jwe, &refs(&blinds), &[]))
        .await;
    assert_eq!(registry.count().await, 2);
}

#[tokio::test]
async fn required_types_are_refused_when_missing_in_either_shape() {
    let registry = Registry::start_configured(DEFAULT_TYPES, |c| {
        c.required_types = vec!["RGG".into(), "NGGV".into()]
    })
    .await;
    let (record_jwe, blinds) = fresh_record(&["NGGV", "MRN"]);
    let (status, body) = registry
        .submit(&record_submission(&record_jwe, &refs(&blinds), &[]))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (422, &json!("pseudonyms.requiredMissing"), &json!("RGG"))
    );
    let national = submission(vec![("MRN", temporary("MRN"))], &[]);
    let (status, body) = registry.submit(&national).await;
    // The first missing one in the order of the Wkz table.
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (422, &json!("pseudonyms.requiredMissing"), &json!("NGGV"))
    );
    assert_eq!(registry.count().await, 0);
    let (record_jwe, blinds) = fresh_record(&["MRN", "RGG", "NGGV"]);
    registry
        .accept(&record_submission(&record_jwe, &refs(&blinds), &[]))
        .await;
    // A required type that is not allowed is a configuration error.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), &["NGGV"]);
    config.required_types = vec!["RGG".into()];
    let err = pseudoform_registry::receiver::Receiver::from_config(&config).unwrap_err();
    assert!(format!("{err:#}").contains("required_types"), "{err:#}");
}

#[tokio::test]
async fn list_values_arrive_whole_and_in_order() {
    let registry = Registry::start().await;
    let (record_jwe, blinds) = fresh_record(&["NGGV"]);
    let mut body =
        serde_json::to_value(record_submission(&record_jwe, &refs(&blinds), &[])).unwrap();
    body["data"] = json!({
        "complicaties": ["wondinfectie", "heroperatie", "<b>"],
        "geen": [],
        "diagnose": "Heupartrose",
    });
    let response = registry
        .client
        .post(registry.url("/api/submissions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let stored = &registry.records().await[0]["data"];
    assert_eq!(stored, &body["data"]);
    let html = registry.get("/registry").await.text().await.unwrap();
    assert!(
        html.contains(
            "<ul class=\"values\"><li>wondinfectie</li><li>heroperatie</li><li>&lt;b&gt;</li></ul>"
        ),
        "{html}"
    );
    // A list element is bounded like a value.
    let (record_jwe, blinds) = fresh_record(&["NGGV"]);
    let mut long =
        serde_json::to_value(record_submission(&record_jwe, &refs(&blinds), &[])).unwrap();
    long["data"] = json!({ "complicaties": ["ok", "x".repeat(4097)] });
    let response = registry
        .client
        .post(registry.url("/api/submissions"))
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], "data.valueTooLong");
}

#[tokio::test]
async fn the_pinned_jwe_algorithm_and_national_claims() {
    // A registry of the national service pins RSA-OAEP (SHA-1).
    let registry = Registry::start_configured(&["B", "NGGV", "sNGGV"], |c| {
        c.ttp_jwe_alg = pseudoform_registry::jwe::JweAlg::RsaOaep
    })
    .await;
    let k1 = server_key_v1();

    // pseudoform claims, RSA-OAEP (SHA-1).
    let v = vector("sNGGV");
    let r = random_blind();
    let claims = eval_claims("sNGGV", &subject(&k1, &blind_vector(&v, &r)));
    let tp = package(&jwe(&claims, oaep(), recipient_a()), &r);
    let body = registry.accept(&one("sNGGV", tp)).await;
    assert_eq!(labels(&body), v1_labels(&["sNGGV"]));

    // Exactly the national service's claims (no jti, key_version or
    // pseudonym_type: type B), RSA-OAEP: refused, the registry never
    // guesses the key version of subject.
    let v = vector("B");
    let r = random_blind();
    let mut national = national_claims(&subject(&k1, &blind_vector(&v, &r)));
    let unversioned = package(&jwe(&national, oaep(), recipient_a()), &r);
    registry
        .refuse(&one("B", unversioned), 422, "pseudonym.keyVersionMissing")
        .await;
    // The national claims with the version named, as pseudoform's TTP
    // writes them for a national recipient.
    national["key_version"] = json!(1);
    let national_jwe = jwe(&national, oaep(), recipient_a());
    let tp = package(&national_jwe, &r);
    let body = registry.accept(&one("B", tp.clone())).await;
    assert_eq!(labels(&body), v1_labels(&["B"]));
    // Without jti, the JWE's hash guards against its replay; the same
    // submission again is a retry, answered as the first time.
    assert_eq!(registry.accept(&one("B", tp.clone())).await, body);
    registry
        .refuse(
            &submission(vec![("B", tp)], &[("diagnose", "other")]),
            409,
            "pseudonym.replayed",
        )
        .await;

    // The other algorithm than the pinned one, and a JWE without kid, are
    // refused before any RSA.
    let r = random_blind();
    let claims = eval_claims("NGGV", &subject(&k1, &blind_vector(&vector("NGGV"), &r)));
    let other_alg = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    registry
        .refuse(
            &one("NGGV", other_alg),
            422,
            "pseudonym.unsupportedAlgorithm",
        )
        .await;
    let no_kid = package(&jwe_with_kid(&claims, oaep(), rotated_a(), None), &r);
    registry
        .refuse(&one("NGGV", no_kid), 422, "pseudonym.kidMissing")
        .await;
    // And the default registry (RSA-OAEP-256) refuses RSA-OAEP.
    let default = Registry::start().await;
    let (claims, r) = fresh_eval("NGGV");
    default
        .refuse(
            &one("NGGV", package(&jwe(&claims, oaep(), recipient_a()), &r)),
            422,
            "pseudonym.unsupportedAlgorithm",
        )
        .await;
}

#[tokio::test]
async fn rotated_keys_are_selected_by_kid() {
    let registry = Registry::start().await;
    let r = random_blind();
    let claims = eval_claims(
        "GG",
        &subject(&server_key_v1(), &blind_vector(&vector("GG"), &r)),
    );
    let tp = package(&jwe(&claims, oaep256(), rotated_a()), &r);
    let body = registry.accept(&one("GG", tp)).await;
    assert_eq!(labels(&body), v1_labels(&["GG"]));
}

/// A change to the claims of a JWE.
type ClaimsEdit = Box<dyn Fn(&mut Value)>;

fn flip_char(jwe: &str, part: usize) -> String {
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let p = &mut parts[part];
    let mid = p.len() / 2;
    let c = p.as_bytes()[mid];
    let replacement = if c == b'A' { "B" } else { "A" };
    p.replace_range(mid..=mid, replacement);
    parts.join(".")
}

#[tokio::test]
async fn tampered_and_foreign_jwes_are_refused_and_nothing_is_stored() {
    let registry = Registry::start().await;
    let v = vector("NGGV");
    let r = random_blind();
    let claims = eval_claims("NGGV", &subject(&server_key_v1(), &blind_vector(&v, &r)));
    let good = jwe(&claims, oaep256(), recipient_a());
    for part in [1, 2, 3, 4] {
        let tp = package(&flip_char(&good, part), &r);
        registry
            .refuse(&one("NGGV", tp), 422, "pseudonym.undecryptable")
            .await;
    }
    // Encrypted to another recipient's key: its kid is unknown here; under
    // ours as a lie it does not decrypt.
    let foreign = one("NGGV", package(&jwe(&claims, oaep256(), recipient_b()), &r));
    registry.refuse(&foreign, 422, "pseudonym.kidUnknown").await;
    let lying = jwe_with_kid(&claims, oaep256(), recipient_b(), Some(&recipient_a().kid));
    registry
        .refuse(
            &one("NGGV", package(&lying, &r)),
            422,
            "pseudonym.undecryptable",
        )
        .await;
    // Not a package at all.
    let refused = one("NGGV", "bm90IGEgcGFja2FnZQ==".into());
    registry.refuse(&refused, 422, "pseudonym.malformed").await;
    // The good JWE was never marked used by the refusals.
    registry.accept(&one("NGGV", package(&good, &r))).await;
}

#[tokio::test]
async fn claims_for_another_recipient_expired_or_future_are_refused() {
    let registry = Registry::start().await;
    let v = vector("C");
    let k1 = server_key_v1();
    let cases: Vec<(ClaimsEdit, &str)> = vec![
        (
            Box::new(|c| c["aud"] = json!(ORG_B)),
            "pseudonym.wrongRecipient",
        ),
        (
            Box::new(|c| c["scope"] = json!("kwaliteitsregistratie-b")),
            "pseudonym.wrongRecipient",
        ),
        (
            Box::new(|c| {
                c["iat"] = json!(unix_now() - 400);
                c["exp"] = json!(unix_now() - 100);
            }),
            "pseudonym.expired",
        ),
        (
            Box::new(|c| {
                c["iat"] = json!(unix_now() + 120);
                c["exp"] = json!(unix_now() + 420);
            }),
            "pseudonym.notYetValid",
        ),
        (
            Box::new(|c| c["pseudonym_type"] = json!("RGG")),
            "pseudonym.typeMismatch",
        ),
        (
            Box::new(|c| c["subject"] = json!("pseudonym:eval:AAAA")),
            "pseudonym.invalidEvaluation",
        ),
        (Box::new(|c| c["aud"] = json!(7)), "pseudonym.invalidClaims"),
        (
            Box::new(|c| {
                let bare = c["subject"].as_str().unwrap()["pseudonym:eval:".len()..].to_owned();
                c["subject"] = json!(bare);
            }),
            "pseudonym.invalidEvaluation",
        ),
    ];
    for (edit, code) in cases {
        let r = random_blind();
        let mut claims = eval_claims("C", &subject(&k1, &blind_vector(&v, &r)));
        edit(&mut claims);
        let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
        registry.refuse(&one("C", tp), 422, code).await;
    }
    // Within the 30 s skew is fine.
    let r = random_blind();
    let mut claims = eval_claims("C", &subject(&k1, &blind_vector(&v, &r)));
    claims["exp"] = json!(unix_now() - 10);
    claims["iat"] = json!(unix_now() - 310);
    let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    registry.accept(&one("C", tp)).await;

    // A zero blind factor.
    let claims = eval_claims("C", &subject(&k1, &blind_vector(&v, &random_blind())));
    let tp = pseudoform_protocol::package::TemporaryPseudonym {
        evaluated_output: jwe(&claims, oaep256(), recipient_a()),
        blind_factor: encode(&[0u8; 32]),
    }
    .encode();
    registry
        .refuse(&one("C", tp), 422, "pseudonym.invalidBlind")
        .await;
}

#[tokio::test]
async fn replay_is_refused_and_a_failed_submission_stores_nothing() {
    let registry = Registry::start().await;
    let tp = temporary("NGG");
    let first = registry.accept(&one("NGG", tp.clone())).await;
    // A retry (the answer was lost) gets the same receipt, stores nothing.
    assert_eq!(registry.accept(&one("NGG", tp.clone())).await, first);
    assert_eq!(registry.count().await, 1);
    // The JWE in another submission is a replay.
    registry
        .refuse(
            &submission(vec![("NGG", tp)], &[("diagnose", "C50.9")]),
            409,
            "pseudonym.replayed",
        )
        .await;

    // Two pseudonyms, the second tampered: the first's JWE is not used up.
    let first = temporary("sNGG");
    let r = random_blind();
    let claims = eval_claims(
        "GG",
        &subject(&server_key_v1(), &blind_vector(&vector("GG"), &r)),
    );
    let second = package(&flip_char(&jwe(&claims, oaep256(), recipient_a()), 3), &r);
    let pseudonyms_before = Store::open(&registry.db())
        .unwrap()
        .pseudonym_count()
        .unwrap();
    registry
        .refuse(
            &submission(vec![("sNGG", first.clone()), ("GG", second)], &[]),
            422,
            "pseudonym.undecryptable",
        )
        .await;
    assert_eq!(
        Store::open(&registry.db())
            .unwrap()
            .pseudonym_count()
            .unwrap(),
        pseudonyms_before
    );
    registry.accept(&one("sNGG", first)).await;
}

#[tokio::test]
async fn envelope_types_and_data_are_checked() {
    let registry = Registry::start().await;
    // B is not allowed for this registry (it may not process the BSN).
    registry
        .refuse(&one("B", temporary("NGGV")), 403, "type.notAllowed")
        .await;
    registry
        .refuse(&one("XYZ", temporary("NGGV")), 422, "type.unknown")
        .await;
    registry
        .refuse(
            &submission(
                vec![("NGGV", temporary("NGGV")), ("NGGV", temporary("NGGV"))],
                &[],
            ),
            422,
            "type.duplicate",
        )
        .await;
    registry
        .refuse(&submission(vec![], &[]), 422, "pseudonyms.empty")
        .await;
    let too_many = (0..11).map(|_| ("NGGV", temporary("NGGV"))).collect();
    registry
        .refuse(&submission(too_many, &[]), 422, "pseudonyms.tooMany")
        .await;

    for (key, code) in [
        ("bsn", "data.identifyingField"),
        ("birthName", "data.identifyingField"),
        ("Birth_Date", "data.identifyingField"),
        ("bad key", "data.invalidFieldName"),
    ] {
        let (status, body) = registry
            .submit(&submission(
                vec![("NGGV", temporary("NGGV"))],
                &[(key, "x")],
            ))
            .await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{body}");
        // The message never echoes the value.
        assert!(!body.to_string().contains("\"x\""));
    }
    let long = "a".repeat(4097);
    registry
        .refuse(
            &submission(vec![("NGGV", temporary("NGGV"))], &[("opmerking", &long)]),
            422,
            "data.valueTooLong",
        )
        .await;

    let mut wrong = one("NGGV", temporary("NGGV"));
    wrong.recipient_organization = ORG_B.into();
    registry.refuse(&wrong, 422, "recipient.mismatch").await;
    let mut wrong = one("NGGV", temporary("NGGV"));
    wrong.recipient_scope = "andere".into();
    registry.refuse(&wrong, 422, "recipient.mismatch").await;
    let mut wrong = one("NGGV", temporary("NGGV"));
    wrong.method_version = 2;
    registry.refuse(&wrong, 422, "method.unsupported").await;
    assert_eq!(registry.count().await, 0);
}

#[tokio::test]
async fn malformed_and_huge_bodies_are_4xx_never_5xx() {
    let registry = Registry::start().await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        registry
            .client
            .post(registry.url("/api/submissions"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"{not json".to_vec(), "application/json", 422, "submission.malformed"),
        (b"[]".to_vec(), "application/json", 422, "submission.malformed"),
        (b"{}".to_vec(), "application/json", 422, "submission.malformed"),
        (
            br#"{"recipientOrganization":"x","recipientScope":"y","methodVersion":"1","pseudonyms":[],"data":{}}"#.to_vec(),
            "application/json",
            422,
            "submission.malformed",
        ),
        (
            br#"{"recipientOrganization":"x","recipientScope":"y","methodVersion":1,"pseudonyms":[],"data":{"a":1}}"#.to_vec(),
            "application/json",
            422,
            "submission.malformed",
        ),
        (
            br#"{"recipientOrganization":"x","recipientScope":"y","methodVersion":1,"pseudonyms":[],"data":{},"bsn":"1"}"#.to_vec(),
            "application/json",
            422,
            "submission.malformed",
        ),
        (vec![0xff, 0xfe, 0x00], "application/json", 422, "submission.malformed"),
        (b"{}".to_vec(), "text/plain", 415, "submission.contentType"),
        (
            format!("{{\"data\":\"{}\"}}", "a".repeat(300 * 1024)).into_bytes(),
            "application/json",
            413,
            "submission.tooLarge",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"].as_str(), Some(code), "{body}");
        assert!(body["message"].is_string() && body["detail"].is_string());
    }
    let response = registry.get("/api/nothing").await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(registry.count().await, 0);
}

#[tokio::test]
async fn extra_versions_are_stored_as_older_labels() {
    let registry = Registry::start().await;
    let v = vector("NGGV");
    let (k1, k2) = (server_key_v1(), server_key_v2());
    let r = random_blind();
    let blinded = blind_vector(&v, &r);
    let mut claims = eval_claims("NGGV", &subject(&k2, &blinded));
    claims["key_version"] = json!(2);
    claims["extra_versions"] = json!({ "1": encode(&k1.evaluate(&blinded).unwrap()) });
    let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    let body = registry.accept(&one("NGGV", tp)).await;
    let v2 = format!("NGGV:v2:{}", expected_pseudonym(&v, &k2));
    let v1 = format!("NGGV:v1:{}", v.pseudonym);
    assert_eq!(labels(&body), vec![v2.clone()]);
    assert_eq!(registry.records().await[0]["pseudonyms"], json!([v2, v1]));

    // The national form without key_version is refused, never guessed
    // (max(extra_versions) + 1 would be right here, by luck); with it, the
    // subject is stored under the version it names.
    let r = random_blind();
    let blinded = blind_vector(&v, &r);
    let mut national = national_claims(&subject(&k2, &blinded));
    national["extra_versions"] = json!({ "1": encode(&k1.evaluate(&blinded).unwrap()) });
    national["pseudonym_type"] = json!("NGGV");
    let tp = package(&jwe(&national, oaep256(), recipient_a()), &r);
    registry
        .refuse(&one("NGGV", tp), 422, "pseudonym.keyVersionMissing")
        .await;
    national["key_version"] = json!(2);
    let tp = package(&jwe(&national, oaep256(), recipient_a()), &r);
    let body = registry.accept(&one("NGGV", tp)).await;
    assert_eq!(labels(&body), vec![v2]);
}

#[tokio::test]
async fn the_registry_page_lists_labels_and_escapes_data() {
    let registry = Registry::start().await;
    registry
        .accept(&submission(
            vec![("MRN", temporary("MRN"))],
            &[("opmerking", "<script>alert('x')</script> & \"meer\"")],
        ))
        .await;
    let response = registry.get("/registry").await;
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"));
    let html = response.text().await.unwrap();
    assert!(html.contains("Registratie: ontvangen records"));
    assert!(html.contains(&format!("MRN:v1:{}", vector("MRN").pseudonym)));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;meer&quot;"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("style="));
    let css = registry.get("/registry/registry.css").await;
    assert_eq!(css.status().as_u16(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn static_files_form_config_and_health() {
    let registry = Registry::start().await;
    let get = |path: &str| registry.client.get(registry.url(path)).send();

    let index = get("/").await.unwrap();
    assert_eq!(index.status().as_u16(), 200);
    let h = index.headers();
    assert_eq!(
        h["content-security-policy"].to_str().unwrap(),
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' http://127.0.0.1:9; object-src 'none'; base-uri 'none'; form-action 'self'"
    );
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");

    let wasm = get("/pseudoform_bg.wasm").await.unwrap();
    assert_eq!(wasm.status().as_u16(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");

    let config: Value = get("/api/form-config").await.unwrap().json().await.unwrap();
    assert_eq!(
        config,
        json!({
            "ttp": "http://127.0.0.1:9/",
            "recipientOrganization": ORG_A,
            "recipientScope": SCOPE_A,
            "provider": "ura:00000001",
            "accessToken": "demo-provider-token",
            "types": DEFAULT_TYPES,
            "ttpSigningKeys": [ttp_signing().kid],
        })
    );
    let health: Value = get("/health").await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({"status": "ok"}));
    assert_eq!(get("/missing.html").await.unwrap().status().as_u16(), 404);
}

#[tokio::test]
async fn the_identity_frame_is_named_in_the_form_config_and_allowed_by_the_csp() {
    let frame = "http://127.0.0.1:8475/frame/";
    let registry = Registry::start_configured(DEFAULT_TYPES, |c| {
        c.frame_url = Some(frame.into());
    })
    .await;
    let index = registry.get("/").await;
    assert_eq!(index.status().as_u16(), 200);
    assert_eq!(
        index.headers()["content-security-policy"].to_str().unwrap(),
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' http://127.0.0.1:9; frame-src http://127.0.0.1:8475; object-src 'none'; base-uri 'none'; form-action 'self'"
    );
    let config: Value = registry.get("/api/form-config").await.json().await.unwrap();
    assert_eq!(config["frame"], frame);
    assert_eq!(config["ttp"], "http://127.0.0.1:9/");
}

#[tokio::test]
async fn only_claims_signed_by_a_pinned_ttp_key_are_accepted() {
    let registry = Registry::start().await;

    // Encrypted to the registry but not signed: what anybody with the
    // registry's public key can make.
    let (claims, r) = fresh_eval("NGGV");
    let tp = package(&jwe_unsigned(&claims, oaep256(), recipient_a()), &r);
    registry
        .refuse(&one("NGGV", tp), 422, "pseudonym.unsigned")
        .await;

    // Signed by another key: under its own kid, and under the pinned kid.
    let forger = forger_signing();
    for kid in [forger.kid.as_str(), ttp_signing().kid.as_str()] {
        let (claims, r) = fresh_eval("NGGV");
        let tp = package(&jwe_signed_by(&claims, forger, kid, recipient_a()), &r);
        registry
            .refuse(&one("NGGV", tp), 422, "pseudonym.badSignature")
            .await;
    }

    // `alg: none`, a signature over other claims, a JWS that is not one.
    let (claims, r) = fresh_eval("NGGV");
    let header = base64ct::Base64UrlUnpadded::encode_string(
        format!(r#"{{"alg":"none","kid":"{}"}}"#, ttp_signing().kid).as_bytes(),
    );
    let body = base64ct::Base64UrlUnpadded::encode_string(&serde_json::to_vec(&claims).unwrap());
    let signed = sign_with(&claims, ttp_signing(), &ttp_signing().kid);
    let signature = signed.rsplit('.').next().unwrap();
    let (other, _) = fresh_eval("NGGV");
    let other_signed = sign_with(&other, ttp_signing(), &ttp_signing().kid);
    let (other_header, _) = other_signed.split_once('.').unwrap();
    for plaintext in [
        format!("{header}.{body}."),
        format!("{header}.{body}.{signature}"),
        format!(
            "{other_header}.{body}.{}",
            other_signed.rsplit('.').next().unwrap()
        ),
        "not a jws".to_owned(),
    ] {
        let jwe = encrypt_plaintext(
            plaintext.as_bytes(),
            "JWT",
            oaep256(),
            recipient_a(),
            Some(&recipient_a().kid),
        );
        let refused = one("NGGV", package(&jwe, &r));
        registry
            .refuse(&refused, 422, "pseudonym.badSignature")
            .await;
    }

    // Correctly signed: accepted.
    let (claims, r) = fresh_eval("NGGV");
    let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    let body = registry.accept(&one("NGGV", tp)).await;
    assert_eq!(labels(&body), v1_labels(&["NGGV"]));
}

#[tokio::test]
async fn accept_unsigned_takes_the_national_unsigned_jwe_and_still_checks_signatures() {
    let registry = Registry::start_configured(&["B", "NGGV"], |c| {
        c.accept_unsigned = true;
        c.ttp_jwe_alg = pseudoform_registry::jwe::JweAlg::RsaOaep;
    })
    .await;
    let k1 = server_key_v1();
    // The national reference service's JWE: bare claims, RSA-OAEP, no jti.
    let v = vector("B");
    let r = random_blind();
    let mut national = national_claims(&subject(&k1, &blind_vector(&v, &r)));
    national["key_version"] = json!(1);
    let tp = package(&jwe_unsigned(&national, oaep(), recipient_a()), &r);
    let body = registry.accept(&one("B", tp)).await;
    assert_eq!(labels(&body), v1_labels(&["B"]));
    // A signed one that does not verify is refused all the same.
    let (claims, r) = fresh_eval("NGGV");
    let forger = forger_signing();
    let jws = sign_with(&claims, forger, &forger.kid);
    let tp = package(
        &encrypt_plaintext(
            jws.as_bytes(),
            "JWT",
            oaep(),
            recipient_a(),
            Some(&recipient_a().kid),
        ),
        &r,
    );
    registry
        .refuse(&one("NGGV", tp), 422, "pseudonym.badSignature")
        .await;
}

#[test]
fn a_registry_without_pinned_keys_must_say_it_accepts_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), DEFAULT_TYPES);
    config.ttp_signing_keys.clear();
    let err = pseudoform_registry::receiver::Receiver::from_config(&config).unwrap_err();
    assert!(format!("{err:#}").contains("ttp_signing_keys"), "{err:#}");
    config.accept_unsigned = true;
    assert!(pseudoform_registry::receiver::Receiver::from_config(&config).is_ok());
    // A pinned key that is not a P-256 public key is refused.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, &recipient_a().public_pem).unwrap();
    config.ttp_signing_keys = vec![bad];
    assert!(pseudoform_registry::receiver::Receiver::from_config(&config).is_err());
}

#[tokio::test]
async fn version_and_lifetime_are_checked() {
    let registry = Registry::start().await;
    let cases: Vec<(ClaimsEdit, &str)> = vec![
        (
            Box::new(|c| c["version"] = json!("1.0")),
            "pseudonym.versionUnsupported",
        ),
        (
            Box::new(|c| c["version"] = json!("2")),
            "pseudonym.versionUnsupported",
        ),
        (
            Box::new(|c| c["exp"] = json!(c["iat"].as_i64().unwrap() + 3600)),
            "pseudonym.lifetimeTooLong",
        ),
        (
            Box::new(|c| c["exp"] = json!(c["iat"].as_i64().unwrap() + 300 + 31)),
            "pseudonym.lifetimeTooLong",
        ),
    ];
    for (edit, code) in cases {
        let (mut claims, r) = fresh_eval("C");
        edit(&mut claims);
        let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
        registry.refuse(&one("C", tp), 422, code).await;
    }
    // A record JWE is checked the same way.
    let r = random_blind();
    let mut claims = record_claims(&[(
        "C",
        subject(&server_key_v1(), &blind_vector(&vector("C"), &r)),
    )]);
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + 86_400);
    let record_jwe = jwe(&claims, oaep256(), recipient_a());
    registry
        .refuse(
            &record_submission(&record_jwe, &[("C", &r)], &[]),
            422,
            "pseudonym.lifetimeTooLong",
        )
        .await;
    // 300 s plus the skew is the longest accepted.
    let (mut claims, r) = fresh_eval("C");
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + 330);
    let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    registry.accept(&one("C", tp)).await;
}

#[tokio::test]
async fn dutch_identifying_field_names_are_refused() {
    let registry = Registry::start().await;
    for name in [
        "geboortedatum",
        "Achter_Naam",
        "huisnummer-toevoeging",
        "BSN",
    ] {
        registry
            .refuse(
                &submission(vec![("NGGV", temporary("NGGV"))], &[(name, "x")]),
                422,
                "data.identifyingField",
            )
            .await;
    }
}

/// A retry long after the JWE expired (the registry was down, the form
/// kept the submission): the same receipt, nothing stored twice; a
/// submission that was never stored is refused as expired. The receiver's
/// clock is given (`receive_at`), so no test waits out a JWE's lifetime.
#[test]
fn a_retry_after_expiry_gets_the_first_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let config = pseudoform_testkit::registry::config(dir.path(), DEFAULT_TYPES);
    let receiver = pseudoform_registry::Receiver::from_config(&config).unwrap();
    let now = pseudoform_protocol::unix_now();
    let stored = one("NGGV", temporary("NGGV"));
    let receipt = receiver.receive_at(stored.clone(), now).unwrap();
    let later = now + 3600;
    assert_eq!(receiver.receive_at(stored, later).unwrap(), receipt);
    assert_eq!(receiver.store().record_count().unwrap(), 1);
    let never_stored = one("NGGV", temporary("NGGV"));
    assert!(matches!(
        receiver.receive_at(never_stored, later),
        Err(pseudoform_registry::ReceiveError::Expired {
            at: pseudoform_registry::error::At::Pseudonym(0)
        })
    ));
    assert_eq!(receiver.store().record_count().unwrap(), 1);
}

/// Issue 10, item 1: a JWE with an empty IV (anyone can build one with the
/// registry's public key) once reached an assertion under josekit and, with
/// the old `panic = "abort"` profile, ended the registry. Its parts are now
/// checked before any cryptography: a 422 like any undecryptable JWE, and
/// the registry goes on serving.
#[tokio::test]
async fn malformed_jwe_parts_are_refused_before_any_crypto() {
    let registry = Registry::start().await;
    let r = random_blind();
    let claims = eval_claims(
        "GG",
        &subject(&server_key_v1(), &blind_vector(&vector("GG"), &r)),
    );
    let good = jwe(&claims, oaep256(), recipient_a());
    let with_part = |index: usize, part: String| {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[index] = part;
        parts.join(".")
    };
    let b64 = |n: usize| base64ct::Base64UrlUnpadded::encode_string(&vec![9u8; n]);
    for bad in [
        with_part(2, String::new()),           // the empty IV of the issue
        with_part(2, b64(11)),                 // IV one byte short
        with_part(2, b64(64)),                 // IV far too long
        with_part(4, b64(15)),                 // tag one byte short
        with_part(4, String::new()),           // no tag
        with_part(1, b64(255)),                // encrypted key shorter than the modulus
        with_part(1, String::new()),           // no encrypted key
        with_part(3, String::new()),           // no ciphertext
        with_part(2, format!("{}=", b64(12))), // padded
    ] {
        registry
            .refuse(
                &one("GG", package(&bad, &r)),
                422,
                "pseudonym.undecryptable",
            )
            .await;
    }
    // Still serving, and the untouched JWE is accepted.
    registry.accept(&one("GG", package(&good, &r))).await;
}

#[tokio::test]
async fn blind_factors_travel_encrypted_to_the_registry_and_bound_to_their_record() {
    let registry = Registry::start().await;
    let (record_jwe, blinds) = fresh_record(&["NGGV", "RGG"]);
    let (other_jwe, other_blinds) = fresh_record(&["NGGV", "RGG"]);
    // In the clear: refused (finding 4), nothing stored, the record not used up.
    let clear = clear_record_submission(&record_jwe, &refs(&blinds), &[]);
    let (status, body) = registry.submit(&clear).await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            422,
            &json!("blindFactors.notEncrypted"),
            &json!("blindFactors")
        )
    );
    // The factors of another record, sealed for it, beside this record.
    let foreign = seal(
        &blind_map(&refs(&other_blinds)),
        &record_digest(&other_jwe),
        recipient_a(),
        &recipient_a().kid,
    );
    let (status, body) = registry
        .submit(&sealed_submission(&record_jwe, foreign, &[]))
        .await;
    assert_eq!(
        (status, &body["code"], &body["field"]),
        (
            422,
            &json!("blindFactors.recordMismatch"),
            &json!("encryptedBlindFactors")
        )
    );
    // This record's factors bound to another record (`rec`) are refused too.
    let rebound = seal(
        &blind_map(&refs(&blinds)),
        &record_digest(&other_jwe),
        recipient_a(),
        &recipient_a().kid,
    );
    registry
        .refuse(
            &sealed_submission(&record_jwe, rebound, &[]),
            422,
            "blindFactors.recordMismatch",
        )
        .await;
    // Sealed to another key, under an unknown kid, another alg, no kid, or
    // not JSON of the blind factors.
    let rec = record_digest(&record_jwe);
    let map = blind_map(&refs(&blinds));
    let plaintext = serde_json::to_vec(&json!({"blindFactors": map, "rec": rec})).unwrap();
    for (encrypted, code) in [
        (
            seal(&map, &rec, recipient_b(), &recipient_b().kid),
            "pseudonym.kidUnknown",
        ),
        (
            seal(&map, &rec, recipient_b(), &recipient_a().kid),
            "pseudonym.undecryptable",
        ),
        (
            encrypt_plaintext(
                &plaintext,
                "application/json",
                oaep(),
                recipient_a(),
                Some(&recipient_a().kid),
            ),
            "pseudonym.unsupportedAlgorithm",
        ),
        (
            encrypt_plaintext(
                &plaintext,
                "application/json",
                oaep256(),
                recipient_a(),
                None,
            ),
            "pseudonym.kidMissing",
        ),
        (
            encrypt_plaintext(
                b"{\"blindFactors\":{}}",
                "application/json",
                oaep256(),
                recipient_a(),
                Some(&recipient_a().kid),
            ),
            "blindFactors.malformed",
        ),
        (
            encrypt_plaintext(
                &plaintext,
                "JWT",
                oaep256(),
                recipient_a(),
                Some(&recipient_a().kid),
            ),
            "blindFactors.malformed",
        ),
    ] {
        let (status, body) = registry
            .submit(&sealed_submission(&record_jwe, encrypted, &[]))
            .await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{body}");
        assert_eq!(body["field"], "encryptedBlindFactors", "{body}");
    }
    assert_eq!(registry.count().await, 0);
    // Sealed for this record: accepted, the definitive pseudonyms stored.
    let body = registry
        .accept(&record_submission(&record_jwe, &refs(&blinds), &[]))
        .await;
    assert_eq!(labels(&body), v1_labels(&["NGGV", "RGG"]));
    let listed = &registry.records().await[0];
    let (_, claims) = open_jwe(&record_jwe, recipient_a(), oaep256());
    assert_eq!(listed["ttpJti"], claims["jti"], "{listed}");
    // A registry in development mode takes them in the clear.
    let dev =
        Registry::start_configured(DEFAULT_TYPES, |c| c.development_clear_blind_factors = true)
            .await;
    let body = dev.accept(&clear).await;
    assert_eq!(labels(&body), v1_labels(&["NGGV", "RGG"]));
}

#[test]
fn every_jwe_is_checked_before_the_first_rsa_and_a_record_costs_two() {
    use pseudoform_core::PseudonymType;
    use pseudoform_registry::jwe::{KeyRing, SignatureKeys};
    use pseudoform_registry::Receiver;
    let mut keys = KeyRing::new();
    keys.add_pem(recipient_a().private_pem.as_bytes(), None)
        .unwrap();
    keys.add_pem(rotated_a().private_pem.as_bytes(), None)
        .unwrap();
    let mut pins = SignatureKeys::new();
    pins.add_pem(ttp_signing().public_pem.as_bytes()).unwrap();
    let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
    let receiver = Receiver::new(
        ORG_A,
        SCOPE_A,
        &[PseudonymType::Nggv, PseudonymType::Rgg, PseudonymType::Mrn],
        keys,
        store,
    )
    .unwrap()
    .with_ttp_signing_keys(pins);
    let (record_jwe, blinds) = fresh_record(&["NGGV", "RGG"]);
    let rec = record_digest(&record_jwe);
    let map = blind_map(&refs(&blinds));
    let code = |s| receiver.receive(s).unwrap_err().code();
    // A record whose ciphertext is damaged (RSA would find it out) beside
    // blind factors under an unknown kid or another alg: refused for the
    // blind factors, without one RSA decryption.
    let damaged = flip_char(&record_jwe, 3);
    let unknown = seal(&map, &rec, recipient_b(), &recipient_b().kid);
    assert_eq!(
        code(sealed_submission(&damaged, unknown, &[])),
        "pseudonym.kidUnknown"
    );
    let plaintext = serde_json::to_vec(&json!({"blindFactors": map, "rec": rec})).unwrap();
    let sha1 = encrypt_plaintext(
        &plaintext,
        "application/json",
        oaep(),
        recipient_a(),
        Some(&recipient_a().kid),
    );
    assert_eq!(
        code(sealed_submission(&damaged, sha1, &[])),
        "pseudonym.unsupportedAlgorithm"
    );
    // A record under an unknown kid beside good blind factors: no RSA either.
    let foreign_record = jwe(&record_claims(&[]), oaep256(), recipient_b());
    let good = seal(
        &map,
        &record_digest(&foreign_record),
        recipient_a(),
        &recipient_a().kid,
    );
    assert_eq!(
        code(sealed_submission(&foreign_record, good, &[])),
        "pseudonym.kidUnknown"
    );
    assert_eq!(receiver.rsa_decryptions(), 0);
    // Blind factors of another record: one RSA (theirs), never the record's.
    let (other_jwe, _) = fresh_record(&["NGGV"]);
    let foreign = seal(
        &map,
        &record_digest(&other_jwe),
        recipient_a(),
        &recipient_a().kid,
    );
    assert_eq!(
        code(sealed_submission(&record_jwe, foreign, &[])),
        "blindFactors.recordMismatch"
    );
    assert_eq!(receiver.rsa_decryptions(), 1);
    // A good record: exactly two, whichever of the registry's two keys.
    let ok = record_submission(&record_jwe, &refs(&blinds), &[]);
    assert_eq!(
        receiver.receive(ok).unwrap().pseudonyms,
        v1_labels(&["NGGV", "RGG"])
    );
    assert_eq!(receiver.rsa_decryptions(), 3);
    // The national shape: one per type.
    let singles = vec![("NGGV", temporary("NGGV")), ("RGG", temporary("RGG"))];
    receiver.receive(submission(singles, &[])).unwrap();
    assert_eq!(receiver.rsa_decryptions(), 5);
}

#[cfg(unix)]
#[test]
fn registry_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), DEFAULT_TYPES);
    // A private key that group or others can read is refused, naming the mode only.
    let key = config.keys[0].path.clone().unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = format!(
        "{:#}",
        pseudoform_registry::Receiver::from_config(&config).unwrap_err()
    );
    assert!(err.contains("owner-only") && err.contains("640"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // A new database and its -wal and -shm are created owner-only; an old
    // one others could read is made owner-only.
    let receiver = pseudoform_registry::Receiver::from_config(&config).unwrap();
    let (record_jwe, blinds) = fresh_record(&["NGGV"]);
    receiver
        .receive(record_submission(&record_jwe, &refs(&blinds), &[]))
        .unwrap();
    let db = config.database.clone();
    let wal = db.with_file_name("registry.sqlite-wal");
    let shm = db.with_file_name("registry.sqlite-shm");
    for file in [&db, &wal, &shm] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    drop(receiver);
    config.database = dir.path().join("old.sqlite");
    std::fs::write(&config.database, b"").unwrap();
    std::fs::set_permissions(&config.database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _receiver = pseudoform_registry::Receiver::from_config(&config).unwrap();
    assert_eq!(mode(&config.database), 0o600);
}
