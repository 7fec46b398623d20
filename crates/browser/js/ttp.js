// The TTP client: the recipient's policy, the batch endpoint (one request per
// record or per batch chunk), and the national POST /oprf/eval (one request
// per type, in parallel). Answers are checked before anything is used.
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";

const COMPACT_JWE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}$/;
const MAX_JWE_LENGTH = 64 * 1024;

function endpoint(base, path) {
  return new URL(path, base.endsWith("/") ? base : `${base}/`).toString();
}

function checkJwe(value) {
  if (typeof value !== "string" || value.length > MAX_JWE_LENGTH || !COMPACT_JWE.test(value)) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP answer holds no valid compact JWE");
  }
  return value;
}

/** `GET /v1/policy`: which types the recipient may receive. */
export async function fetchPolicy(options) {
  const url = new URL(endpoint(options.ttp, "v1/policy"));
  url.searchParams.set("recipientOrganization", options.recipientOrganization);
  url.searchParams.set("recipientScope", options.recipientScope);
  const policy = await requestJson("ttp", url.toString(), { method: "GET" }, options);
  if (!Array.isArray(policy?.allowedTypes) || !policy.allowedTypes.every((t) => typeof t === "string")) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP policy answer has no list of allowed types");
  }
  return policy;
}

/**
 * `POST /v1/evaluate` for records of prepared items; resolves to one JWE per
 * record, in order.
 * @param {{ type: string, blindedInput: string }[][]} records
 */
export async function evaluateRecords(records, options) {
  const body = {
    recipientOrganization: options.recipientOrganization,
    recipientScope: options.recipientScope,
    records: records.map((items) => ({
      items: items.map(({ type, blindedInput }) => ({ type, blindedInput })),
    })),
  };
  const answer = await requestJson("ttp", endpoint(options.ttp, "v1/evaluate"),
    { method: "POST", json: body, accessToken: options.accessToken }, options);
  if (!Array.isArray(answer?.records) || answer.records.length !== records.length) {
    throw new PseudoformError("ttp.malformedAnswer", "the TTP answered for a different number of records");
  }
  return answer.records.map((r) => checkJwe(r?.jwe));
}

/** National `POST /oprf/eval`, one call per item, in parallel; one JWE per item. */
export async function evaluateNational(items, options) {
  return Promise.all(items.map(async ({ type, blindedInput }) => {
    const body = {
      encryptedPersonalId: blindedInput,
      recipientOrganization: options.recipientOrganization,
      recipientScope: options.recipientScope,
    };
    if (type !== "B") body.pseudonymType = type;
    const answer = await requestJson("ttp", endpoint(options.ttp, "oprf/eval"),
      { method: "POST", json: body, accessToken: options.accessToken }, options);
    return checkJwe(answer?.jwe);
  }));
}

/** The temporary pseudonym of the national guide: base64url of the JSON package. */
export function packTemporaryPseudonym(jwe, blindFactor) {
  const json = JSON.stringify({ evaluated_output: jwe, blind_factor: blindFactor });
  const bytes = new TextEncoder().encode(json);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_");
}
