// The CPU-bound steps of a workbench chunk, the same in a Web Worker
// (worker.js) and, when no worker can start, in the page itself: before the
// TTP call every row checked (the required types, after the login with its
// provider), blinded in wasm and its R sealed to the provider's key; after
// it, every record's blind factors sealed to the registry's key. What a
// step keeps between the two (the blind factors, the skipped types, R's
// envelope) stays where it was made, by job id, until the job is sealed or
// dropped: the page gets only the blinded elements and digests it sends
// the TTP, and the finished submissions. The network (the TTP, the
// registry, the session's DPoP key) stays in the page (run.js).
/** @import * as api from "../index.js" */
/** @import { PseudonymTypeCode, TypeCode } from "../constants.js" */
import { PseudoformError } from "../errors.js";
import { checkIdentity, prepareRecord, reversibleInput, sealFor, submissionOf } from "../pseudonymise.js";
import { REVERSIBLE_TYPE } from "../constants.js";

/**
 * What every step of a run needs, fixed at its start; structured-cloneable
 * (the keys are WebCrypto public keys), so it is posted to each worker once.
 * @typedef {object} Context
 * @property {string} recipientOrganization
 * @property {string} recipientScope
 * @property {string | undefined} provider the login's provider (MRN, R)
 * @property {TypeCode[]} required every type a record must have
 * @property {PseudonymTypeCode[]} permitted the TTP types to make
 * @property {api.SkippedType[]} refused the requested types the recipient may not receive
 * @property {import("../recipient-key.js").RecipientKey | undefined} recipient the registry's verified key
 * @property {import("../reversible.js").ProviderKey | undefined} providerKey when R is made
 */

/**
 * One row before the TTP: refused (its problems), or its blinded elements
 * and R's digest for the TTP.
 * @typedef {{ ok: false, errors: api.FieldProblem[] | { field?: string, code: string, message: string }[] }
 *   | { ok: true, items: { type: PseudonymTypeCode, blindedInput: string }[], reversible?: string }} Prepared
 */

/**
 * One row after the TTP: its submission (without the clinical data), the types made and skipped.
 * @typedef {{ submission: api.SubmissionPseudonyms, types: TypeCode[], skipped: api.SkippedType[] }} Sealed
 */

/**
 * The steps with their kept state; one per worker (or one in the page).
 */
export class Work {
  /** @type {Map<number, { prepared: { type: PseudonymTypeCode, blindFactor: string, blindedInput: string }[], skipped: api.SkippedType[], reversible?: api.ReversibleEnvelope }[]>} */
  #jobs = new Map();

  /** @param {Context} context */
  constructor(context) {
    this.context = context;
  }

  /**
   * Checks, blinds and seals R for each identity of a job.
   * @param {number} job
   * @param {api.Identity[]} identities
   * @returns {Promise<Prepared[]>}
   */
  async prepare(job, identities) {
    const c = this.context;
    const o = /** @type {any} */ ({
      recipientOrganization: c.recipientOrganization,
      recipientScope: c.recipientScope,
      provider: c.provider,
    });
    /** @param {unknown} error */
    const refusal = (error) => {
      const e = PseudoformError.from(error);
      if (e.code === "internal") throw e;
      return /** @type {Prepared} */ ({
        ok: false,
        errors: e.problems ?? [{ field: e.field, code: e.code, message: e.message }],
      });
    };
    // The wasm steps one row after the other; R's WebCrypto steps of all rows at once.
    const rows = identities.map((identity) => {
      try {
        checkIdentity(identity, c.required, c.provider);
        const r = c.providerKey ? reversibleInput(identity, o) : undefined;
        const { prepared, skipped } = prepareRecord(identity, o, c.permitted);
        const sealing = c.providerKey && r && "plaintext" in r ? sealFor(o, c.providerKey, r.plaintext) : undefined;
        // Awaited below; a refusal of one row's R is that row's.
        sealing?.catch(() => {});
        return { prepared, skipped: [...c.refused, ...skipped, ...(r && "skipped" in r ? [r.skipped] : [])], sealing };
      } catch (error) {
        return refusal(error);
      }
    });
    /** @type {{ prepared: any[], skipped: api.SkippedType[], reversible?: api.ReversibleEnvelope }[]} */
    const kept = [];
    /** @type {Prepared[]} */
    const out = await Promise.all(
      rows.map(async (row) => {
        if ("ok" in row) return row;
        let made;
        try {
          made = await row.sealing;
        } catch (error) {
          return refusal(error);
        }
        return { row, made };
      }),
    ).then((all) =>
      all.map((x) => {
        if ("ok" in x) return x;
        const { row, made } = x;
        kept.push({ prepared: row.prepared, skipped: row.skipped, reversible: made?.envelope });
        return {
          ok: true,
          items: row.prepared.map(({ type, blindedInput }) => ({ type, blindedInput })),
          ...(made ? { reversible: made.digest } : {}),
        };
      }),
    );
    this.#jobs.set(job, kept);
    return out;
  }

  /**
   * The submissions of a prepared job's rows (those `prepare` did not
   * refuse, in order) from the TTP's evaluations; the job is then dropped.
   * @param {number} job
   * @param {(string | string[])[]} evaluated the record JWE of each row (one JWE per type with the national API)
   * @returns {Promise<Sealed[]>}
   */
  async seal(job, evaluated) {
    const kept = this.#jobs.get(job);
    this.#jobs.delete(job);
    if (!kept || kept.length !== evaluated.length) {
      throw new PseudoformError("worker.mismatch", "the evaluations do not match the prepared rows");
    }
    const c = this.context;
    const o = /** @type {any} */ ({ recipientOrganization: c.recipientOrganization, recipientScope: c.recipientScope });
    const policy = { allowedTypes: [], requiredTypes: [], recipient: c.recipient };
    return Promise.all(
      kept.map(async (k, i) => ({
        submission: await submissionOf(o, policy, k.prepared, evaluated[i], k.reversible),
        types: [...k.prepared.map((p) => p.type), ...(k.reversible ? [REVERSIBLE_TYPE] : [])],
        skipped: k.skipped,
      })),
    );
  }

  /** Forgets a job (a failed or cancelled chunk). @param {number} job */
  drop(job) {
    this.#jobs.delete(job);
  }
}
