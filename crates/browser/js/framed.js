// The identity part of a form whose identity is in the identity frame: the
// parent's side of `pseudoform-frame/1` (docs/frame.md). It places the
// frame's <iframe> in the form's <pseudoform-identity> element, waits for
// the frame's hello (from that iframe's window and the frame's origin only),
// hands it the non-secret settings and a MessagePort, and from then on talks
// only over that port. It learns what the registry may have and no more:
// the submission (record JWE and sealed blind factors), the submitter proof
// of its own post, the types made and skipped, field problems as field and
// rule, the opt-out, the revision of the record made and the frame's height.
/** @import * as api from "./index.js" */
/** @import { IdentityPart, Made, Problem } from "./identity.js" */
/** @import { Language } from "./messages.js" */
/** @import { Shown } from "./view.js" */
/** @import { InitMessage, Requests, Results } from "./frame-protocol.js" */
import { REVERSIBLE_TYPE } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { describeError, fieldLabel } from "./messages.js";
import { FRAME_ELEMENT, PROTOCOL, THEME_PROPERTIES, isCode, isMessage, problemsOf, themeOf } from "./frame-protocol.js";
import { frameText } from "./frame-texts.js";
import { timeoutOf } from "./form.js";

/** The longest a pseudonymisation in the frame may take (a TTP request, twice, and sealing). */
const PSEUDONYMISE_MS = 60_000;
/** The tallest the frame is made. */
const MAX_HEIGHT = 4000;

/**
 * Type codes as a list, from a list or a space-separated string.
 * @param {unknown} value
 * @returns {string[]}
 */
const list = (value) =>
  typeof value === "string"
    ? value.split(/\s+/).filter(Boolean)
    : Array.isArray(value)
      ? value.filter((v) => typeof v === "string")
      : [];

/**
 * The frame page's URL: https, http only on loopback.
 * @param {string} src
 */
function frameUrl(src) {
  try {
    const url = new URL(src, location.href);
    if (url.protocol === "https:" || ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) return url;
  } catch {
    // below
  }
  throw new PseudoformError(
    "config.invalid",
    "the identity frame's URL must be https (http only on loopback)",
    "frame",
  );
}

/**
 * A refusal or failure of the frame as a PseudoformError (code and field only).
 * @param {unknown} error
 */
function frameError(error) {
  const e = /** @type {{ code?: unknown, field?: unknown, problems?: unknown } | null} */ (error);
  if (!e || !isCode(e.code)) return new PseudoformError("frame.protocol", "the identity frame gave an unusable answer");
  const problems = e.problems === undefined ? undefined : problemsOf(e.problems);
  return new PseudoformError(
    /** @type {string} */ (e.code),
    `the identity frame answered ${e.code}`,
    typeof e.field === "string" ? e.field : undefined,
    problems ? { problems: /** @type {api.FieldProblem[]} */ (problems.map((p) => ({ ...p, message: p.code }))) } : {},
  );
}

/**
 * The identity part of `form` in the frame of its <pseudoform-identity>.
 * @param {HTMLFormElement} form
 * @param {() => api.ProtectFormOptions} settings
 * @param {() => Language} lang
 * @param {{ enter: () => void }} events
 * @returns {IdentityPart}
 */
export function framedIdentity(form, settings, lang, events) {
  const element = form.querySelector(FRAME_ELEMENT);
  if (!(element instanceof HTMLElement)) {
    throw new PseudoformError("config.invalid", "the form has no <pseudoform-identity> element", "frame");
  }
  /** @type {HTMLIFrameElement | undefined} */
  let iframe;
  /** @type {MessagePort | undefined} */
  let port;
  let nextId = 1;
  /** @type {Map<number, { resolve: (value: any) => void, reject: (error: unknown) => void, timer: ReturnType<typeof setTimeout> }>} */
  const waiting = new Map();

  /** Drops the frame and fails every request still waiting. */
  const teardown = () => {
    port?.close();
    port = undefined;
    iframe?.remove();
    iframe = undefined;
    for (const w of waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new PseudoformError("frame.unavailable", "the identity frame is gone"));
    }
    waiting.clear();
  };

  /**
   * Asks the frame over the port; resolves to its answer (unchecked: the
   * caller checks its shape).
   * @template {keyof Requests} T
   * @param {T} type
   * @param {Requests[T]} args
   * @param {number} [timeoutMs]
   * @returns {Promise<Partial<Results[T]>>}
   */
  const request = (type, args, timeoutMs = timeoutOf(settings())) =>
    new Promise((resolve, reject) => {
      if (!port) {
        reject(new PseudoformError("frame.unavailable", "the identity frame is not loaded"));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new PseudoformError("frame.unavailable", "the identity frame did not answer in time"));
      }, timeoutMs);
      waiting.set(id, { resolve, reject, timer });
      port.postMessage({ protocol: PROTOCOL, type, id, ...args });
    });

  /** The theme: the element's own computed custom properties, and the setting. */
  const theme = () => {
    const style = getComputedStyle(element);
    /** @type {Record<string, string>} */
    const own = {};
    for (const name of Object.keys(THEME_PROPERTIES)) {
      const value = style.getPropertyValue(name).trim();
      if (value) own[name] = value;
    }
    return themeOf({ ...own, ...settings().theme });
  };

  /**
   * A message from the frame over the port.
   * @param {MessageEvent} event
   * @param {{ ready: () => void, refused: (error: unknown) => void }} handshake
   */
  const onPortMessage = (event, handshake) => {
    const data = event.data;
    if (!isMessage(data)) return;
    if (data.type === "ready") handshake.ready();
    else if (data.type === "enter") events.enter();
    else if (data.type === "refused") handshake.refused(frameError(data));
    else if (data.type === "resize") {
      const height = Number(data.height);
      if (iframe && Number.isFinite(height) && height >= 0) {
        iframe.style.height = `${Math.min(Math.ceil(height), MAX_HEIGHT)}px`;
      }
    } else if (data.type === "answer" && typeof data.id === "number") {
      const w = waiting.get(data.id);
      if (!w) return;
      waiting.delete(data.id);
      clearTimeout(w.timer);
      if (data.ok === true) w.resolve(data);
      else w.reject(frameError(data.error));
    }
  };

  /**
   * Places a new frame and completes the handshake: hello from the frame's
   * window and origin, init with the port, ready (or refused) over it.
   * @returns {Promise<void>}
   */
  const load = () => {
    teardown();
    const o = settings();
    const src = element.getAttribute("src") || o.frame;
    if (!src) return Promise.reject(new PseudoformError("config.invalid", "the identity frame has no src", "frame"));
    let url;
    try {
      url = frameUrl(src);
    } catch (error) {
      return Promise.reject(error);
    }
    const origin = url.origin;
    const frame = document.createElement("iframe");
    frame.title = frameText("frameTitle", lang());
    frame.referrerPolicy = "no-referrer";
    frame.className = "pseudoform-frame";
    frame.src = url.href;
    iframe = frame;
    return new Promise((resolve, reject) => {
      /** @param {unknown} error */
      const fail = (error) => {
        window.removeEventListener("message", onHello);
        clearTimeout(timer);
        teardown();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new PseudoformError("frame.unavailable", "the identity frame did not load in time")),
        timeoutOf(o),
      );
      /** @param {MessageEvent} event */
      const onHello = (event) => {
        if (event.source !== frame.contentWindow || event.origin !== origin || !isMessage(event.data, "hello")) return;
        window.removeEventListener("message", onHello);
        const channel = new MessageChannel();
        port = channel.port1;
        port.onmessage = (e) =>
          onPortMessage(e, {
            ready: () => {
              clearTimeout(timer);
              resolve();
            },
            refused: fail,
          });
        const current = settings();
        /** @type {InitMessage} */
        const init = {
          protocol: PROTOCOL,
          type: "init",
          recipientOrganization: current.recipientOrganization,
          recipientScope: current.recipientScope,
          provider: current.provider,
          types: list(current.types),
          require: list(current.require),
          lang: lang(),
          theme: theme(),
          timeoutMs: timeoutOf(current),
        };
        frame.contentWindow?.postMessage(init, origin, [channel.port2]);
      };
      window.addEventListener("message", onHello);
      element.append(frame);
    });
  };

  /**
   * Problems the frame found, as the parent shows them: by label in its
   * status line; the frame shows each next to its field.
   * @param {Problem[]} problems
   * @returns {Shown[]}
   */
  const shown = (problems) =>
    problems.map(({ field, code }) => ({
      key: field,
      code,
      label: fieldLabel(field, lang()),
      message: describeError({ code }, lang()),
      targets: [],
      anchor: undefined,
      inside: false,
      position: element,
      focus: () => {
        iframe?.focus();
        port?.postMessage({ protocol: PROTOCOL, type: "focus", field });
      },
    }));

  return {
    load,

    async read() {
      const state = await request("state", {});
      if (typeof state.optedOut !== "boolean" || typeof state.revision !== "string") {
        throw new PseudoformError("frame.protocol", "the identity frame's state is malformed");
      }
      return {
        optedOut: state.optedOut,
        revision: state.revision,
        async problems(fresh) {
          const answer = await request("check", { fresh });
          const problems = problemsOf(answer.problems);
          if (!problems) throw new PseudoformError("frame.protocol", "the identity frame's problems are malformed");
          return shown(problems);
        },
        async pseudonymise() {
          const answer = await request("pseudonymise", {}, PSEUDONYMISE_MS);
          const s = answer.submission;
          // Type R: the patient number sealed to the provider, passed on as it came (type R, three strings).
          const r = /** @type {Record<string, unknown> | null | undefined} */ (s?.reversible);
          const reversible =
            r &&
            typeof r === "object" &&
            r.type === REVERSIBLE_TYPE &&
            typeof r.kid === "string" &&
            typeof r.enc === "string" &&
            typeof r.ct === "string"
              ? { type: REVERSIBLE_TYPE, kid: r.kid, enc: r.enc, ct: r.ct }
              : undefined;
          if (
            !s ||
            (r !== undefined && !reversible) ||
            typeof s.record !== "string" ||
            typeof s.encryptedBlindFactors !== "string" ||
            !Array.isArray(answer.types) ||
            !Array.isArray(answer.skipped) ||
            typeof answer.revision !== "string"
          ) {
            throw new PseudoformError("frame.protocol", "the identity frame's submission is malformed");
          }
          /** @type {Made} */
          const made = {
            submission: {
              recipientOrganization: String(s.recipientOrganization),
              recipientScope: String(s.recipientScope),
              methodVersion: Number(s.methodVersion),
              record: s.record,
              encryptedBlindFactors: s.encryptedBlindFactors,
              ...(reversible ? { reversible } : {}),
            },
            types: list(answer.types),
            revision: answer.revision,
            skipped: answer.skipped
              .filter((/** @type {any} */ k) => k && typeof k.type === "string" && isCode(k.code))
              .map((/** @type {any} */ k) => ({
                type: k.type,
                code: k.code,
                ...(typeof k.field === "string" ? { field: k.field } : {}),
              })),
            prover: {
              async submitterProof(method, url, record) {
                const proof = await request("proof", { method, url, record });
                if (typeof proof.proof !== "string") {
                  throw new PseudoformError("frame.protocol", "the identity frame's proof is malformed");
                }
                return proof.proof;
              },
            },
          };
          return made;
        },
      };
    },

    shown,

    clear() {
      port?.postMessage({ protocol: PROTOCOL, type: "clear" });
    },

    reset() {
      port?.postMessage({ protocol: PROTOCOL, type: "reset" });
    },

    destroy: teardown,
  };
}
