// The registry's public key as the TTP states it, and the blind factors
// sealed to it, so that nothing on the wire joins a blinded element B with
// its blind factor r (r⁻¹·B is an unkeyed hash of the identity).
//
// The policy's `recipientKey` is a compact JWS (ES256, typ
// pseudoform-recipient-key+jwt) of {organization, scope, jwk, iat} by the
// TTP's signing key, verified as every statement of the TTP (statement.js). The blind factors become a compact JWE (RFC 7516):
// RSA-OAEP-256 key wrap, A256GCM, AAD the ASCII of the encoded protected
// header, plaintext {"blindFactors", "rec"} with rec the SHA-256 of the
// record JWE. All of it WebCrypto; nothing in wasm. Any doubt fails closed
// (a PseudoformError, code recipientKey.*): then nothing is evaluated or sent.
/** @import * as api from "./index.js" */
import { ascii, base64url, isText, refusedBy, verifiedClaims } from "./statement.js";

/** The `typ` of the TTP's statement of a recipient's key. */
const STATEMENT_TYP = "pseudoform-recipient-key+jwt";
/** The one key-management algorithm of the sealed blind factors. */
const KEY_ALG = "RSA-OAEP-256";
/** Fewest bits of a registry's RSA modulus. */
const MIN_MODULUS_BITS = 2048;
/** @type {import("./statement.js").Refusal} */
const RECIPIENT_KEY = { prefix: "recipientKey", field: "recipientKey", what: "recipient's key" };

/**
 * The registry's key, verified: its kid and the WebCrypto key to wrap to.
 * @typedef {{ kid: string, key: CryptoKey }} RecipientKey
 */

/**
 * @param {string} rule
 * @param {string} message
 * @param {unknown} [cause]
 */
const refused = (rule, message, cause) => refusedBy(RECIPIENT_KEY, rule, message, cause);

/**
 * Verifies the policy's `recipientKey` and imports the registry's key.
 * @param {unknown} statement the compact JWS of GET /v1/policy
 * @param {Pick<api.PseudonymiseOptions,
 *   "ttp" | "recipientOrganization" | "recipientScope" | "timeoutMs" | "signal" | "ttpSigningKeys">} o
 * @returns {Promise<RecipientKey>}
 */
export async function recipientKeyOf(statement, o) {
  if (statement === undefined || statement === null) {
    throw refused("missing", "the TTP states no key of the recipient to encrypt the blind factors to");
  }
  const payload = await verifiedClaims(statement, STATEMENT_TYP, o, RECIPIENT_KEY);
  if (payload.organization !== o.recipientOrganization || payload.scope !== o.recipientScope) {
    throw refused("mismatch", "the TTP's statement is of another recipient's key");
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
    throw refused("invalid", "the recipient's key is not an RSA-OAEP-256 encryption key");
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
    throw refused("invalid", "the recipient's key cannot be used", error);
  }
  const bits = /** @type {RsaHashedKeyAlgorithm} */ (key.algorithm).modulusLength;
  if (!(bits >= MIN_MODULUS_BITS)) throw refused("invalid", "the recipient's key is too short");
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
