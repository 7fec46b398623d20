//! `pseudoform-registry`: the demo registry server and its tools.
//!
//! ```text
//! pseudoform-registry serve  --config registry.toml [--listen 127.0.0.1:8081]
//! pseudoform-registry keygen --out keys/
//! pseudoform-registry rekey  --config registry.toml [--ttp http://127.0.0.1:8080] --client-key keys/rekey-client.pem --from 1 --to 2
//! pseudoform-registry rekey  --config registry.toml --development-token-file token.txt --from 1 --to 2
//! pseudoform-registry list   --config registry.toml [--limit 50] [--json]
//! ```

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pseudoform_protocol::client::EcKey;
use pseudoform_protocol::registry::DataValue;
use pseudoform_registry::http::RecordView;
use pseudoform_registry::jwe::thumbprint_of_key;
use pseudoform_registry::rekey::{Authority, Rekey, DEFAULT_CHUNK};
use pseudoform_registry::store::Store;
use pseudoform_registry::{serve, RegistryConfig};

#[derive(Parser)]
#[command(
    name = "pseudoform-registry",
    version,
    about = "pseudoform registry receiver (demo server and tools)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry API, the registry page and the demo form.
    Serve {
        /// The registry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Listen address; default the configuration's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Generate the registry's RSA-3072 key pair; prints its kid.
    Keygen {
        /// Directory for registry-key.pem (private) and registry-public.pem.
        #[arg(long)]
        out: PathBuf,
    },
    /// Move stored pseudonyms from one TTP key version to another.
    Rekey {
        /// The registry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Base URL of the TTP; default the configuration's `ttp_url`.
        #[arg(long)]
        ttp: Option<String>,
        /// The registry's P-256 client key at the TTP (PKCS#8 PEM, owner-only
        /// file): `private_key_jwt` + DPoP as the TTP's recipient caller.
        #[arg(
            long,
            conflicts_with = "development_token_file",
            required_unless_present = "development_token_file"
        )]
        client_key: Option<PathBuf>,
        /// The registry's client id at the TTP; default its organisation.
        #[arg(long)]
        client_id: Option<String>,
        /// The TTP's `issuer`, when it is not the TTP's URL.
        #[arg(long)]
        issuer: Option<String>,
        /// DEVELOPMENT ONLY (a TTP with static tokens): an owner-only file
        /// holding the registry's static bearer token.
        #[arg(long)]
        development_token_file: Option<PathBuf>,
        /// Key version the stored pseudonyms were made under.
        #[arg(long)]
        from: u32,
        /// Key version to move them to.
        #[arg(long)]
        to: u32,
        /// Pseudonyms per TTP request.
        #[arg(long, default_value_t = DEFAULT_CHUNK)]
        chunk: usize,
    },
    /// Print the stored records (newest first).
    List {
        /// The registry configuration (TOML).
        #[arg(long)]
        config: PathBuf,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pseudoform-registry: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The configuration at `path` and its store.
fn configured(path: &Path) -> anyhow::Result<(RegistryConfig, Store)> {
    let config = RegistryConfig::from_toml_file(path)?;
    let store = Store::open(&config.database).context("cannot open the database")?;
    Ok((config, store))
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve { config, listen } => {
            let config = RegistryConfig::from_toml_file(&config)?;
            let addr = listen.unwrap_or(config.listen);
            runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?;
                tracing::info!(address = %listener.local_addr()?, "registry listening");
                tokio::select! {
                    result = serve(config, listener) => result,
                    _ = tokio::signal::ctrl_c() => {
                        tracing::info!("stopping");
                        Ok(())
                    }
                }
            })
        }
        Command::Keygen { out } => keygen(&out),
        Command::Rekey {
            config,
            ttp,
            client_key,
            client_id,
            issuer,
            development_token_file,
            from,
            to,
            chunk,
        } => {
            let (config, store) = configured(&config)?;
            let ttp_url = ttp.unwrap_or_else(|| config.ttp_url.clone());
            let authority = match (client_key, development_token_file) {
                (Some(key), None) => {
                    let key = EcKey::from_file(&key).context("the client key cannot be used")?;
                    let id = client_id.unwrap_or_else(|| config.recipient_organization.clone());
                    Authority::client(&ttp_url, &id, key, issuer.as_deref())?
                }
                (None, Some(file)) => {
                    let token = pseudoform_protocol::secret_file::read(&file)
                        .with_context(|| format!("cannot read {}", file.display()))?;
                    let token = String::from_utf8(token)
                        .context("the token file is not text")?
                        .trim()
                        .to_owned();
                    Authority::DevelopmentToken(token)
                }
                _ => anyhow::bail!("give exactly one of --client-key and --development-token-file"),
            };
            let rekey = Rekey {
                ttp_url,
                authority,
                recipient_organization: config.recipient_organization.clone(),
                recipient_scope: config.recipient_scope.clone(),
                from,
                to,
                chunk,
            };
            let report = runtime()?.block_on(rekey.run(&store))?;
            println!(
                "rekey v{from} -> v{to}: {} pseudonyms sent, {} new labels stored",
                report.sent, report.added
            );
            Ok(())
        }
        Command::List {
            config,
            limit,
            json,
        } => {
            let (_, store) = configured(&config)?;
            let records: Vec<RecordView> = store
                .records(limit)
                .context("cannot read the records")?
                .into_iter()
                .map(RecordView::from)
                .collect();
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &records)?;
                writeln!(out)?;
            } else {
                for record in &records {
                    writeln!(
                        out,
                        "record {}  received {}  {}",
                        record.id, record.received_at, record.status
                    )?;
                    if let Some(reversible) = &record.reversible {
                        writeln!(out, "  R (kid {})", reversible.kid)?;
                    }
                    if let Some(validation) = &record.validation {
                        writeln!(out, "  validation: {validation}")?;
                    }
                    for label in &record.pseudonyms {
                        writeln!(out, "  {label}")?;
                    }
                    for (key, value) in &record.data {
                        match value {
                            DataValue::Text(text) => writeln!(out, "  {key} = {text:?}")?,
                            DataValue::List(items) => writeln!(out, "  {key} = {items:?}")?,
                        }
                    }
                }
                writeln!(out, "{} record(s)", records.len())?;
            }
            Ok(())
        }
    }
}

/// Writes `registry-key.pem` (PKCS#8, mode 0600) and `registry-public.pem`
/// (SPKI) into `out` and prints the kid.
fn keygen(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let private_path = out.join("registry-key.pem");
    let public_path = out.join("registry-public.pem");
    for path in [&private_path, &public_path] {
        anyhow::ensure!(
            !path.exists(),
            "{} exists; refusing to overwrite a key",
            path.display()
        );
    }
    let rsa = openssl::rsa::Rsa::generate(3072).context("RSA key generation failed")?;
    let key = openssl::pkey::PKey::from_rsa(rsa).context("RSA key generation failed")?;
    let private_pem = zeroize::Zeroizing::new(key.private_key_to_pem_pkcs8()?);
    let public_pem = key.public_key_to_pem()?;
    write_private(&private_path, &private_pem)?;
    std::fs::write(&public_path, &public_pem)
        .with_context(|| format!("cannot write {}", public_path.display()))?;
    let kid = thumbprint_of_key(&key)?;
    println!("wrote {}", private_path.display());
    println!("wrote {}", public_path.display());
    println!("kid {kid}");
    Ok(())
}

fn write_private(path: &Path, pem: &[u8]) -> anyhow::Result<()> {
    pseudoform_protocol::secret_file::create(path, pem)
        .with_context(|| format!("cannot create {}", path.display()))
}
