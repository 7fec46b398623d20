//! A real registry on 127.0.0.1 with SQLite in a temporary directory, and
//! the submissions a browser sends it: claims as the TTP writes them,
//! temporary pseudonyms, and the checks of a refusal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use pseudoform_core::encoding::encode;
use pseudoform_core::oprf::Blind;
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{
    batch_rec, record_digest, submission_rec, BlindFactorsPlaintext, Data, DataValue, Submission,
    SubmittedPseudonym, BLIND_FACTORS_CTY,
};
use pseudoform_protocol::{JWE_LIFETIME_SECONDS, PROTOCOL_VERSION};
use pseudoform_registry::config::KeyConfig;
use pseudoform_registry::RegistryConfig;
use serde_json::{json, Value};

use crate::jose::{encrypt_plaintext, jwe, oaep256};
use crate::keys::{recipient_a, rotated_a, ttp_signing, RsaKey};
use crate::ttp::{ORG_A, SCOPE_A};
use crate::vectors::{blind_vector, random_blind, server_key_v1, subject, vector};

/// The types of the test registry: every type but B.
pub const DEFAULT_TYPES: &[&str] = &["NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "MRN"];

/// A fresh random `jti`.
pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// `EvalClaims` as the pseudoform TTP writes them for registry A (with
/// `jti`, `key_version` 1 and `pseudonym_type`).
pub fn eval_claims(code: &str, subject: &str) -> Value {
    let iat = pseudoform_protocol::unix_now();
    json!({
        "subject": subject,
        "aud": ORG_A,
        "scope": SCOPE_A,
        "version": PROTOCOL_VERSION,
        "iat": iat,
        "exp": iat + JWE_LIFETIME_SECONDS,
        "extra_versions": {},
        "jti": jti(),
        "key_version": 1,
        "pseudonym_type": code,
    })
}

/// `RecordClaims` for registry A with one evaluation per (type, subject).
pub fn record_claims(evaluations: &[(&str, String)]) -> Value {
    let iat = pseudoform_protocol::unix_now();
    json!({
        "aud": ORG_A,
        "scope": SCOPE_A,
        "version": PROTOCOL_VERSION,
        "iat": iat,
        "exp": iat + JWE_LIFETIME_SECONDS,
        "jti": jti(),
        "key_version": 1,
        "evaluations": evaluations.iter().map(|(t, s)| json!({
            "type": t, "subject": s, "extra_versions": {}
        })).collect::<Vec<_>>(),
    })
}

/// Exactly the national service's claims for registry A: no `jti`,
/// `key_version` or `pseudonym_type` (so type B).
pub fn national_claims(subject: &str) -> Value {
    let iat = pseudoform_protocol::unix_now();
    json!({
        "subject": subject,
        "aud": ORG_A, "scope": SCOPE_A, "version": PROTOCOL_VERSION,
        "iat": iat, "exp": iat + JWE_LIFETIME_SECONDS, "extra_versions": {},
    })
}

/// The temporary pseudonym of a JWE and its blind factor.
pub fn package(jwe: &str, blind: &Blind) -> String {
    TemporaryPseudonym {
        evaluated_output: jwe.to_owned(),
        blind_factor: encode(blind.to_bytes().as_ref()),
    }
    .encode()
}

/// `data` of string values.
pub fn data(fields: &[(&str, &str)]) -> Data {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), DataValue::from(*v)))
        .collect::<BTreeMap<_, _>>()
}

/// A submission to registry A in the national packaging: `(type,
/// temporary pseudonym)` pairs and `data`.
pub fn submission(pseudonyms: Vec<(&str, String)>, fields: &[(&str, &str)]) -> Submission {
    Submission {
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        method_version: pseudoform_core::METHOD_VERSION,
        record: None,
        blind_factors: None,
        encrypted_blind_factors: None,
        pseudonyms: Some(
            pseudonyms
                .into_iter()
                .map(|(t, p)| SubmittedPseudonym {
                    pseudonym_type: t.into(),
                    temporary_pseudonym: p,
                })
                .collect(),
        ),
        reversible: None,
        data: data(fields),
    }
}

/// The blind factors of `(type, blind)` pairs as a submission names them:
/// padded base64url by type code.
pub fn blind_map(blinds: &[(&str, &Blind)]) -> BTreeMap<String, String> {
    blinds
        .iter()
        .map(|(t, r)| ((*t).to_owned(), encode(r.to_bytes().as_ref())))
        .collect()
}

/// The browser's `encryptedBlindFactors`: the compact JWE (`RSA-OAEP-256`,
/// `A256GCM`, `kid`, `cty: application/json`) to `to` of `{"blindFactors",
/// "rec"}`.
pub fn seal(blind_factors: &BTreeMap<String, String>, rec: &str, to: &RsaKey, kid: &str) -> String {
    let plaintext = serde_json::to_vec(&BlindFactorsPlaintext {
        blind_factors: blind_factors.clone(),
        rec: rec.to_owned(),
    })
    .unwrap();
    encrypt_plaintext(&plaintext, BLIND_FACTORS_CTY, oaep256(), to, Some(kid))
}

/// A submission to registry A in the record shape with `encryptedBlindFactors`
/// as given.
pub fn sealed_submission(
    record_jwe: &str,
    encrypted: String,
    fields: &[(&str, &str)],
) -> Submission {
    Submission {
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        method_version: pseudoform_core::METHOD_VERSION,
        record: Some(record_jwe.to_owned()),
        blind_factors: None,
        encrypted_blind_factors: Some(encrypted),
        pseudonyms: None,
        reversible: None,
        data: data(fields),
    }
}

/// A submission to registry A in the record shape, as the browser sends it:
/// the record JWE once and the blind factor of each `(type, blind)`,
/// encrypted to registry A's key under `kid`, bound to the record.
pub fn record_submission_kid(
    kid: &str,
    record_jwe: &str,
    blinds: &[(&str, &Blind)],
    fields: &[(&str, &str)],
) -> Submission {
    let sealed = seal(
        &blind_map(blinds),
        &record_digest(record_jwe),
        recipient_a(),
        kid,
    );
    sealed_submission(record_jwe, sealed, fields)
}

/// [`record_submission_kid`] with registry A's default kid (the thumbprint).
pub fn record_submission(
    record_jwe: &str,
    blinds: &[(&str, &Blind)],
    fields: &[(&str, &str)],
) -> Submission {
    record_submission_kid(&recipient_a().kid, record_jwe, blinds, fields)
}

/// The record shape with `blindFactors` in the clear (what a registry
/// refuses unless `development_clear_blind_factors`).
pub fn clear_record_submission(
    record_jwe: &str,
    blinds: &[(&str, &Blind)],
    fields: &[(&str, &str)],
) -> Submission {
    Submission {
        blind_factors: Some(blind_map(blinds)),
        encrypted_blind_factors: None,
        ..sealed_submission(record_jwe, String::new(), fields)
    }
}

/// A fresh blind for each of `types`.
fn fresh_blinds(types: &[&'static str]) -> Vec<(&'static str, Blind)> {
    types.iter().map(|t| (*t, random_blind())).collect()
}

/// The evaluations (vector key v1) of the vectors of `blinds`' types, each
/// blinded with its blind.
fn evaluations_of(blinds: &[(&'static str, Blind)]) -> Vec<(&'static str, String)> {
    let k1 = server_key_v1();
    blinds
        .iter()
        .map(|(t, r)| (*t, subject(&k1, &blind_vector(&vector(t), r))))
        .collect()
}

/// A record JWE of the vectors of `types`, each blinded with a fresh
/// blind (vector key v1), and those blinds.
pub fn fresh_record(types: &[&'static str]) -> (String, Vec<(&'static str, Blind)>) {
    let blinds = fresh_blinds(types);
    (
        jwe(
            &record_claims(&evaluations_of(&blinds)),
            oaep256(),
            recipient_a(),
        ),
        blinds,
    )
}

/// A record submission of the vector patient with `types`, its claims bound
/// to the DPoP key of thumbprint `jkt` (`cnf`) and from `provider`, with
/// `fields`: fresh blinds and JWE each call (what a re-pseudonymisation
/// makes).
pub fn bound_submission(
    jkt: &str,
    provider: &str,
    types: &[&'static str],
    fields: &[(&str, &str)],
) -> Submission {
    let blinds = fresh_blinds(types);
    let mut claims = record_claims(&evaluations_of(&blinds));
    claims["cnf"] = json!({ "jkt": jkt });
    claims["provider"] = json!(provider);
    record_submission(
        &jwe(&claims, oaep256(), recipient_a()),
        &refs(&blinds),
        fields,
    )
}

/// The claims of a batch's submitter proof (`POST /api/batches`, `POST
/// /fhir`) for `submissions` at `htu`: a fresh `jti`, now, and `rec` =
/// [`batch_rec`] of their recs.
pub fn batch_proof_claims(submissions: &[Submission], htu: &str) -> Value {
    let recs: Vec<String> = submissions.iter().map(submission_rec).collect();
    let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
    json!({
        "jti": jti(),
        "htm": "POST",
        "htu": htu,
        "iat": pseudoform_protocol::unix_now(),
        "rec": batch_rec(&recs),
    })
}

/// The `(type, blind)` references of [`fresh_record`]'s blinds.
pub fn refs<'a>(blinds: &'a [(&'static str, Blind)]) -> Vec<(&'static str, &'a Blind)> {
    blinds.iter().map(|(t, r)| (*t, r)).collect()
}

/// A submission of one pseudonym of type `code`, without data.
pub fn one(code: &str, temporary: String) -> Submission {
    submission(vec![(code, temporary)], &[])
}

/// The labels of the vectors of `types` under key version 1, as a
/// registry stores them.
pub fn v1_labels(types: &[&str]) -> Vec<String> {
    types
        .iter()
        .map(|t| format!("{t}:v1:{}", vector(t).pseudonym))
        .collect()
}

/// A single evaluation of the vector `code` (vector key, fresh blind): its
/// claims and the blind.
pub fn fresh_eval(code: &str) -> (Value, Blind) {
    let r = random_blind();
    let claims = eval_claims(
        code,
        &subject(&server_key_v1(), &blind_vector(&vector(code), &r)),
    );
    (claims, r)
}

/// One temporary pseudonym of the vector `code` through a fresh single
/// evaluation JWE (`RSA-OAEP-256`): the whole browser → TTP → registry chain.
pub fn temporary(code: &str) -> String {
    let (claims, r) = fresh_eval(code);
    package(&jwe(&claims, oaep256(), recipient_a()), &r)
}

/// The configuration of registry A in `dir` accepting `types`: its key and
/// its rotated one, the TTP's pinned signing key, a static folder.
pub fn config(dir: &Path, types: &[&str]) -> RegistryConfig {
    let key_path = dir.join("registry-key.pem");
    pseudoform_protocol::secret_file::create(&key_path, recipient_a().private_pem.as_bytes())
        .unwrap();
    let signing_path = dir.join("ttp-signing-public.pem");
    std::fs::write(&signing_path, &ttp_signing().public_pem).unwrap();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<!DOCTYPE html><title>form</title>").unwrap();
    std::fs::write(www.join("pseudoform_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    RegistryConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        allowed_types: types.iter().map(|t| (*t).to_owned()).collect(),
        required_types: Vec::new(),
        keys: vec![
            KeyConfig {
                path: Some(key_path),
                pem: None,
                kid: None,
            },
            KeyConfig {
                path: None,
                pem: Some(rotated_a().private_pem.clone()),
                kid: None,
            },
        ],
        database: dir.join("registry.sqlite"),
        www_dir: www,
        ttp_url: "http://127.0.0.1:9/".into(),
        provider: "ura:00000001".into(),
        login_url: String::new(),
        access_token: "demo-provider-token".into(),
        clock_skew_seconds: 30,
        ttp_signing_keys: vec![signing_path],
        accept_unsigned: false,
        ttp_jwe_alg: Default::default(),
        development_clear_blind_factors: false,
        public_url: None,
        extra_public_urls: Vec::new(),
        // The test kit's JWEs bind no submitter key; the proof itself is
        // tested in crates/registry/tests/submitter.rs and the page tests.
        require_submitter_proof: false,
        allowed_origins: Vec::new(),
        frame_url: None,
        validation_origins: Vec::new(),
        ttp_issuer: None,
        limits: Default::default(),
    }
}

/// A running registry A.
#[derive(Debug)]
pub struct Registry {
    /// The temporary directory with its database and static files.
    pub dir: tempfile::TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
    /// A client.
    pub client: reqwest::Client,
    /// Its configuration.
    pub config: RegistryConfig,
}

impl Registry {
    /// A registry accepting [`DEFAULT_TYPES`].
    pub async fn start() -> Self {
        Self::start_with(DEFAULT_TYPES).await
    }

    /// A registry accepting `types`.
    pub async fn start_with(types: &[&str]) -> Self {
        Self::start_configured(types, |_| {}).await
    }

    /// A registry whose configuration `change` adjusts first.
    pub async fn start_configured(
        types: &[&str],
        change: impl FnOnce(&mut RegistryConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), types);
        change(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = config.clone();
        tokio::spawn(async move { pseudoform_registry::serve(served, listener).await });
        Registry {
            dir,
            addr,
            client: reqwest::Client::new(),
            config,
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.config.database.clone()
    }

    /// The number of rows of `table` in its database.
    pub fn rows_in(&self, table: &str) -> i64 {
        rusqlite::Connection::open(self.db())
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// POSTs a submission; returns status and JSON body.
    pub async fn submit(&self, submission: &Submission) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/api/submissions"))
            .json(submission)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Submits, asserts a 201 and returns the receipt.
    pub async fn accept(&self, submission: &Submission) -> Value {
        let (status, body) = self.submit(submission).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Submits, and asserts a refusal with `status` and `code` that
    /// stored nothing.
    pub async fn refuse(&self, submission: &Submission, status: u16, code: &str) {
        let before = self.count().await;
        let (got, body) = self.submit(submission).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
        assert_eq!(self.count().await, before, "nothing may be stored");
    }

    /// The stored records, newest first.
    pub async fn records(&self) -> Vec<Value> {
        self.client
            .get(self.url("/api/records"))
            .send()
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    }

    /// The number of stored records.
    pub async fn count(&self) -> usize {
        self.records().await.len()
    }
}

/// The labels of a receipt.
pub fn labels(receipt: &Value) -> Vec<String> {
    receipt["pseudonyms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}
