//! The whole chain with the real reference TTP (`pseudoform-ttp`, embedded
//! through its `app`): the browser's blinding (pseudoform-core) → the TTP's
//! `POST /v1/evaluate` and `POST /oprf/eval` → the registry → a key rotation
//! at the TTP → `pseudoform-registry`'s rekey through the TTP's
//! `POST /v1/rekey`.
//!
//! The TTP's key version 1 is the derivation vectors' server key, so the
//! stored labels must be exactly the vectors' pseudonyms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::*;
use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::Blind;
use pseudoform_protocol::ttp::{
    BatchRecord, BatchRequest, BatchResponse, BlindedItem, EvalRequest, EvalResponse,
};
use pseudoform_registry::rekey::Rekey;
use pseudoform_registry::store::Store;
use pseudoform_ttp::keys::{KeyStore, MasterKey};
use pseudoform_ttp::TtpConfig;
use serde_json::json;

const PROVIDER_TOKEN: &str = "provider-token-for-the-demo-form";
const REGISTRY_TOKEN: &str = "registry-back-end-token";

struct Ttp {
    url: String,
    config: TtpConfig,
    client: reqwest::Client,
}

async fn start_ttp(dir: &std::path::Path) -> Ttp {
    std::fs::write(dir.join("registry-public.pem"), &registry_key().public_pem).unwrap();
    // The TTP signs with the key the test registries pin.
    std::fs::write(dir.join("signing.pem"), &ttp_signing_key().private_pem).unwrap();
    std::fs::write(
        dir.join("master.key"),
        MasterKey::generate().unwrap().to_text().as_str(),
    )
    .unwrap();
    let toml = format!(
        r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"
key_refresh_seconds = 0

[[recipients]]
organization = "{ORG}"
scope = "{SCOPE}"
public_key = "registry-public.pem"
allowed_types = ["NGGV", "RGG", "MRN"]

[[callers]]
name = "provider"
token_sha256 = "{provider}"
recipients = [{{ organization = "{ORG}", scope = "{SCOPE}" }}]

[[callers]]
name = "registry"
token_sha256 = "{registry}"
recipients = [{{ organization = "{ORG}", scope = "{SCOPE}" }}]
may_rekey = true
"#,
        provider = pseudoform_ttp::auth::hash_token(PROVIDER_TOKEN),
        registry = pseudoform_ttp::auth::hash_token(REGISTRY_TOKEN),
    );
    let config = TtpConfig::from_toml_str(&toml, dir).unwrap();
    // Version 1 is the vectors' key.
    KeyStore::open_config(&config)
        .unwrap()
        .import(ORG, SCOPE, &server_key_v1())
        .unwrap();
    let app = pseudoform_ttp::app(config.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ttp {
        url,
        config,
        client: reqwest::Client::new(),
    }
}

impl Ttp {
    /// `POST /v1/evaluate` of one record: the record JWE.
    async fn evaluate(&self, items: &[(&str, &Blind)]) -> String {
        let request = BatchRequest {
            recipient_organization: ORG.into(),
            recipient_scope: SCOPE.into(),
            records: vec![BatchRecord {
                items: items
                    .iter()
                    .map(|(t, r)| BlindedItem {
                        pseudonym_type: (*t).into(),
                        blinded_input: encode(&blind_vector(&vector(t), r)),
                    })
                    .collect(),
            }],
        };
        let response = self
            .client
            .post(format!("{}/v1/evaluate", self.url))
            .bearer_auth(PROVIDER_TOKEN)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let mut answer: BatchResponse = response.json().await.unwrap();
        answer.records.remove(0).jwe
    }

    /// `POST /oprf/eval` of one element: its JWE.
    async fn eval(&self, code: &str, r: &Blind) -> String {
        let request = EvalRequest {
            encrypted_personal_id: encode(&blind_vector(&vector(code), r)),
            recipient_organization: ORG.into(),
            recipient_scope: SCOPE.into(),
            pseudonym_type: Some(code.into()),
        };
        let response = self
            .client
            .post(format!("{}/oprf/eval", self.url))
            .bearer_auth(PROVIDER_TOKEN)
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json::<EvalResponse>().await.unwrap().jwe
    }

    fn rekey(&self, from: u32, to: u32) -> Rekey {
        Rekey {
            ttp_url: self.url.clone(),
            token: REGISTRY_TOKEN.into(),
            recipient_organization: ORG.into(),
            recipient_scope: SCOPE.into(),
            from,
            to,
            chunk: 1000,
        }
    }
}

#[tokio::test]
async fn browser_ttp_registry_rotation_and_rekey() {
    let registry = Registry::start().await;
    let ttp_dir = tempfile::tempdir().unwrap();
    let ttp = start_ttp(ttp_dir.path()).await;

    // A record with three types through the batch endpoint: one record JWE.
    let blinds: Vec<Blind> = (0..3).map(|_| random_blind()).collect();
    let types = ["NGGV", "RGG", "MRN"];
    let items: Vec<(&str, &Blind)> = types.iter().copied().zip(&blinds).collect();
    let record_jwe = ttp.evaluate(&items).await;
    let pseudonyms = items
        .iter()
        .map(|(t, r)| (*t, package(&record_jwe, r)))
        .collect();
    let (status, body) = registry
        .submit(&submission(pseudonyms, &[("diagnose", "C50.9")]))
        .await;
    assert_eq!(status, 201, "{body}");
    let expected: Vec<String> = types
        .iter()
        .map(|t| format!("{t}:v1:{}", vector(t).pseudonym))
        .collect();
    assert_eq!(body["pseudonyms"], json!(expected));

    // The same person again through the single, national-style endpoint.
    let r = random_blind();
    let jwe = ttp.eval("NGGV", &r).await;
    let (status, body) = registry
        .submit(&submission(vec![("NGGV", package(&jwe, &r))], &[]))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pseudonyms"], json!([expected[0].clone()]));
    // And that JWE cannot be used twice.
    let (status, _) = registry
        .submit(&submission(vec![("NGGV", package(&jwe, &r))], &[]))
        .await;
    assert_eq!(status, 409);

    // The TTP rotates the registry's key domain to version 2.
    let v2 = KeyStore::open_config(&ttp.config)
        .unwrap()
        .rotate(ORG, SCOPE)
        .unwrap();
    assert_eq!(v2, 2);

    // During the rotation a submission carries v2 and, in extra_versions, v1.
    let r = random_blind();
    let jwe = ttp.eval("NGGV", &r).await;
    let (status, body) = registry
        .submit(&submission(vec![("NGGV", package(&jwe, &r))], &[]))
        .await;
    assert_eq!(status, 201, "{body}");
    let nggv_v2 = body["pseudonyms"][0].as_str().unwrap().to_owned();
    assert!(nggv_v2.starts_with("NGGV:v2:"));
    let store = Store::open(&registry.db()).unwrap();
    // Linked to the earlier records through its v1 label.
    assert_eq!(store.records_with_label(&expected[0]).unwrap().len(), 3);

    // A form's token may not rekey: the TTP refuses, nothing changes.
    let mut wrong = ttp.rekey(1, 2);
    wrong.token = PROVIDER_TOKEN.into();
    let err = wrong.run(&store).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 403"), "{err}");
    assert_eq!(store.pseudonym_count().unwrap(), 6);

    // The registry moves its stored v1 pseudonyms to v2 through the TTP.
    let report = ttp.rekey(1, 2).run(&store).await.unwrap();
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
    let ttp_dir = tempfile::tempdir().unwrap();
    let ttp = start_ttp(ttp_dir.path()).await;
    let jwks: serde_json::Value = ttp
        .client
        .get(format!("{}/v1/signing-keys", ttp.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], ttp_signing_key().kid.as_str());
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");

    // A registry that pins another key refuses the TTP's JWEs.
    let other = Registry::start_configured(DEFAULT_TYPES, |config| {
        let path = config.database.with_file_name("other-signing-public.pem");
        std::fs::write(&path, &forger_signing_key().public_pem).unwrap();
        config.ttp_signing_keys = vec![path];
    })
    .await;
    let r = random_blind();
    let jwe = ttp.eval("NGGV", &r).await;
    let refused = submission(vec![("NGGV", package(&jwe, &r))], &[]);
    assert_refused(&other, &refused, 422, "pseudonym.badSignature").await;
    // The registry that pins the TTP's key accepts the same JWE.
    let registry = Registry::start().await;
    let (status, body) = registry.submit(&refused).await;
    assert_eq!(status, 201, "{body}");
}
