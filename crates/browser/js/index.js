// pseudoform: the public JS API over the wasm module.
//
//   normalise, pseudonymInput, validate, prepare      pure and synchronous
//   pseudonymise, pseudonymiseBatch                   talk to the TTP
//   protectForm                                        drop-in form binding
//
// Call `ready()` (or any async function) once before the synchronous ones.
import init, * as wasm from "./pseudoform.js";
import { PseudoformError } from "./errors.js";
import { DEFAULT_TIMEOUT_MS } from "./http.js";
import { WASM_INTEGRITY } from "./wasm-integrity.js";
import { evaluateNational, evaluateRecords, fetchPolicy, packTemporaryPseudonym } from "./ttp.js";

export { PseudoformError } from "./errors.js";
export { describeError } from "./messages.js";
export { protectForm } from "./form.js";

let loading;

/**
 * Loads the wasm module once. `source` is passed to wasm-bindgen's init
 * (a URL, Response, bytes or WebAssembly.Module); by default the
 * `pseudoform_bg.wasm` next to this file, fetched with its Subresource
 * Integrity hash so a tampered module is refused.
 */
export function ready(source) {
  const wasm = source ?? fetch(new URL("pseudoform_bg.wasm", import.meta.url), {
    integrity: WASM_INTEGRITY || undefined,
    credentials: "same-origin",
  });
  loading ??= init({ module_or_path: wasm }).catch((error) => {
    loading = undefined;
    throw new PseudoformError("module.unavailable", "the pseudonymisation module could not be loaded", undefined, { cause: error });
  });
  return loading.then(() => undefined);
}

function call(fn, ...args) {
  if (!loading) throw new PseudoformError("module.notReady", "call ready() before the synchronous functions");
  try {
    return fn(...args);
  } catch (error) {
    throw PseudoformError.from(error);
  }
}

/** The canonical form of one field by the published method. */
export const normalise = (field, value) => call(wasm.normalise, field, value);
/** The canonical input value of one pseudonym type. */
export const pseudonymInput = (type, identity) => call(wasm.pseudonymInput, type, identity);
/** Every rule broken by a given field: `[{ field, code, message }]`. */
export const validate = (identity) => call(wasm.validate, identity);
/** Blinded inputs and blind factors per requested type; no I/O. */
export const prepare = (identity, options) => call(wasm.prepare, identity, options);
/** The version of the published method. */
export const methodVersion = () => call(wasm.methodVersion);

const TYPE_CODES = ["B", "NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"];

/** Checks and completes the options of pseudonymise(Batch). */
function settle(options) {
  const o = { ...options };
  for (const name of ["ttp", "recipientOrganization", "recipientScope"]) {
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
  o.types = typeof o.types === "string" ? o.types.split(/\s+/).filter(Boolean) : o.types;
  if (!Array.isArray(o.types) || o.types.length === 0 || !o.types.every((t) => TYPE_CODES.includes(t))) {
    throw new PseudoformError("config.invalid", "option types must list known pseudonym types", "types");
  }
  o.ttpApi = o.ttpApi ?? "pseudoform";
  if (!["pseudoform", "national"].includes(o.ttpApi)) {
    throw new PseudoformError("config.invalid", "option ttpApi must be pseudoform or national", "ttpApi");
  }
  o.timeoutMs = Number.isFinite(o.timeoutMs) && o.timeoutMs > 0 ? o.timeoutMs : DEFAULT_TIMEOUT_MS;
  return o;
}

/**
 * Policy first: the requested types this recipient may receive. With the
 * national API, which has no policy endpoint, `allowedTypes` must be given.
 */
async function permittedTypes(o) {
  let allowed;
  if (o.ttpApi === "national") {
    if (!Array.isArray(o.allowedTypes)) {
      throw new PseudoformError("config.invalid", "option allowedTypes is required with the national API", "allowedTypes");
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

function prepareRecord(identity, o, types) {
  const { prepared, skipped } = prepare(identity, {
    recipientOrganization: o.recipientOrganization,
    recipientScope: o.recipientScope,
    provider: o.provider,
    types,
  });
  if (prepared.length === 0) {
    const first = skipped[0];
    throw new PseudoformError("pseudonym.nothingToMake", "no requested pseudonym type has all its fields", first?.field);
  }
  return { prepared, skipped };
}

function notAllowed(refused) {
  return refused.map((type) => ({ type, code: "type.notAllowed", message: "the recipient may not receive this type" }));
}

/**
 * Pseudonymises one identity: validates it, asks the TTP which types the
 * recipient may receive, blinds, and obtains the evaluations. Resolves to
 * `{ pseudonyms: [{ type, temporaryPseudonym }], skipped }`; rejects with a
 * PseudoformError on any failure, having sent nothing identifying.
 */
export async function pseudonymise(identity, options) {
  await ready();
  const o = settle(options);
  const { permitted, refused } = await permittedTypes(o);
  const { prepared, skipped } = prepareRecord(identity, o, permitted);
  const jwes = o.ttpApi === "national"
    ? await evaluateNational(prepared, o)
    : Array(prepared.length).fill((await evaluateRecords([prepared], o))[0]);
  return {
    pseudonyms: prepared.map((item, i) => ({
      type: item.type,
      temporaryPseudonym: packTemporaryPseudonym(jwes[i], item.blindFactor),
    })),
    skipped: [...notAllowed(refused), ...skipped],
  };
}

/**
 * Pseudonymises many identities for a processor. A record that fails
 * validation gets `{ ok: false, errors }` and never stops the batch; a TTP
 * failure marks the records of that chunk with its error and the batch goes
 * on. `onProgress({ done, total })` after every chunk; `signal` cancels.
 */
export async function pseudonymiseBatch(records, options, { onProgress, signal, chunkSize = 100 } = {}) {
  await ready();
  const o = settle({ ...options, signal });
  const { permitted, refused } = await permittedTypes(o);
  const results = new Array(records.length);
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
  const size = Math.max(1, Math.min(chunkSize, 1000));
  for (let start = 0; start < pending.length; start += size) {
    if (signal?.aborted) throw new PseudoformError("aborted", "the batch was cancelled");
    const chunk = pending.slice(start, start + size);
    try {
      const jwes = await evaluateRecords(chunk.map((r) => r.prepared), o);
      chunk.forEach((r, i) => {
        results[r.index] = {
          ok: true,
          pseudonyms: r.prepared.map((item) => ({ type: item.type, temporaryPseudonym: packTemporaryPseudonym(jwes[i], item.blindFactor) })),
          skipped: [...notAllowed(refused), ...r.skipped],
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
