//! The connection file of a processor: who it is at the TTP, for which
//! provider it acts, which registry it delivers to, and the TTP's signing
//! keys it pins; and what [`Connection::open`] learns from the TTP with
//! them: an access token, the registry's policy and its key, verified.
//!
//! ```toml
//! ttp_url = "https://ttp.example.nl"
//! client_id = "oin:00000099000000001000"
//! client_key = "processor-key.pem"          # P-256, owner-only; relative to this file
//! provider = "ura:00000001"                 # the provider this delivery is for
//! ttp_signing_keys = ["ttp-signing-public.pem"]
//!
//! [registry]
//! organization = "oin:00000001000000001000"
//! scope = "kwaliteitsregistratie-a"
//! url = "https://registratie-a.example.nl"  # for --deliver
//! # public_url = "…"                        # the URL the registry knows itself by, if another
//! ```

use std::path::{Path, PathBuf};

use josekit::jwe::alg::rsaes::RsaesJweEncrypter;
use josekit::jwk::Jwk;
use pseudoform_core::{PseudonymType, Recipient};
use pseudoform_protocol::client::{ClientError, EcKey, TtpClient};
use pseudoform_protocol::ttp::{Policy, POLICY_PATH, TYP_RECIPIENT_KEY};
use serde::Deserialize;

/// Fewest bytes of the registry's RSA modulus (2048 bits).
pub const MIN_MODULUS_BYTES: usize = 256;

/// Why the connection cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The connection file cannot be read or is not valid.
    #[error("the connection file {path}: {message}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The TTP refused or could not be reached.
    #[error(transparent)]
    Ttp(#[from] ClientError),
    /// The policy is not what a TTP answers.
    #[error("the TTP's policy cannot be read: {0}")]
    Policy(String),
    /// The registry's key as the TTP states it cannot be trusted or used.
    #[error("recipientKey.{rule}: {message}")]
    RecipientKey {
        /// `missing`, `invalid`, `signature` or `mismatch`.
        rule: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// A requested type the registry does not accept.
    #[error("the registry does not accept the pseudonym type {0}")]
    TypeNotAllowed(String),
}

/// The `[registry]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTarget {
    /// `oin:` + the OIN (8 digits, then 8 alphanumerics + `0000` or 9 + `000`).
    pub organization: String,
    /// The key domain.
    pub scope: String,
    /// Where to deliver (`--deliver`), without a path.
    #[serde(default)]
    pub url: Option<String>,
    /// The URL the registry knows itself by (the submitter proof's `htu`),
    /// if not `url`.
    #[serde(default)]
    pub public_url: Option<String>,
}

/// The connection file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionConfig {
    /// The TTP's public URL.
    pub ttp_url: String,
    /// The TTP's `issuer`, when it is not its public URL.
    #[serde(default)]
    pub ttp_issuer: Option<String>,
    /// The processor's client id at the TTP.
    pub client_id: String,
    /// Its P-256 private key (PEM, owner-only).
    pub client_key: PathBuf,
    /// The provider it acts for.
    pub provider: String,
    /// The TTP's signing public keys (SPKI PEM) to pin.
    pub ttp_signing_keys: Vec<PathBuf>,
    /// The registry.
    pub registry: RegistryTarget,
}

impl ConnectionConfig {
    /// Reads a connection file; relative paths are relative to it.
    pub fn from_file(path: &Path) -> Result<Self, ConnectionError> {
        let bad = |message: String| ConnectionError::Config {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut config: ConnectionConfig =
            toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.client_key = base.join(&config.client_key);
        for key in &mut config.ttp_signing_keys {
            *key = base.join(&*key);
        }
        if config.ttp_signing_keys.is_empty() {
            return Err(bad(
                "ttp_signing_keys must name the TTP's signing key".into()
            ));
        }
        if !pseudoform_protocol::is_ura(&config.provider) {
            return Err(bad("provider must be ura: and 8 digits".into()));
        }
        Recipient::new(&config.registry.organization, &config.registry.scope)
            .map_err(|e| bad(format!("registry: {}", e.code())))?;
        Ok(config)
    }
}

/// The registry's key to seal blind factors to, as the TTP states it.
pub struct RecipientKey {
    /// Its `kid`.
    pub kid: String,
    /// The RSA-OAEP-256 encrypter.
    pub encrypter: RsaesJweEncrypter,
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The TTP's statement of the registry's key, verified with one of the
/// pinned `signing_keys` (SPKI PEM), of `organization` and `scope`: the key.
pub fn recipient_key_of(
    statement: Option<&str>,
    signing_keys: &[Vec<u8>],
    organization: &str,
    scope: &str,
) -> Result<RecipientKey, ConnectionError> {
    let refuse = |rule, message| ConnectionError::RecipientKey { rule, message };
    let statement = statement.ok_or(refuse(
        "missing",
        "the TTP states no key of the registry to encrypt the blind factors to",
    ))?;
    let verified = signing_keys.iter().find_map(|pem| {
        let verifier = josekit::jws::ES256.verifier_from_pem(pem).ok()?;
        josekit::jws::deserialize_compact(statement, &verifier).ok()
    });
    let (payload, header) = verified.ok_or(refuse(
        "signature",
        "the statement of the registry's key is not signed by a pinned TTP key",
    ))?;
    if header.token_type() != Some(TYP_RECIPIENT_KEY) {
        return Err(refuse(
            "invalid",
            "the statement is not of a recipient's key",
        ));
    }
    let payload: serde_json::Value = serde_json::from_slice(&payload)
        .map_err(|_| refuse("invalid", "the statement is not JSON"))?;
    let member = |name: &str| payload.get(name).and_then(serde_json::Value::as_str);
    if member("organization") != Some(organization) || member("scope") != Some(scope) {
        return Err(refuse(
            "mismatch",
            "the statement is of another registry's key",
        ));
    }
    let jwk = payload.get("jwk").cloned().unwrap_or_default();
    let text = |name: &str| {
        jwk.get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(kid), Some(n)) = (text("kid"), text("n")) else {
        return Err(refuse(
            "invalid",
            "the registry's key has no kid or modulus",
        ));
    };
    if text("kty") != Some("RSA")
        || text("alg") != Some(pseudoform_protocol::JWE_ALG_RSA_OAEP_256)
        || !(jwk.get("use").is_none() || text("use") == Some("enc"))
    {
        return Err(refuse(
            "invalid",
            "the registry's key is not an RSA-OAEP-256 encryption key",
        ));
    }
    use base64ct::{Base64UrlUnpadded, Encoding};
    let modulus = Base64UrlUnpadded::decode_vec(n)
        .map_err(|_| refuse("invalid", "the registry's key is malformed"))?;
    if modulus.len() < MIN_MODULUS_BYTES {
        return Err(refuse("invalid", "the registry's key is too short"));
    }
    let key = Jwk::from_bytes(jwk.to_string())
        .map_err(|_| refuse("invalid", "the registry's key is malformed"))?;
    let encrypter = josekit::jwe::RSA_OAEP_256
        .encrypter_from_jwk(&key)
        .map_err(|_| refuse("invalid", "the registry's key cannot be used"))?;
    Ok(RecipientKey {
        kid: kid.to_owned(),
        encrypter,
    })
}

/// An open connection: the TTP client, the recipient, the policy and the
/// registry's verified key.
#[derive(Debug)]
pub struct Connection {
    /// The connection file.
    pub config: ConnectionConfig,
    /// The TTP client (acting for the provider).
    pub ttp: TtpClient,
    /// The recipient of the pseudonyms.
    pub recipient: Recipient,
    /// The registry's policy.
    pub policy: Policy,
    /// The registry's key.
    pub recipient_key: RecipientKey,
    /// The HTTP client (shared with the TTP client).
    pub http: reqwest::Client,
}

impl Connection {
    /// Obtains a token (so a wrong key or an unknown caller stops the run
    /// before any row is read), the policy and the registry's key.
    pub async fn open(config: ConnectionConfig) -> Result<Self, ConnectionError> {
        let bad = |message: String| ConnectionError::Config {
            path: "client_key / ttp_signing_keys".into(),
            message,
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(ClientError::Http)?;
        let key = EcKey::from_file(&config.client_key)?;
        let mut ttp = TtpClient::new(http.clone(), &config.ttp_url, &config.client_id, key)?
            .acting_for(&config.provider);
        if let Some(issuer) = &config.ttp_issuer {
            ttp = ttp.issuer(issuer);
        }
        ttp.token().await?;
        let signing_keys = config
            .ttp_signing_keys
            .iter()
            .map(|p| std::fs::read(p).map_err(|e| bad(format!("{}: {e}", p.display()))))
            .collect::<Result<Vec<_>, _>>()?;
        let organization = &config.registry.organization;
        let scope = &config.registry.scope;
        let url = format!("{}{POLICY_PATH}", config.ttp_url.trim_end_matches('/'));
        let response = http
            .get(url)
            .query(&[
                ("recipientOrganization", organization),
                ("recipientScope", scope),
            ])
            .send()
            .await
            .map_err(ClientError::Http)?;
        if !response.status().is_success() {
            return Err(ConnectionError::Policy(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let policy: Policy = response
            .json()
            .await
            .map_err(|e| ConnectionError::Policy(e.to_string()))?;
        if &policy.recipient_organization != organization || &policy.recipient_scope != scope {
            return Err(ConnectionError::Policy("it is another registry's".into()));
        }
        let recipient_key = recipient_key_of(
            policy.recipient_key.as_deref(),
            &signing_keys,
            organization,
            scope,
        )?;
        let recipient =
            Recipient::new(organization, scope).map_err(|e| ConnectionError::Policy(e.code()))?;
        Ok(Connection {
            config,
            ttp,
            recipient,
            policy,
            recipient_key,
            http,
        })
    }

    /// The types to ask for: `asked` (or, if none, every type the policy
    /// allows that the TTP evaluates), each allowed; and the required ones.
    pub fn types(
        &self,
        asked: &[PseudonymType],
    ) -> Result<(Vec<PseudonymType>, Vec<PseudonymType>), ConnectionError> {
        let allowed: Vec<PseudonymType> = self
            .policy
            .allowed_types
            .iter()
            .filter_map(|code| code.parse().ok())
            .collect();
        let required: Vec<PseudonymType> = self
            .policy
            .required_types
            .iter()
            .filter_map(|code| code.parse().ok())
            .collect();
        let mut types = if asked.is_empty() {
            allowed.clone()
        } else {
            asked.to_vec()
        };
        if let Some(no) = types.iter().find(|t| !allowed.contains(t)) {
            return Err(ConnectionError::TypeNotAllowed(no.code().to_owned()));
        }
        for ty in &required {
            if !types.contains(ty) {
                types.push(*ty);
            }
        }
        Ok((types, required))
    }
}
