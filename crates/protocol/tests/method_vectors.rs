//! The hand-over vectors of the published method (`docs/vectors/method-v1.json`,
//! method §5.5) against this crate: the temporary pseudonym's encoding and the
//! RFC 7638 thumbprints that are the default `kid`s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64ct::{Base64UrlUnpadded, Encoding};
use pseudoform_protocol::jwk::{ec_thumbprint, rsa_thumbprint};
use pseudoform_protocol::package::TemporaryPseudonym;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vectors {
    temporary_pseudonyms: Vec<PackageVector>,
    jwk_thumbprints: Vec<ThumbprintVector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PackageVector {
    evaluated_output: String,
    blind_factor: String,
    temporary_pseudonym: String,
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThumbprintVector {
    kty: String,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    kid: String,
    #[allow(dead_code)]
    note: Option<String>,
}

fn load() -> Vectors {
    serde_json::from_str(include_str!("../../../docs/vectors/method-v1.json")).unwrap()
}

fn bytes(member: &Option<String>) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(member.as_deref().expect("member present")).unwrap()
}

#[test]
fn temporary_pseudonym_vectors() {
    let v = load();
    assert!(!v.temporary_pseudonyms.is_empty());
    for case in &v.temporary_pseudonyms {
        let package = TemporaryPseudonym {
            evaluated_output: case.evaluated_output.clone(),
            blind_factor: case.blind_factor.clone(),
        };
        assert_eq!(package.encode(), case.temporary_pseudonym);
        assert_eq!(
            TemporaryPseudonym::decode(&case.temporary_pseudonym),
            Ok(package)
        );
        // Padded base64url: the unpadded text is refused.
        let unpadded = case.temporary_pseudonym.trim_end_matches('=');
        if unpadded.len() != case.temporary_pseudonym.len() {
            assert!(TemporaryPseudonym::decode(unpadded).is_err());
        }
    }
}

#[test]
fn thumbprint_vectors() {
    let v = load();
    assert!(v.jwk_thumbprints.iter().any(|c| c.kty == "RSA"));
    assert!(v.jwk_thumbprints.iter().any(|c| c.kty == "EC"));
    for case in &v.jwk_thumbprints {
        let got = match case.kty.as_str() {
            "RSA" => rsa_thumbprint(&bytes(&case.n), &bytes(&case.e)),
            "EC" => ec_thumbprint(
                case.crv.as_deref().unwrap(),
                &bytes(&case.x),
                &bytes(&case.y),
            ),
            other => panic!("unknown kty {other}"),
        };
        assert_eq!(got, case.kid, "{} key", case.kty);
    }
}
