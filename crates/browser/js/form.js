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
  if (d.pseudoformAllowedTypes) options.allowedTypes = d.pseudoformAllowedTypes.split(/\s+/).filter(Boolean);
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
const bindings = new WeakMap();

export function protectForm(form, options = {}) {
  if (!(form instanceof HTMLFormElement)) {
    throw new PseudoformError("config.invalid", "protectForm needs a form element", "form");
  }
  // Binding twice would submit twice: a form has one binding. A form bound
  // by another copy of the module (the one-tag bundle next to the module
  // API) is refused rather than bound again.
  if (bindings.has(form)) return bindings.get(form);
  if ("pseudoformBound" in form.dataset) {
    throw new PseudoformError("config.alreadyBound", "the form is already bound by another copy of pseudoform", "form");
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

  // Clinical data: the named controls, never one marked as identifying
  // (checked on the element at submit time, so inputs added later count too).
  const clinicalData = () => {
    const data = {};
    for (const element of form.elements) {
      if (!element.name || element.disabled || "pseudoformField" in element.dataset) continue;
      if (IDENTIFYING.includes(element.name)) continue;
      if ((element.type === "checkbox" || element.type === "radio") && !element.checked) continue;
      if (element.type === "file" || element.type === "submit" || element.type === "button") continue;
      data[element.name] = element.value;
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

  // Loads the module and the settings once; after a failure the next
  // submit (or retry) tries again.
  let loading;
  const loadSettings = () => {
    loading ??= (async () => {
      await ready();
      const configUrl = settings().config;
      if (configUrl) {
        const answer = await requestJson("registry", configUrl, { method: "GET" }, { timeoutMs: 10_000 });
        fetched = answer && typeof answer === "object" ? answer : {};
        lang = language(settings().lang);
      }
      for (const b of submitButtons) b.disabled = false;
    })().catch((error) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
  const initial = loadSettings();
  initial.catch(fail);

  // A submission the registry may or may not have stored (timeout, dropped
  // connection, 5xx): a retry with the form unchanged sends exactly this
  // again, so the registry refuses a duplicate by its JWE id instead of
  // storing the record twice. Held in memory only, like the form's values.
  let unconfirmed;

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
      await loadSettings();
      const current = settings();
      lang = language(current.lang);
      const timeoutMs = Number.isFinite(current.timeoutMs) && current.timeoutMs > 0 ? current.timeoutMs : undefined;
      const typed = identity();
      const content = JSON.stringify([typed, clinicalData()]);
      if (unconfirmed && unconfirmed.content === content) {
        await resend(timeoutMs);
        return;
      }
      unconfirmed = undefined;
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
      const detail = { types: pseudonyms.map((p) => p.type), skipped: skipped.map((s) => ({ type: s.type, code: s.code })) };
      unconfirmed = { submission, detail, content };
      await deliver(timeoutMs);
    } catch (error) {
      fail(error);
    } finally {
      setBusy(false);
    }
  }

  /** Posts the unconfirmed submission; settles it on any 2xx. */
  async function deliver(timeoutMs) {
    let receipt;
    try {
      receipt = await requestJson("registry", form.action,
        { method: "POST", json: unconfirmed.submission }, { timeoutMs, allowEmpty: true });
    } catch (error) {
      const e = PseudoformError.from(error);
      // A refusal (4xx) means nothing was stored: the next try starts afresh.
      if (e.code === "registry.rejected" || e.code === "registry.refused") unconfirmed = undefined;
      throw e;
    }
    succeed(receipt?.recordId, unconfirmed.detail);
  }

  /** Retry after an unclear registry failure: the same submission again. */
  async function resend(timeoutMs) {
    const pending = unconfirmed;
    try {
      await deliver(timeoutMs);
    } catch (error) {
      const e = PseudoformError.from(error);
      if (e.serverCode === "pseudonym.replayed") {
        // The first attempt was stored after all.
        succeed(undefined, pending.detail);
        return;
      }
      if (e.serverCode === "pseudonym.expired") {
        // Too late to resend: the next submit pseudonymises afresh.
        unconfirmed = undefined;
      }
      throw e;
    }
  }

  function succeed(recordId, detail) {
    unconfirmed = undefined;
    form.reset();
    clearFieldErrors();
    say(`${text("submitted", lang)}${recordId !== undefined ? ` (record ${recordId})` : ""}`, "success");
    form.dispatchEvent(new CustomEvent("pseudoform:submitted", { detail: { recordId, ...detail } }));
  }

  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };
  form.addEventListener("submit", onSubmit);
  form.dataset.pseudoformBound = "";

  const controller = {
    /** Resolves when the module and the settings are loaded. */
    ready: initial,
    /** Runs the same steps as pressing the submit button. */
    submit,
    /** Unbinds the form and removes the module's messages. */
    destroy() {
      form.removeEventListener("submit", onSubmit);
      clearFieldErrors();
      for (const el of form.querySelectorAll("[data-pseudoform-error-for]")) el.remove();
      status.textContent = "";
      delete form.dataset.pseudoformBound;
      bindings.delete(form);
    },
  };
  bindings.set(form, controller);
  return controller;
}

/** The labels of the identifying fields, for pages that build their own UI. */
export const fieldLabels = (lang) => Object.fromEntries(IDENTIFYING.map((f) => [f, fieldLabel(f, lang)]));
