//! A real TTP on 127.0.0.1 with its own SQLite database in a temporary
//! directory: two recipients, callers of every role with their client
//! keys, and the credentials and requests of those callers — DPoP-bound
//! tokens from `POST /v1/token` for back ends (`client_credentials`) and
//! browsers (token exchange), or, in a development-mode TTP, static tokens.

use std::path::PathBuf;

use curve25519_dalek::scalar::Scalar;
use josekit::jwe::JweHeader;
use pseudoform_core::encoding;
use pseudoform_protocol::auth::{
    AccessTokenClaims, Cnf, SubjectTokenClaims, CLIENT_ASSERTION_TYPE, DPOP_HEADER,
    GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, TOKEN_PATH, TOKEN_TYPE_JWT, TYP_ACCESS_TOKEN,
};
use pseudoform_protocol::client::{random_jti, EcKey};
use pseudoform_ttp::callers::hash_token;
use pseudoform_ttp::keys::KeyStore;
use pseudoform_ttp::TtpConfig;
use serde_json::{json, Value};

use crate::jose::{oaep, oaep256};
use crate::keys::{client_key, client_key_pem, recipient_a, recipient_b, ttp_signing, RsaKey};
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
/// The origin of registry A's frame-mode page (a frame parent, never a
/// browser origin of the TTP).
pub const FRAME_PARENT_A: &str = "https://registratie-a.example.nl";
/// The origin of registry B's frame-mode page.
pub const FRAME_PARENT_B: &str = "https://registratie-b.example.nl";
/// The test TTP's issuer (fixed, so that its tokens outlive a restart on
/// another port).
pub const ISSUER: &str = "https://ttp.test";
/// A provider that acts for itself only through a processor.
pub const PROVIDER_C: &str = "ura:00000003";
/// The login popup of provider `ura:00000001`'s portal (the frame
/// settings' `providers`).
pub const PORTAL_LOGIN: &str = "https://portal.example.nl/popup";
/// An acting person (a clinician's employee id).
pub const CLINICIAN: &str = "clinician-1";

/// Development-mode TTPs only: the static token of provider
/// `ura:00000009` (recipients A and B).
pub const TOKEN_FORM: &str = "token-form-0123456789";
/// Development-mode TTPs only: the static token of a recipient caller of
/// registry A.
pub const TOKEN_REGISTRY: &str = "token-registry-a-0123456789";
/// The configuration line that switches static tokens on.
pub const DEV: &str = "development_static_tokens = true";

/// A caller of the test TTP with a client key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// Provider `ura:00000001`: recipients A and B.
    ProviderA,
    /// Provider `ura:00000002`: recipient A only.
    ProviderB,
    /// Processor `oin:00000003000000003000`, acting for `ura:00000001` and
    /// [`PROVIDER_C`]: recipient A.
    Processor,
    /// Registry A's back end: the recipient caller of A (re-keying only).
    RegistryA,
}

impl Client {
    /// The client id.
    pub const fn id(self) -> &'static str {
        match self {
            Client::ProviderA => "ura:00000001",
            Client::ProviderB => "ura:00000002",
            Client::Processor => "oin:00000003000000003000",
            Client::RegistryA => ORG_A,
        }
    }

    /// The index of its client key.
    const fn key_index(self) -> usize {
        match self {
            Client::ProviderA => 0,
            Client::ProviderB => 1,
            Client::Processor => 2,
            Client::RegistryA => 3,
        }
    }

    /// Its client key.
    pub fn key(self) -> EcKey {
        client_key(self.key_index())
    }

    /// The file name of its public key in the TTP's directory.
    fn public_file(self) -> String {
        format!("client-{}.pem", self.key_index())
    }
}

/// A key no caller has (an attacker's).
pub fn stranger_key() -> EcKey {
    client_key(4)
}

/// The configuration text of the test TTP (paths relative to its directory).
pub fn config_text(extra_global: &str) -> String {
    let dev = extra_global.contains(DEV);
    let static_callers = if dev {
        format!(
            r#"
[[callers]]
id = "{STATIC_PROVIDER}"
role = "provider"
token_sha256 = "{form}"
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}, {{ organization = "{ORG_B}", scope = "{SCOPE_B}" }}]

[[callers]]
id = "registry-a-static"
party = "{ORG_A}"
role = "recipient"
token_sha256 = "{registry}"
recipient = {{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}
"#,
            form = hash_token(TOKEN_FORM),
            registry = hash_token(TOKEN_REGISTRY),
        )
    } else {
        String::new()
    };
    let budgets = if extra_global.contains("[budgets]") {
        String::new()
    } else {
        // Out of the way of every test but those of the budgets.
        "[budgets]\nbrowser_token = { per_minute = 1000000, per_day = 1000000 }\nperson = { per_minute = 1000000, per_day = 1000000 }\nprovider = { per_minute = 100000000, per_day = 100000000 }\nrecipient = { per_minute = 100000000, per_day = 100000000 }\nclient = { per_minute = 100000000, per_day = 100000000 }\n".to_owned()
    };
    let a = |c: Client| c.public_file();
    format!(
        r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"
issuer = "{ISSUER}"
{extra_global}

{budgets}

[[recipients]]
organization = "{ORG_A}"
scope = "{SCOPE_A}"
public_key = "a.pem"
kid = "{KID_A}"
allowed_types = ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"]
allowed_origins = ["{ORIGIN_A}"]
frame_parent_origins = ["{FRAME_PARENT_A}"]

[[recipients]]
organization = "{ORG_B}"
scope = "{SCOPE_B}"
public_key = "b.pem"
allowed_types = ["NGGV", "RGG", "GG"]
required_types = ["RGG", "NGGV"]
allowed_origins = ["{ORIGIN_B}"]
frame_parent_origins = ["{FRAME_PARENT_B}"]
jwe_alg = "RSA-OAEP"

[[callers]]
id = "ura:00000001"
role = "provider"
public_keys = ["{pa}"]
login = "{PORTAL_LOGIN}"
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}, {{ organization = "{ORG_B}", scope = "{SCOPE_B}" }}]

[[callers]]
id = "ura:00000002"
role = "provider"
public_keys = ["{pb}"]
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}]

[[callers]]
id = "oin:00000003000000003000"
role = "processor"
acts_for = ["ura:00000001", "{PROVIDER_C}"]
public_keys = ["{pp}"]
recipients = [{{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}]

[[callers]]
id = "{ORG_A}"
role = "recipient"
public_keys = ["{ra}"]
recipient = {{ organization = "{ORG_A}", scope = "{SCOPE_A}" }}
{static_callers}"#,
        pa = a(Client::ProviderA),
        pb = a(Client::ProviderB),
        pp = a(Client::Processor),
        ra = a(Client::RegistryA),
    )
}

/// Creates `path` owner-only with `content`.
fn secret(path: PathBuf, content: &[u8]) {
    pseudoform_protocol::secret_file::create(&path, content).unwrap();
}

/// Writes the configuration, keys and master key into a new directory.
pub fn prepare(extra_global: &str) -> (tempfile::TempDir, PathBuf, TtpConfig) {
    let (dir, path, config) = prepare_edited(extra_global, |_, text| text);
    (dir, path, config.unwrap())
}

/// [`prepare`] with the configuration text changed by `edit` (which may
/// also write files into the directory it is given); the configuration as
/// loaded, or why it is refused.
pub fn prepare_edited(
    extra_global: &str,
    edit: impl FnOnce(&std::path::Path, String) -> String,
) -> (tempfile::TempDir, PathBuf, anyhow::Result<TtpConfig>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.pem"), &recipient_a().public_pem).unwrap();
    std::fs::write(dir.path().join("b.pem"), &recipient_b().public_pem).unwrap();
    for c in [
        Client::ProviderA,
        Client::ProviderB,
        Client::Processor,
        Client::RegistryA,
    ] {
        std::fs::write(dir.path().join(c.public_file()), c.key().public_pem()).unwrap();
    }
    secret(
        dir.path().join("signing.pem"),
        ttp_signing().private_pem.as_bytes(),
    );
    secret(
        dir.path().join("master.key"),
        format!("{}\n", encoding::encode(&[0x42; 32])).as_bytes(),
    );
    let path = dir.path().join("ttp.toml");
    let mut text = edit(dir.path(), config_text(extra_global));
    if !text.contains("[ledger]")
        && !text.contains("[keys]")
        && !text.contains(crate::postgres::SQLITE_STORES)
    {
        if let Some(sections) = crate::postgres::run_sections(dir.path()) {
            text.push_str(&sections);
        }
    }
    std::fs::write(&path, text).unwrap();
    let config = TtpConfig::from_toml_file(&path);
    (dir, path, config)
}

/// One configuration file per replica next to `config` (`replica-{i}.toml`,
/// the same text with `database = "replica-{i}.sqlite"`): replicas as on
/// machines of their own, each with its own database and audit chain,
/// sharing what the configuration puts in PostgreSQL or on a token.
pub fn replica_configs(config: &std::path::Path, replicas: usize) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(config).unwrap();
    let dir = config.parent().unwrap();
    (0..replicas)
        .map(|i| {
            let own = text.replace(
                "database = \"ttp.sqlite\"",
                &format!("database = \"replica-{i}.sqlite\""),
            );
            assert_ne!(own, text, "the test configuration names its database");
            let path = dir.join(format!("replica-{i}.toml"));
            std::fs::write(&path, own).unwrap();
            path
        })
        .collect()
}

/// The database of replica `i` of [`replica_configs`] in `dir`.
pub fn replica_database(dir: &std::path::Path, i: usize) -> PathBuf {
    dir.join(format!("replica-{i}.sqlite"))
}

/// A status, the headers and the JSON body (`null` if none) of an answer.
pub type Answer = (u16, reqwest::header::HeaderMap, Value);

/// A DPoP-bound credential: the access token, the key it is bound to, and
/// (a browser's) the origin it is used from.
#[derive(Debug)]
pub struct Credential {
    /// The access token.
    pub token: String,
    /// The DPoP key.
    pub key: EcKey,
    /// The form origin of a browser's token.
    pub origin: Option<String>,
    /// The token endpoint's answer.
    pub answer: Value,
}

/// A TTP running on 127.0.0.1 with its own database.
#[derive(Debug)]
pub struct TestTtp {
    /// `http://127.0.0.1:PORT`, its public URL.
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

    /// A TTP that also accepts the static tokens [`TOKEN_FORM`] and
    /// [`TOKEN_REGISTRY`] (development mode).
    pub async fn start_dev(with_vector_key: bool) -> TestTtp {
        TestTtp::start_with(with_vector_key, DEV).await
    }

    /// [`TestTtp::start`] with extra top-level configuration lines (a
    /// `[budgets]` table among them replaces the test's generous budgets).
    pub async fn start_with(with_vector_key: bool, extra_global: &str) -> TestTtp {
        TestTtp::start_edited(with_vector_key, extra_global, |_, text| text).await
    }

    /// [`TestTtp::start_with`] with the configuration text changed by
    /// `edit` ([`prepare_edited`]), which must leave it valid.
    pub async fn start_edited(
        with_vector_key: bool,
        extra_global: &str,
        edit: impl FnOnce(&std::path::Path, String) -> String,
    ) -> TestTtp {
        let (dir, config_path, config) = prepare_edited(extra_global, edit);
        let config = config.unwrap();
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

    /// Stops the server and starts another on the same database and keys
    /// (on another port: its public URL changes, its issuer does not).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.serve().await;
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.config.database.clone()
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a token request `form` with a DPoP proof of `key` (if any) and
    /// an `Origin` (if any).
    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
        key: Option<&EcKey>,
        origin: Option<&str>,
    ) -> Answer {
        let url = self.url(TOKEN_PATH);
        let mut request = self.client.post(&url).form(form);
        if let Some(key) = key {
            let proof = key.dpop_proof("POST", &url, None, now()).unwrap();
            request = request.header(DPOP_HEADER, proof);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        answer(request).await
    }

    /// A client assertion of `client` for this TTP.
    pub fn assertion(&self, client: Client) -> String {
        client
            .key()
            .client_assertion(client.id(), ISSUER, now())
            .unwrap()
    }

    /// `client_credentials` for `client` (acting for `provider`, a
    /// processor), with a fresh DPoP key: the answer.
    pub async fn backend_answer(&self, client: Client, provider: Option<&str>) -> (Answer, EcKey) {
        let key = EcKey::generate().unwrap();
        let assertion = self.assertion(client);
        let mut form = vec![
            ("grant_type", GRANT_CLIENT_CREDENTIALS),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        if let Some(p) = provider {
            form.push(("provider", p));
        }
        (self.token_request(&form, Some(&key), None).await, key)
    }

    /// A back end's credential for `client` (a processor acting for
    /// `ura:00000001`).
    pub async fn backend(&self, client: Client) -> Credential {
        let provider = (client == Client::Processor).then_some("ura:00000001");
        self.backend_for(client, provider).await
    }

    /// A back end's credential for `client` acting for `provider`.
    pub async fn backend_for(&self, client: Client, provider: Option<&str>) -> Credential {
        let ((status, _, answer), key) = self.backend_answer(client, provider).await;
        assert_eq!(status, 200, "{answer}");
        Credential {
            token: answer["access_token"].as_str().unwrap().to_owned(),
            key,
            origin: None,
            answer,
        }
    }

    /// The claims of a subject token of `client` for `person`, the key
    /// `jkt` and `origin`, valid for 60 s.
    pub fn subject_claims(
        &self,
        client: Client,
        person: &str,
        jkt: &str,
        origin: &str,
    ) -> SubjectTokenClaims {
        let now = now();
        SubjectTokenClaims {
            iss: client.id().into(),
            aud: ISSUER.into(),
            sub: person.into(),
            iat: now,
            exp: now + 60,
            jti: random_jti().unwrap(),
            cnf: Cnf { jkt: jkt.into() },
            origin: origin.into(),
            provider: None,
        }
    }

    /// The token exchange of a browser with `subject` (a signed subject
    /// token), its DPoP key and `origin`: the answer.
    pub async fn exchange_answer(
        &self,
        subject: &str,
        key: &EcKey,
        origin: Option<&str>,
    ) -> Answer {
        let form = [
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_JWT),
        ];
        self.token_request(&form, Some(key), origin).await
    }

    /// A browser's credential: the clinician `person` of `client` (a
    /// processor acting for `provider`) at the form `origin`.
    pub async fn browser_for(
        &self,
        client: Client,
        person: &str,
        origin: &str,
        provider: Option<&str>,
    ) -> Credential {
        let key = EcKey::generate().unwrap();
        let mut claims = self.subject_claims(client, person, key.thumbprint(), origin);
        claims.provider = provider.map(str::to_owned);
        let subject = client.key().subject_token(&claims).unwrap();
        let (status, _, answer) = self.exchange_answer(&subject, &key, Some(origin)).await;
        assert_eq!(status, 200, "{answer}");
        Credential {
            token: answer["access_token"].as_str().unwrap().to_owned(),
            key,
            origin: Some(origin.to_owned()),
            answer,
        }
    }

    /// [`CLINICIAN`]'s browser credential of provider A at [`ORIGIN_A`].
    pub async fn browser(&self) -> Credential {
        self.browser_for(Client::ProviderA, CLINICIAN, ORIGIN_A, None)
            .await
    }

    /// POSTs JSON with `credential` (a fresh proof; its origin if a browser's).
    pub async fn call(&self, credential: &Credential, path: &str, body: &Value) -> Answer {
        let origin = credential.origin.clone();
        self.call_raw(
            credential,
            path,
            origin.as_deref(),
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// POSTs raw bytes with `credential`, a fresh proof and `origin` (if any).
    pub async fn call_raw(
        &self,
        credential: &Credential,
        path: &str,
        origin: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let url = self.url(path);
        let proof = credential
            .key
            .dpop_proof("POST", &url, Some(&credential.token), now())
            .unwrap();
        self.call_with(&credential.token, Some(&proof), path, origin, body)
            .await
    }

    /// POSTs raw bytes with `Authorization: DPoP token`, the proof (if any)
    /// and `origin` (if any).
    pub async fn call_with(
        &self,
        token: &str,
        proof: Option<&str>,
        path: &str,
        origin: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("authorization", format!("DPoP {token}"))
            .body(body);
        if let Some(p) = proof {
            request = request.header(DPOP_HEADER, p);
        }
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        answer(request).await
    }

    /// POSTs JSON with a static bearer token (development mode) or none.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.post_raw(path, token, None, serde_json::to_vec(body).unwrap())
            .await
    }

    /// POSTs raw bytes with an optional static token and `Origin`.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        origin: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = self
            .client
            .post(self.url(path))
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
        let mut request = self.client.get(self.url(path_and_query));
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        answer(request).await
    }

    /// Registry A's public key as this TTP states it: the `recipientKey` of
    /// `GET /v1/policy`, verified as a browser does with the key of `GET
    /// /v1/signing-keys` (ES256, `typ`, organisation and scope); the JWK.
    pub async fn recipient_key_a(&self) -> Value {
        let (status, _, jwks) = self.get("/v1/signing-keys", None).await;
        assert_eq!(status, 200, "{jwks}");
        let signing = josekit::jwk::Jwk::from_bytes(jwks["keys"][0].to_string()).unwrap();
        let verifier = josekit::jws::ES256.verifier_from_jwk(&signing).unwrap();
        let query = format!("/v1/policy?recipientOrganization={ORG_A}&recipientScope={SCOPE_A}");
        let (status, _, policy) = self.get(&query, None).await;
        assert_eq!(status, 200, "{policy}");
        let statement = policy["recipientKey"].as_str().unwrap();
        let (payload, header) = josekit::jws::deserialize_compact(statement, &verifier).unwrap();
        assert_eq!(header.token_type(), Some("pseudoform-recipient-key+jwt"));
        let payload: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            (payload["organization"].as_str(), payload["scope"].as_str()),
            (Some(ORG_A), Some(SCOPE_A))
        );
        assert_eq!(payload["jwk"]["kid"], KID_A);
        payload["jwk"].clone()
    }

    /// The browser's `encryptedBlindFactors` of `blinds` for `record_jwe`,
    /// to registry A's key as this TTP states it ([`TestTtp::recipient_key_a`]).
    pub async fn seal_for_a(
        &self,
        record_jwe: &str,
        blinds: &[(&str, &pseudoform_core::oprf::Blind)],
    ) -> String {
        let jwk_json = self.recipient_key_a().await;
        let jwk = josekit::jwk::Jwk::from_bytes(jwk_json.to_string()).unwrap();
        let encrypter = josekit::jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).unwrap();
        let mut header = JweHeader::new();
        header.set_content_encryption(pseudoform_protocol::JWE_ENC_A256GCM);
        header.set_content_type(pseudoform_protocol::registry::BLIND_FACTORS_CTY);
        header.set_key_id(jwk_json["kid"].as_str().unwrap());
        let plaintext = serde_json::to_vec(&pseudoform_protocol::registry::BlindFactorsPlaintext {
            blind_factors: crate::registry::blind_map(blinds),
            rec: pseudoform_protocol::registry::record_digest(record_jwe),
        })
        .unwrap();
        josekit::jwe::serialize_compact(&plaintext, &header, &encrypter).unwrap()
    }

    /// The MRN provider factor `t_p` of `provider` in recipient A's domain,
    /// from the TTP's database (the test knows the master key).
    pub fn provider_factor(&self, provider: &str) -> Scalar {
        let mut store = KeyStore::open_config(&self.config).unwrap();
        let keys = store.load(ORG_A, SCOPE_A).unwrap();
        let binding = keys.binding_key().expect("recipient A has a binding key");
        *pseudoform_ttp::binding::provider_factor(binding, ORG_A, SCOPE_A, provider)
    }
}

/// `t · N` for the padded base64url of an element `N` (an MRN bound to a
/// provider with factor `t`).
pub fn scaled(t: &Scalar, element: &str) -> String {
    let n = curve25519_dalek::ristretto::CompressedRistretto(
        encoding::decode_array::<32>(element).unwrap(),
    )
    .decompress()
    .unwrap();
    encoding::encode((n * t).compress().as_bytes())
}

/// The provider of the development static token [`TOKEN_FORM`].
pub const STATIC_PROVIDER: &str = "ura:00000009";

/// Verifies the audit log of `ttp`'s database with the TTP's public key only.
pub fn verify_audit(ttp: &TestTtp) -> pseudoform_ttp::audit::chain::Verification {
    verify_audit_file(&ttp.database())
}

/// Verifies the audit log of the TTP database at `path` with the TTP's
/// public key only.
pub fn verify_audit_file(path: &std::path::Path) -> pseudoform_ttp::audit::chain::Verification {
    let key = pseudoform_ttp::audit::chain::HeadKey::from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    pseudoform_ttp::audit::chain::verify(path, &key).unwrap()
}

/// The current time, seconds since the Unix epoch.
pub fn now() -> i64 {
    pseudoform_protocol::unix_now()
}

/// An access token signed with the TTP's signing key (as only the TTP can):
/// for tests of expiry and of claims the TTP never issues.
pub fn forge_access_token(claims: &AccessTokenClaims) -> String {
    let key = ttp_signing();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type(TYP_ACCESS_TOKEN);
    header.set_key_id(&key.kid);
    let signer = josekit::jws::ES256
        .signer_from_pem(key.private_pem.as_bytes())
        .unwrap();
    josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &header, &signer).unwrap()
}

/// The claims of a credential's access token (unverified).
pub fn token_claims(credential: &Credential) -> AccessTokenClaims {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let payload = credential.token.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap()
}

/// The PEM of a caller's client key (for a tool's key file).
pub fn client_pem(client: Client) -> &'static str {
    client_key_pem(client.key_index())
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

/// Checks that a token endpoint answer is an OAuth error with `error` and `code`.
pub fn assert_token_error(status: u16, body: &Value, want_status: u16, error: &str, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

/// The configuration text with recipient A of the national profile
/// (`profile = "national"`), for [`TestTtp::start_edited`].
pub fn national_a(text: String) -> String {
    let kid = format!("kid = \"{KID_A}\"\n");
    assert!(text.contains(&kid));
    text.replacen(&kid, &format!("{kid}profile = \"national\"\n"), 1)
}
