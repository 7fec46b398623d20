//! Type `R`: the reversible local patient number.
//!
//! Beside the ten Wkz types a registry may ask for `R`: the supplying
//! provider's local patient number, encrypted in the browser to that
//! provider's current public key, so that the provider (and no one else: not
//! the registry, not the TTP, not another provider) can go back from a record
//! to its patient when the registry asks for validation. It is no OPRF type
//! and never reaches the TTP's evaluation; it is not in
//! [`PseudonymType::ALL`](crate::PseudonymType::ALL).
//!
//! - Plaintext: MRN's canonical input `provider|mrn` (UTF-8), the fields
//!   [`reversible_fields`].
//! - Ciphertext: RFC 9180 HPKE, base mode, suite [`REVERSIBLE_SUITE`]
//!   (DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), `info`
//!   [`REVERSIBLE_INFO`], `aad` [`reversible_aad`]: the recipient and the key
//!   id, so that a ciphertext moved to another registry or key does not open.
//! - Binding to its record: the browser seals `R` before it asks the TTP for
//!   the evaluations and sends the envelope's digest [`reversible_digest`]
//!   with that record; the TTP signs the digest into the record's claims
//!   (`reversible`). The provider's page checks that signature and the digest
//!   before it shows a number, so no one without a TTP signature made on the
//!   provider's own request can forge an `R` or move one to another record.
//!
//! The encryption itself is WebCrypto in the browser module (`reversible.js`);
//! this module holds the names, the associated data and the digest, once.

use alloc::string::String;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

use crate::{Field, PseudonymType};

/// The code of the reversible type.
pub const REVERSIBLE_TYPE: &str = "R";

/// The HPKE suite of `R`, as the `alg` of a provider's encryption key.
pub const REVERSIBLE_SUITE: &str = "HPKE-P256-SHA256-A256GCM";

/// The HPKE `info` of `R` (ASCII), and the first part of its `aad`.
pub const REVERSIBLE_INFO: &str = "pseudoform-reversible/1";

/// The HPKE associated data of an `R` ciphertext:
/// `pseudoform-reversible/1|{organization}|{scope}|{kid}`, with `kid` the
/// provider key's RFC 7638 thumbprint. (The record binding is the TTP's
/// signature over [`reversible_digest`], not the associated data: the
/// ciphertext exists before its record does.)
///
/// `#[inline]` (as [`reversible_fields`]): the function is then compiled only
/// where it is used, so the browser module, which never calls it, keeps its
/// wasm byte for byte (a function compiled into the core changes how the
/// core's other functions are inlined there).
#[inline]
pub fn reversible_aad(organization: &str, scope: &str, kid: &str) -> String {
    crate::concat(&[REVERSIBLE_INFO, "|", organization, "|", scope, "|", kid])
}

/// The digest of an `R` envelope that the TTP signs into the record's
/// claims (`reversible`): the unpadded base64url SHA-256 of the ASCII
/// string `{kid}.{enc}.{ct}`, the envelope's three unpadded base64url
/// members as they are sent (43 characters).
///
/// `#[inline]`: as [`reversible_aad`].
#[inline]
pub fn reversible_digest(kid: &str, enc: &str, ct: &str) -> String {
    let digest = Sha256::new()
        .chain_update(kid.as_bytes())
        .chain_update(b".")
        .chain_update(enc.as_bytes())
        .chain_update(b".")
        .chain_update(ct.as_bytes())
        .finalize();
    Base64UrlUnpadded::encode_string(&digest)
}

/// The Wkz type whose canonical input is the plaintext of `R`: MRN
/// (`provider|mrn`, the number scoped to its provider).
pub const REVERSIBLE_INPUT: PseudonymType = PseudonymType::Mrn;

/// The fields `R` is made of: MRN's (`provider`, `mrn`), whose canonical
/// input is its plaintext.
#[inline]
pub fn reversible_fields() -> &'static [Field] {
    REVERSIBLE_INPUT.fields()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aad_joins_info_recipient_and_kid_with_bars() {
        assert_eq!(
            reversible_aad("oin:00000001234567890000", "kwaliteit", "kid-1"),
            "pseudoform-reversible/1|oin:00000001234567890000|kwaliteit|kid-1"
        );
    }

    #[test]
    fn each_part_of_the_aad_changes_it() {
        let base = reversible_aad("o", "s", "k");
        for other in [
            reversible_aad("o2", "s", "k"),
            reversible_aad("o", "s2", "k"),
            reversible_aad("o", "s", "k2"),
        ] {
            assert_ne!(base, other);
        }
    }

    /// The shared vector of the digest: the browser's `reversibleDigest`
    /// (crates/browser/tests/js/reversible.test.mjs) has the same one.
    const DIGEST_VECTOR: [&str; 4] = [
        "kid-1",
        "BAAB",
        "AAEC",
        "zCvkhJYhY8rP3Uq3jWXJ6i6EKaUhhnFTdzTFTVq9Vs0",
    ];

    #[test]
    fn the_digest_is_the_sha256_of_kid_enc_ct_joined_by_dots() {
        let [kid, enc, ct, digest] = DIGEST_VECTOR;
        assert_eq!(reversible_digest(kid, enc, ct), digest);
        assert_eq!(
            Base64UrlUnpadded::encode_string(&Sha256::digest(b"kid-1.BAAB.AAEC")),
            digest
        );
        assert_eq!(digest.len(), 43);
        assert_ne!(reversible_digest(kid, ct, enc), digest);
        assert_ne!(reversible_digest("kid-2", enc, ct), digest);
    }

    #[test]
    fn r_is_made_of_the_mrn_fields_and_is_no_wkz_type() {
        assert_eq!(reversible_fields(), &[Field::Provider, Field::Mrn]);
        assert!(PseudonymType::ALL
            .iter()
            .all(|t| t.code() != REVERSIBLE_TYPE));
        assert!(REVERSIBLE_TYPE.parse::<PseudonymType>().is_err());
    }

    #[test]
    fn the_suite_names_the_rfc_9180_algorithms_of_the_contract() {
        assert_eq!(REVERSIBLE_SUITE, "HPKE-P256-SHA256-A256GCM");
        assert_eq!(REVERSIBLE_INFO, "pseudoform-reversible/1");
    }
}
