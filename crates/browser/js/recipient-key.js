// The registry's public key as the TTP states it, and the blind factors
// sealed to it, so that nothing on the wire joins a blinded element B with
// its blind factor r (r⁻¹·B is an unkeyed hash of the identity).
//
// The policy's `recipientKey` is a compact JWS (ES256, typ
// pseudoform-recipient-key+jwt) of {organization, scope, jwk, iat} by the
// TTP's signing key, taken from GET /v1/signing-keys by its kid and, where
// the page pins keys (`ttpSigningKeys`: RFC 7638 thumbprints), only if its
// thumbprint is pinned. The blind factors become a compact JWE (RFC 7516):
// RSA-OAEP-256 key wrap, A256GCM, AAD the ASCII of the encoded protected
// header, plaintext {"blindFactors", "rec"} with rec the SHA-256 of the
// record JWE. All of it WebCrypto; nothing in wasm. Any doubt fails closed
// (a PseudoformError, code recipientKey.*): then nothing is evaluated or sent.
/** @import * as api from "./index.js" */
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";

/** The `typ` of the TTP's statement of a recipient's key. */
const STATEMENT_TYP = "pseudoform-recipient-key+jwt";
/** The one key-management algorithm of the sealed blind factors. */
const KEY_ALG = "RSA-OAEP-256";
/** Fewest bits of a registry's RSA modulus. */
const MIN_MODULUS_BITS = 2048;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_STATEMENT_LENGTH = 16 * 1024;

/**
 * The registry's key, verified: its kid and the WebCrypto key to wrap to.
 * @typedef {{ kid: string, key: CryptoKey }} RecipientKey
 */

/**
 * @param {string} code
 * @param {string} message
 * @param {unknown} [cause]
 */
const refused = (code, message, cause) =>
  new PseudoformError(code, message, "recipientKey", cause === undefined ? {} : { cause });

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** @param {string} text unpadded base64url */
function fromBase64url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** @param {string} text */
const ascii = (text) => new TextEncoder().encode(text);

/** @param {string} text base64url of JSON */
function jsonOf(text) {
  const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64url(text)));
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
  return value;
}

/** @type {(v: unknown) => v is string} */
const isText = (v) => typeof v === "string" && v !== "";

/**
 * The RFC 7638 thumbprint of a P-256 public JWK.
 * @param {{ crv: string, kty: string, x: string, y: string }} jwk
 */
async function ecThumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", ascii(canonical))));
}

/** Verification keys of the TTP by base URL and pins, fetched once. @type {Map<string, Promise<Map<string, CryptoKey>>>} */
const signingKeys = new Map();

/**
 * The TTP's signing keys from GET /v1/signing-keys: P-256 only, each under
 * its kid, and only those whose thumbprint is pinned when `pins` is given.
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal">} o
 * @param {readonly string[]} pins
 */
async function fetchSigningKeys(o, pins) {
  const url = new URL("v1/signing-keys", o.ttp.endsWith("/") ? o.ttp : `${o.ttp}/`).toString();
  const answer = await requestJson("ttp", url, { method: "GET" }, o);
  if (!Array.isArray(answer?.keys)) throw refused("recipientKey.invalid", "the TTP publishes no signing keys");
  /** @type {Map<string, CryptoKey>} */
  const keys = new Map();
  for (const jwk of answer.keys) {
    if (jwk?.kty !== "EC" || jwk.crv !== "P-256" || !isText(jwk.x) || !isText(jwk.y) || !isText(jwk.kid)) continue;
    if (pins.length > 0 && !pins.includes(await ecThumbprint(jwk))) continue;
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y },
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    keys.set(jwk.kid, key);
  }
  return keys;
}

/**
 * The TTP's usable signing keys, cached per TTP and pins (a failed fetch is
 * not cached).
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal" | "ttpSigningKeys">} o
 */
function signingKeysOf(o) {
  const pins = pinsOf(o.ttpSigningKeys);
  const id = `${o.ttp} ${pins.join(" ")}`;
  let keys = signingKeys.get(id);
  if (!keys) {
    keys = fetchSigningKeys(o, pins);
    signingKeys.set(id, keys);
    keys.catch(() => signingKeys.delete(id));
  }
  return keys;
}

/**
 * The pinned thumbprints: a list or a space-separated string.
 * @param {unknown} pins
 * @returns {string[]}
 */
function pinsOf(pins) {
  if (pins === undefined) return [];
  const list = typeof pins === "string" ? pins.split(/\s+/).filter(Boolean) : pins;
  if (!Array.isArray(list) || !list.every(isText)) {
    throw new PseudoformError("config.invalid", "option ttpSigningKeys must list key thumbprints", "ttpSigningKeys");
  }
  return list;
}

/**
 * Verifies the policy's `recipientKey` and imports the registry's key.
 * @param {unknown} statement the compact JWS of GET /v1/policy
 * @param {Pick<api.PseudonymiseOptions,
 *   "ttp" | "recipientOrganization" | "recipientScope" | "timeoutMs" | "signal" | "ttpSigningKeys">} o
 * @returns {Promise<RecipientKey>}
 */
export async function recipientKeyOf(statement, o) {
  if (statement === undefined || statement === null) {
    throw refused("recipientKey.missing", "the TTP states no key of the recipient to encrypt the blind factors to");
  }
  if (typeof statement !== "string" || statement.length > MAX_STATEMENT_LENGTH || !COMPACT_JWS.test(statement)) {
    throw refused("recipientKey.invalid", "the TTP's statement of the recipient's key is malformed");
  }
  const [header64, payload64, signature64] = statement.split(".");
  /** @type {Record<string, unknown>} */
  let header;
  /** @type {Record<string, any>} */
  let payload;
  /** @type {Uint8Array<ArrayBuffer>} */
  let signature;
  try {
    header = jsonOf(header64);
    payload = jsonOf(payload64);
    signature = fromBase64url(signature64);
  } catch (error) {
    throw refused("recipientKey.invalid", "the TTP's statement of the recipient's key is malformed", error);
  }
  if (header.alg !== "ES256" || header.typ !== STATEMENT_TYP || !isText(header.kid) || "crit" in header) {
    throw refused("recipientKey.invalid", "the TTP's statement of the recipient's key has the wrong header");
  }
  const verifier = (await signingKeysOf(o)).get(header.kid);
  if (!verifier) {
    throw refused("recipientKey.invalid", "the recipient's key is not signed by a (pinned) TTP signing key");
  }
  const valid = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    verifier,
    signature,
    ascii(`${header64}.${payload64}`),
  );
  if (!valid) throw refused("recipientKey.invalid", "the TTP's signature on the recipient's key is not valid");
  if (payload.organization !== o.recipientOrganization || payload.scope !== o.recipientScope) {
    throw refused("recipientKey.mismatch", "the TTP's statement is of another recipient's key");
  }
  const jwk = payload.jwk;
  if (
    jwk?.kty !== "RSA" ||
    jwk.alg !== KEY_ALG ||
    (jwk.use !== undefined && jwk.use !== "enc") ||
    !isText(jwk.kid) ||
    !isText(jwk.n) ||
    !isText(jwk.e)
  ) {
    throw refused("recipientKey.invalid", "the recipient's key is not an RSA-OAEP-256 encryption key");
  }
  /** @type {CryptoKey} */
  let key;
  try {
    key = await crypto.subtle.importKey(
      "jwk",
      { kty: "RSA", n: jwk.n, e: jwk.e, alg: KEY_ALG },
      { name: "RSA-OAEP", hash: "SHA-256" },
      false,
      ["encrypt"],
    );
  } catch (error) {
    throw refused("recipientKey.invalid", "the recipient's key cannot be used", error);
  }
  const bits = /** @type {RsaHashedKeyAlgorithm} */ (key.algorithm).modulusLength;
  if (!(bits >= MIN_MODULUS_BITS)) throw refused("recipientKey.invalid", "the recipient's key is too short");
  return { kid: jwk.kid, key };
}

/**
 * `encryptedBlindFactors`: the blind factors of a record sealed to the
 * registry as a compact JWE, bound to the record JWE by `rec`.
 * @param {RecipientKey} recipient
 * @param {Partial<Record<string, string>>} blindFactors padded base64url by type code
 * @param {string} record the compact record JWE
 * @returns {Promise<string>}
 */
export async function sealBlindFactors(recipient, blindFactors, record) {
  const header = { alg: KEY_ALG, enc: "A256GCM", kid: recipient.kid, cty: "application/json" };
  const protectedHeader = base64url(ascii(JSON.stringify(header)));
  const rec = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", ascii(record))));
  const plaintext = ascii(JSON.stringify({ blindFactors, rec }));
  const cek = crypto.getRandomValues(new Uint8Array(32));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  try {
    const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, recipient.key, cek));
    const aes = await crypto.subtle.importKey("raw", cek, { name: "AES-GCM" }, false, ["encrypt"]);
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: ascii(protectedHeader), tagLength: 128 },
        aes,
        plaintext,
      ),
    );
    const ciphertext = sealed.subarray(0, sealed.length - 16);
    const tag = sealed.subarray(sealed.length - 16);
    return [protectedHeader, base64url(wrapped), base64url(iv), base64url(ciphertext), base64url(tag)].join(".");
  } finally {
    cek.fill(0);
    plaintext.fill(0);
  }
}
