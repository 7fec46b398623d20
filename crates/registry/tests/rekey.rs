//! Re-pseudonymisation from key version 1 to 2 through `POST /v1/rekey`,
//! and the command-line tools (`keygen`, `rekey`, `list`).
//!
//! The TTP here is a small in-test stand-in for `/v1/rekey` that multiplies
//! each element by `k2·k1⁻¹` and records what it saw (to check that it only
//! ever sees blinded elements); the real reference TTP runs the same rekey
//! in `end_to_end.rs`.

#![cfg(test)]

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use curve25519_dalek::scalar::Scalar;
use pseudoform_core::encoding::{decode_array, encode};
use pseudoform_core::oprf::decode_element;
use pseudoform_protocol::ttp::{RekeyRequest, RekeyResponse};
use pseudoform_registry::jwe::KeyRing;
use pseudoform_registry::rekey::{Authority, Rekey};
use pseudoform_registry::store::Store;
use pseudoform_testkit::jose::*;
use pseudoform_testkit::keys::*;
use pseudoform_testkit::registry::*;
use pseudoform_testkit::ttp::{ORG_A, SCOPE_A};
use pseudoform_testkit::vectors::*;
use serde_json::json;

const TOKEN: &str = "registry-rekey-token";

fn scalar(key: &pseudoform_core::oprf::ServerKey) -> Scalar {
    Option::from(Scalar::from_canonical_bytes(*key.to_bytes())).unwrap()
}

/// Starts the stand-in; returns its base URL and the elements it saw.
async fn stand_in_ttp() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = Arc::clone(&seen);
    let app = Router::new().route(
        "/v1/rekey",
        post(move |headers: HeaderMap, Json(req): Json<RekeyRequest>| {
            let seen = Arc::clone(&seen_in);
            async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some(&format!("Bearer {TOKEN}"))
                {
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"code": "auth.invalidToken", "message": "no", "detail": "no"})),
                    ));
                }
                assert_eq!(req.recipient_organization, ORG_A);
                assert_eq!(req.recipient_scope, SCOPE_A);
                assert_eq!((req.from_version, req.to_version), (1, 2));
                let factor = scalar(&server_key_v2()) * scalar(&server_key_v1()).invert();
                let elements = req
                    .blinded_pseudonyms
                    .iter()
                    .map(|e| {
                        seen.lock().unwrap().push(e.clone());
                        let point = decode_element(&decode_array::<32>(e).unwrap()).unwrap();
                        encode((point * factor).compress().as_bytes())
                    })
                    .collect();
                Ok(Json(RekeyResponse { elements }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn rekey(ttp_url: &str, token: &str) -> Rekey {
    Rekey {
        ttp_url: ttp_url.into(),
        authority: Authority::DevelopmentToken(token.into()),
        recipient_organization: ORG_A.into(),
        recipient_scope: SCOPE_A.into(),
        from: 1,
        to: 2,
        chunk: 2,
    }
}

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_pseudoform-registry"))
}

#[tokio::test]
async fn rekey_moves_stored_pseudonyms_to_the_new_key_version() {
    let registry = Registry::start().await;
    let (ttp, seen) = stand_in_ttp().await;
    for code in ["NGGV", "RGG", "MRN"] {
        registry
            .accept(&submission(vec![(code, temporary(code))], &[]))
            .await;
    }
    let store = Store::open(&registry.db()).unwrap();

    // A wrong token: refused, nothing changes.
    let err = rekey(&ttp, "wrong").run(&store).await.unwrap_err();
    assert!(err.to_string().contains("auth.invalidToken"), "{err}");
    assert_eq!(store.pseudonym_count().unwrap(), 3);

    let report = rekey(&ttp, TOKEN).run(&store).await.unwrap();
    assert_eq!((report.sent, report.added), (3, 3));

    // The TTP saw only blinded elements, never a stored pseudonym.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    for code in ["NGGV", "RGG", "MRN"] {
        assert!(!seen.contains(&vector(code).pseudonym));
    }

    // Each record now has the label a fresh v2 submission gives.
    let records = registry.records().await;
    let k2 = server_key_v2();
    for code in ["NGGV", "RGG", "MRN"] {
        let v2 = format!("{code}:v2:{}", expected_pseudonym(&vector(code), &k2));
        let v1 = format!("{code}:v1:{}", vector(code).pseudonym);
        let record = records
            .iter()
            .find(|r| r["pseudonyms"].as_array().unwrap().contains(&json!(v2)))
            .unwrap();
        assert_eq!(record["pseudonyms"], json!([v2, v1]), "v2 current, v1 kept");
    }

    // A submission under version 2 links to the rekeyed record.
    let v = vector("NGGV");
    let r = random_blind();
    let mut claims = eval_claims("NGGV", &subject(&k2, &blind_vector(&v, &r)));
    claims["key_version"] = json!(2);
    let tp = package(&jwe(&claims, oaep256(), recipient_a()), &r);
    let body = registry.accept(&one("NGGV", tp)).await;
    let label = body["pseudonyms"][0].as_str().unwrap().to_owned();
    assert_eq!(store.records_with_label(&label).unwrap().len(), 2);

    // Running again moves nothing; the new v2-only record has no v1 label.
    let report = rekey(&ttp, TOKEN).run(&store).await.unwrap();
    assert_eq!((report.sent, report.added), (0, 0));

    // The same through the command line, and `list`.
    let config_path = registry.dir.path().join("registry.toml");
    std::fs::write(&config_path, toml::to_string(&registry.config).unwrap()).unwrap();
    // The development token from an owner-only file, never from argv.
    let token_file = registry.dir.path().join("rekey-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let (ttp_arg, config_arg) = (ttp.clone(), config_path.clone());
    let rekey_cli = move |token_file: std::path::PathBuf| {
        let (ttp_arg, config_arg) = (ttp_arg.clone(), config_arg.clone());
        tokio::task::spawn_blocking(move || {
            bin()
                .args(["rekey", "--config"])
                .arg(&config_arg)
                .args(["--ttp", &ttp_arg, "--from", "1", "--to", "2"])
                .arg("--development-token-file")
                .arg(&token_file)
                .output()
                .unwrap()
        })
    };
    let out = rekey_cli(token_file.clone()).await.unwrap();
    assert!(
        !out.status.success(),
        "a token file others can read is refused"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("owner-only"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = rekey_cli(token_file).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 pseudonyms sent"));
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["list", "--config"])
            .arg(&config_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&format!("NGGV:v1:{}", vector("NGGV").pseudonym)));
    assert!(listing.contains("4 record(s)"));
}

#[tokio::test]
async fn withdrawn_records_are_not_rekeyed() {
    let registry = Registry::start().await;
    let (ttp, seen) = stand_in_ttp().await;
    let mut ids = Vec::new();
    for code in ["NGGV", "RGG"] {
        let body = registry
            .accept(&submission(vec![(code, temporary(code))], &[]))
            .await;
        ids.push(body["recordId"].as_i64().unwrap());
    }
    // The supplying provider withdrew the first record (as
    // `POST /api/withdrawals` stores it).
    let db = rusqlite::Connection::open(registry.db()).unwrap();
    db.execute(
        "INSERT INTO withdrawn (record_id, at, provider, request_id) VALUES (?1, 0, 'ura:00000001', NULL)",
        [ids[0]],
    )
    .unwrap();
    let store = Store::open(&registry.db()).unwrap();
    let report = rekey(&ttp, TOKEN).run(&store).await.unwrap();
    assert_eq!((report.sent, report.added), (1, 1));
    assert_eq!(seen.lock().unwrap().len(), 1);
    let versions = |id: i64| -> Vec<i64> {
        db.prepare("SELECT key_version FROM pseudonyms WHERE record_id = ?1 ORDER BY key_version")
            .unwrap()
            .query_map([id], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(versions(ids[0]), [1], "the withdrawn record stays at v1");
    assert_eq!(versions(ids[1]), [1, 2]);
}

#[test]
fn keygen_writes_a_key_pair_and_prints_its_kid() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("kid "))
        .unwrap()
        .to_owned();
    let private = std::fs::read(dir.path().join("registry-key.pem")).unwrap();
    let public = std::fs::read(dir.path().join("registry-public.pem")).unwrap();
    assert!(String::from_utf8_lossy(&public).contains("BEGIN PUBLIC KEY"));
    let key = openssl::pkey::PKey::private_key_from_pem(&private).unwrap();
    assert_eq!(key.bits(), 3072);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("registry-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the private key is for the owner only");
    }
    let mut ring = KeyRing::new();
    assert_eq!(ring.add_pem(&private, None).unwrap(), kid);
    // A second keygen into the same directory refuses to overwrite.
    let again = bin()
        .args(["keygen", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
}
