//! The registry's RSA private keys and the decryption of the TTP's compact
//! JWEs.
//!
//! Accepted: `alg` `RSA-OAEP-256` (pseudoform's TTP default) or `RSA-OAEP`
//! (SHA-1, what the national service uses), `enc` `A256GCM`, no `zip`, no
//! `crit`. Before any cryptography sees a JWE, [`KeyRing::decrypt`] checks
//! its five parts ([`check_parts`]): each canonical unpadded base64url, the
//! header a JSON object whose `alg`, `enc`, `kid`, `cty` and `typ` are
//! strings, the IV 12 bytes, the tag 16, the ciphertext not empty, and the
//! encrypted key as long as the modulus of the key that is to open it — so
//! that no crafted part reaches an assertion of the crypto libraries. The key is selected by the JWE's `kid` (the RFC 7638 thumbprint of
//! the public key unless the configuration names another), so that keys can
//! rotate: the registry keeps the old key while JWEs made for it may still
//! arrive. A JWE without `kid` is tried against every key.
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

    /// Decrypts a compact JWE made for one of our keys; returns the payload.
    pub fn decrypt(&self, compact: &str) -> Result<Zeroizing<Vec<u8>>, JweError> {
        let parts = check_parts(compact)?;
        let header = protected_header(compact)?;
        let alg = header
            .get("alg")
            .and_then(|v| v.as_str())
            .ok_or(JweError::UnsupportedAlgorithm)?;
        let enc = header
            .get("enc")
            .and_then(|v| v.as_str())
            .ok_or(JweError::UnsupportedAlgorithm)?;
        if enc != JWE_ENC_A256GCM
            || !(alg == JWE_ALG_RSA_OAEP_256 || alg == JWE_ALG_RSA_OAEP)
            || header.contains_key("zip")
            || header.contains_key("crit")
        {
            return Err(JweError::UnsupportedAlgorithm);
        }
        let candidates: Vec<&RegistryKey> = match header.get("kid") {
            Some(serde_json::Value::String(kid)) => {
                self.keys.iter().filter(|k| &k.kid == kid).collect()
            }
            Some(_) => return Err(JweError::Undecryptable),
            None => self.keys.iter().collect(),
        };
        for key in candidates {
            if parts.encrypted_key_bytes != key.modulus_bytes {
                continue;
            }
            let decrypter = if alg == JWE_ALG_RSA_OAEP_256 {
                &key.oaep256
            } else {
                &key.oaep
            };
            if let Ok((payload, _)) = josekit::jwe::deserialize_compact(compact, decrypter) {
                return Ok(Zeroizing::new(payload));
            }
        }
        Err(JweError::Undecryptable)
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
        let kid = str_of("kid").ok_or(SignatureError::BadSignature)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(SignatureError::BadSignature)?;
        let (payload, _) = josekit::jws::deserialize_compact(text, &key.verifier)
            .map_err(|_| SignatureError::BadSignature)?;
        Ok(Plaintext::Signed(Zeroizing::new(payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_garbage() {
        let ring = KeyRing::new();
        assert_eq!(ring.decrypt("a.b.c"), Err(JweError::Undecryptable));
        assert_eq!(ring.decrypt("....."), Err(JweError::Undecryptable));
        assert_eq!(ring.decrypt("a.b.c.d.e.f"), Err(JweError::Undecryptable));
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
            ring.decrypt(&format!("{header}.{rest}")),
            Err(JweError::UnsupportedAlgorithm)
        );
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A128GCM"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}")),
            Err(JweError::UnsupportedAlgorithm)
        );
        let header =
            Base64UrlUnpadded::encode_string(br#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF"}"#);
        assert_eq!(
            ring.decrypt(&format!("{header}.{rest}")),
            Err(JweError::UnsupportedAlgorithm)
        );
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
