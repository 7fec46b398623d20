//! Callers: bearer-token authentication, what each caller may call, and
//! per-caller rate limits.
//!
//! The configuration holds only the SHA-256 of each token; a presented token
//! is hashed and looked up by its hash. Each caller has a token bucket that
//! counts **evaluations** (elements evaluated), not requests, since each
//! evaluation is one guess an attacker could test against the OPRF oracle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::config::{RateLimitConfig, TtpConfig};
use crate::error::ApiError;

/// Lowercase hex SHA-256 of a bearer token, as the configuration stores it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random bearer token (256 bits, hex).
pub fn generate_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).context("no system randomness")?;
    Ok(hex::encode(bytes))
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// One configured caller.
pub struct Caller {
    name: String,
    recipients: HashSet<(String, String)>,
    may_rekey: bool,
    limit: RateLimitConfig,
    bucket: Mutex<Bucket>,
}

impl Caller {
    /// The caller's name (as in the audit log).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the caller may request evaluations for the recipient.
    pub fn may_call(&self, organization: &str, scope: &str) -> bool {
        self.recipients
            .contains(&(organization.to_owned(), scope.to_owned()))
    }

    /// Whether the caller may rekey for the recipient.
    pub fn may_rekey(&self, organization: &str, scope: &str) -> bool {
        self.may_rekey && self.may_call(organization, scope)
    }

    /// Takes `count` evaluations from the caller's bucket, or answers 429
    /// with the seconds after which they would be available.
    pub fn take(&self, count: u64) -> Result<(), ApiError> {
        let burst = f64::from(self.limit.burst);
        let per_second = f64::from(self.limit.evaluations_per_minute) / 60.0;
        #[allow(clippy::cast_precision_loss)]
        let wanted = count as f64;
        if wanted > burst {
            return Err(ApiError::rate_limited(
                None,
                "the request has more evaluations than the caller may make at once; split it",
            ));
        }
        let mut bucket = self.bucket.lock().map_err(|_| ApiError::internal())?;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.updated = now;
        if bucket.tokens >= wanted {
            bucket.tokens -= wanted;
            return Ok(());
        }
        let wait = ((wanted - bucket.tokens) / per_second).ceil().max(1.0);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let wait = wait.min(86_400.0) as u64;
        Err(ApiError::rate_limited(
            Some(wait),
            "too many evaluations; retry after the given seconds",
        ))
    }
}

/// All configured callers, by token hash.
pub struct Callers {
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
}

/// The bearer token of a request, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Callers {
    /// The callers of `config`, each with a full bucket.
    pub fn new(config: &TtpConfig) -> anyhow::Result<Self> {
        let mut by_hash = HashMap::new();
        for c in &config.callers {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&c.token_sha256, &mut hash)
                .with_context(|| format!("caller {}: token_sha256 is not hex", c.name))?;
            let limit = c.rate_limit.unwrap_or(config.rate_limit);
            let caller = Caller {
                name: c.name.clone(),
                recipients: c
                    .recipients
                    .iter()
                    .map(|r| (r.organization.clone(), r.scope.clone()))
                    .collect(),
                may_rekey: c.may_rekey,
                limit,
                bucket: Mutex::new(Bucket {
                    tokens: f64::from(limit.burst),
                    updated: Instant::now(),
                }),
            };
            by_hash.insert(hash, Arc::new(caller));
        }
        Ok(Callers { by_hash })
    }

    /// The caller presenting the request's bearer token, or 401.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::missing_token)?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash
            .get(&hash)
            .cloned()
            .ok_or_else(ApiError::invalid_token)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(per_minute: u32, burst: u32) -> Caller {
        Caller {
            name: "c".into(),
            recipients: HashSet::new(),
            may_rekey: false,
            limit: RateLimitConfig {
                evaluations_per_minute: per_minute,
                burst,
            },
            bucket: Mutex::new(Bucket {
                tokens: f64::from(burst),
                updated: Instant::now(),
            }),
        }
    }

    #[test]
    fn bucket_counts_evaluations() {
        let c = caller(60, 10);
        assert!(c.take(6).is_ok());
        assert!(c.take(4).is_ok());
        let e = c.take(3).unwrap_err();
        assert_eq!(e.status().as_u16(), 429);
        assert!(matches!(e.retry_after(), Some(3 | 4)));
        let e = c.take(11).unwrap_err();
        assert_eq!(e.retry_after(), None);
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer   abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
        assert_eq!(
            hash_token("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
