// pseudoform: the public JS API over the wasm module.
//
//   normalise, pseudonymInput, validate, prepare      pure and synchronous
//   pseudonymise, pseudonymiseBatch                   talk to the TTP
//   postSubmission, outcomeOf                         deliver to the registry
//   TtpSession, popupLogin                            the browser's credential
//   reversibleAad, sealReversible, openReversible,    type R: the patient number
//   reversibleDigest, providerKeyOf, kidOf            only its provider can open
//   protectForm                                       drop-in form binding
//
// Call `ready()` (or any async function) once before the synchronous ones.
// The types are those of index.d.ts (`api` below): tsc checks this file and
// the modules it re-exports against them (js/tsconfig.json).
/** @import * as api from "./index.js" */
import { FIELDS } from "./constants.js";
import { PseudoformError as ErrorClass } from "./errors.js";
import { TtpSession as SessionClass } from "./session.js";
import { missingFor, typeCodes } from "./required.js";
import { validateGiven } from "./wasm.js";

/** @type {typeof api.PseudoformError} */
export const PseudoformError = ErrorClass;
/** @type {typeof api.TtpSession} */
export const TtpSession = SessionClass;
export { popupLogin } from "./login.js";
export { describeError, fieldLabels } from "./messages.js";
export { protectForm } from "./protect.js";
export { methodVersion, normalise, prepare, pseudonymInput, ready } from "./wasm.js";
export { pseudonymise, pseudonymiseBatch } from "./pseudonymise.js";
export { outcomeOf, postSubmission } from "./registry.js";
export { kidOf, openReversible, providerKeyOf, reversibleAad, reversibleDigest, sealReversible } from "./reversible.js";

/**
 * Every rule broken by a given field, in field order; with `require`, also
 * every field the required types need that is not given (`<field>.required`,
 * with the `type`). `provider` is the configured provider MRN needs.
 * @type {typeof api.validate}
 */
export function validate(identity, options) {
  const invalid = validateGiven(identity);
  const required = typeCodes(options?.require, "require");
  if (required.length === 0) return invalid;
  const missing = missingFor(
    identity,
    required,
    options?.provider,
    invalid.map((p) => p.field),
  );
  return [...invalid, ...missing].sort((a, b) => FIELDS.indexOf(a.field) - FIELDS.indexOf(b.field));
}
