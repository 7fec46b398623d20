// TtpSession: the browser's credential at the TTP, short-lived and bound to
// a key the browser holds. It owns a non-extractable WebCrypto P-256 key
// (DPoP, RFC 9449), asks its `subjectToken` callback (the provider's login:
// see login.js) for a subject token naming that key's thumbprint and the
// page's origin, exchanges it at the TTP's `POST /v1/token` (RFC 8693 token
// exchange), keeps the DPoP-bound access token until shortly before it
// expires, and signs a fresh proof for every request. Nothing of it is ever
// stored: it lives as long as the page. By default its token is for the
// TTP's evaluation; a provider's validation page asks for `scope: "validate"`
// with the registry as `audience` (`<organization>|<scope>`), a token the
// TTP refuses itself and the registry accepts.
/** @import * as api from "./index.js" */
import { PseudoformError } from "./errors.js";
import { dpopProof, generateDpopKey, sha256 } from "./dpop.js";
import { requestJson } from "./http.js";

const GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const SUBJECT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 8 * 1024;
/** An access token is renewed this many seconds before it expires. */
export const RENEW_BEFORE_SECONDS = 30;

/** @param {unknown} token */
const isJws = (token) => typeof token === "string" && token.length <= MAX_TOKEN_LENGTH && COMPACT_JWS.test(token);

export class TtpSession {
  /** @type {string} */
  #tokenUrl;
  /** @type {api.SubjectTokenSource} */
  #subjectToken;
  /** @type {Promise<import("./dpop.js").DpopKey>} */
  #key;
  /** @type {{ token: string, renewAt: number, provider: string } | undefined} */
  #current;
  /** @type {Promise<{ token: string, renewAt: number, provider: string }> | undefined} */
  #pending;
  /** @type {{ scope?: string, audience?: string }} */
  #grant;

  /**
   * @param {api.TtpSessionOptions} options
   */
  constructor({ ttp, subjectToken, scope, audience }) {
    if (typeof subjectToken !== "function") {
      throw new PseudoformError("config.invalid", "a TtpSession needs a subjectToken function", "subjectToken");
    }
    for (const [name, value] of /** @type {const} */ ([
      ["scope", scope],
      ["audience", audience],
    ])) {
      if (value !== undefined && (typeof value !== "string" || value === "")) {
        throw new PseudoformError("config.invalid", `option ${name} must be a non-empty string`, name);
      }
    }
    this.#grant = { scope, audience };
    let base;
    try {
      base = new URL(ttp, globalThis.location?.href);
    } catch {
      throw new PseudoformError("config.invalid", "option ttp must be a URL", "ttp");
    }
    this.#tokenUrl = new URL("v1/token", base.href.endsWith("/") ? base.href : `${base.href}/`).toString();
    this.#subjectToken = subjectToken;
    this.#key = generateDpopKey();
    // A failure is reported when the key is first needed.
    this.#key.catch(() => {});
  }

  /** The RFC 7638 thumbprint of the session's DPoP key (`cnf.jkt`). */
  async thumbprint() {
    return (await this.#key).jkt;
  }

  /** The provider of the current access token, once there is one. */
  get provider() {
    return this.#current?.provider;
  }

  /** Whether it holds an access token that needs no login before it is renewed. */
  get loggedIn() {
    return Boolean(this.#current && Date.now() / 1000 < this.#current.renewAt);
  }

  /** Drops the access token; the next request obtains a new one. */
  forget() {
    this.#current = undefined;
  }

  /**
   * The DPoP-bound access token: the cached one, or a new one by token
   * exchange (asking for a subject token first). Concurrent callers share
   * one exchange.
   * @param {{ timeoutMs?: number, signal?: AbortSignal }} [limits]
   * @returns {Promise<{ token: string, provider: string }>}
   */
  async accessToken(limits = {}) {
    const now = Date.now() / 1000;
    if (this.#current && now < this.#current.renewAt) return this.#current;
    this.#pending ??= this.#exchange(limits).finally(() => (this.#pending = undefined));
    this.#current = await this.#pending;
    return this.#current;
  }

  /**
   * @param {{ timeoutMs?: number, signal?: AbortSignal }} limits
   */
  async #exchange(limits) {
    const key = await this.#key;
    const origin = globalThis.location?.origin;
    if (!origin || origin === "null") {
      throw new PseudoformError("auth.noOrigin", "the page has no origin to bind a credential to");
    }
    const subjectToken = await this.#subjectToken({ jkt: key.jkt, origin });
    if (!isJws(subjectToken)) {
      throw new PseudoformError("login.malformed", "the login gave no usable subject token", "subjectToken");
    }
    const form = new URLSearchParams({
      grant_type: GRANT,
      subject_token: subjectToken,
      subject_token_type: SUBJECT_TYPE,
    });
    if (this.#grant.scope !== undefined) form.set("scope", this.#grant.scope);
    if (this.#grant.audience !== undefined) form.set("audience", this.#grant.audience);
    const proof = await dpopProof(key, "POST", this.#tokenUrl);
    const answer = await requestJson("ttp", this.#tokenUrl, { method: "POST", form, headers: { dpop: proof } }, limits);
    const expiresIn = answer?.expires_in;
    if (
      !isJws(answer?.access_token) ||
      answer.token_type !== "DPoP" ||
      typeof expiresIn !== "number" ||
      !(expiresIn > 0) ||
      typeof answer.provider !== "string"
    ) {
      throw new PseudoformError("ttp.malformedAnswer", "the TTP's token answer is not a DPoP access token");
    }
    const renewAt = Date.now() / 1000 + Math.max(expiresIn - RENEW_BEFORE_SECONDS, expiresIn / 2);
    return { token: /** @type {string} */ (answer.access_token), renewAt, provider: answer.provider };
  }

  /**
   * The headers of a TTP request: `Authorization: DPoP <token>` and a fresh
   * proof for `method` on `url` with `ath`.
   * @param {string} method
   * @param {string} url absolute
   * @param {{ timeoutMs?: number, signal?: AbortSignal }} [limits]
   * @returns {Promise<Record<string, string>>}
   */
  async headers(method, url, limits) {
    const { token } = await this.accessToken(limits);
    const proof = await dpopProof(await this.#key, method, url, { accessToken: token });
    return { authorization: `DPoP ${token}`, dpop: proof };
  }

  /**
   * A submitter proof for the registry: a DPoP proof of the session's key
   * for `method` on `url`, with `rec` = base64url SHA-256 of the record JWE.
   * @param {string} method
   * @param {string} url absolute
   * @param {string} record the record JWE
   */
  async submitterProof(method, url, record) {
    return dpopProof(await this.#key, method, url, { extra: { rec: await sha256(record) } });
  }
}

/**
 * The credential headers of a TTP request: the session's (DPoP), or a
 * static bearer token (development TTPs only); none refuses to send.
 * @param {{ session?: api.TtpSession, accessToken?: string, timeoutMs?: number, signal?: AbortSignal }} options
 * @param {string} method
 * @param {string} url absolute
 * @returns {Promise<Record<string, string>>}
 */
export async function credentialHeaders(options, method, url) {
  if (options.session) return options.session.headers(method, url, options);
  if (options.accessToken) return { authorization: `Bearer ${options.accessToken}` };
  throw new PseudoformError("auth.noCredential", "there is no credential for the TTP: nothing was sent", "session");
}
