// A minimal form on the programmatic API (docs/embedding.md §11): its own
// code reads the fields, checks them with validate, pseudonymises, posts
// and, when the outcome is unknown, resends the same body. Its TTP
// credential is a TtpSession that logs the clinician in at the provider's
// portal (a popup) on first need.
import {
  TtpSession,
  describeError,
  outcomeOf,
  popupLogin,
  postSubmission,
  pseudonymise,
  ready,
  validate,
} from "../pkg/index.js";

const form = /** @type {HTMLFormElement} */ (document.getElementById("minimaal"));
const status = /** @type {HTMLElement} */ (document.getElementById("status"));
const button = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
const IDENTIFYING = ["birthName", "initial", "birthDate", "sex", "postcode", "mrn"];
const REQUIRE = ["NGGV", "RGG"];

/** The settings (here the demo's): the TTP, the recipient and the provider portal's login popup. */
const config = await (await fetch("../api/form-config", { credentials: "same-origin" })).json();
/** The browser's credential: short-lived, bound to a key that never leaves this page. */
const session = new TtpSession({ ttp: config.ttp, subjectToken: popupLogin(config.login) });
const options = { ...config, session, types: ["NGGV", "RGG", "MRN"], require: REQUIRE };
/** A body whose outcome is unknown: sent again as it is. */
let unconfirmed;

/** @param {string} text @param {string} kind */
function say(text, kind) {
  status.textContent = text;
  status.dataset.kind = kind;
}

function clear() {
  for (const p of form.querySelectorAll(".pseudoform-error")) p.remove();
  for (const e of form.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
}

/** @param {string} field @param {string} message */
function flag(field, message) {
  const input = /** @type {HTMLElement} */ (document.getElementById(field));
  input.setAttribute("aria-invalid", "true");
  const p = document.createElement("p");
  p.className = "pseudoform-error";
  p.dataset.pseudoformErrorFor = field;
  p.textContent = message;
  input.after(p);
}

/** @param {object} body */
async function send(body) {
  unconfirmed = body;
  try {
    const receipt = await postSubmission(form.action, body, { session });
    unconfirmed = undefined;
    form.reset();
    say(`Verzonden (record ${receipt?.recordId}).`, "success");
  } catch (error) {
    const outcome = outcomeOf(error);
    if (outcome === "expired") {
      unconfirmed = undefined;
      await submit();
    } else {
      if (outcome === "refused") unconfirmed = undefined;
      say(describeError(error), "error");
    }
  }
}

async function submit() {
  clear();
  if (unconfirmed) return send(unconfirmed);
  const identity = {};
  for (const field of IDENTIFYING) {
    const value = /** @type {HTMLInputElement} */ (document.getElementById(field)).value;
    if (value.trim() !== "") identity[field] = value;
  }
  const problems = validate(identity, { require: REQUIRE, provider: options.provider });
  if (problems.length > 0) {
    for (const p of problems) flag(p.field, describeError(p));
    say("Controleer de gemarkeerde velden.", "error");
    return;
  }
  const entries = new FormData(form);
  const data = { uitkomst: entries.get("uitkomst"), klachten: entries.getAll("klachten") };
  try {
    const { submission } = await pseudonymise(identity, options);
    await send({ ...submission, data });
  } catch (error) {
    say(describeError(error), "error");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  button.disabled = true;
  submit().finally(() => (button.disabled = false));
});
await ready();
button.disabled = false;
