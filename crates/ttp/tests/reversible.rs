//! Issue 15 at the TTP, on a real TTP on 127.0.0.1: the providers'
//! encryption keys in the signed directory (`GET /v1/provider-keys`,
//! verified with the TTP's public signing key as a browser does, current
//! first, rotation by appending), the keys refused at start-up, type R in
//! the policy and never evaluated (nothing charged), and validation tokens
//! (`scope=validate`, `aud` the recipient) that the TTP issues to the
//! providers and processors that deliver to that recipient and accepts at
//! none of its own endpoints.

#![cfg(test)]

use std::path::Path;

use base64ct::{Base64UrlUnpadded, Encoding};
use pseudoform_protocol::auth::{
    AccessTokenClaims, CLIENT_ASSERTION_TYPE, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE,
    TOKEN_TYPE_JWT,
};
use pseudoform_protocol::client::EcKey;
use pseudoform_protocol::jwk::ec_thumbprint;
use pseudoform_testkit::keys::ttp_signing;
use pseudoform_testkit::ttp::*;
use serde_json::{json, Value};

/// The validation page of provider A's portal (a loopback development origin).
const VALIDATION_A: &str = "http://127.0.0.1:8490";
/// The validation page of the processor.
const VALIDATION_P: &str = "https://verwerker.example.nl";
/// Provider A's caller block, as the test configuration starts it.
const PROVIDER_A_BLOCK: &str = "id = \"ura:00000001\"\nrole = \"provider\"\n";
/// The processor's caller block.
const PROCESSOR_BLOCK: &str = "id = \"oin:00000003000000003000\"\nrole = \"processor\"\n";
/// Recipient A's types, as the test configuration has them.
const TYPES_A: &str = "\"A\", \"MRN\"]";

/// Writes the public key of `key` as `name` into `dir`.
fn write_key(dir: &Path, name: &str, key: &EcKey) {
    std::fs::write(dir.join(name), key.public_pem()).unwrap();
}

/// The test configuration with `enc` (file names) as provider A's
/// encryption keys, the validation origins of provider A and the
/// processor, and recipient A allowing and requiring R.
fn with_issue_15(text: String, enc: &[&str]) -> String {
    let list = enc
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = text.replacen(
        PROVIDER_A_BLOCK,
        &format!("{PROVIDER_A_BLOCK}encryption_keys = [{list}]\nvalidation_origins = [\"{VALIDATION_A}\"]\n"),
        1,
    );
    let text = text.replacen(
        PROCESSOR_BLOCK,
        &format!("{PROCESSOR_BLOCK}validation_origins = [\"{VALIDATION_P}\"]\n"),
        1,
    );
    text.replacen(
        TYPES_A,
        "\"A\", \"MRN\", \"R\"]\nrequired_types = [\"R\"]",
        1,
    )
}

/// A TTP whose provider A has the encryption keys `keys` (oldest first).
async fn ttp_with_keys(keys: &[&EcKey], extra_global: &str) -> TestTtp {
    let names: Vec<String> = (0..keys.len()).map(|i| format!("enc-{i}.pem")).collect();
    TestTtp::start_edited(true, extra_global, |dir, text| {
        for (name, key) in names.iter().zip(keys) {
            write_key(dir, name, key);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        with_issue_15(text, &refs)
    })
    .await
}

/// The payload of a statement verified as a browser verifies it: ES256 by
/// the key of `GET /v1/signing-keys` that its `kid` names, `typ`
/// `pseudoform-provider-key+jwt`.
async fn verified_statements(ttp: &TestTtp, provider: &str) -> Vec<Value> {
    let (status, _, jwks) = ttp.get("/v1/signing-keys", None).await;
    assert_eq!(status, 200, "{jwks}");
    let signing = &jwks["keys"][0];
    let jwk = josekit::jwk::Jwk::from_bytes(signing.to_string()).unwrap();
    let verifier = josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let (status, headers, body) = ttp
        .get(
            &format!("/v1/provider-keys?provider={provider}"),
            Some("https://anywhere.example.org"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(headers["cache-control"], "max-age=300");
    assert_eq!(body["provider"], provider);
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jws| {
            let (payload, header) =
                josekit::jws::deserialize_compact(jws.as_str().unwrap(), &verifier).unwrap();
            assert_eq!(header.algorithm(), Some("ES256"));
            assert_eq!(header.token_type(), Some("pseudoform-provider-key+jwt"));
            assert_eq!(header.key_id(), signing["kid"].as_str());
            let claims: Value = serde_json::from_slice(&payload).unwrap();
            assert_eq!(claims["provider"], provider);
            let k = &claims["jwk"];
            assert_eq!(
                (k["kty"].as_str(), k["crv"].as_str()),
                (Some("EC"), Some("P-256"))
            );
            assert_eq!(k["alg"], "HPKE-P256-SHA256-A256GCM");
            assert_eq!(k["use"], "enc");
            assert!(k.get("d").is_none());
            let coordinate =
                |n: &str| Base64UrlUnpadded::decode_vec(k[n].as_str().unwrap()).unwrap();
            assert_eq!(
                k["kid"],
                ec_thumbprint("P-256", &coordinate("x"), &coordinate("y"))
            );
            assert!((claims["iat"].as_i64().unwrap() - now()).abs() < 600);
            claims
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_states_each_providers_keys_current_first() {
    let (first, second) = (EcKey::generate().unwrap(), EcKey::generate().unwrap());
    let ttp = ttp_with_keys(&[&first], "").await;
    let one = verified_statements(&ttp, "ura:00000001").await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["current"], true);
    assert_eq!(one[0]["jwk"]["kid"], first.thumbprint());
    assert_eq!(one[0]["jwk"]["x"], first.public_jwk()["x"]);
    assert_eq!(one[0]["jwk"]["y"], first.public_jwk()["y"]);
    // A provider without keys, and one known only through its processor.
    assert!(verified_statements(&ttp, "ura:00000002").await.is_empty());
    assert!(verified_statements(&ttp, PROVIDER_C).await.is_empty());
    let (status, headers, err) = ttp
        .get(
            "/v1/provider-keys?provider=ura:00000099",
            Some(VALIDATION_A),
        )
        .await;
    assert_error(status, &err, 404, "provider.unknown");
    assert_eq!(err["field"], "provider");
    assert_eq!(headers["access-control-allow-origin"], "*");
    for (query, code) in [
        ("", "request.missingMember"),
        ("?other=1", "request.missingMember"),
        ("?provider=", "request.invalid"),
        ("?provider=ura:123", "request.invalid"),
        ("?provider=%FF%FE", "request.invalid"),
        ("?provider=ura%3A0000000%00", "request.invalid"),
        ("?provider=ura:00000001%0A", "request.invalid"),
        ("?provider=oin:00000003000000003000", "request.invalid"),
        (
            "?provider=ura:00000001&provider=ura:00000002",
            "request.invalid",
        ),
    ] {
        let (status, _, err) = ttp.get(&format!("/v1/provider-keys{query}"), None).await;
        assert_error(status, &err, 400, code);
        assert_eq!(err["field"], "provider", "{query}");
    }
    let (status, _, err) = ttp
        .post("/v1/provider-keys?provider=ura:00000001", None, &json!({}))
        .await;
    assert_error(status, &err, 405, "methodNotAllowed");
    drop(ttp);

    // Rotation: the new key appended is current, the old one still listed.
    let ttp = ttp_with_keys(&[&first, &second], "").await;
    let two = verified_statements(&ttp, "ura:00000001").await;
    assert_eq!(two.len(), 2);
    assert_eq!(two[0]["current"], true);
    assert_eq!(two[0]["jwk"]["kid"], second.thumbprint());
    assert_eq!(two[1]["current"], false);
    assert_eq!(two[1]["jwk"]["kid"], first.thumbprint());
}

/// Why a TTP with provider keys edited by `edit` does not start: the
/// configuration's refusal, or the start's.
fn refusal(edit: impl FnOnce(&Path, String) -> String) -> String {
    let (_dir, _, config) = prepare_edited("", edit);
    match config {
        Err(e) => format!("{e:#}"),
        Ok(config) => format!(
            "{:#}",
            pseudoform_ttp::app(config).expect_err("the TTP started")
        ),
    }
}

#[test]
fn keys_that_are_no_providers_own_encryption_keys_stop_the_start() {
    let key = EcKey::generate().unwrap();
    // Provider A's own signing key, another caller's, the TTP's.
    for (file, says) in [
        ("client-0.pem", "also a signing key"),
        ("client-1.pem", "also a signing key"),
        ("ttp-signing.pem", "the TTP's own signing key"),
    ] {
        let message = refusal(|dir, text| {
            std::fs::write(dir.join("ttp-signing.pem"), &ttp_signing().public_pem).unwrap();
            with_issue_15(text, &[file])
        });
        assert!(message.contains(says), "{file}: {message}");
    }
    // One key for two providers, or twice for one.
    let message = refusal(|dir, text| {
        write_key(dir, "enc.pem", &key);
        write_key(dir, "enc-copy.pem", &key);
        with_issue_15(text, &["enc.pem"]).replacen(
            "id = \"ura:00000002\"\nrole = \"provider\"\n",
            "id = \"ura:00000002\"\nrole = \"provider\"\nencryption_keys = [\"enc-copy.pem\"]\n",
            1,
        )
    });
    assert!(message.contains("listed twice"), "{message}");
    let message = refusal(|dir, text| {
        write_key(dir, "enc.pem", &key);
        with_issue_15(text, &["enc.pem", "enc.pem"])
    });
    assert!(message.contains("listed twice"), "{message}");
    // Not a provider.
    for block in [
        PROCESSOR_BLOCK,
        "id = \"oin:00000001000000001000\"\nrole = \"recipient\"\n",
    ] {
        let message = refusal(|dir, text| {
            write_key(dir, "enc.pem", &key);
            text.replacen(
                block,
                &format!("{block}encryption_keys = [\"enc.pem\"]\n"),
                1,
            )
        });
        assert!(message.contains("only a provider caller has"), "{message}");
    }
    // Not a readable P-256 public key: an RSA key, a P-384 key, a private
    // key, no file.
    let p384 = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let p384 = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&p384).unwrap())
        .unwrap()
        .public_key_to_pem()
        .unwrap();
    for (file, says) in [
        ("a.pem", "not a P-256 public key"),
        ("p384.pem", "not a P-256 public key"),
        ("signing.pem", "not a P-256 public key"),
        ("absent.pem", "cannot read"),
    ] {
        let message = refusal(|dir, text| {
            std::fs::write(dir.join("p384.pem"), &p384).unwrap();
            with_issue_15(text, &[file])
        });
        assert!(message.contains(says), "{file}: {message}");
    }
    // Validation origins: https or loopback http, of a provider or processor.
    for (origin, block) in [
        ("http://portaal.example.nl", PROVIDER_A_BLOCK),
        ("https://portaal.example.nl/", PROVIDER_A_BLOCK),
        ("portaal.example.nl", PROVIDER_A_BLOCK),
        (
            "https://registratie.example.nl",
            "id = \"oin:00000001000000001000\"\nrole = \"recipient\"\n",
        ),
    ] {
        let message = refusal(|_, text| {
            text.replacen(
                block,
                &format!("{block}validation_origins = [\"{origin}\"]\n"),
                1,
            )
        });
        assert!(
            message.contains("validation_origins"),
            "{origin}: {message}"
        );
    }
    // The good configuration starts.
    let (_dir, _, config) = prepare_edited("", |dir, text| {
        write_key(dir, "enc.pem", &key);
        with_issue_15(text, &["enc.pem"])
    });
    let _router = pseudoform_ttp::app(config.unwrap()).unwrap();
}

#[test]
fn a_validation_origin_that_is_also_a_form_frame_or_ttp_origin_stops_the_start() {
    let key = EcKey::generate().unwrap();
    let ttp_url = "http://127.0.0.1:8470";
    let edit = |origin: &str| {
        let origin = origin.to_owned();
        let key = &key;
        move |dir: &Path, text: String| {
            write_key(dir, "enc.pem", key);
            let text = with_issue_15(text, &["enc.pem"]).replacen(
                &format!("validation_origins = [\"{VALIDATION_A}\"]"),
                &format!("validation_origins = [\"{origin}\"]"),
                1,
            );
            // A frame origin and the TTP's own URL, as a deployment has
            // them (recipient A has its form and frame-parent origins).
            format!(
                "public_url = \"{ttp_url}\"\nframe = {{ origins = [\"https://frame.example.nl\"] }}\n{text}"
            )
        }
    };
    let with_origin = |origin: &str| refusal(edit(origin));
    for (origin, what) in [
        (ORIGIN_A, "a recipient's allowed_origins"),
        (FRAME_PARENT_A, "a frame_parent_origins entry"),
        ("https://FRAME.example.nl", "a [frame] origin"),
        (ttp_url, "the TTP's own"),
    ] {
        let message = with_origin(origin);
        assert!(
            message.contains("validation_origins") && message.contains("browser origin of the TTP"),
            "{what} ({origin}): {message}"
        );
    }
    // An origin of its own starts (the refusals above are the overlap's).
    let (_dir, _, config) = prepare_edited("", edit("https://portaal.example.nl"));
    let _router = pseudoform_ttp::app(config.unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_r_is_in_the_policy_and_refused_by_every_evaluating_endpoint_uncharged() {
    let key = EcKey::generate().unwrap();
    let ttp = ttp_with_keys(
        &[&key],
        "[budgets]\nbrowser_token = { per_minute = 2, per_day = 2 }\n",
    )
    .await;
    let policy = |org: &str, scope: &str| {
        format!("/v1/policy?recipientOrganization={org}&recipientScope={scope}")
    };
    let (status, _, a) = ttp.get(&policy(ORG_A, SCOPE_A), None).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["allowedTypes"].as_array().unwrap().last().unwrap(), "R");
    assert_eq!(a["requiredTypes"], json!(["R"]));
    let (status, _, b) = ttp.get(&policy(ORG_B, SCOPE_B), None).await;
    assert_eq!(status, 200, "{b}");
    assert!(!b["allowedTypes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "R"));
    assert!(!b["requiredTypes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "R"));

    let browser = ttp.browser().await;
    for _ in 0..3 {
        let (status, _, err) = ttp
            .call(
                &browser,
                "/v1/evaluate",
                &batch_request(ORG_A, SCOPE_A, &["NGGV", "R"], 1, "r"),
            )
            .await;
        assert_error(status, &err, 422, "type.notEvaluable");
        assert_eq!(err["field"], "records[0].items[1].type");
        let (status, _, err) = ttp
            .call(
                &browser,
                "/oprf/eval",
                &eval_request(ORG_A, SCOPE_A, "R", "r"),
            )
            .await;
        assert_error(status, &err, 422, "type.notEvaluable");
        assert_eq!(err["field"], "pseudonymType");
    }
    // A recipient that does not allow R: still not evaluable, not "not allowed".
    let at_b = ttp
        .browser_for(Client::ProviderA, CLINICIAN, ORIGIN_B, None)
        .await;
    let (status, _, err) = ttp
        .call(
            &at_b,
            "/v1/evaluate",
            &batch_request(ORG_B, SCOPE_B, &["R"], 1, "r"),
        )
        .await;
    assert_error(status, &err, 422, "type.notEvaluable");
    // Nothing was charged: the token's whole budget of 2 is still there.
    let (status, _, ok) = ttp
        .call(
            &browser,
            "/v1/evaluate",
            &batch_request(ORG_A, SCOPE_A, &["NGGV", "RGG"], 1, "ok"),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    let (status, _, err) = ttp
        .call(
            &browser,
            "/v1/evaluate",
            &batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "more"),
        )
        .await;
    assert_error(status, &err, 429, "rateLimited");
}

/// `client_credentials` of `client` with `extra` parameters and a fresh key.
async fn backend_token(ttp: &TestTtp, client: Client, extra: &[(&str, &str)]) -> (Answer, EcKey) {
    let key = EcKey::generate().unwrap();
    let assertion = ttp.assertion(client);
    let mut form = vec![
        ("grant_type", GRANT_CLIENT_CREDENTIALS),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    form.extend_from_slice(extra);
    (ttp.token_request(&form, Some(&key), None).await, key)
}

/// The token exchange of provider A's clinician from `origin` with `extra`
/// parameters.
async fn browser_token(ttp: &TestTtp, origin: &str, extra: &[(&str, &str)]) -> (Answer, EcKey) {
    let key = EcKey::generate().unwrap();
    let claims = ttp.subject_claims(Client::ProviderA, CLINICIAN, key.thumbprint(), origin);
    let subject = Client::ProviderA.key().subject_token(&claims).unwrap();
    let mut form = vec![
        ("grant_type", GRANT_TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", TOKEN_TYPE_JWT),
    ];
    form.extend_from_slice(extra);
    (
        ttp.token_request(&form, Some(&key), Some(origin)).await,
        key,
    )
}

/// The claims of an access token, verified with the TTP's public key.
fn verified_claims(token: &str) -> AccessTokenClaims {
    let verifier = josekit::jws::ES256
        .verifier_from_pem(ttp_signing().public_pem.as_bytes())
        .unwrap();
    let (payload, header) = josekit::jws::deserialize_compact(token, &verifier).unwrap();
    assert_eq!(header.token_type(), Some("at+jwt"));
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_tokens_are_for_the_registry_they_name_and_never_for_the_ttp() {
    let key = EcKey::generate().unwrap();
    let ttp = ttp_with_keys(&[&key], "").await;
    let audience_a = format!("{ORG_A}|{SCOPE_A}");
    let validate = [("scope", "validate"), ("audience", audience_a.as_str())];

    // A provider's back end.
    let ((status, headers, answer), dpop) = backend_token(&ttp, Client::ProviderA, &validate).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(answer["scope"], "validate");
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["provider"], "ura:00000001");
    let backend_validate = answer["access_token"].as_str().unwrap().to_owned();
    let c = verified_claims(&backend_validate);
    assert_eq!(c.aud, audience_a);
    assert_eq!(c.iss, ISSUER);
    assert_eq!(c.scope, "validate");
    assert_eq!(c.sub, "ura:00000001");
    assert_eq!(c.client_id, "ura:00000001");
    assert_eq!(c.cnf.jkt, dpop.thumbprint());
    assert!(c.origin.is_none());
    assert!(c.exp - c.iat <= 300 && c.exp > now());
    let backend_validate = Credential {
        token: backend_validate,
        key: dpop,
        origin: None,
        answer,
    };

    // A processor's, for a provider it acts for: the processor acts.
    let mut for_provider = validate.to_vec();
    for_provider.push(("provider", "ura:00000001"));
    let ((status, _, answer), _) = backend_token(&ttp, Client::Processor, &for_provider).await;
    assert_eq!(status, 200, "{answer}");
    let c = verified_claims(answer["access_token"].as_str().unwrap());
    assert_eq!(
        (c.aud.as_str(), c.sub.as_str()),
        (audience_a.as_str(), "ura:00000001")
    );
    assert_eq!(c.act.unwrap().sub, Client::Processor.id());

    // Refused: no audience, a malformed one, an audience with another
    // scope, a recipient the caller does not deliver to (or none at all),
    // and a recipient's credential.
    let audience_b = format!("{ORG_B}|{SCOPE_B}");
    for (client, extra, status, error, code) in [
        (
            Client::ProviderA,
            vec![("scope", "validate")],
            400,
            "invalid_request",
            "token.invalidRequest",
        ),
        (
            Client::ProviderA,
            vec![("scope", "validate"), ("audience", ORG_A)],
            400,
            "invalid_request",
            "token.invalidRequest",
        ),
        (
            Client::ProviderA,
            vec![("audience", audience_a.as_str())],
            400,
            "invalid_request",
            "token.invalidRequest",
        ),
        (
            Client::ProviderA,
            vec![("scope", "evaluate"), ("audience", audience_a.as_str())],
            400,
            "invalid_request",
            "token.invalidRequest",
        ),
        (
            Client::ProviderB,
            vec![("scope", "validate"), ("audience", audience_b.as_str())],
            403,
            "unauthorized_client",
            "provider.notAllowed",
        ),
        (
            Client::ProviderA,
            vec![
                ("scope", "validate"),
                ("audience", "oin:00000001000000001000|other"),
            ],
            403,
            "unauthorized_client",
            "provider.notAllowed",
        ),
        (
            Client::RegistryA,
            validate.to_vec(),
            403,
            "unauthorized_client",
            "caller.notAllowed",
        ),
    ] {
        let ((got, _, body), _) = backend_token(&ttp, client, &extra).await;
        assert_token_error(got, &body, status, error, code);
    }

    // A browser on the provider's validation page.
    let ((status, _, answer), dpop) = browser_token(&ttp, VALIDATION_A, &validate).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["scope"], "validate");
    assert_eq!(answer["provider"], "ura:00000001");
    assert_eq!(
        answer["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let c = verified_claims(answer["access_token"].as_str().unwrap());
    assert_eq!(c.aud, audience_a);
    assert_eq!(c.scope, "validate");
    assert_eq!(c.cnf.jkt, dpop.thumbprint());
    assert_eq!(c.origin.as_deref(), Some(VALIDATION_A));
    assert_eq!(c.act.as_ref().unwrap().sub, CLINICIAN);
    assert!(c.exp - c.iat <= 900);
    let browser_validate = Credential {
        token: answer["access_token"].as_str().unwrap().to_owned(),
        key: dpop,
        origin: Some(VALIDATION_A.to_owned()),
        answer,
    };
    // Not from a form origin; no evaluation token from a validation page;
    // not from another caller's validation page; not without an audience
    // or for a recipient it does not deliver to.
    let wrong_scope = [
        ("scope", "validate"),
        ("audience", "oin:00000001000000001000|other"),
    ];
    for (origin, extra, status, code) in [
        (ORIGIN_A, validate.as_slice(), 403, "origin.notAllowed"),
        (VALIDATION_A, &[], 403, "origin.notAllowed"),
        (VALIDATION_P, validate.as_slice(), 403, "origin.notAllowed"),
        (
            VALIDATION_A,
            &[("scope", "validate")],
            400,
            "token.invalidRequest",
        ),
        (
            VALIDATION_A,
            wrong_scope.as_slice(),
            403,
            "provider.notAllowed",
        ),
        (
            VALIDATION_A,
            &[("scope", "rekey")],
            400,
            "token.invalidScope",
        ),
    ] {
        let ((got, _, body), _) = browser_token(&ttp, origin, extra).await;
        assert_eq!(got, status, "{origin} {extra:?}: {body}");
        assert_eq!(body["code"], code, "{origin} {extra:?}: {body}");
    }
    // The validation page may call the token endpoint (CORS).
    let preflight = ttp
        .client
        .request(reqwest::Method::OPTIONS, ttp.url("/v1/token"))
        .header("origin", VALIDATION_A)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "dpop, content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        VALIDATION_A
    );

    // The TTP accepts a validation token at none of its endpoints.
    let single = eval_request(ORG_A, SCOPE_A, "NGGV", "v");
    let batch = batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "v");
    let rekey = json!({"recipientOrganization": ORG_A, "recipientScope": SCOPE_A,
        "fromVersion": 1, "toVersion": 2, "blindedPseudonyms": []});
    for credential in [&backend_validate, &browser_validate] {
        for (path, body) in [
            ("/oprf/eval", &single),
            ("/v1/evaluate", &batch),
            ("/v1/rekey", &rekey),
        ] {
            let (status, _, err) = ttp.call(credential, path, body).await;
            assert_error(status, &err, 403, "caller.notAllowed");
        }
    }
    // The evaluation tokens of the same callers still evaluate.
    let evaluate = ttp.browser().await;
    let (status, _, answer) = ttp.call(&evaluate, "/v1/evaluate", &batch).await;
    assert_eq!(status, 200, "{answer}");
    let backend = ttp.backend(Client::ProviderA).await;
    assert_eq!(token_claims(&backend).aud, ISSUER);
    assert_eq!(token_claims(&backend).scope, "evaluate");
    // Every issued token is in the verified audit log.
    // Each validation token has its own audit row, with the recipient it is for.
    let conn = rusqlite::Connection::open(ttp.database()).unwrap();
    let issued: Vec<String> = conn
        .prepare(
            "SELECT caller || ' ' || provider || ' ' || person || ' ' || organization FROM audit_rows
             WHERE endpoint = '/v1/token' AND outcome = 'ok' AND organization = ?1",
        )
        .unwrap()
        .query_map([ORG_A], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for row in [
        format!("ura:00000001 ura:00000001  {ORG_A}"),
        format!("{} ura:00000001  {ORG_A}", Client::Processor.id()),
        format!("ura:00000001 ura:00000001 {CLINICIAN} {ORG_A}"),
    ] {
        assert!(issued.contains(&row), "{row} not in {issued:?}");
    }
    let audit = verify_audit(&ttp);
    assert!(audit.rows > 0 && audit.first_bad_row.is_none(), "{audit:?}");
}

/// A well-formed envelope digest (43 base64url characters of 32 bytes).
fn digest_of(label: &str) -> String {
    pseudoform_protocol::registry::reversible_digest(label, "enc", "ct")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_digest_is_signed_into_its_records_claims_uncharged() {
    let key = EcKey::generate().unwrap();
    let ttp = ttp_with_keys(
        &[&key],
        "[budgets]\nbrowser_token = { per_minute = 5, per_day = 5 }\n",
    )
    .await;
    let browser = ttp.browser().await;
    // Two records: the first with a digest, the second without.
    let mut body = batch_request(ORG_A, SCOPE_A, &["NGGV", "RGG"], 2, "rev");
    let digest = digest_of("record-0");
    body["records"][0]["reversible"] = json!(digest);
    let (status, _, answer) = ttp.call(&browser, "/v1/evaluate", &body).await;
    assert_eq!(status, 200, "{answer}");
    let (_, first) = open_jwe(answer["records"][0]["jwe"].as_str().unwrap(), true);
    assert_eq!(first["reversible"], digest);
    assert_eq!(first["provider"], Client::ProviderA.id());
    assert_eq!(first["evaluations"].as_array().unwrap().len(), 2);
    let (_, second) = open_jwe(answer["records"][1]["jwe"].as_str().unwrap(), true);
    assert!(second.get("reversible").is_none(), "{second}");

    // Refused before any budget: a digest of the wrong form (422), and one
    // for a recipient without R (403), each naming the member.
    for bad in [
        json!("too-short"),
        json!(format!("{digest}=")),
        json!(digest.replace(|c: char| c.is_ascii_alphabetic(), "+")),
        json!(42),
    ] {
        let mut body = batch_request(ORG_A, SCOPE_A, &["NGGV"], 2, "bad");
        body["records"][1]["reversible"] = bad.clone();
        let (status, _, err) = ttp.call(&browser, "/v1/evaluate", &body).await;
        assert_error(status, &err, 422, "request.invalid");
        assert_eq!(err["field"], "records[1].reversible", "{bad}");
    }
    let at_b = ttp
        .browser_for(Client::ProviderA, CLINICIAN, ORIGIN_B, None)
        .await;
    let mut body = batch_request(ORG_B, SCOPE_B, &["NGGV"], 1, "b");
    body["records"][0]["reversible"] = json!(digest);
    let (status, _, err) = ttp.call(&at_b, "/v1/evaluate", &body).await;
    assert_error(status, &err, 403, "type.notAllowed");
    assert_eq!(err["field"], "records[0].reversible");
    // The token's budget is 5 evaluations: the first batch spent 4 (the
    // digest nothing), the refused ones nothing, so one more fits, and no
    // second one.
    let (status, _, ok) = ttp
        .call(
            &browser,
            "/v1/evaluate",
            &batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "last"),
        )
        .await;
    assert_eq!(status, 200, "{ok}");
    let (status, _, err) = ttp
        .call(
            &browser,
            "/v1/evaluate",
            &batch_request(ORG_A, SCOPE_A, &["NGGV"], 1, "over"),
        )
        .await;
    assert_error(status, &err, 429, "rateLimited");
}
