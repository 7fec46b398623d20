//! Test keys, generated once per test binary: the recipients' RSA key
//! pairs, P-256 signing keys, and the TTP callers' P-256 client keys, as
//! PEM with their `kid`s.

use std::sync::OnceLock;

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

/// An RSA key pair (2048 bits) as PEM, with its `kid`: the RFC 7638
/// thumbprint of its public key.
#[derive(Clone, Debug)]
pub struct RsaKey {
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// SPKI PEM of the public key.
    pub public_pem: String,
    /// The RFC 7638 thumbprint.
    pub kid: String,
}

fn rsa_key() -> RsaKey {
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    RsaKey {
        private_pem: String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        public_pem: String::from_utf8(key.public_key_to_pem().unwrap()).unwrap(),
        kid: pseudoform_registry::jwe::thumbprint_of_key(&key).unwrap(),
    }
}

/// The RSA keys of the tests, each made on first use.
static RSA_KEYS: [OnceLock<RsaKey>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];

/// The key of recipient A: the registry of the registry tests.
pub fn recipient_a() -> &'static RsaKey {
    RSA_KEYS[0].get_or_init(rsa_key)
}

/// The key of recipient B; to registry A, a stranger's key.
pub fn recipient_b() -> &'static RsaKey {
    RSA_KEYS[1].get_or_init(rsa_key)
}

/// Registry A's second key, as after a rotation of its key.
pub fn rotated_a() -> &'static RsaKey {
    RSA_KEYS[2].get_or_init(rsa_key)
}

/// A P-256 signing key as PEM, with its `kid` (the RFC 7638 thumbprint, as
/// a registry computes it when it pins the key).
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// PKCS#8 PEM of the private key.
    pub private_pem: String,
    /// SPKI PEM of the public key.
    pub public_pem: String,
    /// The RFC 7638 thumbprint.
    pub kid: String,
}

fn signing_key() -> SigningKey {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let public_pem = String::from_utf8(key.public_key_to_pem().unwrap()).unwrap();
    let kid = pseudoform_registry::jwe::SignatureKeys::new()
        .add_pem(public_pem.as_bytes())
        .unwrap();
    SigningKey {
        private_pem: String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        public_pem,
        kid,
    }
}

/// The signing keys of the tests, each made on first use.
static SIGNING_KEYS: [OnceLock<SigningKey>; 2] = [OnceLock::new(), OnceLock::new()];

/// The TTP's signing key, which the test registries pin.
pub fn ttp_signing() -> &'static SigningKey {
    SIGNING_KEYS[0].get_or_init(signing_key)
}

/// Another P-256 key, which nobody pins.
pub fn forger_signing() -> &'static SigningKey {
    SIGNING_KEYS[1].get_or_init(signing_key)
}

/// The client keys of the test TTP's callers (PKCS#8 PEM), each made on
/// first use: provider A, provider B, the processor, registry A, and a
/// stranger's key that no caller has.
static CLIENT_KEYS: [OnceLock<String>; 5] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

/// The PEM private key of client key `i` (see [`CLIENT_KEYS`]).
pub fn client_key_pem(i: usize) -> &'static str {
    CLIENT_KEYS[i].get_or_init(|| {
        String::from_utf8(
            pseudoform_protocol::client::generate_pem()
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    })
}

/// Client key `i` as a signing key.
pub fn client_key(i: usize) -> pseudoform_protocol::client::EcKey {
    pseudoform_protocol::client::EcKey::from_pem(client_key_pem(i).as_bytes()).unwrap()
}
