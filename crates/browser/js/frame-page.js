// The identity frame's page: the frame's side of `pseudoform-frame/1`
// (docs/frame.md). Served by the frame host (target/frame/, bundled into
// frame.js with the JS layer and the wasm glue), framed by a registry's
// page of an origin the frame host allows. It reads its own settings.json
// (the TTP, the recipients' origins, the providers' logins, the pinned
// signing keys: never the parent's word), accepts one `init` from its
// parent window and an origin allowed for the named recipient, renders the
// identifying fields the types need and the opt-out, and answers over the
// port it was given. Checks, messages, the session, the login and the
// pseudonymisation are the in-page binding's own (identity.js, view.js) on
// the frame's form. The parent gets what the registry may have, never a
// value, a token, a blind factor or a key.
/** @import * as api from "./index.js" */
/** @import { IdentityRead } from "./identity.js" */
/** @import { TypeCode } from "./constants.js" */
/** @import { FramedSubmission, InitMessage, Requests, Results } from "./frame-protocol.js" */
import { FIELDS, TYPE_FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { describeError, fieldLabel, language } from "./messages.js";
import { PROTOCOL, isMessage, themeOf } from "./frame-protocol.js";
import { frameText } from "./frame-texts.js";
import { pageIdentity } from "./identity.js";
import { typeCodes } from "./required.js";
import { problemView } from "./view.js";
import { ready } from "./wasm.js";
import { randomJti } from "./dpop.js";

/**
 * The frame host's settings.json (the contract's shape).
 * @typedef {object} FrameSettings
 * @property {string} ttp
 * @property {{ organization: string, scope: string, origins: string[] }[]} recipients
 * @property {{ provider: string, login: string }[]} providers
 * @property {string[]} [ttpSigningKeys]
 */

const main = /** @type {HTMLElement} */ (document.querySelector("main"));
const status = /** @type {HTMLElement} */ (document.getElementById("status"));
const form = /** @type {HTMLFormElement} */ (document.getElementById("identity"));

/** @param {string} message */
const announce = (message) => {
  status.textContent = message;
};

/**
 * The frame's settings from its own origin, checked.
 * @returns {Promise<FrameSettings>}
 */
async function loadSettings() {
  const response = await fetch(new URL("settings.json", location.href), { cache: "no-store", credentials: "omit" });
  if (!response.ok) throw new Error(`settings.json: ${response.status}`);
  const s = await response.json();
  const strings = (/** @type {unknown} */ v) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (
    !s ||
    s.version !== 1 ||
    typeof s.ttp !== "string" ||
    !Array.isArray(s.recipients) ||
    !s.recipients.every(
      (/** @type {any} */ r) =>
        r && typeof r.organization === "string" && typeof r.scope === "string" && strings(r.origins),
    ) ||
    !Array.isArray(s.providers ?? []) ||
    !(s.providers ?? []).every(
      (/** @type {any} */ p) => p && typeof p.provider === "string" && typeof p.login === "string",
    ) ||
    (s.ttpSigningKeys !== undefined && !strings(s.ttpSigningKeys))
  ) {
    throw new Error("settings.json is malformed");
  }
  return { ...s, providers: s.providers ?? [] };
}

/**
 * The fields the types need, in the method's order: those of TYPE_FIELDS
 * but the provider (the login's), and the house-number addition with the
 * house number (the optional part of type A's input).
 * @param {readonly TypeCode[]} types
 */
function fieldsFor(types) {
  const needed = new Set(types.flatMap((t) => TYPE_FIELDS[t]));
  if (needed.has("houseNumber")) needed.add("houseNumberAddition");
  return FIELDS.filter((f) => f !== "provider" && needed.has(f));
}

/**
 * One identifying field: its label and control.
 * @param {string} field
 * @param {"nl" | "en"} lang
 */
function fieldElement(field, lang) {
  const wrap = document.createElement("div");
  wrap.className = "field";
  wrap.dataset.field = field;
  const label = document.createElement("label");
  label.htmlFor = field;
  label.textContent = fieldLabel(field, lang);
  /** @type {HTMLInputElement | HTMLSelectElement} */
  let control;
  if (field === "sex") {
    control = document.createElement("select");
    control.add(new Option(frameText("choose", lang), ""));
    for (const option of frameText("sexOptions", lang).split("|")) {
      const [value = "", ...words] = option.split(" ");
      control.add(new Option(words.join(" "), value));
    }
  } else {
    control = document.createElement("input");
    control.autocomplete = "off";
    control.spellcheck = false;
    if (field === "houseNumber" || field === "bsn") control.inputMode = "numeric";
  }
  control.id = field;
  control.dataset.pseudoformField = field;
  wrap.append(label, control);
  return wrap;
}

/**
 * Renders the identifying fields and the opt-out into the frame's form.
 * @param {readonly string[]} fields
 * @param {"nl" | "en"} lang
 */
function render(fields, lang) {
  const parts = fields.map((field) => fieldElement(field, lang));
  const optOut = document.createElement("div");
  optOut.className = "field wide";
  const label = document.createElement("label");
  label.className = "check";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = "optOut";
  box.dataset.pseudoformField = "optOut";
  label.append(box, " ", frameText("optOutLabel", lang));
  optOut.append(label);
  parts.push(optOut);
  form.replaceChildren(...parts);
  form.hidden = false;
}

/**
 * Adds the fields of `fields` the form does not show yet, each in the
 * method's order (a type the recipient's policy requires beyond those the
 * page asked for needs them); what is typed stays. Whether one was added.
 * @param {readonly string[]} fields
 * @param {"nl" | "en"} lang
 */
function addFields(fields, lang) {
  let added = false;
  for (const field of FIELDS) {
    if (field === "provider" || !fields.includes(field) || form.querySelector(`[data-field="${field}"]`)) continue;
    const later = [...form.querySelectorAll("[data-field]")].find(
      (e) => FIELDS.indexOf(/** @type {any} */ (/** @type {HTMLElement} */ (e).dataset.field)) > FIELDS.indexOf(field),
    );
    form.insertBefore(fieldElement(field, lang), later ?? form.lastElementChild);
    added = true;
  }
  return added;
}

/**
 * Runs the frame once its settings and module are loaded: waits for the
 * parent's init, then serves the port.
 * @param {FrameSettings} settings
 */
function serve(settings) {
  let initialised = false;
  /** @param {MessageEvent} event */
  const onInit = (event) => {
    if (initialised || event.source !== window.parent || !isMessage(event.data, "init")) return;
    const port = event.ports[0];
    if (!port) return;
    initialised = true;
    window.removeEventListener("message", onInit);
    start(settings, /** @type {Partial<InitMessage>} */ (event.data), event.origin, port);
  };
  window.addEventListener("message", onInit);
  // The hello says nothing but the protocol: the parent's origin is not
  // known before its init (and is then checked).
  window.parent.postMessage({ protocol: PROTOCOL, type: "hello" }, "*");
}

/**
 * @param {FrameSettings} settings
 * @param {Partial<InitMessage>} init what the parent sent: checked here
 * @param {string} parentOrigin
 * @param {MessagePort} port
 */
function start(settings, init, parentOrigin, port) {
  /** @param {string} type @param {Record<string, unknown>} [fields] */
  const post = (type, fields = {}) => port.postMessage({ protocol: PROTOCOL, type, ...fields });
  /** @param {string} code @param {string} [field] */
  const refuse = (code, field) => {
    post("refused", { code, ...(field ? { field } : {}) });
    port.close();
  };
  const lang = language(init.lang);
  document.documentElement.lang = lang;
  const recipient = settings.recipients.find(
    (r) => r.organization === init.recipientOrganization && r.scope === init.recipientScope,
  );
  if (!recipient || !recipient.origins.includes(parentOrigin)) {
    announce(describeError({ code: "frame.originNotAllowed" }, lang));
    refuse("frame.originNotAllowed");
    return;
  }
  const provider =
    typeof init.provider === "string" && init.provider !== ""
      ? settings.providers.find((p) => p.provider === init.provider)
      : settings.providers.length === 1
        ? settings.providers[0]
        : undefined;
  if (!provider) {
    refuse("config.invalid", "provider");
    return;
  }
  /** @type {TypeCode[]} */
  let types;
  /** @type {TypeCode[]} */
  let require;
  try {
    require = typeCodes(init.require, "require");
    types = [...new Set([...typeCodes(init.types, "types"), ...require])];
    if (types.length === 0) throw new PseudoformError("config.invalid", "no types", "types");
  } catch (error) {
    refuse("config.invalid", PseudoformError.from(error).field);
    return;
  }
  const timeoutMs =
    typeof init.timeoutMs === "number" && init.timeoutMs > 0 ? Math.min(init.timeoutMs, 60_000) : 10_000;
  for (const [name, value] of Object.entries(themeOf(init.theme))) {
    document.documentElement.style.setProperty(name, value);
  }
  render(fieldsFor(types), lang);

  /** @returns {api.ProtectFormOptions} */
  const options = () => ({
    ttp: settings.ttp,
    recipientOrganization: recipient.organization,
    recipientScope: recipient.scope,
    provider: provider.provider,
    types,
    require,
    login: provider.login,
    timeoutMs,
    ...(settings.ttpSigningKeys ? { ttpSigningKeys: settings.ttpSigningKeys } : {}),
  });
  const identity = pageIdentity(form, options, () => lang);
  const view = problemView(form);
  /** The records the frame made: it signs a submitter proof for these only. */
  const made = new Set();
  /**
   * The last record made: the identity it was made of (never sent) and a
   * random revision for it. `state` answers that revision while the
   * identity is still that one, and "-" otherwise: the parent learns
   * whether the identity is still that of the record it holds, and no
   * count or timing of edits.
   * @type {{ content: string, revision: string } | undefined}
   */
  let lastMade;
  /** @type {IdentityRead | undefined} */
  let current;
  /** Whether `current` was checked with the recipient's policy fetched (`check` with `fresh`). */
  let checked = false;

  // The login: a click inside the frame (a cross-origin frame does not
  // share the parent's user activation, and the popup needs one).
  const login = document.createElement("button");
  login.type = "button";
  login.className = "pseudoform-login";
  login.textContent = frameText("loginButton", lang);
  const loggedIn = () => Boolean(identity.session()?.loggedIn);
  const showLogin = () => {
    login.hidden = loggedIn();
  };
  login.addEventListener("click", async () => {
    const session = identity.session();
    if (!session) return;
    login.disabled = true;
    try {
      await session.accessToken({ timeoutMs });
      announce(frameText("loggedIn", lang));
    } catch (error) {
      announce(describeError(error, lang));
    } finally {
      login.disabled = false;
      showLogin();
    }
  });
  main.prepend(login);
  showLogin();

  form.addEventListener("submit", (event) => event.preventDefault());
  // Enter in a field submits the parent's form, as in a form without a frame
  // (the parent applies its rule on untouched required fields first).
  form.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key !== "Enter" || event.isComposing || !(target instanceof HTMLInputElement)) return;
    if (target.type === "checkbox") return;
    event.preventDefault();
    post("enter");
  });

  const report = () => post("resize", { height: Math.ceil(main.getBoundingClientRect().height) });
  new ResizeObserver(report).observe(main);

  /**
   * @param {number} id
   * @param {unknown} error
   */
  const failed = (id, error) => {
    const e = PseudoformError.from(error);
    /** @type {Record<string, unknown>} */
    const out = { code: e.code };
    if (e.field !== undefined) out.field = e.field;
    if (e.problems) out.problems = e.problems.map((p) => ({ field: p.field, code: p.code }));
    post("answer", { id, ok: false, error: out });
  };

  /**
   * Refuses (`optOut`) when the patient objects in `read`: the page cannot
   * make the frame pseudonymise, or prove a delivery, against the opt-out.
   * @param {IdentityRead} read
   */
  const objected = (read) => {
    if (!read.optedOut) return;
    announce(describeError({ code: "optOut" }, lang));
    throw new PseudoformError("optOut", "the patient objects: nothing is pseudonymised or delivered", "optOut");
  };

  /**
   * The answers to the parent's requests (whose arguments are checked here).
   * @type {{ [T in keyof Requests]: (m: Partial<Requests[T]>) => Promise<Results[T]> }}
   */
  const handlers = {
    async state() {
      current = await identity.read();
      checked = false;
      const same = lastMade !== undefined && current.revision === lastMade.content;
      return { optedOut: current.optedOut, revision: same && lastMade ? lastMade.revision : "-" };
    },
    async check(m) {
      if (!current) {
        current = await identity.read();
        checked = false;
      }
      let problems = await current.problems(m.fresh === true);
      // A field the policy's required types need that the frame does not show yet: shown now.
      if (
        addFields(
          problems.map((p) => p.key),
          lang,
        )
      ) {
        current = await identity.read();
        problems = await current.problems(m.fresh === true);
      }
      checked ||= m.fresh === true;
      view.clear();
      // Shown here, in the order of the frame's form; the parent focuses the first.
      const ordered = view.show(problems.map((p) => ({ ...p, focus: undefined })));
      return { problems: ordered.map((p) => ({ field: p.key, code: p.code ?? "internal" })) };
    },
    async pseudonymise() {
      if (!current || !checked) throw new PseudoformError("frame.protocol", "pseudonymise before the check");
      // The objection is the clinician's, in this frame: read as it is now,
      // whatever the page asked before, and nothing is evaluated under it.
      objected(current);
      objected(await identity.read());
      if (!loggedIn()) {
        showLogin();
        announce(describeError({ code: "login.required" }, lang));
        throw new PseudoformError("login.required", "log in at the care provider first", "login");
      }
      try {
        const result = await current.pseudonymise();
        if (!("record" in result.submission)) throw new PseudoformError("frame.protocol", "no record");
        /** @type {FramedSubmission} */
        const submission = result.submission;
        made.add(submission.record);
        lastMade = { content: current.revision, revision: randomJti() };
        return { submission, types: result.types, skipped: result.skipped, revision: lastMade.revision };
      } catch (error) {
        const e = PseudoformError.from(error);
        if (e.problems) view.show(identity.shown(e.problems).map((p) => ({ ...p, focus: undefined })));
        throw e;
      } finally {
        showLogin();
      }
    },
    async proof(m) {
      const session = identity.session();
      let target;
      try {
        target = new URL(String(m.url));
      } catch {
        throw new PseudoformError("frame.protocol", "the proof's URL is not a URL");
      }
      // No delivery of a record made before an objection ticked since.
      objected(await identity.read());
      if (m.method !== "POST" || target.origin !== parentOrigin || !made.has(m.record) || !session) {
        throw new PseudoformError("frame.protocol", "a proof only for a record this frame made, to the page's origin");
      }
      return { proof: await session.submitterProof("POST", target.href, String(m.record)) };
    },
  };

  port.onmessage = async (event) => {
    const m = event.data;
    if (!isMessage(m)) return;
    if (m.type === "clear") view.clear();
    else if (m.type === "reset") {
      form.reset();
      identity.reset();
      view.clear();
      made.clear();
      current = undefined;
      lastMade = undefined;
      announce(frameText("cleared", lang));
    } else if (m.type === "focus" && typeof m.field === "string") {
      const control = form.querySelector(`[data-pseudoform-field="${CSS.escape(m.field)}"]`);
      if (control instanceof HTMLElement) control.focus();
    } else if (typeof m.id === "number" && Object.hasOwn(handlers, m.type)) {
      const handler = /** @type {(m: object) => Promise<object>} */ (handlers[/** @type {keyof Requests} */ (m.type)]);
      try {
        post("answer", { id: m.id, ok: true, ...(await handler(m)) });
      } catch (error) {
        failed(m.id, error);
      }
    }
  };
  identity.load().then(
    () => post("ready"),
    () => refuse("frame.unavailable"),
  );
}

if (window.parent === window) {
  announce(describeError({ code: "frame.originNotAllowed" }, "nl"));
} else {
  Promise.all([loadSettings(), ready()]).then(
    ([settings]) => serve(settings),
    () => announce(describeError({ code: "frame.unavailable" }, "nl")),
  );
}
