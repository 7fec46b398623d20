// Required pseudonym types: the types a record must have (the form's own and
// the registry's policy), and the fields an identity lacks for them, so that
// a record that would be partial is refused with every missing field at once.
// The reversible type R counts as a type here: it needs MRN's fields.
/** @import * as api from "./index.js" */
/** @import { FieldName, PseudonymTypeCode, RuleName, TypeCode } from "./constants.js" */
import { FIELDS, PSEUDONYM_TYPES, REVERSIBLE_INPUT, REVERSIBLE_TYPE, RULES, TYPE_FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { pseudonymInput } from "./wasm.js";

/** @type {(type: unknown) => type is TypeCode} */
export const isTypeCode = (type) =>
  type === REVERSIBLE_TYPE || /** @type {readonly unknown[]} */ (PSEUDONYM_TYPES).includes(type);

/** @type {(name: string) => name is RuleName} */
const isRule = (name) => Object.hasOwn(RULES, name);

/**
 * The type codes of option `name`: an array or one space-separated string;
 * nothing is an empty list. Each code once, in the given order. `R` is one.
 * @param {unknown} value
 * @param {string} name
 * @returns {TypeCode[]}
 */
export function typeCodes(value, name) {
  if (value === undefined || value === null || value === "") return [];
  const list = typeof value === "string" ? value.split(/\s+/).filter(Boolean) : value;
  if (!Array.isArray(list) || !list.every(isTypeCode)) {
    throw new PseudoformError("config.invalid", `option ${name} must list known pseudonym types`, name);
  }
  return [...new Set(list)];
}

/**
 * Whether a field has a value in `identity` (blank is none).
 * @param {api.Identity} identity
 * @param {FieldName} field
 */
const given = (identity, field) => {
  const value = identity[field];
  return typeof value === "string" && value.trim() !== "";
};

/**
 * The fields `identity` lacks for the types of `required`, as problems
 * `{ field, code, message, type }` in field order, each field once:
 * `<field>.required`, or the rule that still stops a type whose fields are
 * all given (`postcode.fullPostcodeRequired` where it needs PC6). Fields in
 * `flagged` (already reported as invalid) are left out. `provider` is the
 * configured provider, which MRN needs when the identity has none.
 * @param {api.Identity} identity
 * @param {readonly TypeCode[]} required
 * @param {string | undefined} provider
 * @param {Iterable<string>} [flagged]
 * @returns {api.FieldProblem[]}
 */
export function missingFor(identity, required, provider, flagged = []) {
  const seen = new Set(flagged);
  /** @type {api.FieldProblem[]} */
  const problems = [];
  /**
   * @param {FieldName} field
   * @param {RuleName} rule
   * @param {TypeCode} type
   */
  const add = (field, rule, type) => {
    if (seen.has(field)) return;
    seen.add(field);
    // FieldProblem's `type` is declared by the wasm glue as a Wkz type; R is one here too.
    const problemType = /** @type {PseudonymTypeCode} */ (type);
    problems.push({ field, code: `${field}.${rule}`, message: `${field}: ${RULES[rule]}`, type: problemType });
  };
  const withProvider = provider && !given(identity, "provider") ? { ...identity, provider } : identity;
  for (const type of required) {
    let complete = true;
    for (const field of TYPE_FIELDS[type]) {
      if (!given(withProvider, field)) {
        add(field, "required", type);
        complete = false;
      } else if (seen.has(field)) {
        complete = false;
      }
    }
    if (!complete) continue;
    try {
      pseudonymInput(type === REVERSIBLE_TYPE ? REVERSIBLE_INPUT : type, withProvider);
    } catch (error) {
      const e = PseudoformError.from(error);
      const field = FIELDS.find((f) => f === e.field);
      const rule = field ? e.code.slice(field.length + 1) : "";
      if (field && isRule(rule)) add(field, rule, type);
      else throw e;
    }
  }
  return problems.sort((a, b) => FIELDS.indexOf(a.field) - FIELDS.indexOf(b.field));
}
