//! The TTP's signing key: every JWE's plaintext is a compact JWS (`ES256`,
//! ECDSA P-256 with SHA-256, through OpenSSL) of its claims, so that a
//! registry can tell an evaluation of this TTP from one anybody could build
//! with the registry's public key (a nested JWT, RFC 7519 §5.2). The public
//! key is published at `GET /v1/signing-keys` and pinned by the registries;
//! its `kid` is its RFC 7638 thumbprint.
//!
//! The same key signs, each with its own `typ` so that none passes for
//! another: the access tokens (`at+jwt`), the recipients' published keys
//! (`pseudoform-recipient-key+jwt`) and the audit log's heads
//! (`pseudoform-audit-head+jwt`).
//!
//! The key is a PEM file ([`SigningKey::from_file`]) or a key pair on the
//! PKCS#11 token of `[hsm]` ([`SigningKey::on_token`]), which signs every
//! JWS itself: the private key never leaves it.

use anyhow::{anyhow, bail, Context};
use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jws::alg::ecdsa::EcdsaJwsVerifier;
use josekit::jws::{self, JwsAlgorithm, JwsHeader, JwsSigner};
use josekit::JoseError;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use pseudoform_protocol::jwk::ec_thumbprint;
use pseudoform_protocol::{NESTED_JWT, SIGNATURE_ALG};
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// The curve of the signing key, as a JWK names it.
const CRV: &str = "P-256";

/// `typ` of the JWS over a recipient's public key in `GET /v1/policy`.
pub use pseudoform_protocol::ttp::TYP_RECIPIENT_KEY;

/// `typ` of the JWS of an audit log head.
pub const TYP_AUDIT_HEAD: &str = "pseudoform-audit-head+jwt";

/// The TTP's private signing key, ready to sign.
pub struct SigningKey {
    signer: Box<dyn JwsSigner>,
    verifier: EcdsaJwsVerifier,
    kid: String,
    x: Vec<u8>,
    y: Vec<u8>,
    public_pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A new random P-256 private key as PKCS#8 PEM.
pub fn generate_pem() -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    Ok(Zeroizing::new(key.private_key_to_pem_pkcs8()?))
}

fn p256(key: &PKey<Private>) -> anyhow::Result<EcKey<Private>> {
    let ec = key
        .ec_key()
        .map_err(|_| anyhow!("the signing key is not an EC key"))?;
    if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
        bail!("the signing key is not on curve P-256");
    }
    ec.check_key()
        .map_err(|_| anyhow!("the signing key is invalid"))?;
    Ok(ec)
}

/// An ES256 signer whose private key is on a PKCS#11 token: the token
/// signs the SHA-256 digest of the JWS signing input (`CKM_ECDSA`), and
/// its `r || s` is the JWS signature as RFC 7518 §3.4 lays it out.
#[derive(Clone, Debug)]
struct TokenSigner {
    key: crate::hsm::TokenEcKey,
    kid: String,
}

impl JwsSigner for TokenSigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        &jws::ES256
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    fn signature_len(&self) -> usize {
        64
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(message).into();
        self.key
            .sign_digest(&digest)
            .map_err(JoseError::InvalidSignature)
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

/// The public half of a P-256 key: coordinates, `kid`, PEM and verifier.
struct PublicHalf {
    x: Vec<u8>,
    y: Vec<u8>,
    kid: String,
    public_pem: String,
    verifier: EcdsaJwsVerifier,
}

impl PublicHalf {
    fn of(ec: &EcKey<openssl::pkey::Public>) -> anyhow::Result<Self> {
        let mut ctx = BigNumContext::new()?;
        let (mut x, mut y) = (openssl::bn::BigNum::new()?, openssl::bn::BigNum::new()?);
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)?;
        let (x, y) = (x.to_vec_padded(32)?, y.to_vec_padded(32)?);
        let kid = ec_thumbprint(CRV, &x, &y);
        let key = PKey::from_ec_key(ec.clone())?;
        let public_pem = String::from_utf8(key.public_key_to_pem()?)
            .context("the public key PEM is not text")?;
        let verifier = jws::ES256
            .verifier_from_der(key.public_key_to_der()?)
            .map_err(|e| anyhow!("unusable signing key: {e}"))?;
        Ok(PublicHalf {
            x,
            y,
            kid,
            public_pem,
            verifier,
        })
    }
}

impl SigningKey {
    /// A signing key from a PEM P-256 private key (PKCS#8 or SEC 1).
    pub fn from_pem(pem: &[u8]) -> anyhow::Result<Self> {
        let key = PKey::private_key_from_pem(pem)
            .map_err(|_| anyhow!("the signing key is not a PEM private key"))?;
        let ec = p256(&key)?;
        let public = PublicHalf::of(&EcKey::from_public_key(ec.group(), ec.public_key())?)?;
        let der = Zeroizing::new(key.private_key_to_pkcs8()?);
        let mut signer = jws::ES256
            .signer_from_der(der.as_slice())
            .map_err(|e| anyhow!("unusable signing key: {e}"))?;
        signer.set_key_id(&public.kid);
        Ok(SigningKey::with(Box::new(signer), public))
    }

    /// The key pair labelled `label` on `token`, which signs.
    pub fn on_token(
        token: &std::sync::Arc<crate::hsm::Token>,
        label: &str,
    ) -> anyhow::Result<Self> {
        let key = crate::hsm::TokenEcKey::open(token, label)?;
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let mut ctx = BigNumContext::new()?;
        let point = openssl::ec::EcPoint::from_bytes(&group, key.point(), &mut ctx)
            .map_err(|_| anyhow!("the public signing key {label:?} is not a P-256 point"))?;
        let ec = EcKey::from_public_key(&group, &point)?;
        ec.check_key()
            .map_err(|_| anyhow!("the public signing key {label:?} is invalid"))?;
        let public = PublicHalf::of(&ec)?;
        let signer = TokenSigner {
            key,
            kid: public.kid.clone(),
        };
        let signing = SigningKey::with(Box::new(signer), public);
        // A key pair whose halves do not match would sign what nobody
        // can verify: check once at start-up.
        let probe = signing.sign_as(TYP_AUDIT_HEAD, b"{}")?;
        if signing.verify_as(TYP_AUDIT_HEAD, &probe).is_none() {
            bail!("the signing key pair {label:?} on the token does not verify its own signature");
        }
        Ok(signing)
    }

    /// The signing key of `config`: on the token of `[hsm]`, else the PEM
    /// file `signing_key`.
    pub fn load(config: &crate::TtpConfig) -> anyhow::Result<Self> {
        match (&config.hsm, &config.signing_key) {
            (Some(hsm), _) => {
                let token = crate::hsm::Token::open(hsm)?;
                SigningKey::on_token(&token, &hsm.signing_key_label)
            }
            (None, Some(path)) => SigningKey::from_file(path),
            (None, None) => bail!("no signing key: set signing_key or [hsm]"),
        }
    }

    fn with(signer: Box<dyn JwsSigner>, public: PublicHalf) -> Self {
        SigningKey {
            signer,
            verifier: public.verifier,
            kid: public.kid,
            x: public.x,
            y: public.y,
            public_pem: public.public_pem,
        }
    }

    /// Reads a signing key from a PEM file that only its owner may read.
    pub fn from_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let pem = Zeroizing::new(
            pseudoform_protocol::secret_file::read(path)
                .with_context(|| format!("cannot read signing key {}", path.display()))?,
        );
        SigningKey::from_pem(&pem).with_context(|| format!("signing key {}", path.display()))
    }

    /// The `kid`: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as SPKI PEM, for a registry's `ttp_signing_keys`.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The public key as a JWK (with `kid`, `alg` and `use`).
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": CRV,
            "x": Base64UrlUnpadded::encode_string(&self.x),
            "y": Base64UrlUnpadded::encode_string(&self.y),
            "kid": self.kid,
            "alg": SIGNATURE_ALG,
            "use": "sig",
        })
    }

    /// The compact JWS of `claims` (JSON): protected header `alg`, `kid`,
    /// `typ: JWT`.
    pub fn sign(&self, claims: &[u8]) -> anyhow::Result<String> {
        self.sign_as(NESTED_JWT, claims)
    }

    /// The compact JWS of `payload` with protected header `alg`, `kid` and
    /// `typ`.
    pub fn sign_as(&self, typ: &str, payload: &[u8]) -> anyhow::Result<String> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&self.kid);
        jws::serialize_compact(payload, &header, &*self.signer)
            .map_err(|e| anyhow!("signing failed: {e}"))
    }

    /// The payload of a compact JWS this key signed with `typ`, else `None`.
    pub fn verify_as(&self, typ: &str, token: &str) -> Option<Vec<u8>> {
        let (payload, header) = crate::jose::verify(token, &self.verifier)?;
        (crate::jose::typ_is(&header, typ) && header.key_id() == Some(self.kid.as_str()))
            .then_some(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifiably_with_the_thumbprint_kid() {
        let pem = generate_pem().unwrap();
        let key = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(key.kid().len(), 43);
        let token = key.sign(b"{\"a\":1}").unwrap();
        let verifier = jws::ES256
            .verifier_from_pem(key.public_pem().as_bytes())
            .unwrap();
        let (payload, header) = jws::deserialize_compact(&token, &verifier).unwrap();
        assert_eq!(payload, b"{\"a\":1}");
        assert_eq!(header.algorithm(), Some("ES256"));
        assert_eq!(header.key_id(), Some(key.kid()));
        assert_eq!(header.token_type(), Some("JWT"));
        // Typed tokens verify only as their own type.
        let head = key.sign_as(TYP_AUDIT_HEAD, b"{}").unwrap();
        assert_eq!(key.verify_as(TYP_AUDIT_HEAD, &head).unwrap(), b"{}");
        assert!(key.verify_as(TYP_RECIPIENT_KEY, &head).is_none());
        assert!(key.verify_as(TYP_AUDIT_HEAD, &token).is_none());
        let other = SigningKey::from_pem(&generate_pem().unwrap()).unwrap();
        assert!(other.verify_as(TYP_AUDIT_HEAD, &head).is_none());
        let jwk = key.public_jwk();
        assert_eq!(jwk["kid"], key.kid());
        assert_eq!(jwk["crv"], "P-256");
        // The same key from its SEC 1 form has the same kid.
        let sec1 = PKey::private_key_from_pem(&pem)
            .unwrap()
            .ec_key()
            .unwrap()
            .private_key_to_pem()
            .unwrap();
        assert_eq!(SigningKey::from_pem(&sec1).unwrap().kid(), key.kid());
    }

    #[test]
    fn other_keys_are_refused() {
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(SigningKey::from_pem(&rsa).is_err());
        let p384 = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
        let p384 = PKey::from_ec_key(EcKey::generate(&p384).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(SigningKey::from_pem(&p384).is_err());
        assert!(SigningKey::from_pem(b"not a key").is_err());
    }
}
