//! The TTP's configuration file (TOML): database, master key, signing key,
//! its public URL and issuer, token lifetimes, budgets ([`budgets`]),
//! recipients (key domains with their public key, allowed types and form
//! origins) and callers with their roles ([`callers`]).
//!
//! Relative paths in a file loaded with [`TtpConfig::from_toml_file`] are
//! relative to the directory of that file. [`TtpConfig::validate`] checks
//! everything that can be checked without touching the files it names.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context};
use pseudoform_core::PseudonymType;
use pseudoform_protocol::auth::{MAX_BACKEND_TOKEN_SECONDS, MAX_BROWSER_TOKEN_SECONDS};
use pseudoform_protocol::{JWE_ALG_RSA_OAEP, JWE_ALG_RSA_OAEP_256};
use serde::{Deserialize, Serialize};

pub mod budgets;
pub mod callers;

pub use budgets::{Budgets, CallerBudgets, Limit};
pub use callers::{CallerConfig, RecipientRef, Role, MAX_CLIENT_ID};

/// The code of type R, the reversible local patient number: a recipient
/// may list it in `allowed_types` and `required_types`, and `GET
/// /v1/policy` names it, but it is no OPRF type (not a [`PseudonymType`]):
/// the browser encrypts it to the provider's key (`GET
/// /v1/provider-keys`), and the evaluating endpoints refuse it.
pub use pseudoform_core::reversible::REVERSIBLE_TYPE;

/// Default address of `serve` when neither the file nor the command line names one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

/// The whole configuration of a TTP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TtpConfig {
    /// Address to listen on (`serve` without `--listen`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite database of the key versions (encrypted) and the audit log;
    /// budgets and single-use ids are in the file next to it that
    /// [`crate::ledger::ledger_path`] names, unless `[ledger]` names a
    /// PostgreSQL database.
    pub database: PathBuf,
    /// Where budgets and single-use ids are kept (`[ledger]`): PostgreSQL,
    /// shared by replicas, or by default the SQLite file next to `database`.
    #[serde(default)]
    pub ledger: crate::ledger::LedgerConfig,
    /// Where the key versions are kept (`[keys]`): PostgreSQL, shared by
    /// replicas on several machines, or by default `database`.
    #[serde(default)]
    pub keys: crate::keys::KeysConfig,
    /// File holding the 32-byte master key as padded base64url. When absent
    /// (and there is no `[hsm]`) the key is read from the environment
    /// variable [`crate::keys::MASTER_KEY_ENV`]; giving both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
    /// PEM file of the TTP's P-256 private signing key (PKCS#8 or SEC 1,
    /// `pseudoform-ttp gen-signing-key`), unless the key is on the token of
    /// `[hsm]`. Every JWE's plaintext is a JWS of its claims made with it;
    /// registries pin its public key (`GET /v1/signing-keys`,
    /// `pseudoform-ttp signing-key --public-pem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    /// The PKCS#11 token holding the master key and the signing key
    /// (`[hsm]`, [`crate::hsm`]); then neither `master_key_file` nor
    /// `signing_key` may be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hsm: Option<crate::hsm::HsmConfig>,
    /// Key-management algorithm of the JWEs, unless a recipient sets its own.
    #[serde(default)]
    pub jwe_alg: JweAlg,
    /// The TTP's base URL as its clients reach it (`https://host[:port]`,
    /// no path): DPoP proofs must name it (`htu`). Default `http://` + the
    /// address the server listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// The `iss` (and `aud`) of its access tokens and the audience of
    /// client assertions and subject tokens. Default: the public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Accept static bearer tokens (`token_sha256` of a caller). A
    /// development setting only: such a token never expires and is bound to
    /// nothing. Warned at start-up.
    #[serde(default)]
    pub development_static_tokens: bool,
    /// Lifetimes of the access tokens the TTP issues.
    #[serde(default)]
    pub tokens: TokenLifetimes,
    /// The default budgets of every caller, person, provider and recipient.
    #[serde(default)]
    pub budgets: Budgets,
    /// Most single-use ids (of client assertions, subject tokens and DPoP
    /// proofs) remembered at once; beyond it new ones are refused (503)
    /// until older ones expire.
    #[serde(default = "default_replay_capacity")]
    pub replay_capacity: u64,
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
    /// The identity frame (`[frame]`): the frame files the TTP serves and
    /// the origins of frames hosted elsewhere ([`crate::frame`]).
    #[serde(default)]
    pub frame: FrameConfig,
}

/// The identity frame (`[frame]`, see [`crate::frame`]). Every frame
/// origin — the TTP's own public origin when `dir` is set, and each of
/// `origins` — is accepted like a form origin of every recipient: by CORS,
/// by the `Origin` check and as a subject token's `origin`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameConfig {
    /// Folder of the built frame files (`./build.sh build` writes them to
    /// `target/frame/`): when set the TTP serves them at `/frame/` on its
    /// own origin, and refuses to start when one of them is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Origins (`https://host[:port]`) of identity frames hosted elsewhere
    /// (a care provider's own frame host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
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

/// What a recipient's JWEs carry (`profile` of a recipient).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireProfile {
    /// A nested JWT (`cty: JWT`): the claims signed by the TTP (`ES256`)
    /// with pseudoform's members (provider, acting party, DPoP key).
    #[default]
    Pseudoform,
    /// As the national reference service: the bare JSON claims (`cty:
    /// application/json`, not signed) under `RSA-OAEP`, with the national
    /// members plus `key_version`, `jti` and (other than B)
    /// `pseudonym_type`; single evaluations (`POST /oprf/eval`) only, no
    /// type R. docs/protocol.md, "The national wire profile".
    National,
}

impl WireProfile {
    /// Whether it is the default.
    pub fn is_pseudoform(&self) -> bool {
        *self == WireProfile::Pseudoform
    }
}

/// Lifetimes of issued access tokens, in seconds (`[tokens]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLifetimes {
    /// A browser's token (token exchange): at most 900, default 900.
    #[serde(default = "default_browser_seconds")]
    pub browser_seconds: i64,
    /// A back end's token (`client_credentials`): at most 300, default 300.
    #[serde(default = "default_backend_seconds")]
    pub backend_seconds: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes {
            browser_seconds: default_browser_seconds(),
            backend_seconds: default_backend_seconds(),
        }
    }
}

fn default_browser_seconds() -> i64 {
    MAX_BROWSER_TOKEN_SECONDS
}

fn default_backend_seconds() -> i64 {
    MAX_BACKEND_TOKEN_SECONDS
}

fn default_replay_capacity() -> u64 {
    1_000_000
}

/// One recipient: a key domain `(organization, scope)` and what it may receive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientConfig {
    /// `oin:` and the OIN ([`pseudoform_protocol::is_oin`]).
    pub organization: String,
    /// The scope (2 to 128 visible ASCII characters, no `|`).
    pub scope: String,
    /// PEM file of the recipient's RSA public key (SPKI or PKCS#1, ≥ 2048 bits).
    pub public_key: PathBuf,
    /// `kid` of the JWEs; default the RFC 7638 thumbprint of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Pseudonym type codes the recipient may receive; `B` only where it may
    /// process the BSN; [`REVERSIBLE_TYPE`] (`R`) where it asks for the
    /// reversible local patient number.
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
    /// Origins of the recipient's pages that embed the identity frame: the
    /// only parents the frame serves for this recipient (`settings.json`,
    /// `frame-ancestors`). They are no browser origins of the TTP (no CORS,
    /// no `Origin`, no subject token): a page that could obtain a TTP token
    /// of its own could evaluate values of its choosing. An origin may not
    /// be both one of these and a form or frame origin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frame_parent_origins: Vec<String>,
    /// JWE algorithm for this recipient; default the global [`TtpConfig::jwe_alg`]
    /// (`RSA-OAEP`, and nothing else, for a [`WireProfile::National`] one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwe_alg: Option<JweAlg>,
    /// What its JWEs carry: pseudoform's signed claims (the default) or,
    /// `profile = "national"`, the national reference service's bare claims.
    #[serde(default, skip_serializing_if = "WireProfile::is_pseudoform")]
    pub profile: WireProfile,
    /// The recipient's own budget; default the global `budgets.recipient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Limit>,
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

/// `origins` lowercase, each once, in their first order.
pub fn unique_origins<'a>(origins: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut list: Vec<String> = Vec::new();
    for origin in origins {
        let origin = origin.to_ascii_lowercase();
        if !list.contains(&origin) {
            list.push(origin);
        }
    }
    list
}

/// Whether `origin` is a serialised web origin `scheme://host[:port]`.
pub fn is_origin(origin: &str) -> bool {
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
        if let Some(p) = self.signing_key.as_mut() {
            resolve(p);
        }
        if let Some(p) = self.master_key_file.as_mut() {
            resolve(p);
        }
        if let Some(hsm) = self.hsm.as_mut() {
            hsm.resolve_paths(base);
        }
        self.ledger.resolve_paths(base);
        self.keys.resolve_paths(base);
        for r in &mut self.recipients {
            resolve(&mut r.public_key);
        }
        for c in &mut self.callers {
            c.public_keys.iter_mut().for_each(resolve);
            c.encryption_keys.iter_mut().for_each(resolve);
        }
        if let Some(p) = self.frame.dir.as_mut() {
            resolve(p);
        }
    }

    /// The public URL: [`TtpConfig::public_url`], else `http://` + `listen`.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The issuer: [`TtpConfig::issuer`], else the public URL.
    pub fn issuer(&self) -> String {
        self.issuer.clone().unwrap_or_else(|| self.public_url())
    }

    /// The configured caller with client id `id`, if any.
    pub fn caller(&self, id: &str) -> Option<&CallerConfig> {
        self.callers.iter().find(|c| c.id == id)
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

    /// The origins of the identity frames, lowercase, each once: the public
    /// origin when the TTP serves the frame (`[frame] dir`), then
    /// `[frame] origins`.
    pub fn frame_origins(&self) -> Vec<String> {
        let own = self.frame.dir.is_some().then(|| self.public_url());
        unique_origins(own.iter().chain(&self.frame.origins))
    }

    /// The configured recipient `(organization, scope)`, if any.
    pub fn recipient(&self, organization: &str, scope: &str) -> Option<&RecipientConfig> {
        self.recipients
            .iter()
            .find(|r| r.organization == organization && r.scope == scope)
    }

    /// Checks the configuration for consistency.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, url) in [("public_url", &self.public_url), ("issuer", &self.issuer)] {
            if let Some(url) = url {
                if !is_origin(url) || url.ends_with('/') {
                    bail!("{name} must be scheme://host[:port] without a path");
                }
            }
        }
        self.limits.validate()?;
        self.ledger.validate()?;
        self.keys.validate()?;
        match (&self.hsm, &self.signing_key, &self.master_key_file) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => bail!(
                "[hsm] holds the master key and the signing key: remove master_key_file and signing_key"
            ),
            (Some(hsm), None, None) => hsm.validate()?,
            (None, None, _) => bail!("no signing key: set signing_key or [hsm]"),
            (None, Some(_), _) => {}
        }
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
        let t = self.tokens;
        if !(1..=MAX_BROWSER_TOKEN_SECONDS).contains(&t.browser_seconds) {
            bail!("tokens.browser_seconds must be 1 to {MAX_BROWSER_TOKEN_SECONDS}");
        }
        if !(1..=MAX_BACKEND_TOKEN_SECONDS).contains(&t.backend_seconds) {
            bail!("tokens.backend_seconds must be 1 to {MAX_BACKEND_TOKEN_SECONDS}");
        }
        if self.replay_capacity == 0 {
            bail!("replay_capacity must be positive");
        }
        self.budgets.validate("budgets")?;
        let mut frame_origins = HashSet::new();
        for origin in &self.frame.origins {
            if !is_origin(origin) || origin.ends_with('/') {
                bail!("frame.origins: {origin:?} is not an origin (scheme://host[:port])");
            }
            if !frame_origins.insert(origin.to_ascii_lowercase()) {
                bail!("frame.origins: {origin} is listed twice");
            }
        }
        let mut domains = HashSet::new();
        for r in &self.recipients {
            let what = format!("recipient {}/{}", r.organization, r.scope);
            if let Err(rule) = pseudoform_protocol::recipient(&r.organization, &r.scope) {
                bail!("{what}: {} must be {}", rule.field(), rule.rule());
            }
            if !domains.insert((r.organization.as_str(), r.scope.as_str())) {
                bail!("{what}: configured twice");
            }
            if r.allowed_types.is_empty() {
                bail!("{what}: allowed_types is empty");
            }
            if r.profile == WireProfile::National {
                if r.jwe_alg.is_some_and(|alg| alg != JweAlg::RsaOaep) {
                    bail!("{what}: a national recipient's jwe_alg can only be RSA-OAEP");
                }
                if r.allowed_types.iter().any(|t| t == REVERSIBLE_TYPE) {
                    bail!("{what}: a national recipient cannot receive type {REVERSIBLE_TYPE} (its claims are not signed)");
                }
            }
            let mut types = HashSet::new();
            for code in &r.allowed_types {
                if code != REVERSIBLE_TYPE && PseudonymType::from_str(code).is_err() {
                    bail!("{what}: unknown pseudonym type {code:?}");
                }
                if !types.insert(code.as_str()) {
                    bail!("{what}: type {code} listed twice");
                }
            }
            let mut required = HashSet::new();
            for code in &r.required_types {
                if code != REVERSIBLE_TYPE && PseudonymType::from_str(code).is_err() {
                    bail!("{what}: unknown pseudonym type {code:?}");
                }
                if !types.contains(code.as_str()) {
                    bail!("{what}: required type {code} is not one of allowed_types");
                }
                if !required.insert(code.as_str()) {
                    bail!("{what}: required type {code} listed twice");
                }
            }
            for origin in r.allowed_origins.iter().chain(&r.frame_parent_origins) {
                if !is_origin(origin) || origin.ends_with('/') {
                    bail!("{what}: {origin:?} is not an origin (scheme://host[:port])");
                }
            }
            if r.kid.as_deref().is_some_and(str::is_empty) {
                bail!("{what}: kid is empty");
            }
            if let Some(b) = r.budget {
                b.validate(&format!("{what}: budget"))?;
            }
        }
        self.validate_frame_parents()?;
        callers::validate(self)?;
        self.validate_validation_origins()
    }

    /// The TTP's browser origins that get evaluate tokens or serve the
    /// frame: every recipient's form origins (`allowed_origins`), the
    /// `[frame]` origins and the TTP's own, lower-case.
    fn browser_origins(&self) -> HashSet<String> {
        let mut browser: HashSet<String> = self
            .frame_origins()
            .into_iter()
            .map(|o| o.to_ascii_lowercase())
            .collect();
        browser.insert(self.public_url().to_ascii_lowercase());
        for r in &self.recipients {
            browser.extend(r.allowed_origins.iter().map(|o| o.to_ascii_lowercase()));
        }
        browser
    }

    /// Refuses a caller's validation origin that is also a browser origin of
    /// the TTP ([`TtpConfig::browser_origins`]) or a frame's parent: a
    /// validation origin gets validate tokens only, a form origin evaluate
    /// tokens only, and a page that could get both (a registry's in-page
    /// form, say) could answer or withdraw as the provider.
    fn validate_validation_origins(&self) -> anyhow::Result<()> {
        let browser = self.browser_origins();
        let parents: HashSet<String> = self
            .recipients
            .iter()
            .flat_map(|r| &r.frame_parent_origins)
            .map(|o| o.to_ascii_lowercase())
            .collect();
        for c in &self.callers {
            for origin in &c.validation_origins {
                let lower = origin.to_ascii_lowercase();
                if browser.contains(&lower) || parents.contains(&lower) {
                    bail!(
                        "caller {}: validation_origins: {origin} is also a browser origin of the TTP \
                         (allowed_origins, frame_parent_origins, [frame] origins or the TTP's own); a \
                         validation page must have an origin of its own",
                        c.id
                    );
                }
            }
        }
        Ok(())
    }

    /// Refuses a frame-parent origin that is also a browser origin of the
    /// TTP (a recipient's form origin, a frame origin, the TTP's own) or a
    /// caller's validation origin: its page could then obtain a TTP token
    /// and evaluate guesses (or a validate token).
    fn validate_frame_parents(&self) -> anyhow::Result<()> {
        let mut browser = self.browser_origins();
        for c in &self.callers {
            browser.extend(c.validation_origins.iter().map(|o| o.to_ascii_lowercase()));
        }
        for r in &self.recipients {
            for origin in &r.frame_parent_origins {
                if browser.contains(&origin.to_ascii_lowercase()) {
                    bail!(
                        "recipient {}/{}: frame_parent_origins: {origin} is also a browser origin of the TTP \
                         (allowed_origins, validation_origins, [frame] origins or the TTP's own); a frame's \
                         parent must not be able to obtain a TTP token",
                        r.organization,
                        r.scope
                    );
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
id = "ura:00000001"
role = "provider"
public_keys = ["provider.pem"]
recipients = [{ organization = "oin:00000001000000001000", scope = "kwaliteitsregistratie-a" }]

[[callers]]
id = "oin:00000003000000003000"
role = "processor"
acts_for = ["ura:00000001"]
public_keys = ["processor.pem"]
recipients = [{ organization = "oin:00000001000000001000", scope = "kwaliteitsregistratie-a" }]

[[callers]]
id = "oin:00000001000000001000"
role = "recipient"
public_keys = ["registry.pem"]
recipient = { organization = "oin:00000001000000001000", scope = "kwaliteitsregistratie-a" }
"#;

    #[test]
    fn minimal_file_parses_with_defaults() {
        let c = TtpConfig::from_toml_str(MINIMAL, Path::new("/etc/ttp")).unwrap();
        assert_eq!(c.database, PathBuf::from("/etc/ttp/ttp.sqlite"));
        assert_eq!(c.signing_key, Some(PathBuf::from("/etc/ttp/signing.pem")));
        assert_eq!(
            c.recipients[0].public_key,
            PathBuf::from("/etc/ttp/registry-a.pem")
        );
        assert_eq!(
            c.callers[0].public_keys,
            vec![PathBuf::from("/etc/ttp/provider.pem")]
        );
        assert_eq!(c.jwe_alg, JweAlg::RsaOaep256);
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.public_url(), "http://127.0.0.1:8470");
        assert_eq!(c.issuer(), c.public_url());
        assert_eq!(c.budgets, Budgets::default());
        assert_eq!(c.tokens, TokenLifetimes::default());
        assert!(!c.development_static_tokens);
    }

    #[test]
    fn inconsistent_files_are_refused() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        for (from, to) in [
            ("oin:00000001000000001000\"\nscope", "oin:123\"\nscope"),
            ("[\"NGGV\", \"RGG\"]", "[\"NGGV\", \"XYZ\"]"),
            ("[\"NGGV\", \"RGG\"]", "[\"NGGV\", \"NGGV\"]"),
            ("https://form.example.nl", "https://form.example.nl/"),
            // A caller for a recipient that is not configured.
            ("scope = \"kwaliteitsregistratie-a\" }]", "scope = \"other\" }]"),
            // Roles: a provider is ura:, a processor needs acts_for, a
            // provider has none.
            ("id = \"ura:00000001\"", "id = \"oin:00000009000000009000\""),
            ("acts_for = [\"ura:00000001\"]\n", ""),
            ("role = \"provider\"\n", "role = \"provider\"\nacts_for = [\"ura:00000002\"]\n"),
            // A recipient caller whose party is not its domain's organisation.
            ("id = \"oin:00000001000000001000\"\nrole", "id = \"oin:00000001000000002000\"\nrole"),
            // One party both recipient and processor.
            ("id = \"oin:00000003000000003000\"", "id = \"x\"\nparty = \"oin:00000001000000001000\""),
            // A recipient caller with evaluation recipients.
            ("role = \"recipient\"\n", "role = \"recipient\"\nrecipients = [{ organization = \"oin:00000001000000001000\", scope = \"kwaliteitsregistratie-a\" }]\n"),
            // No way to authenticate.
            ("public_keys = [\"provider.pem\"]\n", ""),
            // A static token without the development switch.
            ("public_keys = [\"provider.pem\"]", &format!("token_sha256 = \"{hash}\"")),
            ("database", "tokens = { browser_seconds = 901 }\ndatabase"),
            ("database", "budgets = { person = { per_minute = 0, per_day = 1 } }\ndatabase"),
            ("database", "public_url = \"https://ttp.example.nl/\"\ndatabase"),
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
        // Type R, the reversible pseudonym: allowed and required like a type.
        let reversible = |allowed: &str, required: &str| {
            let line = format!("allowed_types = {allowed}\nrequired_types = {required}");
            TtpConfig::from_toml_str(
                &MINIMAL.replacen("allowed_types = [\"NGGV\", \"RGG\"]", &line, 1),
                Path::new("/"),
            )
        };
        let c = reversible("[\"NGGV\", \"R\"]", "[\"R\"]").unwrap();
        assert_eq!(c.recipients[0].allowed_types, ["NGGV", "R"]);
        assert_eq!(c.recipients[0].required_types, ["R"]);
        for (allowed, required) in [
            ("[\"NGGV\"]", "[\"R\"]"),
            ("[\"R\", \"R\"]", "[]"),
            ("[\"R\"]", "[\"R\", \"R\"]"),
            ("[\"r\"]", "[]"),
        ] {
            assert!(
                reversible(allowed, required).is_err(),
                "{allowed} {required}"
            );
        }
        let unknown = format!("{MINIMAL}\n[extra]\nx = 1\n");
        assert!(TtpConfig::from_toml_str(&unknown, Path::new("/")).is_err());
        // The old rate limit is gone: budgets replace it.
        let old = format!("[rate_limit]\nevaluations_per_minute = 1\nburst = 1\n{MINIMAL}");
        assert!(TtpConfig::from_toml_str(&old, Path::new("/")).is_err());
        // Static tokens with the switch, for a provider (never a processor).
        let dev = format!(
            "development_static_tokens = true\n{}",
            MINIMAL.replacen(
                "public_keys = [\"provider.pem\"]",
                &format!("token_sha256 = \"{hash}\""),
                1
            )
        );
        assert!(TtpConfig::from_toml_str(&dev, Path::new("/")).is_ok());
        let processor = dev.replacen(
            "public_keys = [\"processor.pem\"]",
            &format!("token_sha256 = \"{hash}\""),
            1,
        );
        assert!(TtpConfig::from_toml_str(&processor, Path::new("/")).is_err());
    }

    #[test]
    fn frame_origins_and_login_urls_are_checked() {
        let with = |frame: &str, login: &str| {
            let text = format!("frame = {frame}\n{MINIMAL}").replacen(
                "public_keys = [\"provider.pem\"]",
                &format!("public_keys = [\"provider.pem\"]\nlogin = {login}"),
                1,
            );
            TtpConfig::from_toml_str(
                &format!("public_url = \"https://TTP.example.nl\"\n{text}"),
                Path::new("/etc/ttp"),
            )
        };
        let ok = "\"https://portaal.example.nl/popup?x=1\"";
        let c = with(
            "{ dir = \"frame\", origins = [\"https://frame.example.nl\", \"http://127.0.0.1:8475\"] }",
            ok,
        )
        .unwrap();
        assert_eq!(c.frame.dir.as_deref(), Some(Path::new("/etc/ttp/frame")));
        assert_eq!(
            c.frame_origins(),
            [
                "https://ttp.example.nl",
                "https://frame.example.nl",
                "http://127.0.0.1:8475"
            ]
        );
        assert_eq!(
            c.callers[0].login.as_deref(),
            Some("https://portaal.example.nl/popup?x=1")
        );
        // Without a folder the TTP's own origin is no frame origin.
        let c = with("{ origins = [\"https://frame.example.nl\"] }", ok).unwrap();
        assert_eq!(c.frame_origins(), ["https://frame.example.nl"]);
        assert!(with("{}", ok).unwrap().frame_origins().is_empty());
        for frame in [
            "{ origins = [\"https://frame.example.nl/\"] }",
            "{ origins = [\"frame.example.nl\"] }",
            "{ origins = [\"https://frame.example.nl/frame/\"] }",
            "{ origins = [\"https://frame.example.nl\", \"https://FRAME.example.nl\"] }",
            "{ folder = \"frame\" }",
        ] {
            assert!(with(frame, ok).is_err(), "{frame}");
        }
        for login in [
            "\"/popup\"",
            "\"javascript:alert(1)\"",
            "\"https://user:secret@portaal.example.nl/popup\"",
            "\"https://portaal.example.nl/popup#x\"",
            "\"https://portaal.example.nl/pop up\"",
            "\"\"",
        ] {
            assert!(with("{}", login).is_err(), "{login}");
        }
        // A frame's parent is never also a browser origin of the TTP.
        let parent = |list: &str| {
            let text = MINIMAL.replacen(
                "allowed_origins = [\"https://form.example.nl\"]",
                &format!("allowed_origins = [\"https://form.example.nl\"]\nframe_parent_origins = {list}"),
                1,
            );
            TtpConfig::from_toml_str(
                &format!("public_url = \"https://ttp.example.nl\"\nframe = {{ origins = [\"https://frame.example.nl\"] }}\n{text}"),
                Path::new("/etc/ttp"),
            )
        };
        let c = parent("[\"https://registratie.example.nl\"]").unwrap();
        assert_eq!(
            c.recipients[0].frame_parent_origins,
            ["https://registratie.example.nl"]
        );
        for list in [
            "[\"https://form.example.nl\"]",
            "[\"https://FORM.example.nl\"]",
            "[\"https://frame.example.nl\"]",
            "[\"https://ttp.example.nl\"]",
            "[\"registratie.example.nl\"]",
            "[\"https://registratie.example.nl/\"]",
        ] {
            assert!(parent(list).is_err(), "{list}");
        }
        // A login is a provider's only.
        let processor = MINIMAL.replacen(
            "role = \"processor\"\n",
            "role = \"processor\"\nlogin = \"https://verwerker.example.nl/popup\"\n",
            1,
        );
        assert!(TtpConfig::from_toml_str(&processor, Path::new("/")).is_err());
    }

    #[test]
    fn example_file_is_valid() {
        let text = include_str!("../ttp.example.toml");
        let c = TtpConfig::from_toml_str(text, Path::new("/etc/ttp")).unwrap();
        assert_eq!(c.recipients.len(), 1);
        assert!(!c.recipients[0].allowed_types.iter().any(|t| t == "B"));
        assert!(c.callers.iter().any(|c| c.role == Role::Recipient));
        assert!(!c.development_static_tokens);
    }
}
