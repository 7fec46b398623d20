// One-tag embedding: binds every form[data-pseudoform] on the page.
//   <script type="module" src="/pkg/auto.js"></script>
import { protectForm } from "./index.js";

for (const form of document.querySelectorAll("form[data-pseudoform]")) {
  if (!("pseudoformBound" in form.dataset)) protectForm(form);
}
