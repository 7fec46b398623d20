//! Padded base64url (RFC 4648 §5), the encoding of every binary value on the
//! wire (32 bytes → 44 characters), as in the national reference.

use alloc::string::String;

use base64ct::{Base64Url, Encoding};

use crate::Error;

/// Encodes bytes as padded base64url; the same output as base64ct's
/// `Base64Url::encode_string`, and like it constant-time in the bytes (no
/// branch or table lookup on their values: blind factors are secret), in a
/// fraction of the code (size of the browser module, docs/size.md).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut block = [0u8; 3];
        for (slot, byte) in block.iter_mut().zip(chunk) {
            *slot = *byte;
        }
        let [a, b, c] = block;
        let sextets = [
            a >> 2,
            (a & 3) << 4 | b >> 4,
            (b & 15) << 2 | c >> 6,
            c & 63,
        ];
        // n input bytes make n + 1 characters, padded with `=` to four.
        for (i, sextet) in sextets.into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(encode_6bits(sextet))
            } else {
                '='
            });
        }
    }
    out
}

/// A 6-bit value as its base64url character, by base64ct's branch-free
/// arithmetic: `A`–`Z`, `a`–`z`, `0`–`9`, `-`, `_`.
fn encode_6bits(sextet: u8) -> u8 {
    let src = i16::from(sextet);
    let mut diff = src + i16::from(b'A');
    diff += ((25 - src) >> 8) & 6;
    diff += ((51 - src) >> 8) & -75;
    diff += ((61 - src) >> 8) & -13;
    diff += ((62 - src) >> 8) & 49;
    diff as u8
}

/// Decodes exactly `N` bytes of padded base64url; anything else is
/// [`Error::Encoding`].
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    if text.len() != Base64Url::encoded_len(&out) {
        return Err(Error::Encoding);
    }
    let decoded = Base64Url::decode(text, &mut out).map_err(|_| Error::Encoding)?;
    if decoded.len() != N {
        return Err(Error::Encoding);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let bytes = [0xfbu8; 32];
        let text = encode(&bytes);
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        assert!(text.contains('-') || text.contains('_'));
        assert_eq!(decode_array::<32>(&text).unwrap(), bytes);
        assert_eq!(
            decode_array::<32>(text.trim_end_matches('=')),
            Err(Error::Encoding)
        );
        assert_eq!(
            decode_array::<32>(&text.replace('-', "+")),
            Err(Error::Encoding)
        );
        assert_eq!(decode_array::<31>(&text), Err(Error::Encoding));
    }

    #[test]
    fn encode_equals_base64ct_for_every_length_and_value() {
        for sextet in 0u8..64 {
            let bytes = [sextet << 2, sextet << 4, sextet << 6, sextet, 0xff, 0];
            for len in 0..=bytes.len() {
                let input = &bytes[..len];
                assert_eq!(encode(input), Base64Url::encode_string(input));
            }
        }
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..=all.len() {
            assert_eq!(encode(&all[..len]), Base64Url::encode_string(&all[..len]));
        }
    }
}
