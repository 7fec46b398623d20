// One tag for a form in frame mode: binds every form[data-pseudoform] that
// holds a <pseudoform-identity> element, whose identity is in the identity
// frame (framed.js) and whose other fields are the form part's (form.js).
// The build bundles this file, without the wasm module or its glue, into
// pseudoform-identity.js:
//   <script type="module" src="/pkg/pseudoform-identity.js" integrity="sha384-…"></script>
import { FRAME_ELEMENT } from "./frame-protocol.js";
import { bindForm } from "./form.js";
import { framedIdentity } from "./framed.js";

/** The element that holds the frame: its attribute `src` is the frame page's URL. */
class PseudoformIdentity extends HTMLElement {}

if (!customElements.get(FRAME_ELEMENT)) customElements.define(FRAME_ELEMENT, PseudoformIdentity);

for (const form of document.querySelectorAll("form[data-pseudoform]")) {
  if (!(form instanceof HTMLFormElement) || "pseudoformBound" in form.dataset) continue;
  if (form.querySelector(FRAME_ELEMENT)) bindForm(form, {}, framedIdentity);
}
