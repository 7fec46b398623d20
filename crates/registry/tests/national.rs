//! The registry and the national wire profile: the national JWE (bare
//! claims, `cty: application/json`, `RSA-OAEP`) from the real reference TTP
//! for a recipient of the national profile; the key version of a national
//! claim is never guessed; the correlation headers.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::ServerKey;
use pseudoform_protocol::ttp::{EvalRequest, EvalResponse};
use pseudoform_testkit::jose::{encrypt_plaintext, oaep};
use pseudoform_testkit::keys::recipient_a;
use pseudoform_testkit::registry::*;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::json;

/// Registry A configured for the national profile: unsigned claims under
/// `RSA-OAEP`, the TTP's kid.
async fn national_registry() -> Registry {
    Registry::start_configured(&["B", "NGGV"], |c| {
        c.keys[0].kid = Some(KID_A.into());
        c.accept_unsigned = true;
        c.ttp_jwe_alg = pseudoform_registry::jwe::JweAlg::RsaOaep;
    })
    .await
}

/// The national service's JWE of `claims` for registry A: bare JSON,
/// `cty: application/json`, `RSA-OAEP`, the registry's kid.
fn bare(claims: &serde_json::Value) -> String {
    let json = serde_json::to_vec(claims).unwrap();
    encrypt_plaintext(
        &json,
        "application/json",
        oaep(),
        recipient_a(),
        Some(KID_A),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_jwe_of_the_reference_ttp_is_stored_under_its_named_version() {
    let ttp = TestTtp::start_edited(true, DEV, |_, text| national_a(text)).await;
    let registry = national_registry().await;
    for code in ["B", "NGGV"] {
        let v = vector(code);
        let r = random_blind();
        let request = EvalRequest {
            encrypted_personal_id: encode(&blind_vector(&v, &r)),
            recipient_organization: ORG_A.into(),
            recipient_scope: SCOPE_A.into(),
            pseudonym_type: (code != "B").then(|| code.into()),
        };
        let (status, _, body) = ttp
            .post(
                "/oprf/eval",
                Some(TOKEN_FORM),
                &serde_json::to_value(&request).unwrap(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let answer: EvalResponse = serde_json::from_value(body).unwrap();
        let receipt = registry.accept(&one(code, package(&answer.jwe, &r))).await;
        assert_eq!(labels(&receipt), v1_labels(&[code]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_national_claim_without_key_version_is_refused_never_guessed() {
    let registry = national_registry().await;
    // Versions 3 and 5 active, 4 retired: the national service writes v5 in
    // subject and v3 in extra_versions, naming neither. Guessing
    // max(extra_versions) + 1 would file v5's pseudonym as v4.
    let k3 = ServerKey::from_bytes(&[3; 32]).unwrap();
    let k5 = ServerKey::from_bytes(&[5; 32]).unwrap();
    let v = vector("B");
    let r = random_blind();
    let blinded = blind_vector(&v, &r);
    let mut claims = national_claims(&subject(&k5, &blinded));
    claims["extra_versions"] = json!({ "3": encode(&k3.evaluate(&blinded).unwrap()) });
    let unversioned = package(&bare(&claims), &r);
    let (status, body) = registry.submit(&one("B", unversioned.clone())).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "pseudonym.keyVersionMissing");
    assert!(body["message"].as_str().unwrap().contains("key_version"));
    assert_eq!(registry.count().await, 0);
    // Without extra_versions it is refused just the same: the only active
    // version need not be 1.
    let mut only = claims.clone();
    only["extra_versions"] = json!({});
    let tp = package(&bare(&only), &r);
    registry
        .refuse(&one("B", tp), 422, "pseudonym.keyVersionMissing")
        .await;

    // Named, both are stored under their own versions: v5 current, v3 older.
    claims["key_version"] = json!(5);
    let tp = package(&bare(&claims), &r);
    let receipt = registry.accept(&one("B", tp)).await;
    let v5 = format!("B:v5:{}", expected_pseudonym(&v, &k5));
    let v3 = format!("B:v3:{}", expected_pseudonym(&v, &k3));
    assert_eq!(labels(&receipt), vec![v5.clone()]);
    assert_eq!(registry.records().await[0]["pseudonyms"], json!([v5, v3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpadded_blind_factor_is_taken() {
    let registry = Registry::start().await;
    let (claims, r) = fresh_eval("NGGV");
    let jwe =
        pseudoform_testkit::jose::jwe(&claims, pseudoform_testkit::jose::oaep256(), recipient_a());
    let unpadded = pseudoform_protocol::package::TemporaryPseudonym {
        evaluated_output: jwe,
        blind_factor: encode(r.to_bytes().as_ref())
            .trim_end_matches('=')
            .to_owned(),
    }
    .encode();
    let receipt = registry.accept(&one("NGGV", unpadded)).await;
    assert_eq!(labels(&receipt), v1_labels(&["NGGV"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_echoes_the_correlation_headers() {
    let registry = Registry::start().await;
    let answer = registry
        .client
        .post(registry.url("/api/submissions"))
        .header("X-GF-Correlation-ID", "corr-1")
        .header("X-Client-Trace-ID", "trace 2")
        .header("X-Request-ID", "chosen-by-the-client")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    assert_eq!(answer.headers()["x-gf-correlation-id"], "corr-1");
    assert_eq!(answer.headers()["x-client-trace-id"], "trace2");
    let id = answer.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_ne!(id, "chosen-by-the-client");
    let health = registry.get("/health").await;
    assert!(health.headers().contains_key("x-request-id"));
}
