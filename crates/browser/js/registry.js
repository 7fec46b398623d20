// The registry client: the submission the browser posts to the registry and
// its delivery. The shapes are the JSON of the protocol crate's wire types
// (crates/protocol/src/registry.rs, docs/openapi-registry.yaml), declared again
// here as JSDoc types; the page tests post them to the real registry, which
// refuses unknown members.
/** @import { TemporaryPseudonym } from "./index.js" */
import { requestJson } from "./http.js";

/**
 * `POST /api/submissions` body (`Submission`): one pseudonymised record.
 * @typedef {object} Submission
 * @property {string} recipientOrganization the organisation the pseudonyms were made for
 * @property {string} recipientScope its scope
 * @property {number} methodVersion the method version the browser used
 * @property {TemporaryPseudonym[]} pseudonyms one temporary pseudonym per type
 * @property {Record<string, string>} data the clinical fields by name; never identifying ones
 */

/**
 * The registry's answer (`Receipt`, 201).
 * @typedef {{ recordId: number, pseudonyms: string[] }} Receipt
 */

/**
 * The submission of one record.
 * @param {{ recipientOrganization: string, recipientScope: string }} recipient
 * @param {number} methodVersion
 * @param {TemporaryPseudonym[]} pseudonyms
 * @param {Record<string, string>} data
 * @returns {Submission}
 */
export function submission(recipient, methodVersion, pseudonyms, data) {
  return {
    recipientOrganization: recipient.recipientOrganization,
    recipientScope: recipient.recipientScope,
    methodVersion,
    pseudonyms,
    data,
  };
}

/**
 * Posts a submission to the registry's URL. Resolves to its receipt, or to
 * undefined for a 2xx without a JSON body (the record is stored all the same).
 * @param {string} url
 * @param {Submission} body
 * @param {{ timeoutMs?: number }} limits
 * @returns {Promise<Partial<Receipt> | undefined>}
 */
export function postSubmission(url, body, { timeoutMs }) {
  return requestJson("registry", url, { method: "POST", json: body }, { timeoutMs, allowEmpty: true });
}
