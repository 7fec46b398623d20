//! Compact JWEs to a recipient's RSA public key: `RSA-OAEP-256` (default) or
//! `RSA-OAEP`, content encryption `A256GCM`, protected header with the
//! recipient key's `kid` — the format of the national reference service —
//! and `cty: JWT`: the plaintext is the TTP's compact JWS of the claims
//! ([`crate::signing`]), a nested JWT (RFC 7519 §5.2). RSA is OpenSSL's
//! (through `josekit`).

use anyhow::{anyhow, Context};
use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jwe::alg::rsaes::RsaesJweEncrypter;
use josekit::jwe::{self, JweHeader};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use pseudoform_protocol::{JSON_CONTENT, JWE_ALG_RSA_OAEP_256, JWE_ENC_A256GCM, NESTED_JWT};

use crate::config::JweAlg;
use crate::signing::{SigningKey, TYP_RECIPIENT_KEY};

/// A recipient's public key, ready to encrypt.
pub struct RecipientKey {
    encrypter: RsaesJweEncrypter,
    header: JweHeader,
    kid: String,
    alg: JweAlg,
    /// Whether the plaintext is the bare claims (national profile).
    national: bool,
    /// The modulus and exponent, big-endian (for the published JWK).
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The RSA public key of a PEM text (SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY`).
fn parse_rsa_public(pem: &[u8]) -> anyhow::Result<Rsa<openssl::pkey::Public>> {
    if let Ok(key) = PKey::public_key_from_pem(pem) {
        return key.rsa().context("the public key is not an RSA key");
    }
    Rsa::public_key_from_pem_pkcs1(pem).context("not a PEM RSA public key")
}

/// The RFC 7638 JWK thumbprint (SHA-256, unpadded base64url) of an RSA
/// public key given as PEM.
pub fn rsa_thumbprint(pem: &[u8]) -> anyhow::Result<String> {
    let rsa = parse_rsa_public(pem)?;
    Ok(pseudoform_protocol::jwk::rsa_thumbprint(
        &rsa.n().to_vec(),
        &rsa.e().to_vec(),
    ))
}

impl RecipientKey {
    /// A recipient key from PEM; `kid` defaults to the RFC 7638 thumbprint.
    /// Keys under 2048 bits are refused.
    pub fn from_pem(pem: &[u8], alg: JweAlg, kid: Option<&str>) -> anyhow::Result<Self> {
        let rsa = parse_rsa_public(pem)?;
        if rsa.size() < 256 {
            return Err(anyhow!("the RSA key has fewer than 2048 bits"));
        }
        let (n, e) = (rsa.n().to_vec(), rsa.e().to_vec());
        let spki = PKey::from_rsa(rsa)?.public_key_to_der()?;
        let algorithm = match alg {
            JweAlg::RsaOaep256 => jwe::RSA_OAEP_256,
            JweAlg::RsaOaep => jwe::RSA_OAEP,
        };
        let encrypter = algorithm
            .encrypter_from_der(&spki)
            .map_err(|e| anyhow!("unusable RSA public key: {e}"))?;
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => rsa_thumbprint(pem)?,
        };
        let mut header = JweHeader::new();
        header.set_content_encryption(JWE_ENC_A256GCM);
        header.set_content_type(NESTED_JWT);
        header.set_key_id(&kid);
        Ok(RecipientKey {
            encrypter,
            header,
            kid,
            alg,
            national: false,
            n,
            e,
        })
    }

    /// A recipient key of the national profile: `RSA-OAEP`, and `cty:
    /// application/json` — its JWEs carry the bare claims ([`Self::encrypt`]
    /// is then given the claims' JSON, not a JWS).
    pub fn national_from_pem(pem: &[u8], kid: Option<&str>) -> anyhow::Result<Self> {
        let mut key = RecipientKey::from_pem(pem, JweAlg::RsaOaep, kid)?;
        key.header.set_content_type(JSON_CONTENT);
        key.national = true;
        Ok(key)
    }

    /// Whether its JWEs carry the bare claims (the national profile).
    pub fn is_national(&self) -> bool {
        self.national
    }

    /// The public key as a JWK for encrypting to the recipient in a
    /// browser: `kty` RSA, `n`, `e`, `kid`, `alg` `RSA-OAEP-256`, `use` `enc`.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "n": Base64UrlUnpadded::encode_string(&self.n),
            "e": Base64UrlUnpadded::encode_string(&self.e),
            "kid": self.kid,
            "alg": JWE_ALG_RSA_OAEP_256,
            "use": "enc",
        })
    }

    /// The TTP's statement of this key for the recipient `(organization,
    /// scope)`: the compact JWS (`ES256`, `typ:
    /// pseudoform-recipient-key+jwt`, the signing key's `kid`) of
    /// `{"organization", "scope", "jwk", "iat"}`. A browser verifies it with
    /// the key of `GET /v1/signing-keys` before it encrypts to the key.
    pub fn statement(
        &self,
        organization: &str,
        scope: &str,
        signer: &SigningKey,
    ) -> anyhow::Result<String> {
        let payload = serde_json::json!({
            "organization": organization,
            "scope": scope,
            "jwk": self.public_jwk(),
            "iat": pseudoform_protocol::unix_now(),
        });
        signer.sign_as(TYP_RECIPIENT_KEY, &serde_json::to_vec(&payload)?)
    }

    /// The `kid` written in every JWE.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key-management algorithm.
    pub fn alg(&self) -> JweAlg {
        self.alg
    }

    /// Encrypts `payload` (the compact JWS of the claims, or of a national
    /// key the claims' JSON) into a compact JWE.
    pub fn encrypt(&self, payload: &[u8]) -> anyhow::Result<String> {
        jwe::serialize_compact(payload, &self.header, &self.encrypter)
            .map_err(|e| anyhow!("JWE encryption failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_of_rfc7638_example() {
        // The RSA key of RFC 7638 §3.1, whose thumbprint the RFC gives.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let n =
            openssl::bn::BigNum::from_slice(&Base64UrlUnpadded::decode_vec(n).unwrap()).unwrap();
        let e = openssl::bn::BigNum::from_u32(65537).unwrap();
        let rsa = Rsa::from_public_components(n, e).unwrap();
        let pem = rsa.public_key_to_pem().unwrap();
        assert_eq!(
            rsa_thumbprint(&pem).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let pkcs1 = rsa.public_key_to_pem_pkcs1().unwrap();
        assert_eq!(
            rsa_thumbprint(&pkcs1).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let key = RecipientKey::from_pem(&pem, JweAlg::RsaOaep256, None).unwrap();
        assert_eq!(key.kid(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn encrypts_to_the_key_with_the_national_header() {
        let rsa = Rsa::generate(2048).unwrap();
        let private = PKey::from_rsa(rsa.clone())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let public = rsa.public_key_to_pem().unwrap();
        for (alg, decrypter) in [
            (
                JweAlg::RsaOaep256,
                jwe::RSA_OAEP_256.decrypter_from_pem(&private).unwrap(),
            ),
            (
                JweAlg::RsaOaep,
                jwe::RSA_OAEP.decrypter_from_pem(&private).unwrap(),
            ),
        ] {
            let key = RecipientKey::from_pem(&public, alg, Some("reg-a")).unwrap();
            let token = key.encrypt(b"{\"a\":1}").unwrap();
            let (payload, header) = jwe::deserialize_compact(&token, &decrypter).unwrap();
            assert_eq!(payload, b"{\"a\":1}");
            assert_eq!(header.algorithm(), Some(alg.name()));
            assert_eq!(header.content_encryption(), Some("A256GCM"));
            assert_eq!(header.content_type(), Some("JWT"));
            assert_eq!(header.key_id(), Some("reg-a"));
        }
        // The statement carries the key as a JWK whose thumbprint is the kid.
        let key = RecipientKey::from_pem(&public, JweAlg::RsaOaep, None).unwrap();
        let signer = SigningKey::from_pem(&crate::signing::generate_pem().unwrap()).unwrap();
        let statement = key.statement("oin:1", "s", &signer).unwrap();
        let payload = signer.verify_as(TYP_RECIPIENT_KEY, &statement).unwrap();
        let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(payload["organization"], "oin:1");
        assert_eq!(payload["jwk"]["alg"], "RSA-OAEP-256");
        assert_eq!(payload["jwk"]["use"], "enc");
        let n = Base64UrlUnpadded::decode_vec(payload["jwk"]["n"].as_str().unwrap()).unwrap();
        let e = Base64UrlUnpadded::decode_vec(payload["jwk"]["e"].as_str().unwrap()).unwrap();
        assert_eq!(
            pseudoform_protocol::jwk::rsa_thumbprint(&n, &e),
            payload["jwk"]["kid"].as_str().unwrap()
        );
        let small = Rsa::generate(1024).unwrap().public_key_to_pem().unwrap();
        assert!(RecipientKey::from_pem(&small, JweAlg::RsaOaep256, None).is_err());
    }
}
