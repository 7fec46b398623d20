//! The registry's RSA private keys and the decryption of the TTP's compact
//! JWEs.
//!
//! Accepted: the one `alg` the caller pins ([`JweAlg`]: `RSA-OAEP-256`,
//! pseudoform's default, or `RSA-OAEP`, SHA-1, what the national service
//! uses), `enc` `A256GCM`, no `zip`, no `crit`, and a `kid` naming one of
//! the registry's keys. Before any cryptography sees a JWE,
//! [`KeyRing::check`] checks its five parts ([`check_parts`]): each
//! canonical unpadded base64url, the header a JSON object whose `alg`,
//! `enc`, `kid`, `cty` and `typ` are strings, the IV 12 bytes, the tag 16,
//! the ciphertext not empty — so that no crafted part reaches an assertion
//! of the crypto libraries — then the header, the `kid` and the encrypted
//! key's length (the modulus of that key). Only a [`Checked`] JWE reaches
//! RSA ([`KeyRing::open`]), with exactly one key: one RSA decryption per
//! JWE at most, counted ([`KeyRing::decryptions`]). The key is selected by
//! the JWE's `kid` (the RFC 7638 thumbprint of the public key unless the
//! configuration names another), so that keys can rotate: the registry
//! keeps the old key while JWEs made for it may still arrive.
//!
//! The plaintext of a JWE of the pseudoform TTP is a compact JWS of the
//! claims (a nested JWT, RFC 7519 §5.2), signed with the TTP's P-256 key
//! (`ES256`); [`SignatureKeys`] holds the pinned public keys and verifies it.
//! Without that signature anybody who has the registry's public key could
//! make a JWE of claims `Z = r·N` for a pseudonym `N` they know.

use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jwe::alg::rsaes::RsaesJweDecrypter;
use josekit::jws::alg::ecdsa::EcdsaJwsVerifier;
use openssl::bn::{BigNum, BigNumContext};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use pseudoform_protocol::jwk::rsa_thumbprint;
use pseudoform_protocol::{
    JWE_ALG_RSA_OAEP, JWE_ALG_RSA_OAEP_256, JWE_ENC_A256GCM, NESTED_JWT, SIGNATURE_ALG,
};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Longest protected header accepted, in characters of base64url.
const MAX_HEADER: usize = 4096;
/// Bytes of an `A256GCM` initialisation vector.
pub const IV_BYTES: usize = 12;
/// Bytes of an `A256GCM` authentication tag.
pub const TAG_BYTES: usize = 16;

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM is not an RSA private key.
    #[error("the key is not a PEM RSA private key")]
    NotRsaPrivateKey,
    /// The key is too short (under 2048 bits).
    #[error("the RSA key is shorter than 2048 bits")]
    TooShort,
    /// Two keys have the same `kid`.
    #[error("two registry keys have the same kid")]
    DuplicateKid,
}

/// Why a JWE was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JweError {
    /// Not decryptable with our keys: malformed, tampered or for another
    /// recipient.
    #[error("the JWE cannot be decrypted")]
    Undecryptable,
    /// An algorithm or header parameter this registry refuses.
    #[error("the JWE algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The protected header has no `kid`.
    #[error("the JWE names no key")]
    MissingKid,
    /// The `kid` is none of the registry's keys.
    #[error("the JWE names a key this registry does not have")]
    UnknownKid,
}

/// A JWE key-management algorithm the registry accepts, pinned per use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JweAlg {
    /// `RSA-OAEP-256`: pseudoform's TTP and the browser's blind factors.
    #[default]
    #[serde(rename = "RSA-OAEP-256")]
    RsaOaep256,
    /// `RSA-OAEP` (SHA-1): the national reference service.
    #[serde(rename = "RSA-OAEP")]
    RsaOaep,
}

impl JweAlg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            JweAlg::RsaOaep256 => JWE_ALG_RSA_OAEP_256,
            JweAlg::RsaOaep => JWE_ALG_RSA_OAEP,
        }
    }
}

/// One private key of the registry, with its decrypters for both accepted
/// algorithms.
struct RegistryKey {
    kid: String,
    /// Bytes of the RSA modulus: the length of an encrypted key for it.
    modulus_bytes: usize,
    oaep256: RsaesJweDecrypter,
    oaep: RsaesJweDecrypter,
}

/// The registry's private keys, selected by `kid`.
#[derive(Default)]
pub struct KeyRing {
    keys: Vec<RegistryKey>,
    /// RSA decryptions tried so far.
    decryptions: AtomicU64,
}

/// A compact JWE whose parts, header, `alg` and `kid` passed
/// [`KeyRing::check`], with the one key that is to open it.
pub struct Checked<'a> {
    compact: &'a str,
    key: &'a RegistryKey,
    alg: JweAlg,
    cty: Option<String>,
}

impl<'a> Checked<'a> {
    /// The compact JWE.
    pub fn compact(&self) -> &'a str {
        self.compact
    }

    /// The header's `cty`, if any.
    pub fn cty(&self) -> Option<&str> {
        self.cty.as_deref()
    }
}

impl std::fmt::Debug for Checked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checked")
            .field("kid", &self.key.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids())
            .finish()
    }
}

/// The RFC 7638 thumbprint of the public half of an RSA private key.
pub fn thumbprint_of_key(key: &PKey<Private>) -> Result<String, KeyError> {
    let rsa = key.rsa().map_err(|_| KeyError::NotRsaPrivateKey)?;
    Ok(rsa_thumbprint(&rsa.n().to_vec(), &rsa.e().to_vec()))
}

impl KeyRing {
    /// An empty key ring.
    pub fn new() -> Self {
        KeyRing::default()
    }

    /// Adds a PEM private key (PKCS#8 or PKCS#1). `kid` defaults to the
    /// RFC 7638 thumbprint of its public key. Returns the `kid`.
    pub fn add_pem(&mut self, pem: &[u8], kid: Option<&str>) -> Result<String, KeyError> {
        let key = PKey::private_key_from_pem(pem).map_err(|_| KeyError::NotRsaPrivateKey)?;
        let rsa = key.rsa().map_err(|_| KeyError::NotRsaPrivateKey)?;
        if rsa.size() < 256 {
            return Err(KeyError::TooShort);
        }
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => thumbprint_of_key(&key)?,
        };
        if self.keys.iter().any(|k| k.kid == kid) {
            return Err(KeyError::DuplicateKid);
        }
        let der = Zeroizing::new(
            key.private_key_to_der()
                .map_err(|_| KeyError::NotRsaPrivateKey)?,
        );
        let oaep256 = josekit::jwe::RSA_OAEP_256
            .decrypter_from_der(der.as_slice())
            .map_err(|_| KeyError::NotRsaPrivateKey)?;
        let oaep = josekit::jwe::RSA_OAEP
            .decrypter_from_der(der.as_slice())
            .map_err(|_| KeyError::NotRsaPrivateKey)?;
        let modulus_bytes = usize::try_from(rsa.size()).map_err(|_| KeyError::NotRsaPrivateKey)?;
        self.keys.push(RegistryKey {
            kid: kid.clone(),
            modulus_bytes,
            oaep256,
            oaep,
        });
        Ok(kid)
    }

    /// The `kid`s of the keys, in the order they were added.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Whether the ring has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// RSA decryptions tried so far (each [`KeyRing::open`]).
    pub fn decryptions(&self) -> u64 {
        self.decryptions.load(Ordering::Relaxed)
    }

    /// Checks a compact JWE without any cryptography: its parts
    /// ([`check_parts`]), `alg` the pinned `alg`, `enc` `A256GCM`, no `zip`
    /// or `crit`, a `kid` of one of our keys and an encrypted key as long
    /// as that key's modulus.
    pub fn check<'a>(&'a self, compact: &'a str, alg: JweAlg) -> Result<Checked<'a>, JweError> {
        let parts = check_parts(compact)?;
        let header = protected_header(compact)?;
        let str_of = |name: &str| header.get(name).and_then(|v| v.as_str());
        if str_of("enc") != Some(JWE_ENC_A256GCM)
            || str_of("alg") != Some(alg.name())
            || header.contains_key("zip")
            || header.contains_key("crit")
        {
            return Err(JweError::UnsupportedAlgorithm);
        }
        let kid = str_of("kid").ok_or(JweError::MissingKid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(JweError::UnknownKid)?;
        if parts.encrypted_key_bytes != key.modulus_bytes {
            return Err(JweError::Undecryptable);
        }
        Ok(Checked {
            compact,
            key,
            alg,
            cty: str_of("cty").map(str::to_owned),
        })
    }

    /// Decrypts a checked JWE: one RSA decryption; returns the payload.
    pub fn open(&self, checked: &Checked<'_>) -> Result<Zeroizing<Vec<u8>>, JweError> {
        self.decryptions.fetch_add(1, Ordering::Relaxed);
        let decrypter = match checked.alg {
            JweAlg::RsaOaep256 => &checked.key.oaep256,
            JweAlg::RsaOaep => &checked.key.oaep,
        };
        josekit::jwe::deserialize_compact(checked.compact, decrypter)
            .map(|(payload, _)| Zeroizing::new(payload))
            .map_err(|_| JweError::Undecryptable)
    }

    /// [`KeyRing::check`] and [`KeyRing::open`]: the payload of a compact
    /// JWE made with `alg` for one of our keys.
    pub fn decrypt(&self, compact: &str, alg: JweAlg) -> Result<Zeroizing<Vec<u8>>, JweError> {
        self.open(&self.check(compact, alg)?)
    }
}

/// The lengths of a compact JWE's parts that passed [`check_parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Bytes of the encrypted content key.
    pub encrypted_key_bytes: usize,
    /// Bytes of the ciphertext.
    pub ciphertext_bytes: usize,
}

/// Checks the parts of a compact JWE before any cryptography sees them:
/// five parts, each canonical unpadded base64url; a protected header of at
/// most 4096 characters that is a JSON object whose `alg` and `enc` are
/// strings (and `kid`, `cty`, `typ`, where present); an IV of
/// [`IV_BYTES`], a tag of [`TAG_BYTES`], a ciphertext that is not empty
/// and an encrypted key that is not empty (its length is checked against
/// each key's modulus when the key is tried).
pub fn check_parts(compact: &str) -> Result<Parts, JweError> {
    let bad = JweError::Undecryptable;
    let mut split = compact.split('.');
    let (Some(header), Some(key), Some(iv), Some(ciphertext), Some(tag), None) = (
        split.next(),
        split.next(),
        split.next(),
        split.next(),
        split.next(),
        split.next(),
    ) else {
        return Err(bad);
    };
    if header.len() > MAX_HEADER {
        return Err(bad);
    }
    let decoded_len = |part: &str| {
        Base64UrlUnpadded::decode_vec(part)
            .map(|bytes| bytes.len())
            .map_err(|_| bad)
    };
    let header_bytes = Base64UrlUnpadded::decode_vec(header).map_err(|_| bad)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| bad)?;
    for name in ["alg", "enc"] {
        if !header.get(name).is_some_and(serde_json::Value::is_string) {
            return Err(JweError::UnsupportedAlgorithm);
        }
    }
    for name in ["kid", "cty", "typ"] {
        if header.get(name).is_some_and(|v| !v.is_string()) {
            return Err(bad);
        }
    }
    let encrypted_key_bytes = decoded_len(key)?;
    let ciphertext_bytes = decoded_len(ciphertext)?;
    if encrypted_key_bytes == 0
        || decoded_len(iv)? != IV_BYTES
        || ciphertext_bytes == 0
        || decoded_len(tag)? != TAG_BYTES
    {
        return Err(bad);
    }
    Ok(Parts {
        encrypted_key_bytes,
        ciphertext_bytes,
    })
}

/// The protected header of a compact JWE as a JSON object.
fn protected_header(compact: &str) -> Result<serde_json::Map<String, serde_json::Value>, JweError> {
    first_header(compact, 5).ok_or(JweError::Undecryptable)
}

/// The decoded first part of a compact serialisation of `parts` parts.
fn first_header(compact: &str, parts: usize) -> Option<serde_json::Map<String, serde_json::Value>> {
    if compact.split('.').count() != parts {
        return None;
    }
    let header_b64 = compact.split('.').next()?;
    if header_b64.len() > MAX_HEADER {
        return None;
    }
    let bytes = Base64UrlUnpadded::decode_vec(header_b64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why the signature on decrypted claims was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The plaintext is not a JWS: bare claims, which this registry refuses.
    #[error("the claims are not signed")]
    Unsigned,
    /// A JWS, but not a valid `ES256` signature of a pinned key.
    #[error("the signature on the claims is not valid")]
    BadSignature,
}

/// Why a TTP signing key could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    /// The PEM is not a P-256 public key.
    #[error("the TTP signing key is not a PEM P-256 public key")]
    NotP256PublicKey,
    /// The same key is pinned twice.
    #[error("the same TTP signing key is pinned twice")]
    Duplicate,
}

struct PinnedKey {
    kid: String,
    verifier: EcdsaJwsVerifier,
}

/// The pinned public signing keys of the TTP, selected by `kid`.
#[derive(Default)]
pub struct SignatureKeys {
    keys: Vec<PinnedKey>,
}

impl std::fmt::Debug for SignatureKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureKeys")
            .field("kids", &self.kids())
            .finish()
    }
}

/// What a decrypted plaintext is.
pub enum Plaintext {
    /// The claims of a verified JWS.
    Signed(Zeroizing<Vec<u8>>),
    /// Bare claims (JSON), not signed.
    Unsigned,
}

impl std::fmt::Debug for Plaintext {
    /// Never the claims.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Plaintext::Signed(_) => "Plaintext::Signed(..)",
            Plaintext::Unsigned => "Plaintext::Unsigned",
        })
    }
}

impl SignatureKeys {
    /// No pinned key.
    pub fn new() -> Self {
        SignatureKeys::default()
    }

    /// Pins a PEM (SPKI) P-256 public key; returns its `kid`, the RFC 7638
    /// thumbprint.
    pub fn add_pem(&mut self, pem: &[u8]) -> Result<String, SigningKeyError> {
        let bad = |_| SigningKeyError::NotP256PublicKey;
        let key = PKey::public_key_from_pem(pem).map_err(bad)?;
        let ec = key.ec_key().map_err(bad)?;
        if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(SigningKeyError::NotP256PublicKey);
        }
        ec.check_key().map_err(bad)?;
        let mut ctx = BigNumContext::new().map_err(bad)?;
        let (mut x, mut y) = (BigNum::new().map_err(bad)?, BigNum::new().map_err(bad)?);
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .map_err(bad)?;
        let kid = pseudoform_protocol::jwk::ec_thumbprint(
            "P-256",
            &x.to_vec_padded(32).map_err(bad)?,
            &y.to_vec_padded(32).map_err(bad)?,
        );
        if self.keys.iter().any(|k| k.kid == kid) {
            return Err(SigningKeyError::Duplicate);
        }
        let spki = key.public_key_to_der().map_err(bad)?;
        let verifier = josekit::jws::ES256
            .verifier_from_der(&spki)
            .map_err(|_| SigningKeyError::NotP256PublicKey)?;
        self.keys.push(PinnedKey {
            kid: kid.clone(),
            verifier,
        });
        Ok(kid)
    }

    /// The `kid`s of the pinned keys.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.kid.as_str()).collect()
    }

    /// Whether no key is pinned.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a compact JWS of the TTP that is not inside a JWE (an access
    /// token): `alg` ES256, `typ` equal to `typ` (without case), the `kid`
    /// of a pinned key, no `crit`, a valid signature; gives its payload.
    pub fn verify_typed(&self, jws: &str, typ: &str) -> Result<Vec<u8>, SignatureError> {
        let header = first_header(jws, 3).ok_or(SignatureError::BadSignature)?;
        let str_of = |name: &str| header.get(name).and_then(|v| v.as_str());
        if str_of("alg") != Some(SIGNATURE_ALG)
            || header.contains_key("crit")
            || header.contains_key("b64")
            || !str_of("typ").is_some_and(|t| t.eq_ignore_ascii_case(typ))
        {
            return Err(SignatureError::BadSignature);
        }
        self.payload(jws, str_of("kid"))
    }

    /// The payload of `jws` under the pinned key of `kid`, if its signature
    /// is valid.
    fn payload(&self, jws: &str, kid: Option<&str>) -> Result<Vec<u8>, SignatureError> {
        let kid = kid.ok_or(SignatureError::BadSignature)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(SignatureError::BadSignature)?;
        let (payload, _) = josekit::jws::deserialize_compact(jws, &key.verifier)
            .map_err(|_| SignatureError::BadSignature)?;
        Ok(payload)
    }

    /// Classifies and verifies a decrypted plaintext: a compact JWS whose
    /// header names `alg: ES256` and the `kid` of a pinned key, without
    /// `crit`, with a valid signature, gives its payload; bare JSON claims
    /// are [`Plaintext::Unsigned`]; anything else is a bad signature.
    pub fn verify(&self, plaintext: &[u8]) -> Result<Plaintext, SignatureError> {
        let text = std::str::from_utf8(plaintext).map_err(|_| SignatureError::BadSignature)?;
        let text = text.trim_ascii();
        if text.starts_with('{') {
            return Ok(Plaintext::Unsigned);
        }
        let header = first_header(text, 3).ok_or(SignatureError::BadSignature)?;
        let str_of = |name: &str| header.get(name).and_then(|v| v.as_str());
        if str_of("alg") != Some(SIGNATURE_ALG)
            || header.contains_key("crit")
            || header.contains_key("b64")
            || header
                .get("typ")
                .is_some_and(|t| t.as_str() != Some(NESTED_JWT))
        {
            return Err(SignatureError::BadSignature);
        }
        let payload = self.payload(text, str_of("kid"))?;
        Ok(Plaintext::Signed(Zeroizing::new(payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_garbage() {
        let ring = KeyRing::new();
        let oaep = JweAlg::RsaOaep;
        assert_eq!(ring.decrypt("a.b.c", oaep), Err(JweError::Undecryptable));
        assert_eq!(ring.decrypt(".....", oaep), Err(JweError::Undecryptable));
        assert_eq!(
            ring.decrypt("a.b.c.d.e.f", oaep),
            Err(JweError::Undecryptable)
        );
        // Parts of the right lengths, so that the header decides.
        let rest = format!(
            "{}.{}.{}.{}",
            Base64UrlUnpadded::encode_string(&[1; 256]),
            Base64UrlUnpadded::encode_string(&[2; IV_BYTES]),
            Base64UrlUnpadded::encode_string(&[3; 40]),
            Base64UrlUnpadded::encode_string(&[4; TAG_BYTES]),
        );
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"RSA1_5","enc":"A256GCM"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), oaep),
            Err(JweError::UnsupportedAlgorithm)
        );
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A128GCM"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), oaep),
            Err(JweError::UnsupportedAlgorithm)
        );
        let header =
            Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), oaep),
            Err(JweError::UnsupportedAlgorithm)
        );
        // The pinned alg only; then a kid, one of ours.
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), JweAlg::RsaOaep256),
            Err(JweError::UnsupportedAlgorithm)
        );
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), oaep),
            Err(JweError::MissingKid)
        );
        let header = Base64UrlUnpadded::encode_string(
            br#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"other"}"#,
        );
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}"), oaep),
            Err(JweError::UnknownKid)
        );
        assert_eq!(ring.decryptions(), 0, "nothing reached RSA");
    }

    #[test]
    fn parts_are_checked_before_any_crypto() {
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
        let part = |n: usize| Base64UrlUnpadded::encode_string(&vec![7u8; n]);
        let jwe =
            |key: &str, iv: &str, ct: &str, tag: &str| format!("{header}.{key}.{iv}.{ct}.{tag}");
        let good = jwe(&part(256), &part(12), &part(40), &part(16));
        assert_eq!(
            check_parts(&good),
            Ok(Parts {
                encrypted_key_bytes: 256,
                ciphertext_bytes: 40
            })
        );
        for bad in [
            jwe(&part(256), "", &part(40), &part(16)),
            jwe(&part(256), &part(11), &part(40), &part(16)),
            jwe(&part(256), &part(13), &part(40), &part(16)),
            jwe(&part(256), &part(12), &part(40), &part(15)),
            jwe(&part(256), &part(12), &part(40), ""),
            jwe(&part(256), &part(12), "", &part(16)),
            jwe("", &part(12), &part(40), &part(16)),
            jwe(&part(256), &format!("{}=", part(12)), &part(40), &part(16)),
            jwe(&part(256), "AAAAAAAAAAAAAAA*", &part(40), &part(16)),
            // 17 characters cannot be base64url of whole bytes.
            jwe(&part(256), "AAAAAAAAAAAAAAAAA", &part(40), &part(16)),
        ] {
            assert_eq!(check_parts(&bad), Err(JweError::Undecryptable), "{bad}");
        }
        let kid_number =
            Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":7}"#);
        assert_eq!(
            check_parts(&format!(
                "{kid_number}.{}.{}.{}.{}",
                part(256),
                part(12),
                part(40),
                part(16)
            )),
            Err(JweError::Undecryptable)
        );
        let alg_number = Base64UrlUnpadded::encode_string(br#"{"alg":1,"enc":"A256GCM"}"#);
        assert_eq!(
            check_parts(&format!(
                "{alg_number}.{}.{}.{}.{}",
                part(256),
                part(12),
                part(40),
                part(16)
            )),
            Err(JweError::UnsupportedAlgorithm)
        );
    }
}
