//! A real PostgreSQL server (Debian's `postgresql`, which `./build.sh
//! setup` installs) of one test, in a temporary folder on a free loopback
//! port, with password (SCRAM) authentication: the shared ledger of the
//! TTP replicas ([`pseudoform_ttp::ledger::PostgresLedger`]).
//!
//! The server runs as the test's own user; when that is root (a CI
//! container), as Debian's `postgres` user through `setpriv`, because
//! PostgreSQL refuses to run as root. It stops when the [`Postgres`] is
//! dropped. Its methods may be called from async tests: the sync client
//! runs on a thread of its own there ([`off_runtime`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::balancer::free_port;

/// The superuser of the test server.
pub const USER: &str = "pseudoform";
/// Its password.
pub const PASSWORD: &str = "ledger-test-password-5120";

/// One PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
    databases: std::sync::atomic::AtomicU32,
}

/// The folder of the newest installed server's binaries.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL is missing: ./build.sh setup installs it (Debian package postgresql)")
}

/// `id` of the current user, or of `user`.
fn id(flag: &str, user: Option<&str>) -> u32 {
    let out = Command::new("id").arg(flag).args(user).output().unwrap();
    assert!(out.status.success(), "id {flag} {user:?}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A command run as a user PostgreSQL accepts.
fn as_server_user(program: &Path) -> Command {
    if id("-u", None) != 0 {
        return Command::new(program);
    }
    let (uid, gid) = (id("-u", Some("postgres")), id("-g", Some("postgres")));
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(program);
    c
}

fn own(path: &Path) {
    if id("-u", None) == 0 {
        let (uid, gid) = (id("-u", Some("postgres")), id("-g", Some("postgres")));
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Runs `f` on a thread of its own: `postgres`'s sync client starts a
/// runtime, which tokio forbids on a thread that drives tasks.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

impl Postgres {
    /// Starts a server for tests: durable writes off (`fsync = off`), so
    /// that a test's commits cost no disk flush.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// Starts a server that flushes every commit, as one in production
    /// does (for the benchmarks).
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("pseudoform-pg")
            .tempdir()
            .unwrap();
        own(dir.path());
        let data = dir.path().join("data");
        let pwfile = dir.path().join("password");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        own(&pwfile);
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {out:?}");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        own(&dir.path().join("server.log"));
        let fsync = if durable { "on" } else { "off" };
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .args(["-c", &format!("fsync={fsync}"), "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut pg = Postgres {
            dir,
            port,
            child,
            databases: std::sync::atomic::AtomicU32::new(0),
        };
        pg.until_ready();
        pg
    }

    fn until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if off_runtime(|| self.client("postgres").is_ok()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("PostgreSQL exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection string of `database`, without the password (as
    /// `[ledger] url` wants it).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{USER}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// The first column of the one row `sql` answers in `database`, as i64.
    pub fn query_i64(&self, database: &str, sql: &str) -> i64 {
        off_runtime(|| {
            self.client(database)
                .unwrap()
                .query_one(sql, &[])
                .unwrap()
                .get(0)
        })
    }

    /// A client of `database` as the superuser (not for an async test's
    /// thread: see [`Postgres::query_i64`]).
    pub fn client(&self, database: &str) -> Result<postgres::Client, postgres::Error> {
        client_at(self.port, database)
    }

    /// Makes a new empty database and returns its name.
    pub fn create_database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("pseudoform_{n}");
        off_runtime(|| {
            self.client("postgres")
                .unwrap()
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap()
        });
        name
    }

    /// A `[ledger]` table (TOML) for a TTP configuration, of a new database
    /// of this server ([`Postgres::ledger_config`]), and that database's name.
    pub fn ledger_section(&self) -> (String, String) {
        let config = self.ledger_config();
        let url = config.url.unwrap();
        let database = database_of(&url);
        let section = format!(
            "[ledger]\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            config.password_file.unwrap().display()
        );
        (section, database)
    }

    /// A `[ledger]` of a new database of this server; the password is in a
    /// file next to the server's data.
    pub fn ledger_config(&self) -> pseudoform_ttp::ledger::LedgerConfig {
        let (url, password_file) = self.database_with_password();
        pseudoform_ttp::ledger::LedgerConfig {
            url: Some(url),
            password_file: Some(password_file),
            ..Default::default()
        }
    }

    /// A `[keys]` of a new database of this server; the password is in a
    /// file next to the server's data.
    pub fn keys_config(&self) -> pseudoform_ttp::keys::KeysConfig {
        let (url, password_file) = self.database_with_password();
        pseudoform_ttp::keys::KeysConfig {
            url: Some(url),
            password_file: Some(password_file),
            ..Default::default()
        }
    }

    /// A `[keys]` table (TOML) for a TTP configuration, of a new database
    /// of this server, and that database's name.
    pub fn keys_section(&self) -> (String, String) {
        let config = self.keys_config();
        let url = config.url.unwrap();
        let section = format!(
            "[keys]\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            config.password_file.unwrap().display()
        );
        (section, database_of(&url))
    }

    /// The URL of a new database and a file with its password.
    fn database_with_password(&self) -> (String, PathBuf) {
        let database = self.create_database();
        let password_file = self.dir.path().join(format!("{database}.password"));
        pseudoform_protocol::secret_file::create(&password_file, PASSWORD.as_bytes()).unwrap();
        (self.url(&database), password_file)
    }

    /// The server's data folder (for tests that read its files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT) ends the backends too; a kill after 10 s.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment variable with the port of a PostgreSQL server that serves a
/// whole test run (`with-postgres`): while it is set, every TTP that
/// [`crate::ttp::prepare`] configures keeps its ledger and key versions in
/// two new databases of it, unless the test names a `[ledger]` or `[keys]`
/// of its own or is about the SQLite stores ([`SQLITE_STORES`]). `./build.sh test` runs the TTP's tests so a second time.
pub const RUN_PORT_ENV: &str = "PSEUDOFORM_TEST_POSTGRES_PORT";

/// A line (a TOML comment) for a TTP configuration of a test about the
/// embedded SQLite stores: such a TTP keeps them even in a run with a
/// server of [`RUN_PORT_ENV`].
pub const SQLITE_STORES: &str = "# this test is about the embedded SQLite stores\n";

static RUN_DATABASES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// The `[ledger]` and `[keys]` tables (TOML) of two new databases of the
/// run's server ([`RUN_PORT_ENV`]), the password in a file in `dir`; none
/// when no such server is set.
pub fn run_sections(dir: &Path) -> Option<String> {
    let port: u16 = std::env::var(RUN_PORT_ENV).ok()?.parse().ok()?;
    let password_file = dir.join("postgres.password");
    if !password_file.exists() {
        pseudoform_protocol::secret_file::create(&password_file, PASSWORD.as_bytes()).unwrap();
    }
    let mut sections = String::new();
    for section in ["ledger", "keys"] {
        let n = RUN_DATABASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("run_{}_{n}_{section}", std::process::id());
        off_runtime(|| {
            client_at(port, "postgres")
                .unwrap()
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap()
        });
        sections.push_str(&format!(
            "\n[{section}]\nurl = \"postgresql://{USER}@127.0.0.1:{port}/{name}?sslmode=disable\"\npassword_file = \"{}\"\n",
            password_file.display()
        ));
    }
    Some(sections)
}

/// A client of `database` on the test server at `port`, as its superuser.
fn client_at(port: u16, database: &str) -> Result<postgres::Client, postgres::Error> {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user(USER)
        .password(PASSWORD)
        .dbname(database)
        .connect(postgres::NoTls)
}

/// The database name of a URL of [`Postgres::url`].
pub fn database_of(url: &str) -> String {
    url.rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap()
        .to_owned()
}
