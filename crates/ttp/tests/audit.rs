//! The audit log: an accepted request gets its own row (caller, provider,
//! acting person, credential, the `jti` of what was issued, recipient,
//! counts, key versions — never an element); refusals are aggregated, so
//! junk traffic grows the database by a bounded amount; the chain verifies
//! against the TTP's signed heads with the public key alone, and a rewrite
//! with the whole chain recomputed (as a writer of the database can) is
//! found by `verify-audit`.

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// The rows of the log as `endpoint caller provider person org types total
/// versions status outcome count`, sorted.
fn rows(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT endpoint || ' ' || caller || ' ' || provider || ' ' || person || ' ' || organization
             || ' ' || types || ' ' || total || ' ' || key_versions || ' ' || status || ' ' || outcome
             || ' ' || count FROM audit_rows ORDER BY id",
        )
        .unwrap();
    let mut rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_audited_with_who_asked_and_what_was_issued() {
    let mut ttp = TestTtp::start(false).await;
    let mut sent = Vec::new();
    let mut element = |label: &str| {
        let (_, b) = blinded(label.as_bytes(), label);
        sent.push(b);
        encoding::encode(&b)
    };
    let single = json!({"encryptedPersonalId": element("s"), "recipientOrganization": ORG_A,
        "recipientScope": SCOPE_A});
    let records: Vec<_> = (0..3)
        .map(|i| {
            json!({"items": [{"type": "NGGV", "blindedInput": element(&format!("n{i}"))},
                             {"type": "RGG", "blindedInput": element(&format!("r{i}"))}]})
        })
        .collect();
    let batch =
        json!({"recipientOrganization": ORG_B, "recipientScope": SCOPE_B, "records": records});
    let forbidden = json!({"encryptedPersonalId": element("f"), "recipientOrganization": ORG_B,
        "recipientScope": SCOPE_B, "pseudonymType": "B"});
    let unknown = json!({"encryptedPersonalId": element("u"), "recipientOrganization": "oin:99999999999999999000",
        "recipientScope": "secret-scope-name"});

    let backend = ttp.backend(Client::ProviderA).await;
    let browser = ttp
        .browser_for(Client::ProviderA, CLINICIAN, ORIGIN_B, None)
        .await;
    let (status, _, one) = ttp.call(&backend, "/oprf/eval", &single).await;
    assert_eq!(status, 200, "{one}");
    let (status, _, many) = ttp.call(&browser, "/v1/evaluate", &batch).await;
    assert_eq!(status, 200, "{many}");
    assert_eq!(ttp.post("/oprf/eval", None, &single).await.0, 401);
    assert_eq!(ttp.call(&backend, "/oprf/eval", &forbidden).await.0, 403);
    assert_eq!(ttp.call(&backend, "/oprf/eval", &unknown).await.0, 404);
    assert_eq!(
        ttp.call_raw(&backend, "/v1/evaluate", None, b"{".to_vec())
            .await
            .0,
        422
    );
    // The policy is not an evaluation: not audited.
    let policy = format!("/v1/policy?recipientOrganization={ORG_A}&recipientScope={SCOPE_A}");
    assert_eq!(ttp.get(&policy, None).await.0, 200);
    ttp.stop().await;

    let db = ttp.database();
    let v = verify_audit(&ttp);
    assert!(v.ok(), "{v:?}");
    let a = Client::ProviderA.id();
    let expected = [
        // The two token requests and the two evaluations, each its own row.
        format!("/oprf/eval {a} {a}  {ORG_A} {{\"B\":1}} 1 1 200 ok 1"),
        format!("/v1/evaluate {a} {a} {CLINICIAN} {ORG_B} {{\"NGGV\":3,\"RGG\":3}} 6 1 200 ok 1"),
    ];
    let got = rows(&db);
    for row in &expected {
        assert!(
            got.iter()
                .any(|g| g.split_whitespace().eq(row.split_whitespace())),
            "{row:?} not in {got:#?}"
        );
    }
    // Refusals, aggregated (endpoint, caller, status, outcome, count); an
    // unknown recipient is not written.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let summary: Vec<String> = conn
        .prepare("SELECT endpoint || '|' || caller || '|' || organization || '|' || status || '|' || outcome || '|' || count FROM audit_rows ORDER BY endpoint, status")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want = [
        format!("/oprf/eval|{a}|{ORG_A}|200|ok|1"),
        "/oprf/eval|||401|auth.missingToken|1".to_owned(),
        // (an aggregate keeps no recipient)
        format!("/oprf/eval|{a}||403|type.notAllowed|1"),
        format!("/oprf/eval|{a}||404|recipient.unknown|1"),
        format!("/v1/evaluate|{a}|{ORG_B}|200|ok|1"),
        format!("/v1/evaluate|{a}||422|request.malformedJson|1"),
        format!("/v1/token|{a}||200|ok|1"),
        format!("/v1/token|{a}||200|ok|1"),
    ];
    let mut summary_sorted = summary.clone();
    summary_sorted.sort();
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    assert_eq!(summary_sorted, want_sorted);

    // An evaluation's row names the access token and the JWE issued.
    let (credential, jti): (String, String) = conn
        .query_row(
            "SELECT credential, jti FROM audit_rows WHERE endpoint = '/oprf/eval' AND status = 200",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(credential, token_claims(&backend).jti);
    let (_, claims) = open_jwe(one["jwe"].as_str().unwrap(), true);
    assert_eq!(claims["jti"], jti.as_str());
    let batch_jti: String = conn
        .query_row(
            "SELECT jti FROM audit_rows WHERE endpoint = '/v1/evaluate' AND status = 200",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (_, claims) = open_jwe(many["records"][1]["jwe"].as_str().unwrap(), false);
    assert_eq!(claims["jti"], format!("{batch_jti}-1"));
    assert_eq!(claims["act"]["sub"], CLINICIAN);

    // No element in the database, neither as text nor as bytes.
    let mut stored = std::fs::read(&db).unwrap();
    stored.extend(std::fs::read(db.with_extension("sqlite-wal")).unwrap_or_default());
    for b in &sent {
        let text = encoding::encode(b);
        assert!(!stored.windows(text.len()).any(|w| w == text.as_bytes()));
        assert!(!stored.windows(32).any(|w| w == b));
    }
    assert!(!stored.windows(17).any(|w| w == b"secret-scope-name"));
}

/// `SHA-256(previous ‖ canonical row)`, as docs/protocol.md describes the
/// chain: each column but `hash`, in table order, as a 4-byte big-endian
/// length and its text.
fn chain_hash(previous: &[u8], columns: &[String]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(previous);
    for c in columns {
        h.update(u32::try_from(c.len()).unwrap().to_be_bytes());
        h.update(c.as_bytes());
    }
    h.finalize().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_and_recomputed_chain_fails_verification() {
    let mut ttp = TestTtp::start(false).await;
    let backend = ttp.backend(Client::ProviderA).await;
    for label in ["1", "2", "3"] {
        let request = eval_request(ORG_A, SCOPE_A, "GG", label);
        assert_eq!(ttp.call(&backend, "/oprf/eval", &request).await.0, 200);
    }
    // A second server on the same database continues the chain.
    ttp.restart().await;
    let backend = ttp.backend(Client::ProviderA).await;
    let request = eval_request(ORG_A, SCOPE_A, "GG", "4");
    assert_eq!(ttp.call(&backend, "/oprf/eval", &request).await.0, 200);
    ttp.stop().await;
    let verify_audit_cli = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
            .args(["verify-audit", "--config"])
            .arg(&ttp.config_path)
            .output()
            .unwrap()
    };
    let out = verify_audit_cli();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("audit log OK: 6 rows"), "{stdout}");

    // A writer of the database drops the triggers, makes row 3 say a
    // smaller count, and recomputes every hash after it.
    let conn = rusqlite::Connection::open(ttp.database()).unwrap();
    assert!(conn
        .execute("UPDATE audit_rows SET total = 0 WHERE id = 3", [])
        .is_err());
    conn.execute_batch("DROP TRIGGER audit_rows_no_update;")
        .unwrap();
    conn.execute(
        "UPDATE audit_rows SET total = 0, types = '{}' WHERE id = 3",
        [],
    )
    .unwrap();
    let columns = "CAST(id AS TEXT), CAST(time_ms AS TEXT), endpoint, caller, provider, person, credential, jti, \
                   organization, scope, types, CAST(total AS TEXT), key_versions, CAST(status AS TEXT), outcome, CAST(count AS TEXT)";
    let all: Vec<Vec<String>> = conn
        .prepare(&format!("SELECT {columns} FROM audit_rows ORDER BY id"))
        .unwrap()
        .query_map([], |r| (0..16).map(|i| r.get::<_, String>(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut previous = vec![0u8; 32];
    for row in &all {
        let hash = chain_hash(&previous, row);
        conn.execute(
            "UPDATE audit_rows SET hash = ?1 WHERE id = ?2",
            rusqlite::params![hex::encode(&hash), row[0]],
        )
        .unwrap();
        previous = hash;
    }
    conn.execute_batch(
        "CREATE TRIGGER audit_rows_no_update BEFORE UPDATE ON audit_rows \
         BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    )
    .unwrap();
    drop(conn);
    // The recomputation is right (row 1 and 2 are untouched and still
    // verify), yet the chain no longer meets the signed heads.
    let v = verify_audit(&ttp);
    assert!(!v.ok(), "{v:?}");
    assert!(v.triggers_present);
    let out = verify_audit_cli();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BROKEN"), "{stdout}");
    assert!(stdout.contains("not the one the TTP signed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_traffic_grows_the_database_by_a_bounded_amount() {
    let mut ttp = TestTtp::start(false).await;
    let body = serde_json::to_vec(&eval_request(ORG_A, SCOPE_A, "GG", "junk")).unwrap();
    // 300 refused requests of three kinds: no token, a made-up token,
    // a made-up token with a made-up proof.
    for i in 0..100 {
        let made_up = format!("junk-token-{i}");
        assert_eq!(
            ttp.post_raw("/oprf/eval", None, None, body.clone()).await.0,
            401
        );
        assert_eq!(
            ttp.call_with(&made_up, None, "/oprf/eval", None, body.clone())
                .await
                .0,
            401
        );
        let proof = format!("junk.proof.{i}");
        assert_eq!(
            ttp.call_with(&made_up, Some(&proof), "/v1/evaluate", None, body.clone())
                .await
                .0,
            401
        );
    }
    ttp.stop().await;
    let v = verify_audit(&ttp);
    assert!(v.ok(), "{v:?}");
    let conn = rusqlite::Connection::open(ttp.database()).unwrap();
    let (rows, requests): (i64, i64) = conn
        .query_row("SELECT COUNT(*), SUM(count) FROM audit_rows", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(requests, 300, "every refusal is counted");
    // One row per minute, endpoint, caller, status and outcome: at most
    // three kinds in at most two minutes.
    assert!(rows <= 6, "{rows} rows for 300 refusals");
    let heads: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_heads", [], |r| r.get(0))
        .unwrap();
    assert!(heads <= rows, "{heads} heads");
}
