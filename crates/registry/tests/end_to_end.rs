//! The whole chain with the real reference TTP (`pseudoform-ttp` on
//! loopback): the browser's blinding (pseudoform-core) → the TTP's
//! `POST /v1/evaluate` and `POST /oprf/eval` → the registry → a key rotation
//! at the TTP → `pseudoform-registry`'s rekey through the TTP's
//! `POST /v1/rekey`.
//!
//! The TTP's key version 1 is the derivation vectors' server key, so the
//! stored labels must be exactly the vectors' pseudonyms. The TTP writes the
//! fixed kid [`KID_A`] in its JWEs for the registry, which the registry's
//! configuration names for its key.

#![cfg(test)]

use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::Blind;
use pseudoform_protocol::ttp::{
    BatchRecord, BatchRequest, BatchResponse, BlindedItem, EvalRequest, EvalResponse,
};
use pseudoform_registry::rekey::{Authority, Rekey};
use pseudoform_registry::store::Store;
use pseudoform_testkit::keys::*;
use pseudoform_testkit::registry::*;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use pseudoform_ttp::keys::KeyStore;
use serde_json::json;

/// The registry A that the test TTP's JWEs are for.
async fn registry_of_the_ttp(
    change: impl FnOnce(&mut pseudoform_registry::RegistryConfig),
) -> Registry {
    Registry::start_configured(DEFAULT_TYPES, |config| {
        config.keys[0].kid = Some(KID_A.into());
        change(config);
    })
    .await
}

/// POSTs `request` as the form's caller and returns the answer, of type `T`.
async fn call<T: serde::de::DeserializeOwned>(
    ttp: &TestTtp,
    path: &str,
    request: &impl serde::Serialize,
) -> T {
    let (status, _, body) = ttp
        .post(
            path,
            Some(TOKEN_FORM),
            &serde_json::to_value(request).unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).unwrap()
}

/// `POST /v1/evaluate` of one record: the record JWE.
async fn evaluate(ttp: &TestTtp, items: &[(&str, &Blind)]) -> String {
    evaluate_with(ttp, items, None).await
}

/// [`evaluate`] with the record's `reversible` envelope digest.
async fn evaluate_with(
    ttp: &TestTtp,
    items: &[(&str, &Blind)],
    reversible: Option<String>,
) -> String {
    let items = items
        .iter()
        .map(|(t, r)| BlindedItem {
            pseudonym_type: (*t).into(),
            blinded_input: encode(&blind_vector(&vector(t), r)),
        })
        .collect();
    let request = BatchRequest {
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        records: vec![BatchRecord { items, reversible }],
    };
    let mut answer: BatchResponse = call(ttp, "/v1/evaluate", &request).await;
    answer.records.remove(0).jwe
}

/// `POST /oprf/eval` of one element: its JWE.
async fn eval(ttp: &TestTtp, code: &str, r: &Blind) -> String {
    let request = EvalRequest {
        encrypted_personal_id: encode(&blind_vector(&vector(code), r)),
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        pseudonym_type: Some(code.into()),
    };
    call::<EvalResponse>(ttp, "/oprf/eval", &request).await.jwe
}

/// The registry's rekey from `from` to `to` through the TTP, as its
/// recipient caller (`private_key_jwt` + DPoP).
fn rekey(ttp: &TestTtp, from: u32, to: u32) -> Rekey {
    let authority = Authority::client(
        &ttp.base,
        Client::RegistryA.id(),
        Client::RegistryA.key(),
        Some(ISSUER),
    )
    .unwrap();
    Rekey {
        ttp_url: ttp.base.clone(),
        authority,
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        from,
        to,
        chunk: 1000,
    }
}

#[tokio::test]
async fn a_reversible_pseudonym_is_stored_only_under_the_real_ttps_signature() {
    let registry = registry_of_the_ttp(|c| c.allowed_types.push("R".into())).await;
    let ttp = TestTtp::start_edited(true, DEV, |_, text| {
        text.replacen("\"A\", \"MRN\"]", "\"A\", \"MRN\", \"R\"]", 1)
    })
    .await;
    let submit = |envelope: pseudoform_protocol::registry::ReversibleEnvelope,
                  claimed: Option<String>| {
        let ttp = &ttp;
        async move {
            let blinds: Vec<Blind> = (0..2).map(|_| random_blind()).collect();
            let items: Vec<(&str, &Blind)> = ["NGGV", "RGG"].into_iter().zip(&blinds).collect();
            let record_jwe = evaluate_with(ttp, &items, claimed).await;
            let sealed = ttp.seal_for_a(&record_jwe, &items).await;
            pseudoform_protocol::registry::Submission {
                reversible: Some(envelope),
                ..sealed_submission(&record_jwe, sealed, &[("diagnose", "C50.9")])
            }
        }
    };
    // The browser's order: seal, send the digest with the evaluate call,
    // submit the envelope with the record.
    let envelope = pseudoform_testkit::validation::envelope();
    let bound = submit(envelope.clone(), Some(envelope.digest())).await;
    let body = registry.accept(&bound).await;
    let id = body["recordId"].as_i64().unwrap();
    // Stored with the claims the TTP signed, which name the digest.
    let jws: String = rusqlite::Connection::open(registry.db())
        .unwrap()
        .query_row(
            "SELECT claims FROM reversible WHERE record_id = ?1",
            [id],
            |row| row.get(0),
        )
        .unwrap();
    let verifier = josekit::jws::ES256
        .verifier_from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    let (payload, _) = josekit::jws::deserialize_compact(&jws, &verifier).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["reversible"], envelope.digest());
    assert_eq!(claims["provider"], STATIC_PROVIDER);
    // Another envelope than the one the TTP signed, or none named: refused.
    let other = submit(
        pseudoform_testkit::validation::envelope(),
        Some(envelope.digest()),
    )
    .await;
    registry.refuse(&other, 422, "reversible.unbound").await;
    let unnamed = submit(envelope, None).await;
    registry.refuse(&unnamed, 422, "reversible.unbound").await;
}

#[tokio::test]
async fn browser_ttp_registry_rotation_and_rekey() {
    let registry = registry_of_the_ttp(|_| {}).await;
    let ttp = TestTtp::start_dev(true).await;

    // A record with three types through the batch endpoint: one record JWE.
    let blinds: Vec<Blind> = (0..3).map(|_| random_blind()).collect();
    let types = ["NGGV", "RGG", "MRN"];
    let items: Vec<(&str, &Blind)> = types.iter().copied().zip(&blinds).collect();
    let record_jwe = evaluate(&ttp, &items).await;
    // The blind factors sealed to the registry's key as the TTP's policy
    // states it (verified with the TTP's signing key), as the browser does.
    let sealed = ttp.seal_for_a(&record_jwe, &items).await;
    let body = registry
        .accept(&sealed_submission(
            &record_jwe,
            sealed,
            &[("diagnose", "C50.9")],
        ))
        .await;
    // The record can be traced to the TTP's audit row by its jti, and
    // names the provider the TTP took from the credential.
    let (_, claims) = open_jwe(&record_jwe, true);
    let listed = &registry.records().await[0];
    assert_eq!(listed["ttpJti"], claims["jti"], "{listed}");
    assert_eq!(listed["provider"], STATIC_PROVIDER, "{listed}");
    // The MRN is bound to the static token's provider: t_p·N.
    let mut expected = v1_labels(&types);
    let t = ttp.provider_factor(STATIC_PROVIDER);
    expected[2] = format!("MRN:v1:{}", scaled(&t, &vector("MRN").pseudonym));
    assert_eq!(body["pseudonyms"], json!(expected));

    // The same person again through the single, national-style endpoint.
    let r = random_blind();
    let jwe = eval(&ttp, "NGGV", &r).await;
    let body = registry.accept(&one("NGGV", package(&jwe, &r))).await;
    assert_eq!(body["pseudonyms"], json!([expected[0].clone()]));
    // A retry of that very submission is answered as the first time and
    // stores nothing; that JWE in any other submission is a replay.
    let again = registry.accept(&one("NGGV", package(&jwe, &r))).await;
    assert_eq!(again, body);
    let other = submission(vec![("NGGV", package(&jwe, &r))], &[("diagnose", "C50.9")]);
    let (status, _) = registry.submit(&other).await;
    assert_eq!(status, 409);
    assert_eq!(registry.count().await, 2);

    // The TTP rotates the registry's key domain to version 2.
    let v2 = KeyStore::open_config(&ttp.config)
        .unwrap()
        .rotate(ORG_A, SCOPE_A)
        .unwrap();
    assert_eq!(v2, 2);

    // During the rotation a submission carries v2 and, in extra_versions, v1.
    let r = random_blind();
    let jwe = eval(&ttp, "NGGV", &r).await;
    let body = registry.accept(&one("NGGV", package(&jwe, &r))).await;
    let nggv_v2 = body["pseudonyms"][0].as_str().unwrap().to_owned();
    assert!(nggv_v2.starts_with("NGGV:v2:"));
    let store = Store::open(&registry.db()).unwrap();
    // Linked to the earlier records through its v1 label.
    assert_eq!(store.records_with_label(&expected[0]).unwrap().len(), 3);

    // A form's token may not rekey: the TTP refuses, nothing changes.
    let mut wrong = rekey(&ttp, 1, 2);
    wrong.authority = Authority::DevelopmentToken(TOKEN_FORM.into());
    let err = wrong.run(&store).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 403"), "{err}");
    assert_eq!(store.pseudonym_count().unwrap(), 6);

    // The registry moves its stored v1 pseudonyms to v2 through the TTP.
    let report = rekey(&ttp, 1, 2).run(&store).await.unwrap();
    // Record 1: NGGV, RGG, MRN; record 2: NGGV; record 3 already has v2.
    assert_eq!((report.sent, report.added), (4, 4));
    assert_eq!(store.pseudonym_count().unwrap(), 10);
    assert_eq!(store.records_with_label(&nggv_v2).unwrap().len(), 3);
    let first = &registry.records().await[2];
    let labels: Vec<&str> = first["pseudonyms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 6);
    assert!(
        labels[..3].iter().all(|l| l.contains(":v2:")),
        "current first"
    );
    assert!(labels[..3].contains(&nggv_v2.as_str()));
    assert!(labels[3..].iter().all(|l| l.contains(":v1:")));
}

#[tokio::test]
async fn the_ttp_publishes_its_signing_key_and_other_pins_refuse_its_jwes() {
    let ttp = TestTtp::start_dev(true).await;
    let (_, _, jwks) = ttp.get("/v1/signing-keys", None).await;
    assert_eq!(jwks["keys"][0]["kid"], ttp_signing().kid.as_str());
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");

    // A registry that pins another key refuses the TTP's JWEs.
    let other = registry_of_the_ttp(|config| {
        let path = config.database.with_file_name("other-signing-public.pem");
        std::fs::write(&path, &forger_signing().public_pem).unwrap();
        config.ttp_signing_keys = vec![path];
    })
    .await;
    let r = random_blind();
    let jwe = eval(&ttp, "NGGV", &r).await;
    let refused = one("NGGV", package(&jwe, &r));
    other.refuse(&refused, 422, "pseudonym.badSignature").await;
    // The registry that pins the TTP's key accepts the same JWE.
    let registry = registry_of_the_ttp(|_| {}).await;
    registry.accept(&refused).await;
}

/// The public URL the registry of [`a_record_bound_to_a_browser_key_is_delivered_only_with_that_keys_proof`] names.
const REGISTRY_URL: &str = "https://registratie-a.test";

/// A submitter proof of `key` for the registry's submissions URL and `record`.
fn submitter_proof(key: &pseudoform_protocol::client::EcKey, record: &str) -> String {
    key.submitter_proof(
        &format!("{REGISTRY_URL}/api/submissions"),
        &pseudoform_registry::submitter::rec(record),
        now(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_record_bound_to_a_browser_key_is_delivered_only_with_that_keys_proof() {
    let registry = registry_of_the_ttp(|config| {
        config.public_url = Some(REGISTRY_URL.into());
        config.require_submitter_proof = true;
    })
    .await;
    let ttp = TestTtp::start(true).await;
    // A clinician's browser: its DPoP-bound token, one record through the batch endpoint.
    let browser = ttp.browser().await;
    let r = random_blind();
    let request = json!({
        "recipientOrganization": ORG_A, "recipientScope": SCOPE_A,
        "records": [{ "items": [{ "type": "NGGV", "blindedInput": encode(&blind_vector(&vector("NGGV"), &r)) }] }],
    });
    let (status, _, answer) = ttp.call(&browser, "/v1/evaluate", &request).await;
    assert_eq!(status, 200, "{answer}");
    let record = answer["records"][0]["jwe"].as_str().unwrap().to_owned();
    let body =
        serde_json::to_value(record_submission_kid(KID_A, &record, &[("NGGV", &r)], &[])).unwrap();
    let post = |dpop: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(registry.url("/api/submissions"))
            .json(&body);
        if let Some(proof) = dpop {
            request = request.header("DPoP", proof);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, refused) = post(None).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("submitter.missingProof"))
    );
    let (status, refused) = post(Some(submitter_proof(&stranger_key(), &record))).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("submitter.wrongKey"))
    );
    let (status, refused) = post(Some(submitter_proof(&browser.key, "another record"))).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("submitter.wrongRecord"))
    );
    assert_eq!(
        registry.count().await,
        0,
        "a refused submission stored something"
    );

    let proof = submitter_proof(&browser.key, &record);
    let (status, receipt) = post(Some(proof.clone())).await;
    assert_eq!(status, 201, "{receipt}");
    // The same proof again is a replay; a resend with a fresh proof gets
    // the first receipt and stores nothing.
    let (status, refused) = post(Some(proof)).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("submitter.proofReplayed"))
    );
    let (status, again) = post(Some(submitter_proof(&browser.key, &record))).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, receipt);
    assert_eq!(registry.count().await, 1);
}
