// One-tag embedding: binds every form[data-pseudoform] on the page. The build
// bundles this file with the whole JS layer and the wasm glue into
// pseudoform-auto.js, the script a form page includes with its integrity hash:
//   <script type="module" src="/pkg/pseudoform-auto.js" integrity="sha384-…"></script>
import { protectForm } from "./index.js";

for (const form of document.querySelectorAll("form[data-pseudoform]")) {
  if (form instanceof HTMLFormElement && !("pseudoformBound" in form.dataset)) protectForm(form);
}
