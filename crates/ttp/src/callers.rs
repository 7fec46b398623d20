//! The callers at run time: each with its role, the recipients it may act
//! on, the providers a processor acts for, its budgets, and the P-256 keys
//! that verify its client assertions and subject tokens (by `kid`, the
//! RFC 7638 thumbprint, or each in turn).
//!
//! With `development_static_tokens`, a caller may instead present a static
//! bearer token; the configuration holds only its SHA-256.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{bail, Context};
use josekit::jws::JwsHeader;
use sha2::{Digest, Sha256};

use crate::config::{Budgets, Role, TtpConfig};
use crate::jose::{self, PublicKey};

/// Lowercase hex SHA-256 of a static token, as the configuration stores it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random static token (256 bits, hex), for development.
pub fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("no system randomness")?;
    Ok(hex::encode(bytes))
}

/// One configured caller.
#[derive(Debug)]
pub struct Caller {
    id: String,
    party: String,
    role: Role,
    domains: HashSet<(String, String)>,
    acts_for: HashSet<String>,
    keys: Vec<PublicKey>,
    budgets: Budgets,
    validation_origins: HashSet<String>,
}

impl Caller {
    /// The client id (as in the audit log and the tokens' `client_id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The party id (`ura:…` or `oin:…`).
    pub fn party(&self) -> &str {
        &self.party
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The caller's budgets (the global ones with its own in their place).
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Whether the caller may request evaluations for the recipient: a
    /// provider or processor that lists it. A recipient never may.
    pub fn may_evaluate(&self, organization: &str, scope: &str) -> bool {
        self.role != Role::Recipient && self.acts_on(organization, scope)
    }

    /// Whether the caller may re-key for the recipient: only the recipient
    /// caller of that domain.
    pub fn may_rekey(&self, organization: &str, scope: &str) -> bool {
        self.role == Role::Recipient && self.acts_on(organization, scope)
    }

    fn acts_on(&self, organization: &str, scope: &str) -> bool {
        self.domains
            .contains(&(organization.to_owned(), scope.to_owned()))
    }

    /// Whether a validation token for the recipient may be had: a provider
    /// or processor that delivers to it (a recipient never).
    pub fn may_validate(&self, organization: &str, scope: &str) -> bool {
        self.may_evaluate(organization, scope)
    }

    /// Whether `origin` is one of the caller's validation pages
    /// (`validation_origins`, compared in lowercase).
    pub fn validates_from(&self, origin: &str) -> bool {
        self.validation_origins
            .contains(&origin.to_ascii_lowercase())
    }

    /// The recipients `(organization, scope)` the caller acts on.
    pub fn domains(&self) -> impl Iterator<Item = &(String, String)> {
        self.domains.iter()
    }

    /// The provider of an evaluation token asked for `requested`: a
    /// provider is always itself (naming another is refused); a processor
    /// must name one of its `acts_for`. `None` when refused.
    pub fn provider_for(&self, requested: Option<&str>) -> Option<String> {
        match (self.role, requested) {
            (Role::Provider, None) => Some(self.party.clone()),
            (Role::Provider, Some(p)) => (p == self.party).then(|| p.to_owned()),
            (Role::Processor, Some(p)) => self.acts_for.contains(p).then(|| p.to_owned()),
            _ => None,
        }
    }

    /// The payload and header of `token` if one of the caller's keys signed
    /// it (`ES256`): the key its `kid` names, or, without a `kid`, any.
    pub fn verify(&self, token: &str) -> Option<(Vec<u8>, JwsHeader)> {
        let kid = jose::peek_header(token)?
            .get("kid")
            .map(|k| k.as_str().map(str::to_owned));
        match kid {
            Some(Some(kid)) => {
                let key = self.keys.iter().find(|k| k.thumbprint == kid)?;
                jose::verify(token, &key.verifier)
            }
            Some(None) => None,
            None => self
                .keys
                .iter()
                .find_map(|k| jose::verify(token, &k.verifier)),
        }
    }
}

/// All configured callers.
pub struct Callers {
    by_id: HashMap<String, Arc<Caller>>,
    by_token: HashMap<[u8; 32], Arc<Caller>>,
    /// The client id of each signing key, by thumbprint.
    key_owners: HashMap<String, String>,
}

impl std::fmt::Debug for Callers {
    /// The callers, without their token hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_id.values()).finish()
    }
}

impl Callers {
    /// The callers of a validated `config`, their keys read. Refuses a
    /// public key that two callers (or one twice) have: a key is one party's.
    pub fn new(config: &TtpConfig) -> anyhow::Result<Self> {
        let mut by_id = HashMap::new();
        let mut by_token = HashMap::new();
        let mut thumbprints: HashMap<String, String> = HashMap::new();
        for c in &config.callers {
            let mut keys = Vec::new();
            for path in &c.public_keys {
                let pem = std::fs::read(path)
                    .with_context(|| format!("caller {}: cannot read {}", c.id, path.display()))?;
                let key = PublicKey::from_pem(&pem).with_context(|| {
                    format!(
                        "caller {}: {} is not a P-256 public key",
                        c.id,
                        path.display()
                    )
                })?;
                if let Some(other) = thumbprints.insert(key.thumbprint.clone(), c.id.clone()) {
                    bail!(
                        "caller {}: the public key {} is also a key of caller {other}: a key belongs to one caller",
                        c.id,
                        path.display()
                    );
                }
                keys.push(key);
            }
            let caller = Arc::new(Caller {
                id: c.id.clone(),
                party: c.party().to_owned(),
                role: c.role,
                domains: c
                    .domains()
                    .into_iter()
                    .map(|r| (r.organization.clone(), r.scope.clone()))
                    .collect(),
                acts_for: c.acts_for.iter().cloned().collect(),
                keys,
                budgets: c
                    .budgets
                    .map_or(config.budgets, |own| own.over(&config.budgets)),
                validation_origins: c
                    .validation_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect(),
            });
            if let Some(hash) = &c.token_sha256 {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(hash, &mut bytes)
                    .with_context(|| format!("caller {}: token_sha256 is not hex", c.id))?;
                by_token.insert(bytes, Arc::clone(&caller));
            }
            by_id.insert(c.id.clone(), caller);
        }
        Ok(Callers {
            by_id,
            by_token,
            key_owners: thumbprints,
        })
    }

    /// The client id of the caller whose signing key (`public_keys`) has
    /// the RFC 7638 thumbprint `thumbprint`, if any.
    pub fn key_owner(&self, thumbprint: &str) -> Option<&str> {
        self.key_owners.get(thumbprint).map(String::as_str)
    }

    /// The caller with client id `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Caller>> {
        self.by_id.get(id).cloned()
    }

    /// The caller of a static token (development only; there are none otherwise).
    pub fn by_static_token(&self, token: &str) -> Option<Arc<Caller>> {
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_token.get(&hash).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_token_hash() {
        assert_eq!(
            hash_token("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
        assert_eq!(generate_token().unwrap().len(), 64);
    }
}
