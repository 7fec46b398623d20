//! Evaluation end to end: known answers against the method vectors (MRN
//! bound to the credential's provider), the JWE format and claims of
//! `/oprf/eval` and `/v1/evaluate` (the provider, the acting parties and
//! the DPoP key from the credential), the policy with the signed recipient
//! key, CORS and health.

#![cfg(test)]

use pseudoform_core::encoding;
use pseudoform_core::oprf::{unblind, Blind};
use pseudoform_testkit::keys::*;
use pseudoform_testkit::ttp::*;
use pseudoform_testkit::vectors::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oprf_eval_matches_the_method_vectors() {
    let ttp = TestTtp::start(true).await;
    let provider = ttp.backend(Client::ProviderA).await;
    let t_a = ttp.provider_factor(Client::ProviderA.id());
    for (i, v) in vectors()["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let a = v["recipientOrganization"] == ORG_A;
        let mut request = json!({
            "encryptedPersonalId": v["blindedInput"],
            "recipientOrganization": v["recipientOrganization"],
            "recipientScope": v["recipientScope"],
        });
        if v["type"] != "B" {
            request["pseudonymType"] = v["type"].clone();
        }
        let (status, headers, body) = ttp.call(&provider, "/oprf/eval", &request).await;
        if !a && v["type"] == "B" {
            // Recipient B may not receive BSN pseudonyms.
            assert_error(status, &body, 403, "type.notAllowed");
            continue;
        }
        assert_eq!(status, 200, "vector {i}: {body}");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body.as_object().unwrap().len(), 1);
        let token = body["jwe"].as_str().unwrap();
        assert_eq!(token.split('.').count(), 5, "compact JWE");
        let (header, claims) = open_jwe(token, a);
        assert_eq!(
            header.algorithm(),
            Some(if a { "RSA-OAEP-256" } else { "RSA-OAEP" })
        );
        assert_eq!(header.content_encryption(), Some("A256GCM"));
        assert_eq!(header.content_type(), Some("JWT"));
        if a {
            assert_eq!(header.key_id(), Some("registry-a-2026"));
        } else {
            let thumbprint =
                pseudoform_ttp::jwe::rsa_thumbprint(recipient_b().public_pem.as_bytes()).unwrap();
            assert_eq!(header.key_id(), Some(thumbprint.as_str()));
        }

        // An MRN is evaluated with k·t_p, t_p the credential's provider's.
        let evaluated = v["evaluatedElement"].as_str().unwrap();
        let evaluated = if v["type"] == "MRN" {
            scaled(&t_a, evaluated)
        } else {
            evaluated.to_owned()
        };
        assert_eq!(claims["subject"], format!("pseudonym:eval:{evaluated}"));
        assert_eq!(claims["aud"], v["recipientOrganization"]);
        assert_eq!(claims["scope"], v["recipientScope"]);
        assert_eq!(claims["version"], "1.1");
        let iat = claims["iat"].as_i64().unwrap();
        assert!((iat - now()).abs() < 60);
        assert_eq!(claims["exp"].as_i64().unwrap(), iat + 300);
        assert_eq!(claims["extra_versions"], json!({}));
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(claims["key_version"], 1);
        assert_eq!(claims["pseudonym_type"], v["type"]);
        // Who asked, from the credential: the provider and the DPoP key.
        assert_eq!(claims["provider"], Client::ProviderA.id());
        assert_eq!(claims["cnf"]["jkt"], provider.key.thumbprint());
        assert!(
            claims.get("act").is_none(),
            "a provider's back end acts for itself"
        );

        // De-blinding gives the pseudonym of the vector; an MRN's is bound
        // to the provider: t_p·N.
        let r =
            Blind::from_bytes(&encoding::decode_array::<32>(v["blind"].as_str().unwrap()).unwrap())
                .unwrap();
        let n = unblind(&r, &subject_element(&claims["subject"])).unwrap();
        let expected = if v["type"] == "MRN" {
            scaled(&t_a, v["pseudonym"].as_str().unwrap())
        } else {
            v["pseudonym"].as_str().unwrap().to_owned()
        };
        assert_eq!(encoding::encode(&n), expected, "vector {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_gives_one_jwe_per_record_in_order() {
    let ttp = TestTtp::start(false).await;
    let types = ["NGGV", "RGG", "GG"];
    let mut records = Vec::new();
    let mut blinds = Vec::new();
    for rec in 0..7 {
        let mut items = Vec::new();
        let mut rb = Vec::new();
        for t in types.iter().take(1 + rec % 3) {
            let input = format!("record {rec} type {t}");
            let (r, b) = blinded(input.as_bytes(), &input);
            items.push(json!({"type": t, "blindedInput": encoding::encode(&b)}));
            rb.push((input, r));
        }
        records.push(json!({ "items": items }));
        blinds.push(rb);
    }
    let request =
        json!({"recipientOrganization": ORG_B, "recipientScope": SCOPE_B, "records": records});
    let browser = ttp
        .browser_for(Client::ProviderA, CLINICIAN, ORIGIN_B, None)
        .await;
    let (status, _, body) = ttp.call(&browser, "/v1/evaluate", &request).await;
    assert_eq!(status, 200, "{body}");
    let results = body["records"].as_array().unwrap();
    assert_eq!(results.len(), 7);

    // The key the TTP made on first use, read back through the key store.
    let mut store = pseudoform_ttp::keys::KeyStore::open_config(&ttp.config).unwrap();
    let keys = store.load(ORG_B, SCOPE_B).unwrap();
    let (version, key) = keys.current().unwrap();
    assert_eq!(version, 1);

    let mut base = None;
    for (rec, result) in results.iter().enumerate() {
        let (header, claims) = open_jwe(result["jwe"].as_str().unwrap(), false);
        assert_eq!(header.algorithm(), Some("RSA-OAEP"));
        assert_eq!(claims["aud"], ORG_B);
        assert_eq!(claims["scope"], SCOPE_B);
        assert_eq!(claims["version"], "1.1");
        assert_eq!(claims["key_version"], 1);
        assert_eq!(
            claims["exp"].as_i64().unwrap(),
            claims["iat"].as_i64().unwrap() + 300
        );
        // Record i of the request with audit jti J has jti J-i.
        let jti = claims["jti"].as_str().unwrap();
        let (b, index) = jti.rsplit_once('-').unwrap();
        assert_eq!(index, rec.to_string());
        assert_eq!(b.len(), 32);
        assert_eq!(*base.get_or_insert(b.to_owned()), b);
        // The clinician of a browser token, and its key.
        assert_eq!(claims["provider"], Client::ProviderA.id());
        assert_eq!(claims["act"], json!({"sub": CLINICIAN}));
        assert_eq!(claims["cnf"]["jkt"], browser.key.thumbprint());
        let evaluations = claims["evaluations"].as_array().unwrap();
        assert_eq!(evaluations.len(), 1 + rec % 3);
        for (j, e) in evaluations.iter().enumerate() {
            assert_eq!(e["type"], types[j]);
            assert_eq!(e["extra_versions"], json!({}));
            let (input, r) = &blinds[rec][j];
            let (_, b) = blinded(input.as_bytes(), input);
            assert_eq!(subject_element(&e["subject"]), key.evaluate(&b).unwrap());
            // And the recipient de-blinds to k·H(input).
            let n = unblind(r, &subject_element(&e["subject"])).unwrap();
            let direct = key
                .evaluate(
                    &pseudoform_core::oprf::hash_to_group(input.as_bytes())
                        .unwrap()
                        .compress()
                        .to_bytes(),
                )
                .unwrap();
            assert_eq!(n, direct);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_health_and_cors() {
    let ttp = TestTtp::start(false).await;
    let (status, _, body) = ttp.get("/health", None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let q = |org: &str, scope: &str| {
        format!("/v1/policy?recipientOrganization={org}&recipientScope={scope}")
    };
    let (status, headers, mut body) = ttp.get(&q(ORG_A, SCOPE_A), Some(ORIGIN_A)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], ORIGIN_A);
    // The recipient's key, signed by the TTP's key of /v1/signing-keys.
    let statement = body
        .as_object_mut()
        .unwrap()
        .remove("recipientKey")
        .unwrap();
    let verifier = josekit::jws::ES256
        .verifier_from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    let (payload, header) =
        josekit::jws::deserialize_compact(statement.as_str().unwrap(), &verifier).unwrap();
    assert_eq!(header.token_type(), Some("pseudoform-recipient-key+jwt"));
    assert_eq!(header.key_id(), Some(ttp_signing().kid.as_str()));
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["organization"], ORG_A);
    assert_eq!(payload["scope"], SCOPE_A);
    assert_eq!(payload["jwk"]["kid"], KID_A);
    assert_eq!(payload["jwk"]["alg"], "RSA-OAEP-256");
    assert_eq!(payload["jwk"]["use"], "enc");
    // It is the recipient's own key: a JWE to it opens with its private key.
    let jwk = josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&payload["jwk"]).unwrap()).unwrap();
    let encrypter = josekit::jwe::RSA_OAEP_256.encrypter_from_jwk(&jwk).unwrap();
    let mut jwe_header = josekit::jwe::JweHeader::new();
    jwe_header.set_content_encryption("A256GCM");
    let sealed = josekit::jwe::serialize_compact(b"r", &jwe_header, &encrypter).unwrap();
    let decrypter = josekit::jwe::RSA_OAEP_256
        .decrypter_from_pem(&recipient_a().private_pem)
        .unwrap();
    assert_eq!(
        josekit::jwe::deserialize_compact(&sealed, &decrypter)
            .unwrap()
            .0,
        b"r"
    );
    assert_eq!(
        body,
        json!({
            "recipientOrganization": ORG_A,
            "recipientScope": SCOPE_A,
            "allowedTypes": ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"],
            "requiredTypes": [],
            "keyVersion": 1,
            "maxRecordsPerRequest": 1000,
        })
    );
    let (status, _, body) = ttp.get(&q(ORG_B, SCOPE_B), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["allowedTypes"],
        json!(["NGGV", "RGG", "GG"]),
        "no B where BSN is not allowed"
    );
    // Required types in the order of the Wkz table, whatever the configuration's order.
    assert_eq!(body["requiredTypes"], json!(["NGGV", "RGG"]));

    let (status, _, body) = ttp.get(&q("oin:00000001000000009000", SCOPE_A), None).await;
    assert_error(status, &body, 404, "recipient.unknown");
    let (status, _, body) = ttp.get(&q(ORG_A, "other-scope"), None).await;
    assert_error(status, &body, 404, "recipient.unknown");
    let (status, _, body) = ttp.get(&q("999990007", SCOPE_A), None).await;
    assert_error(status, &body, 422, "recipientOrganization.invalid");
    assert!(!body.to_string().contains("999990007"));
    let (status, _, body) = ttp
        .get(&format!("/v1/policy?recipientOrganization={ORG_A}"), None)
        .await;
    assert_error(status, &body, 422, "request.missingMember");
    assert_eq!(body["field"], "recipientScope");

    // A disallowed origin gets no CORS grant.
    let (_, headers, _) = ttp
        .get(&q(ORG_A, SCOPE_A), Some("https://evil.example"))
        .await;
    assert!(headers.get("access-control-allow-origin").is_none());

    // Preflight of an evaluation from a form origin.
    let response = ttp
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/evaluate", ttp.base),
        )
        .header("origin", ORIGIN_B)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,dpop",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], ORIGIN_B);
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    assert!(methods.contains("POST") && methods.contains("GET"));
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization")
            && allowed.contains("content-type")
            && allowed.contains("dpop")
    );
    assert_eq!(h["access-control-max-age"], "600");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_field_names_and_default_type_b() {
    let ttp = TestTtp::start(true).await;
    let v: &Value = &vectors()["derivations"][0];
    // Exactly the national request: no pseudonymType means B.
    let raw = format!(
        "{{\"encryptedPersonalId\":\"{}\",\"recipientOrganization\":\"{ORG_A}\",\"recipientScope\":\"{SCOPE_A}\"}}",
        v["blindedInput"].as_str().unwrap()
    );
    let browser = ttp.browser().await;
    let (status, _, body) = ttp
        .call_raw(&browser, "/oprf/eval", Some(ORIGIN_A), raw.into_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, claims) = open_jwe(body["jwe"].as_str().unwrap(), true);
    assert_eq!(claims["pseudonym_type"], "B");
    // The claims parse as the protocol type.
    let parsed: pseudoform_protocol::claims::EvalClaims = serde_json::from_value(claims).unwrap();
    assert_eq!(parsed.key_version, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_published_as_a_jwks() {
    let ttp = TestTtp::start(true).await;
    let (status, headers, body) = ttp.get("/v1/signing-keys", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let keys = body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = &ttp_signing().kid;
    assert_eq!(keys[0]["kid"], kid.as_str());
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none(), "never the private key");
    // The JWK verifies the JWS inside a JWE of the TTP.
    let jwk = josekit::jwk::Jwk::from_bytes(serde_json::to_vec(&keys[0]).unwrap()).unwrap();
    let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let v = &vectors()["derivations"][0];
    let request = json!({
        "encryptedPersonalId": v["blindedInput"],
        "recipientOrganization": ORG_A,
        "recipientScope": SCOPE_A,
        "pseudonymType": "NGGV",
    });
    let provider = ttp.backend(Client::ProviderA).await;
    let (status, _, body) = ttp.call(&provider, "/oprf/eval", &request).await;
    assert_eq!(status, 200, "{body}");
    let decrypter = josekit::jwe::RSA_OAEP_256
        .decrypter_from_pem(&recipient_a().private_pem)
        .unwrap();
    let (jws, _) =
        josekit::jwe::deserialize_compact(body["jwe"].as_str().unwrap(), &decrypter).unwrap();
    assert!(josekit::jws::deserialize_compact(&jws, &verifier).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mrn_of_another_provider_cannot_be_produced() {
    let ttp = TestTtp::start(true).await;
    let v = vectors()["derivations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["type"] == "MRN" && v["recipientOrganization"] == ORG_A)
        .unwrap()
        .clone();
    let r = Blind::from_bytes(&encoding::decode_array::<32>(v["blind"].as_str().unwrap()).unwrap())
        .unwrap();
    // The same blinded patient number, evaluated for provider A, for
    // provider B (whose request names A: ignored, the credential decides),
    // and by the processor acting for provider C.
    let mut request = json!({"encryptedPersonalId": v["blindedInput"], "recipientOrganization": ORG_A,
        "recipientScope": SCOPE_A, "pseudonymType": "MRN"});
    let mut pseudonyms = Vec::new();
    for (client, provider) in [
        (Client::ProviderA, None),
        (Client::ProviderB, None),
        (Client::Processor, Some(PROVIDER_C)),
    ] {
        let credential = ttp.backend_for(client, provider).await;
        request["provider"] = json!(Client::ProviderA.id());
        let (status, _, body) = ttp.call(&credential, "/oprf/eval", &request).await;
        assert_eq!(status, 200, "{body}");
        let (_, claims) = open_jwe(body["jwe"].as_str().unwrap(), true);
        let expected = provider.unwrap_or(client.id());
        assert_eq!(
            claims["provider"], expected,
            "the provider of the credential"
        );
        if client == Client::Processor {
            assert_eq!(claims["act"]["sub"], Client::Processor.id());
        }
        let n = encoding::encode(&unblind(&r, &subject_element(&claims["subject"])).unwrap());
        assert_eq!(
            n,
            scaled(
                &ttp.provider_factor(expected),
                v["pseudonym"].as_str().unwrap()
            )
        );
        pseudonyms.push(n);
    }
    assert_ne!(pseudonyms[0], pseudonyms[1]);
    assert_ne!(pseudonyms[0], pseudonyms[2]);
    assert_ne!(pseudonyms[1], pseudonyms[2]);
    // Scaling the blind factor: B's client could turn its own evaluation
    // into A's pseudonym only with t_A/t_B, which needs the secret binding
    // key (encrypted at rest, never on the wire). With it, it would:
    let t_a = ttp.provider_factor(Client::ProviderA.id());
    let t_b = ttp.provider_factor(Client::ProviderB.id());
    assert_eq!(scaled(&(t_a * t_b.invert()), &pseudonyms[1]), pseudonyms[0]);
    // Without it, the public view of B's client (its pseudonym, the vector's
    // unbound pseudonym, the MRN factor of no provider) gives no such ratio:
    // the unbound pseudonym is not what A gets.
    assert_ne!(pseudonyms[0], v["pseudonym"].as_str().unwrap());
    // No provider can be asked for by name: a provider's token for another
    // provider is refused at the token endpoint.
    let ((status, _, err), _) = ttp
        .backend_answer(Client::ProviderB, Some(Client::ProviderA.id()))
        .await;
    assert_token_error(
        status,
        &err,
        403,
        "unauthorized_client",
        "provider.notAllowed",
    );
}
