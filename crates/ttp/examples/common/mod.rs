//! What the replica benchmarks share (`replicas.rs`, `mixed.rs`): their
//! command-line options, the TTP binary, and replicas started on one
//! configuration, each with a database of its own (its audit chain, as on
//! machines of their own), behind HAProxy or not.

use pseudoform_testkit::balancer::{free_port, until_all_up, Balancer};
use pseudoform_testkit::postgres::Postgres;
use pseudoform_testkit::process::Process;
use pseudoform_testkit::ttp::{prepare, replica_configs, DEV};

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The TTP binary next to the example's (the same release build).
pub fn ttp_binary() -> String {
    let exe = std::env::current_exe().unwrap();
    let ttp = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("pseudoform-ttp");
    assert!(
        ttp.exists(),
        "build it first: cargo build --release -p pseudoform-ttp"
    );
    ttp.to_str().unwrap().to_owned()
}

/// The `[ledger]` and `[keys]` of two new databases of `pg`: the stores
/// the replicas share on PostgreSQL.
pub fn postgres_stores(pg: &Postgres) -> String {
    format!("{}\n{}", pg.ledger_section().0, pg.keys_section().0)
}

/// Replicas on one configuration, and where to reach them.
pub struct Replicas {
    /// The configuration's folder (the database, the keys).
    pub dir: tempfile::TempDir,
    /// The replicas' processes.
    pub processes: Vec<Process>,
    /// HAProxy in front of them, when asked for.
    pub balancer: Option<Balancer>,
    /// The balancer's URL, or the first replica's.
    pub base: String,
}

/// Starts `replicas` development-mode TTPs on one configuration with
/// `extra` (its public URL the balancer's), each with its own database
/// ([`replica_configs`]), behind HAProxy when `balanced`.
pub async fn start(replicas: usize, balanced: bool, extra: &str) -> Replicas {
    let port = free_port();
    let (dir, path, _) = prepare(&format!(
        "{DEV}\npublic_url = \"http://127.0.0.1:{port}\"\n{extra}"
    ));
    let ttp = ttp_binary();
    let ports: Vec<u16> = (0..replicas).map(|_| free_port()).collect();
    let configs = replica_configs(&path, replicas);
    let mut processes = Vec::new();
    for (config, p) in configs.iter().zip(&ports) {
        let listen = format!("127.0.0.1:{p}");
        processes.push(
            Process::start(
                &ttp,
                &[
                    "serve",
                    "--config",
                    config.to_str().unwrap(),
                    "--listen",
                    &listen,
                ],
            )
            .await,
        );
    }
    let balancer = balanced.then(|| Balancer::start(dir.path(), port, &ports));
    let base = match &balancer {
        Some(b) => {
            until_all_up(&reqwest::Client::new(), &b.base, replicas).await;
            b.base.clone()
        }
        None => processes[0].base.clone(),
    };
    Replicas {
        dir,
        processes,
        balancer,
        base,
    }
}
