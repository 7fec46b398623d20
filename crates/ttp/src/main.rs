//! `pseudoform-ttp`: serve the TTP, manage key versions, verify and export
//! the audit log, and make the secrets a configuration needs. No command
//! takes key material on its command line: keys and tokens come from files
//! or standard input.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use clap::{Parser, Subcommand};
use pseudoform_core::encoding;
use pseudoform_core::oprf::ServerKey;
use pseudoform_ttp::audit::chain::{self, HeadKey};
use pseudoform_ttp::keys::{KeyStatus, KeyStore, MasterKey};
use pseudoform_ttp::{callers, hsm, signing, TtpConfig};
use zeroize::Zeroizing;

/// Reference TTP of pseudoform.
#[derive(Parser)]
#[command(name = "pseudoform-ttp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--config`: the configuration file, read and checked.
#[derive(clap::Args)]
struct ConfigFile {
    /// The configuration file.
    #[arg(long = "config")]
    path: PathBuf,
}

impl ConfigFile {
    fn load(&self) -> anyhow::Result<TtpConfig> {
        TtpConfig::from_toml_file(&self.path)
    }
}

/// Selects one key domain.
#[derive(clap::Args)]
struct Domain {
    #[command(flatten)]
    config: ConfigFile,
    /// Recipient organisation (`oin:` + the national OIN: 8 digits, 8 alphanumerics + `0000` or 9 + `000`).
    #[arg(long)]
    organization: String,
    /// Recipient scope.
    #[arg(long)]
    scope: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the TTP until Ctrl-C or SIGTERM.
    Serve {
        #[command(flatten)]
        config: ConfigFile,
        /// Address to listen on (overrides `listen` of the file).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Make a new random key version current; older versions stay active.
    Rotate {
        #[command(flatten)]
        domain: Domain,
    },
    /// Retire an older key version: no longer evaluated, key destroyed, on
    /// every running server from its next request. Refused for the current
    /// version and, after a rotation, until the JWE lifetime, the request
    /// timeout and the registries' clock skew have passed (re-key the
    /// registries in that time).
    Retire {
        #[command(flatten)]
        domain: Domain,
        /// The version to retire.
        #[arg(long)]
        version: u32,
    },
    /// Make a given key (a padded base64url scalar) the new current
    /// version: migration and known-answer tests.
    ImportKey {
        #[command(flatten)]
        domain: Domain,
        /// The file holding the key (owner-only), or `-` for standard input.
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Move every key version and binding key from the configuration's
    /// `database` into PostgreSQL of its `[keys]`: sealed as they are, each
    /// active one decrypted there before it is deleted from the database.
    /// Run it with the servers stopped, once, when moving to `[keys]`.
    MoveKeys {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// List the key versions of a domain.
    ListKeys {
        #[command(flatten)]
        domain: Domain,
    },
    /// Verify the audit log's hash chain against its signed heads (with the
    /// public key only).
    VerifyAudit {
        #[command(flatten)]
        config: ConfigFile,
        /// The TTP's public signing key (PEM); default the public half of
        /// the configured signing key.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Export or verify the audit log for an auditor.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the SHA-256 (hex) of a development static token read from
    /// standard input, for `token_sha256`.
    HashToken,
    /// Print a new random development static token and its SHA-256.
    GenToken,
    /// Print a new random master key (padded base64url).
    GenMasterKey,
    /// Write a new P-256 signing key (PKCS#8 PEM, owner-only) for `signing_key`.
    GenSigningKey {
        /// The file to create; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public half of the configured signing key: its JWK (with
    /// `kid`), or with `--public-pem` the PEM a registry pins in
    /// `ttp_signing_keys`.
    SigningKey {
        #[command(flatten)]
        config: ConfigFile,
        /// Print the SPKI PEM instead of the JWK.
        #[arg(long)]
        public_pem: bool,
    },
    /// Make the master key and the signing key pair on the token of the
    /// configuration's `[hsm]` that are not there yet, sensitive and not
    /// extractable (a new `signing_key_label`: a new signing key next to the
    /// kept master key); refused when both are there. Prints the signing
    /// key's `kid`.
    HsmInit {
        #[command(flatten)]
        config: ConfigFile,
        /// Put this master key file's key on the token instead of a new
        /// one: a database made with a key file then opens unchanged.
        #[arg(long)]
        import_master_key: Option<PathBuf>,
        /// Put this PEM signing key on the token instead of a new one: the
        /// registries' pinned key stays valid.
        #[arg(long)]
        import_signing_key: Option<PathBuf>,
    },
    /// Say whether the token of `[hsm]` holds the master key and the
    /// signing key, both sensitive and not extractable (exit 1 if not).
    HsmStatus {
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Print the identity frame's `settings.json` for this configuration
    /// (its public URL, recipients, providers' logins, signing key): what a
    /// stand-alone frame host serves at `/frame/settings.json`.
    FrameSettings {
        #[command(flatten)]
        config: ConfigFile,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Write every row and signed head as JSON lines (to `--out`, or stdout).
    Export {
        #[command(flatten)]
        config: ConfigFile,
        /// The file to create; an existing file is never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Verify an export with the TTP's public signing key only.
    Verify {
        /// The export (JSON lines).
        #[arg(long)]
        export: PathBuf,
        /// The TTP's public signing key (PEM) that the auditor pinned.
        #[arg(long)]
        public_key: PathBuf,
    },
}

/// Reads all of standard input, kept in a wiped buffer.
fn read_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s)
}

/// Prints a verification; success only if it holds.
fn report(v: &chain::Verification) -> ExitCode {
    if let (Some(row), Some(problem)) = (v.first_bad_row, &v.problem) {
        println!("audit log BROKEN at row {row}: {problem}");
        println!(
            "{} rows verified before it; last good hash {}",
            v.rows, v.head
        );
    } else {
        println!(
            "audit log OK: {} rows, {} signed heads, head {}",
            v.rows, v.heads, v.head
        );
    }
    if !v.triggers_present {
        println!("WARNING: the append-only triggers are missing");
    }
    if v.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The public key of `path`, or else of the configured signing key.
fn head_key(config: &TtpConfig, path: Option<&std::path::Path>) -> anyhow::Result<HeadKey> {
    match path {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read public key {}", path.display()))?;
            HeadKey::from_pem(&pem)
        }
        None => {
            let key = signing::SigningKey::load(config)?;
            HeadKey::from_pem(key.public_pem().as_bytes())
        }
    }
}

/// Creates `path` with `content`, readable by the owner only; refuses to
/// overwrite.
fn create_secret(path: &std::path::Path, content: &[u8]) -> anyhow::Result<()> {
    pseudoform_protocol::secret_file::create(path, content)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))
}

fn configured(domain: &Domain) -> anyhow::Result<(TtpConfig, KeyStore)> {
    let config = domain.config.load()?;
    if config
        .recipient(&domain.organization, &domain.scope)
        .is_none()
    {
        return Err(anyhow!(
            "{}/{} is not a configured recipient",
            domain.organization,
            domain.scope
        ));
    }
    let store = KeyStore::open_config(&config)?;
    Ok((config, store))
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config, listen } => {
            let config = config.load()?;
            let address = listen.unwrap_or_else(|| config.listen.clone());
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            pseudoform_ttp::serve(config, listener).await?;
        }
        Command::Rotate { domain } => {
            let (_, mut store) = configured(&domain)?;
            let version = store.rotate(&domain.organization, &domain.scope)?;
            println!(
                "{}/{}: version {version} is current",
                domain.organization, domain.scope
            );
        }
        Command::Retire { domain, version } => {
            let (config, mut store) = configured(&domain)?;
            let window = config.retire_window_seconds();
            store.retire(
                &domain.organization,
                &domain.scope,
                version,
                pseudoform_protocol::unix_now(),
                window,
            )?;
            println!(
                "{}/{}: version {version} is retired",
                domain.organization, domain.scope
            );
        }
        Command::ImportKey { domain, key_file } => {
            let (_, mut store) = configured(&domain)?;
            let text = if key_file.as_os_str() == "-" {
                read_stdin()?
            } else {
                let bytes = Zeroizing::new(
                    pseudoform_protocol::secret_file::read(&key_file)
                        .with_context(|| format!("cannot read {}", key_file.display()))?,
                );
                Zeroizing::new(
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| anyhow!("the key file is not text"))?,
                )
            };
            let bytes = Zeroizing::new(
                encoding::decode_array::<32>(text.trim())
                    .map_err(|_| anyhow!("the key must be 32 bytes as padded base64url"))?,
            );
            let server_key = ServerKey::from_bytes(&bytes)
                .map_err(|_| anyhow!("the key is not a canonical non-zero scalar"))?;
            let version = store.import(&domain.organization, &domain.scope, &server_key)?;
            println!(
                "{}/{}: imported as version {version} (current)",
                domain.organization, domain.scope
            );
        }
        Command::MoveKeys { config } => {
            let config = config.load()?;
            let (mut from, mut to) = KeyStore::move_stores(&config)?;
            let moved = from.move_into(&mut to)?;
            println!(
                "moved {} versions ({} active, each decrypted in PostgreSQL) of {} domains from {}; it holds no key now",
                moved.versions,
                moved.active,
                moved.domains,
                config.database.display()
            );
        }
        Command::ListKeys { domain } => {
            let (_, mut store) = configured(&domain)?;
            let versions = store.versions(&domain.organization, &domain.scope)?;
            let current = versions
                .iter()
                .filter(|v| v.status == KeyStatus::Active)
                .map(|v| v.version)
                .max();
            for v in versions {
                let status = match v.status {
                    KeyStatus::Retired => "retired",
                    KeyStatus::Active if Some(v.version) == current => "current",
                    KeyStatus::Active => "active",
                };
                println!("v{}\t{status}\tcreated {}", v.version, v.created_at);
            }
        }
        Command::VerifyAudit { config, public_key } => {
            let config = config.load()?;
            let key = head_key(&config, public_key.as_deref())?;
            return Ok(report(&chain::verify(&config.database, &key)?));
        }
        Command::Audit { command } => match command {
            AuditCommand::Export { config, out } => {
                let config = config.load()?;
                let key = signing::SigningKey::load(&config)?;
                let jwk = key.public_jwk();
                let (rows, heads) = match out {
                    Some(path) => {
                        let file = std::fs::OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .open(&path)
                            .with_context(|| {
                                format!("cannot create {} (it must not exist yet)", path.display())
                            })?;
                        let mut writer = std::io::BufWriter::new(file);
                        let counts = chain::export(&config.database, &jwk, &mut writer)?;
                        std::io::Write::flush(&mut writer)?;
                        counts
                    }
                    None => chain::export(&config.database, &jwk, &mut std::io::stdout().lock())?,
                };
                eprintln!("exported {rows} rows and {heads} signed heads");
            }
            AuditCommand::Verify { export, public_key } => {
                let pem = std::fs::read(&public_key)
                    .with_context(|| format!("cannot read public key {}", public_key.display()))?;
                let key = HeadKey::from_pem(&pem)?;
                let file = std::fs::File::open(&export)
                    .with_context(|| format!("cannot read {}", export.display()))?;
                let v = chain::verify_export(&mut std::io::BufReader::new(file), &key)?;
                return Ok(report(&v));
            }
        },
        Command::HashToken => {
            let token = read_stdin()?;
            println!("{}", callers::hash_token(token.trim()));
        }
        Command::GenToken => {
            let token = Zeroizing::new(callers::generate_token()?);
            println!("token:        {}", &*token);
            println!("token_sha256: {}", callers::hash_token(&token));
        }
        Command::GenMasterKey => {
            let text = MasterKey::generate()?
                .to_text()
                .ok_or_else(|| anyhow!("a generated master key is in memory"))?;
            println!("{}", &*text);
        }
        Command::HsmInit {
            config,
            import_master_key,
            import_signing_key,
        } => {
            let config = config.load()?;
            let hsm = config
                .hsm
                .as_ref()
                .ok_or_else(|| anyhow!("the configuration has no [hsm]"))?;
            let master = match &import_master_key {
                Some(path) => {
                    let bytes = Zeroizing::new(
                        pseudoform_protocol::secret_file::read(path)
                            .with_context(|| format!("cannot read {}", path.display()))?,
                    );
                    let text = std::str::from_utf8(&bytes)
                        .map_err(|_| anyhow!("the master key file is not text"))?;
                    Some(Zeroizing::new(MasterKey::bytes_of_text(text)?))
                }
                None => None,
            };
            let signing = match &import_signing_key {
                Some(path) => Some(Zeroizing::new(
                    pseudoform_protocol::secret_file::read(path)
                        .with_context(|| format!("cannot read {}", path.display()))?,
                )),
                None => None,
            };
            let (master_made, signing_made) = hsm::init(
                hsm,
                &hsm::InitSource {
                    master_key: master.as_ref(),
                    signing_key_pem: signing.as_ref().map(|pem| pem.as_slice()),
                },
            )?;
            let key = signing::SigningKey::load(&config)?;
            let said = |made: hsm::Made| match made {
                hsm::Made::Generated => "made",
                hsm::Made::Imported => "imported",
                hsm::Made::Kept => "kept",
            };
            println!(
                "token {:?}: master key {:?} ({}), signing key {:?} ({}), kid {}",
                hsm.token_label,
                hsm.master_key_label,
                said(master_made),
                hsm.signing_key_label,
                said(signing_made),
                key.kid()
            );
        }
        Command::HsmStatus { config } => {
            let config = config.load()?;
            let hsm = config
                .hsm
                .as_ref()
                .ok_or_else(|| anyhow!("the configuration has no [hsm]"))?;
            let inventory = hsm::inventory(hsm)?;
            let say = |held: bool| {
                if held {
                    "on the token, sensitive, not extractable"
                } else {
                    "MISSING or extractable"
                }
            };
            println!(
                "master key {:?}: {}",
                hsm.master_key_label,
                say(inventory.master_key)
            );
            println!(
                "signing key {:?}: {}",
                hsm.signing_key_label,
                say(inventory.signing_key)
            );
            if !(inventory.master_key && inventory.signing_key) {
                return Ok(ExitCode::from(1));
            }
            let key = signing::SigningKey::load(&config)?;
            println!("signing key kid {}", key.kid());
        }
        Command::GenSigningKey { out } => {
            let pem = signing::generate_pem()?;
            let key = signing::SigningKey::from_pem(&pem)?;
            create_secret(&out, &pem)?;
            println!("{}: signing key, kid {}", out.display(), key.kid());
        }
        Command::SigningKey { config, public_pem } => {
            let config = config.load()?;
            let key = signing::SigningKey::load(&config)?;
            if public_pem {
                print!("{}", key.public_pem());
            } else {
                println!("{}", key.public_jwk());
            }
        }
        Command::FrameSettings { config } => {
            let config = config.load()?;
            let key = signing::SigningKey::load(&config)?;
            let settings = pseudoform_ttp::frame::Settings::from_config(&config, key.kid());
            println!("{}", serde_json::to_string_pretty(&settings)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pseudoform-ttp: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pseudoform-ttp: {e:#}");
            ExitCode::from(2)
        }
    }
}
