//! The providers' encryption keys and the TTP's signed directory of them.
//!
//! A provider caller may list P-256 public keys in `encryption_keys` (PEM
//! SPKI); the last one is its current key, the earlier ones are previous
//! keys that stay listed so that what was encrypted to them can still be
//! found by `kid`. The browser encrypts the reversible pseudonym `R` (the
//! provider-scoped local patient number) to the current key; only the
//! provider holds the private key (`docs/protocol.md`, "Provider keys and
//! the signed directory").
//!
//! At start-up the TTP signs one statement per key with its claim-signing
//! key (`typ` [`TYP_PROVIDER_KEY`]) — the provider, the public JWK with its
//! RFC 7638 thumbprint as `kid`, whether it is current, and the time of
//! start — so that neither a registry nor a page can put a key of its own
//! in a provider's place. `GET /v1/provider-keys?provider=ura:…`
//! ([`provider_keys`]) serves them, current first.
//!
//! Refused at start-up: a key that is not a readable P-256 public key, one
//! that is also a signing key (any caller's `public_keys`, or the TTP's
//! own), and one listed twice (in one caller or in two).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64ct::{Base64UrlUnpadded, Encoding};
use openssl::pkey::PKey;
use pseudoform_protocol::jwk::ec_thumbprint;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::callers::Callers;
use crate::config::{Role, TtpConfig};
use crate::error::ApiError;
use crate::jose::{p256_coordinates, P256};
use crate::signing::SigningKey;
use crate::state::AppState;

/// `typ` of the TTP's statement of a provider's encryption key.
pub const TYP_PROVIDER_KEY: &str = "pseudoform-provider-key+jwt";

/// The `alg` of a provider's encryption key in its JWK: RFC 9180 HPKE,
/// DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.
// TODO(contract-15): core — `pseudoform_core::reversible::REVERSIBLE_SUITE`.
pub const REVERSIBLE_SUITE: &str = "HPKE-P256-SHA256-A256GCM";

/// Path of the directory.
pub const PATH: &str = "/v1/provider-keys";

/// `Cache-Control` of the directory's answers: the statements change only
/// when the TTP restarts.
const CACHE_CONTROL: &str = "max-age=300";

/// A provider's P-256 encryption public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionKey {
    kid: String,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl EncryptionKey {
    /// The key of a PEM SPKI P-256 public key.
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let key = PKey::public_key_from_pem(pem).map_err(|_| anyhow!("not a PEM public key"))?;
        let ec = key.ec_key().map_err(|_| anyhow!("not an EC public key"))?;
        ec.check_key()
            .map_err(|_| anyhow!("the public key is invalid"))?;
        let (x, y) = p256_coordinates(&ec)?;
        Ok(EncryptionKey {
            kid: ec_thumbprint(P256, &x, &y),
            x,
            y,
        })
    }

    /// The `kid`: the key's RFC 7638 thumbprint.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK as the statement carries it.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": P256,
            "x": Base64UrlUnpadded::encode_string(&self.x),
            "y": Base64UrlUnpadded::encode_string(&self.y),
            "kid": self.kid,
            "alg": REVERSIBLE_SUITE,
            "use": "enc",
        })
    }

    /// The TTP's signed statement that this is `provider`'s key
    /// (`current` or a previous one), made at `iat`.
    pub fn statement(
        &self,
        provider: &str,
        current: bool,
        iat: i64,
        signer: &SigningKey,
    ) -> anyhow::Result<String> {
        let claims = json!({
            "provider": provider,
            "jwk": self.jwk(),
            "current": current,
            "iat": iat,
        });
        signer.sign_as(TYP_PROVIDER_KEY, &serde_json::to_vec(&claims)?)
    }
}

/// The signed directory: per known provider (`ura:…`), its statements,
/// current first.
#[derive(Debug, Default)]
pub struct Directory {
    providers: HashMap<String, Vec<String>>,
}

impl Directory {
    /// Reads every provider caller's `encryption_keys` of a validated
    /// `config`, checks them against the signing keys (`callers`' and the
    /// TTP's `signer`) and each other, and signs their statements. Every
    /// provider the configuration names (a provider caller's party, a
    /// processor's `acts_for`) is known, with or without keys.
    pub fn new(config: &TtpConfig, callers: &Callers, signer: &SigningKey) -> anyhow::Result<Self> {
        let iat = pseudoform_protocol::unix_now();
        let mut providers: HashMap<String, Vec<String>> = HashMap::new();
        for c in &config.callers {
            match c.role {
                Role::Provider => {
                    providers.entry(c.party().to_owned()).or_default();
                }
                Role::Processor => {
                    for p in &c.acts_for {
                        providers.entry(p.clone()).or_default();
                    }
                }
                Role::Recipient => {}
            }
        }
        let mut seen: HashSet<String> = HashSet::new();
        for c in &config.callers {
            if c.encryption_keys.is_empty() {
                continue;
            }
            if c.role != Role::Provider {
                bail!(
                    "caller {}: only a provider caller has encryption_keys",
                    c.id
                );
            }
            let mut keys = Vec::with_capacity(c.encryption_keys.len());
            for path in &c.encryption_keys {
                let what = || format!("caller {}: encryption key {}", c.id, path.display());
                let pem =
                    std::fs::read(path).with_context(|| format!("{}: cannot read", what()))?;
                let key = EncryptionKey::from_pem(&pem)
                    .with_context(|| format!("{}: not a P-256 public key", what()))?;
                if let Some(owner) = callers.key_owner(key.kid()) {
                    bail!(
                        "{}: it is also a signing key (public_keys) of caller {owner}: an encryption key is no signing key",
                        what()
                    );
                }
                if key.kid() == signer.kid() {
                    bail!("{}: it is the TTP's own signing key", what());
                }
                if !seen.insert(key.kid().to_owned()) {
                    bail!(
                        "{}: the key is listed twice (in this caller or another): a key belongs to one provider",
                        what()
                    );
                }
                keys.push(key);
            }
            let party = c.party();
            let mut statements = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate().rev() {
                let current = i + 1 == keys.len();
                statements.push(key.statement(party, current, iat, signer)?);
            }
            providers.insert(party.to_owned(), statements);
        }
        Ok(Directory { providers })
    }

    /// The statements of `provider`, current first (empty without keys);
    /// `None` for a provider the TTP does not know.
    pub fn statements(&self, provider: &str) -> Option<&[String]> {
        self.providers.get(provider).map(Vec::as_slice)
    }
}

/// Query of `GET /v1/provider-keys`.
#[derive(Debug, Deserialize)]
pub struct ProviderKeysQuery {
    provider: Option<String>,
}

/// `GET /v1/provider-keys?provider=ura:…`: public, no token, not audited
/// (it is no evaluation), CORS `*`: `{"provider", "keys": [<JWS>, …]}`,
/// current first. 400 without a well-formed `provider`, 404 for a provider
/// the TTP does not know.
pub async fn provider_keys(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ProviderKeysQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::ProviderInvalid)?;
    let provider = query.provider.ok_or(ApiError::ProviderMissing)?;
    if !pseudoform_protocol::is_ura(&provider) {
        return Err(ApiError::ProviderInvalid);
    }
    let keys = state
        .provider_keys
        .statements(&provider)
        .ok_or(ApiError::ProviderUnknown)?;
    let mut response = Json(json!({ "provider": provider, "keys": keys })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_verify_with_the_signing_key_and_carry_the_thumbprint() {
        let signer = SigningKey::from_pem(&crate::signing::generate_pem().unwrap()).unwrap();
        let pem = crate::signing::generate_pem().unwrap();
        let public = PKey::private_key_from_pem(&pem)
            .unwrap()
            .public_key_to_pem()
            .unwrap();
        let key = EncryptionKey::from_pem(&public).unwrap();
        assert_eq!(key.kid().len(), 43);
        let jws = key
            .statement("ura:00000001", true, 1_700_000_000, &signer)
            .unwrap();
        let payload = signer.verify_as(TYP_PROVIDER_KEY, &jws).unwrap();
        let claims: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(claims["provider"], "ura:00000001");
        assert_eq!(claims["current"], true);
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["jwk"]["kid"], key.kid());
        assert_eq!(claims["jwk"]["alg"], REVERSIBLE_SUITE);
        assert_eq!(claims["jwk"]["use"], "enc");
        // No other typed token of the same key passes for one.
        assert!(signer
            .verify_as(crate::signing::TYP_RECIPIENT_KEY, &jws)
            .is_none());
        // A private key, an RSA key or a P-384 key is no encryption key.
        assert!(EncryptionKey::from_pem(&pem).is_err());
        let p384 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
        let p384 = PKey::from_ec_key(openssl::ec::EcKey::generate(&p384).unwrap())
            .unwrap()
            .public_key_to_pem()
            .unwrap();
        assert!(EncryptionKey::from_pem(&p384).is_err());
    }
}
