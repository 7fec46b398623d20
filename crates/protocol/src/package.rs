//! The temporary pseudonym: what the browser submits in place of an identity.
//!
//! As in the national implementation guide, it is the padded base64url of
//! the JSON `{"evaluated_output": <JWE>, "blind_factor": <base64url>}`; the
//! recipient decrypts the JWE, takes the evaluation of the pseudonym's type
//! and de-blinds it with the blind factor.

use base64ct::{Base64Url, Encoding};
use serde::{Deserialize, Serialize};

/// Longest temporary pseudonym accepted, in characters.
pub const MAX_TEMPORARY_PSEUDONYM: usize = 64 * 1024;

/// The decoded content of a temporary pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporaryPseudonym {
    /// The compact JWE from the TTP.
    pub evaluated_output: String,
    /// The blind factor, padded base64url of the 32-byte scalar.
    pub blind_factor: String,
}

/// Why a temporary pseudonym could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MalformedPackage;

impl TemporaryPseudonym {
    /// Encodes as padded base64url of the JSON object.
    pub fn encode(&self) -> String {
        // Serialising two strings cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        Base64Url::encode_string(&json)
    }

    /// Decodes a temporary pseudonym; anything but the exact shape is refused.
    pub fn decode(text: &str) -> Result<Self, MalformedPackage> {
        if text.len() > MAX_TEMPORARY_PSEUDONYM {
            return Err(MalformedPackage);
        }
        let json = Base64Url::decode_vec(text).map_err(|_| MalformedPackage)?;
        serde_json::from_slice(&json).map_err(|_| MalformedPackage)
    }
}
