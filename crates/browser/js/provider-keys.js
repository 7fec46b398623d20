// The provider's encryption keys in its own browser profile, for the
// validation page: ECDH P-256 key pairs whose private half is a
// non-extractable WebCrypto key, kept in IndexedDB (database
// `pseudoform-provider-keys`, object store `keys`, keyed by `kid`, the RFC
// 7638 thumbprint the TTP's directory names). A key comes from a PKCS#8 PEM
// file (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`),
// read once and stored non-extractable, or is generated in the page, whose
// public SPKI PEM the provider hands to the TTP operator. Nothing else is
// ever written to storage by the page.
import { PseudoformError } from "./errors.js";
import { kidOf } from "./reversible.js";

/** The IndexedDB database of the keys. */
export const KEY_DATABASE = "pseudoform-provider-keys";
/** Its object store, keyed by `kid`. */
export const KEY_STORE = "keys";
const ECDH = { name: "ECDH", namedCurve: "P-256" };
/** A PEM file larger than this is no P-256 key. */
const MAX_PEM = 8 * 1024;

/**
 * A stored key pair.
 * @typedef {{ kid: string, privateKey: CryptoKey, publicKey: CryptoKey, importedAt: string }} ProviderKey
 */

/**
 * The DER bytes of the one PEM block labelled `label` in `text`.
 * @param {string} text
 * @param {string} label
 */
function pemBody(text, label) {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (!match) return undefined;
  try {
    return Uint8Array.from(atob(match[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/**
 * PEM text of DER bytes.
 * @param {ArrayBuffer} der
 * @param {string} label
 */
function pem(der, label) {
  let binary = "";
  for (const b of new Uint8Array(der)) binary += String.fromCharCode(b);
  const lines = btoa(binary).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * The public key (and its kid) of a private key given as a JWK with `d`.
 * @param {JsonWebKey} jwk
 */
async function publicOf(jwk) {
  const { kty, crv, x, y } = jwk;
  if (kty !== "EC" || crv !== "P-256" || !x || !y) {
    throw new PseudoformError("providerKey.invalid", "the key file holds no P-256 key", "keyFile");
  }
  const publicJwk = { kty, crv, x, y };
  const publicKey = await crypto.subtle.importKey("jwk", publicJwk, ECDH, true, []);
  return { publicKey, kid: await kidOf(publicJwk) };
}

/**
 * A key pair from the text of a PKCS#8 PEM file (`BEGIN PRIVATE KEY`): its
 * private key re-imported non-extractable, its public key and kid.
 * @param {string} text
 * @returns {Promise<ProviderKey>}
 */
export async function keyFromPem(text) {
  const der = typeof text === "string" && text.length <= MAX_PEM ? pemBody(text, "PRIVATE KEY") : undefined;
  if (!der) {
    throw new PseudoformError(
      "providerKey.invalid",
      "the key file is no PKCS#8 PEM private key (BEGIN PRIVATE KEY)",
      "keyFile",
    );
  }
  let privateKey, jwk;
  try {
    // Once extractable, only to learn the public point; then kept non-extractable.
    const once = await crypto.subtle.importKey("pkcs8", der, ECDH, true, ["deriveBits"]);
    jwk = await crypto.subtle.exportKey("jwk", once);
    privateKey = await crypto.subtle.importKey("pkcs8", der, ECDH, false, ["deriveBits"]);
  } catch (error) {
    throw new PseudoformError("providerKey.invalid", "the key file holds no P-256 private key", "keyFile", {
      cause: error,
    });
  }
  const { publicKey, kid } = await publicOf(jwk);
  return { kid, privateKey, publicKey, importedAt: new Date().toISOString() };
}

/**
 * A new key pair made in the page (the private key non-extractable).
 * @returns {Promise<ProviderKey>}
 */
export async function generateKey() {
  const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey(ECDH, false, ["deriveBits"]));
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const { kid } = await publicOf(jwk);
  return { kid, privateKey: pair.privateKey, publicKey: pair.publicKey, importedAt: new Date().toISOString() };
}

/**
 * The SPKI PEM of a public key (`BEGIN PUBLIC KEY`), for the TTP's `encryption_keys`.
 * @param {CryptoKey} publicKey
 */
export async function publicPem(publicKey) {
  return pem(await crypto.subtle.exportKey("spki", publicKey), "PUBLIC KEY");
}

/** @returns {Promise<IDBDatabase>} */
function openDatabase() {
  return new Promise((resolve, reject) => {
    if (!globalThis.indexedDB) {
      reject(new PseudoformError("providerKey.noStorage", "this browser keeps no IndexedDB", "keyFile"));
      return;
    }
    const request = indexedDB.open(KEY_DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(KEY_STORE, { keyPath: "kid" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () =>
      reject(new PseudoformError("providerKey.noStorage", "the key store cannot be opened", "keyFile"));
  });
}

/**
 * Runs `use` on the key store in one transaction.
 * @template T
 * @param {IDBTransactionMode} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} use
 * @returns {Promise<T>}
 */
async function withStore(mode, use) {
  const db = await openDatabase();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(KEY_STORE, mode);
      const request = use(transaction.objectStore(KEY_STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = transaction.onabort = () =>
        reject(new PseudoformError("providerKey.noStorage", "the key store refused the operation", "keyFile"));
    });
  } finally {
    db.close();
  }
}

/**
 * Stores a key pair (replacing one of the same kid).
 * @param {ProviderKey} key
 */
export async function storeKey(key) {
  await withStore("readwrite", (store) => store.put(key));
}

/**
 * Every stored key pair, by kid.
 * @returns {Promise<Map<string, ProviderKey>>}
 */
export async function storedKeys() {
  const all = /** @type {ProviderKey[]} */ (await withStore("readonly", (store) => store.getAll()));
  return new Map(all.map((key) => [key.kid, key]));
}

/**
 * Removes the key pair of `kid`.
 * @param {string} kid
 */
export async function deleteKey(kid) {
  await withStore("readwrite", (store) => store.delete(kid));
}
