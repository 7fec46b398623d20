// Type R: the local patient number encrypted to the supplying provider, so
// that only that provider can go back from a record to its patient (not the
// registry, not the TTP, not another provider).
//
// The provider's key comes from the TTP's signed directory
// (GET /v1/provider-keys?provider=…): compact JWS statements, typ
// pseudoform-provider-key+jwt, verified as the recipient's key is
// (statement.js), of {provider, jwk, current, iat}. The form seals MRN's
// canonical input `provider|mrn` to the current key with RFC 9180 HPKE in base
// mode, suite DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, info
// `pseudoform-reversible/1`, aad `pseudoform-reversible/1|org|scope|kid`
// (reversibleAad), into `submission.reversible` = {type: "R", kid, enc, ct},
// before the evaluate call: the envelope's digest (reversibleDigest) goes
// with the record to the TTP, which signs it into the record's claims. The
// provider's validation page checks that signature and digest, then opens
// R with its own (non-extractable) key.
//
// Hand-written on WebCrypto (ECDH P-256, HMAC-SHA256, AES-GCM) rather than the
// `@hpke/core` package, measured with esbuild --minify and gzip -9: a bundle
// of `@hpke/core` 1.9.0 for this one suite alone is 8 513 B gzip, while all
// of R (this module, statement.js, the form path, the messages) adds 2 037 B
// to pseudoform-auto.js (17 413 → 19 450 B) and 1 947 B to the frame's
// frame.js (17 073 → 19 020 B); and the JS layer ships as plain ES modules
// (www/pkg) as well as bundles, where a bare package import would not
// resolve. The RFC 9180 A.3.1 vector (AES-128-GCM) and the CFRG vector of
// this suite, and round trips against `@hpke/core` (a dev dependency) both
// ways, check it: crates/browser/tests/js/reversible.test.mjs.
/** @import * as api from "./index.js" */
import { REVERSIBLE_INFO, REVERSIBLE_SUITE, REVERSIBLE_TYPE } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";
import { ascii, base64url, ecThumbprint, fromBase64url, isText, refusedBy, verifiedClaims } from "./statement.js";

/** The `typ` of the TTP's statement of a provider's encryption key. */
const STATEMENT_TYP = "pseudoform-provider-key+jwt";
/** @type {import("./statement.js").Refusal} */
const PROVIDER_KEY = { prefix: "providerKey", field: REVERSIBLE_TYPE, what: "provider's key" };

/** RFC 9180 identifiers: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256. */
const KEM_ID = 0x0010;
const KDF_ID = 0x0001;
/** AES-256-GCM; AES-128-GCM (0x0001) only for the RFC's own vectors. */
export const AEAD_AES_256_GCM = 0x0002;
export const AEAD_AES_128_GCM = 0x0001;
/** Nn, Nt, Npk of the suite. */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ENC_BYTES = 65;
/** `ct` of R: 16..=256 bytes (the registry refuses others), so a plaintext of at most 240. */
const MAX_CT_BYTES = 256;
const VERSION_LABEL = ascii("HPKE-v1");

/** @param {...Uint8Array<ArrayBuffer>} parts */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** I2OSP(n, 2) @param {number} n */
const twoBytes = (n) => Uint8Array.of(n >> 8, n & 0xff);

/** suite_id of the KEM and of HPKE. @param {number} aeadId */
const suiteIds = (aeadId) => ({
  kem: concat(ascii("KEM"), twoBytes(KEM_ID)),
  hpke: concat(ascii("HPKE"), twoBytes(KEM_ID), twoBytes(KDF_ID), twoBytes(aeadId)),
});

/**
 * HMAC-SHA256 of `data` under `key`.
 * @param {Uint8Array<ArrayBuffer>} key
 * @param {Uint8Array<ArrayBuffer>} data
 */
async function hmac(key, data) {
  const k = await crypto.subtle.importKey(
    "raw",
    key.length > 0 ? key : new Uint8Array(32),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

/**
 * LabeledExtract (RFC 9180 §4): HKDF-Extract with the suite's label. An
 * empty salt is 32 zero bytes (RFC 5869).
 * WebCrypto's HKDF cannot take extract and expand apart, so both are HMAC.
 * @param {Uint8Array<ArrayBuffer>} suite
 * @param {Uint8Array<ArrayBuffer>} salt
 * @param {string} label
 * @param {Uint8Array<ArrayBuffer>} ikm
 */
const labeledExtract = (suite, salt, label, ikm) => hmac(salt, concat(VERSION_LABEL, suite, ascii(label), ikm));

/**
 * LabeledExpand (RFC 9180 §4): HKDF-Expand of `length` bytes with the label.
 * @param {Uint8Array<ArrayBuffer>} suite
 * @param {Uint8Array<ArrayBuffer>} prk
 * @param {string} label
 * @param {Uint8Array<ArrayBuffer>} info
 * @param {number} length at most 255·32
 */
async function labeledExpand(suite, prk, label, info, length) {
  const labeledInfo = concat(twoBytes(length), VERSION_LABEL, suite, ascii(label), info);
  const out = new Uint8Array(length);
  let block = new Uint8Array(0);
  for (let i = 1, at = 0; at < length; i++) {
    block = await hmac(prk, concat(block, labeledInfo, Uint8Array.of(i)));
    out.set(block.subarray(0, Math.min(block.length, length - at)), at);
    at += block.length;
  }
  return out;
}

/**
 * The uncompressed point (SerializePublicKey) of a P-256 public JWK.
 * @param {{ x: string, y: string }} jwk
 */
function pointOf(jwk) {
  const x = fromBase64url(jwk.x);
  const y = fromBase64url(jwk.y);
  if (x.length !== 32 || y.length !== 32) throw new Error("not a P-256 point");
  return concat(Uint8Array.of(4), x, y);
}

/**
 * The serialized public key of an ECDH P-256 public CryptoKey or JWK.
 * @param {CryptoKey | JsonWebKey} key
 */
async function serialized(key) {
  if (key instanceof CryptoKey) return new Uint8Array(await crypto.subtle.exportKey("raw", key));
  return pointOf(/** @type {{ x: string, y: string }} */ (key));
}

/**
 * DH(sk, pk) of DHKEM(P-256): the x-coordinate of the shared point.
 * @param {CryptoKey} privateKey ECDH P-256 (may be non-extractable)
 * @param {CryptoKey} publicKey
 */
const dh = async (privateKey, publicKey) =>
  new Uint8Array(await crypto.subtle.deriveBits({ name: "ECDH", public: publicKey }, privateKey, 256));

/** @param {Uint8Array<ArrayBuffer>} raw */
const importPoint = (raw) => crypto.subtle.importKey("raw", raw, { name: "ECDH", namedCurve: "P-256" }, true, []);

/**
 * ExtractAndExpand of DHKEM: the shared secret of a DH value and the KEM context.
 * @param {Uint8Array<ArrayBuffer>} dhValue
 * @param {Uint8Array<ArrayBuffer>} kemContext enc || pkRm
 * @param {number} aeadId
 */
async function sharedSecret(dhValue, kemContext, aeadId) {
  const { kem } = suiteIds(aeadId);
  const prk = await labeledExtract(kem, new Uint8Array(0), "eae_prk", dhValue);
  return labeledExpand(kem, prk, "shared_secret", kemContext, 32);
}

/**
 * KeySchedule of the base mode (no psk): the AEAD key and base nonce.
 * @param {Uint8Array<ArrayBuffer>} secretValue the KEM's shared secret
 * @param {Uint8Array<ArrayBuffer>} info
 * @param {number} aeadId
 */
async function keySchedule(secretValue, info, aeadId) {
  const { hpke } = suiteIds(aeadId);
  const none = new Uint8Array(0);
  const pskIdHash = await labeledExtract(hpke, none, "psk_id_hash", none);
  const infoHash = await labeledExtract(hpke, none, "info_hash", info);
  const context = concat(Uint8Array.of(0), pskIdHash, infoHash);
  const secret = await labeledExtract(hpke, secretValue, "secret", none);
  const keyBytes = await labeledExpand(hpke, secret, "key", context, aeadId === AEAD_AES_128_GCM ? 16 : 32);
  const nonce = await labeledExpand(hpke, secret, "base_nonce", context, NONCE_BYTES);
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  keyBytes.fill(0);
  secret.fill(0);
  return { key, nonce };
}

/**
 * RFC 9180 single-shot SealBase: `{ enc, ct }` of `plaintext` to the
 * recipient's P-256 public key (raw, 65 bytes). `ephemeral` and `aeadId` are
 * for the known-answer tests: a form always makes a fresh key and uses
 * AES-256-GCM.
 * @param {Uint8Array<ArrayBuffer>} recipientPoint pkRm
 * @param {Uint8Array<ArrayBuffer>} info
 * @param {Uint8Array<ArrayBuffer>} aad
 * @param {Uint8Array<ArrayBuffer>} plaintext
 * @param {{ ephemeral?: CryptoKeyPair, aeadId?: number }} [test]
 */
export async function sealBase(recipientPoint, info, aad, plaintext, test = {}) {
  const aeadId = test.aeadId ?? AEAD_AES_256_GCM;
  const ephemeral =
    test.ephemeral ??
    /** @type {CryptoKeyPair} */ (
      await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])
    );
  const enc = await serialized(ephemeral.publicKey);
  const dhValue = await dh(ephemeral.privateKey, await importPoint(recipientPoint));
  const secretValue = await sharedSecret(dhValue, concat(enc, recipientPoint), aeadId);
  dhValue.fill(0);
  const { key, nonce } = await keySchedule(secretValue, info, aeadId);
  secretValue.fill(0);
  const ct = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, plaintext),
  );
  return { enc, ct };
}

/**
 * RFC 9180 single-shot OpenBase with the recipient's key pair: the private
 * key may be non-extractable (only deriveBits), the public key gives pkRm.
 * Rejects when the ciphertext does not open.
 * @param {{ privateKey: CryptoKey, publicKey: CryptoKey | JsonWebKey }} keyPair
 * @param {Uint8Array<ArrayBuffer>} enc
 * @param {Uint8Array<ArrayBuffer>} info
 * @param {Uint8Array<ArrayBuffer>} aad
 * @param {Uint8Array<ArrayBuffer>} ct
 * @param {{ aeadId?: number }} [test]
 */
export async function openBase(keyPair, enc, info, aad, ct, test = {}) {
  const aeadId = test.aeadId ?? AEAD_AES_256_GCM;
  const recipientPoint = await serialized(keyPair.publicKey);
  const dhValue = await dh(keyPair.privateKey, await importPoint(enc));
  const secretValue = await sharedSecret(dhValue, concat(enc, recipientPoint), aeadId);
  dhValue.fill(0);
  const { key, nonce } = await keySchedule(secretValue, info, aeadId);
  secretValue.fill(0);
  return new Uint8Array(
    await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 }, key, ct),
  );
}

/**
 * The associated data of an R ciphertext:
 * `pseudoform-reversible/1|{recipientOrganization}|{recipientScope}|{kid}`
 * (as `reversible_aad` of the core).
 * @param {{ recipientOrganization: string, recipientScope: string, kid: string }} parts
 * @returns {string}
 */
export function reversibleAad({ recipientOrganization, recipientScope, kid }) {
  return [REVERSIBLE_INFO, recipientOrganization, recipientScope, kid].join("|");
}

/**
 * The digest of an envelope that the TTP signs into its record's claims
 * (`reversible`): unpadded base64url SHA-256 of `{kid}.{enc}.{ct}` (as
 * `reversible_digest` of the core).
 * @param {{ kid: string, enc: string, ct: string }} envelope
 * @returns {Promise<string>}
 */
export async function reversibleDigest({ kid, enc, ct }) {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", ascii(`${kid}.${enc}.${ct}`))));
}

/**
 * The key id of a P-256 public JWK: its RFC 7638 thumbprint.
 * @param {{ kty: string, crv: string, x: string, y: string }} jwk
 * @returns {Promise<string>}
 */
export const kidOf = (jwk) => ecThumbprint(jwk);

/**
 * A provider's encryption key, verified: its kid, public JWK and WebCrypto key.
 * @typedef {{ kid: string, jwk: api.ProviderJwk, cryptoKey: CryptoKey }} ProviderKey
 */

/**
 * One statement of the provider's key, verified, with its `current` flag.
 * @param {unknown} statement
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal" | "ttpSigningKeys" | "provider">} o
 */
async function verifiedKey(statement, o) {
  const claims = await verifiedClaims(statement, STATEMENT_TYP, o, PROVIDER_KEY);
  if (!isText(claims.provider)) throw refusedBy(PROVIDER_KEY, "invalid", "the provider's key names no provider");
  if (claims.provider !== o.provider) {
    throw refusedBy(PROVIDER_KEY, "mismatch", "the TTP's statement is of another provider's key");
  }
  const jwk = claims.jwk;
  if (
    typeof claims.current !== "boolean" ||
    jwk?.kty !== "EC" ||
    jwk.crv !== "P-256" ||
    jwk.alg !== REVERSIBLE_SUITE ||
    jwk.use !== "enc" ||
    !isText(jwk.x) ||
    !isText(jwk.y) ||
    !isText(jwk.kid) ||
    "d" in jwk
  ) {
    throw refusedBy(PROVIDER_KEY, "invalid", `the provider's key is not a P-256 ${REVERSIBLE_SUITE} key`);
  }
  if ((await kidOf(jwk)) !== jwk.kid) {
    throw refusedBy(PROVIDER_KEY, "invalid", "the provider key's kid is not its thumbprint");
  }
  /** @type {CryptoKey} */
  let cryptoKey;
  try {
    cryptoKey = await importPoint(pointOf(jwk));
  } catch (error) {
    throw refusedBy(PROVIDER_KEY, "invalid", "the provider's key is not a point of P-256", error);
  }
  /** @type {api.ProviderJwk} */
  const publicJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, kid: jwk.kid, alg: REVERSIBLE_SUITE, use: "enc" };
  return { current: claims.current, key: { kid: jwk.kid, jwk: publicJwk, cryptoKey } };
}

/**
 * The provider's current encryption key from the TTP's statements (the
 * `keys` of GET /v1/provider-keys, one JWS, or that answer itself), every
 * statement verified: signed by a (pinned) TTP key, of `o.provider`, a P-256
 * key of the suite whose kid is its thumbprint. Exactly one must be current.
 * Refuses with `providerKey.missing` (no current key), `providerKey.invalid`
 * or `providerKey.mismatch` (another provider's key), field `R`.
 * @param {unknown} statementsOrJws
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal" | "ttpSigningKeys" | "provider">} o
 * @returns {Promise<ProviderKey>}
 */
export async function providerKeyOf(statementsOrJws, o) {
  if (!isText(o.provider)) {
    throw refusedBy(PROVIDER_KEY, "missing", "there is no provider to encrypt the patient number to");
  }
  // An array has a `keys` method: a list is taken as it is.
  const list =
    typeof statementsOrJws === "string" || Array.isArray(statementsOrJws)
      ? [statementsOrJws].flat()
      : /** @type {{ keys?: unknown } | undefined} */ (statementsOrJws)?.keys;
  if (!Array.isArray(list)) throw refusedBy(PROVIDER_KEY, "invalid", "the TTP's provider keys are not a list");
  const keys = await Promise.all(list.map((statement) => verifiedKey(statement, o)));
  const current = keys.filter((k) => k.current);
  if (current.length > 1) throw refusedBy(PROVIDER_KEY, "invalid", "the TTP states more than one current key");
  if (!current[0]) throw refusedBy(PROVIDER_KEY, "missing", "the TTP states no current key of the provider");
  return current[0].key;
}

/**
 * The provider's current key from the TTP (GET /v1/provider-keys), verified.
 * A provider the TTP does not know is `providerKey.missing`.
 * @param {Pick<api.PseudonymiseOptions, "ttp" | "timeoutMs" | "signal" | "ttpSigningKeys" | "provider">} o
 * @returns {Promise<ProviderKey>}
 */
export async function fetchProviderKey(o) {
  if (!isText(o.provider)) {
    throw refusedBy(PROVIDER_KEY, "missing", "there is no provider to encrypt the patient number to");
  }
  const url = new URL("v1/provider-keys", o.ttp.endsWith("/") ? o.ttp : `${o.ttp}/`);
  url.searchParams.set("provider", o.provider);
  /** @type {any} */
  let answer;
  try {
    answer = await requestJson("ttp", url.toString(), { method: "GET" }, o);
  } catch (error) {
    const e = PseudoformError.from(error);
    if (e.serverCode === "provider.unknown") {
      throw refusedBy(PROVIDER_KEY, "missing", "the TTP knows no encryption key of the provider", error);
    }
    throw e;
  }
  if (answer?.provider !== o.provider) {
    throw refusedBy(PROVIDER_KEY, "mismatch", "the TTP answered with another provider's keys");
  }
  return providerKeyOf(answer.keys, o);
}

/**
 * `submission.reversible`: `plaintext` (MRN's canonical input) sealed to the
 * provider's verified key with `aad` (reversibleAad). The envelope's `kid`
 * is the thumbprint of the key sealed to, computed here (a given `kid` that
 * differs is refused: `providerKey.invalid`).
 * @param {{ kid: string, cryptoKey?: CryptoKey, x?: string, y?: string }} publicKey
 *   the verified key (providerKeyOf) or its JWK
 * @param {string} plaintext
 * @param {string} aad
 * @returns {Promise<api.ReversibleEnvelope>}
 */
export async function sealReversible(publicKey, plaintext, aad) {
  const bytes = new TextEncoder().encode(plaintext);
  try {
    if (bytes.length + TAG_BYTES > MAX_CT_BYTES) {
      throw new PseudoformError("reversible.tooLong", "the patient number is too long to encrypt", REVERSIBLE_TYPE);
    }
    const point = publicKey.cryptoKey
      ? await serialized(publicKey.cryptoKey)
      : pointOf(/** @type {{ x: string, y: string }} */ (publicKey));
    const kid = await kidOfPoint(point);
    if (kid !== publicKey.kid) {
      throw refusedBy(PROVIDER_KEY, "invalid", "the provider key's kid is not its thumbprint");
    }
    const { enc, ct } = await sealBase(point, ascii(REVERSIBLE_INFO), ascii(aad), bytes);
    return { type: REVERSIBLE_TYPE, kid, enc: base64url(enc), ct: base64url(ct) };
  } finally {
    bytes.fill(0);
  }
}

/**
 * The RFC 7638 thumbprint of an uncompressed P-256 point.
 * @param {Uint8Array} point
 */
const kidOfPoint = (point) =>
  kidOf({ kty: "EC", crv: "P-256", x: base64url(point.subarray(1, 33)), y: base64url(point.subarray(33)) });

/**
 * Opens `submission.reversible` with the provider's key pair (the private
 * key may be non-extractable) and the record's `aad`: the plaintext
 * `provider|mrn`. An envelope of another key (its kid is not the key pair's
 * thumbprint), record or registry, or a malformed one, is
 * `reversible.undecryptable` (field `reversible`).
 * @param {{ privateKey: CryptoKey, publicKey: CryptoKey | JsonWebKey }} keyPair
 * @param {unknown} envelope
 * @param {string} aad
 * @returns {Promise<string>}
 */
export async function openReversible(keyPair, envelope, aad) {
  const fail = (/** @type {unknown} */ cause = undefined) =>
    new PseudoformError(
      "reversible.undecryptable",
      "the reversible pseudonym does not open with this key for this record",
      "reversible",
      cause === undefined ? {} : { cause },
    );
  const e = /** @type {Partial<api.ReversibleEnvelope> | null | undefined} */ (envelope);
  if (e?.type !== REVERSIBLE_TYPE || !isText(e.kid) || !isText(e.enc) || !isText(e.ct) || typeof aad !== "string") {
    throw fail();
  }
  /** @type {Uint8Array<ArrayBuffer>} */
  let plaintext;
  try {
    const enc = fromBase64url(e.enc);
    const ct = fromBase64url(e.ct);
    if (enc.length !== ENC_BYTES || ct.length < TAG_BYTES || ct.length > MAX_CT_BYTES) throw new Error("shape");
    const jwk =
      keyPair.publicKey instanceof CryptoKey
        ? await crypto.subtle.exportKey("jwk", keyPair.publicKey)
        : keyPair.publicKey;
    const point = pointOf(/** @type {{ x: string, y: string }} */ (jwk));
    if ((await kidOfPoint(point)) !== e.kid) throw new Error("another key");
    plaintext = await openBase(keyPair, enc, ascii(REVERSIBLE_INFO), ascii(aad), ct);
  } catch (error) {
    throw fail(error);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(plaintext);
  } catch (error) {
    throw fail(error);
  } finally {
    plaintext.fill(0);
  }
}
