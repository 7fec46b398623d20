//! Padded base64url (RFC 4648 §5), the encoding of every binary value on the
//! wire (32 bytes → 44 characters), as in the national reference.

use base64ct::{Base64Url, Encoding};

use crate::Error;

/// Encodes bytes as padded base64url.
pub fn encode(bytes: &[u8]) -> String {
    Base64Url::encode_string(bytes)
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
#[allow(clippy::unwrap_used)]
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
}
