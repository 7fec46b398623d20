//! The callers of the TTP and their one role each (`[[callers]]`).
//!
//! - `provider`: a care provider (`ura:…`); evaluates for the recipients
//!   it lists, for itself.
//! - `processor`: a processor (`oin:…`) acting for the providers of
//!   `acts_for`, one at a time (chosen in the token request); evaluates for
//!   the recipients it lists, the provider recorded as such.
//! - `recipient`: a registry (`oin:…`, its domain's organisation); exactly
//!   one recipient domain; may only re-key, never evaluate.
//!
//! [`validate`] refuses, before anything is served: a party that is a
//! recipient and also a provider or processor, a recipient caller whose
//! party is not its domain's organisation, and static tokens without the
//! explicit development switch. The same public key in two callers is
//! refused once the keys are read ([`crate::callers::Callers::new`]).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{bail, Context};
use pseudoform_protocol::{is_oin, is_ura};
use serde::{Deserialize, Serialize};

use super::budgets::CallerBudgets;
use super::TtpConfig;

/// Longest client id, in bytes (it is written in every audit row).
pub const MAX_CLIENT_ID: usize = 128;

/// What a caller is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A care provider, `ura:…`.
    Provider,
    /// A processor acting for providers, `oin:…`.
    Processor,
    /// A registry, `oin:…`: re-keying of its own domain only.
    Recipient,
}

impl Role {
    /// The role's name as configured.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Provider => "provider",
            Role::Processor => "processor",
            Role::Recipient => "recipient",
        }
    }
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

/// One caller: who it is, its role, how it authenticates, and for what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerConfig {
    /// The client id (`client_id`, the `iss` of its assertions), written in
    /// the audit log; 1 to [`MAX_CLIENT_ID`] visible ASCII characters.
    pub id: String,
    /// The party id: `ura:` + 8 digits for a provider, `oin:` + OIN for a
    /// processor or recipient. Default: the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    /// The caller's role.
    pub role: Role,
    /// PEM files of its P-256 public keys (SPKI), which sign its client
    /// assertions and (providers, processors) subject tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<PathBuf>,
    /// Provider or processor: the recipients it may evaluate for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientRef>,
    /// Recipient: its one domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<RecipientRef>,
    /// Processor: the providers (`ura:…`) it may act for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acts_for: Vec<String>,
    /// Development only (`development_static_tokens = true`): lowercase hex
    /// SHA-256 of a static bearer token (`pseudoform-ttp hash-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// The caller's own budgets; default the global `[budgets]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<CallerBudgets>,
    /// Provider only: PEM files of its P-256 encryption public keys (SPKI),
    /// to which browsers encrypt the reversible pseudonym `R`; the last is
    /// the current key, the earlier ones are still listed (rotation: append
    /// the new key). Published signed at `GET /v1/provider-keys`. A key may
    /// not also be a signing key (`public_keys`) or another caller's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub encryption_keys: Vec<PathBuf>,
    /// Provider or processor: the origins (`https://host[:port]`, or
    /// `http://` on a loopback host) of its validation pages, from which a
    /// browser may exchange a subject token for a validation token
    /// (`scope=validate`). Never the form origins: those get evaluation
    /// tokens only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation_origins: Vec<String>,
    /// Provider only: the URL of its portal's login popup, which the
    /// identity frame opens to get the clinician's credential (the frame
    /// host's `settings.json`, [`crate::frame`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

impl CallerConfig {
    /// The party id (default the client id).
    pub fn party(&self) -> &str {
        self.party.as_deref().unwrap_or(&self.id)
    }

    /// The recipients the caller acts on: those it evaluates for, or its
    /// one domain.
    pub fn domains(&self) -> Vec<&RecipientRef> {
        match &self.recipient {
            Some(r) => vec![r],
            None => self.recipients.iter().collect(),
        }
    }
}

fn is_token_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `url` is an absolute `http(s)` URL with a host and without
/// user, password or fragment (a portal's login popup).
fn is_login_url(url: &str) -> bool {
    url.bytes().all(|b| b.is_ascii_graphic())
        && url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.has_host()
                && u.username().is_empty()
                && u.password().is_none()
                && u.fragment().is_none()
        })
}

/// Whether `origin` may be a validation page's origin: a serialised origin
/// that is `https`, or `http` on a loopback host (development).
pub fn is_validation_origin(origin: &str) -> bool {
    if !super::is_origin(origin) || origin.ends_with('/') {
        return false;
    }
    if origin.starts_with("https://") {
        return true;
    }
    let host = origin.trim_start_matches("http://");
    let host = match host.strip_prefix("[::1]") {
        Some(rest) => return rest.is_empty() || rest.starts_with(':'),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost")
}

/// Checks the callers of `config` (everything that needs no file).
pub fn validate(config: &TtpConfig) -> anyhow::Result<()> {
    let mut ids = HashSet::new();
    let mut hashes = HashSet::new();
    let mut parties: HashMap<&str, Role> = HashMap::new();
    let mut logins = HashSet::new();
    let mut encrypting = HashSet::new();
    for c in &config.callers {
        if c.id.is_empty()
            || c.id.len() > MAX_CLIENT_ID
            || !c.id.bytes().all(|b| b.is_ascii_graphic())
        {
            bail!("caller ids must be 1 to {MAX_CLIENT_ID} visible ASCII characters");
        }
        let what = format!("caller {}", c.id);
        if !ids.insert(c.id.as_str()) {
            bail!("{what}: configured twice");
        }
        let party = c.party();
        let party_ok = match c.role {
            Role::Provider => is_ura(party),
            Role::Processor | Role::Recipient => is_oin(party),
        };
        if !party_ok {
            bail!(
                "{what}: the party id of a {} must be {}",
                c.role.name(),
                if c.role == Role::Provider {
                    "`ura:` followed by 8 digits"
                } else {
                    pseudoform_protocol::OIN_RULE
                }
            );
        }
        // One party, one side: a recipient never also evaluates.
        let is_recipient = c.role == Role::Recipient;
        if let Some(other) = parties.insert(party, c.role) {
            if (other == Role::Recipient) != is_recipient {
                bail!("{what}: party {party} is configured both as a recipient and as a {} caller: a registry may never also evaluate", if is_recipient { other.name() } else { c.role.name() });
            }
        }
        match c.role {
            Role::Recipient => {
                let Some(r) = &c.recipient else {
                    bail!("{what}: a recipient caller names its one domain in `recipient`");
                };
                if !c.recipients.is_empty() || !c.acts_for.is_empty() {
                    bail!("{what}: a recipient caller has no `recipients` or `acts_for`");
                }
                if r.organization != party {
                    bail!("{what}: a recipient caller's party must be its domain's organisation");
                }
            }
            Role::Provider | Role::Processor => {
                if c.recipient.is_some() {
                    bail!("{what}: only a recipient caller has `recipient`; use `recipients`");
                }
                if c.recipients.is_empty() {
                    bail!("{what}: `recipients` is empty");
                }
                let mut seen = HashSet::new();
                for p in &c.acts_for {
                    if !is_ura(p) {
                        bail!("{what}: acts_for entries must be `ura:` followed by 8 digits");
                    }
                    if !seen.insert(p) {
                        bail!("{what}: {p} is listed twice in acts_for");
                    }
                }
                match (c.role, c.acts_for.is_empty()) {
                    (Role::Processor, true) => bail!("{what}: a processor needs `acts_for`"),
                    (Role::Provider, false) => bail!("{what}: only a processor has `acts_for`"),
                    _ => {}
                }
            }
        }
        for r in c.domains() {
            if config.recipient(&r.organization, &r.scope).is_none() {
                bail!(
                    "{what}: recipient {}/{} is not configured",
                    r.organization,
                    r.scope
                );
            }
        }
        match &c.token_sha256 {
            Some(_) if !config.development_static_tokens => bail!(
                "{what}: static tokens (token_sha256) are a development setting; set development_static_tokens = true to use them"
            ),
            Some(_) if c.role == Role::Processor => {
                bail!("{what}: a processor chooses its provider per token and cannot use a static token")
            }
            Some(hash) if !is_token_hash(hash) => {
                bail!("{what}: token_sha256 must be 64 lowercase hex digits")
            }
            Some(hash) if !hashes.insert(hash.as_str()) => {
                bail!("{what}: token_sha256 is used by another caller")
            }
            Some(_) => {}
            None if c.public_keys.is_empty() => {
                bail!("{what}: public_keys is empty: the caller could never authenticate")
            }
            None => {}
        }
        if let Some(login) = &c.login {
            if c.role != Role::Provider {
                bail!("{what}: only a provider caller has `login`");
            }
            if !is_login_url(login) {
                bail!("{what}: login must be an http(s) URL without user, password or fragment");
            }
            if !logins.insert(party) {
                bail!("{what}: party {party} has a login in two callers");
            }
        }
        if !c.encryption_keys.is_empty() {
            if c.role != Role::Provider {
                bail!("{what}: only a provider caller has `encryption_keys` (a processor's providers have their own)");
            }
            if !encrypting.insert(party) {
                bail!("{what}: party {party} has encryption_keys in two callers");
            }
        }
        let mut origins = HashSet::new();
        for origin in &c.validation_origins {
            if c.role == Role::Recipient {
                bail!("{what}: a recipient caller has no `validation_origins`");
            }
            if !is_validation_origin(origin) {
                bail!("{what}: validation_origins: {origin:?} is not an https origin (scheme://host[:port]) or a loopback http one");
            }
            if !origins.insert(origin.to_ascii_lowercase()) {
                bail!("{what}: validation_origins: {origin} is listed twice");
            }
        }
        if let Some(b) = &c.budgets {
            for (name, l) in [
                ("browser_token", b.browser_token),
                ("person", b.person),
                ("client", b.client),
                ("rekey", b.rekey),
            ] {
                if let Some(l) = l {
                    l.validate(&format!("{what}: budgets.{name}"))
                        .context("a caller's budget")?;
                }
            }
        }
    }
    Ok(())
}
