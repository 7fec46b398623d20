//! The TTP's master key and signing key on a PKCS#11 token: a real
//! SoftHSM2 token (Debian's `softhsm2`, which `./build.sh setup` installs)
//! in a temporary token folder, driven through `cryptoki`.
//!
//! - Keys made on the token by `hsm-init` are sensitive and not
//!   extractable; a TTP configured with `[hsm]` evaluates the method
//!   vectors, signs every nested JWS with the token's key (published at
//!   `GET /v1/signing-keys`), and its stored key versions open with the
//!   token's master key only, also after a restart.
//! - A TTP that ran on a key file and a PEM moves to the token with
//!   `hsm-init --import-master-key --import-signing-key`: the same
//!   pseudonyms and the same `kid` after, with both files deleted.
//! - A wrong PIN, an unknown token, a taken label and a configuration that
//!   names both a key file and `[hsm]` are refused with a clear message that
//!   never holds the PIN.
//!
//! Every test of this file shares one token ([`pseudoform_testkit::softhsm`])
//! and keeps to its own key labels.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::Path;
use std::process::Command;

use pseudoform_core::encoding;
use pseudoform_core::oprf::{unblind, Blind};
use pseudoform_testkit::keys::*;
use pseudoform_testkit::softhsm::{self, config_for as hsm_config, on_token, PIN, TOKEN};
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use pseudoform_ttp::hsm::{self, InitSource};
use pseudoform_ttp::keys::{KeyStore, MasterKey};
use pseudoform_ttp::signing::SigningKey;
use pseudoform_ttp::TtpConfig;
use serde_json::{json, Value};

/// Opens a JWE of recipient A and verifies its nested JWS with `signer`
/// (the public PEM and kid of the TTP's signing key): the claims.
fn open_with(token: &str, public_pem: &str, kid: &str) -> Value {
    let decrypter = josekit::jwe::RSA_OAEP_256
        .decrypter_from_pem(recipient_a().private_pem.as_bytes())
        .unwrap();
    let (payload, header) = josekit::jwe::deserialize_compact(token, &decrypter).unwrap();
    assert_eq!(header.content_type(), Some("JWT"));
    let verifier = josekit::jws::ES256
        .verifier_from_pem(public_pem.as_bytes())
        .unwrap();
    let (claims, jws) = josekit::jws::deserialize_compact(&payload, &verifier).unwrap();
    assert_eq!(jws.algorithm(), Some("ES256"));
    assert_eq!(jws.key_id(), Some(kid));
    serde_json::from_slice(&claims).unwrap()
}

/// The first method vector of recipient A of type `ty`.
fn vector_of(ty: &str) -> Value {
    vectors()["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["recipientOrganization"] == ORG_A && v["type"] == ty)
        .unwrap()
        .clone()
}

/// Evaluates `vector` at `/oprf/eval` as provider A; the JWE.
async fn evaluate(ttp: &TestTtp, vector: &Value) -> String {
    let provider = ttp.backend(Client::ProviderA).await;
    let request = json!({
        "encryptedPersonalId": vector["blindedInput"],
        "recipientOrganization": ORG_A,
        "recipientScope": SCOPE_A,
        "pseudonymType": vector["type"],
    });
    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &request).await;
    assert_eq!(status, 200, "{body}");
    body["jwe"].as_str().unwrap().to_owned()
}

/// The pseudonym a registry gets from `claims` of `vector`: the subject
/// de-blinded with the vector's blind.
fn pseudonym(claims: &Value, vector: &Value) -> String {
    let r = Blind::from_bytes(
        &encoding::decode_array::<32>(vector["blind"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    encoding::encode(&unblind(&r, &subject_element(&claims["subject"])).unwrap())
}

/// The test master key of the key-file TTPs (testkit's `master.key`).
fn file_master_key() -> MasterKey {
    MasterKey::from_text(&encoding::encode(&[0x42; 32])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttp_on_the_token_evaluates_signs_and_stores_with_keys_it_cannot_read_out() {
    softhsm::conf();
    let mut made = None;
    let mut ttp = TestTtp::start_edited(true, "", |dir, text| {
        let hsm = hsm_config(dir, "serve");
        hsm::init(&hsm, &InitSource::default()).unwrap();
        made = Some(hsm.clone());
        on_token(&text, &hsm)
    })
    .await;
    let hsm = made.unwrap();
    assert!(ttp.config.signing_key.is_none() && ttp.config.master_key_file.is_none());
    assert_eq!(
        hsm::inventory(&hsm).unwrap(),
        hsm::Inventory {
            master_key: true,
            signing_key: true
        },
        "both keys on the token, sensitive and not extractable"
    );

    // The published signing key is the token's, not the test's PEM.
    let key = SigningKey::load(&ttp.config).unwrap();
    assert_ne!(key.kid(), ttp_signing().kid);
    let (status, _, jwks) = ttp.get("/v1/signing-keys", None).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], key.kid());

    // The method vectors evaluate (NGGV; the MRN is bound to the provider),
    // under a JWS that verifies with the token's public key.
    let vector = vector_of("NGGV");
    let jwe = evaluate(&ttp, &vector).await;
    let claims = open_with(&jwe, key.public_pem(), key.kid());
    assert_eq!(claims["key_version"], 1);
    assert_eq!(
        claims["subject"],
        format!(
            "pseudonym:eval:{}",
            vector["evaluatedElement"].as_str().unwrap()
        )
    );
    assert_eq!(
        pseudonym(&claims, &vector),
        vector["pseudonym"].as_str().unwrap()
    );
    // The test's own PEM does not verify it: the token signed.
    let wrong = josekit::jws::ES256
        .verifier_from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    let decrypter = josekit::jwe::RSA_OAEP_256
        .decrypter_from_pem(recipient_a().private_pem.as_bytes())
        .unwrap();
    let (inner, _) = josekit::jwe::deserialize_compact(&jwe, &decrypter).unwrap();
    assert!(josekit::jws::deserialize_compact(&inner, &wrong).is_err());

    // The stored key versions open with the token's master key, and not
    // with the key file's (which is still in the folder, unused).
    let mut store = KeyStore::open_config(&ttp.config).unwrap();
    assert_eq!(store.load(ORG_A, SCOPE_A).unwrap().current().unwrap().0, 1);
    let mut by_file = KeyStore::open_store(&ttp.config, file_master_key()).unwrap();
    let refused = by_file.load(ORG_A, SCOPE_A).unwrap_err();
    assert!(
        format!("{refused:#}").contains("wrong master key"),
        "{refused:#}"
    );

    // A rotation made through the token, then a restart: the new version
    // is current and the old still evaluates, both opened by the token.
    let mut store = KeyStore::open_config(&ttp.config).unwrap();
    assert_eq!(store.rotate(ORG_A, SCOPE_A).unwrap(), 2);
    ttp.restart().await;
    let jwe = evaluate(&ttp, &vector).await;
    let claims = open_with(&jwe, key.public_pem(), key.kid());
    assert_eq!(claims["key_version"], 2);
    let old = claims["extra_versions"]["1"].as_str().unwrap();
    assert_eq!(old, vector["evaluatedElement"].as_str().unwrap());
    assert_ne!(
        claims["subject"],
        format!("pseudonym:eval:{old}"),
        "version 2 is another key"
    );

    // The audit log's heads are signed by the token's key.
    ttp.stop().await;
    let head_key =
        pseudoform_ttp::audit::chain::HeadKey::from_pem(key.public_pem().as_bytes()).unwrap();
    let verification = pseudoform_ttp::audit::chain::verify(&ttp.database(), &head_key).unwrap();
    assert!(verification.ok(), "{verification:?}");
    assert!(verification.heads >= 1, "{verification:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttp_on_key_files_moves_to_the_token_with_the_same_pseudonyms_and_kid() {
    softhsm::conf();
    let mut ttp = TestTtp::start(true).await;
    let vector = vector_of("RGG");
    let before = open_jwe(&evaluate(&ttp, &vector).await, true).1;
    ttp.stop().await;

    // The operator imports both keys, switches the configuration to the
    // token and deletes the files.
    let dir = ttp.dir.path().to_owned();
    let hsm = hsm_config(&dir, "migrate");
    let (master, signing) = (dir.join("master.key"), dir.join("signing.pem"));
    let import = [
        "hsm-init",
        "--import-master-key",
        master.to_str().unwrap(),
        "--import-signing-key",
        signing.to_str().unwrap(),
    ];
    let (code, _, err) = ttp_cli(&import, &ttp.config_path);
    // hsm-init needs [hsm] in the configuration: refused on the old one.
    assert_ne!(code, 0);
    assert!(err.contains("has no [hsm]"), "{err}");
    let text = std::fs::read_to_string(&ttp.config_path).unwrap();
    std::fs::write(&ttp.config_path, on_token(&text, &hsm)).unwrap();
    let (code, said, err) = ttp_cli(&import, &ttp.config_path);
    assert_eq!(code, 0, "{err}");
    assert!(
        said.contains("(imported)") && said.contains(&ttp_signing().kid),
        "{said}"
    );
    std::fs::remove_file(dir.join("master.key")).unwrap();
    std::fs::remove_file(dir.join("signing.pem")).unwrap();

    ttp.config = TtpConfig::from_toml_file(&ttp.config_path).unwrap();
    ttp.restart().await;
    let after = open_jwe(&evaluate(&ttp, &vector).await, true).1;
    // open_jwe verified the test's kid: the registries' pin stays valid.
    assert_eq!(after["subject"], before["subject"]);
    assert_eq!(
        pseudonym(&after, &vector),
        vector["pseudonym"].as_str().unwrap()
    );
    assert_eq!(pseudonym(&after, &vector), pseudonym(&before, &vector));
    let (code, said, err) = ttp_cli(&["hsm-status"], &ttp.config_path);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        said.matches("sensitive, not extractable").count(),
        2,
        "{said}"
    );
    ttp.stop().await;
}

/// Runs `pseudoform-ttp` with `args` and the test's SoftHSM2: exit code,
/// standard output and standard error.
fn ttp_cli(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("SOFTHSM2_CONF", softhsm::conf())
        .env_remove(hsm::PIN_ENV)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn refusals_are_clear_and_never_show_the_pin() {
    softhsm::conf();
    let (dir, path, _) = prepare("");
    let hsm = hsm_config(dir.path(), "refusals");
    let text = std::fs::read_to_string(&path).unwrap();
    let on_token_text = on_token(&text, &hsm);
    std::fs::write(&path, &on_token_text).unwrap();

    // Nothing on the token yet: the status says so, a server does not start.
    let (code, out, _) = ttp_cli(&["hsm-status"], &path);
    assert_eq!(code, 1);
    assert_eq!(out.matches("MISSING").count(), 2, "{out}");
    let (code, _, err) = ttp_cli(&["serve", "--listen", "127.0.0.1:0"], &path);
    assert_eq!(code, 2);
    assert!(
        err.contains("holds no private signing key labelled \"refusals-signing\""),
        "{err}"
    );

    // A signing key to import that is no PEM key is refused before
    // anything is made: the master key is not left behind alone.
    let not_pem = dir.path().join("not-a-key.pem");
    std::fs::write(&not_pem, "-----BEGIN NOTHING-----\n").unwrap();
    std::fs::set_permissions(
        &not_pem,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let (code, _, err) = ttp_cli(
        &[
            "hsm-init",
            "--import-signing-key",
            not_pem.to_str().unwrap(),
        ],
        &path,
    );
    assert_eq!(code, 2);
    assert!(err.contains("is not a PEM private key"), "{err}");
    let (code, out, _) = ttp_cli(&["hsm-status"], &path);
    assert_eq!(code, 1);
    assert_eq!(out.matches("MISSING").count(), 2, "{out}");

    // Made once; a second hsm-init changes nothing and says so.
    let (code, out, err) = ttp_cli(&["hsm-init"], &path);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("(made)"), "{out}");
    let kid = out.rsplit("kid ").next().unwrap().trim().to_owned();
    let (code, _, err) = ttp_cli(&["hsm-init"], &path);
    assert_eq!(code, 2);
    assert!(err.contains("already holds a key labelled") && err.contains("nothing was changed"));
    let (code, out, _) = ttp_cli(&["signing-key"], &path);
    assert_eq!(code, 0);
    let jwk: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(jwk["kid"], kid.as_str());

    // The signing key's rotation: a new label gets a new key pair next to
    // the kept master key; a master key to import over the kept one is
    // refused.
    let rotated = on_token_text.replace("refusals-signing", "refusals-signing-2");
    std::fs::write(&path, &rotated).unwrap();
    let (code, out, err) = ttp_cli(&["hsm-init"], &path);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("master key \"refusals-master\" (kept)"),
        "{out}"
    );
    assert!(
        out.contains("signing key \"refusals-signing-2\" (made)"),
        "{out}"
    );
    assert!(!out.contains(&kid), "a new kid: {out}");
    let master = dir.path().join("master.key");
    let (code, _, err) = ttp_cli(
        &["hsm-init", "--import-master-key", master.to_str().unwrap()],
        &path,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("\"refusals-master\"") && err.contains("nothing was changed"),
        "{err}"
    );
    std::fs::write(&path, &on_token_text).unwrap();

    // A wrong PIN: refused by name, the PIN itself never printed.
    let wrong = "9911-wrong-pin-0044";
    std::fs::remove_file(dir.path().join("hsm.pin")).unwrap();
    pseudoform_protocol::secret_file::create(&dir.path().join("hsm.pin"), wrong.as_bytes())
        .unwrap();
    let (code, out, err) = ttp_cli(&["serve", "--listen", "127.0.0.1:0"], &path);
    assert_eq!(code, 2);
    assert!(
        err.contains("the PIN of token \"pseudoform-tests\" is wrong"),
        "{err}"
    );
    assert!(!err.contains(wrong) && !out.contains(wrong) && !err.contains(PIN));

    // An unknown token.
    std::fs::write(&path, on_token_text.replace(TOKEN, "no-such-token")).unwrap();
    let (code, _, err) = ttp_cli(&["hsm-status"], &path);
    assert_eq!(code, 2);
    assert!(
        err.contains("no initialised PKCS#11 token labelled \"no-such-token\""),
        "{err}"
    );

    // A configuration with both a key file and [hsm] is refused before
    // anything is opened.
    std::fs::write(
        &path,
        format!("master_key_file = \"master.key\"\n{on_token_text}"),
    )
    .unwrap();
    let (code, _, err) = ttp_cli(&["hsm-status"], &path);
    assert_eq!(code, 2);
    assert!(
        err.contains("remove master_key_file and signing_key"),
        "{err}"
    );
}
