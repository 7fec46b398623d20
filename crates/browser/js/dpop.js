// DPoP (RFC 9449) with WebCrypto: a P-256 key whose private half can never
// leave the browser (non-extractable), its RFC 7638 thumbprint, and ES256
// JWTs signed with it (a WebCrypto ECDSA signature is already the JWS
// r‖s form). No wasm: WebCrypto does the curve work.
import { PseudoformError } from "./errors.js";

const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };

/** @param {string} text */
const utf8 = (text) => new TextEncoder().encode(text);

/**
 * Unpadded base64url of bytes.
 * @param {ArrayBuffer | Uint8Array} bytes
 */
export function base64url(bytes) {
  let binary = "";
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Unpadded base64url of the SHA-256 of a string's UTF-8 (`ath`, `rec`, `jkt`).
 * @param {string} text
 */
export async function sha256(text) {
  return base64url(await crypto.subtle.digest("SHA-256", utf8(text)));
}

/** A random 128-bit id in hex: the `jti` of every proof. */
export function randomJti() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A DPoP key: the non-extractable key pair, its public JWK and thumbprint.
 * @typedef {{ keys: CryptoKeyPair, jwk: { kty: string, crv: string, x: string, y: string }, jkt: string }} DpopKey
 */

/**
 * Makes a fresh DPoP key (the private key is not extractable).
 * @returns {Promise<DpopKey>}
 */
export async function generateDpopKey() {
  if (!globalThis.crypto?.subtle) {
    throw new PseudoformError("auth.noWebCrypto", "this browser has no WebCrypto (a secure context is needed)");
  }
  const keys = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey(ECDSA, false, ["sign", "verify"]));
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", keys.publicKey);
  if (kty !== "EC" || crv !== "P-256" || !x || !y) {
    throw new PseudoformError("auth.noWebCrypto", "WebCrypto made no usable P-256 key");
  }
  const jwk = { kty, crv, x, y };
  // RFC 7638: the required members in lexicographic order, no spaces.
  const jkt = await sha256(JSON.stringify({ crv, kty, x, y }));
  return { keys, jwk, jkt };
}

/**
 * A compact ES256 JWS of `claims` with the given protected header.
 * @param {CryptoKey} privateKey
 * @param {Record<string, unknown>} header
 * @param {Record<string, unknown>} claims
 */
export async function signJwt(privateKey, header, claims) {
  const input = `${base64url(utf8(JSON.stringify({ ...header, alg: "ES256" })))}.${base64url(utf8(JSON.stringify(claims)))}`;
  const signature = await crypto.subtle.sign(SIGN, privateKey, utf8(input));
  return `${input}.${base64url(signature)}`;
}

/**
 * A DPoP proof for `method` on `url` (its query and fragment left out),
 * with `ath` when an access token goes with it and any `extra` claims.
 * @param {DpopKey} key
 * @param {string} method
 * @param {string} url absolute
 * @param {{ accessToken?: string, extra?: Record<string, string> }} [with_]
 */
export async function dpopProof(key, method, url, { accessToken, extra } = {}) {
  const target = new URL(url);
  /** @type {Record<string, unknown>} */
  const claims = {
    jti: randomJti(),
    htm: method,
    htu: `${target.origin}${target.pathname}`,
    iat: Math.floor(Date.now() / 1000),
    ...extra,
  };
  if (accessToken) claims.ath = await sha256(accessToken);
  return signJwt(key.keys.privateKey, { typ: "dpop+jwt", jwk: key.jwk }, claims);
}
