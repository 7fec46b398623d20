// The wasm module: loaded once per page, and its synchronous exports, whose
// errors become PseudoformErrors. The rest of the JS layer calls the wasm
// only through this file.
/** @import * as api from "./index.js" */
import init, * as wasm from "./pseudoform.js";
import { PseudoformError } from "./errors.js";
import { WASM_INTEGRITY } from "./wasm-integrity.js";

/** @type {Promise<unknown> | undefined} */
let loading;

/**
 * Loads the wasm module once per page. `source` is passed to wasm-bindgen's
 * init (a URL, Response, bytes or WebAssembly.Module); by default the
 * `pseudoform_bg.wasm` next to this file, fetched with its Subresource
 * Integrity hash so a tampered module is refused. Once loaded (or while
 * loading) nothing is fetched again; after a failure the next call tries
 * again.
 * @type {typeof api.ready}
 */
export function ready(source) {
  loading ??= init({
    module_or_path:
      source ??
      fetch(new URL("pseudoform_bg.wasm", import.meta.url), {
        integrity: WASM_INTEGRITY || undefined,
        credentials: "same-origin",
      }),
  }).catch((error) => {
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
 * @param {api.Identity} identity
 * @returns {api.FieldProblem[]}
 */
export const validateGiven = (identity) => call(wasm.validate, identity);
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
