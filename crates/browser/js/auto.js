// One-tag embedding: binds every form[data-pseudoform] on the page. The build
// bundles this file with the whole JS layer and the wasm glue into
// pseudoform-auto.js, the script a form page includes with its integrity hash:
//   <script type="module" src="/pkg/pseudoform-auto.js" integrity="sha384-…"></script>
// A form with a <pseudoform-identity> element is left to
// pseudoform-identity.js (the identity frame), with a word in the console.
import { FRAME_ELEMENT, protectForm } from "./protect.js";

for (const form of document.querySelectorAll("form[data-pseudoform]")) {
  if (!(form instanceof HTMLFormElement) || "pseudoformBound" in form.dataset) continue;
  if (form.querySelector(FRAME_ELEMENT)) {
    console.warn("pseudoform: a form with <pseudoform-identity> is bound by pseudoform-identity.js, not this script");
    continue;
  }
  protectForm(form);
}
