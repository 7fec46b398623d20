// The message schema between a registry's page and the identity frame,
// `pseudoform-frame/1` (docs/frame.md says every message, who may send it
// and when). Both sides import these names and checks, so that they are
// written once. The typedefs below are the messages' shapes: tsc checks the
// parent's side (framed.js) and the frame's (frame-page.js) against them;
// each side still checks at run time what the other sent.
/** @import * as api from "./index.js" */

/**
 * `init`, the parent's one window message to the frame (with the port).
 * @typedef {object} InitMessage
 * @property {string} protocol
 * @property {"init"} type
 * @property {string | undefined} recipientOrganization
 * @property {string | undefined} recipientScope
 * @property {string | undefined} provider one of settings.json's providers
 * @property {string[]} types
 * @property {string[]} require
 * @property {"nl" | "en"} lang
 * @property {Record<string, string>} theme
 * @property {number} timeoutMs
 */

/**
 * A field problem as it crosses: field and rule, never a value.
 * @typedef {{ field: string, code: string }} CrossingProblem
 */

/**
 * A submission as it crosses: the record JWE, the blind factors sealed to
 * the recipient and, with type R, the patient number sealed to the provider.
 * @typedef {api.SubmissionEnvelope & { record: string, encryptedBlindFactors: string,
 *   reversible?: api.ReversibleEnvelope }} FramedSubmission
 */

/**
 * The parent's requests over the port, by type, with their arguments.
 * @typedef {object} Requests
 * @property {{}} state
 * @property {{ fresh: boolean }} check
 * @property {{}} pseudonymise
 * @property {{ method: string, url: string, record: string }} proof
 */

/**
 * The frame's answers (`ok: true`), by request type.
 * @typedef {object} Results
 * @property {{ optedOut: boolean, revision: string }} state
 * @property {{ problems: CrossingProblem[] }} check
 * @property {{ submission: FramedSubmission, types: string[], skipped: { type: string, code: string, field?: string }[], revision: string }} pseudonymise
 * @property {{ proof: string }} proof
 */

/** The protocol and version every message names. */
export const PROTOCOL = "pseudoform-frame/1";

/** The tag of the identity frame's element in a registry's form. */
export const FRAME_ELEMENT = "pseudoform-identity";

/**
 * The CSS custom properties a page may theme the frame with, each with what
 * it sets; every other property is ignored.
 */
export const THEME_PROPERTIES = /* @__PURE__ */ Object.freeze({
  "--pseudoform-font-family": "the font family (of the fonts the clinician's system has)",
  "--pseudoform-font-size": "the base font size",
  "--pseudoform-text": "the colour of text",
  "--pseudoform-background": "the background colour",
  "--pseudoform-field-background": "the background colour of fields",
  "--pseudoform-border": "the colour of field borders",
  "--pseudoform-focus": "the colour of the focus outline",
  "--pseudoform-error": "the colour of field problems",
  "--pseudoform-accent": "the colour of the login button",
  "--pseudoform-spacing": "the space between fields",
  "--pseudoform-radius": "the corner radius of fields and buttons",
});

/** Longest theme value taken. */
const MAX_THEME_VALUE = 120;

/**
 * Whether a theme value is one the frame applies: short, plain CSS (colours,
 * lengths, font names), no `url(`, `image(`, `var(` or anything that could
 * load or escape a declaration.
 * @param {unknown} value
 * @returns {value is string}
 */
export function themeValueOk(value) {
  return (
    typeof value === "string" &&
    value.length > 0 &&
    value.length <= MAX_THEME_VALUE &&
    /^[\w\s#%.,()'"+-]*$/.test(value) &&
    !/(url|image|image-set|var|env|attr|src|expression)\s*\(/i.test(value)
  );
}

/**
 * The theme properties of `theme` that may be applied, and nothing else.
 * @param {unknown} theme
 * @returns {Record<string, string>}
 */
export function themeOf(theme) {
  /** @type {Record<string, string>} */
  const out = {};
  if (!theme || typeof theme !== "object") return out;
  for (const [name, value] of Object.entries(theme)) {
    if (Object.hasOwn(THEME_PROPERTIES, name) && themeValueOk(value)) out[name] = value.trim();
  }
  return out;
}

/**
 * Whether `data` is a message of the protocol of the given type.
 * @param {unknown} data
 * @param {string} [type] any type when none
 * @returns {data is { protocol: string, type: string, [key: string]: unknown }}
 */
export function isMessage(data, type) {
  if (!data || typeof data !== "object") return false;
  const m = /** @type {{ protocol?: unknown, type?: unknown }} */ (data);
  return m.protocol === PROTOCOL && typeof m.type === "string" && (type === undefined || m.type === type);
}

/**
 * The codes of a refusal or a failed request that cross to the parent as
 * they are; any other code is `frame.protocol`.
 * @param {unknown} code
 */
export const isCode = (code) => typeof code === "string" && /^[A-Za-z]+(\.[A-Za-z]+)?$/.test(code);

/**
 * Field problems as they cross: `{ field, code }` only.
 * @param {unknown} list
 * @returns {{ field: string, code: string }[] | undefined}
 */
export function problemsOf(list) {
  if (!Array.isArray(list) || list.length > 64) return undefined;
  /** @type {{ field: string, code: string }[]} */
  const out = [];
  for (const p of list) {
    if (!p || typeof p.field !== "string" || !isCode(p.code) || p.field.length > 64) return undefined;
    out.push({ field: p.field, code: p.code });
  }
  return out;
}
