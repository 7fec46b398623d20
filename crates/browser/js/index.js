// pseudoform: the public JS API over the wasm module.
//
//   normalise, pseudonymInput, validate, prepare      pure and synchronous
//   pseudonymise, pseudonymiseBatch                   talk to the TTP
//   protectForm                                        drop-in form binding
//
// Call `ready()` (or any async function) once before the synchronous ones.
// The types are those of index.d.ts (`api` below): tsc checks this file
// against them (js/tsconfig.json).
/** @import * as api from "./index.js" */
/** @import { PseudonymTypeCode } from "./constants.js" */
import init, * as wasm from "./pseudoform.js";
import { LIMITS, PSEUDONYM_TYPES } from "./constants.js";
import { PseudoformError as ErrorClass } from "./errors.js";
import { DEFAULT_TIMEOUT_MS } from "./http.js";
import { WASM_INTEGRITY } from "./wasm-integrity.js";
import { evaluateNational, evaluateRecords, fetchPolicy, packTemporaryPseudonym } from "./ttp.js";

/** @type {typeof api.PseudoformError} */
export const PseudoformError = ErrorClass;
export { describeError, fieldLabels } from "./messages.js";
export { protectForm } from "./form.js";

/** @type {Promise<unknown> | undefined} */
let loading;

/**
 * Loads the wasm module once. `source` is passed to wasm-bindgen's init
 * (a URL, Response, bytes or WebAssembly.Module); by default the
 * `pseudoform_bg.wasm` next to this file, fetched with its Subresource
 * Integrity hash so a tampered module is refused.
 * @type {typeof api.ready}
 */
export function ready(source) {
  const module =
    source ??
    fetch(new URL("pseudoform_bg.wasm", import.meta.url), {
      integrity: WASM_INTEGRITY || undefined,
      credentials: "same-origin",
    });
  loading ??= init({ module_or_path: module }).catch((error) => {
    loading = undefined;
    throw new PseudoformError("module.unavailable", "the pseudonymisation module could not be loaded", undefined, {
      cause: error,
    });
  });
  return loading.then(() => undefined);
}

/**
 * Calls a synchronous export of the wasm module; what it throws becomes a PseudoformError.
 * @template {unknown[]} A
 * @template R
 * @param {(...args: A) => R} fn
 * @param {A} args
 * @returns {R}
 */
function call(fn, ...args) {
  if (!loading) throw new PseudoformError("module.notReady", "call ready() before the synchronous functions");
  try {
    return fn(...args);
  } catch (error) {
    throw PseudoformError.from(error);
  }
}

/**
 * The canonical form of one field by the published method.
 * @type {typeof api.normalise}
 */
export const normalise = (field, value) => call(wasm.normalise, field, value);
/**
 * The canonical input value of one pseudonym type.
 * @type {typeof api.pseudonymInput}
 */
export const pseudonymInput = (type, identity) => call(wasm.pseudonymInput, type, identity);
/**
 * Every rule broken by a given field: `[{ field, code, message }]`.
 * @type {typeof api.validate}
 */
export const validate = (identity) => call(wasm.validate, identity);
/**
 * Blinded inputs and blind factors per requested type; no I/O.
 * @type {typeof api.prepare}
 */
export const prepare = (identity, options) => call(wasm.prepare, identity, options);
/**
 * The version of the published method.
 * @type {typeof api.methodVersion}
 */
export const methodVersion = () => call(wasm.methodVersion);

/**
 * The options of pseudonymise(Batch), checked and completed.
 * @typedef {api.PseudonymiseOptions & {
 *   types: PseudonymTypeCode[], ttpApi: "pseudoform" | "national", timeoutMs: number
 * }} Settled
 */

/** @type {(type: unknown) => type is PseudonymTypeCode} */
const isTypeCode = (type) => /** @type {readonly unknown[]} */ (PSEUDONYM_TYPES).includes(type);

/**
 * Checks and completes the options of pseudonymise(Batch).
 * @param {api.PseudonymiseOptions} options
 * @returns {Settled}
 */
function settle(options) {
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
  /** @type {unknown} */
  const types = typeof o.types === "string" ? o.types.split(/\s+/).filter(Boolean) : o.types;
  if (!Array.isArray(types) || types.length === 0 || !types.every(isTypeCode)) {
    throw new PseudoformError("config.invalid", "option types must list known pseudonym types", "types");
  }
  const ttpApi = o.ttpApi ?? "pseudoform";
  if (!["pseudoform", "national"].includes(ttpApi)) {
    throw new PseudoformError("config.invalid", "option ttpApi must be pseudoform or national", "ttpApi");
  }
  const timeoutMs =
    o.timeoutMs !== undefined && Number.isFinite(o.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : DEFAULT_TIMEOUT_MS;
  return { ...o, types, ttpApi, timeoutMs };
}

/**
 * Policy first: the requested types this recipient may receive. With the
 * national API, which has no policy endpoint, `allowedTypes` must be given.
 * @param {Settled} o
 */
async function permittedTypes(o) {
  /** @type {readonly string[]} */
  let allowed;
  if (o.ttpApi === "national") {
    if (!Array.isArray(o.allowedTypes)) {
      throw new PseudoformError(
        "config.invalid",
        "option allowedTypes is required with the national API",
        "allowedTypes",
      );
    }
    allowed = o.allowedTypes;
  } else {
    allowed = (await fetchPolicy(o)).allowedTypes;
  }
  const permitted = o.types.filter((t) => allowed.includes(t));
  const refused = o.types.filter((t) => !allowed.includes(t));
  if (permitted.length === 0) {
    throw new PseudoformError("policy.noTypes", "the recipient may receive none of the requested types");
  }
  return { permitted, refused };
}

/**
 * @param {api.Identity} identity
 * @param {Settled} o
 * @param {PseudonymTypeCode[]} types
 */
function prepareRecord(identity, o, types) {
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
    );
  }
  return { prepared, skipped };
}

/**
 * The requested types the recipient may not receive, as skipped types.
 * @param {PseudonymTypeCode[]} refused
 * @returns {api.SkippedType[]}
 */
function notAllowed(refused) {
  return refused.map((type) => ({ type, code: "type.notAllowed", message: "the recipient may not receive this type" }));
}

/**
 * Skipped types as pseudonymise reports them.
 * @param {import("./pseudoform.js").FieldProblem[]} skipped
 * @returns {api.SkippedType[]}
 */
const skippedTypes = (skipped) => /** @type {api.SkippedType[]} */ (skipped);

/**
 * Pseudonymises one identity: validates it, asks the TTP which types the
 * recipient may receive, blinds, and obtains the evaluations. Resolves to
 * `{ pseudonyms: [{ type, temporaryPseudonym }], skipped }`; rejects with a
 * PseudoformError on any failure, having sent nothing identifying.
 * @type {typeof api.pseudonymise}
 */
export async function pseudonymise(identity, options) {
  await ready();
  const o = settle(options);
  const { permitted, refused } = await permittedTypes(o);
  const { prepared, skipped } = prepareRecord(identity, o, permitted);
  const jwes =
    o.ttpApi === "national"
      ? await evaluateNational(prepared, o)
      : Array(prepared.length).fill((await evaluateRecords([prepared], o))[0]);
  return {
    pseudonyms: prepared.map((item, i) => ({
      type: item.type,
      temporaryPseudonym: packTemporaryPseudonym(jwes[i], item.blindFactor),
    })),
    skipped: [...notAllowed(refused), ...skippedTypes(skipped)],
  };
}

/**
 * Pseudonymises many identities for a processor. A record that fails
 * validation gets `{ ok: false, errors }` and never stops the batch; a TTP
 * failure marks the records of that chunk with its error and the batch goes
 * on. `onProgress({ done, total })` after every chunk; `signal` cancels.
 * @type {typeof api.pseudonymiseBatch}
 */
export async function pseudonymiseBatch(records, options, { onProgress, signal, chunkSize = 100 } = {}) {
  await ready();
  const o = settle({ ...options, signal });
  const { permitted, refused } = await permittedTypes(o);
  /** @type {api.BatchResult[]} */
  const results = new Array(records.length);
  /** @type {({ index: number } & ReturnType<typeof prepareRecord>)[]} */
  const pending = [];
  records.forEach((identity, index) => {
    try {
      const errors = validate(identity);
      if (errors.length > 0) {
        results[index] = { ok: false, errors };
        return;
      }
      pending.push({ index, ...prepareRecord(identity, o, permitted) });
    } catch (error) {
      const e = PseudoformError.from(error);
      results[index] = { ok: false, errors: [{ field: e.field, code: e.code, message: e.message }] };
    }
  });
  let done = records.length - pending.length;
  onProgress?.({ done, total: records.length });
  const size = Math.max(1, Math.min(chunkSize, LIMITS.maxRecordsPerRequest));
  for (let start = 0; start < pending.length; start += size) {
    if (signal?.aborted) throw new PseudoformError("aborted", "the batch was cancelled");
    const chunk = pending.slice(start, start + size);
    try {
      const jwes = await evaluateRecords(
        chunk.map((r) => r.prepared),
        o,
      );
      chunk.forEach((r, i) => {
        results[r.index] = {
          ok: true,
          pseudonyms: r.prepared.map((item) => ({
            type: item.type,
            temporaryPseudonym: packTemporaryPseudonym(jwes[i], item.blindFactor),
          })),
          skipped: [...notAllowed(refused), ...skippedTypes(r.skipped)],
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
