//! The submitter proof, rule by rule, against the real check and its SQLite
//! store: a record bound to a key (`cnf.jkt`) is accepted only with a fresh
//! proof of that key for this registry's URL and this record, once.

#![cfg(test)]

use base64ct::Encoding;
use pseudoform_protocol::auth::TYP_DPOP;
use pseudoform_protocol::client::{random_jti, EcKey};
use pseudoform_registry::submitter::{rec, SubmitterCheck, SubmitterError};
use serde_json::json;

const PUBLIC_URL: &str = "https://registratie-a.example.nl";
const URL: &str = "https://registratie-a.example.nl/api/submissions";
const RECORD: &str = "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.a.b.c.d";
const NOW: i64 = 1_767_225_600;

/// A proof of `key` with the given claims changed from a good one.
fn proof(key: &EcKey, change: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut claims = json!({
        "jti": random_jti().unwrap(),
        "htm": "POST",
        "htu": URL,
        "iat": NOW,
        "rec": rec(RECORD),
    });
    change(&mut claims);
    key.sign(Some(TYP_DPOP), true, &claims).unwrap()
}

fn check(require: bool) -> (tempfile::TempDir, SubmitterCheck) {
    let dir = tempfile::tempdir().unwrap();
    let check = SubmitterCheck::open(
        &[PUBLIC_URL.into(), "http://127.0.0.1:8480/".into()],
        require,
        &dir.path().join("registry.sqlite"),
    )
    .unwrap();
    (dir, check)
}

#[test]
fn a_bound_record_needs_a_fresh_proof_of_its_key_for_this_url_and_record() {
    let (_dir, check) = check(true);
    assert_eq!(check.urls(), [URL, "http://127.0.0.1:8480/api/submissions"]);
    let key = EcKey::generate().unwrap();
    let other = EcKey::generate().unwrap();
    let jkt = key.thumbprint();
    let bound = [Some(jkt)];
    let run = |p: Option<&str>, at: i64| check.check(&bound, p, &rec(RECORD), at);

    // Missing.
    assert_eq!(run(None, NOW), Err(SubmitterError::MissingProof));
    // Signed by another key (a lifted record submitted by someone else).
    assert_eq!(
        run(Some(&proof(&other, |_| {})), NOW),
        Err(SubmitterError::WrongKey)
    );
    // For another URL, another method, stale or from the future.
    let wrong_htu = proof(&key, |c| {
        c["htu"] = json!("https://elders.example.nl/api/submissions")
    });
    assert_eq!(
        run(Some(&wrong_htu), NOW),
        Err(SubmitterError::InvalidProof)
    );
    let wrong_htm = proof(&key, |c| c["htm"] = json!("PUT"));
    assert_eq!(
        run(Some(&wrong_htm), NOW),
        Err(SubmitterError::InvalidProof)
    );
    let stale = proof(&key, |c| c["iat"] = json!(NOW - 61));
    assert_eq!(run(Some(&stale), NOW), Err(SubmitterError::InvalidProof));
    let ahead = proof(&key, |c| c["iat"] = json!(NOW + 61));
    assert_eq!(run(Some(&ahead), NOW), Err(SubmitterError::InvalidProof));
    // For another record.
    let other_record = proof(&key, |c| c["rec"] = json!(rec("another.record.jwe.x.y")));
    assert_eq!(
        run(Some(&other_record), NOW),
        Err(SubmitterError::WrongRecord)
    );
    let no_rec = proof(&key, |c| {
        c.as_object_mut().unwrap().remove("rec");
    });
    assert_eq!(run(Some(&no_rec), NOW), Err(SubmitterError::InvalidProof));
    // Not a proof: a changed payload, another typ, garbage.
    let good = proof(&key, |_| {});
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged_payload = base64ct::Base64UrlUnpadded::encode_string(br#"{"jti":"x","htm":"POST"}"#);
    parts[1] = &forged_payload;
    assert_eq!(
        run(Some(&parts.join(".")), NOW),
        Err(SubmitterError::InvalidProof)
    );
    let jwt_typ = key
        .sign(
            Some("JWT"),
            true,
            &json!({"jti": "j1", "htm": "POST", "htu": URL, "iat": NOW, "rec": rec(RECORD)}),
        )
        .unwrap();
    assert_eq!(run(Some(&jwt_typ), NOW), Err(SubmitterError::InvalidProof));
    assert_eq!(run(Some("-"), NOW), Err(SubmitterError::InvalidProof));

    // Another name of the same registry is as good.
    let other_name = proof(&key, |c| {
        c["htu"] = json!("http://127.0.0.1:8480/api/submissions")
    });
    assert_eq!(run(Some(&other_name), NOW), Ok(()));
    // The good proof, within the window, a query on htu ignored: once.
    assert_eq!(run(Some(&good), NOW + 59), Ok(()));
    assert_eq!(run(Some(&good), NOW + 59), Err(SubmitterError::Replayed));
    let with_query = proof(&key, |c| c["htu"] = json!(format!("{URL}?x=1")));
    assert_eq!(run(Some(&with_query), NOW), Ok(()));
    // A resend signs a new proof: accepted (the receiver then answers it
    // with the first receipt).
    assert_eq!(run(Some(&proof(&key, |_| {})), NOW), Ok(()));

    // JWEs bound to two keys in one submission are refused.
    let mixed = [Some(jkt), Some(other.thumbprint())];
    assert_eq!(
        check.check(&mixed, Some(&proof(&key, |_| {})), &rec(RECORD), NOW),
        Err(SubmitterError::WrongKey)
    );
    assert_eq!(
        check.check(
            &[Some(jkt), None],
            Some(&proof(&key, |_| {})),
            &rec(RECORD),
            NOW
        ),
        Err(SubmitterError::WrongKey)
    );
}

#[test]
fn used_proof_ids_survive_a_restart_and_are_forgotten_after_their_window() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("registry.sqlite");
    let key = EcKey::generate().unwrap();
    let bound = [Some(key.thumbprint())];
    let good = proof(&key, |_| {});
    let first = SubmitterCheck::open(&[PUBLIC_URL.into()], true, &db).unwrap();
    assert_eq!(first.check(&bound, Some(&good), &rec(RECORD), NOW), Ok(()));
    drop(first);
    let again = SubmitterCheck::open(&[PUBLIC_URL.into()], true, &db).unwrap();
    assert_eq!(
        again.check(&bound, Some(&good), &rec(RECORD), NOW + 1),
        Err(SubmitterError::Replayed)
    );
    // Past its window the proof is refused as stale, and its id is purged
    // at the next use: the store holds only the ids of live proofs.
    assert_eq!(
        again.check(&bound, Some(&good), &rec(RECORD), NOW + 62),
        Err(SubmitterError::InvalidProof)
    );
    let later = proof(&key, |c| c["iat"] = json!(NOW + 62));
    assert_eq!(
        again.check(&bound, Some(&later), &rec(RECORD), NOW + 62),
        Ok(())
    );
    let count: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM submitter_proofs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1, "expired ids are purged");
}

#[test]
fn an_unbound_record_only_where_the_registry_allows_it() {
    let (_dir, strict) = check(true);
    assert_eq!(
        strict.check(&[None], None, &rec(RECORD), NOW),
        Err(SubmitterError::Unbound)
    );
    let (_dir2, lenient) = check(false);
    assert_eq!(
        lenient.check(&[None, None], None, &rec(RECORD), NOW),
        Ok(())
    );
    // A bound record needs its proof even there.
    let key = EcKey::generate().unwrap();
    assert_eq!(
        lenient.check(&[Some(key.thumbprint())], None, &rec(RECORD), NOW),
        Err(SubmitterError::MissingProof)
    );
    for (error, status, code) in [
        (SubmitterError::MissingProof, 401, "submitter.missingProof"),
        (SubmitterError::WrongKey, 401, "submitter.wrongKey"),
        (SubmitterError::Replayed, 401, "submitter.proofReplayed"),
        (SubmitterError::Unbound, 422, "submitter.unbound"),
    ] {
        assert_eq!(error.status().as_u16(), status);
        assert_eq!(error.code(), code);
    }
}
