// protectForm: the drop-in binding of a registry's form.
//
// The page marks the form with data-pseudoform-* attributes and its
// identifying inputs with data-pseudoform-field (and no name attribute, so a
// browser without this module never submits them). On submit the module
// validates inline, honours the opt-out, pseudonymises through the TTP and
// posts only pseudonyms and clinical fields, as JSON, to the form's action.
// Any failure leaves every typed value in place, says so, and offers a retry.
import { PseudoformError } from "./errors.js";
import { describeError, fieldLabel, language, text } from "./messages.js";
import { requestJson } from "./http.js";
import { methodVersion, pseudonymise, ready, validate } from "./index.js";

const IDENTIFYING = ["birthName", "birthDate", "sex", "initial", "postcode", "houseNumber",
  "houseNumberAddition", "bsn", "mrn"];

/** Reads the binding's options from the form's data attributes. */
function optionsFromAttributes(form) {
  const d = form.dataset;
  const options = {};
  const map = {
    ttp: "pseudoformTtp", recipientOrganization: "pseudoformRecipientOrganization",
    recipientScope: "pseudoformRecipientScope", provider: "pseudoformProvider",
    types: "pseudoformTypes", accessToken: "pseudoformAccessToken", ttpApi: "pseudoformTtpApi",
    lang: "pseudoformLang", config: "pseudoformConfig",
  };
  for (const [option, attribute] of Object.entries(map)) {
    if (d[attribute] !== undefined && d[attribute] !== "") options[option] = d[attribute];
  }
  if (d.pseudoformTimeoutMs) options.timeoutMs = Number(d.pseudoformTimeoutMs);
  return options;
}

function messageElement(form, input) {
  const id = `${input.id || `pseudoform-${input.dataset.pseudoformField}`}-error`;
  let element = form.querySelector(`[data-pseudoform-error-for="${input.dataset.pseudoformField}"]`);
  if (!element) {
    element = document.createElement("p");
    element.className = "pseudoform-error";
    element.id = id;
    element.dataset.pseudoformErrorFor = input.dataset.pseudoformField;
    element.setAttribute("role", "alert");
    element.hidden = true;
    input.insertAdjacentElement("afterend", element);
  }
  return element;
}

function statusElement(form) {
  let element = form.querySelector("[data-pseudoform-status]");
  if (!element) {
    element = document.createElement("div");
    element.dataset.pseudoformStatus = "";
    element.setAttribute("role", "status");
    element.setAttribute("aria-live", "polite");
    form.append(element);
  }
  return element;
}

/**
 * Binds a form. `options` override the data attributes; `options.config`
 * (or data-pseudoform-config) names a same-origin URL whose JSON supplies
 * them (for pages whose access token comes from the login session).
 * Returns `{ destroy(), submit(), ready }`; the form dispatches
 * `pseudoform:submitted`, `pseudoform:error` and `pseudoform:optout`.
 */
export function protectForm(form, options = {}) {
  if (!(form instanceof HTMLFormElement)) {
    throw new PseudoformError("config.invalid", "protectForm needs a form element", "form");
  }
  const inputs = [...form.querySelectorAll("[data-pseudoform-field]")];
  for (const input of inputs) {
    // A named identifying input would be part of a plain submit: unname it.
    if (input.name) {
      console.warn("pseudoform: an identifying input had a name attribute; it was removed");
      input.removeAttribute("name");
    }
  }
  const status = statusElement(form);
  const submitButtons = [...form.querySelectorAll("button[type=submit], input[type=submit], button:not([type])")];
  // Settings are read at every submit: options given here win over the
  // form's data attributes, which win over the fetched configuration.
  let fetched = {};
  const settings = () => ({ ...fetched, ...optionsFromAttributes(form), ...options });
  let lang = language(settings().lang);
  let busy = false;
  let retryButton;

  const setBusy = (value) => {
    busy = value;
    form.setAttribute("aria-busy", String(value));
    for (const b of submitButtons) b.disabled = value;
  };

  const say = (message, kind) => {
    status.textContent = message;
    status.dataset.kind = kind;
    if (retryButton) { retryButton.remove(); retryButton = undefined; }
  };

  const offerRetry = () => {
    retryButton = document.createElement("button");
    retryButton.type = "button";
    retryButton.className = "pseudoform-retry";
    retryButton.textContent = text("retry", lang);
    retryButton.addEventListener("click", () => submit());
    status.append(" ", retryButton);
  };

  const clearFieldErrors = () => {
    for (const input of inputs) {
      input.removeAttribute("aria-invalid");
      const element = messageElement(form, input);
      element.hidden = true;
      element.textContent = "";
    }
  };

  const showFieldError = (field, problem) => {
    const input = inputs.find((i) => i.dataset.pseudoformField === field);
    if (!input) return false;
    const element = messageElement(form, input);
    element.textContent = describeError(problem, lang);
    element.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", element.id);
    return true;
  };

  const identity = () => {
    const result = {};
    for (const input of inputs) {
      const field = input.dataset.pseudoformField;
      if (IDENTIFYING.includes(field) && input.value.trim() !== "") result[field] = input.value;
    }
    return result;
  };

  const optedOut = () => inputs.some((i) => i.dataset.pseudoformField === "optOut" && i.checked);

  const clinicalData = () => {
    const data = {};
    for (const [name, value] of new FormData(form)) {
      if (typeof value === "string" && !IDENTIFYING.includes(name)) data[name] = value;
    }
    return data;
  };

  const fail = (error) => {
    const e = PseudoformError.from(error);
    let shown = false;
    if (e.field) {
      // A type that cannot be made names the first field it lacks.
      const problem = e.code === "pseudonym.nothingToMake" ? { code: `${e.field}.required` } : e;
      shown = showFieldError(e.field, problem);
    }
    say(shown ? `${describeError(e, lang)} ${text("validation", lang)}` : describeError(e, lang), "error");
    if (!shown) offerRetry();
    form.dispatchEvent(new CustomEvent("pseudoform:error", { detail: { code: e.code, field: e.field } }));
  };

  const loadSettings = (async () => {
    await ready();
    const configUrl = settings().config;
    if (configUrl) {
      const answer = await requestJson("registry", configUrl, { method: "GET" }, { timeoutMs: 10_000 });
      fetched = answer && typeof answer === "object" ? answer : {};
      lang = language(settings().lang);
    }
    for (const b of submitButtons) b.disabled = false;
  })();
  loadSettings.catch(fail);

  async function submit() {
    if (busy) return;
    clearFieldErrors();
    if (optedOut()) {
      say(text("optOut", lang), "optout");
      form.dispatchEvent(new CustomEvent("pseudoform:optout"));
      return;
    }
    setBusy(true);
    say(text("busy", lang), "busy");
    try {
      await loadSettings;
      const current = settings();
      lang = language(current.lang);
      const typed = identity();
      const problems = validate(typed);
      if (problems.length > 0) {
        for (const p of problems) showFieldError(p.field, p);
        say(text("validation", lang), "error");
        inputs.find((i) => i.getAttribute("aria-invalid") === "true")?.focus();
        form.dispatchEvent(new CustomEvent("pseudoform:error", { detail: { code: "validation", fields: problems.map((p) => p.field) } }));
        return;
      }
      const { pseudonyms, skipped } = await pseudonymise(typed, current);
      const submission = {
        recipientOrganization: current.recipientOrganization,
        recipientScope: current.recipientScope,
        methodVersion: methodVersion(),
        pseudonyms,
        data: clinicalData(),
      };
      const receipt = await requestJson("registry", form.action,
        { method: "POST", json: submission }, { timeoutMs: current.timeoutMs });
      form.reset();
      clearFieldErrors();
      say(`${text("submitted", lang)}${receipt?.recordId !== undefined ? ` (record ${receipt.recordId})` : ""}`, "success");
      form.dispatchEvent(new CustomEvent("pseudoform:submitted", {
        detail: { recordId: receipt?.recordId, types: pseudonyms.map((p) => p.type), skipped: skipped.map((s) => ({ type: s.type, code: s.code })) },
      }));
    } catch (error) {
      fail(error);
    } finally {
      setBusy(false);
    }
  }

  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };
  form.addEventListener("submit", onSubmit);
  form.dataset.pseudoformBound = "";

  return {
    /** Resolves when the module and the settings are loaded. */
    ready: loadSettings,
    /** Runs the same steps as pressing the submit button. */
    submit,
    /** Unbinds the form and removes the module's messages. */
    destroy() {
      form.removeEventListener("submit", onSubmit);
      clearFieldErrors();
      for (const el of form.querySelectorAll("[data-pseudoform-error-for]")) el.remove();
      status.textContent = "";
      delete form.dataset.pseudoformBound;
    },
  };
}

/** The labels of the identifying fields, for pages that build their own UI. */
export const fieldLabels = (lang) => Object.fromEntries(IDENTIFYING.map((f) => [f, fieldLabel(f, lang)]));
