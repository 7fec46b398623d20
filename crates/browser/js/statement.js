// The TTP's signed statements of keys (the registry's key that the blind
// factors are sealed to, a provider's key that `R` is encrypted to): a
// compact JWS, ES256, of a `typ` of its own, by the TTP's signing key taken
// from GET /v1/signing-keys by its kid and, where the page pins keys
// (`ttpSigningKeys`: RFC 7638 thumbprints), only if its thumbprint is pinned.
// One verification for both (recipient-key.js, reversible.js); each checks
// the claims of its own statement. All of it WebCrypto.
/** @import * as api from "./index.js" */
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_STATEMENT_LENGTH = 16 * 1024;

/**
 * Who refuses a statement: the code prefix (`recipientKey`, `providerKey`),
 * the field of its errors and the words of its messages.
 * @typedef {{ prefix: string, field: string, what: string }} Refusal
 */

/** @param {Uint8Array} bytes */
export function base64url(bytes) {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** @param {string} text unpadded base64url */
export function fromBase64url(text) {
  const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** @param {string} text */
export const ascii = (text) => new TextEncoder().encode(text);

/** @param {string} text base64url of JSON */
function jsonOf(text) {
  const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64url(text)));
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
  return value;
}

/** @type {(v: unknown) => v is string} */
export const isText = (v) => typeof v === "string" && v !== "";

/**
 * The RFC 7638 thumbprint of a P-256 public JWK.
 * @param {{ crv: string, kty: string, x: string, y: string }} jwk
 */
export async function ecThumbprint(jwk) {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", ascii(canonical))));
}

/**
 * A refusal's error: `<prefix>.<rule>`, its field.
 * @param {Refusal} who
 * @param {string} rule
 * @param {string} message
 * @param {unknown} [cause]
 */
export const refusedBy = (who, rule, message, cause) =>
  new PseudoformError(`${who.prefix}.${rule}`, message, who.field, cause === undefined ? {} : { cause });

/** Verification keys of the TTP by base URL and pins, fetched once. @type {Map<string, Promise<Map<string, CryptoKey>>>} */
const signingKeys = new Map();

/**
 * The TTP's signing keys from GET /v1/signing-keys: P-256 only, each under
 * its kid, and only those whose thumbprint is pinned when `pins` is given.
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal">} o
 * @param {readonly string[]} pins
 * @param {Refusal} who
 */
async function fetchSigningKeys(o, pins, who) {
  const url = new URL("v1/signing-keys", o.ttp.endsWith("/") ? o.ttp : `${o.ttp}/`).toString();
  const answer = await requestJson("ttp", url, { method: "GET" }, o);
  if (!Array.isArray(answer?.keys)) throw refusedBy(who, "invalid", "the TTP publishes no signing keys");
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
 * @param {Refusal} who
 */
function signingKeysOf(o, who) {
  const pins = pinsOf(o.ttpSigningKeys);
  const id = `${o.ttp} ${pins.join(" ")}`;
  let keys = signingKeys.get(id);
  if (!keys) {
    keys = fetchSigningKeys(o, pins, who);
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
 * The claims of a TTP statement of `typ`, its signature verified; any doubt
 * is `<prefix>.invalid` (a statement that is not there: `<prefix>.missing`).
 * @param {unknown} statement a compact JWS
 * @param {string} typ its expected `typ`
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal" | "ttpSigningKeys">} o
 * @param {Refusal} who
 * @returns {Promise<Record<string, any>>}
 */
export async function verifiedClaims(statement, typ, o, who) {
  if (statement === undefined || statement === null) {
    throw refusedBy(who, "missing", `the TTP states no ${who.what}`);
  }
  if (typeof statement !== "string" || statement.length > MAX_STATEMENT_LENGTH || !COMPACT_JWS.test(statement)) {
    throw refusedBy(who, "invalid", `the TTP's statement of the ${who.what} is malformed`);
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
    throw refusedBy(who, "invalid", `the TTP's statement of the ${who.what} is malformed`, error);
  }
  if (header.alg !== "ES256" || header.typ !== typ || !isText(header.kid) || "crit" in header) {
    throw refusedBy(who, "invalid", `the TTP's statement of the ${who.what} has the wrong header`);
  }
  const verifier = (await signingKeysOf(o, who)).get(header.kid);
  if (!verifier) {
    throw refusedBy(who, "invalid", `the ${who.what} is not signed by a (pinned) TTP signing key`);
  }
  const valid = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    verifier,
    signature,
    ascii(`${header64}.${payload64}`),
  );
  if (!valid) throw refusedBy(who, "invalid", `the TTP's signature on the ${who.what} is not valid`);
  return payload;
}
