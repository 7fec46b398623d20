// The workbench's FHIR download: the delivery Bundle (transaction) of a
// chunk's submissions as docs/fhir.md defines it: the same JSON as the
// Rust `pseudoform_protocol::fhir::bundle_of`, written compact with object
// members sorted (vector docs/vectors/fhir-bundle.json, byte for byte):
// per submission a Patient whose identifiers are its pseudonym elements
// (no identifying element at all), then one Observation per clinical field.
/** @import * as api from "../index.js" */
import { FHIR } from "../constants.js";

/** The system URI of `kind` for the registry: `{systemPrefix}{kind}:{org}:{scope}`. */
const system = (/** @type {string} */ kind, /** @type {string} */ org, /** @type {string} */ scope) =>
  `${FHIR.systemPrefix}${kind}:${org}:${scope}`;

/** Hex of bytes. */
const hex = (/** @type {Uint8Array} */ b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/**
 * The entry's fullUrl: a version-4-form UUID of SHA-256 of
 * `{fullUrlDomain}|{batchId}|{index}`.
 * @param {string} batchId
 * @param {number} index
 */
async function fullUrl(batchId, index) {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${FHIR.fullUrlDomain}|${batchId}|${index}`)),
  );
  const b = digest.slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = hex(b);
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * A string value, or its absence (FHIR strings are never empty).
 * @param {Record<string, unknown>} target
 * @param {string} text
 */
function putString(target, text) {
  if (text === "") {
    target.dataAbsentReason = { coding: [{ system: FHIR.dataAbsentSystem, code: FHIR.dataAbsentCode }] };
  } else target.valueString = text;
}

/**
 * @param {api.SubmissionPseudonyms} s
 * @param {string} org
 * @param {string} scope
 */
function patientOf(s, org, scope) {
  /** @type {{ system: string, value: string }[]} */
  const identifier = [];
  if ("record" in s) {
    identifier.push({ system: system(FHIR.recordKind, org, scope), value: s.record });
    if (s.encryptedBlindFactors) {
      identifier.push({ system: system(FHIR.blindFactorsKind, org, scope), value: s.encryptedBlindFactors });
    }
  } else {
    for (const p of s.pseudonyms) {
      identifier.push({
        system: `${FHIR.systemPrefix}${FHIR.temporaryPseudonymKind}:${p.type}:${org}:${scope}`,
        value: p.temporaryPseudonym,
      });
    }
  }
  if ("record" in s && s.reversible) {
    const r = s.reversible;
    identifier.push({ system: system(FHIR.reversibleKind, org, scope), value: `${r.kid}.${r.enc}.${r.ct}` });
  }
  return {
    resourceType: "Patient",
    meta: { tag: [{ system: FHIR.methodVersionSystem, code: String(s.methodVersion) }] },
    identifier,
  };
}

/**
 * @param {string} name
 * @param {api.ClinicalValue} value
 * @param {string} subject
 * @param {string} fieldSystem
 */
function observationOf(name, value, subject, fieldSystem) {
  const code = () => ({ coding: [{ system: fieldSystem, code: name }] });
  /** @type {Record<string, unknown>} */
  const o = { resourceType: "Observation", status: "final", code: code(), subject: { reference: subject } };
  if (Array.isArray(value)) {
    o.meta = { tag: [{ system: FHIR.valueKindSystem, code: FHIR.listCode }] };
    if (value.length === 0) putString(o, "");
    else {
      o.component = value.map((item) => {
        /** @type {Record<string, unknown>} */
        const c = { code: code() };
        putString(c, item);
        return c;
      });
    }
  } else putString(o, value);
  return o;
}

/**
 * JSON as serde_json writes a `serde_json::Value` (no `preserve_order`):
 * compact, object members sorted by name. JSON.stringify escapes strings
 * as serde_json does (`"`, `\`, control characters; `\b \f \n \r \t`,
 * else `\u00xx`).
 * @param {unknown} value
 * @returns {string}
 */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const members = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(/** @type {Record<string, unknown>} */ (value)[k])}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/**
 * The delivery Bundle of `submissions` for the registry `org`/`scope`
 * under `batchId`, as its JSON text.
 * @param {string} batchId
 * @param {string} org
 * @param {string} scope
 * @param {api.Submission[]} submissions
 */
export async function bundleOf(batchId, org, scope, submissions) {
  const fieldSystem = system(FHIR.fieldKind, org, scope);
  /** @type {unknown[]} */
  const entry = [];
  /** @param {unknown} resource @param {string} kind */
  const add = async (resource, kind) => {
    const url = await fullUrl(batchId, entry.length);
    entry.push({ fullUrl: url, resource, request: { method: "POST", url: kind } });
    return url;
  };
  for (const s of submissions) {
    const subject = await add(patientOf(s, org, scope), "Patient");
    // The data's members in the order of Rust's BTreeMap (the names are ASCII).
    for (const name of Object.keys(s.data).sort()) {
      await add(observationOf(name, s.data[name], subject, fieldSystem), "Observation");
    }
  }
  return canonicalJson({
    resourceType: "Bundle",
    type: "transaction",
    identifier: { system: FHIR.batchSystem, value: batchId },
    entry,
  });
}
