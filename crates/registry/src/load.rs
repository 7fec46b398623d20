//! Loading a [`Receiver`] from its [`RegistryConfig`]: the registry's key
//! files (or PEM texts), the pinned TTP signing keys, the allowed and
//! required types (`R`, the reversible pseudonym, apart) and the store. All file I/O of the receiver is here.

use std::sync::Arc;

use anyhow::Context;
use pseudoform_core::PseudonymType;
use pseudoform_protocol::registry::REVERSIBLE_TYPE;
use zeroize::Zeroizing;

use crate::config::RegistryConfig;
use crate::jwe::{KeyRing, SignatureKeys};
use crate::receiver::Receiver;
use crate::store::Store;
use crate::submitter::SubmitterCheck;

impl Receiver {
    /// A receiver from a configuration: loads the keys and opens the store.
    pub fn from_config(config: &RegistryConfig) -> anyhow::Result<Self> {
        let mut keys = KeyRing::new();
        for (i, key) in config.keys.iter().enumerate() {
            let pem = Zeroizing::new(match (&key.path, &key.pem) {
                (Some(path), None) => pseudoform_protocol::secret_file::read(path)
                    .with_context(|| format!("cannot read registry key {}", path.display()))?,
                (None, Some(pem)) => pem.as_bytes().to_vec(),
                _ => anyhow::bail!("keys[{i}] needs exactly one of path and pem"),
            });
            keys.add_pem(&pem, key.kid.as_deref())
                .with_context(|| format!("keys[{i}] cannot be used"))?;
        }
        let signature_keys = ttp_signing_keys(config)?;
        anyhow::ensure!(
            !signature_keys.is_empty() || config.accept_unsigned,
            "ttp_signing_keys is empty: pin the TTP's public signing key \
             (`pseudoform-ttp signing-key --public-pem`)"
        );
        let (allow_reversible, allowed) = split_reversible(&config.allowed_types);
        let (require_reversible, required) = split_reversible(&config.required_types);
        anyhow::ensure!(
            allow_reversible || !require_reversible,
            "required_types: {REVERSIBLE_TYPE} is not one of allowed_types"
        );
        let allowed = parse_types(&allowed, "allowed_types")?;
        let required = parse_types(&required, "required_types")?;
        let store = Store::open(&config.database)
            .with_context(|| format!("cannot open the database {}", config.database.display()))?;
        let submitter = SubmitterCheck::open(
            &config.public_urls(),
            config.require_submitter_proof,
            &config.database,
        )
        .with_context(|| format!("cannot open the database {}", config.database.display()))?;
        Ok(Receiver::new(
            &config.recipient_organization,
            &config.recipient_scope,
            &allowed,
            keys,
            Arc::new(store),
        )?
        .with_required_types(&required)?
        .with_reversible(allow_reversible, require_reversible)
        .with_clock_skew(config.clock_skew_seconds)
        .with_ttp_signing_keys(signature_keys)
        .accepting_unsigned(config.accept_unsigned)
        .with_ttp_alg(config.ttp_jwe_alg)
        .allowing_clear_blind_factors(config.development_clear_blind_factors)
        .with_submitter_check(submitter))
    }
}

/// The pinned TTP signing keys of `ttp_signing_keys` (for the claims in
/// JWEs and for validate tokens).
pub fn ttp_signing_keys(config: &RegistryConfig) -> anyhow::Result<SignatureKeys> {
    let mut keys = SignatureKeys::new();
    for path in &config.ttp_signing_keys {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read TTP signing key {}", path.display()))?;
        keys.add_pem(&pem)
            .with_context(|| format!("TTP signing key {}", path.display()))?;
    }
    Ok(keys)
}

/// Whether `codes` holds the reversible type `R`, and the other codes.
pub fn split_reversible(codes: &[String]) -> (bool, Vec<String>) {
    let (reversible, others): (Vec<String>, Vec<String>) =
        codes.iter().cloned().partition(|c| c == REVERSIBLE_TYPE);
    (!reversible.is_empty(), others)
}

/// Parses the type codes of the configuration member `what`.
pub fn parse_types(codes: &[String], what: &str) -> anyhow::Result<Vec<PseudonymType>> {
    codes
        .iter()
        .map(|code| {
            code.parse::<PseudonymType>()
                .map_err(|_| anyhow::anyhow!("{what}: unknown pseudonym type {code:?}"))
        })
        .collect()
}
