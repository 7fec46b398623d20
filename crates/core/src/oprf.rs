//! The OPRF of RFC 9497, ristretto255-SHA512, mode OPRF (0x00).
//!
//! The client [`blind`]s its 32-byte input with a random [`Blind`]; the TTP
//! [`ServerKey::evaluate`]s the blinded element without learning anything
//! about the input; the recipient [`unblind`]s the evaluation to
//! `N = k·HashToGroup(input)`. As in the national reference, `N` itself
//! (32 bytes) is the definitive pseudonym: no `Finalize` hash is applied
//! (the tests apply it to check the RFC's output vectors).

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use zeroize::{Zeroize, Zeroizing};

use crate::xmd::expand_message_xmd;
use crate::Error;

/// The RFC 9497 context string of ristretto255-SHA512 in OPRF mode.
pub const CONTEXT_STRING: &[u8] = b"OPRFV1-\x00-ristretto255-SHA512";
const HASH_TO_GROUP_DST: &[u8] = b"HashToGroup-OPRFV1-\x00-ristretto255-SHA512";
const DERIVE_KEY_PAIR_DST: &[u8] = b"DeriveKeyPairOPRFV1-\x00-ristretto255-SHA512";

/// Size of a serialised element or scalar.
pub const ELEMENT_BYTES: usize = 32;

/// `HashToGroup` of RFC 9497: `expand_message_xmd` to 64 bytes, then the
/// ristretto255 one-way map (RFC 9496 §4.3.4).
pub fn hash_to_group(input: &[u8]) -> Result<RistrettoPoint, Error> {
    let mut uniform = Zeroizing::new([0u8; 64]);
    expand_message_xmd(&[input], HASH_TO_GROUP_DST, uniform.as_mut())?;
    Ok(RistrettoPoint::from_uniform_bytes(&uniform))
}

/// `HashToScalar`-based scalar from 64 uniform bytes; zero is refused.
fn nonzero_scalar(wide: &[u8; 64]) -> Result<Scalar, Error> {
    let s = Scalar::from_bytes_mod_order_wide(wide);
    if s == Scalar::ZERO {
        return Err(Error::InvalidScalar);
    }
    Ok(s)
}

fn decode_scalar(bytes: &[u8; ELEMENT_BYTES]) -> Result<Scalar, Error> {
    let s: Option<Scalar> = Scalar::from_canonical_bytes(*bytes).into();
    s.filter(|s| *s != Scalar::ZERO).ok_or(Error::InvalidScalar)
}

/// Decodes an element, refusing non-canonical encodings and the identity.
pub fn decode_element(bytes: &[u8; ELEMENT_BYTES]) -> Result<RistrettoPoint, Error> {
    CompressedRistretto(*bytes)
        .decompress()
        .filter(|p| !p.is_identity())
        .ok_or(Error::InvalidElement)
}

/// The client's secret blinding scalar `r`, wiped from memory on drop.
pub struct Blind(Scalar);

impl Blind {
    /// A blind from 64 uniformly random bytes (`RandomScalar` of RFC 9497:
    /// reduced modulo the group order; zero is refused). The caller draws the
    /// bytes from a CSPRNG: the core does no I/O.
    pub fn from_uniform_bytes(random: &[u8; 64]) -> Result<Self, Error> {
        nonzero_scalar(random).map(Blind)
    }

    /// A blind from its 32-byte little-endian encoding (canonical, non-zero).
    /// For test vectors and for the recipient, who receives it.
    pub fn from_bytes(bytes: &[u8; ELEMENT_BYTES]) -> Result<Self, Error> {
        decode_scalar(bytes).map(Blind)
    }

    /// The 32-byte encoding of the blind.
    pub fn to_bytes(&self) -> Zeroizing<[u8; ELEMENT_BYTES]> {
        Zeroizing::new(self.0.to_bytes())
    }
}

impl Drop for Blind {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `Blind` of RFC 9497 with a given blind: `r·HashToGroup(input)`, encoded.
pub fn blind(input: &[u8], r: &Blind) -> Result<[u8; ELEMENT_BYTES], Error> {
    // H(x) is an unblinded hash of the input: wiped as soon as it is blinded.
    let mut point = hash_to_group(input)?;
    if point.is_identity() {
        return Err(Error::InvalidElement);
    }
    let blinded = (point * r.0).compress().to_bytes();
    point.zeroize();
    Ok(blinded)
}

/// The recipient's de-blinding: `N = r⁻¹·Z` for the evaluated element `Z`.
pub fn unblind(r: &Blind, evaluated: &[u8; ELEMENT_BYTES]) -> Result<[u8; ELEMENT_BYTES], Error> {
    let z = decode_element(evaluated)?;
    let mut inverse = r.0.invert();
    let n = (z * inverse).compress().to_bytes();
    inverse.zeroize();
    Ok(n)
}

/// The TTP's OPRF key `k` for one key domain and version, wiped on drop.
pub struct ServerKey(Scalar);

impl ServerKey {
    /// A key from 64 uniformly random bytes drawn by the caller from a
    /// CSPRNG (reduced modulo the group order; zero is refused).
    pub fn from_uniform_bytes(random: &[u8; 64]) -> Result<Self, Error> {
        nonzero_scalar(random).map(ServerKey)
    }

    /// `DeriveKeyPair(seed, info)` of RFC 9497 §3.2.1.
    pub fn derive(seed: &[u8; 32], info: &[u8]) -> Result<Self, Error> {
        let info_len = u16::try_from(info.len()).map_err(|_| Error::UnsupportedLength)?;
        for counter in 0u8..=255 {
            let mut wide = Zeroizing::new([0u8; 64]);
            expand_message_xmd(
                &[seed, &info_len.to_be_bytes(), info, &[counter]],
                DERIVE_KEY_PAIR_DST,
                wide.as_mut(),
            )?;
            if let Ok(s) = nonzero_scalar(&wide) {
                return Ok(ServerKey(s));
            }
        }
        Err(Error::InvalidScalar)
    }

    /// A key from its 32-byte encoding (canonical, non-zero).
    pub fn from_bytes(bytes: &[u8; ELEMENT_BYTES]) -> Result<Self, Error> {
        decode_scalar(bytes).map(ServerKey)
    }

    /// The 32-byte encoding of the key.
    pub fn to_bytes(&self) -> Zeroizing<[u8; ELEMENT_BYTES]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// `BlindEvaluate` of RFC 9497: `k·B` for a blinded element `B`. Refuses
    /// encodings that are not a canonical non-identity element.
    pub fn evaluate(&self, blinded: &[u8; ELEMENT_BYTES]) -> Result<[u8; ELEMENT_BYTES], Error> {
        let b = decode_element(blinded)?;
        Ok((b * self.0).compress().to_bytes())
    }
}

impl Drop for ServerKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

// `Debug` of the secret scalars: their name, never their value.
impl core::fmt::Debug for Blind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Blind(..)")
    }
}

impl core::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};
    use sha2::{Digest, Sha512};
    use voprf::{OprfClient, OprfServer, Ristretto255};

    /// `Finalize` of RFC 9497: `SHA-512(len‖input‖len‖N‖"Finalize")`. Not
    /// part of the pseudonym (see the module documentation); the RFC's
    /// output vectors are of it.
    fn finalize(input: &[u8], unblinded: &[u8; ELEMENT_BYTES]) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(u16::try_from(input.len()).unwrap().to_be_bytes());
        h.update(input);
        h.update((ELEMENT_BYTES as u16).to_be_bytes());
        h.update(unblinded);
        h.update(b"Finalize");
        h.finalize().into()
    }

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode): input,
    /// blinded element, evaluated element and output of both vectors.
    #[test]
    fn rfc9497_oprf_mode_vectors() {
        let key = ServerKey::from_bytes(&unhex(
            "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e",
        ))
        .unwrap();
        let r = Blind::from_bytes(&unhex(
            "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
        ))
        .unwrap();
        for (input, blinded_hex, evaluated_hex, output) in [
            (
                "00",
                "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
                "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
                "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
            ),
            (
                "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
                "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
                "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
                "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
            ),
        ] {
            let input = hex::decode(input).unwrap();
            let blinded = blind(&input, &r).unwrap();
            assert_eq!(hex::encode(blinded), blinded_hex);
            let evaluated = key.evaluate(&blinded).unwrap();
            assert_eq!(hex::encode(evaluated), evaluated_hex);
            let n = unblind(&r, &evaluated).unwrap();
            assert_eq!(hex::encode(finalize(&input, &n)), output);
            // N is the unblinded evaluation: k·HashToGroup(input), whatever the blind.
            let other = Blind::from_uniform_bytes(&[0x5a; 64]).unwrap();
            let again = unblind(&other, &key.evaluate(&blind(&input, &other).unwrap()).unwrap());
            assert_eq!(n, again.unwrap());
        }
    }

    #[test]
    fn debug_never_shows_a_scalar() {
        let blind = Blind::from_uniform_bytes(&[1; 64]).unwrap();
        let key = ServerKey::from_uniform_bytes(&[2; 64]).unwrap();
        assert_eq!(format!("{blind:?} {key:?}"), "Blind(..) ServerKey(..)");
    }

    /// Cross-check against the `voprf` crate: for the same inputs and
    /// blinds, the same blinded and evaluated elements and the same RFC 9497
    /// output.
    #[test]
    fn same_elements_as_voprf() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9497);
        for round in 0..64 {
            let mut input = vec![0u8; (round * 7) % 80];
            rng.fill_bytes(&mut input);
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            let blind_scalar = Scalar::from_bytes_mod_order_wide(&wide);
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);

            let server = OprfServer::<Ristretto255>::new_from_seed(&seed, b"cross-check").unwrap();
            let key = ServerKey::derive(&seed, b"cross-check").unwrap();

            let theirs =
                OprfClient::<Ristretto255>::deterministic_blind_unchecked(&input, blind_scalar)
                    .unwrap();
            let r = Blind::from_bytes(&blind_scalar.to_bytes()).unwrap();
            let ours = blind(&input, &r).unwrap();
            assert_eq!(&theirs.message.serialize()[..], ours.as_slice());

            let their_eval = server.blind_evaluate(&theirs.message);
            let our_eval = key.evaluate(&ours).unwrap();
            assert_eq!(&their_eval.serialize()[..], our_eval.as_slice());

            let their_out = theirs.state.finalize(&input, &their_eval).unwrap();
            let n = unblind(&r, &our_eval).unwrap();
            assert_eq!(&their_out[..], &finalize(&input, &n)[..]);
        }
    }
}
