//! Deterministic mutations of valid request bodies, for the operator runs
//! that send thousands of damaged requests to a real server: flipped, cut,
//! inserted and repeated bytes, and (for bodies with JWEs) one compact part
//! replaced by base64url of another length. Mutation `i` of a body is the
//! same on every run, so a failing one can be named and replayed.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// How many mutations an operator run sends per endpoint:
/// `PSEUDOFORM_MUTATIONS`, else `default` (the suite's bounded count).
pub fn count(default: u32) -> u32 {
    std::env::var("PSEUDOFORM_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mutation number `i` of `body`.
pub fn mutate(body: &[u8], i: u32) -> Vec<u8> {
    let seed = Sha256::digest(i.to_be_bytes());
    let mut body = body.to_vec();
    if body.is_empty() {
        return vec![seed[3]];
    }
    let at = usize::from(u16::from_be_bytes([seed[0], seed[1]])) % body.len();
    match seed[2] % 6 {
        0 => body[at] ^= seed[3] | 1,
        1 => body.truncate(at),
        2 => body.insert(at, seed[3]),
        3 => {
            let end = (at + usize::from(seed[3])).min(body.len());
            let chunk = body[at..end].to_vec();
            body.splice(at..at, chunk);
        }
        4 => {
            // Bytes of the seed spread over the body.
            for (k, b) in seed[4..].iter().enumerate() {
                let p = (at + k * 37) % body.len();
                body[p] = *b;
            }
        }
        _ => return replace_jwe_part(&body, &seed).unwrap_or(body),
    }
    body
}

/// The body with one part of its first compact JWE (`eyJ…` with four
/// dots) replaced by base64url of 0–40 bytes: the IV, tag and key lengths
/// that once reached the crypto layer.
fn replace_jwe_part(body: &[u8], seed: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("eyJ")?;
    let len = text[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .unwrap_or(text.len() - start);
    let jwe = &text[start..start + len];
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    if parts.len() != 5 {
        return None;
    }
    let which = usize::from(seed[5]) % 5;
    let bytes = &seed[6..6 + usize::from(seed[7]) % 26];
    parts[which] = Base64UrlUnpadded::encode_string(bytes);
    if seed[8] % 4 == 0 {
        parts[which].clear();
    }
    let mut out = text[..start].to_owned();
    out.push_str(&parts.join("."));
    out.push_str(&text[start + len..]);
    Some(out.into_bytes())
}
