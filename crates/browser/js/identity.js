// The identity part of a form, in the page: the identifying controls of a
// form (controls.js), their checks (the method's rules in the wasm, the
// fields the required types need, input the browser cannot read), the
// opt-out, the session and the provider's login, the pseudonymisation and
// the submitter proof. The form part (form.js) asks it through one small
// interface, `IdentityPart`, that the identity frame's parent side
// (framed.js) offers too: the form part never knows which it has.
//
// The identity frame runs this same part on the frame's own form, so the
// checks, messages and pseudonymisation exist once.
/** @import * as api from "./index.js" */
/** @import { Policy } from "./ttp.js" */
/** @import { Shown } from "./view.js" */
/** @import { IdentifyingField } from "./controls.js" */
/** @import { Language } from "./messages.js" */
import { FIELDS } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { describeError, fieldLabel } from "./messages.js";
import { policyOf, providerPending, pseudonymiseWith, requiredTypes, settle } from "./pseudonymise.js";
import { popupLogin } from "./login.js";
import { TtpSession } from "./session.js";
import { missingFor } from "./required.js";
import { ready, validateGiven } from "./wasm.js";
import { detach, identifyingFields, readField, reattach, resetFields } from "./controls.js";

/** The fields that identify the patient: every field of the method but the provider. */
export const IDENTIFYING = FIELDS.filter((f) => f !== "provider");

/** @param {string} name */
export const isIdentifying = (name) => /** @type {readonly string[]} */ (IDENTIFYING).includes(name);

/**
 * A field problem as it crosses between the parts: field and rule, never a value.
 * @typedef {{ field: string, code: string }} Problem
 */

/**
 * What signs the submitter proof of a record (a TtpSession, or the frame).
 * @typedef {{ submitterProof(method: string, url: string, record: string): Promise<string> }} Prover
 */

/**
 * A pseudonymised identity: what the registry gets of it, the types made
 * and skipped, and who signs its submitter proof.
 * @typedef {object} Made
 * @property {api.SubmissionPseudonyms} submission
 * @property {string[]} types
 * @property {{ type: string, code: string, field?: string }[]} skipped
 * @property {Prover | undefined} prover
 * @property {string} [revision] the identity's revision as made, when the
 *   part gives it only now (the frame)
 */

/**
 * The identity as read at a submit.
 * @typedef {object} IdentityRead
 * @property {boolean} optedOut whether the patient objects
 * @property {string} revision the same for the same identity, at least
 *   while it is that of the last record made (opaque; in the page the
 *   identity itself, never sent)
 * @property {(fresh: boolean) => Promise<Shown[]>} problems every problem of
 *   the identity: with the policy known so far (`fresh` false, no request),
 *   or with the recipient's policy fetched now
 * @property {() => Promise<Made>} pseudonymise the identity pseudonymised
 *   (with the policy of the last `problems(true)`)
 */

/**
 * The identity part of a form.
 * @typedef {object} IdentityPart
 * @property {() => Promise<void>} load loads what it needs (the module;
 *   the frame); rejects with a PseudoformError
 * @property {() => Promise<IdentityRead>} read
 * @property {(problems: Problem[]) => Shown[]} shown problems as the form shows them
 * @property {() => void} clear hides its messages where the form's view does not reach
 * @property {() => void} reset empties it for the next patient
 * @property {() => void} destroy
 */

/**
 * The in-page identity part of `form`: its identifying controls.
 * @param {HTMLFormElement} form
 * @param {() => api.ProtectFormOptions} options the form's settings, read at every use
 * @param {() => Language} lang
 * @returns {IdentityPart & { session(): api.TtpSession | undefined }}
 */
export function pageIdentity(form, options, lang) {
  detach(identifyingFields(form));
  /** The session made from the settings' `login` (one per TTP and login URL). */
  /** @type {{ key: string, session: TtpSession } | undefined} */
  let own;
  /** The last policy seen, so the first check already knows its required types. */
  /** @type {Policy | undefined} */
  let knownPolicy;

  /**
   * The settings with a session: the one given, or one of the form's own
   * that logs in through the provider's popup at `login`.
   * @returns {api.ProtectFormOptions}
   */
  const withSession = () => {
    const current = options();
    if (current.session || !current.login || typeof current.ttp !== "string") return current;
    const key = `${current.ttp}\n${current.login}`;
    if (own?.key !== key) {
      own = { key, session: new TtpSession({ ttp: current.ttp, subjectToken: popupLogin(current.login) }) };
    }
    return { ...current, session: own.session };
  };
  const settled = () => settle(/** @type {api.PseudonymiseOptions} */ (withSession()));

  /**
   * An identifying field's problem (`<field>.<rule>`).
   * @param {IdentifyingField[]} fields
   * @param {Problem} problem
   * @returns {Shown}
   */
  const shownOf = (fields, { field, code }) => {
    const entry = fields.find((f) => f.field === field);
    const label = fieldLabel(field, lang());
    const message = describeError({ code }, lang());
    if (!entry) {
      return { key: field, code, label, message, targets: [], anchor: undefined, inside: false, focus: undefined };
    }
    const container = entry.group ? entry.marked[0] : undefined;
    const focus =
      entry.controls.find((c) => c instanceof HTMLInputElement && c.type === "radio" && c.checked) ?? entry.controls[0];
    return {
      key: field,
      code,
      label,
      message,
      targets: [...entry.marked, ...(entry.group ? entry.controls : [])],
      anchor: container ?? entry.marked.at(-1),
      inside: Boolean(container),
      focus: focus ? () => focus.focus() : undefined,
    };
  };

  return {
    async load() {
      await ready();
      try {
        const o = settled();
        policyOf(o).then(
          (policy) => (knownPolicy ??= policy),
          () => {},
        );
      } catch {
        // Reported at the first submit.
      }
    },

    async read() {
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
      /** @type {Policy | undefined} */
      let policy;
      return {
        optedOut,
        revision: JSON.stringify(identity),
        async problems(fresh) {
          const o = settled();
          if (fresh) {
            policy = await policyOf(o);
            knownPolicy = policy;
          }
          const known = fresh ? policy : knownPolicy;
          const required = known ? requiredTypes(o, known) : o.require;
          /** @type {Problem[]} */
          const found = unreadable.map((field) => ({ field, code: `${field}.format` }));
          const invalid = validateGiven(identity);
          found.push(...invalid);
          const flagged = [...unreadable, ...invalid.map((p) => p.field)];
          const pending = providerPending(o);
          for (const p of missingFor(identity, required, o.provider, flagged)) {
            if (!(pending && p.field === "provider")) found.push(p);
          }
          return found.map((p) => shownOf(fields, p));
        },
        async pseudonymise() {
          const o = settled();
          if (!policy) throw new PseudoformError("internal", "pseudonymise before the policy check");
          const result = await pseudonymiseWith(identity, o, policy);
          return {
            submission: result.submission,
            types: result.types,
            skipped: result.skipped.map((s) => ({ type: s.type, code: s.code, field: s.field })),
            prover: o.session,
          };
        },
      };
    },

    shown(problems) {
      const fields = identifyingFields(form);
      return problems.map((p) => shownOf(fields, p));
    },

    clear() {},

    reset() {
      resetFields(identifyingFields(form));
    },

    destroy() {
      reattach(form);
    },

    session() {
      return withSession().session;
    },
  };
}
