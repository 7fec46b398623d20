//! Test fixtures: RSA keys, the TTP's signing key, JWEs built the way the
//! TTP builds them (a JWS of the claims inside), OPRF
//! evaluations of the method's derivation vectors, and a real registry
//! server on 127.0.0.1:0 with SQLite in a temporary directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use josekit::jwe::alg::rsaes::RsaesJweAlgorithm;
use josekit::jwe::JweHeader;
use pseudoform_core::derivation::oprf_input_of;
use pseudoform_core::encoding::{decode_array, encode};
use pseudoform_core::oprf::{self, Blind, ServerKey};
use pseudoform_core::{PseudonymType, Recipient};
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{Submission, SubmittedPseudonym};
use pseudoform_registry::config::KeyConfig;
use pseudoform_registry::jwe::thumbprint_of_key;
use pseudoform_registry::RegistryConfig;
use serde_json::{json, Value};

pub const ORG: &str = "oin:00000001000000001000";
pub const SCOPE: &str = "kwaliteitsregistratie-a";
pub const OTHER_ORG: &str = "oin:00000001000000002000";

/// An RSA key pair as PEMs, with its kid.
#[derive(Clone)]
pub struct TestKey {
    pub private_pem: String,
    pub public_pem: String,
    pub kid: String,
}

fn generate_key() -> TestKey {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let key = openssl::pkey::PKey::from_rsa(rsa).unwrap();
    TestKey {
        private_pem: String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        public_pem: String::from_utf8(key.public_key_to_pem().unwrap()).unwrap(),
        kid: thumbprint_of_key(&key).unwrap(),
    }
}

/// The registry's key, the registry's second (rotated) key and a stranger's.
pub fn keys() -> &'static [TestKey; 3] {
    static KEYS: OnceLock<[TestKey; 3]> = OnceLock::new();
    KEYS.get_or_init(|| [generate_key(), generate_key(), generate_key()])
}

pub fn registry_key() -> &'static TestKey {
    &keys()[0]
}

pub fn rotated_key() -> &'static TestKey {
    &keys()[1]
}

pub fn stranger_key() -> &'static TestKey {
    &keys()[2]
}

/// A P-256 signing key as PEMs, with its kid (RFC 7638 thumbprint).
#[derive(Clone)]
pub struct SigningKey {
    pub private_pem: String,
    pub public_pem: String,
    pub kid: String,
}

fn generate_signing_key() -> SigningKey {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let public_pem = String::from_utf8(key.public_key_to_pem().unwrap()).unwrap();
    let kid = pseudoform_registry::jwe::SignatureKeys::new()
        .add_pem(public_pem.as_bytes())
        .unwrap();
    SigningKey {
        private_pem: String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        public_pem,
        kid,
    }
}

/// The TTP's signing key (pinned by the test registry) and a forger's.
pub fn signing_keys() -> &'static [SigningKey; 2] {
    static KEYS: OnceLock<[SigningKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| [generate_signing_key(), generate_signing_key()])
}

pub fn ttp_signing_key() -> &'static SigningKey {
    &signing_keys()[0]
}

pub fn forger_signing_key() -> &'static SigningKey {
    &signing_keys()[1]
}

/// The compact JWS of `claims` with `key`, naming `kid` (ES256, typ JWT).
pub fn sign_with(claims: &Value, key: &SigningKey, kid: &str) -> String {
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(kid);
    let signer = josekit::jws::ES256
        .signer_from_pem(key.private_pem.as_bytes())
        .unwrap();
    josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &header, &signer).unwrap()
}

/// One derivation vector of docs/vectors/method-v1.json.
#[derive(Clone, Debug)]
pub struct Vector {
    pub pseudonym_type: String,
    pub canonical_input: String,
    pub organization: String,
    pub scope: String,
    pub blind: [u8; 32],
    pub server_key: [u8; 32],
    pub evaluated: String,
    pub pseudonym: String,
}

pub fn vectors() -> Vec<Vector> {
    let text = include_str!("../../../../docs/vectors/method-v1.json");
    let doc: Value = serde_json::from_str(text).unwrap();
    doc["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            pseudonym_type: v["type"].as_str().unwrap().into(),
            canonical_input: v["canonicalInput"].as_str().unwrap().into(),
            organization: v["recipientOrganization"].as_str().unwrap().into(),
            scope: v["recipientScope"].as_str().unwrap().into(),
            blind: decode_array(v["blind"].as_str().unwrap()).unwrap(),
            server_key: decode_array(v["serverKey"].as_str().unwrap()).unwrap(),
            evaluated: v["evaluatedElement"].as_str().unwrap().into(),
            pseudonym: v["pseudonym"].as_str().unwrap().into(),
        })
        .collect()
}

/// The first vector of `code` for registry A.
pub fn vector(code: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.pseudonym_type == code && v.organization == ORG)
        .unwrap()
}

/// The vectors' server key (key version 1).
pub fn server_key_v1() -> ServerKey {
    ServerKey::from_bytes(&vector("NGGV").server_key).unwrap()
}

/// A second, fixed server key (key version 2).
pub fn server_key_v2() -> ServerKey {
    ServerKey::from_uniform_bytes(&[7u8; 64]).unwrap()
}

pub fn random_blind() -> Blind {
    let mut bytes = [0u8; 64];
    getrandom::getrandom(&mut bytes).unwrap();
    Blind::from_uniform_bytes(&bytes).unwrap()
}

/// A browser's blinding of a vector's input: (blind factor, blinded element).
pub fn blind_vector(v: &Vector, blind: &Blind) -> [u8; 32] {
    let ty: PseudonymType = v.pseudonym_type.parse().unwrap();
    let recipient = Recipient::new(&v.organization, &v.scope).unwrap();
    let input = oprf_input_of(ty, &v.canonical_input, &recipient).unwrap();
    oprf::blind(input.as_ref(), blind).unwrap()
}

/// The definitive pseudonym of `v` under `key` (what the registry must store).
pub fn expected_pseudonym(v: &Vector, key: &ServerKey) -> String {
    let r = random_blind();
    let z = key.evaluate(&blind_vector(v, &r)).unwrap();
    encode(&oprf::unblind(&r, &z).unwrap())
}

/// The TTP's evaluation of a blinded element, as a `subject`.
pub fn subject(key: &ServerKey, blinded: &[u8; 32]) -> String {
    format!("pseudonym:eval:{}", encode(&key.evaluate(blinded).unwrap()))
}

pub fn now() -> i64 {
    pseudoform_registry::receiver::unix_now()
}

pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// A compact JWE as the TTP makes it: `alg` (RSA-OAEP-256 or RSA-OAEP),
/// A256GCM, `cty: JWT`, `kid`, around the TTP's JWS of the claims.
pub fn jwe(claims: &Value, alg: RsaesJweAlgorithm, to: &TestKey) -> String {
    jwe_with_kid(claims, alg, to, Some(&to.kid))
}

pub fn jwe_with_kid(
    claims: &Value,
    alg: RsaesJweAlgorithm,
    to: &TestKey,
    kid: Option<&str>,
) -> String {
    let key = ttp_signing_key();
    let jws = sign_with(claims, key, &key.kid);
    encrypt_plaintext(jws.as_bytes(), "JWT", alg, to, kid)
}

/// A JWE of the bare claims, unsigned, as the national reference service
/// makes it (`cty: application/json`).
pub fn jwe_unsigned(claims: &Value, alg: RsaesJweAlgorithm, to: &TestKey) -> String {
    encrypt_plaintext(
        &serde_json::to_vec(claims).unwrap(),
        "application/json",
        alg,
        to,
        Some(&to.kid),
    )
}

/// A JWE (RSA-OAEP-256) to `to` of a JWS of the claims signed by `key`
/// naming `kid`.
pub fn jwe_signed_by(claims: &Value, key: &SigningKey, kid: &str, to: &TestKey) -> String {
    let jws = sign_with(claims, key, kid);
    encrypt_plaintext(jws.as_bytes(), "JWT", oaep256(), to, Some(&to.kid))
}

/// A JWE (A256GCM) of any plaintext with content type `cty`.
pub fn encrypt_plaintext(
    plaintext: &[u8],
    cty: &str,
    alg: RsaesJweAlgorithm,
    to: &TestKey,
    kid: Option<&str>,
) -> String {
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_content_type(cty);
    if let Some(kid) = kid {
        header.set_key_id(kid);
    }
    let encrypter = alg.encrypter_from_pem(to.public_pem.as_bytes()).unwrap();
    josekit::jwe::serialize_compact(plaintext, &header, &encrypter).unwrap()
}

pub fn oaep256() -> RsaesJweAlgorithm {
    josekit::jwe::RSA_OAEP_256
}

pub fn oaep() -> RsaesJweAlgorithm {
    josekit::jwe::RSA_OAEP
}

/// `EvalClaims` as the pseudoform TTP writes them (with jti, key_version,
/// pseudonym_type).
pub fn eval_claims(code: &str, subject: &str) -> Value {
    let iat = now();
    json!({
        "subject": subject,
        "aud": ORG,
        "scope": SCOPE,
        "version": "1.1",
        "iat": iat,
        "exp": iat + 300,
        "extra_versions": {},
        "jti": jti(),
        "key_version": 1,
        "pseudonym_type": code,
    })
}

/// `RecordClaims` with one evaluation per (type, subject).
pub fn record_claims(evaluations: &[(&str, String)]) -> Value {
    let iat = now();
    json!({
        "aud": ORG,
        "scope": SCOPE,
        "version": "1.1",
        "iat": iat,
        "exp": iat + 300,
        "jti": jti(),
        "key_version": 1,
        "evaluations": evaluations.iter().map(|(t, s)| json!({
            "type": t, "subject": s, "extra_versions": {}
        })).collect::<Vec<_>>(),
    })
}

pub fn package(jwe: &str, blind: &Blind) -> String {
    TemporaryPseudonym {
        evaluated_output: jwe.to_owned(),
        blind_factor: encode(blind.to_bytes().as_ref()),
    }
    .encode()
}

pub fn submission(pseudonyms: Vec<(&str, String)>, data: &[(&str, &str)]) -> Submission {
    Submission {
        recipient_organization: ORG.into(),
        recipient_scope: SCOPE.into(),
        method_version: 1,
        pseudonyms: pseudonyms
            .into_iter()
            .map(|(t, p)| SubmittedPseudonym {
                pseudonym_type: t.into(),
                temporary_pseudonym: p,
            })
            .collect(),
        data: data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// One temporary pseudonym of the vector `code` through a fresh single
/// evaluation JWE (RSA-OAEP-256): the whole browser → TTP → registry chain.
pub fn temporary(code: &str) -> String {
    let v = vector(code);
    let r = random_blind();
    let subject = subject(&server_key_v1(), &blind_vector(&v, &r));
    package(
        &jwe(&eval_claims(code, &subject), oaep256(), registry_key()),
        &r,
    )
}

/// A running registry.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub config: RegistryConfig,
}

pub const DEFAULT_TYPES: &[&str] = &["NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "MRN"];

pub fn config(dir: &std::path::Path, types: &[&str]) -> RegistryConfig {
    let key_path = dir.join("registry-key.pem");
    std::fs::write(&key_path, &registry_key().private_pem).unwrap();
    let signing_path = dir.join("ttp-signing-public.pem");
    std::fs::write(&signing_path, &ttp_signing_key().public_pem).unwrap();
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<!DOCTYPE html><title>form</title>").unwrap();
    std::fs::write(www.join("pseudoform_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    RegistryConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        recipient_organization: ORG.into(),
        recipient_scope: SCOPE.into(),
        allowed_types: types.iter().map(|t| (*t).to_owned()).collect(),
        keys: vec![
            KeyConfig {
                path: Some(key_path),
                pem: None,
                kid: None,
            },
            KeyConfig {
                path: None,
                pem: Some(rotated_key().private_pem.clone()),
                kid: None,
            },
        ],
        database: dir.join("registry.sqlite"),
        www_dir: www,
        ttp_url: "http://127.0.0.1:9/".into(),
        provider: "ura:00000001".into(),
        access_token: "demo-provider-token".into(),
        clock_skew_seconds: 30,
        ttp_signing_keys: vec![signing_path],
        accept_unsigned: false,
    }
}

impl Registry {
    pub async fn start() -> Self {
        Self::start_with(DEFAULT_TYPES).await
    }

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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn db(&self) -> PathBuf {
        self.config.database.clone()
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

    pub async fn count(&self) -> usize {
        self.records().await.len()
    }
}

/// Asserts a refusal: status, code, and that nothing was stored.
pub async fn assert_refused(registry: &Registry, submission: &Submission, status: u16, code: &str) {
    let before = registry.count().await;
    let (got, body) = registry.submit(submission).await;
    assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{body}");
    assert_eq!(registry.count().await, before, "nothing may be stored");
}
