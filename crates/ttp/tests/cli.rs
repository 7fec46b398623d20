//! The `pseudoform-ttp` binary: secrets, key management (rotate, retire,
//! import-key, list-keys), the master key from the environment, and
//! `serve` with a graceful stop on SIGTERM.

#![cfg(test)]

use std::process::{Command, Output, Stdio};

use pseudoform_core::encoding;
use pseudoform_testkit::keys::*;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use pseudoform_ttp::keys::KeyStore;

/// Runs the binary with `input` on standard input.
fn ttp_with_input(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args(args)
        .env_remove(pseudoform_ttp::keys::MASTER_KEY_ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn ttp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args(args)
        .env_remove(pseudoform_ttp::keys::MASTER_KEY_ENV)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn secrets() {
    // Secrets come from standard input or files, never from argv.
    assert!(!ttp(&["hash-token", "test"]).status.success());
    let o = ttp_with_input(&["hash-token"], b"test\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o).trim(),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    let o = ttp(&["gen-master-key"]);
    let key = stdout(&o);
    assert_eq!(encoding::decode_array::<32>(key.trim()).map(|_| ()), Ok(()));
    assert_ne!(stdout(&ttp(&["gen-master-key"])), key);
    let o = ttp(&["gen-token"]);
    let text = stdout(&o);
    let token = text
        .lines()
        .next()
        .unwrap()
        .strip_prefix("token:")
        .unwrap()
        .trim();
    let hash = text
        .lines()
        .nth(1)
        .unwrap()
        .strip_prefix("token_sha256:")
        .unwrap()
        .trim();
    assert_eq!(pseudoform_ttp::callers::hash_token(token), hash);
}

#[test]
fn key_management_commands() {
    // A retire window of 2 s: JWEs live 1 s, requests at most 1 s, no skew.
    let (_dir, path, config) = prepare(
        "jwe_lifetime_seconds = 1\nregistry_clock_skew_seconds = 0\n[limits]\nrequest_timeout_seconds = 1\n",
    );
    let path = path.to_str().unwrap();
    let domain = [
        "--config",
        path,
        "--organization",
        ORG_A,
        "--scope",
        SCOPE_A,
    ];
    let run = |cmd: &str, extra: &[&str]| {
        let mut args = vec![cmd];
        args.extend_from_slice(&domain);
        args.extend_from_slice(extra);
        ttp(&args)
    };
    let key = encoding::encode(server_key_v1().to_bytes().as_slice());
    assert!(
        !run("import-key", &["--key", &key]).status.success(),
        "no key in argv"
    );
    let mut args = vec!["import-key"];
    args.extend_from_slice(&domain);
    args.extend_from_slice(&["--key-file", "-"]);
    let o = ttp_with_input(&args, format!("{key}\n").as_bytes());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("version 1"));
    let o = run("rotate", &[]);
    assert!(stdout(&o).contains("version 2 is current"));
    let o = run("rotate", &[]);
    assert!(stdout(&o).contains("version 3 is current"));
    let o = run("retire", &["--version", "3"]);
    assert!(!o.status.success(), "the current version cannot be retired");
    // Right after a rotation the old version may still be current in a
    // request in flight, and in JWEs on their way: refused, saying why.
    let o = run("retire", &["--version", "2"]);
    assert!(!o.status.success(), "retired at once after the rotation");
    assert!(String::from_utf8_lossy(&o.stderr).contains("re-key the registries"));
    // Once the window has passed it is retired (polled, bounded).
    let started = std::time::Instant::now();
    loop {
        let o = run("retire", &["--version", "1"]);
        if o.status.success() {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let o = run("list-keys", &[]);
    let listing = stdout(&o);
    assert!(
        listing.contains("v1\tretired")
            && listing.contains("v2\tactive")
            && listing.contains("v3\tcurrent"),
        "{listing}"
    );
    // Unknown domains and bad keys are refused.
    let o = ttp(&[
        "rotate",
        "--config",
        path,
        "--organization",
        ORG_A,
        "--scope",
        "nope",
    ]);
    assert!(!o.status.success());
    let o = ttp_with_input(&args, b"AAAA\n");
    assert!(!o.status.success());
    // A key file that others can read is refused.
    let loose = std::path::Path::new(path).with_file_name("loose.key");
    std::fs::write(&loose, format!("{key}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let o = run("import-key", &["--key-file", loose.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "a group/other-readable key file is refused"
    );
    let mut store = KeyStore::open_config(&config).unwrap();
    assert_eq!(
        store.load(ORG_A, SCOPE_A).unwrap().version_numbers(),
        vec![3, 2]
    );
    // The key material is not in the database in the clear (with the keys
    // in PostgreSQL the database holds none at all; their seal there is
    // tests/keys.rs's).
    drop(store);
    let bytes = std::fs::read(&config.database).unwrap_or_default();
    assert_eq!(bytes.is_empty(), config.keys.url.is_some());
    let raw = server_key_v1().to_bytes();
    assert!(!bytes.windows(32).any(|w| w == raw.as_slice()));
    assert!(!bytes.windows(key.len()).any(|w| w == key.as_bytes()));
}

#[test]
fn master_key_from_environment_and_wrong_key() {
    let (dir, path, _) = prepare("");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("master_key_file = \"master.key\"\n", "");
    let env_path = dir.path().join("env.toml");
    std::fs::write(&env_path, text).unwrap();
    let master = std::fs::read_to_string(dir.path().join("master.key")).unwrap();
    let args = [
        "rotate",
        "--config",
        env_path.to_str().unwrap(),
        "--organization",
        ORG_A,
        "--scope",
        SCOPE_A,
    ];
    let with_env = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
            .args(args)
            .env(pseudoform_ttp::keys::MASTER_KEY_ENV, value)
            .output()
            .unwrap()
    };
    assert!(with_env(master.trim()).status.success());
    // Without any master key, and with both, it refuses.
    assert!(!ttp(&args).status.success());
    let both = Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args([
            "rotate",
            "--config",
            path.to_str().unwrap(),
            "--organization",
            ORG_A,
            "--scope",
            SCOPE_A,
        ])
        .env(pseudoform_ttp::keys::MASTER_KEY_ENV, master.trim())
        .output()
        .unwrap();
    assert!(!both.status.success());
    // A wrong master key cannot start a server on that database.
    let wrong = encoding::encode(&[9u8; 32]);
    let o = Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args([
            "serve",
            "--config",
            env_path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env(pseudoform_ttp::keys::MASTER_KEY_ENV, &wrong)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot decrypt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_and_stops_on_sigterm() {
    // Development mode: a static token, warned about at start-up.
    let (_dir, path, config) = prepare(DEV);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args([
            "serve",
            "--config",
            path.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove(pseudoform_ttp::keys::MASTER_KEY_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            healthy = r.status().is_success();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(healthy);
    let element = encoding::encode(&blinded(b"cli", "cli").1);
    let r = client
        .post(format!("http://127.0.0.1:{port}/oprf/eval"))
        .bearer_auth(TOKEN_FORM)
        .json(
            &serde_json::json!({"encryptedPersonalId": element, "recipientOrganization": ORG_A,
            "recipientScope": SCOPE_A, "pseudonymType": "GG"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (status, err)
    })
    .await
    .unwrap();
    assert!(output.0.success(), "graceful exit: {}", output.1);
    // Logs: method, path, status, latency — never the body or the token.
    assert!(output.1.contains("/oprf/eval"), "{}", output.1);
    assert!(
        !output.1.contains(&element) && !output.1.contains(TOKEN_FORM),
        "{}",
        output.1
    );
    assert!(
        output.1.contains("development_static_tokens"),
        "{}",
        output.1
    );
    let key = pseudoform_ttp::audit::chain::HeadKey::from_pem(
        pseudoform_testkit::keys::ttp_signing()
            .public_pem
            .as_bytes(),
    )
    .unwrap();
    let v = pseudoform_ttp::audit::chain::verify(&config.database, &key).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.rows, 1);
}

#[test]
fn signing_key_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signing.pem");
    let o = ttp(&["gen-signing-key", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = pseudoform_ttp::signing::SigningKey::from_file(&out).unwrap();
    assert!(stdout(&o).contains(key.kid()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner only");
    }
    // It never overwrites a key.
    let before = std::fs::read(&out).unwrap();
    assert!(!ttp(&["gen-signing-key", "--out", out.to_str().unwrap()])
        .status
        .success());
    assert_eq!(std::fs::read(&out).unwrap(), before);

    // The public half of the configured key.
    let (_config_dir, path, _) = prepare("");
    let SigningKey {
        public_pem: public,
        kid,
        ..
    } = ttp_signing();
    let o = ttp(&[
        "signing-key",
        "--config",
        path.to_str().unwrap(),
        "--public-pem",
    ]);
    assert!(o.status.success());
    assert_eq!(&stdout(&o), public);
    assert!(!stdout(&o).contains("PRIVATE"));
    let o = ttp(&["signing-key", "--config", path.to_str().unwrap()]);
    assert!(o.status.success());
    let jwk: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(jwk["kid"], kid.as_str());
    assert!(jwk.get("d").is_none());
}

#[test]
fn frame_settings_are_printed_for_a_stand_alone_frame_host() {
    let (_config_dir, path, config) = prepare("public_url = \"https://ttp.example.nl\"");
    let o = ttp(&["frame-settings", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let printed: pseudoform_ttp::frame::Settings = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        printed,
        pseudoform_ttp::frame::Settings::from_config(&config, &ttp_signing().kid)
    );
    assert_eq!(printed.ttp, "https://ttp.example.nl");
    assert_eq!(printed.recipients.len(), 2);
    assert_eq!(printed.providers.len(), 1);
    assert!(!stdout(&o).contains("PRIVATE"));
}
