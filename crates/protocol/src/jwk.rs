//! RFC 7638 JWK thumbprints (SHA-256, unpadded base64url), the `kid` of the
//! registries' RSA keys and of the TTP's signing key.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

fn digest(canonical: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(canonical.as_bytes()))
}

/// The thumbprint of an RSA public key given by its modulus and public
/// exponent (big-endian bytes without leading zeros).
pub fn rsa_thumbprint(modulus: &[u8], exponent: &[u8]) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    digest(&format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        Base64UrlUnpadded::encode_string(exponent),
        Base64UrlUnpadded::encode_string(modulus)
    ))
}

/// The thumbprint of an elliptic-curve public key of curve `crv` (`P-256`)
/// given by its affine coordinates (big-endian, the curve's full length).
pub fn ec_thumbprint(crv: &str, x: &[u8], y: &[u8]) -> String {
    digest(&format!(
        r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
        Base64UrlUnpadded::encode_string(x),
        Base64UrlUnpadded::encode_string(y)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example() {
        // RFC 7638 §3.1.
        let n = Base64UrlUnpadded::decode_vec(concat!(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP",
            "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY",
            "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f",
            "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ))
        .unwrap();
        let e = Base64UrlUnpadded::decode_vec("AQAB").unwrap();
        assert_eq!(
            rsa_thumbprint(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn rfc9449_example() {
        // The P-256 key of the DPoP examples of RFC 9449 (§6.1) and the
        // `jkt` (its RFC 7638 thumbprint) that the RFC gives for it.
        let x =
            Base64UrlUnpadded::decode_vec("l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs").unwrap();
        let y =
            Base64UrlUnpadded::decode_vec("9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA").unwrap();
        assert_eq!(
            ec_thumbprint("P-256", &x, &y),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }
}
