//! The OPRF of RFC 9497, ristretto255-SHA512, mode OPRF (0x00).
//!
//! The client [`blind`]s its 32-byte input with a random [`Blind`]; the TTP
//! [`ServerKey::evaluate`]s the blinded element without learning anything
//! about the input; the recipient [`unblind`]s the evaluation to
//! `N = k·HashToGroup(input)`. As in the national reference, `N` itself
//! (32 bytes) is the definitive pseudonym: no `Finalize` hash is applied.
//! [`finalize`] exists to check the RFC's output vectors.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::{Digest, Sha512};
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

/// `Finalize` of RFC 9497: `SHA-512(len‖input‖len‖N‖"Finalize")`. Not part of
/// the pseudonym (see the module documentation); kept for the RFC vectors.
pub fn finalize(input: &[u8], unblinded: &[u8; ELEMENT_BYTES]) -> Result<[u8; 64], Error> {
    let input_len = u16::try_from(input.len()).map_err(|_| Error::Encoding)?;
    let mut h = Sha512::new();
    h.update(input_len.to_be_bytes());
    h.update(input);
    h.update((ELEMENT_BYTES as u16).to_be_bytes());
    h.update(unblinded);
    h.update(b"Finalize");
    Ok(h.finalize().into())
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
        let info_len = u16::try_from(info.len()).map_err(|_| Error::Encoding)?;
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
