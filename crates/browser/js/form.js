// The form part of a registry's form binding.
//
// The page marks the form with data-pseudoform-* attributes. Its identity
// (the identifying controls or the identity frame, the opt-out, the checks
// of the method, the session and the pseudonymisation) is an `IdentityPart`
// (identity.js in the page, framed.js in a frame); this part holds
// everything else: the clinical fields and their checks, the status line,
// the submit, the delivery to the registry and what its outcome means, the
// reset for the next patient and the events. On submit it honours the
// opt-out, shows every problem at once (the identity's and the clinical
// fields') in the order of the form, has the identity pseudonymised and
// posts only pseudonyms and clinical fields, as JSON, to the form's action.
// Any failure leaves every typed value in place, says so, and offers a
// retry; a submission whose outcome is unknown is resent as it was, never
// made again, until the registry answers.
/** @import * as api from "./index.js" */
/** @import { ClinicalField } from "./controls.js" */
/** @import { IdentityPart, Prover } from "./identity.js" */
/** @import { Language } from "./messages.js" */
/** @import { Shown } from "./view.js" */
import { FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { clinicalSentence, describeError, fill, language, text } from "./messages.js";
import { DEFAULT_TIMEOUT_MS, requestJson } from "./http.js";
import { outcomeOf, postSubmission } from "./registry.js";
import { clinicalFields, clinicalLabel, clinicalProblem, clinicalValue, groupOf } from "./controls.js";
import { problemView } from "./view.js";

/** @param {string} name */
const isIdentifying = (name) => name !== "provider" && /** @type {readonly string[]} */ (FIELDS).includes(name);

/** Input types in which Enter means "submit" to a browser. */
const NO_ENTER = new Set(["submit", "button", "reset", "image", "file"]);

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
    require: "pseudoformRequire",
    login: "pseudoformLogin",
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
  if (d.pseudoformEnterSubmits !== undefined) options.enterSubmits = d.pseudoformEnterSubmits !== "false";
  return options;
}

/**
 * The time allowed per request: the setting, or the default.
 * @param {{ timeoutMs?: number }} o
 */
export const timeoutOf = (o) =>
  o.timeoutMs !== undefined && Number.isFinite(o.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : DEFAULT_TIMEOUT_MS;

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

/**
 * A submission sent, or about to be, with what the form held then.
 * @typedef {object} Pending
 * @property {api.Submission} body what is posted, every time the same
 * @property {{ types: string[], skipped: { type: string, code: string, field?: string }[] }} detail
 *   the types made and skipped, for the message and the event
 * @property {string} content the identity's revision and the data it was made of
 * @property {Prover | undefined} prover what signs its submitter proof at every send
 */

/**
 * Makes the identity part of a form.
 * `events.enter` is for Enter pressed where the form cannot see it (in the identity frame).
 * @typedef {(form: HTMLFormElement, settings: () => api.ProtectFormOptions, lang: () => Language,
 *   events: { enter: () => void }) => IdentityPart} IdentityMaker
 */

/** The binding of each bound form. @type {WeakMap<HTMLFormElement, api.FormController>} */
const bindings = new WeakMap();

/**
 * Binds a form with the identity part `identityOf` makes. `options`
 * override the data attributes, which override the JSON at
 * `options.config` (or data-pseudoform-config), a same-origin URL (the
 * demo's names the TTP, the recipient, the provider portal's `login` and the
 * identity `frame`; never a credential).
 * Returns `{ destroy(), submit(), ready }`; the form dispatches
 * `pseudoform:submitted`, `pseudoform:error` and `pseudoform:optout`.
 * @param {HTMLFormElement} form
 * @param {api.ProtectFormOptions} options
 * @param {IdentityMaker} identityOf
 * @returns {api.FormController}
 */
export function bindForm(form, options, identityOf) {
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
  const identity = identityOf(form, settings, () => lang, { enter: () => enterInIdentity() });
  const view = problemView(form);
  let busy = false;
  /** The clinical fields the clinician has changed since the form was (re)set. */
  const touched = new Set();

  /** @param {boolean} value */
  const setBusy = (value) => {
    busy = value;
    form.setAttribute("aria-busy", String(value));
    for (const b of submitButtons) b.disabled = value;
  };

  /**
   * @param {string} message
   * @param {"loading" | "unavailable" | "busy" | "error" | "optout" | "success" | ""} kind
   */
  const say = (message, kind) => {
    status.textContent = message;
    if (kind) status.dataset.kind = kind;
    else delete status.dataset.kind;
  };

  /** @param {() => void} action */
  const offerRetry = (action) => {
    const retryButton = document.createElement("button");
    retryButton.type = "button";
    retryButton.className = "pseudoform-retry";
    retryButton.textContent = text("retry", lang);
    retryButton.addEventListener("click", action);
    status.append(" ", retryButton);
  };

  const clearErrors = () => {
    view.clear();
    identity.clear();
  };

  /**
   * Shows every problem at once, in the order of the form, and focuses the first.
   * @param {Shown[]} problems
   * @param {"validation" | "enter"} why
   */
  const showProblems = (problems, why) => {
    const ordered = view.show(problems);
    const list = [...new Set(ordered.map((p) => p.label))].join(", ");
    say(why === "enter" ? text("enter", lang) : fill("validationList", lang, { list }), "error");
    form.dispatchEvent(
      new CustomEvent("pseudoform:error", {
        detail: { code: why, fields: ordered.map((p) => p.key) },
      }),
    );
  };

  /**
   * A clinical field's problem.
   * @param {ClinicalField} entry
   * @param {"required" | "format" | "untouched"} rule
   * @returns {Shown}
   */
  const clinicalShown = (entry, rule) => {
    const label = clinicalLabel(form, entry);
    const group = entry.controls.length > 1 ? groupOf(form, entry.controls) : undefined;
    const first = entry.controls[0];
    return {
      key: entry.name,
      label,
      message: clinicalSentence(label, rule, lang),
      targets: group ? [group, ...entry.controls] : entry.controls,
      anchor: group ?? entry.controls.at(-1),
      inside: Boolean(group),
      focus: first ? () => first.focus() : undefined,
    };
  };

  /** The clinical fields and their data. */
  const readClinical = () => {
    const clinical = clinicalFields(form, isIdentifying);
    /** @type {Record<string, string | string[]>} */
    const data = {};
    for (const entry of clinical) data[entry.name] = clinicalValue(entry);
    return { clinical, data };
  };

  /**
   * The problems of the clinical fields: required ones, input the browser cannot read.
   * @param {ClinicalField[]} clinical
   * @returns {Shown[]}
   */
  const clinicalProblems = (clinical) => {
    /** @type {Shown[]} */
    const shown = [];
    for (const entry of clinical) {
      const rule = clinicalProblem(entry);
      if (rule) shown.push(clinicalShown(entry, rule));
    }
    return shown;
  };

  /**
   * @param {unknown} error
   * @param {boolean} [unconfirmed] whether a submission's outcome is unknown
   */
  const fail = (error, unconfirmed = false) => {
    const e = PseudoformError.from(error);
    if (e.problems && e.problems.length > 0) {
      showProblems(identity.shown(e.problems), "validation");
      return;
    }
    const message = describeError(e, lang);
    say(unconfirmed ? `${message} ${text("unconfirmed", lang)}` : message, "error");
    offerRetry(() => submit());
    form.dispatchEvent(new CustomEvent("pseudoform:error", { detail: { code: e.code, field: e.field } }));
  };

  // Loads the settings and the identity part once; after a failure the
  // retry button (or the next submit) tries again.
  /** @type {Promise<void> | undefined} */
  let loading;
  const loadSettings = () => {
    loading ??= (async () => {
      const configUrl = settings().config;
      if (configUrl) {
        try {
          const answer = await requestJson("registry", configUrl, { method: "GET" }, { timeoutMs: 10_000 });
          fetched = answer && typeof answer === "object" ? answer : {};
        } catch (error) {
          throw new PseudoformError("config.unavailable", "the form's settings could not be loaded", "config", {
            cause: error,
          });
        }
        lang = language(settings().lang);
      }
      await identity.load();
      for (const b of submitButtons) b.disabled = false;
      if (status.dataset.kind === "loading" || status.dataset.kind === "unavailable") say("", "");
    })().catch((error) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
  /** The load failures the clinician is told as they are; any other is the module's. */
  const OWN_MESSAGE = new Set([
    "config.unavailable",
    "config.invalid",
    "frame.unavailable",
    "frame.originNotAllowed",
    "frame.protocol",
  ]);
  /** @param {unknown} error */
  const unavailable = (error) => {
    const e = PseudoformError.from(error);
    for (const b of submitButtons) b.disabled = true;
    say(describeError(OWN_MESSAGE.has(e.code) ? e : { code: "module.unavailable" }, lang), "unavailable");
    offerRetry(() => {
      say(text("loading", lang), "loading");
      loadSettings().catch(unavailable);
    });
    form.dispatchEvent(new CustomEvent("pseudoform:error", { detail: { code: e.code } }));
  };
  say(text("loading", lang), "loading");
  const initial = loadSettings();
  initial.catch(unavailable);

  // A submission the registry may or may not have stored (no answer, a
  // timeout, a 5xx): every next submit, whatever the form holds, first
  // sends exactly this again; only an answer that it was not stored lets a
  // new one be made. Held in memory only, like the form's values.
  /** @type {Pending | undefined} */
  let pending;

  /**
   * Posts the pending submission: resolves with how it ended when the
   * registry has it (`stored`) or says it can no longer be stored
   * (`expired`); rejects otherwise, forgetting it when it was refused.
   * @param {number} timeoutMs
   * @param {string} content what the form holds now
   * @returns {Promise<"stored" | "expired">}
   */
  async function deliver(timeoutMs, content) {
    const sent = /** @type {Pending} */ (pending);
    try {
      const receipt = await postSubmission(form.action, sent.body, { timeoutMs, session: sent.prover });
      succeed(receipt?.recordId, sent, content);
      return "stored";
    } catch (error) {
      const outcome = outcomeOf(error);
      if (outcome !== "unknown") pending = undefined;
      if (outcome === "expired") return "expired";
      throw error;
    }
  }

  /** Checks, pseudonymises and delivers; every outcome is shown on the form. */
  async function submit() {
    if (busy) return;
    clearErrors();
    setBusy(true);
    say(text("busy", lang), "busy");
    let unconfirmed = false;
    try {
      const read = await identity.read();
      if (read.optedOut) {
        say(pending ? `${text("optOut", lang)} ${text("optOutPending", lang)}` : text("optOut", lang), "optout");
        form.dispatchEvent(new CustomEvent("pseudoform:optout"));
        return;
      }
      await loadSettings();
      const current = settings();
      lang = language(current.lang);
      const timeoutMs = timeoutOf(current);
      const { clinical, data } = readClinical();
      const content = JSON.stringify([read.revision, data]);
      if (pending) {
        unconfirmed = true;
        if ((await deliver(timeoutMs, content)) === "stored") return;
        unconfirmed = false;
      }
      for (const fresh of [false, true]) {
        const problems = [...(await read.problems(fresh)), ...clinicalProblems(clinical)];
        if (problems.length > 0) {
          showProblems(problems, "validation");
          return;
        }
      }
      const made = await read.pseudonymise();
      pending = {
        body: { ...made.submission, data },
        detail: { types: made.types, skipped: made.skipped },
        content: made.revision === undefined ? content : JSON.stringify([made.revision, data]),
        prover: made.prover,
      };
      unconfirmed = true;
      // Just made: the form holds what it was made of.
      if ((await deliver(timeoutMs, pending.content)) === "expired") {
        unconfirmed = false;
        throw new PseudoformError("registry.rejected", "the registry refused the submission as expired");
      }
    } catch (error) {
      fail(error, unconfirmed && pending !== undefined);
    } finally {
      setBusy(false);
    }
  }

  /**
   * The registry has the record: says which pseudonyms were made and, when
   * the form still holds what was sent, empties it for the next patient.
   * @param {number | undefined} recordId
   * @param {Pending} sent
   * @param {string} content what the form holds now
   */
  function succeed(recordId, sent, content) {
    pending = undefined;
    const changed = sent.content !== content;
    clearErrors();
    if (!changed) {
      form.reset();
      identity.reset();
      touched.clear();
    }
    const record = recordId !== undefined ? ` (record ${recordId})` : "";
    const parts = [changed ? fill("storedEarlier", lang, { record }) : fill("submitted", lang, { record })];
    parts.push(fill("made", lang, { list: sent.detail.types.join(", ") }));
    if (sent.detail.skipped.length > 0) {
      const list = sent.detail.skipped
        .map((s) => {
          const why =
            s.code === "type.notAllowed" ? text("notAllowed", lang) : describeError(s, lang).replace(/\.$/, "");
          return `${s.type} (${why})`;
        })
        .join(", ");
      parts.push(fill("notMade", lang, { list }));
    }
    parts.push(text("received", lang));
    say(parts.join(" "), "success");
    form.dispatchEvent(new CustomEvent("pseudoform:submitted", { detail: { recordId, changed, ...sent.detail } }));
  }

  /** @param {SubmitEvent} event */
  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };

  /** @param {Event} event */
  const onChange = (event) => {
    const target = event.target;
    if (target instanceof HTMLElement && "name" in target && typeof target.name === "string" && target.name) {
      touched.add(target.name);
    }
  };

  // Enter in a field submits a form (HTML's implicit submission): not while
  // a required clinical field is untouched, unless the form allows it.
  /** @param {KeyboardEvent} event */
  const onKeydown = (event) => {
    if (event.key !== "Enter" || event.isComposing || settings().enterSubmits) return;
    const target = event.target;
    if (!(target instanceof HTMLInputElement) || NO_ENTER.has(target.type) || busy) return;
    if (enterStopped()) event.preventDefault();
  };

  /**
   * Whether Enter must not submit (a required clinical field is untouched):
   * then it shows those fields.
   */
  function enterStopped() {
    const untouched = clinicalFields(form, isIdentifying).filter((f) => f.required && !touched.has(f.name));
    if (untouched.length === 0) return false;
    clearErrors();
    showProblems(
      untouched.map((f) => clinicalShown(f, "untouched")),
      "enter",
    );
    return true;
  }

  /** Enter in a field of the identity frame: the same rule, then a submit. */
  function enterInIdentity() {
    if (busy || (!settings().enterSubmits && enterStopped())) return;
    form.requestSubmit();
  }

  form.addEventListener("submit", onSubmit);
  form.addEventListener("input", onChange);
  form.addEventListener("change", onChange);
  form.addEventListener("keydown", onKeydown);
  form.dataset.pseudoformBound = "";
  for (const notice of form.querySelectorAll("[data-pseudoform-unbound]")) {
    if (notice instanceof HTMLElement) notice.hidden = true;
  }

  /** @type {api.FormController} */
  const controller = {
    /** Resolves when the settings and the identity part are loaded. */
    ready: initial,
    /** Runs the same steps as pressing the submit button. */
    submit,
    /** Unbinds the form and removes the module's messages. */
    destroy() {
      form.removeEventListener("submit", onSubmit);
      form.removeEventListener("input", onChange);
      form.removeEventListener("change", onChange);
      form.removeEventListener("keydown", onKeydown);
      clearErrors();
      view.destroy();
      identity.destroy();
      status.textContent = "";
      delete status.dataset.kind;
      for (const notice of form.querySelectorAll("[data-pseudoform-unbound]")) {
        if (notice instanceof HTMLElement) notice.hidden = false;
      }
      delete form.dataset.pseudoformBound;
      bindings.delete(form);
    },
  };
  bindings.set(form, controller);
  return controller;
}
