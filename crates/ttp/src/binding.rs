//! Provider binding of MRN pseudonyms: a local patient number means
//! something only at its provider, so the TTP evaluates type `MRN` with
//! `k_v · t_p`, where `t_p` is a scalar only the TTP can derive for the
//! provider `p` of the caller's credential (never of the request):
//!
//! `t_p = OS2IP(HKDF-SHA512(ikm = binding key, salt = none,
//!        info = "pseudoform-ttp/provider-binding/v1|{org}|{scope}|{p}", 64 bytes)) mod ℓ`
//!
//! The binding key is 32 random bytes per key domain, made with the domain,
//! stored encrypted at rest like the key versions, and never rotated, so
//! re-keying (`k'/k`) moves MRN pseudonyms like any other. It must be
//! secret: were `t_p` public, a client of provider B could de-blind its own
//! evaluation `k·t_B·H(x)` with `r·t_B/t_A` and obtain provider A's
//! pseudonym `k·t_A·H(x)` of a patient number it guesses.

use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use pseudoform_core::oprf::ServerKey;
use sha2::Sha512;
use zeroize::Zeroizing;

/// The prefix of the HKDF info of a provider factor.
pub const INFO: &str = "pseudoform-ttp/provider-binding/v1";

/// Length of a binding key, in bytes.
pub const BINDING_KEY_BYTES: usize = 32;

/// The provider factor `t_p` of `provider` in the domain
/// `(organization, scope)` under `binding_key`.
pub fn provider_factor(
    binding_key: &[u8; BINDING_KEY_BYTES],
    organization: &str,
    scope: &str,
    provider: &str,
) -> Zeroizing<Scalar> {
    let info = format!("{INFO}|{organization}|{scope}|{provider}");
    let mut wide = Zeroizing::new([0u8; 64]);
    // 64 bytes is far below HKDF-SHA512's limit of 255·64: never fails.
    let _ = Hkdf::<Sha512>::new(None, binding_key).expand(info.as_bytes(), wide.as_mut());
    Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide))
}

/// `k·t`: the key that evaluates MRN for one provider.
pub fn bind(key: &ServerKey, factor: &Scalar) -> anyhow::Result<ServerKey> {
    let k: Option<Scalar> = Scalar::from_canonical_bytes(*key.to_bytes()).into();
    let k = Zeroizing::new(k.ok_or_else(|| anyhow::anyhow!("a key is not a canonical scalar"))?);
    let bound = Zeroizing::new((*k * factor).to_bytes());
    ServerKey::from_bytes(&bound).map_err(|_| anyhow::anyhow!("a bound key is zero"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_differ_per_provider_domain_and_key() {
        let key = [7u8; 32];
        let a = provider_factor(&key, "oin:1", "s", "ura:00000001");
        let b = provider_factor(&key, "oin:1", "s", "ura:00000002");
        let other_scope = provider_factor(&key, "oin:1", "t", "ura:00000001");
        let other_key = provider_factor(&[8u8; 32], "oin:1", "s", "ura:00000001");
        assert_ne!(*a, *b);
        assert_ne!(*a, *other_scope);
        assert_ne!(*a, *other_key);
        assert_eq!(*a, *provider_factor(&key, "oin:1", "s", "ura:00000001"));
        // The info is unambiguous: organisations (`oin:…`), scopes and
        // providers (`ura:…`) never hold a `|` (the configuration refuses it).
        assert!(pseudoform_core::Recipient::new("oin:00000001000000001000", "a|b").is_err());
        assert!(!pseudoform_protocol::is_ura("ura:0000|001"));
        let k = ServerKey::from_uniform_bytes(&[3; 64]).unwrap();
        let bound = bind(&k, &a).unwrap();
        let element = pseudoform_core::oprf::blind(
            b"x",
            &pseudoform_core::oprf::Blind::from_uniform_bytes(&[5; 64]).unwrap(),
        )
        .unwrap();
        assert_ne!(
            bound.evaluate(&element).unwrap(),
            k.evaluate(&element).unwrap()
        );
    }
}
