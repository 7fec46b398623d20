// The registry client: the submission the browser posts to the registry, its
// delivery, and what a failed delivery means for the record. The shapes are
// the JSON of the protocol crate's wire types (crates/protocol/src/registry.rs,
// docs/openapi-registry.yaml), declared in index.d.ts; the page tests post
// them to the real registry, which refuses unknown members.
/** @import * as api from "./index.js" */
import { requestJson } from "./http.js";

/**
 * Posts a submission to the registry's URL. Resolves to its receipt, or to
 * undefined for a 2xx without a JSON body (the record is stored all the
 * same). Rejects with a PseudoformError; `outcomeOf` says what it means.
 * With `session`, the post carries the submitter proof (header `DPoP`) the
 * registry needs for a record made with that session's credential.
 * @type {typeof api.postSubmission}
 */
export async function postSubmission(url, body, { timeoutMs, signal, session } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  // The submitter proof: signed afresh for every send, a resend too (its
  // jti is single use at the registry, its iat must be recent).
  // `rec` is of the record JWE, or of the national packages joined by ".".
  if (session) {
    const record = "record" in body ? body.record : body.pseudonyms.map((p) => p.temporaryPseudonym).join(".");
    headers.dpop = await session.submitterProof("POST", new URL(url, globalThis.location?.href).toString(), record);
  }
  return requestJson("registry", url, { method: "POST", json: body, headers }, { timeoutMs, signal, allowEmpty: true });
}

/**
 * What a failed delivery means for the record:
 * - `expired`: not stored, and this submission can no longer be stored (its
 *   record JWE has expired): pseudonymise afresh;
 * - `refused`: not stored (any other 4xx answer): resending the same will
 *   not help;
 * - `unknown`: no answer, a 5xx, a timeout: the registry may have stored
 *   it. Resend exactly the same submission, never a new pseudonymisation
 *   of the same record: the registry stores one submission at most once and
 *   answers a resend of a stored one with its first receipt (a 2xx).
 * A `pseudonym.replayed` refusal means a JWE of this submission belongs to
 * another stored submission: this one is not stored (`refused`).
 * @type {typeof api.outcomeOf}
 */
export function outcomeOf(error) {
  const e = /** @type {{ code?: unknown, serverCode?: unknown } | null | undefined} */ (error);
  if (e?.serverCode === "pseudonym.expired") return "expired";
  if (e?.code === "registry.rejected" || e?.code === "registry.refused" || e?.code === "registry.rateLimited") {
    return "refused";
  }
  return "unknown";
}
