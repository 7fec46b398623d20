// protectForm: the drop-in binding of a registry's form whose identifying
// controls are in the page (identity.js for the identity, form.js for the
// rest). A form with a <pseudoform-identity> element is framed: the
// in-page binding refuses it, and pseudoform-identity.js binds it.
/** @import * as api from "./index.js" */
import { PseudoformError } from "./errors.js";
import { bindForm } from "./form.js";
import { FRAME_ELEMENT } from "./frame-protocol.js";
import { pageIdentity } from "./identity.js";

export { FRAME_ELEMENT };

/**
 * Binds a form whose identifying controls are in the page.
 * @type {typeof api.protectForm}
 */
export function protectForm(form, options = {}) {
  if (form instanceof HTMLFormElement && form.querySelector(FRAME_ELEMENT)) {
    throw new PseudoformError(
      "config.invalid",
      "the form has an identity frame: bind it with pseudoform-identity.js, not the in-page binding",
      "form",
    );
  }
  return bindForm(form, options, pageIdentity);
}
