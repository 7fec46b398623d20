// Pseudonymisation through the TTP: the options checked, the recipient's
// policy first (the types it may receive and those it requires), every
// required type checked before anything is blinded, then the evaluations.
//
// A record becomes what the registry needs of it (`submission`): with the
// pseudoform TTP the record JWE once and the blind factors sealed to the
// registry's key, as the TTP's policy states it (recipient-key.js);
// with the national TTP one temporary pseudonym per type in the national
// packaging (`{"evaluated_output", "blind_factor"}`, base64url).
//
// Type R (reversible.js) is no TTP type: when the recipient may receive it
// and the options or the policy ask for it, the provider's current key is
// fetched from the TTP's directory and verified before anything is
// evaluated, MRN's canonical input (of the login's provider: an identity
// naming another provider is refused) is sealed to it, and only the
// envelope's digest goes with the record to the TTP, which signs it into
// the record's claims (`submission.reversible` carries the envelope). The
// number itself never goes to the TTP.
/** @import * as api from "./index.js" */
/** @import { PseudonymTypeCode, TypeCode } from "./constants.js" */
/** @import { Policy } from "./ttp.js" */
/** @import { ProviderKey } from "./reversible.js" */
import { LIMITS, REVERSIBLE_INPUT, REVERSIBLE_TYPE } from "./constants.js";
import { PseudoformError } from "./errors.js";
import { DEFAULT_TIMEOUT_MS } from "./http.js";
import { recipientKeyOf, sealBlindFactors } from "./recipient-key.js";
import { fetchProviderKey, reversibleAad, reversibleDigest, sealReversible } from "./reversible.js";
import { missingFor, typeCodes } from "./required.js";
import { TtpSession } from "./session.js";
import { evaluateNational, evaluateRecords, fetchPolicy, packTemporaryPseudonym } from "./ttp.js";
import { methodVersion, prepare, pseudonymInput, ready, validateGiven } from "./wasm.js";

/**
 * The options of pseudonymise(Batch), checked and completed.
 * @typedef {api.PseudonymiseOptions & {
 *   types: TypeCode[], require: TypeCode[],
 *   ttpApi: "pseudoform" | "national", timeoutMs: number
 * }} Settled
 */

/**
 * Checks and completes the options of pseudonymise(Batch) and of a form.
 * The required types are requested too.
 * @param {api.PseudonymiseOptions} options
 * @returns {Settled}
 */
export function settle(options) {
  const o = { ...options };
  for (const name of /** @type {const} */ (["ttp", "recipientOrganization", "recipientScope"])) {
    if (typeof o[name] !== "string" || o[name] === "") {
      throw new PseudoformError("config.invalid", `option ${name} is required`, name);
    }
  }
  try {
    const url = new URL(o.ttp, globalThis.location?.href);
    if (url.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(url.hostname)) {
      throw new Error("not https");
    }
  } catch {
    throw new PseudoformError("config.invalid", "option ttp must be an https URL (http only on loopback)", "ttp");
  }
  const require = typeCodes(o.require, "require");
  const types = [...new Set([...typeCodes(o.types, "types"), ...require])];
  if (types.length === 0) {
    throw new PseudoformError("config.invalid", "option types must list known pseudonym types", "types");
  }
  const ttpApi = o.ttpApi ?? "pseudoform";
  if (!["pseudoform", "national"].includes(ttpApi)) {
    throw new PseudoformError("config.invalid", "option ttpApi must be pseudoform or national", "ttpApi");
  }
  if (o.session !== undefined && !(o.session instanceof TtpSession)) {
    throw new PseudoformError("config.invalid", "option session must be a TtpSession", "session");
  }
  if (!o.session && !o.accessToken) {
    throw new PseudoformError(
      "auth.noCredential",
      "a TTP credential is needed: option session (or the form's login), or accessToken for a development TTP",
      "session",
    );
  }
  const timeoutMs =
    o.timeoutMs !== undefined && Number.isFinite(o.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : DEFAULT_TIMEOUT_MS;
  return { ...o, types, require, ttpApi, timeoutMs };
}

/**
 * The recipient's policy: from the TTP with the recipient's key verified
 * (`recipient`; without it nothing is evaluated), or with the national API
 * (which has no policy endpoint) `allowedTypes` as given and no required
 * types.
 * @param {Settled} o
 * @returns {Promise<Policy>}
 */
export async function policyOf(o) {
  if (o.ttpApi !== "national") {
    const policy = await fetchPolicy(o);
    return { ...policy, recipient: await recipientKeyOf(policy.recipientKey, o) };
  }
  if (!Array.isArray(o.allowedTypes)) {
    throw new PseudoformError(
      "config.invalid",
      "option allowedTypes is required with the national API",
      "allowedTypes",
    );
  }
  // R is only for the pseudoform packaging.
  return { allowedTypes: o.allowedTypes.filter((t) => t !== REVERSIBLE_TYPE), requiredTypes: [] };
}

/**
 * Every type a record must have: the options' and the policy's; each must
 * be one the recipient may receive.
 * @param {Settled} o
 * @param {Policy} policy
 * @returns {TypeCode[]}
 */
export function requiredTypes(o, policy) {
  const required = [...new Set([...o.require, ...typeCodes(policy.requiredTypes, "requiredTypes")])];
  const refused = required.find((t) => !policy.allowedTypes.includes(t));
  if (refused) {
    throw new PseudoformError(
      "policy.requiredNotAllowed",
      "a required pseudonym type is one the recipient may not receive",
      "require",
    );
  }
  return required;
}

/**
 * Refuses an identity that has an invalid field or lacks a field of a
 * required type: a `PseudoformError` with every problem in `problems` (the
 * first invalid field's code, or `pseudonym.requiredMissing`).
 * @param {api.Identity} identity
 * @param {readonly TypeCode[]} required
 * @param {string | undefined} provider
 * @param {boolean} [providerPending] the provider comes from a login still
 *   to happen: a missing provider is not (yet) a problem
 */
export function checkIdentity(identity, required, provider, providerPending = false) {
  const invalid = validateGiven(identity);
  const missing = missingFor(
    identity,
    required,
    provider,
    invalid.map((p) => p.field),
  ).filter((p) => !(providerPending && p.field === "provider"));
  const problems = [...invalid, ...missing];
  const first = problems[0];
  if (!first) return;
  const code = invalid.length > 0 ? first.code : "pseudonym.requiredMissing";
  const message =
    invalid.length > 0 ? first.message : "a required pseudonym type cannot be made: a field it needs is missing";
  throw new PseudoformError(code, message, first.field, { problems });
}

/**
 * The requested and required types this recipient may receive (the TTP's
 * in `permitted`; `reversible` when R is one of them), and the refused ones
 * as skipped types. R alone is no record: at least one TTP type is needed.
 * @param {Settled} o
 * @param {Policy} policy
 * @param {readonly TypeCode[]} required
 */
export function permittedTypes(o, policy, required) {
  const requested = [...new Set([...o.types, ...required])];
  const allowed = requested.filter((t) => policy.allowedTypes.includes(t));
  const permitted = /** @type {PseudonymTypeCode[]} */ (allowed.filter((t) => t !== REVERSIBLE_TYPE));
  /** @type {api.SkippedType[]} */
  const refused = requested
    .filter((t) => !policy.allowedTypes.includes(t))
    .map((type) => ({ type, code: "type.notAllowed", message: "the recipient may not receive this type" }));
  if (permitted.length === 0) {
    throw new PseudoformError("policy.noTypes", "the recipient may receive none of the requested types");
  }
  return { permitted, refused, reversible: allowed.includes(REVERSIBLE_TYPE) };
}

/**
 * The plaintext of R for `identity` (MRN's canonical input, with the
 * provider of the login or the options), or why it cannot be made as a
 * skipped type. An identity whose own `provider` is another one is refused
 * (`config.providerMismatch`, field `provider`): its R would name a provider
 * whose key it is not sealed to, and never be opened.
 * @param {api.Identity} identity
 * @param {Settled} o
 * @returns {{ plaintext: string } | { skipped: api.SkippedType }}
 */
export function reversibleInput(identity, o) {
  const given = typeof identity.provider === "string" && identity.provider.trim() !== "";
  /** @type {string} */
  let plaintext;
  try {
    plaintext = pseudonymInput(REVERSIBLE_INPUT, o.provider ? { ...identity, provider: o.provider } : identity);
  } catch (error) {
    const e = PseudoformError.from(error);
    return {
      skipped: {
        type: REVERSIBLE_TYPE,
        code: e.code,
        field: /** @type {api.SkippedType["field"]} */ (e.field),
        message: e.message,
      },
    };
  }
  if (given && o.provider) {
    // Compared as canonical inputs, so that only another provider differs (not its spelling).
    let own;
    try {
      own = pseudonymInput(REVERSIBLE_INPUT, identity);
    } catch {
      own = undefined;
    }
    if (own !== plaintext) {
      throw new PseudoformError(
        "config.providerMismatch",
        "the identity's provider differs from the provider of the login",
        "provider",
      );
    }
  }
  return { plaintext };
}

/**
 * R sealed to the provider's key for this recipient, and its digest for
 * the TTP to sign into the record's claims.
 * @param {Settled} o
 * @param {ProviderKey} key
 * @param {string} plaintext
 */
export async function sealFor(o, key, plaintext) {
  const aad = reversibleAad({
    recipientOrganization: o.recipientOrganization,
    recipientScope: o.recipientScope,
    kid: key.kid,
  });
  const envelope = await sealReversible(key, plaintext, aad);
  return { envelope, digest: await reversibleDigest(envelope) };
}

/**
 * The blinded inputs of one record.
 * @param {api.Identity} identity
 * @param {Settled} o
 * @param {PseudonymTypeCode[]} types
 */
export function prepareRecord(identity, o, types) {
  const { prepared, skipped } = prepare(identity, {
    recipientOrganization: o.recipientOrganization,
    recipientScope: o.recipientScope,
    provider: o.provider,
    types,
  });
  if (prepared.length === 0) {
    const first = skipped[0];
    throw new PseudoformError(
      "pseudonym.nothingToMake",
      "no requested pseudonym type has all its fields",
      first?.field,
      { problems: skipped },
    );
  }
  return { prepared, skipped: /** @type {api.SkippedType[]} */ (skipped) };
}

/**
 * What the registry needs of a record without its data: with the record JWE
 * the blind factors sealed to the recipient (never in the clear), and R
 * (sealed to the provider before the evaluation, its digest in the claims).
 * @param {Settled} o
 * @param {Policy} policy
 * @param {{ type: PseudonymTypeCode, blindFactor: string }[]} prepared
 * @param {string | string[]} evaluated the record JWE, or one JWE per type (national)
 * @param {api.ReversibleEnvelope} [reversible]
 * @returns {Promise<api.SubmissionPseudonyms>}
 */
export async function submissionOf(o, policy, prepared, evaluated, reversible) {
  const recipient = {
    recipientOrganization: o.recipientOrganization,
    recipientScope: o.recipientScope,
    methodVersion: methodVersion(),
  };
  if (typeof evaluated === "string") {
    /** @type {Partial<Record<PseudonymTypeCode, string>>} */
    const blindFactors = {};
    for (const item of prepared) blindFactors[item.type] = item.blindFactor;
    if (!policy.recipient)
      throw new PseudoformError("recipientKey.missing", "no verified key of the recipient", "recipientKey");
    const encryptedBlindFactors = await sealBlindFactors(policy.recipient, blindFactors, evaluated);
    if (!reversible) return { ...recipient, record: evaluated, encryptedBlindFactors };
    return { ...recipient, record: evaluated, encryptedBlindFactors, reversible };
  }
  return {
    ...recipient,
    pseudonyms: prepared.map((item, i) => ({
      type: item.type,
      temporaryPseudonym: packTemporaryPseudonym(evaluated[i], item.blindFactor),
    })),
  };
}

/**
 * Whether the provider is still to come from the session's login.
 * @param {Settled} o
 */
export const providerPending = (o) => Boolean(o.session && !o.provider && !o.session.provider);

/**
 * The options with the session's access token obtained (the login, when
 * there is none yet) and its provider: the provider of an MRN is the
 * authenticated one. A configured provider that differs is a configuration
 * error. Without a session (a development token) the options as they are.
 * @param {Settled} o
 * @returns {Promise<Settled>}
 */
export async function withCredential(o) {
  if (!o.session) return o;
  const { provider } = await o.session.accessToken(o);
  if (o.provider !== undefined && o.provider !== "" && o.provider !== provider) {
    throw new PseudoformError(
      "config.providerMismatch",
      "the form's provider differs from the provider of the login",
      "provider",
    );
  }
  return { ...o, provider };
}

/**
 * Pseudonymises one identity with a policy already fetched: checks it
 * against the required types (after the login, with its provider),
 * blinds and obtains the evaluations.
 * @param {api.Identity} identity
 * @param {Settled} options
 * @param {Policy} policy
 * @returns {Promise<api.Pseudonymised>}
 */
export async function pseudonymiseWith(identity, options, policy) {
  const o = await withCredential(options);
  const required = requiredTypes(o, policy);
  checkIdentity(identity, required, o.provider);
  const { permitted, refused, reversible } = permittedTypes(o, policy, required);
  const { prepared, skipped } = prepareRecord(identity, o, permitted);
  const r = reversible ? reversibleInput(identity, o) : undefined;
  // The provider's key before anything is evaluated: without it, nothing is sent.
  const key = r && "plaintext" in r ? await fetchProviderKey(o) : undefined;
  // Sealed before the evaluation: the TTP signs its digest into the record's claims.
  const made = key && r && "plaintext" in r ? await sealFor(o, key, r.plaintext) : undefined;
  const evaluated =
    o.ttpApi === "national"
      ? await evaluateNational(prepared, o)
      : (await evaluateRecords([prepared], o, [made?.digest]))[0];
  return {
    types: [...prepared.map((p) => p.type), ...(made ? [REVERSIBLE_TYPE] : [])],
    skipped: [...refused, ...skipped, ...(r && "skipped" in r ? [r.skipped] : [])],
    submission: await submissionOf(o, policy, prepared, evaluated, made?.envelope),
  };
}

/**
 * Pseudonymises one identity: checks it (the options' required types
 * before any request), asks the TTP which types the recipient may receive
 * and requires, blinds, and obtains the evaluations. Resolves to
 * `{ types, skipped, submission }`; rejects with a PseudoformError on any
 * failure, having sent nothing identifying.
 * @type {typeof api.pseudonymise}
 */
export async function pseudonymise(identity, options) {
  await ready();
  const o = settle(options);
  checkIdentity(identity, o.require, o.provider, providerPending(o));
  return pseudonymiseWith(identity, o, await policyOf(o));
}

/**
 * Pseudonymises many identities for a processor. A record that fails
 * validation (or lacks a required type) gets `{ ok: false, errors }` and
 * never stops the batch; a TTP failure marks the records of that chunk with
 * its error and the batch goes on. `onProgress({ done, total })` after every
 * chunk; `signal` cancels.
 * @type {typeof api.pseudonymiseBatch}
 */
export async function pseudonymiseBatch(records, options, { onProgress, signal, chunkSize = 100 } = {}) {
  await ready();
  const policy = await policyOf(settle({ ...options, signal }));
  const o = await withCredential(settle({ ...options, signal }));
  const required = requiredTypes(o, policy);
  const { permitted, refused, reversible } = permittedTypes(o, policy, required);
  // The provider's key once for the batch, before anything is evaluated.
  const key = reversible ? await fetchProviderKey(o) : undefined;
  /** @type {api.BatchResult[]} */
  const results = new Array(records.length);
  /** @type {({ index: number, r?: ReturnType<typeof reversibleInput> } & ReturnType<typeof prepareRecord>)[]} */
  const pending = [];
  records.forEach((identity, index) => {
    try {
      checkIdentity(identity, required, o.provider);
      const r = key ? reversibleInput(identity, o) : undefined;
      pending.push({ index, r, ...prepareRecord(identity, o, permitted) });
    } catch (error) {
      const e = PseudoformError.from(error);
      results[index] = {
        ok: false,
        errors: e.problems ?? [{ field: e.field, code: e.code, message: e.message }],
      };
    }
  });
  let done = records.length - pending.length;
  onProgress?.({ done, total: records.length });
  const size = Math.max(1, Math.min(chunkSize, LIMITS.maxRecordsPerRequest));
  for (let start = 0; start < pending.length; start += size) {
    if (signal?.aborted) throw new PseudoformError("aborted", "the batch was cancelled");
    const chunk = pending.slice(start, start + size);
    try {
      // R sealed before the evaluation: the TTP signs each digest into its record's claims.
      const made = await Promise.all(
        chunk.map((r) => (key && r.r && "plaintext" in r.r ? sealFor(o, key, r.r.plaintext) : undefined)),
      );
      const jwes =
        o.ttpApi === "national"
          ? await Promise.all(chunk.map((r) => evaluateNational(r.prepared, o)))
          : await evaluateRecords(
              chunk.map((r) => r.prepared),
              o,
              made.map((m) => m?.digest),
            );
      const submissions = await Promise.all(
        chunk.map((r, i) => submissionOf(o, policy, r.prepared, jwes[i], made[i]?.envelope)),
      );
      chunk.forEach((r, i) => {
        results[r.index] = {
          ok: true,
          types: [...r.prepared.map((p) => p.type), ...(made[i] ? [REVERSIBLE_TYPE] : [])],
          skipped: [...refused, ...r.skipped, ...(r.r && "skipped" in r.r ? [r.r.skipped] : [])],
          submission: submissions[i],
        };
      });
    } catch (error) {
      const e = PseudoformError.from(error);
      if (e.code === "aborted") throw e;
      for (const r of chunk) results[r.index] = { ok: false, errors: [{ code: e.code, message: e.message }] };
    }
    done += chunk.length;
    onProgress?.({ done, total: records.length });
  }
  return results;
}
