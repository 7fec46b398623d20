//! A real TTP on 127.0.0.1 with its own SQLite database in a temporary
//! directory: two recipients, four callers, their tokens, and requests to it.

use std::path::PathBuf;

use josekit::jwe::JweHeader;
use pseudoform_core::encoding;
use pseudoform_ttp::auth::hash_token;
use pseudoform_ttp::keys::KeyStore;
use pseudoform_ttp::TtpConfig;
use serde_json::{json, Value};

use crate::jose::{oaep, oaep256};
use crate::keys::{recipient_a, recipient_b, ttp_signing, RsaKey};
use crate::vectors::{blinded, server_key_v1};

/// Recipient A (registry A): may receive every type, B included;
/// `RSA-OAEP-256`; the fixed kid [`KID_A`].
pub const ORG_A: &str = "oin:00000001000000001000";
/// Scope of recipient A (the scope of the method vectors).
pub const SCOPE_A: &str = "kwaliteitsregistratie-a";
/// The kid the TTP writes in JWEs for recipient A.
pub const KID_A: &str = "registry-a-2026";
/// Recipient B: may not receive B; `RSA-OAEP`; thumbprint kid.
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

/// The configuration text of the test TTP (paths relative to its directory).
pub fn config_text(extra_global: &str) -> String {
    format!(
        r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"
{extra_global}

[rate_limit]
evaluations_per_minute = 60000000
burst = 1000000

[[recipients]]
organization = "{ORG_A}"
scope = "{SCOPE_A}"
public_key = "a.pem"
kid = "{KID_A}"
allowed_types = ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"]
allowed_origins = ["{ORIGIN_A}"]

[[recipients]]
organization = "{ORG_B}"
scope = "{SCOPE_B}"
public_key = "b.pem"
allowed_types = ["NGGV", "RGG", "GG"]
required_types = ["RGG", "NGGV"]
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
    std::fs::write(dir.path().join("a.pem"), &recipient_a().public_pem).unwrap();
    std::fs::write(dir.path().join("b.pem"), &recipient_b().public_pem).unwrap();
    std::fs::write(dir.path().join("signing.pem"), &ttp_signing().private_pem).unwrap();
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

/// A status, the headers and the JSON body (`null` if none) of an answer.
pub type Answer = (u16, reqwest::header::HeaderMap, Value);

/// A TTP running on 127.0.0.1 with its own database.
#[derive(Debug)]
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

impl TestTtp {
    /// Starts a TTP; `with_vector_key` imports the vectors' server key as
    /// version 1 of recipients A and B before it starts.
    pub async fn start(with_vector_key: bool) -> TestTtp {
        TestTtp::start_with(with_vector_key, "").await
    }

    /// [`TestTtp::start`] with extra top-level configuration lines.
    pub async fn start_with(with_vector_key: bool, extra_global: &str) -> TestTtp {
        let (dir, config_path, config) = prepare(extra_global);
        if with_vector_key {
            let mut store = KeyStore::open_config(&config).unwrap();
            assert_eq!(store.import(ORG_A, SCOPE_A, &server_key_v1()).unwrap(), 1);
            assert_eq!(store.import(ORG_B, SCOPE_B, &server_key_v1()).unwrap(), 1);
        }
        let mut ttp = TestTtp {
            base: String::new(),
            dir,
            config,
            config_path,
            client: reqwest::Client::new(),
            shutdown: None,
            server: None,
        };
        ttp.serve().await;
        ttp
    }

    /// Serves the configuration on a new port.
    async fn serve(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.shutdown = Some(tx);
        self.server = Some(tokio::spawn(pseudoform_ttp::serve_with_shutdown(
            self.config.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
        )));
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

    /// Stops the server and starts another on the same database and keys.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.serve().await;
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.config.database.clone()
    }

    /// POSTs JSON with a bearer token.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
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
    ) -> Answer {
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
        answer(request).await
    }

    /// GETs a path with an optional `Origin`.
    pub async fn get(&self, path_and_query: &str, origin: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

impl Drop for TestTtp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A `POST /oprf/eval` body of a blinded element made from `label`.
pub fn eval_request(org: &str, scope: &str, pseudonym_type: &str, label: &str) -> Value {
    let (_, b) = blinded(label.as_bytes(), label);
    json!({
        "encryptedPersonalId": encoding::encode(&b),
        "recipientOrganization": org,
        "recipientScope": scope,
        "pseudonymType": pseudonym_type,
    })
}

/// A `POST /v1/evaluate` body of `records` records, each with one item per
/// type in `types`; the elements are made from `salt`, record and type.
pub fn batch_request(org: &str, scope: &str, types: &[&str], records: usize, salt: &str) -> Value {
    let records: Vec<Value> = (0..records)
        .map(|i| {
            let items: Vec<Value> = types
                .iter()
                .map(|t| {
                    let label = format!("{salt}/{i}/{t}");
                    let (_, b) = blinded(label.as_bytes(), &label);
                    json!({"type": t, "blindedInput": encoding::encode(&b)})
                })
                .collect();
            json!({ "items": items })
        })
        .collect();
    json!({"recipientOrganization": org, "recipientScope": scope, "records": records})
}

/// Opens a JWE of recipient A (`a = true`, `RSA-OAEP-256`) or B
/// (`RSA-OAEP`) as [`crate::jose::open_jwe`] does.
pub fn open_jwe(token: &str, a: bool) -> (JweHeader, Value) {
    let (to, alg): (&RsaKey, _) = if a {
        (recipient_a(), oaep256())
    } else {
        (recipient_b(), oaep())
    };
    crate::jose::open_jwe(token, to, alg)
}

/// Checks that an error answer is an `ErrorBody` with the given code.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["detail"], body["message"], "{body}");
}
