// The workbench's Web Worker (bundled by the build as
// pkg/pseudoform-workbench-worker.js, served from the page's origin, so
// that `worker-src 'self'` of the CSP admits it; never a blob: URL). It
// loads the wasm module from the same URL as the page, with its hash
// (../wasm.js), and runs the CPU-bound steps of work.js for the page
// (pool.js). It makes no request of its own but the wasm's.
//
// Messages from the page: `{ id, op: "init", context }`, `{ id, op:
// "prepare", job, identities }`, `{ id, op: "seal", job, evaluated }`,
// `{ op: "drop", job }`. Answers: `{ id, result }` or `{ id, error: { code,
// message, field } }`, an error of this module's codes only (a message
// never carries a value of a row).
import { ready } from "../wasm.js";
import { PseudoformError } from "../errors.js";
import { Work } from "./work.js";

const scope =
  /** @type {{ postMessage(message: unknown): void, onmessage: ((event: MessageEvent<any>) => void) | null }} */ (
    /** @type {unknown} */ (globalThis)
  );

/** @type {Work | undefined} */
let work;

/** @param {any} data */
async function handle(data) {
  if (data.op === "init") {
    await ready();
    work = new Work(data.context);
    return true;
  }
  if (!work) throw new PseudoformError("worker.notReady", "the worker has no context");
  if (data.op === "prepare") return work.prepare(data.job, data.identities);
  if (data.op === "seal") return work.seal(data.job, data.evaluated);
  if (data.op === "drop") return work.drop(data.job);
  throw new PseudoformError("worker.unknown", "unknown message");
}

scope.onmessage = (/** @type {MessageEvent<any>} */ event) => {
  const data = event.data;
  handle(data).then(
    (result) => data.id !== undefined && scope.postMessage({ id: data.id, result }),
    (error) => {
      // Only the code and the field: a message of another origin than this module might hold a value.
      const e = error instanceof PseudoformError ? error : new PseudoformError("worker.failed", "the worker failed");
      if (data.id !== undefined) {
        scope.postMessage({ id: data.id, error: { code: e.code, message: e.message, field: e.field } });
      }
    },
  );
};
