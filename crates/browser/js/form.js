// protectForm: the drop-in binding of a registry's form.
//
// The page marks the form with data-pseudoform-* attributes and its
// identifying controls with data-pseudoform-field (and no name, so a browser
// without this module never submits them; controls.js says how each kind of
// control is read). On submit the module honours the opt-out, checks every
// field at once (the method's rules, the fields the required pseudonym types
// need, required clinical fields, input the browser cannot read), shows
// every problem inline in field order, pseudonymises through the TTP and
// posts only pseudonyms and clinical fields, as JSON, to the form's action.
// Any failure leaves every typed value in place, says so, and offers a retry;
// a submission whose outcome is unknown is resent as it was, never made
// again, until the registry answers.
/** @import * as api from "./index.js" */
/** @import { Policy } from "./ttp.js" */
/** @import { IdentifyingField, ClinicalField } from "./controls.js" */
import { FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { clinicalSentence, describeError, fieldLabel, fill, language, text } from "./messages.js";
import { requestJson } from "./http.js";
import { outcomeOf, postSubmission } from "./registry.js";
import { policyOf, providerPending, pseudonymiseWith, requiredTypes, settle } from "./pseudonymise.js";
import { popupLogin } from "./login.js";
import { TtpSession } from "./session.js";
import { missingFor } from "./required.js";
import { ready, validateGiven } from "./wasm.js";
import {
  clinicalFields,
  clinicalLabel,
  clinicalProblem,
  clinicalValue,
  detach,
  groupOf,
  identifyingFields,
  readField,
  reattach,
  resetFields,
} from "./controls.js";

/** The fields that identify the patient: every field of the method but the provider. */
const IDENTIFYING = FIELDS.filter((f) => f !== "provider");

/** @param {string} name */
const isIdentifying = (name) => /** @type {readonly string[]} */ (IDENTIFYING).includes(name);

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
 * A problem as the form shows it: its message next to the field, the
 * controls marked invalid, its label in the status line.
 * @typedef {object} Shown
 * @property {string} key the field name (identifying) or control name (clinical)
 * @property {string} label what the clinician reads as the field's name
 * @property {string} message the sentence next to the field
 * @property {Element[]} targets controls (and group) marked aria-invalid
 * @property {HTMLElement | undefined} anchor where the message goes (after it, or inside a group)
 * @property {boolean} inside whether the message goes at the end of `anchor`
 * @property {HTMLElement | undefined} focus what gets the focus when it is the first problem
 */

/**
 * A submission sent, or about to be, with what the form held then.
 * @typedef {object} Pending
 * @property {api.Submission} body what is posted, every time the same
 * @property {{ types: string[], skipped: { type: string, code: string, field?: string }[] }} detail
 *   the types made and skipped, for the message and the event
 * @property {string} content the identity and data it was made of
 * @property {api.TtpSession | undefined} session the session that made it,
 *   which signs its submitter proof at every send
 */

/** The binding of each bound form. @type {WeakMap<HTMLFormElement, api.FormController>} */
const bindings = new WeakMap();

/**
 * Binds a form. `options` override the data attributes, which override the
 * JSON at `options.config` (or data-pseudoform-config), a same-origin URL
 * (the demo's names the TTP, the recipient and the provider portal's
 * `login`; never a credential).
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
  detach(identifyingFields(form));
  const status = statusElement(form);
  /** @type {(HTMLButtonElement | HTMLInputElement)[]} */
  const submitButtons = [...form.querySelectorAll("button[type=submit], input[type=submit], button:not([type])")].map(
    (e) => /** @type {HTMLButtonElement | HTMLInputElement} */ (e),
  );
  // Settings are read at every submit: options given here win over the
  // form's data attributes, which win over the fetched configuration.
  /** @type {api.ProtectFormOptions} */
  let fetched = {};
  /** The session the form made from its `login` (one per TTP and login URL). */
  /** @type {{ key: string, session: TtpSession } | undefined} */
  let own;
  /**
   * The settings with a session: the one given, or one of the form's own
   * that logs in through the provider's popup at `login`.
   * @returns {api.ProtectFormOptions}
   */
  const settings = () => {
    const current = { ...fetched, ...optionsFromAttributes(form), ...options };
    if (current.session || !current.login || typeof current.ttp !== "string") return current;
    const key = `${current.ttp}\n${current.login}`;
    if (own?.key !== key) {
      own = { key, session: new TtpSession({ ttp: current.ttp, subjectToken: popupLogin(current.login) }) };
    }
    return { ...current, session: own.session };
  };
  let lang = language(settings().lang);
  let busy = false;
  /** @type {HTMLButtonElement | undefined} */
  let retryButton;
  /** The clinical fields the clinician has changed since the form was (re)set. */
  const touched = new Set();
  /** The last policy seen, so the first check already knows its required types. */
  /** @type {Policy | undefined} */
  let knownPolicy;
  /** The elements the module made for messages. */
  /** @type {Set<HTMLElement>} */
  const messages = new Set();
  /** The controls it marked invalid, with the message ids it added to their aria-describedby. */
  /** @type {Map<Element, string[]>} */
  const marked = new Map();

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
    retryButton = undefined;
  };

  /** @param {() => void} action */
  const offerRetry = (action) => {
    retryButton = document.createElement("button");
    retryButton.type = "button";
    retryButton.className = "pseudoform-retry";
    retryButton.textContent = text("retry", lang);
    retryButton.addEventListener("click", action);
    status.append(" ", retryButton);
  };

  const clearErrors = () => {
    for (const [element, added] of marked) {
      element.removeAttribute("aria-invalid");
      const describedBy = (element.getAttribute("aria-describedby") ?? "")
        .split(/\s+/)
        .filter((id) => id && !added.includes(id));
      if (describedBy.length > 0) element.setAttribute("aria-describedby", describedBy.join(" "));
      else element.removeAttribute("aria-describedby");
    }
    marked.clear();
    for (const element of form.querySelectorAll("[data-pseudoform-error-for]")) {
      const message = /** @type {HTMLElement} */ (element);
      message.hidden = true;
      message.textContent = "";
    }
  };

  /**
   * The element that shows the message of `key`: the page's own
   * [data-pseudoform-error-for] element, or one made next to the field.
   * @param {Shown} problem
   * @returns {HTMLElement | undefined}
   */
  const messageElement = (problem) => {
    /** @type {HTMLElement | null} */
    let element = form.querySelector(`[data-pseudoform-error-for="${CSS.escape(problem.key)}"]`);
    if (!element) {
      if (!problem.anchor) return undefined;
      element = document.createElement("p");
      element.className = "pseudoform-error";
      element.dataset.pseudoformErrorFor = problem.key;
      element.setAttribute("role", "alert");
      element.hidden = true;
      if (problem.inside) problem.anchor.append(element);
      else {
        const label = problem.anchor.parentElement;
        const after = label instanceof HTMLLabelElement ? label : problem.anchor;
        after.insertAdjacentElement("afterend", element);
      }
      messages.add(element);
    }
    element.id ||= `pseudoform-error-${problem.key}`;
    return element;
  };

  /**
   * Shows every problem at once, in the order of the form, and focuses the first.
   * @param {Shown[]} problems
   * @param {"validation" | "enter"} why
   */
  const showProblems = (problems, why) => {
    const position = (/** @type {Shown} */ p) => p.anchor ?? p.targets[0];
    const ordered = [...problems].sort((a, b) => {
      const x = position(a);
      const y = position(b);
      if (!x || !y) return x ? -1 : y ? 1 : 0;
      return x.compareDocumentPosition(y) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
    });
    for (const problem of ordered) {
      const element = messageElement(problem);
      if (element) {
        element.textContent = problem.message;
        element.hidden = false;
      }
      for (const target of problem.targets) {
        target.setAttribute("aria-invalid", "true");
        const added = marked.get(target) ?? [];
        marked.set(target, added);
        if (!element) continue;
        const ids = (target.getAttribute("aria-describedby") ?? "").split(/\s+/).filter(Boolean);
        if (!ids.includes(element.id)) {
          target.setAttribute("aria-describedby", [...ids, element.id].join(" "));
          added.push(element.id);
        }
      }
    }
    const list = [...new Set(ordered.map((p) => p.label))].join(", ");
    say(why === "enter" ? text("enter", lang) : fill("validationList", lang, { list }), "error");
    ordered.find((p) => p.focus)?.focus?.focus();
    form.dispatchEvent(
      new CustomEvent("pseudoform:error", {
        detail: { code: why, fields: ordered.map((p) => p.key) },
      }),
    );
  };

  /**
   * An identifying field's problem (`<field>.<rule>`).
   * @param {IdentifyingField[]} fields
   * @param {string} field
   * @param {string} code
   * @returns {Shown}
   */
  const identifyingShown = (fields, field, code) => {
    const entry = fields.find((f) => f.field === field);
    const label = fieldLabel(field, lang);
    const message = describeError({ code }, lang);
    if (!entry) return { key: field, label, message, targets: [], anchor: undefined, inside: false, focus: undefined };
    const container = entry.group ? entry.marked[0] : undefined;
    const focus =
      entry.controls.find((c) => c instanceof HTMLInputElement && c.type === "radio" && c.checked) ?? entry.controls[0];
    return {
      key: field,
      label,
      message,
      targets: [...entry.marked, ...(entry.group ? entry.controls : [])],
      anchor: container ?? entry.marked.at(-1),
      inside: Boolean(container),
      focus,
    };
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
    return {
      key: entry.name,
      label,
      message: clinicalSentence(label, rule, lang),
      targets: group ? [group, ...entry.controls] : entry.controls,
      anchor: group ?? entry.controls.at(-1),
      inside: Boolean(group),
      focus: entry.controls[0],
    };
  };

  /**
   * What the form holds: the identity, the fields whose input the browser
   * cannot read, the clinical fields and their data.
   */
  const read = () => {
    const fields = identifyingFields(form);
    detach(fields);
    /** @type {api.Identity} */
    const identity = {};
    /** @type {string[]} */
    const unreadable = [];
    let optedOut = false;
    for (const entry of fields) {
      const { value, badInput, checked } = readField(entry);
      if (entry.field === "optOut") optedOut ||= checked;
      else if (!isIdentifying(entry.field))
        console.warn("pseudoform: data-pseudoform-field names no field of the method");
      else if (badInput) unreadable.push(entry.field);
      else if (value.trim() !== "") {
        identity[/** @type {keyof api.Identity} */ (entry.field)] = value;
      }
    }
    const clinical = clinicalFields(form, isIdentifying);
    /** @type {Record<string, string | string[]>} */
    const data = {};
    for (const entry of clinical) data[entry.name] = clinicalValue(entry);
    return { fields, identity, unreadable, optedOut, clinical, data };
  };

  /**
   * Every problem the form can see without the TTP: input the browser
   * cannot read, the method's rules, the fields of the required types,
   * required clinical fields.
   * @param {ReturnType<typeof read>} state
   * @param {readonly import("./constants.js").PseudonymTypeCode[]} required
   * @param {string | undefined} provider
   * @param {boolean} [pending] the provider comes from the login still to happen
   * @returns {Shown[]}
   */
  const problemsOf = (state, required, provider, pending = false) => {
    const { fields, identity, unreadable, clinical } = state;
    /** @type {Shown[]} */
    const shown = unreadable.map((field) => identifyingShown(fields, field, `${field}.format`));
    const invalid = validateGiven(identity);
    for (const p of invalid) shown.push(identifyingShown(fields, p.field, p.code));
    const flagged = [...unreadable, ...invalid.map((p) => p.field)];
    for (const p of missingFor(identity, required, provider, flagged)) {
      if (pending && p.field === "provider") continue;
      shown.push(identifyingShown(fields, p.field, p.code));
    }
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
      const fields = identifyingFields(form);
      showProblems(
        e.problems.map((p) => identifyingShown(fields, p.field, p.code)),
        "validation",
      );
      return;
    }
    const message = describeError(e, lang);
    say(unconfirmed ? `${message} ${text("unconfirmed", lang)}` : message, "error");
    offerRetry(() => submit());
    form.dispatchEvent(new CustomEvent("pseudoform:error", { detail: { code: e.code, field: e.field } }));
  };

  // Loads the module and the settings once; after a failure the retry
  // button (or the next submit) tries again. The policy is fetched ahead,
  // so that the first check knows the registry's required types.
  /** @type {Promise<void> | undefined} */
  let loading;
  const loadSettings = () => {
    loading ??= (async () => {
      await ready();
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
      for (const b of submitButtons) b.disabled = false;
      if (status.dataset.kind === "loading" || status.dataset.kind === "unavailable") say("", "");
      try {
        const o = settle(/** @type {api.PseudonymiseOptions} */ (settings()));
        policyOf(o).then(
          (policy) => (knownPolicy ??= policy),
          () => {},
        );
      } catch {
        // Reported at the first submit.
      }
    })().catch((error) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
  /** @param {unknown} error */
  const unavailable = (error) => {
    const e = PseudoformError.from(error);
    say(describeError(e.code === "config.unavailable" ? e : { code: "module.unavailable" }, lang), "unavailable");
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
      const receipt = await postSubmission(form.action, sent.body, { timeoutMs, session: sent.session });
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
    const state = read();
    if (state.optedOut) {
      say(pending ? `${text("optOut", lang)} ${text("optOutPending", lang)}` : text("optOut", lang), "optout");
      form.dispatchEvent(new CustomEvent("pseudoform:optout"));
      return;
    }
    setBusy(true);
    say(text("busy", lang), "busy");
    let unconfirmed = false;
    try {
      await loadSettings();
      const current = settings();
      lang = language(current.lang);
      const o = settle(/** @type {api.PseudonymiseOptions} */ (current));
      const content = JSON.stringify([state.identity, state.data]);
      if (pending) {
        unconfirmed = true;
        if ((await deliver(o.timeoutMs, content)) === "stored") return;
        unconfirmed = false;
      }
      const first = problemsOf(
        state,
        knownPolicy ? requiredTypes(o, knownPolicy) : o.require,
        o.provider,
        providerPending(o),
      );
      if (first.length > 0) {
        showProblems(first, "validation");
        return;
      }
      const policy = await policyOf(o);
      knownPolicy = policy;
      const again = problemsOf(state, requiredTypes(o, policy), o.provider, providerPending(o));
      if (again.length > 0) {
        showProblems(again, "validation");
        return;
      }
      const result = await pseudonymiseWith(state.identity, o, policy);
      pending = {
        body: { ...result.submission, data: state.data },
        detail: {
          types: result.types,
          skipped: result.skipped.map((s) => ({ type: s.type, code: s.code, field: s.field })),
        },
        content,
        session: o.session,
      };
      unconfirmed = true;
      if ((await deliver(o.timeoutMs, content)) === "expired") {
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
      resetFields(identifyingFields(form));
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
    const untouched = clinicalFields(form, isIdentifying).filter((f) => f.required && !touched.has(f.name));
    if (untouched.length === 0) return;
    event.preventDefault();
    clearErrors();
    showProblems(
      untouched.map((f) => clinicalShown(f, "untouched")),
      "enter",
    );
  };

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
    /** Resolves when the module and the settings are loaded. */
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
      for (const element of messages) element.remove();
      reattach(form);
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
