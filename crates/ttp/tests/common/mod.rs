//! Shared fixtures of the TTP integration tests: a real server on loopback
//! with a fresh SQLite database in a temporary directory, test RSA keys of
//! two recipients, and helpers to blind inputs and read the JWEs.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::OnceLock;

use josekit::jwe::{self, JweHeader};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use pseudoform_core::encoding;
use pseudoform_core::oprf::{blind, Blind, ServerKey};
use pseudoform_ttp::keys::KeyStore;
use pseudoform_ttp::TtpConfig;
use serde_json::Value;
use sha2::{Digest, Sha512};

/// Recipient A: may receive every type, B included; RSA-OAEP-256; fixed kid.
pub const ORG_A: &str = "oin:00000001000000001000";
/// Scope of recipient A (the scope of the method vectors).
pub const SCOPE_A: &str = "kwaliteitsregistratie-a";
/// Recipient B: may not receive B; RSA-OAEP; thumbprint kid.
pub const ORG_B: &str = "oin:00000001000000002000";
/// Scope of recipient B.
pub const SCOPE_B: &str = "kwaliteitsregistratie-b";
/// The form origin of recipient A.
pub const ORIGIN_A: &str = "https://form-a.example.nl";
/// The form origin of recipient B.
pub const ORIGIN_B: &str = "https://form-b.example.nl";
/// Token of caller `form` (A and B).
pub const TOKEN_FORM: &str = "token-form-0123456789";
/// Token of caller `registry-a` (A, may rekey).
pub const TOKEN_REGISTRY: &str = "token-registry-a-0123456789";
/// Token of caller `slow` (A, 60/minute, burst 5).
pub const TOKEN_SLOW: &str = "token-slow-0123456789";
/// Token of caller `form-b` (B only).
pub const TOKEN_B_ONLY: &str = "token-b-only-0123456789";

/// A recipient's test key pair, PEM.
pub struct KeyPair {
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
}

fn generate() -> KeyPair {
    let rsa = Rsa::generate(2048).unwrap();
    let pkey = PKey::from_rsa(rsa).unwrap();
    KeyPair {
        private_pem: pkey.private_key_to_pem_pkcs8().unwrap(),
        public_pem: pkey.public_key_to_pem().unwrap(),
    }
}

/// The TTP's signing key (P-256, PKCS#8 PEM), made once per test binary.
pub fn signing_pem() -> &'static [u8] {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| pseudoform_ttp::signing::generate_pem().unwrap().to_vec())
}

/// The public half of [`signing_pem`] as SPKI PEM, and its kid.
pub fn signing_public() -> (String, String) {
    let key = pseudoform_ttp::signing::SigningKey::from_pem(signing_pem()).unwrap();
    (key.public_pem().to_owned(), key.kid().to_owned())
}

/// The key pairs of recipients A and B, made once per test binary.
pub fn key_pairs() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| (generate(), generate()))
}

/// A TTP running on 127.0.0.1 with its own database.
pub struct TestTtp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The temporary directory with the configuration and the database.
    pub dir: tempfile::TempDir,
    /// The loaded configuration.
    pub config: TtpConfig,
    /// The configuration file.
    pub config_path: PathBuf,
    /// A client.
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The configuration text of the test TTP (paths relative to its directory).
pub fn config_text(extra_global: &str) -> String {
    use pseudoform_ttp::auth::hash_token;
    format!(
        r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"
key_refresh_seconds = 0
{extra_global}

[rate_limit]
evaluations_per_minute = 60000000
burst = 1000000

[[recipients]]
organization = "{ORG_A}"
scope = "{SCOPE_A}"
public_key = "a.pem"
kid = "registry-a-2026"
allowed_types = ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"]
allowed_origins = ["{ORIGIN_A}"]

[[recipients]]
organization = "{ORG_B}"
scope = "{SCOPE_B}"
public_key = "b.pem"
allowed_types = ["NGGV", "RGG", "GG"]
allowed_origins = ["{ORIGIN_B}"]
jwe_alg = "RSA-OAEP"

[[callers]]
name = "form"
token_sha256 = "{form}"
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}, {{ organization = "{ORG_B}", scope = "{SCOPE_B}" }}]

[[callers]]
name = "registry-a"
token_sha256 = "{registry}"
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}]
may_rekey = true

[[callers]]
name = "slow"
token_sha256 = "{slow}"
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}]
rate_limit = {{ evaluations_per_minute = 60, burst = 5 }}

[[callers]]
name = "form-b"
token_sha256 = "{b_only}"
recipients = [{{ organization = "{ORG_B}", scope = "{SCOPE_B}" }}]
"#,
        form = hash_token(TOKEN_FORM),
        registry = hash_token(TOKEN_REGISTRY),
        slow = hash_token(TOKEN_SLOW),
        b_only = hash_token(TOKEN_B_ONLY),
    )
}

/// Writes the configuration, keys and master key into a new directory.
pub fn prepare(extra_global: &str) -> (tempfile::TempDir, PathBuf, TtpConfig) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = key_pairs();
    std::fs::write(dir.path().join("a.pem"), &a.public_pem).unwrap();
    std::fs::write(dir.path().join("b.pem"), &b.public_pem).unwrap();
    std::fs::write(dir.path().join("signing.pem"), signing_pem()).unwrap();
    std::fs::write(
        dir.path().join("master.key"),
        format!("{}\n", encoding::encode(&[0x42; 32])),
    )
    .unwrap();
    let path = dir.path().join("ttp.toml");
    std::fs::write(&path, config_text(extra_global)).unwrap();
    let config = TtpConfig::from_toml_file(&path).unwrap();
    (dir, path, config)
}

/// The server key of the method vectors.
pub fn vector_key() -> ServerKey {
    ServerKey::from_bytes(
        &encoding::decode_array::<32>(vectors()["derivations"][0]["serverKey"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

/// `docs/vectors/method-v1.json`.
pub fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/vectors/method-v1.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

impl TestTtp {
    /// Starts a TTP; `with_vector_key` imports the vectors' server key as
    /// version 1 of recipient A (and B) before it starts.
    pub async fn start(with_vector_key: bool) -> TestTtp {
        TestTtp::start_with(with_vector_key, "").await
    }

    /// [`TestTtp::start`] with extra top-level configuration lines.
    pub async fn start_with(with_vector_key: bool, extra_global: &str) -> TestTtp {
        let (dir, config_path, config) = prepare(extra_global);
        if with_vector_key {
            let mut store = KeyStore::open_config(&config).unwrap();
            assert_eq!(store.import(ORG_A, SCOPE_A, &vector_key()).unwrap(), 1);
            assert_eq!(store.import(ORG_B, SCOPE_B, &vector_key()).unwrap(), 1);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(pseudoform_ttp::serve_with_shutdown(
            config.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        ));
        TestTtp {
            base,
            dir,
            config,
            config_path,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server and waits for it (and the audit log) to finish.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.config.database.clone()
    }

    /// POSTs JSON with a bearer token; returns status, headers and JSON body.
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post_raw(path, token, None, serde_json::to_vec(body).unwrap())
            .await
    }

    /// POSTs raw bytes with an optional token and `Origin`.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        origin: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, headers, value)
    }

    /// GETs a path; returns status, headers and JSON body.
    pub async fn get(
        &self,
        path_and_query: &str,
        origin: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, headers, value)
    }
}

impl Drop for TestTtp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// 64 pseudo-random bytes from a label (deterministic, for test blinds).
pub fn wide(label: &str) -> [u8; 64] {
    Sha512::digest(label.as_bytes()).into()
}

/// A blind and the blinded element of `input`.
pub fn blinded(input: &[u8], label: &str) -> (Blind, [u8; 32]) {
    let r = Blind::from_uniform_bytes(&wide(label)).unwrap();
    let b = blind(input, &r).unwrap();
    (r, b)
}

/// Decrypts a JWE of recipient A (`a = true`) or B, checks that its
/// plaintext is a JWS of the claims with the TTP's signing key (ES256, kid,
/// typ JWT); returns the JWE's protected header and the JSON claims.
pub fn open_jwe(token: &str, a: bool) -> (JweHeader, Value) {
    let (pair_a, pair_b) = key_pairs();
    let decrypter = if a {
        jwe::RSA_OAEP_256
            .decrypter_from_pem(&pair_a.private_pem)
            .unwrap()
    } else {
        jwe::RSA_OAEP
            .decrypter_from_pem(&pair_b.private_pem)
            .unwrap()
    };
    let (payload, header) = jwe::deserialize_compact(token, &decrypter).unwrap();
    assert_eq!(header.content_type(), Some("JWT"));
    let (public, kid) = signing_public();
    let verifier = josekit::jws::ES256
        .verifier_from_pem(public.as_bytes())
        .unwrap();
    let (claims, jws_header) = josekit::jws::deserialize_compact(&payload, &verifier).unwrap();
    assert_eq!(jws_header.algorithm(), Some("ES256"));
    assert_eq!(jws_header.key_id(), Some(kid.as_str()));
    assert_eq!(jws_header.token_type(), Some("JWT"));
    (header, serde_json::from_slice(&claims).unwrap())
}

/// The element of a `subject` claim.
pub fn subject_element(subject: &Value) -> [u8; 32] {
    let text = subject
        .as_str()
        .unwrap()
        .strip_prefix("pseudonym:eval:")
        .unwrap();
    encoding::decode_array::<32>(text).unwrap()
}

/// Checks that an error answer is an `ErrorBody` with the given code.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["detail"], body["message"], "{body}");
}
