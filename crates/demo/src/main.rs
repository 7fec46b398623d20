//! `pseudoform-demo`: the whole chain on one machine, for a new user and for
//! the page tests.
//!
//! It creates (once) development keys in `--dir`: an RSA key pair for each
//! of two demo registries, the TTP's master key, the TTP's P-256 signing key
//! (whose public half both registries pin), the provider's P-256 client key
//! (signs subject tokens) and its P-256 encryption key (PKCS#8, for the
//! reversible pseudonym; its public half in the TTP's `encryption_keys`),
//! a second provider with its own client and encryption keys (it delivers
//! nothing: its keys show that another provider cannot open provider A's
//! pseudonyms), a P-256 client key per registry back end (rekey only) and
//! the demo clinician's password and a second employee's (`controleur`,
//! who approves under four-eyes). It writes real configuration
//! files for the reference TTP and both registries and serves them, in this
//! one process, on loopback:
//!
//! - the TTP (`pseudoform-ttp`), without static tokens: every credential is
//!   short-lived and DPoP-bound,
//! - registry A, which serves the demo form at `/`, may not receive the BSN
//!   and requires NGGV and RGG in every record,
//! - registry B, a second registry with its own key domain,
//! - the provider portal ([`portal`]): the clinician's login, which vouches
//!   for the browser at the TTP with a subject token, and the provider's
//!   validation page (`/validation`), which opens the reversible pseudonyms
//!   (type `R`) of registry A's validation requests with the provider's
//!   encryption key (`provider-a-enc.key.pem` in `--dir`, to import there),
//! - the identity frame's host ([`pseudoform_ttp::frame`]): the frame page
//!   that holds the identifying fields of the frame-mode form
//!   (`/frame.html` of registry A), from `--frame-dir` (`./build.sh build`
//!   writes `target/frame/`).
//!
//! With `--four-eyes` the validation page needs four-eyes approval: an
//! account gets numbers only after the other account approved its ask at
//! the portal. It is off by default, so that a new user can walk the
//! validation round trip alone with one account.
//!
//! Each runs on its own port, so the form (registry origin), the TTP, the
//! portal and the frame are different origins, as in production. With `--json` it
//! prints one line of JSON with the URLs and the demo account, for scripts
//! and tests.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64ct::{Base64Url, Encoding};
use clap::Parser;
use openssl::rsa::Rsa;
use pseudoform_core::reversible::REVERSIBLE_TYPE;
use pseudoform_core::PseudonymType;
use pseudoform_demo::portal;
use pseudoform_protocol::client::EcKey;
use sha2::Digest;
use tokio::net::TcpListener;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Runs the pseudoform chain (TTP + two registries) on loopback")]
struct Options {
    /// Folder for development keys, configuration and databases.
    #[arg(long, default_value = "target/demo")]
    dir: PathBuf,
    /// Folder served by registry A (the demo form and the built package).
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Port of the TTP (0 picks a free port).
    #[arg(long, default_value_t = 8470)]
    ttp_port: u16,
    /// Port of registry A, which serves the demo form.
    #[arg(long, default_value_t = 8480)]
    registry_port: u16,
    /// Port of registry A's second origin, which serves its frame-mode form
    /// (`/frame.html`): a frame parent only, never a browser origin of the
    /// TTP, so that page cannot obtain a TTP token of its own.
    #[arg(long, default_value_t = 8482)]
    framed_registry_port: u16,
    /// Port of registry B.
    #[arg(long, default_value_t = 8481)]
    second_registry_port: u16,
    /// Port of the provider portal (the clinician's login).
    #[arg(long, default_value_t = 8490)]
    portal_port: u16,
    /// Port of the identity frame's host (0 picks a free port).
    #[arg(long, default_value_t = 8475)]
    frame_port: u16,
    /// Folder of the built identity frame files (`./build.sh build`).
    #[arg(long, default_value = "target/frame")]
    frame_dir: PathBuf,
    /// The TTP URL the forms are given, if not the TTP itself (a proxy in tests).
    #[arg(long)]
    public_ttp_url: Option<String>,
    /// Another URL under which browsers reach registry A (a proxy in
    /// tests): its forms' submitter proofs may name it; repeatable.
    #[arg(long)]
    public_registry_url: Vec<String>,
    /// Another origin of registry A's frame-mode pages (a proxy in front of
    /// its second origin in the page tests): a frame parent only; repeatable.
    #[arg(long)]
    extra_frame_parent_origin: Vec<String>,
    /// Another origin from which forms may call the TTP for either registry
    /// (a proxy in front of registry A in the page tests); repeatable.
    #[arg(long)]
    extra_origin: Vec<String>,
    /// Evaluations per minute of the demo's provider at the TTP (its
    /// client budget).
    #[arg(long, default_value_t = 60_000)]
    rate_limit: u32,
    /// DEVELOPMENT ONLY, for the TTP load benchmark: also give the provider
    /// a static token (the file `provider-token` in `--dir`) and run the
    /// TTP with `development_static_tokens = true`.
    #[arg(long)]
    development_static_token: bool,
    /// Also make a second encryption key for the provider and list it last
    /// (current) at the TTP: a key rotation. Its earlier key stays listed,
    /// so older reversible pseudonyms still open.
    #[arg(long)]
    rotate_provider_key: bool,
    /// Four-eyes approval at the provider: the validation page opens
    /// numbers for an account only after the second demo account
    /// (`controleur`) approved its ask at the portal, and vice versa.
    #[arg(long)]
    four_eyes: bool,
    /// Print the URLs as one line of JSON instead of prose.
    #[arg(long)]
    json: bool,
}

/// One demo registry.
struct Registry {
    name: &'static str,
    organization: &'static str,
    scope: &'static str,
    /// Whether it may process the BSN, and so receive type B.
    may_process_bsn: bool,
    /// The types every record must have: in the TTP's policy, which the
    /// forms follow, and in the registry's own configuration.
    required: &'static [PseudonymType],
    /// Whether it may receive the reversible pseudonym (type `R`).
    reversible: bool,
}

impl Registry {
    /// The types it may receive, as a TOML array: every pseudonym type of
    /// the core, B only where the BSN may be processed.
    fn allowed_types(&self) -> String {
        let mut codes: Vec<String> = PseudonymType::ALL
            .into_iter()
            .filter(|t| self.may_process_bsn || *t != PseudonymType::B)
            .map(|t| toml_string(t.code()))
            .collect();
        if self.reversible {
            codes.push(toml_string(REVERSIBLE_TYPE));
        }
        format!("[{}]", codes.join(", "))
    }

    /// The types it requires, as a TOML array.
    fn required_types(&self) -> String {
        let codes: Vec<String> = self
            .required
            .iter()
            .map(|t| toml_string(t.code()))
            .collect();
        format!("[{}]", codes.join(", "))
    }
}

const REGISTRY_A: Registry = Registry {
    name: "registry-a",
    organization: "oin:00000001000000001000",
    scope: "kwaliteitsregistratie-a",
    may_process_bsn: false,
    required: &[PseudonymType::Nggv, PseudonymType::Rgg],
    reversible: true,
};

const REGISTRY_B: Registry = Registry {
    name: "registry-b",
    organization: "oin:00000001000000002000",
    scope: "kwaliteitsregistratie-b",
    may_process_bsn: true,
    required: &[],
    reversible: false,
};

/// The demo provider, whose portal logs the clinician in.
const PROVIDER: &str = "ura:00000001";

/// A second provider at the TTP, with its own client and encryption keys;
/// it has no portal and delivers nothing.
const SECOND_PROVIDER: &str = "ura:00000002";

/// The demo's processor: delivers for [`PROVIDER`] with `pseudoform batch`
/// (its client key `processor-client-key.pem`, its connection file
/// `processor-connection.toml` in `--dir`).
const PROCESSOR: &str = "oin:00000099000000001000";

/// The demo clinician's user name at the portal.
const USERNAME: &str = "zorgverlener";

/// The demo clinician's employee id: the acting person at the TTP.
const ACCOUNT_ID: &str = "medewerker-0001";

/// The second demo employee's user name: approves under four-eyes.
const SECOND_USERNAME: &str = "controleur";

/// The second demo employee's id.
const SECOND_ACCOUNT_ID: &str = "medewerker-0002";

fn random_b64(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).context("no system randomness")?;
    Ok(Base64Url::encode_string(&buf))
}

/// A secret file's content, created with `make` on first use.
fn secret(path: &Path, make: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = fs::read(path) {
        return Ok(existing);
    }
    let content = make()?;
    pseudoform_protocol::secret_file::create(path, &content)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(content)
}

/// The registry's RSA key pair (3072 bits), created on first use.
fn registry_keys(dir: &Path, registry: &Registry) -> anyhow::Result<(PathBuf, PathBuf)> {
    let private = dir.join(format!("{}-key.pem", registry.name));
    let public = dir.join(format!("{}-public.pem", registry.name));
    let pem = secret(&private, || Ok(Rsa::generate(3072)?.private_key_to_pem()?))?;
    if !public.exists() {
        let rsa = Rsa::private_key_from_pem(&pem)?;
        fs::write(&public, rsa.public_key_to_pem()?)?;
    }
    Ok((private, public))
}

/// The TTP's signing key (P-256), created on first use: its file, its
/// public PEM file and its `kid`.
fn ttp_signing_key(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, String)> {
    let private = dir.join("ttp-signing-key.pem");
    let public = dir.join("ttp-signing-public.pem");
    let pem = secret(&private, || {
        Ok(pseudoform_ttp::signing::generate_pem()?.to_vec())
    })?;
    let key = pseudoform_ttp::signing::SigningKey::from_pem(&pem)
        .with_context(|| format!("{} is not a usable signing key", private.display()))?;
    fs::write(&public, key.public_pem())
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok((private, public, key.kid().to_owned()))
}

/// A P-256 client key, created on first use, and its public PEM file.
fn client_key(dir: &Path, name: &str) -> anyhow::Result<(EcKey, PathBuf)> {
    let private = dir.join(format!("{name}-key.pem"));
    let public = dir.join(format!("{name}-public.pem"));
    let pem = secret(&private, || {
        Ok(pseudoform_protocol::client::generate_pem()?.to_vec())
    })?;
    let key = EcKey::from_pem(&pem)
        .with_context(|| format!("{} is not a usable P-256 key", private.display()))?;
    fs::write(&public, key.public_pem())
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok((key, public))
}

/// A P-256 encryption key of a provider (PKCS#8 PEM, created on first
/// use, 0600) named `{name}.key.pem`, and its public SPKI PEM file
/// `{name}.pub.pem` (for the TTP's `encryption_keys`).
fn encryption_key(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let pem = secret(&private, || {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
        Ok(key.private_key_to_pem_pkcs8()?)
    })?;
    let key = openssl::pkey::PKey::private_key_from_pem(&pem)
        .with_context(|| format!("{} is not a usable key", private.display()))?;
    fs::write(&public, key.public_key_to_pem()?)
        .with_context(|| format!("cannot write {}", public.display()))?;
    Ok((private, public))
}

fn toml_string(value: &str) -> String {
    serde_json::Value::String(value.into()).to_string()
}

/// The items of a TOML array of strings, comma-separated (without brackets).
fn toml_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| toml_string(i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A loopback origin by both its names, as a browser may reach it.
fn both_names(address: SocketAddr) -> [String; 2] {
    [
        format!("http://{address}"),
        format!("http://localhost:{}", address.port()),
    ]
}

async fn bind(port: u16) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} (choose another with the port options)")
        })?;
    let address = listener.local_addr()?;
    Ok((listener, address))
}

/// Serves registry A's one app on each listener, each with the demo's
/// redirect of one path to the page of the other mode, until the chain
/// stops.
async fn serve_registry_a(
    config: pseudoform_registry::RegistryConfig,
    listeners: [(TcpListener, (&'static str, String)); 2],
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let limits = config.limits;
    let app = pseudoform_registry::app(config)?;
    let serving = listeners.map(|(listener, (path, target))| {
        let router = axum::Router::new()
            .route(
                path,
                axum::routing::get(
                    move || async move { axum::response::Redirect::temporary(&target) },
                ),
            )
            .merge(app.clone());
        let mut rx = stopped.clone();
        pseudoform_server::serve(listener, router, &limits, async move {
            let _ = rx.wait_for(|s| *s).await;
        })
    });
    let [in_page, framed] = serving;
    tokio::try_join!(in_page, framed).context("registry A failed")?;
    Ok(())
}

/// Serves the portal until the chain stops.
async fn serve_portal(
    router: axum::Router,
    listener: TcpListener,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
        .context("the portal failed")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    // Absolute, because the paths are written into the servers' configuration
    // files, which resolve relative paths against their own folder.
    let dir = &fs::canonicalize(&options.dir)
        .with_context(|| format!("no folder {}", options.dir.display()))?;
    let www = fs::canonicalize(&options.www)
        .with_context(|| format!("no folder {}", options.www.display()))?;

    let (ttp_listener, ttp_address) = bind(options.ttp_port).await?;
    let (a_listener, a_address) = bind(options.registry_port).await?;
    let (framed_listener, framed_address) = bind(options.framed_registry_port).await?;
    // Registry A's frame-mode origin, by either name, and the proxies'.
    let mut frame_parents = both_names(framed_address).to_vec();
    frame_parents.extend(options.extra_frame_parent_origin.iter().cloned());
    let (b_listener, b_address) = bind(options.second_registry_port).await?;
    let (portal_listener, portal_address) = bind(options.portal_port).await?;
    let (frame_listener, frame_address) = bind(options.frame_port).await?;
    // The frame's origin, by either name, as for the registries.
    let frame_origins = both_names(frame_address);
    let frame_url = format!("http://{frame_address}/frame/");
    let frame_dir = std::path::absolute(&options.frame_dir)
        .with_context(|| format!("no folder {}", options.frame_dir.display()))?;
    let portal_url = format!("http://{portal_address}");
    // The validation page's origin: the portal's (one name: the page is
    // opened under it).
    let validation_origins = vec![portal_url.clone()];
    let login_url = format!("{portal_url}/popup");
    let ttp_url = format!("http://{ttp_address}");
    let public_ttp_url = options
        .public_ttp_url
        .clone()
        .unwrap_or_else(|| ttp_url.clone());
    let a_url = format!("http://{a_address}");
    let b_url = format!("http://{b_address}");
    let origins = |address: SocketAddr, extra: &[String]| {
        let mut list = both_names(address).to_vec();
        list.extend(extra.iter().cloned());
        toml_list(&list)
    };

    // Development secrets, made once and kept in --dir.
    let master_key = dir.join("ttp-master-key");
    secret(&master_key, || Ok(random_b64(32)?.into_bytes()))?;
    let password = String::from_utf8(secret(&dir.join("portal-password"), || {
        Ok(random_b64(12)?.into_bytes())
    })?)?;
    let second_password = String::from_utf8(secret(&dir.join("portal-password-2"), || {
        Ok(random_b64(12)?.into_bytes())
    })?)?;
    let (provider_key, provider_public) = client_key(dir, "provider-client")?;
    // The benchmark's static token, only when asked for.
    let (static_switch, static_token) = if options.development_static_token {
        let token = secret(&dir.join("provider-token"), || {
            Ok(random_b64(32)?.into_bytes())
        })?;
        let hash = hex::encode(sha2::Sha256::digest(&token));
        (
            "development_static_tokens = true\n",
            format!("token_sha256 = {}\n", toml_string(&hash)),
        )
    } else {
        ("", String::new())
    };
    // The provider's encryption keys: the first, and after a rotation a
    // second, listed last (current).
    let (provider_enc_private, provider_enc_public) = encryption_key(dir, "provider-a-enc")?;
    let mut provider_enc_keys = vec![provider_enc_public.to_string_lossy().into_owned()];
    let mut current_enc_private = provider_enc_private.clone();
    if options.rotate_provider_key {
        let (private, public) = encryption_key(dir, "provider-a-enc-2")?;
        provider_enc_keys.push(public.to_string_lossy().into_owned());
        current_enc_private = private;
    }
    let (_, second_provider_public) = client_key(dir, "provider-b-client")?;
    let (_, processor_public) = client_key(dir, "processor-client")?;
    let (second_enc_private, second_enc_public) = encryption_key(dir, "provider-b-enc")?;
    let (_, a_client_public) = client_key(dir, &format!("{}-client", REGISTRY_A.name))?;
    let (_, b_client_public) = client_key(dir, &format!("{}-client", REGISTRY_B.name))?;
    let (a_private, a_public) = registry_keys(dir, &REGISTRY_A)?;
    let (b_private, b_public) = registry_keys(dir, &REGISTRY_B)?;
    let (signing_private, signing_public, signing_kid) = ttp_signing_key(dir)?;

    let recipient = |r: &Registry,
                     public: &Path,
                     address: SocketAddr,
                     extra: &[String],
                     parents: &[String]| {
        format!(
            "[[recipients]]\norganization = {}\nscope = {}\npublic_key = {}\nallowed_types = {}\nrequired_types = {}\nallowed_origins = [{}]\nframe_parent_origins = [{}]\n\n",
            toml_string(r.organization),
            toml_string(r.scope),
            toml_string(&public.to_string_lossy()),
            r.allowed_types(),
            r.required_types(),
            origins(address, extra),
            toml_list(parents),
        )
    };
    let refs = format!(
        "[{{ organization = {}, scope = {} }}, {{ organization = {}, scope = {} }}]",
        toml_string(REGISTRY_A.organization),
        toml_string(REGISTRY_A.scope),
        toml_string(REGISTRY_B.organization),
        toml_string(REGISTRY_B.scope)
    );
    // The provider's browsers evaluate `--rate-limit` a minute (per
    // browser token, per clinician and for the provider); the day and the
    // recipient budgets never stop them first.
    let rate = u64::from(options.rate_limit.max(1));
    let day = rate.saturating_mul(1440).max(2_000_000);
    let recipient_caller = |r: &Registry, public: &Path| {
        format!(
            "[[callers]]\nid = {org}\nrole = \"recipient\"\npublic_keys = [{key}]\nrecipient = {{ organization = {org}, scope = {scope} }}\n\n",
            org = toml_string(r.organization),
            scope = toml_string(r.scope),
            key = toml_string(&public.to_string_lossy()),
        )
    };
    let ttp_toml = format!(
        "# Development configuration written by pseudoform-demo.\n# No static tokens: browsers get short-lived DPoP-bound tokens through the\n# provider portal's subject tokens; registries may only re-key.\nlisten = {}\npublic_url = {}\ndatabase = {}\nmaster_key_file = {}\nsigning_key = {}\n{static_switch}\n[budgets]\nbrowser_token = {{ per_minute = {rate}, per_day = {day} }}\nperson = {{ per_minute = {rate}, per_day = {day} }}\nclient = {{ per_minute = {rate}, per_day = {day} }}\nprovider = {{ per_minute = {provider}, per_day = {provider_day} }}\nrecipient = {{ per_minute = {recipient}, per_day = {recipient_day} }}\n\n# The identity frame is hosted on its own origin (the demo's frame host).\n[frame]\norigins = [{frame_origins}]\n\n{}{}[[callers]]\nid = {}\nrole = \"provider\"\npublic_keys = [{}]\nlogin = {login}\n{static_token}recipients = {}\nencryption_keys = [{encryption_keys}]\nvalidation_origins = [{validation_origins}]\n\n[[callers]]\nid = {second_provider}\nrole = \"provider\"\npublic_keys = [{second_public}]\nrecipients = {}\nencryption_keys = [{second_enc}]\n\n{}{}",
        toml_string(&ttp_address.to_string()),
        toml_string(&public_ttp_url),
        toml_string(&dir.join("ttp.sqlite").to_string_lossy()),
        toml_string(&master_key.to_string_lossy()),
        toml_string(&signing_private.to_string_lossy()),
        recipient(
            &REGISTRY_A,
            &a_public,
            a_address,
            &options.extra_origin,
            &frame_parents
        ),
        recipient(&REGISTRY_B, &b_public, b_address, &options.extra_origin, &[]),
        toml_string(PROVIDER),
        toml_string(&provider_public.to_string_lossy()),
        refs,
        refs,
        recipient_caller(&REGISTRY_A, &a_client_public),
        recipient_caller(&REGISTRY_B, &b_client_public),
        rate = rate,
        day = day,
        static_switch = static_switch,
        static_token = static_token,
        provider = rate.max(20_000),
        provider_day = day.max(500_000),
        recipient = rate.max(100_000),
        recipient_day = day.max(5_000_000),
        frame_origins = toml_list(&frame_origins),
        login = toml_string(&login_url),
        encryption_keys = toml_list(&provider_enc_keys),
        validation_origins = toml_list(&validation_origins),
        second_provider = toml_string(SECOND_PROVIDER),
        second_public = toml_string(&second_provider_public.to_string_lossy()),
        second_enc = toml_string(&second_enc_public.to_string_lossy()),
    );
    // The processor: evaluates for the demo provider, as its back end.
    let ttp_toml = format!(
        "{ttp_toml}[[callers]]\nid = {}\nrole = \"processor\"\nacts_for = [{}]\npublic_keys = [{}]\nrecipients = {refs}\n",
        toml_string(PROCESSOR),
        toml_string(PROVIDER),
        toml_string(&processor_public.to_string_lossy()),
    );
    let ttp_config_path = dir.join("ttp.toml");
    fs::write(&ttp_config_path, ttp_toml)?;
    // The processor's connection file for `pseudoform batch` (registry A).
    let processor_connection = dir.join("processor-connection.toml");
    fs::write(
        &processor_connection,
        format!(
            "# Written by pseudoform-demo: the demo processor's connection for `pseudoform batch`.\nttp_url = {}\nclient_id = {}\nclient_key = {}\nprovider = {}\nttp_signing_keys = [{}]\n\n[registry]\norganization = {}\nscope = {}\nurl = {}\n",
            toml_string(&public_ttp_url),
            toml_string(PROCESSOR),
            toml_string(&dir.join("processor-client-key.pem").to_string_lossy()),
            toml_string(PROVIDER),
            toml_string(&signing_public.to_string_lossy()),
            toml_string(REGISTRY_A.organization),
            toml_string(REGISTRY_A.scope),
            toml_string(&a_url),
        ),
    )?;
    let ttp_config = pseudoform_ttp::TtpConfig::from_toml_file(&ttp_config_path)?;

    let registry_toml = |r: &Registry,
                         private: &Path,
                         address: SocketAddr,
                         extra: &[String],
                         frame: Option<&str>| {
        let frame = frame
            .map(|url| format!("frame_url = {}\n", toml_string(url)))
            .unwrap_or_default();
        // A registry that receives R answers the provider's validation page.
        let validation = if r.reversible {
            format!(
                "validation_origins = [{}]\n",
                toml_list(&validation_origins)
            )
        } else {
            String::new()
        };
        format!(
            "# Development configuration written by pseudoform-demo.\n{frame}{validation}listen = {}\nrecipient_organization = {}\nrecipient_scope = {}\nallowed_types = {}\nrequired_types = {}\ndatabase = {}\nwww_dir = {}\nttp_url = {}\npublic_url = {}\nextra_public_urls = [{}]\nprovider = {}\nlogin_url = {}\nttp_signing_keys = [{}]\n\n[[keys]]\npath = {}\n",
            toml_string(&address.to_string()),
            toml_string(r.organization),
            toml_string(r.scope),
            r.allowed_types(),
            r.required_types(),
            toml_string(&dir.join(format!("{}.sqlite", r.name)).to_string_lossy()),
            toml_string(&www.to_string_lossy()),
            toml_string(&public_ttp_url),
            toml_string(&format!("http://{address}")),
            toml_list(extra),
            toml_string(PROVIDER),
            toml_string(&login_url),
            toml_string(&signing_public.to_string_lossy()),
            toml_string(&private.to_string_lossy()),
        )
    };
    let mut registries = Vec::new();
    // Each registry is reached as localhost too; registry A maybe through a proxy.
    let also = |address: SocketAddr, extra: &[String]| {
        let mut urls = vec![format!("http://localhost:{}", address.port())];
        urls.extend(extra.iter().cloned());
        urls
    };
    // Registry A is also reached on its frame-mode origin (and its proxies).
    let mut a_extra = options.public_registry_url.clone();
    a_extra.extend(frame_parents.iter().cloned());
    // Registry A's form may use the identity frame; registry B's is in-page only.
    for (r, private, address, extra, frame) in [
        (
            &REGISTRY_A,
            &a_private,
            a_address,
            also(a_address, &a_extra),
            Some(frame_url.as_str()),
        ),
        (
            &REGISTRY_B,
            &b_private,
            b_address,
            also(b_address, &[]),
            None,
        ),
    ] {
        let path = dir.join(format!("{}.toml", r.name));
        fs::write(&path, registry_toml(r, private, address, &extra, frame))?;
        registries.push(pseudoform_registry::RegistryConfig::from_toml_file(&path)?);
    }
    let b_config = registries.pop().context("registry B")?;
    let a_config = registries.pop().context("registry A")?;

    // The portal vouches for the demo's form and frame origins only.
    let mut form_origins = Vec::new();
    for address in [a_address, b_address] {
        form_origins.extend(both_names(address));
    }
    form_origins.extend(options.extra_origin.iter().cloned());
    form_origins.extend(frame_origins.iter().cloned());

    // The frame host: the TTP's own settings (its public URL, recipients,
    // the provider's login popup, its signing key).
    let frame_host = pseudoform_ttp::frame::FrameHost {
        dir: frame_dir.clone(),
        settings: pseudoform_ttp::frame::Settings::from_config(&ttp_config, &signing_kid),
    };
    let frame_missing = frame_host.missing_files();
    let portal_router = portal::router(portal::PortalConfig {
        origin: portal_url.clone(),
        provider: PROVIDER.into(),
        issuer: ttp_config.issuer(),
        form_origins,
        accounts: vec![
            portal::Account {
                username: USERNAME.into(),
                password: password.clone(),
                id: ACCOUNT_ID.into(),
            },
            portal::Account {
                username: SECOND_USERNAME.into(),
                password: second_password.clone(),
                id: SECOND_ACCOUNT_ID.into(),
            },
        ],
        key: provider_key,
        validation: Some(portal::Validation {
            config: portal::ValidationPageConfig {
                ttp: public_ttp_url.clone(),
                provider: PROVIDER.into(),
                ttp_signing_keys: vec![signing_kid.clone()],
                registries: [(&REGISTRY_A, &a_url)]
                    .into_iter()
                    .filter(|(r, _)| r.reversible)
                    .map(|(r, url)| portal::ValidationRegistry {
                        name: r.name.into(),
                        url: url.clone(),
                        recipient_organization: r.organization.into(),
                        recipient_scope: r.scope.into(),
                    })
                    .collect(),
                four_eyes: options.four_eyes,
            },
            pkg_dir: www.join("pkg"),
            approval_seconds: portal::APPROVAL_SECONDS,
        }),
    });
    let validation_url = format!("{portal_url}/validation");

    if options.json {
        println!(
            "{}",
            serde_json::json!({
                "ttp": ttp_url, "publicTtp": public_ttp_url, "registryA": a_url, "registryAFramed": format!("http://{framed_address}"), "registryB": b_url,
                "form": format!("{a_url}/"), "frameForm": format!("http://{framed_address}/frame.html"),
                "frame": frame_url, "frameBuilt": frame_missing.is_empty(),
                "frameManifest": frame_host.manifest_digest(), "dir": dir,
                "recipientA": { "organization": REGISTRY_A.organization, "scope": REGISTRY_A.scope,
                                "requiredTypes": REGISTRY_A.required.iter().map(|t| t.code()).collect::<Vec<_>>() },
                "recipientB": { "organization": REGISTRY_B.organization, "scope": REGISTRY_B.scope },
                "provider": PROVIDER, "portal": portal_url, "login": login_url,
                "account": { "username": USERNAME, "password": password, "id": ACCOUNT_ID },
                "secondAccount": { "username": SECOND_USERNAME, "password": second_password, "id": SECOND_ACCOUNT_ID },
                "fourEyes": options.four_eyes,
                "validation": validation_url,
                "providerKey": current_enc_private, "providerKeys": provider_enc_keys,
                "firstProviderKey": provider_enc_private,
                "secondProvider": SECOND_PROVIDER, "secondProviderKey": second_enc_private,
                "processor": PROCESSOR, "processorConnection": processor_connection,
                "workbench": format!("{a_url}/workbench/"),
            })
        );
    } else {
        println!("pseudoform demo: the whole chain on loopback");
        println!("  TTP          {ttp_url}");
        println!(
            "  registry A   {a_url}/registry   (may not receive the BSN; requires NGGV and RGG)"
        );
        println!("  registry B   {b_url}/registry");
        println!("  portal       {portal_url}   (the provider's login for the clinician)");
        println!("  frame host   {frame_url}   (the identity frame, its own origin)");
        println!();
        println!("  Open the demo form:  {a_url}/             (identity fields in the page)");
        println!(
            "  or in frame mode:    http://{framed_address}/frame.html   (identity fields in the frame; registry A's frame-mode origin)"
        );
        match frame_host.manifest_digest() {
            Some(digest) if frame_missing.is_empty() => {
                println!(
                    "  Frame files from {} (manifest.json {digest})",
                    frame_dir.display()
                );
            }
            _ => println!(
                "  Frame mode needs the built frame: {} lacks {}; run ./build.sh build",
                frame_dir.display(),
                frame_missing.join(", ")
            ),
        }
        println!("  Log in when the form asks: user {USERNAME}, password {password}");
        println!();
        println!("  The provider's validation page: {validation_url}");
        println!(
            "  Import the provider's key file there: {}",
            current_enc_private.display()
        );
        if options.four_eyes {
            println!(
                "  Four-eyes is on: numbers only after the other account approves; second account: user {SECOND_USERNAME}, password {second_password}"
            );
        } else {
            println!("  (--four-eyes: numbers only after a second account approves)");
        }
        println!();
        println!(
            "  A processor's workbench (open a CSV or XLSX extract; it never leaves the browser): {a_url}/workbench/"
        );
        println!("  A processor's batch delivery to registry A (the file stays on this machine):");
        println!(
            "    target/release/pseudoform batch --connection {} --mapping docs/examples/processor-mapping.toml --deliver --report {} docs/examples/processor-extract.csv",
            processor_connection.display(),
            dir.join("processor-report.csv").display()
        );
        println!(
            "  Development keys and databases in {} (Ctrl-C stops)",
            dir.display()
        );
    }

    // One shutdown for the whole chain: on Ctrl-C or SIGTERM the TTP drains
    // its requests and audit log, and the registries stop with it.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ttp_stopped = {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let registry = |config, listener, mut rx: tokio::sync::watch::Receiver<bool>| async move {
        tokio::select! {
            result = pseudoform_registry::serve(config, listener) => result,
            _ = rx.wait_for(|s| *s) => Ok(()),
        }
    };
    // Registry A on two origins: the in-page form's (a form origin of the
    // TTP) and the frame-mode form's (a frame parent only). The demo pages'
    // links to the other mode go through these redirects.
    let in_page_switch = ("/frame.html", format!("http://{framed_address}/frame.html"));
    let framed_switch = ("/", format!("http://{a_address}/"));
    let chain = async {
        tokio::try_join!(
            pseudoform_ttp::serve_with_shutdown(ttp_config, ttp_listener, ttp_stopped),
            serve_registry_a(
                a_config,
                [
                    (a_listener, in_page_switch),
                    (framed_listener, framed_switch)
                ],
                stopped.clone()
            ),
            registry(b_config, b_listener, stopped.clone()),
            serve_portal(portal_router, portal_listener, stopped.clone()),
            pseudoform_ttp::frame::serve(&frame_host, frame_listener, {
                let mut rx = stopped.clone();
                async move {
                    let _ = rx.wait_for(|s| *s).await;
                }
            }),
        )
    };
    tokio::pin!(chain);
    tokio::select! {
        result = &mut chain => { result?; }
        () = pseudoform_ttp::shutdown_signal() => {
            let _ = stop.send(true);
            chain.await?;
        }
    }
    Ok(())
}
