// The rows of the file through the mapping: each row's identity (only the
// identifying columns), its clinical data (only the clinical columns) and
// its opt-out; every row checked by the module's validate(). The report
// names the row, the field and the rule, never a value.
/** @import * as api from "../index.js" */
import { validate } from "../index.js";
import { CLINICAL, OPT_OUT, IDENTIFYING } from "./mapping.js";
import { describeError, fieldLabel } from "../messages.js";

/** Values of the opt-out column that mean the patient objects (compared trimmed, lower case). */
export const OBJECTS = new Set(["ja", "j", "yes", "y", "1", "true", "x", "bezwaar"]);
/** Values that mean no objection; any other value leaves the row out too (fail closed). The lists are `pseudoform batch`'s. */
export const NO_OBJECTION = new Set(["", "nee", "n", "no", "0", "false", "geen bezwaar"]);

/** The name of the opt-out "field" in the report. */
export const OPT_OUT_FIELD = "optOut";

/** The row number a user sees: the header is row 1, the first data row 2. */
export const rowNumber = (/** @type {number} */ index) => index + 2;

/**
 * @param {string[]} row
 * @param {import("./mapping.js").Mapping} mapping
 * @returns {api.Identity}
 */
export function identityOf(row, mapping) {
  /** @type {Record<string, string>} */
  const identity = {};
  mapping.forEach((m, i) => {
    const value = (row[i] ?? "").trim();
    if (value !== "" && /** @type {string[]} */ (IDENTIFYING).includes(m.role)) identity[m.role] = value;
  });
  return /** @type {api.Identity} */ (identity);
}

/**
 * @param {string[]} row
 * @param {import("./mapping.js").Mapping} mapping
 * @returns {Record<string, string>}
 */
export function dataOf(row, mapping) {
  /** @type {Record<string, string>} */
  const data = {};
  mapping.forEach((m, i) => {
    if (m.role === CLINICAL && m.name) data[m.name] = (row[i] ?? "").trim();
  });
  return data;
}

/**
 * @param {string[]} row
 * @param {import("./mapping.js").Mapping} mapping
 */
export function objects(row, mapping) {
  return mapping.some((m, i) => m.role === OPT_OUT && OBJECTS.has((row[i] ?? "").trim().toLowerCase()));
}

/**
 * Whether a row's opt-out column holds a value that is neither yes nor no.
 * @param {string[]} row
 * @param {import("./mapping.js").Mapping} mapping
 */
export function unclearOptOut(row, mapping) {
  return mapping.some((m, i) => m.role === OPT_OUT && !NO_OBJECTION.has((row[i] ?? "").trim().toLowerCase()));
}

/** A field's Dutch label in the report (the opt-out column's too). */
export const reportLabel = (/** @type {string} */ field) =>
  field === OPT_OUT_FIELD ? "Bezwaar" : field ? fieldLabel(field, "nl") : "";

/**
 * One line of the report: the row number, the field, the rule (the code's
 * second half) and a Dutch sentence; never the value.
 * @typedef {{ row: number, field: string, rule: string, code: string, text: string }} Problem
 */

/**
 * @typedef {object} Checked
 * @property {number[]} sendable the indices (into rows) to pseudonymise, in order
 * @property {Problem[]} problems
 * @property {number} invalid rows with a problem (excluded)
 * @property {number} optedOut rows with an objection (never read further, never sent)
 */

/**
 * Checks every row: an objecting row is counted and left out before its
 * identity is read; every other row's identity is validated (with the
 * types every record must have).
 * @param {string[][]} rows
 * @param {import("./mapping.js").Mapping} mapping
 * @param {api.ValidateOptions} options
 * @returns {Checked}
 */
export function checkRows(rows, mapping, options) {
  /** @type {number[]} */
  const sendable = [];
  /** @type {Problem[]} */
  const problems = [];
  let invalid = 0;
  let optedOut = 0;
  rows.forEach((row, index) => {
    if (objects(row, mapping)) {
      optedOut++;
      return;
    }
    if (unclearOptOut(row, mapping)) {
      invalid++;
      problems.push({
        ...problemOf(rowNumber(index), OPT_OUT_FIELD, `${OPT_OUT_FIELD}.unknownValue`),
        text: "Bezwaar heeft een onbekende waarde (gebruik ja of nee); de rij is niet verstuurd.",
      });
      return;
    }
    const found = validate(identityOf(row, mapping), options);
    if (found.length === 0) {
      sendable.push(index);
      return;
    }
    invalid++;
    for (const p of found) problems.push(problemOf(rowNumber(index), p.field, p.code));
  });
  return { sendable, problems, invalid, optedOut };
}

/**
 * @param {number} row
 * @param {string | undefined} field
 * @param {string} code
 * @returns {Problem}
 */
export function problemOf(row, field, code) {
  const rule = code.includes(".") ? code.slice(code.indexOf(".") + 1) : code;
  return { row, field: field ?? "", rule, code, text: describeError({ code }, "nl") };
}

/** A CSV field, quoted when it needs to be. */
export const csvField = (/** @type {string} */ value) =>
  /[";,\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;

/**
 * The report as CSV (UTF-8 with a BOM, `;`, for Excel): row, field, rule, message.
 * @param {Problem[]} problems
 */
export function reportCsv(problems) {
  const lines = [["rij", "veld", "regel", "code", "melding"].join(";")];
  for (const p of problems) {
    lines.push([String(p.row), reportLabel(p.field), p.rule, p.code, p.text].map(csvField).join(";"));
  }
  return `\uFEFF${lines.join("\r\n")}\r\n`;
}
