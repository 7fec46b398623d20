// Columns → fields: each column of the file is an identifying field of the
// method (the generated FIELDS, with the labels of messages.js), a clinical
// field sent to the registry under a name, the opt-out column, or unused.
// Presets are kept per registry in localStorage: column names and what
// they map to, never a value of the file.
/** @import { FieldName } from "../constants.js" */
import { FIELDS } from "../constants.js";
import { fieldLabels } from "../messages.js";

/** The identifying fields a column can be: every field of the method but the provider (the login's). */
export const IDENTIFYING = /** @type {FieldName[]} */ (FIELDS.filter((f) => f !== "provider"));

/** What a column can be mapped to besides an identifying field. */
export const CLINICAL = "clinical";
export const OPT_OUT = "optOut";
export const UNUSED = "";

/**
 * A column's role: an identifying field, `clinical` (sent under `name`),
 * `optOut`, or `""` (unused, never read).
 * @typedef {{ role: FieldName | "clinical" | "optOut" | "", name?: string }} ColumnMap
 * @typedef {ColumnMap[]} Mapping one entry per column of the header
 */

/** The options of a column's select: `[value, Dutch label]`. */
export function roleOptions() {
  const labels = fieldLabels("nl");
  return [
    [UNUSED, "— niet gebruiken —"],
    ...IDENTIFYING.map((f) => [f, `Patiënt: ${labels[f]}`]),
    [CLINICAL, "Klinisch veld (naar de registratie)"],
    [OPT_OUT, "Bezwaar (ja: niet aanleveren)"],
  ];
}

/**
 * A column header as the registry's field name: `A-Za-z0-9_-`, at most 64 characters.
 * @param {string} header
 */
export function clinicalName(header) {
  const name = header
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 64);
  return name || "veld";
}

/** Lower case, no accents, letters and digits only: how headers are compared. */
const squash = (/** @type {string} */ s) =>
  s
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "");

/** Headers a new user's extract is likely to have, squashed, per field. */
const SYNONYMS = /** @type {Record<FieldName | "optOut", string[]>} */ ({
  birthName: ["geboortenaam", "achternaam", "naam", "meisjesnaam", "birthname", "surname", "familienaam"],
  initial: ["voorletter", "voorletters", "initiaal", "initial", "initials"],
  birthDate: ["geboortedatum", "gebdatum", "geboortedat", "birthdate", "dateofbirth", "dob"],
  sex: ["geslacht", "sekse", "sex", "gender"],
  postcode: ["postcode", "pc", "zipcode", "postalcode"],
  houseNumber: ["huisnummer", "huisnr", "housenumber"],
  houseNumberAddition: ["toevoeging", "huisnummertoevoeging", "huisnrtoev", "addition"],
  bsn: ["bsn", "burgerservicenummer"],
  mrn: ["patientnummer", "patnr", "mrn", "ziekenhuisnummer", "patientid"],
  provider: [],
  optOut: ["bezwaar", "optout", "geenaanlevering", "objection"],
});

/**
 * A first mapping from the header: known names become their field (each
 * field once), every other column is a clinical field under its name.
 * @param {string[]} header
 * @returns {Mapping}
 */
export function guessMapping(header) {
  const taken = new Set();
  return header.map((h) => {
    const key = squash(h);
    for (const [role, names] of Object.entries(SYNONYMS)) {
      if (names.includes(key) && !taken.has(role)) {
        taken.add(role);
        return { role: /** @type {ColumnMap["role"]} */ (role) };
      }
    }
    return key ? { role: CLINICAL, name: clinicalName(h) } : { role: UNUSED };
  });
}

/**
 * What is wrong with a mapping, as `[column index, code]`: an identifying
 * field or the opt-out mapped twice, a clinical name used twice, a
 * clinical name that is an identifying field's (the registry refuses it).
 * @param {Mapping} mapping
 * @returns {[number, string][]}
 */
export function mappingProblems(mapping) {
  /** @type {[number, string][]} */
  const problems = [];
  const seen = new Set();
  const identifying = new Set(FIELDS.map(squash));
  mapping.forEach((m, i) => {
    if (m.role === UNUSED) return;
    const key = m.role === CLINICAL ? `clinical:${m.name}` : m.role;
    if (seen.has(key)) problems.push([i, "mapping.duplicate"]);
    seen.add(key);
    if (m.role === CLINICAL) {
      if (!m.name || !/^[A-Za-z0-9_-]{1,64}$/.test(m.name)) problems.push([i, "mapping.name"]);
      else if (identifying.has(squash(m.name))) problems.push([i, "mapping.identifyingName"]);
    }
  });
  return problems;
}

const PRESET_PREFIX = "pseudoform-workbench:preset:";

/**
 * The saved preset of a registry: column name → its mapping (no values).
 * @param {string} registry `<organization>|<scope>`
 * @returns {Record<string, ColumnMap>}
 */
export function loadPreset(registry) {
  try {
    const stored = JSON.parse(localStorage.getItem(PRESET_PREFIX + registry) ?? "null");
    return stored && typeof stored === "object" && !Array.isArray(stored) ? stored : {};
  } catch {
    return {};
  }
}

/**
 * Saves the mapping of these columns as the registry's preset.
 * @param {string} registry
 * @param {string[]} header
 * @param {Mapping} mapping
 */
export function savePreset(registry, header, mapping) {
  /** @type {Record<string, ColumnMap>} */
  const preset = {};
  header.forEach((h, i) => {
    const m = mapping[i];
    preset[h] = m.role === CLINICAL ? { role: CLINICAL, name: m.name } : { role: m.role };
  });
  localStorage.setItem(PRESET_PREFIX + registry, JSON.stringify(preset));
}

/**
 * The mapping of a header: the preset's for the columns it names, the guess for the rest.
 * @param {string[]} header
 * @param {Record<string, ColumnMap>} preset
 * @returns {Mapping}
 */
export function mappingFor(header, preset) {
  const guess = guessMapping(header);
  return header.map((h, i) => (Object.hasOwn(preset, h) ? { ...preset[h] } : guess[i]));
}
