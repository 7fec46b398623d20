//! Fixtures the server targets share: a registry key pair, a TTP signing
//! key pair and a valid JWE made with them, built once per process.

#![allow(dead_code)]

use std::sync::OnceLock;

use josekit::jwe::JweHeader;
use josekit::jws::JwsHeader;

pub const ORG: &str = "oin:00000001000000001000";
pub const SCOPE: &str = "kwaliteitsregistratie-a";
pub const TOKEN: &str = "fuzz-token-0123456789";
/// The static token of the recipient (re-keying) in `ttp_request`.
pub const REKEY_TOKEN: &str = "fuzz-rekey-token-0123456789";

pub struct Fixture {
    pub rsa_private_pem: Vec<u8>,
    pub rsa_public_pem: Vec<u8>,
    pub signing_private_pem: Vec<u8>,
    pub signing_public_pem: Vec<u8>,
    pub signing_kid: String,
    /// A JWE the registry accepts (its claims expire in 2100).
    pub valid_jwe: String,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let rsa_private_pem = rsa.private_key_to_pem().unwrap();
        let rsa_public_pem = rsa.public_key_to_pem().unwrap();
        let signing_private_pem = pseudoform_ttp::signing::generate_pem().unwrap().to_vec();
        let signing = pseudoform_ttp::signing::SigningKey::from_pem(&signing_private_pem).unwrap();
        let signing_public_pem = signing.public_pem().as_bytes().to_vec();
        let signing_kid = signing.kid().to_owned();
        let claims = serde_json::json!({
            "subject": "pseudonym:eval:4sHv9XqKz2cB0kC0pS3Ir6dYjHCWbNUu2mJ3wQmJ5QI=",
            "aud": ORG, "scope": SCOPE, "version": "1.0.0",
            "iat": 4102444700i64, "exp": 4102444800i64,
            "extra_versions": {}, "jti": "00112233445566778899aabbccddeeff",
            "key_version": 1, "pseudonym_type": "NGGV"
        });
        let mut jws_header = JwsHeader::new();
        jws_header.set_key_id(&signing_kid);
        jws_header.set_token_type("JWT");
        let signer = josekit::jws::ES256
            .signer_from_pem(&signing_private_pem)
            .unwrap();
        let jws = josekit::jws::serialize_compact(
            serde_json::to_vec(&claims).unwrap().as_slice(),
            &jws_header,
            &signer,
        )
        .unwrap();
        let mut header = JweHeader::new();
        header.set_content_encryption("A256GCM");
        header.set_content_type("JWT");
        // The registry requires a kid of one of its keys: the thumbprint.
        let key = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap();
        header.set_key_id(pseudoform_registry::jwe::thumbprint_of_key(&key).unwrap());
        let encrypter = josekit::jwe::RSA_OAEP_256
            .encrypter_from_pem(&rsa_public_pem)
            .unwrap();
        let valid_jwe =
            josekit::jwe::serialize_compact(jws.as_bytes(), &header, &encrypter).unwrap();
        Fixture {
            rsa_private_pem,
            rsa_public_pem,
            signing_private_pem,
            signing_public_pem,
            signing_kid,
            valid_jwe,
        }
    })
}
