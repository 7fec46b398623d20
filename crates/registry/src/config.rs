//! The registry's configuration, read from a TOML file.
//!
//! ```toml
//! listen = "127.0.0.1:8081"
//! recipient_organization = "oin:00000001000000001000"
//! recipient_scope = "kwaliteitsregistratie-a"
//! allowed_types = ["NGGV", "sNGGV", "RGG", "MRN"]   # "R": the reversible pseudonym
//! required_types = ["NGGV", "RGG"]
//! database = "registry.sqlite"
//! www_dir = "www"
//! ttp_url = "http://127.0.0.1:8080"
//! provider = "ura:00000001"
//! login_url = "https://portaal.zorgaanbieder.example.nl/popup"
//! ttp_signing_keys = ["keys/ttp-signing-public.pem"]
//! accept_unsigned = false
//! ttp_jwe_alg = "RSA-OAEP-256"            # pinned; "RSA-OAEP" for the national service
//! development_clear_blind_factors = false # true: clear blindFactors (development only)
//! public_url = "https://registratie-a.example.nl"   # default http://{listen}
//! extra_public_urls = []   # other names of this registry, for submitter proofs
//! require_submitter_proof = true
//! allowed_origins = []   # form origins on other sites (CORS); default none
//! frame_url = "https://ttp.example.nl/frame/"   # the identity frame; default none
//! validation_origins = []   # providers' validation pages (CORS of the provider endpoints)
//! ttp_issuer = "https://ttp.example.nl"   # `iss` of validate tokens; default ttp_url
//!
//! [limits]   # the defaults
//! header_timeout_seconds = 10   # also closes idle keep-alive connections
//! body_timeout_seconds = 10
//! request_timeout_seconds = 30
//! max_connections = 1024
//!
//! [[keys]]
//! path = "keys/registry-key.pem"
//! # kid = "…"   # default: the RFC 7638 thumbprint of the public key
//! ```
//!
//! Relative paths (`database`, `www_dir`, `keys[].path`,
//! `ttp_signing_keys`) are taken relative
//! to the directory of the configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::jwe::JweAlg;

/// One RSA private key of the registry: a PEM file or the PEM itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Path of a PEM file with the RSA private key (PKCS#8 or PKCS#1).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The PEM text itself, instead of `path`.
    #[serde(default)]
    pub pem: Option<String>,
    /// The `kid` the TTP puts in JWEs for this key; default the RFC 7638
    /// JWK thumbprint of the public key.
    #[serde(default)]
    pub kid: Option<String>,
}

/// The configuration of a registry receiver and its demo server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Address the demo server listens on (`serve` without `--listen`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The registry's organisation: `oin:` and its OIN ([`pseudoform_protocol::is_oin`]).
    pub recipient_organization: String,
    /// The registry's scope (key domain at the TTP).
    pub recipient_scope: String,
    /// Pseudonym type codes this registry accepts (`B` only if it may
    /// process the BSN), and `R` if it accepts the reversible pseudonym
    /// (`reversible` of a record submission).
    pub allowed_types: Vec<String>,
    /// Pseudonym type codes every record must have (each one of
    /// `allowed_types`): a submission without one of them is refused with
    /// 422 `pseudonyms.requiredMissing` and nothing is stored. Empty: every
    /// allowed type is best-effort.
    #[serde(default)]
    pub required_types: Vec<String>,
    /// The registry's RSA private keys; JWEs select one by `kid`. Keep the
    /// old key here after a rotation until JWEs made for it have expired.
    pub keys: Vec<KeyConfig>,
    /// The SQLite database file.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Directory of the static demo files served at `/`.
    #[serde(default = "default_www_dir")]
    pub www_dir: PathBuf,
    /// Base URL of the TTP, for `/api/form-config`, the page's CSP
    /// `connect-src` and the rekey.
    pub ttp_url: String,
    /// The supplying provider of the demo form (`ura:…`), for
    /// `/api/form-config`; scopes MRN pseudonyms.
    #[serde(default)]
    pub provider: String,
    /// The provider portal's login popup URL, handed to the demo form by
    /// `/api/form-config` (`login`): the form obtains its short-lived,
    /// DPoP-bound TTP credential through it.
    #[serde(default)]
    pub login_url: String,
    /// DEVELOPMENT ONLY: a static TTP token, handed to the demo form by
    /// `/api/form-config` (`accessToken`), for a TTP run with
    /// `development_static_tokens = true`. Empty (the default): none. A
    /// production page never gets a token from the registry.
    #[serde(default)]
    pub access_token: String,
    /// Allowed clock difference with the TTP, in seconds.
    #[serde(default = "default_skew")]
    pub clock_skew_seconds: i64,
    /// PEM files of the TTP's public signing keys (P-256, `ES256`), pinned:
    /// the claims inside every JWE must be a JWS of one of them, selected by
    /// `kid` (the RFC 7638 thumbprint). Several during a rotation.
    #[serde(default)]
    pub ttp_signing_keys: Vec<PathBuf>,
    /// Accept JWEs whose plaintext is the bare claims, not signed: only for
    /// a TTP that does not sign (the national reference service). Anybody
    /// who has the registry's public key can make such a JWE. Signed ones
    /// are verified all the same.
    #[serde(default)]
    pub accept_unsigned: bool,
    /// The `alg` of the TTP's JWEs, pinned: `RSA-OAEP-256` (the default,
    /// pseudoform's TTP) or `RSA-OAEP` (the national service). A JWE with
    /// another `alg` is refused before any RSA. The browser's JWE of the
    /// blind factors is always `RSA-OAEP-256`.
    #[serde(default)]
    pub ttp_jwe_alg: JweAlg,
    /// DEVELOPMENT AND THE NATIONAL PACKAGING ONLY: accept `blindFactors`
    /// in the clear beside a record JWE (default `false`: refused with 422
    /// `blindFactors.notEncrypted`). A capture of the form's traffic with
    /// clear blind factors identifies the patient; the national packaging
    /// carries them in the clear whatever this says.
    #[serde(default)]
    pub development_clear_blind_factors: bool,
    /// The registry's public base URL: submitter proofs name
    /// `{public_url}/api/submissions` (`htu`). Default `http://{listen}`.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Other base URLs under which browsers reach this registry (another
    /// host name, a proxy): submitter proofs may name any of them.
    #[serde(default)]
    pub extra_public_urls: Vec<String>,
    /// Refuse (422 `submitter.unbound`) records whose claims bind them to
    /// no submitter key (`cnf`): set `false` only for a TTP that binds none
    /// (the national reference service, development tokens). A record that
    /// is bound always needs its proof.
    #[serde(default = "default_true")]
    pub require_submitter_proof: bool,
    /// Form origins on other origins than the registry's that may post
    /// submissions (CORS, with the `DPoP` header). Default none: the form is
    /// served by the registry itself.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The identity frame's page URL (e.g. `https://ttp.example.nl/frame/`),
    /// handed to the form by `/api/form-config` (`frame`); the static
    /// files' CSP then allows framing its origin (`frame-src`). Default
    /// none: the form binds in-page only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_url: Option<String>,
    /// Origins of providers' validation pages (`https://…`, or `http://`
    /// on loopback) that may call the provider endpoints
    /// (`/api/validation-requests`, `/api/provider-records`,
    /// `/api/withdrawals`) from a browser (CORS, with the `Authorization`,
    /// `DPoP` and `Content-Type` headers). Default none.
    #[serde(default)]
    pub validation_origins: Vec<String>,
    /// The `iss` of the TTP's validate tokens; default `ttp_url` (without a
    /// trailing `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttp_issuer: Option<String>,
    /// Connection limits and timeouts of the server (`[limits]`; the
    /// defaults of [`pseudoform_server::Limits`]).
    #[serde(default)]
    pub limits: pseudoform_server::Limits,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081))
}

fn default_database() -> PathBuf {
    PathBuf::from("registry.sqlite")
}

fn default_www_dir() -> PathBuf {
    PathBuf::from("www")
}

fn default_true() -> bool {
    true
}

fn default_skew() -> i64 {
    30
}

impl RegistryConfig {
    /// Parses a configuration from TOML text; relative paths stay as they are.
    pub fn from_toml_str(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text).context("the registry configuration is invalid")?;
        config.limits.validate()?;
        config.frame_origin()?;
        config.check_validation_origins()?;
        Ok(config)
    }

    /// Reads a configuration file; relative paths in it are resolved against
    /// the file's directory.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        let mut config = Self::from_toml_str(&text)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    /// Makes the relative paths of the configuration relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.database);
        resolve(&mut self.www_dir);
        for p in &mut self.ttp_signing_keys {
            resolve(p);
        }
        for key in &mut self.keys {
            if let Some(p) = key.path.as_mut() {
                resolve(p);
            }
        }
    }

    /// The public base URL: [`RegistryConfig::public_url`], else `http://` + `listen`.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// [`RegistryConfig::public_url`] and then `extra_public_urls`.
    pub fn public_urls(&self) -> Vec<String> {
        let mut urls = vec![self.public_url()];
        urls.extend(self.extra_public_urls.iter().cloned());
        urls
    }

    /// The origin (`scheme://host[:port]`) of `ttp_url`.
    pub fn ttp_origin(&self) -> anyhow::Result<String> {
        origin_of(&self.ttp_url, "ttp_url")
    }

    /// The expected `iss` of validate tokens: `ttp_issuer`, else `ttp_url`
    /// without a trailing `/`.
    pub fn ttp_issuer(&self) -> String {
        self.ttp_issuer
            .clone()
            .unwrap_or_else(|| self.ttp_url.trim_end_matches('/').to_owned())
    }

    /// Every `validation_origins` entry is an origin: `https://host[:port]`,
    /// or `http://` on a loopback host, nothing more.
    pub fn check_validation_origins(&self) -> anyhow::Result<()> {
        for origin in &self.validation_origins {
            let serialized = origin_of(origin, "validation_origins").ok();
            let loopback = reqwest::Url::parse(origin).ok().is_some_and(|u| {
                u.scheme() == "https"
                    || matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
            });
            anyhow::ensure!(
                serialized.as_deref() == Some(origin.as_str()) && loopback,
                "validation_origins: {origin:?} is not an https origin (or http on loopback) \
                 without path"
            );
        }
        Ok(())
    }

    /// The origin of `frame_url`, if set; an error if it is not an
    /// `http(s)` URL without user, password or fragment.
    pub fn frame_origin(&self) -> anyhow::Result<Option<String>> {
        let Some(url) = &self.frame_url else {
            return Ok(None);
        };
        let parsed = reqwest::Url::parse(url).context("frame_url is not a URL")?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "https" | "http")
                && parsed.username().is_empty()
                && parsed.password().is_none()
                && parsed.fragment().is_none()
                && url.bytes().all(|b| b.is_ascii_graphic()),
            "frame_url must be an http(s) URL without user, password or fragment"
        );
        origin_of(url, "frame_url").map(Some)
    }
}

/// The origin of `url` (the setting `name`).
fn origin_of(url: &str, name: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(url).with_context(|| format!("{name} is not a URL"))?;
    let origin = url.origin();
    anyhow::ensure!(origin.is_tuple(), "{name} has no origin");
    Ok(origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let mut config =
            RegistryConfig::from_toml_str(include_str!("../registry.example.toml")).unwrap();
        assert!(pseudoform_protocol::is_oin(&config.recipient_organization));
        assert_eq!(config.ttp_origin().unwrap(), "http://127.0.0.1:8080");
        assert_eq!(config.required_types, ["NGGV", "RGG"]);
        config.resolve_paths(Path::new("/etc/registry"));
        assert_eq!(config.database, Path::new("/etc/registry/registry.sqlite"));
        assert_eq!(
            config.keys[0].path.as_deref(),
            Some(Path::new("/etc/registry/keys/registry-key.pem"))
        );
        assert_eq!(
            config.ttp_signing_keys,
            [Path::new("/etc/registry/keys/ttp-signing-public.pem")]
        );
        assert!(!config.accept_unsigned);
        assert_eq!(config.ttp_jwe_alg, JweAlg::RsaOaep256);
        assert!(!config.development_clear_blind_factors);
        assert!(config.require_submitter_proof);
        assert_eq!(config.public_urls(), ["http://127.0.0.1:8081"]);
        assert_eq!(config.frame_origin().unwrap(), None);
        assert!(config.validation_origins.is_empty());
        assert_eq!(config.ttp_issuer(), "http://127.0.0.1:8080");
    }

    #[test]
    fn validation_origins_are_plain_origins() {
        let example = include_str!("../registry.example.toml");
        let with = |origins: &str| {
            RegistryConfig::from_toml_str(&format!("validation_origins = {origins}\n{example}"))
        };
        let config = with(r#"["https://zorg.example.nl", "http://127.0.0.1:8490"]"#).unwrap();
        assert_eq!(config.validation_origins.len(), 2);
        for refused in [
            r#"["http://zorg.example.nl"]"#,
            r#"["https://zorg.example.nl/"]"#,
            r#"["https://zorg.example.nl/validation"]"#,
            r#"["*"]"#,
            r#"["null"]"#,
        ] {
            assert!(with(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn frame_url_must_be_a_plain_http_url() {
        let example = include_str!("../registry.example.toml");
        let with =
            |url: &str| RegistryConfig::from_toml_str(&format!("frame_url = {url:?}\n{example}"));
        let config = with("https://TTP.example.nl:8443/frame/").unwrap();
        assert_eq!(
            config.frame_origin().unwrap().as_deref(),
            Some("https://ttp.example.nl:8443")
        );
        for refused in [
            "/frame/",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:secret@ttp.example.nl/frame/",
            "https://ttp.example.nl/frame/#x",
            "https://ttp.example.nl/fr ame/",
        ] {
            assert!(with(refused).is_err(), "{refused}");
        }
    }
}
