//! The TTP's configuration file (TOML): database, master key, recipients
//! (key domains with their public key, allowed types and form origins) and
//! callers (token hashes, the recipients they may call, rate limits).
//!
//! Relative paths in a file loaded with [`TtpConfig::from_toml_file`] are
//! relative to the directory of that file. [`TtpConfig::validate`] checks
//! everything that can be checked without touching the files it names.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use pseudoform_core::{PseudonymType, Recipient};
use pseudoform_protocol::{JWE_ALG_RSA_OAEP, JWE_ALG_RSA_OAEP_256, OIN_DIGITS};
use serde::{Deserialize, Serialize};

/// Longest caller name, in bytes (it is written in every audit row).
pub const MAX_CALLER_NAME: usize = 128;

/// Default address of `serve` when neither the file nor the command line names one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// The whole configuration of a TTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtpConfig {
    /// Address to listen on (`serve` without `--listen`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite database of the key versions (encrypted) and the audit log.
    pub database: PathBuf,
    /// File holding the 32-byte master key as padded base64url. When absent
    /// the key is read from the environment variable
    /// [`crate::keys::MASTER_KEY_ENV`]; giving both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// PEM file of the TTP's P-256 private signing key (PKCS#8 or SEC 1,
    /// `pseudoform-ttp gen-signing-key`). Every JWE's plaintext is a JWS of
    /// its claims made with it; registries pin its public key
    /// (`GET /v1/signing-keys`, `pseudoform-ttp signing-key --public-pem`).
    pub signing_key: PathBuf,
    /// Key-management algorithm of the JWEs, unless a recipient sets its own.
    #[serde(default)]
    pub jwe_alg: JweAlg,
    /// Default rate limit of a caller.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// `Access-Control-Max-Age` of CORS preflight answers, in seconds.
    #[serde(default = "default_cors_max_age")]
    pub cors_max_age_seconds: u64,
    /// The recipients (key domains).
    #[serde(default)]
    pub recipients: Vec<RecipientConfig>,
    /// The callers allowed to request evaluations.
    #[serde(default)]
    pub callers: Vec<CallerConfig>,
    /// Connection limits and timeouts (`[limits]`, documented defaults).
    #[serde(default)]
    pub limits: pseudoform_server::Limits,
    /// The evaluation queue (`[queue]`): admission control of the CPU work.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Seconds from a JWE's `iat` to its `exp` (default and most: the
    /// protocol's 300). Lower only for tests that must outlive a JWE in
    /// bounded time; it also sets how long `retire` waits after a rotation.
    #[serde(default = "default_jwe_lifetime")]
    pub jwe_lifetime_seconds: i64,
    /// The clock skew the registries allow past a JWE's `exp` (default 30,
    /// the registry's default): part of the window `retire` waits after a
    /// rotation.
    #[serde(default = "default_clock_skew")]
    pub registry_clock_skew_seconds: i64,
}

/// The bounded evaluation queue ([`crate::queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Threads that evaluate (default 0: one per core).
    pub workers: usize,
    /// Most evaluations waiting at once, interactive and bulk together
    /// (default 20 000); a request that does not fit is answered 503.
    pub max_queued_evaluations: usize,
    /// Most milliseconds a request may wait in the queue (default 5 000):
    /// one that waited longer is answered 503 instead of being evaluated,
    /// so that the form (10 s timeout) hears back in time.
    pub max_wait_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            workers: 0,
            max_queued_evaluations: 20_000,
            max_wait_ms: 5_000,
        }
    }
}

/// JWE key-management algorithm (the content encryption is always `A256GCM`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JweAlg {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (the default).
    #[default]
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
    /// RSAES-OAEP with SHA-1, as the national reference service uses since
    /// August 2026.
    #[serde(rename = "RSA-OAEP")]
    RsaOaep,
}

impl JweAlg {
    /// The JOSE name of the algorithm.
    pub const fn name(self) -> &'static str {
        match self {
            JweAlg::RsaOaep256 => JWE_ALG_RSA_OAEP_256,
            JweAlg::RsaOaep => JWE_ALG_RSA_OAEP,
        }
    }
}

/// A token bucket: `evaluations_per_minute` refill, at most `burst` at once.
/// Every evaluated element counts (a batch of 50 items counts 50).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained evaluations per minute.
    pub evaluations_per_minute: u32,
    /// Size of the bucket: most evaluations in one go, and per request.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            evaluations_per_minute: 6000,
            burst: 1000,
        }
    }
}

/// One recipient: a key domain `(organization, scope)` and what it may receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    /// `oin:` followed by the 20-digit OIN.
    pub organization: String,
    /// The scope (1 to 128 visible ASCII characters, no `|`).
    pub scope: String,
    /// PEM file of the recipient's RSA public key (SPKI or PKCS#1, ≥ 2048 bits).
    pub public_key: PathBuf,
    /// `kid` of the JWEs; default the RFC 7638 thumbprint of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Pseudonym type codes the recipient may receive; `B` only where it may
    /// process the BSN.
    pub allowed_types: Vec<String>,
    /// Pseudonym type codes every record for the recipient must have, each
    /// one of `allowed_types`; `GET /v1/policy` tells forms (`requiredTypes`),
    /// which refuse a record without them. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_types: Vec<String>,
    /// Origins of the recipient's forms (`https://host[:port]`), allowed by
    /// CORS and by the `Origin` check.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// JWE algorithm for this recipient; default the global [`TtpConfig::jwe_alg`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwe_alg: Option<JweAlg>,
}

/// A recipient named by a caller entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientRef {
    /// The recipient organisation.
    pub organization: String,
    /// The recipient scope.
    pub scope: String,
}

/// One caller: who holds a token and what it may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// Name written in the audit log.
    pub name: String,
    /// Lowercase hex SHA-256 of the bearer token (`pseudoform-ttp hash-token`).
    pub token_sha256: String,
    /// The recipients the caller may request evaluations for.
    pub recipients: Vec<RecipientRef>,
    /// Whether the caller may call `POST /v1/rekey` for those recipients
    /// (a registry back end, never a form).
    #[serde(default)]
    pub may_rekey: bool,
    /// The caller's own rate limit; default [`TtpConfig::rate_limit`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.into()
}

fn default_cors_max_age() -> u64 {
    600
}

fn default_jwe_lifetime() -> i64 {
    pseudoform_protocol::JWE_LIFETIME_SECONDS
}

fn default_clock_skew() -> i64 {
    30
}

/// Whether `origin` is a serialised web origin `scheme://host[:port]`.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    (scheme == "https" || scheme == "http")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl TtpConfig {
    /// Parses a configuration from TOML text; relative paths are resolved
    /// against `base_dir`. The result is validated.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> anyhow::Result<Self> {
        let mut config: TtpConfig = toml::from_str(text).context("invalid TTP configuration")?;
        config.resolve_paths(base_dir);
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates a configuration file.
    pub fn from_toml_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read configuration {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        TtpConfig::from_toml_str(&text, base)
            .with_context(|| format!("in configuration {}", path.display()))
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.database);
        resolve(&mut self.signing_key);
        if let Some(p) = self.master_key_file.as_mut() {
            resolve(p);
        }
        for r in &mut self.recipients {
            resolve(&mut r.public_key);
        }
    }

    /// Seconds `retire` waits after a rotation: a request in flight (up to
    /// the request timeout) may still evaluate the old version as current,
    /// and the JWEs it makes live their lifetime plus the registries' clock
    /// skew.
    pub fn retire_window_seconds(&self) -> i64 {
        self.jwe_lifetime_seconds
            .saturating_add_unsigned(self.limits.request_timeout_seconds)
            .saturating_add(self.registry_clock_skew_seconds)
    }

    /// The configured recipient `(organization, scope)`, if any.
    pub fn recipient(&self, organization: &str, scope: &str) -> Option<&RecipientConfig> {
        self.recipients
            .iter()
            .find(|r| r.organization == organization && r.scope == scope)
    }

    /// Checks the configuration for consistency.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.limits.validate()?;
        if self.jwe_lifetime_seconds < 1
            || self.jwe_lifetime_seconds > pseudoform_protocol::JWE_LIFETIME_SECONDS
        {
            bail!(
                "jwe_lifetime_seconds must be 1 to {}",
                pseudoform_protocol::JWE_LIFETIME_SECONDS
            );
        }
        if self.registry_clock_skew_seconds < 0 {
            bail!("registry_clock_skew_seconds must not be negative");
        }
        if self.queue.max_queued_evaluations == 0 || self.queue.max_wait_ms == 0 {
            bail!("queue: max_queued_evaluations and max_wait_ms must be positive");
        }
        if self.rate_limit.evaluations_per_minute == 0 || self.rate_limit.burst == 0 {
            bail!("rate_limit: evaluations_per_minute and burst must be positive");
        }
        let mut domains = HashSet::new();
        for r in &self.recipients {
            let what = format!("recipient {}/{}", r.organization, r.scope);
            if !pseudoform_protocol::is_oin(&r.organization) {
                bail!("{what}: organization must be `oin:` followed by {OIN_DIGITS} digits");
            }
            Recipient::new(&r.organization, &r.scope)
                .map_err(|e| anyhow::anyhow!("{what}: invalid scope ({e:?})"))?;
            if !domains.insert((r.organization.as_str(), r.scope.as_str())) {
                bail!("{what}: configured twice");
            }
            if r.allowed_types.is_empty() {
                bail!("{what}: allowed_types is empty");
            }
            let mut types = HashSet::new();
            for code in &r.allowed_types {
                let t = PseudonymType::from_str(code)
                    .map_err(|_| anyhow::anyhow!("{what}: unknown pseudonym type {code:?}"))?;
                if !types.insert(t) {
                    bail!("{what}: type {code} listed twice");
                }
            }
            let mut required = HashSet::new();
            for code in &r.required_types {
                let t = PseudonymType::from_str(code)
                    .map_err(|_| anyhow::anyhow!("{what}: unknown pseudonym type {code:?}"))?;
                if !types.contains(&t) {
                    bail!("{what}: required type {code} is not one of allowed_types");
                }
                if !required.insert(t) {
                    bail!("{what}: required type {code} listed twice");
                }
            }
            for origin in &r.allowed_origins {
                if !is_origin(origin) || origin.ends_with('/') {
                    bail!("{what}: {origin:?} is not an origin (scheme://host[:port])");
                }
            }
            if r.kid.as_deref().is_some_and(str::is_empty) {
                bail!("{what}: kid is empty");
            }
        }
        let mut names = HashSet::new();
        let mut hashes = HashSet::new();
        for c in &self.callers {
            if c.name.is_empty()
                || c.name.len() > MAX_CALLER_NAME
                || c.name.chars().any(char::is_control)
            {
                bail!("caller names must be 1 to {MAX_CALLER_NAME} printable characters");
            }
            if !names.insert(c.name.as_str()) {
                bail!("caller {}: configured twice", c.name);
            }
            let hash_ok = c.token_sha256.len() == 64
                && c.token_sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hash_ok {
                bail!(
                    "caller {}: token_sha256 must be 64 lowercase hex digits",
                    c.name
                );
            }
            if !hashes.insert(c.token_sha256.as_str()) {
                bail!("caller {}: token_sha256 is used by another caller", c.name);
            }
            for r in &c.recipients {
                if self.recipient(&r.organization, &r.scope).is_none() {
                    bail!(
                        "caller {}: recipient {}/{} is not configured",
                        c.name,
                        r.organization,
                        r.scope
                    );
                }
            }
            if let Some(l) = c.rate_limit {
                if l.evaluations_per_minute == 0 || l.burst == 0 {
                    bail!("caller {}: rate_limit values must be positive", c.name);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
database = "ttp.sqlite"
master_key_file = "master.key"
signing_key = "signing.pem"

[[recipients]]
organization = "oin:00000001000000001000"
scope = "kwaliteitsregistratie-a"
public_key = "registry-a.pem"
allowed_types = ["NGGV", "RGG"]
allowed_origins = ["https://form.example.nl"]

[[callers]]
name = "form-a"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
recipients = [{ organization = "oin:00000001000000001000", scope = "kwaliteitsregistratie-a" }]
"#;

    #[test]
    fn minimal_file_parses_with_defaults() {
        let c = TtpConfig::from_toml_str(MINIMAL, Path::new("/etc/ttp")).unwrap();
        assert_eq!(c.database, PathBuf::from("/etc/ttp/ttp.sqlite"));
        assert_eq!(c.signing_key, PathBuf::from("/etc/ttp/signing.pem"));
        assert_eq!(
            c.recipients[0].public_key,
            PathBuf::from("/etc/ttp/registry-a.pem")
        );
        assert_eq!(c.jwe_alg, JweAlg::RsaOaep256);
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.rate_limit, RateLimitConfig::default());
    }

    #[test]
    fn inconsistent_files_are_refused() {
        for (from, to) in [
            ("oin:00000001000000001000\"\nscope", "oin:123\"\nscope"),
            ("[\"NGGV\", \"RGG\"]", "[\"NGGV\", \"XYZ\"]"),
            ("[\"NGGV\", \"RGG\"]", "[\"NGGV\", \"NGGV\"]"),
            ("https://form.example.nl", "https://form.example.nl/"),
            ("9f86d0", "9F86D0"),
            (
                "scope = \"kwaliteitsregistratie-a\" }",
                "scope = \"other\" }",
            ),
        ] {
            let text = MINIMAL.replacen(from, to, 1);
            assert_ne!(text, MINIMAL, "{from}");
            assert!(
                TtpConfig::from_toml_str(&text, Path::new("/")).is_err(),
                "{to}"
            );
        }
        let required = |list: &str| {
            let line = format!("allowed_types = [\"NGGV\", \"RGG\"]\nrequired_types = {list}");
            TtpConfig::from_toml_str(
                &MINIMAL.replacen("allowed_types = [\"NGGV\", \"RGG\"]", &line, 1),
                Path::new("/"),
            )
        };
        let c = required("[\"RGG\"]").unwrap();
        assert_eq!(c.recipients[0].required_types, ["RGG"]);
        for refused in ["[\"B\"]", "[\"XYZ\"]", "[\"RGG\", \"RGG\"]"] {
            assert!(required(refused).is_err(), "{refused}");
        }
        let unknown = format!("{MINIMAL}\n[extra]\nx = 1\n");
        assert!(TtpConfig::from_toml_str(&unknown, Path::new("/")).is_err());
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../ttp.example.toml");
        let c = TtpConfig::from_toml_str(text, Path::new("/etc/ttp")).unwrap();
        assert_eq!(c.recipients.len(), 1);
        assert!(!c.recipients[0].allowed_types.iter().any(|t| t == "B"));
        assert!(c.callers[1].may_rekey);
    }
}
