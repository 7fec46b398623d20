//! The audit log: every evaluation request (accepted or refused) gets one
//! row without any element; the hash chain verifies, the triggers refuse
//! edits, and an edit made behind their back is found by `verify-audit`.

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_audited_in_a_verifiable_chain() {
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
    let unknown = json!({"encryptedPersonalId": element("u"), "recipientOrganization": "oin:99999999999999999999",
        "recipientScope": "secret-scope-name"});

    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &single).await.0,
        200
    );
    assert_eq!(
        ttp.post("/v1/evaluate", Some(TOKEN_FORM), &batch).await.0,
        200
    );
    assert_eq!(ttp.post("/oprf/eval", None, &single).await.0, 401);
    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &forbidden).await.0,
        403
    );
    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &unknown).await.0,
        404
    );
    assert_eq!(
        ttp.post_raw("/v1/evaluate", Some(TOKEN_FORM), None, b"{".to_vec())
            .await
            .0,
        422
    );
    let mut invalid = single.clone();
    invalid["encryptedPersonalId"] = json!(encoding::encode(&[0u8; 32]));
    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &invalid).await.0,
        400
    );
    // The policy is not an evaluation: not audited.
    assert_eq!(
        ttp.get(
            &format!("/v1/policy?recipientOrganization={ORG_A}&recipientScope={SCOPE_A}"),
            None
        )
        .await
        .0,
        200
    );
    ttp.stop().await;

    let db = ttp.database();
    let v = pseudoform_ttp::audit::verify(&db).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.rows, 7);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT endpoint || ' ' || caller || ' ' || organization || ' ' || types || ' ' || total
             || ' ' || key_versions || ' ' || status || ' ' || outcome FROM audit_log ORDER BY id",
        )
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        format!("/oprf/eval form {ORG_A} {{\"B\":1}} 1 1 200 ok"),
        format!("/v1/evaluate form {ORG_B} {{\"NGGV\":3,\"RGG\":3}} 6 1 200 ok"),
        "/oprf/eval   {} 0  401 auth.missingToken".to_owned(),
        format!("/oprf/eval form {ORG_B} {{\"B\":1}} 1  403 type.notAllowed"),
        // An unknown recipient is not written: nothing the caller typed is stored.
        "/oprf/eval form  {} 0  404 recipient.unknown".to_owned(),
        "/v1/evaluate form  {} 0  422 request.malformedJson".to_owned(),
        format!("/oprf/eval form {ORG_A} {{\"B\":1}} 1 1 400 blindedInput.invalid"),
    ];
    assert_eq!(rows, expected);
    drop(stmt);

    // No element in the database, neither as text nor as bytes.
    let mut stored = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(db.with_extension("sqlite-wal")) {
        stored.extend(wal);
    }
    for b in &sent {
        let text = encoding::encode(b);
        assert!(!stored.windows(text.len()).any(|w| w == text.as_bytes()));
        assert!(!stored.windows(32).any(|w| w == b));
    }
    assert!(!stored.windows(17).any(|w| w == b"secret-scope-name"));

    // The triggers refuse edits.
    assert!(conn
        .execute("UPDATE audit_log SET total = 99 WHERE id = 2", [])
        .is_err());
    assert!(conn
        .execute("DELETE FROM audit_log WHERE id = 7", [])
        .is_err());
    // Behind their back, an edit is found.
    conn.execute_batch("DROP TRIGGER audit_log_no_update;")
        .unwrap();
    conn.execute("UPDATE audit_log SET total = 99 WHERE id = 2", [])
        .unwrap();
    let v = pseudoform_ttp::audit::verify(&db).unwrap();
    assert_eq!(v.first_bad_row, Some(2));
    assert_eq!(v.rows, 1);
    assert!(!v.triggers_present);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args(["verify-audit", "--config"])
        .arg(&ttp.config_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BROKEN at row 2"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ttp_continues_the_chain() {
    let mut ttp = TestTtp::start(false).await;
    let single = json!({"encryptedPersonalId": encoding::encode(&blinded(b"x", "x").1),
        "recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "pseudonymType": "GG"});
    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &single).await.0,
        200
    );
    // A second server on the same database (and its keys).
    ttp.restart().await;
    assert_eq!(
        ttp.post("/oprf/eval", Some(TOKEN_FORM), &single).await.0,
        200
    );
    ttp.stop().await;
    let v = pseudoform_ttp::audit::verify(&ttp.database()).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.rows, 2);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pseudoform-ttp"))
        .args(["verify-audit", "--config"])
        .arg(&ttp.config_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit log OK: 2 rows"));
}
