// protectForm: the drop-in binding of a registry's form.
//
// The page marks the form with data-pseudoform-* attributes and its
// identifying inputs with data-pseudoform-field (and no name attribute, so a
// browser without this module never submits them). On submit the module
// validates inline, honours the opt-out, pseudonymises through the TTP and
// posts only pseudonyms and clinical fields, as JSON, to the form's action.
// Any failure leaves every typed value in place, says so, and offers a retry.
/** @import * as api from "./index.js" */
/** @import { FieldName } from "./constants.js" */
import { FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { describeError, language, text } from "./messages.js";
import { requestJson } from "./http.js";
import { postSubmission, submission as submissionOf } from "./registry.js";
import { methodVersion, pseudonymise, ready, validate } from "./index.js";

/** The fields that identify the patient: every field of the method but the provider. */
const IDENTIFYING = FIELDS.filter((f) => f !== "provider");

/** @type {(name: string) => name is FieldName} */
const isIdentifying = (name) => /** @type {readonly string[]} */ (IDENTIFYING).includes(name);

/**
 * Reads the binding's options from the form's data attributes.
 * @param {HTMLFormElement} form
 * @returns {api.ProtectFormOptions}
 */
function optionsFromAttributes(form) {
  const d = form.dataset;
  /** @type {Record<string, unknown>} */
  const options = {};
  const map = {
    ttp: "pseudoformTtp",
    recipientOrganization: "pseudoformRecipientOrganization",
    recipientScope: "pseudoformRecipientScope",
    provider: "pseudoformProvider",
    types: "pseudoformTypes",
    accessToken: "pseudoformAccessToken",
    ttpApi: "pseudoformTtpApi",
    lang: "pseudoformLang",
    config: "pseudoformConfig",
  };
  for (const [option, attribute] of Object.entries(map)) {
    if (d[attribute] !== undefined && d[attribute] !== "") options[option] = d[attribute];
  }
  if (d.pseudoformTimeoutMs) options.timeoutMs = Number(d.pseudoformTimeoutMs);
  if (d.pseudoformAllowedTypes) options.allowedTypes = d.pseudoformAllowedTypes.split(/\s+/).filter(Boolean);
  return options;
}

/**
 * The element that shows an input's error, made on first use.
 * @param {HTMLFormElement} form
 * @param {HTMLInputElement} input
 * @returns {HTMLElement}
 */
function messageElement(form, input) {
  const id = `${input.id || `pseudoform-${input.dataset.pseudoformField}`}-error`;
  /** @type {HTMLElement | null} */
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

/**
 * The form's status line, made on first use.
 * @param {HTMLFormElement} form
 * @returns {HTMLElement}
 */
function statusElement(form) {
  /** @type {HTMLElement | null} */
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

/** The binding of each bound form. @type {WeakMap<HTMLFormElement, api.FormController>} */
const bindings = new WeakMap();

/**
 * Binds a form. `options` override the data attributes; `options.config`
 * (or data-pseudoform-config) names a same-origin URL whose JSON supplies
 * them (for pages whose access token comes from the login session).
 * Returns `{ destroy(), submit(), ready }`; the form dispatches
 * `pseudoform:submitted`, `pseudoform:error` and `pseudoform:optout`.
 * @type {typeof api.protectForm}
 */
export function protectForm(form, options = {}) {
  if (!(form instanceof HTMLFormElement)) {
    throw new PseudoformError("config.invalid", "protectForm needs a form element", "form");
  }
  // Binding twice would submit twice: a form has one binding. A form bound
  // by another copy of the module (the one-tag bundle next to the module
  // API) is refused rather than bound again.
  const bound = bindings.get(form);
  if (bound) return bound;
  if ("pseudoformBound" in form.dataset) {
    throw new PseudoformError("config.alreadyBound", "the form is already bound by another copy of pseudoform", "form");
  }
  /** @type {HTMLInputElement[]} */
  const inputs = [...form.querySelectorAll("[data-pseudoform-field]")].map((e) => /** @type {HTMLInputElement} */ (e));
  for (const input of inputs) {
    // A named identifying input would be part of a plain submit: unname it.
    if (input.name) {
      console.warn("pseudoform: an identifying input had a name attribute; it was removed");
      input.removeAttribute("name");
    }
  }
  const status = statusElement(form);
  /** @type {(HTMLButtonElement | HTMLInputElement)[]} */
  const submitButtons = [...form.querySelectorAll("button[type=submit], input[type=submit], button:not([type])")].map(
    (e) => /** @type {HTMLButtonElement | HTMLInputElement} */ (e),
  );
  // Settings are read at every submit: options given here win over the
  // form's data attributes, which win over the fetched configuration.
  /** @type {api.ProtectFormOptions} */
  let fetched = {};
  /** @returns {api.ProtectFormOptions} */
  const settings = () => ({ ...fetched, ...optionsFromAttributes(form), ...options });
  let lang = language(settings().lang);
  let busy = false;
  /** @type {HTMLButtonElement | undefined} */
  let retryButton;

  /** @param {boolean} value */
  const setBusy = (value) => {
    busy = value;
    form.setAttribute("aria-busy", String(value));
    for (const b of submitButtons) b.disabled = value;
  };

  /**
   * @param {string} message
   * @param {"busy" | "error" | "optout" | "success"} kind
   */
  const say = (message, kind) => {
    status.textContent = message;
    status.dataset.kind = kind;
    if (retryButton) {
      retryButton.remove();
      retryButton = undefined;
    }
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

  /**
   * @param {string} field
   * @param {unknown} problem what describeError describes
   */
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

  /** @returns {api.Identity} */
  const identity = () => {
    /** @type {api.Identity} */
    const result = {};
    for (const input of inputs) {
      const field = input.dataset.pseudoformField ?? "";
      if (isIdentifying(field) && input.value.trim() !== "") result[field] = input.value;
    }
    return result;
  };

  const optedOut = () => inputs.some((i) => i.dataset.pseudoformField === "optOut" && i.checked);

  // Clinical data: the named controls, never one marked as identifying
  // (checked on the element at submit time, so inputs added later count too).
  /** @returns {Record<string, string>} */
  const clinicalData = () => {
    /** @type {Record<string, string>} */
    const data = {};
    for (const control of form.elements) {
      const element = /** @type {HTMLInputElement} */ (control);
      if (!element.name || element.disabled || "pseudoformField" in element.dataset) continue;
      if (isIdentifying(element.name)) continue;
      if ((element.type === "checkbox" || element.type === "radio") && !element.checked) continue;
      if (element.type === "file" || element.type === "submit" || element.type === "button") continue;
      data[element.name] = element.value;
    }
    return data;
  };

  /** @param {unknown} error */
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
  /** @type {Promise<void> | undefined} */
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
  /** @typedef {{ types: string[], skipped: { type: string, code: string }[] }} Detail */
  /** @type {{ submission: import("./registry.js").Submission, detail: Detail, content: string } | undefined} */
  let unconfirmed;

  /** Validates, pseudonymises and delivers; every outcome is shown on the form. */
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
      const timeoutMs =
        typeof current.timeoutMs === "number" && Number.isFinite(current.timeoutMs) && current.timeoutMs > 0
          ? current.timeoutMs
          : undefined;
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
        form.dispatchEvent(
          new CustomEvent("pseudoform:error", { detail: { code: "validation", fields: problems.map((p) => p.field) } }),
        );
        return;
      }
      const { pseudonyms, skipped } = await pseudonymise(typed, /** @type {api.PseudonymiseOptions} */ (current));
      const submission = submissionOf(
        /** @type {api.PseudonymiseOptions} */ (current),
        methodVersion(),
        pseudonyms,
        clinicalData(),
      );
      const detail = {
        types: pseudonyms.map((p) => p.type),
        skipped: skipped.map((s) => ({ type: s.type, code: s.code })),
      };
      unconfirmed = { submission, detail, content };
      await deliver(timeoutMs);
    } catch (error) {
      fail(error);
    } finally {
      setBusy(false);
    }
  }

  /**
   * Posts the unconfirmed submission; settles it on any 2xx.
   * @param {number | undefined} timeoutMs
   */
  async function deliver(timeoutMs) {
    const pending = unconfirmed;
    if (!pending) return;
    let receipt;
    try {
      receipt = await postSubmission(form.action, pending.submission, { timeoutMs });
    } catch (error) {
      const e = PseudoformError.from(error);
      // A refusal (4xx) means nothing was stored: the next try starts afresh.
      if (e.code === "registry.rejected" || e.code === "registry.refused") unconfirmed = undefined;
      throw e;
    }
    succeed(receipt?.recordId, pending.detail);
  }

  /**
   * Retry after an unclear registry failure: the same submission again.
   * @param {number | undefined} timeoutMs
   */
  async function resend(timeoutMs) {
    const pending = unconfirmed;
    if (!pending) return;
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
        // The registry looks a stored submission up by its JWEs' ids before
        // any expiry check (a stored one gets its receipt back), so
        // `expired` means it does not hold this one: the next submit
        // pseudonymises afresh.
        unconfirmed = undefined;
      }
      throw e;
    }
  }

  /**
   * The registry has the record: the form is emptied and says so.
   * @param {number | undefined} recordId
   * @param {Detail} detail
   */
  function succeed(recordId, detail) {
    unconfirmed = undefined;
    form.reset();
    clearFieldErrors();
    say(`${text("submitted", lang)}${recordId !== undefined ? ` (record ${recordId})` : ""}`, "success");
    form.dispatchEvent(new CustomEvent("pseudoform:submitted", { detail: { recordId, ...detail } }));
  }

  /** @param {SubmitEvent} event */
  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };
  form.addEventListener("submit", onSubmit);
  form.dataset.pseudoformBound = "";

  /** @type {api.FormController} */
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
