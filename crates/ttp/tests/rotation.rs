//! Key rotation: a new current version, the old one in `extra_versions`
//! until retired, and `POST /v1/rekey` moving a v1 pseudonym to v2 exactly
//! as a direct evaluation under v2 would make it.

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_core::oprf::{unblind, Blind, ServerKey};
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use pseudoform_ttp::keys::KeyStore;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_evaluate_rekey_retire() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let registry = ttp.backend(Client::RegistryA).await;
    let v: &Value = &vectors()["derivations"][2]; // NGGV for recipient A
    let blinded_input = v["blindedInput"].as_str().unwrap();
    let r = Blind::from_bytes(&encoding::decode_array::<32>(v["blind"].as_str().unwrap()).unwrap())
        .unwrap();
    let n1 = encoding::decode_array::<32>(v["pseudonym"].as_str().unwrap()).unwrap();
    let request = json!({"encryptedPersonalId": blinded_input, "recipientOrganization": ORG_A,
        "recipientScope": SCOPE_A, "pseudonymType": "NGGV"});

    // Rotate (as the CLI does, on the same database; the running TTP reads
    // the key epoch at every request).
    let v2 = KeyStore::open_config(&ttp.config)
        .unwrap()
        .rotate(ORG_A, SCOPE_A)
        .unwrap();
    assert_eq!(v2, 2);

    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &request).await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = open_jwe(body["jwe"].as_str().unwrap(), true);
    assert_eq!(claims["key_version"], 2);
    assert_eq!(
        claims["extra_versions"],
        json!({"1": v["evaluatedElement"]}),
        "old version still evaluated"
    );
    assert_ne!(
        claims["subject"],
        format!("pseudonym:eval:{}", v["evaluatedElement"].as_str().unwrap())
    );
    let n2 = unblind(&r, &subject_element(&claims["subject"])).unwrap();
    assert_ne!(n2, n1);
    // The v1 pseudonym is still derivable from extra_versions.
    let old =
        encoding::decode_array::<32>(claims["extra_versions"]["1"].as_str().unwrap()).unwrap();
    assert_eq!(unblind(&r, &old).unwrap(), n1);

    // The batch endpoint says the same.
    let batch = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A,
        "records": [{"items": [{"type": "NGGV", "blindedInput": blinded_input}]}]});
    let (status, _, body) = ttp.call(&provider, "/v1/evaluate", &batch).await;
    assert_eq!(status, 200);
    let (_, record) = open_jwe(body["records"][0]["jwe"].as_str().unwrap(), true);
    assert_eq!(record["key_version"], 2);
    assert_eq!(record["evaluations"][0]["subject"], claims["subject"]);
    assert_eq!(
        record["evaluations"][0]["extra_versions"],
        claims["extra_versions"]
    );

    let (_, _, policy) = ttp
        .get(
            &format!("/v1/policy?recipientOrganization={ORG_A}&recipientScope={SCOPE_A}"),
            None,
        )
        .await;
    assert_eq!(policy["keyVersion"], 2);

    // Rekey: the registry blinds its v1 pseudonyms with its own factor s.
    let s = Blind::from_uniform_bytes(&wide("registry blind")).unwrap();
    let s_as_key = ServerKey::from_bytes(&s.to_bytes()).unwrap();
    let other =
        encoding::decode_array::<32>(vectors()["derivations"][4]["pseudonym"].as_str().unwrap())
            .unwrap();
    let sn: Vec<String> = [n1, other]
        .iter()
        .map(|n| encoding::encode(&s_as_key.evaluate(n).unwrap()))
        .collect();
    let rekey = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "fromVersion": 1,
        "toVersion": 2, "blindedPseudonyms": sn});
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &rekey).await;
    assert_eq!(status, 200, "{body}");
    let elements = body["elements"].as_array().unwrap();
    assert_eq!(elements.len(), 2);
    let moved = encoding::decode_array::<32>(elements[0].as_str().unwrap()).unwrap();
    assert_eq!(
        unblind(&s, &moved).unwrap(),
        n2,
        "rekeyed v1 pseudonym = direct v2 pseudonym"
    );
    // The TTP saw only s·N, never N.
    assert_ne!(sn[0], encoding::encode(&n1));
    // And back from 2 to 1.
    let back = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A, "fromVersion": 2,
        "toVersion": 1, "blindedPseudonyms": [elements[0]]});
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &back).await;
    assert_eq!(status, 200);
    let again = encoding::decode_array::<32>(body["elements"][0].as_str().unwrap()).unwrap();
    assert_eq!(unblind(&s, &again).unwrap(), n1);

    // Rekey refusals.
    let mut bad = rekey.clone();
    bad["toVersion"] = json!(3);
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &bad).await;
    assert_error(status, &body, 422, "keyVersion.notActive");
    assert_eq!(body["field"], "toVersion");
    bad["toVersion"] = json!(1);
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &bad).await;
    assert_error(status, &body, 422, "rekey.sameVersion");
    let mut bad = rekey.clone();
    bad["blindedPseudonyms"] = json!([sn[0], encoding::encode(&[0u8; 32])]);
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &bad).await;
    assert_error(status, &body, 400, "blindedInput.invalid");
    assert_eq!(body["field"], "blindedPseudonyms[1]");
    bad["blindedPseudonyms"] = json!([]);
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &bad).await;
    assert_error(status, &body, 422, "blindedPseudonyms.empty");

    // Retire v1 (as the CLI does, past its window): no longer evaluated,
    // no longer a rekey source, from the very next request on — the test
    // TTP has the default configuration, no cache time to wait out.
    KeyStore::open_config(&ttp.config)
        .unwrap()
        .retire(ORG_A, SCOPE_A, 1, pseudoform_protocol::unix_now(), 0)
        .unwrap();
    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &request).await;
    assert_eq!(status, 200);
    let (_, after) = open_jwe(body["jwe"].as_str().unwrap(), true);
    assert_eq!(after["key_version"], 2);
    assert_eq!(after["extra_versions"], json!({}));
    assert_eq!(after["subject"], claims["subject"]);
    let (status, _, body) = ttp.call(&registry, "/v1/rekey", &rekey).await;
    assert_error(status, &body, 422, "keyVersion.notActive");
    assert_eq!(body["field"], "fromVersion");
}
