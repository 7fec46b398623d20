//! Callers: bearer-token authentication, what each caller may call, and
//! per-caller rate limits.
//!
//! The configuration holds only the SHA-256 of each token; a presented token
//! is hashed and looked up by its hash. Each caller has a rate limit
//! (`governor`'s GCRA, a token bucket of `burst` that refills at
//! `evaluations_per_minute`) that counts **evaluations** (elements
//! evaluated), not requests, since each evaluation is one guess an attacker
//! could test against the OPRF oracle.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::{header, HeaderMap};
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, Quota};
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

/// One configured caller.
#[derive(Debug)]
pub struct Caller {
    name: String,
    recipients: HashSet<(String, String)>,
    may_rekey: bool,
    limiter: DefaultDirectRateLimiter,
}

/// The longest `Retry-After` ever answered, in seconds (a day).
const MAX_RETRY_AFTER: u64 = 86_400;

/// Whole seconds of `wait`, rounded up; at least 1, at most a day.
fn retry_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.clamp(1, MAX_RETRY_AFTER)
}

impl Caller {
    /// A caller with a full budget of `limit`.
    fn new(
        name: &str,
        recipients: HashSet<(String, String)>,
        may_rekey: bool,
        limit: RateLimitConfig,
    ) -> anyhow::Result<Self> {
        let positive = |n: u32| {
            NonZeroU32::new(n)
                .with_context(|| format!("caller {name}: rate_limit values must be positive"))
        };
        let quota = Quota::per_minute(positive(limit.evaluations_per_minute)?)
            .allow_burst(positive(limit.burst)?);
        Ok(Caller {
            name: name.to_owned(),
            recipients,
            may_rekey,
            limiter: DefaultDirectRateLimiter::direct(quota),
        })
    }

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

    /// Takes `count` evaluations from the caller's budget, or answers 429:
    /// with the seconds after which they would be available, or without
    /// them when `count` is more than the burst and can never pass.
    pub fn take(&self, count: u64) -> Result<(), ApiError> {
        if count == 0 {
            return Ok(());
        }
        let n = u32::try_from(count)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or(ApiError::OverBurst)?;
        match self.limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ApiError::RateLimited {
                retry_after: retry_seconds(not_until.wait_time_from(self.limiter.clock().now())),
            }),
            Err(_insufficient_capacity) => Err(ApiError::OverBurst),
        }
    }
}

/// All configured callers, by token hash.
pub struct Callers {
    by_hash: HashMap<[u8; 32], Arc<Caller>>,
}

impl std::fmt::Debug for Callers {
    /// The callers, without their token hashes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_hash.values()).finish()
    }
}

/// The bearer token of a request, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl Callers {
    /// The callers of `config`, each with a full budget.
    pub fn new(config: &TtpConfig) -> anyhow::Result<Self> {
        let mut by_hash = HashMap::new();
        for c in &config.callers {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&c.token_sha256, &mut hash)
                .with_context(|| format!("caller {}: token_sha256 is not hex", c.name))?;
            let recipients = c
                .recipients
                .iter()
                .map(|r| (r.organization.clone(), r.scope.clone()))
                .collect();
            let limit = c.rate_limit.unwrap_or(config.rate_limit);
            let caller = Caller::new(&c.name, recipients, c.may_rekey, limit)?;
            by_hash.insert(hash, Arc::new(caller));
        }
        Ok(Callers { by_hash })
    }

    /// The caller presenting the request's bearer token, or 401.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<Caller>, ApiError> {
        let token = bearer(headers).ok_or(ApiError::MissingToken)?;
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash
            .get(&hash)
            .cloned()
            .ok_or(ApiError::InvalidToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(per_minute: u32, burst: u32) -> Caller {
        let limit = RateLimitConfig {
            evaluations_per_minute: per_minute,
            burst,
        };
        Caller::new("c", HashSet::new(), false, limit).unwrap()
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
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(e.retry_after(), None);
        assert_eq!(c.take(u64::MAX), Err(ApiError::OverBurst));
    }

    #[test]
    fn retry_after_rounds_up_within_a_day() {
        assert_eq!(retry_seconds(Duration::ZERO), 1);
        assert_eq!(retry_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(retry_seconds(Duration::from_secs(5)), 5);
        assert_eq!(
            retry_seconds(Duration::from_secs(1_000_000)),
            MAX_RETRY_AFTER
        );
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
