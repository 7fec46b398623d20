// The TTP client: the recipient's policy, the batch endpoint (one request per
// record or per batch chunk, one record JWE per record), and the national
// POST /oprf/eval (one request per type, in parallel). Answers are checked
// before anything is used.
//
// The request bodies are the JSON of the protocol crate's wire types
// (crates/protocol/src/ttp.rs, docs/openapi-ttp.yaml), declared again here as
// JSDoc types; the page tests send them to the real TTP.
/** @import * as api from "./index.js" */
/** @import { PseudonymTypeCode } from "./constants.js" */
import { PROOF_REPLAYED } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";
import { credentialHeaders } from "./session.js";

const COMPACT_JWE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/;
const MAX_JWE_LENGTH = 64 * 1024;

/**
 * What every call needs: where the TTP is, for whom, and how to call it.
 * @typedef {Pick<api.PseudonymiseOptions,
 *   "ttp" | "recipientOrganization" | "recipientScope" | "session" | "accessToken" | "timeoutMs" | "signal">} TtpOptions
 */

/**
 * One blinded element to evaluate (`BlindedItem`).
 * @typedef {{ type: PseudonymTypeCode, blindedInput: string }} BlindedItem
 */

/**
 * `POST /v1/evaluate` body (`BatchRequest`).
 * @typedef {object} BatchRequest
 * @property {string} recipientOrganization
 * @property {string} recipientScope
 * @property {{ items: BlindedItem[], reversible?: string }[]} records `reversible`: the
 *   digest of the record's R envelope, which the TTP signs into its claims
 */

/**
 * National `POST /oprf/eval` body (`EvalRequest`); no `pseudonymType` means B.
 * @typedef {object} EvalRequest
 * @property {string} encryptedPersonalId the blinded element
 * @property {string} recipientOrganization
 * @property {string} recipientScope
 * @property {PseudonymTypeCode} [pseudonymType]
 */

/**
 * @param {string} base
 * @param {string} path
 */
function endpoint(base, path) {
  return new URL(path, base.endsWith("/") ? base : `${base}/`).toString();
}

/**
 * A rejection handler: a 401 drops the session's access token (so the next
 * attempt obtains a new one), then the error is thrown on.
 * @param {TtpOptions} options
 * @returns {(error: unknown) => never}
 */
const forgetRefused = (options) => (error) => {
  if (/** @type {{ status?: unknown }} */ (error)?.status === 401) options.session?.forget();
  throw error;
};

/**
 * POSTs `body` to the TTP's `url` under the session's credential. A refusal
 * of the proof as used before (a load balancer resent the request after a
 * replica died, and that replica had spent the proof) is answered by one
 * more try with a fresh proof; any other refusal is thrown on.
 * @param {string} url
 * @param {unknown} body
 * @param {TtpOptions} options
 */
async function postToTtp(url, body, options) {
  for (let attempt = 1; ; attempt++) {
    const headers = await credentialHeaders(options, "POST", url);
    try {
      return await requestJson("ttp", url, { method: "POST", json: body, headers }, options);
    } catch (error) {
      const spent = /** @type {{ serverCode?: unknown }} */ (error)?.serverCode === PROOF_REPLAYED;
      if (!(spent && attempt === 1)) forgetRefused(options)(error);
    }
  }
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function checkJwe(value) {
  if (typeof value !== "string" || value.length > MAX_JWE_LENGTH || !COMPACT_JWE.test(value)) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP answer holds no valid compact JWE");
  }
  return value;
}

/**
 * What a recipient may receive and must have (`Policy`, the members used):
 * `recipientKey` as the TTP answered it (its statement of the recipient's
 * key, unverified), `recipient` once verified (recipient-key.js).
 * @typedef {{ allowedTypes: string[], requiredTypes: string[], recipientKey?: unknown,
 *   recipient?: import("./recipient-key.js").RecipientKey }} Policy
 */

/** @type {(list: unknown) => list is string[]} */
const isStrings = (list) => Array.isArray(list) && list.every((t) => typeof t === "string");

/**
 * `GET /v1/policy`: which types the recipient may receive and which every
 * record must have (none when an older TTP does not say).
 * @param {TtpOptions} options
 * @returns {Promise<Policy>}
 */
export async function fetchPolicy(options) {
  const url = new URL(endpoint(options.ttp, "v1/policy"));
  url.searchParams.set("recipientOrganization", options.recipientOrganization);
  url.searchParams.set("recipientScope", options.recipientScope);
  const policy = await requestJson("ttp", url.toString(), { method: "GET" }, options);
  const required = policy?.requiredTypes ?? [];
  if (!isStrings(policy?.allowedTypes) || !isStrings(required)) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP policy answer has no list of allowed types");
  }
  return { allowedTypes: policy.allowedTypes, requiredTypes: required, recipientKey: policy.recipientKey };
}

/**
 * `POST /v1/evaluate` for records of prepared items; resolves to one JWE per
 * record, in order. `reversibles[i]`, when given, is the digest of record
 * i's R envelope (reversibleDigest), signed by the TTP into its claims.
 * @param {BlindedItem[][]} records
 * @param {TtpOptions} options
 * @param {(string | undefined)[]} [reversibles]
 * @returns {Promise<string[]>}
 */
export async function evaluateRecords(records, options, reversibles = []) {
  /** @type {BatchRequest} */
  const body = {
    recipientOrganization: options.recipientOrganization,
    recipientScope: options.recipientScope,
    records: records.map((items, i) => {
      const reversible = reversibles[i];
      const record = { items: items.map(({ type, blindedInput }) => ({ type, blindedInput })) };
      return reversible === undefined ? record : { ...record, reversible };
    }),
  };
  const answer = await postToTtp(endpoint(options.ttp, "v1/evaluate"), body, options);
  if (!Array.isArray(answer?.records) || answer.records.length !== records.length) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP answered for a different number of records");
  }
  return answer.records.map((/** @type {{ jwe?: unknown } | null} */ r) => checkJwe(r?.jwe));
}

/**
 * National `POST /oprf/eval`, one call per item, in parallel; one JWE per item.
 * @param {BlindedItem[]} items
 * @param {TtpOptions} options
 * @returns {Promise<string[]>}
 */
export async function evaluateNational(items, options) {
  return Promise.all(
    items.map(async ({ type, blindedInput }) => {
      /** @type {EvalRequest} */
      const body = {
        encryptedPersonalId: blindedInput,
        recipientOrganization: options.recipientOrganization,
        recipientScope: options.recipientScope,
      };
      if (type !== "B") body.pseudonymType = type;
      const answer = await postToTtp(endpoint(options.ttp, "oprf/eval"), body, options);
      return checkJwe(answer?.jwe);
    }),
  );
}

/**
 * The temporary pseudonym of the national guide: base64url of the JSON package.
 * @param {string} jwe the evaluation for the recipient
 * @param {string} blindFactor padded base64url
 */
export function packTemporaryPseudonym(jwe, blindFactor) {
  const json = JSON.stringify({ evaluated_output: jwe, blind_factor: blindFactor });
  const bytes = new TextEncoder().encode(json);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_");
}
