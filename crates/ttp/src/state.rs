//! The running TTP's shared state, built once from a [`TtpConfig`]:
//! recipients with their loaded public keys and signed key statements,
//! callers, the key cache, the ledger, the evaluation queue and the audit
//! log.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Context};
use pseudoform_core::PseudonymType;

use crate::audit::{self, AuditLog};
use crate::callers::Callers;
use crate::config::{Budgets, Limit, TokenLifetimes, TtpConfig, WireProfile, REVERSIBLE_TYPE};
use crate::error::ApiError;
use crate::jwe::RecipientKey;
use crate::keys::{DomainKeys, KeyCache, KeyStore};
use crate::ledger::{self, Charge, Charged, Ledger, Once, OnceKind};
use crate::provider_keys::Directory;
use crate::queue::EvalQueue;
use crate::signing::SigningKey;

/// A configured recipient, ready to serve.
#[derive(Debug)]
pub struct RecipientState {
    /// The recipient organisation.
    pub organization: String,
    /// The recipient scope.
    pub scope: String,
    /// Types it may receive, in the order of the Wkz table.
    pub allowed_types: Vec<PseudonymType>,
    /// Types every record for it must have, in the order of the Wkz table.
    pub required_types: Vec<PseudonymType>,
    /// Whether it may receive type R, the reversible local patient number
    /// (never evaluated here: [`crate::config::REVERSIBLE_TYPE`]).
    pub allows_reversible: bool,
    /// Whether every record for it must have type R.
    pub requires_reversible: bool,
    /// Its form origins and every identity frame origin
    /// ([`TtpConfig::frame_origins`]), lowercase.
    pub allowed_origins: HashSet<String>,
    /// Its public key.
    pub key: RecipientKey,
    /// Its public key as the TTP vouches for it: the compact JWS of
    /// `GET /v1/policy`'s `recipientKey`.
    pub key_statement: String,
    /// Its own budget, if configured.
    pub budget: Option<Limit>,
}

/// Everything the request handlers share.
#[derive(Debug)]
pub struct AppState {
    /// Recipients by `(organization, scope)`.
    pub recipients: HashMap<(String, String), Arc<RecipientState>>,
    /// The callers.
    pub callers: Callers,
    /// The providers' encryption keys as the TTP states them.
    pub provider_keys: Directory,
    /// The key that signs the claims of every JWE, the access tokens, the
    /// recipient keys and the audit heads.
    pub signing_key: Arc<SigningKey>,
    /// The decrypted keys.
    pub keys: Arc<KeyCache>,
    /// Single-use ids and budgets.
    pub ledger: Arc<dyn Ledger>,
    /// The audit log.
    pub audit: AuditLog,
    /// Every recipient's origins, the frame origins and the callers'
    /// validation origins (for CORS).
    pub all_origins: Vec<String>,
    /// `Access-Control-Max-Age`.
    pub cors_max_age: Duration,
    /// The TTP's public base URL (of DPoP proofs' `htu`).
    pub public_url: String,
    /// The `iss` and `aud` of its tokens.
    pub issuer: String,
    /// Whether static development tokens are accepted.
    pub static_tokens: bool,
    /// Lifetimes of issued tokens.
    pub tokens: TokenLifetimes,
    /// The global budgets.
    pub budgets: Budgets,
    /// The bounded queue of the CPU work.
    pub queue: EvalQueue,
    /// Seconds from a JWE's `iat` to its `exp`.
    pub jwe_lifetime: i64,
}

impl AppState {
    /// Builds the state: reads the recipients' and callers' public keys, the
    /// signing and master keys (refusing secret files others can read),
    /// opens the database, checks that every existing key decrypts, and
    /// starts the audit writer (whose thread handle is returned).
    pub fn new(config: &TtpConfig) -> anyhow::Result<(AppState, JoinHandle<()>)> {
        config.validate()?;
        if config.development_static_tokens {
            tracing::warn!(
                "development_static_tokens is on: static bearer tokens never expire and are bound to nothing; never use this in production"
            );
        }
        let signing_key = Arc::new(SigningKey::load(config)?);
        let mut recipients = HashMap::new();
        let mut all_origins = Vec::new();
        let frame_origins = config.frame_origins();
        for r in &config.recipients {
            let pem = std::fs::read(&r.public_key)
                .with_context(|| format!("cannot read public key {}", r.public_key.display()))?;
            let key = match r.profile {
                WireProfile::Pseudoform => RecipientKey::from_pem(
                    &pem,
                    r.jwe_alg.unwrap_or(config.jwe_alg),
                    r.kid.as_deref(),
                ),
                WireProfile::National => RecipientKey::national_from_pem(&pem, r.kid.as_deref()),
            }
            .with_context(|| format!("public key {}", r.public_key.display()))?;
            let key_statement = key.statement(&r.organization, &r.scope, &signing_key)?;
            let mut allowed_types = r
                .allowed_types
                .iter()
                .filter(|t| *t != REVERSIBLE_TYPE)
                .map(|t| PseudonymType::from_str(t).map_err(|_| anyhow!("unknown type {t:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            allowed_types.sort();
            let mut required_types = r
                .required_types
                .iter()
                .filter(|t| *t != REVERSIBLE_TYPE)
                .map(|t| PseudonymType::from_str(t).map_err(|_| anyhow!("unknown type {t:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            required_types.sort();
            let allowed_origins: HashSet<String> = r
                .allowed_origins
                .iter()
                .map(|o| o.to_ascii_lowercase())
                .chain(frame_origins.iter().cloned())
                .collect();
            for o in r.allowed_origins.iter().map(|o| o.to_ascii_lowercase()) {
                if !all_origins.contains(&o) {
                    all_origins.push(o);
                }
            }
            recipients.insert(
                (r.organization.clone(), r.scope.clone()),
                Arc::new(RecipientState {
                    organization: r.organization.clone(),
                    scope: r.scope.clone(),
                    allowed_types,
                    required_types,
                    allows_reversible: r.allowed_types.iter().any(|t| t == REVERSIBLE_TYPE),
                    requires_reversible: r.required_types.iter().any(|t| t == REVERSIBLE_TYPE),
                    allowed_origins,
                    key,
                    key_statement,
                    budget: r.budget,
                }),
            );
        }
        let validation_origins = config
            .callers
            .iter()
            .flat_map(|c| c.validation_origins.iter().map(|o| o.to_ascii_lowercase()));
        for o in frame_origins.into_iter().chain(validation_origins) {
            if !all_origins.contains(&o) {
                all_origins.push(o);
            }
        }
        let callers = Callers::new(config)?;
        let provider_keys = Directory::new(config, &callers, &signing_key)?;
        let mut store = KeyStore::open_config(config)?;
        for r in &config.recipients {
            // Fails early on a wrong master key or a damaged database.
            store.load(&r.organization, &r.scope)?;
        }
        let keys = Arc::new(KeyCache::new(store));
        let ledger = ledger::open(&config.ledger, &config.database, config.replay_capacity)?;
        let (audit, audit_thread) = audit::open(&config.database, Arc::clone(&signing_key))?;
        let state = AppState {
            recipients,
            callers,
            provider_keys,
            signing_key,
            keys,
            ledger,
            audit,
            all_origins,
            cors_max_age: Duration::from_secs(config.cors_max_age_seconds),
            public_url: config.public_url(),
            issuer: config.issuer(),
            static_tokens: config.development_static_tokens,
            tokens: config.tokens,
            budgets: config.budgets,
            queue: EvalQueue::start(&config.queue)?,
            jwe_lifetime: config.jwe_lifetime_seconds,
        };
        Ok((state, audit_thread))
    }

    /// The configured recipient, if any.
    pub fn recipient(&self, organization: &str, scope: &str) -> Option<Arc<RecipientState>> {
        self.recipients
            .get(&(organization.to_owned(), scope.to_owned()))
            .cloned()
    }

    /// The keys of a recipient's domain as they are now (made on first
    /// use), without blocking the executor.
    pub async fn domain_keys(
        &self,
        organization: &str,
        scope: &str,
    ) -> anyhow::Result<Arc<DomainKeys>> {
        let cache = Arc::clone(&self.keys);
        let (org, scope) = (organization.to_owned(), scope.to_owned());
        tokio::task::spawn_blocking(move || cache.load(&org, &scope))
            .await
            .map_err(|e| anyhow!("key loading task failed: {e}"))?
    }

    /// Whether the TTP can serve evaluations now: the key store can be read
    /// and the audit log written (a probe row is committed). Off the
    /// executor; `false` with the reason logged.
    pub async fn ready(&self) -> bool {
        let cache = Arc::clone(&self.keys);
        let keys = tokio::task::spawn_blocking(move || cache.epoch()).await;
        if !matches!(keys, Ok(Ok(_))) {
            tracing::warn!("not ready: the key store cannot be read");
            return false;
        }
        if !self.audit.probe().await {
            tracing::warn!("not ready: the audit log cannot be written");
            return false;
        }
        true
    }

    /// [`Ledger::use_once`] off the executor; 500 when the ledger fails.
    pub async fn use_once(
        &self,
        kind: OnceKind,
        issuer: &str,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<Once, ApiError> {
        let ledger = Arc::clone(&self.ledger);
        let (issuer, jti) = (issuer.to_owned(), jti.to_owned());
        blocking(move || ledger.use_once(kind, &issuer, &jti, expires_at, now)).await
    }

    /// [`Ledger::charge`] of `n` now, off the executor; 500 when the ledger fails.
    pub async fn charge(&self, charges: Vec<Charge>, n: u64) -> Result<Charged, ApiError> {
        let ledger = Arc::clone(&self.ledger);
        let now = pseudoform_protocol::unix_now();
        blocking(move || ledger.charge(&charges, n, now)).await
    }
}

/// Runs a ledger call on the blocking pool; its failure is a 500 (logged).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the ledger failed");
            Err(ApiError::Internal)
        }
        Err(_) => Err(ApiError::Internal),
    }
}
