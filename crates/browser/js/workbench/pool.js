// The lanes of a workbench run: one Web Worker per core (at most
// MAX_WORKERS), each running work.js (worker.js), or, when no worker can
// start (a CSP that refuses it, a browser without module workers), one lane
// in the page itself, which the page says. The choice is made once, before
// the first row is sent; a worker that fails later fails its chunk (no
// fallback in the middle of a run).
/** @import * as api from "../index.js" */
import { PseudoformError } from "../errors.js";
import { Work } from "./work.js";

/** Most workers of a run. */
export const MAX_WORKERS = 4;
/** How long a worker may take to load the wasm and answer. */
const START_TIMEOUT_MS = 30_000;

/** Workers for this machine: one per core, at least 1, at most MAX_WORKERS. */
export function defaultWorkers() {
  const cores = Number(globalThis.navigator?.hardwareConcurrency) || 1;
  return Math.max(1, Math.min(MAX_WORKERS, Math.floor(cores)));
}

/**
 * One lane: a worker's steps, or the page's.
 * @typedef {object} Lane
 * @property {(job: number, identities: api.Identity[]) => Promise<import("./work.js").Prepared[]>} prepare
 * @property {(job: number, evaluated: (string | string[])[]) => Promise<import("./work.js").Sealed[]>} seal
 * @property {(job: number) => void} drop
 * @property {() => void} close
 */

/** A worker's lane: requests by id, answered in order; a crash fails every request open and after. */
class WorkerLane {
  #next = 0;
  /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>} */
  #open = new Map();
  /** @type {PseudoformError | undefined} */
  #failed;

  /** @param {Worker} worker */
  constructor(worker) {
    this.worker = worker;
    worker.addEventListener("message", (event) => {
      const { id, result, error } = event.data ?? {};
      const open = this.#open.get(id);
      if (!open) return;
      this.#open.delete(id);
      if (error) open.reject(new PseudoformError(String(error.code), String(error.message), error.field));
      else open.resolve(result);
    });
    const fail = () => this.#fail(new PseudoformError("worker.failed", "a Web Worker of the workbench failed"));
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      fail();
    });
    worker.addEventListener("messageerror", fail);
  }

  /** @param {PseudoformError} error */
  #fail(error) {
    this.#failed ??= error;
    for (const open of this.#open.values()) open.reject(error);
    this.#open.clear();
  }

  /**
   * @param {Record<string, unknown>} message
   * @returns {Promise<any>}
   */
  call(message) {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#open.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id });
    });
  }

  /** @type {Lane["prepare"]} */
  prepare(job, identities) {
    return this.call({ op: "prepare", job, identities });
  }

  /** @type {Lane["seal"]} */
  seal(job, evaluated) {
    return this.call({ op: "seal", job, evaluated });
  }

  /** @type {Lane["drop"]} */
  drop(job) {
    if (!this.#failed) this.worker.postMessage({ op: "drop", job });
  }

  close() {
    this.#fail(new PseudoformError("aborted", "the run has ended"));
    this.worker.terminate();
  }
}

/** The page's own lane. */
class PageLane {
  /** @param {import("./work.js").Context} context */
  constructor(context) {
    this.work = new Work(context);
  }

  /** @type {Lane["prepare"]} */
  prepare(job, identities) {
    return this.work.prepare(job, identities);
  }

  /** @type {Lane["seal"]} */
  seal(job, evaluated) {
    return this.work.seal(job, evaluated);
  }

  /** @type {Lane["drop"]} */
  drop(job) {
    this.work.drop(job);
  }

  close() {}
}

/**
 * The lanes of a run: `workers` Web Workers of `url`, each given the
 * context; or, if any of them cannot start, one lane in the page
 * (`inPage: true`, and the reason's code).
 * @param {import("./work.js").Context} context
 * @param {{ url: string | URL | undefined, workers: number, signal?: AbortSignal }} how
 * @returns {Promise<{ lanes: Lane[], inPage: boolean, reason?: string }>}
 */
export async function openLanes(context, { url, workers, signal }) {
  /** @type {WorkerLane[]} */
  const started = [];
  try {
    if (!url || workers < 1) throw new PseudoformError("worker.off", "no workers asked for");
    if (typeof Worker !== "function")
      throw new PseudoformError("worker.unsupported", "this browser has no Web Workers");
    for (let i = 0; i < workers; i++) started.push(new WorkerLane(new Worker(url, { type: "module" })));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new PseudoformError("worker.timeout", "a Web Worker did not start")),
        START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([Promise.all(started.map((lane) => lane.call({ op: "init", context }))), timeout]);
    } finally {
      clearTimeout(timer);
    }
    return { lanes: started, inPage: false };
  } catch (error) {
    for (const lane of started) lane.close();
    if (signal?.aborted) throw new PseudoformError("aborted", "the run was cancelled");
    return { lanes: [new PageLane(context)], inPage: true, reason: PseudoformError.from(error).code };
  }
}
