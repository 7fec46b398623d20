//! `expand_message_xmd` with SHA-512 (RFC 9380 §5.3.1), the hash-to-field
//! expander that RFC 9497 uses for ristretto255-SHA512.

use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::Error;

const B_IN_BYTES: usize = 64;
const S_IN_BYTES: usize = 128;

/// Fills `out` (1 to 255·64 bytes) with `expand_message_xmd(msg, dst,
/// out.len())`, where `msg` is the concatenation of `msg_parts`. `dst` must
/// be 1 to 255 bytes (the oversize-DST hashing of the RFC is not needed here).
pub fn expand_message_xmd(msg_parts: &[&[u8]], dst: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let len = out.len();
    let ell = len.div_ceil(B_IN_BYTES);
    let (Ok(len_u16), Ok(dst_len), true) = (
        u16::try_from(len),
        u8::try_from(dst.len()),
        ell <= 255 && len > 0 && !dst.is_empty(),
    ) else {
        return Err(Error::UnsupportedLength);
    };
    let mut h = Sha512::new();
    h.update([0u8; S_IN_BYTES]);
    for part in msg_parts {
        h.update(part);
    }
    h.update(len_u16.to_be_bytes());
    h.update([0u8]);
    h.update(dst);
    h.update([dst_len]);
    // The intermediate blocks derive from the message (an identifier's hash
    // input): wiped on drop like the output buffer the caller owns.
    let b0 = Zeroizing::new(<[u8; B_IN_BYTES]>::from(h.finalize()));

    let mut previous = Zeroizing::new([0u8; B_IN_BYTES]);
    let mut mixed = Zeroizing::new([0u8; B_IN_BYTES]);
    for (i, chunk) in out.chunks_mut(B_IN_BYTES).enumerate() {
        let mut h = Sha512::new();
        if i == 0 {
            h.update(b0.as_ref());
        } else {
            for ((m, a), b) in mixed.iter_mut().zip(b0.iter()).zip(previous.iter()) {
                *m = a ^ b;
            }
            h.update(mixed.as_ref());
        }
        h.update([u8::try_from(i + 1).map_err(|_| Error::UnsupportedLength)?]);
        h.update(dst);
        h.update([dst_len]);
        previous.copy_from_slice(&h.finalize());
        chunk.copy_from_slice(
            previous
                .get(..chunk.len())
                .ok_or(Error::UnsupportedLength)?,
        );
    }
    Ok(())
}
