//! The provider side of validation requests, as the registry tests need it:
//! TTP-like validate tokens (`at+jwt`, signed by the test TTP's signing key
//! or another), their DPoP proofs, reversible envelopes of the right shape
//! and record submissions that carry one.
//!
//! The envelopes here are random bytes of the shape of an HPKE ciphertext:
//! the registry only checks shapes and stores them opaque; opening them is
//! the provider page's (tested in the browser tests).

use pseudoform_core::oprf::Blind;
use pseudoform_protocol::auth::{AccessTokenClaims, Act, Cnf, TYP_ACCESS_TOKEN};
use pseudoform_protocol::client::EcKey;
use pseudoform_protocol::registry::{
    ReversibleEnvelope, Submission, REVERSIBLE_ENC_BYTES, REVERSIBLE_TYPE,
};
use serde_json::Value;

use crate::jose::{jwe, oaep256};
use crate::keys::{recipient_a, ttp_signing, SigningKey};
use crate::registry::{jti, record_claims, record_submission};
use crate::ttp::{CLINICIAN, ORG_A, SCOPE_A};
use crate::vectors::{blind_vector, random_blind, server_key_v1, subject, vector};

/// Provider A (`ura:00000001`), the test registry's demo provider.
pub const PROVIDER_A: &str = "ura:00000001";
/// Provider B (`ura:00000002`).
pub const PROVIDER_B: &str = "ura:00000002";
/// The origin of provider A's validation page in the tests.
pub const VALIDATION_ORIGIN: &str = "http://127.0.0.1:8490";
/// The public URL the test registry is configured with (proofs name it).
pub const REGISTRY_PUBLIC_URL: &str = "https://registratie-a.example.nl";
/// The issuer the test registry expects (its `ttp_url` without `/`).
pub const TTP_ISSUER: &str = "http://127.0.0.1:9";

/// Random bytes.
fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).unwrap();
    bytes
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(bytes)
}

/// A reversible envelope of the right shape (random `kid`, an `enc`
/// starting 0x04, a `ct` of 40 bytes).
pub fn envelope() -> ReversibleEnvelope {
    let mut enc = random(REVERSIBLE_ENC_BYTES);
    enc[0] = 4;
    ReversibleEnvelope {
        r#type: REVERSIBLE_TYPE.into(),
        kid: b64(&random(32)),
        enc: b64(&enc),
        ct: b64(&random(40)),
    }
}

/// A record JWE for registry A of the vectors of `types` whose claims name
/// `provider`, and its blinds.
pub fn record_of(provider: &str, types: &[&'static str]) -> (String, Vec<(&'static str, Blind)>) {
    record_claiming(provider, types, None)
}

/// [`record_of`] whose TTP-signed claims carry `reversible` (an envelope
/// digest), as the TTP signs the request's.
pub fn record_claiming(
    provider: &str,
    types: &[&'static str],
    reversible: Option<&str>,
) -> (String, Vec<(&'static str, Blind)>) {
    let k1 = server_key_v1();
    let blinds: Vec<(&str, Blind)> = types.iter().map(|t| (*t, random_blind())).collect();
    let evaluations: Vec<(&str, String)> = blinds
        .iter()
        .map(|(t, r)| (*t, subject(&k1, &blind_vector(&vector(t), r))))
        .collect();
    let mut claims = record_claims(&evaluations);
    claims["provider"] = Value::from(provider);
    if let Some(digest) = reversible {
        claims["reversible"] = Value::from(digest);
    }
    (jwe(&claims, oaep256(), recipient_a()), blinds)
}

/// A record submission of `provider` (NGGV and RGG) with `reversible`,
/// whose record's claims carry its digest (as the browser asks the TTP).
pub fn submission_of(provider: &str, reversible: Option<ReversibleEnvelope>) -> Submission {
    let claimed = reversible.as_ref().map(ReversibleEnvelope::digest);
    submission_claiming(provider, reversible, claimed.as_deref())
}

/// [`submission_of`] whose record's claims carry `claimed` as the envelope
/// digest, whatever `reversible` is (an unbound or stripped envelope).
pub fn submission_claiming(
    provider: &str,
    reversible: Option<ReversibleEnvelope>,
    claimed: Option<&str>,
) -> Submission {
    let (record, blinds) = record_claiming(provider, &["NGGV", "RGG"], claimed);
    let refs: Vec<(&str, &Blind)> = blinds.iter().map(|(t, r)| (*t, r)).collect();
    Submission {
        reversible,
        ..record_submission(&record, &refs, &[("diagnose", "C50.9")])
    }
}

/// The claims of a validate token of `provider` for registry A, bound to
/// `dpop`, valid 300 s from now.
pub fn validate_claims(provider: &str, dpop: &EcKey) -> AccessTokenClaims {
    let now = pseudoform_protocol::unix_now();
    AccessTokenClaims {
        iss: TTP_ISSUER.into(),
        aud: format!("{ORG_A}|{SCOPE_A}"),
        sub: provider.into(),
        client_id: provider.into(),
        act: Some(Act::of(CLINICIAN)),
        cnf: Cnf {
            jkt: dpop.thumbprint().to_owned(),
        },
        origin: None,
        scope: "validate".into(),
        iat: now,
        exp: now + 300,
        jti: jti(),
    }
}

/// An access token (`typ` `at+jwt`, ES256) of `claims` signed by `key`.
pub fn sign_access_token(claims: &AccessTokenClaims, key: &SigningKey) -> String {
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type(TYP_ACCESS_TOKEN);
    header.set_key_id(&key.kid);
    let signer = josekit::jws::ES256
        .signer_from_pem(key.private_pem.as_bytes())
        .unwrap();
    josekit::jws::serialize_compact(&serde_json::to_vec(claims).unwrap(), &header, &signer).unwrap()
}

/// A provider calling the registry: its DPoP key and validate token.
#[derive(Debug)]
pub struct ProviderCaller {
    /// The DPoP key.
    pub key: EcKey,
    /// The validate token.
    pub token: String,
}

impl ProviderCaller {
    /// `provider` with a fresh key and a validate token of the test TTP.
    pub fn new(provider: &str) -> Self {
        Self::with_claims(|key| validate_claims(provider, key))
    }

    /// A caller whose token has the claims `claims(key)`, signed by the
    /// test TTP's key.
    pub fn with_claims(claims: impl FnOnce(&EcKey) -> AccessTokenClaims) -> Self {
        let key = EcKey::generate().unwrap();
        let token = sign_access_token(&claims(&key), ttp_signing());
        ProviderCaller { key, token }
    }

    /// `Authorization` and `DPoP` for `method` on the registry's `path`
    /// (named under [`REGISTRY_PUBLIC_URL`]).
    pub fn headers(&self, method: &str, path: &str) -> [(String, String); 2] {
        let url = format!("{REGISTRY_PUBLIC_URL}{path}");
        let proof = self
            .key
            .dpop_proof(
                method,
                &url,
                Some(&self.token),
                pseudoform_protocol::unix_now(),
            )
            .unwrap();
        [
            ("authorization".into(), format!("DPoP {}", self.token)),
            ("dpop".into(), proof),
        ]
    }
}
