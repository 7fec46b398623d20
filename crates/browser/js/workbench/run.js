// A run of the workbench: the sendable rows in chunks (a chunk is the rows
// of one registry batch), each pseudonymised and delivered with `POST
// /api/batches` under the batch id `wb-{runId}-{chunk}` (docs/protocol.md),
// or written to the download. The CPU-bound steps of a chunk (checking,
// blinding in wasm, sealing R and the blind factors) run in Web Workers,
// one per core (pool.js, work.js; in the page itself when none can start),
// each worker a slice of the chunk; the TTP call and the delivery stay in
// the page, with the session's DPoP key. Chunks are pipelined: while one
// chunk is at the TTP the workers blind the next, and a chunk's delivery
// runs while the next ones are pseudonymised. Between chunks the run can
// be paused; cancel aborts the chunks in flight. After every delivered
// chunk the checkpoint gets its row numbers and receipts; a chunk in the
// checkpoint is not sent again. A chunk whose delivery has no answer (or
// any failure, a worker's included) stops the run before another is
// delivered: resuming sends that chunk again under the same batch id,
// which the registry stores at most once.
/** @import * as api from "../index.js" */
import { LIMITS } from "../constants.js";
import { PseudoformError } from "../errors.js";
import { requestJson } from "../http.js";
import { sha256 } from "../dpop.js";
import { ready } from "../wasm.js";
import { permittedTypes, policyOf, requiredTypes, settle, withCredential } from "../pseudonymise.js";
import { fetchProviderKey } from "../reversible.js";
import { evaluateNational, evaluateRecords } from "../ttp.js";
import { batchIdOf, saveCheckpoint } from "./checkpoint.js";
import { openLanes } from "./pool.js";
import { dataOf, identityOf, problemOf, rowNumber } from "./rows.js";

/** The longest wait for the TTP's budget at a time, in seconds (a minute's budget comes back within 60). */
const MAX_BUDGET_WAIT_S = 120;

/** Most records in one registry batch (the registry's limit). */
export const MAX_CHUNK = 500;

/**
 * @typedef {{ done: number, total: number, delivered: number, refused: number, rate: number, secondsLeft: number | undefined, paused: boolean, waitingSeconds?: number }} Progress
 */

/** The `rec` of one submission: of its record JWE, or of its national packages joined by `.`. */
async function recOf(/** @type {api.SubmissionPseudonyms} */ s) {
  return sha256("record" in s ? s.record : s.pseudonyms.map((p) => p.temporaryPseudonym).join("."));
}

export class Run {
  #paused = false;
  /** @type {(() => void) | undefined} */
  #wake;
  #controller = new AbortController();
  #activeMs = 0;
  #since = 0;
  #doneHere = 0;

  /**
   * @param {object} setup
   * @param {string[][]} setup.rows every data row of the file
   * @param {number[]} setup.sendable indices of the rows to send, in order
   * @param {import("./checkpoint.js").Checkpoint} setup.checkpoint
   * @param {string} setup.registry `<organization>|<scope>`, the checkpoint's key
   * @param {Omit<api.PseudonymiseOptions, "signal">} setup.options
   * @param {"deliver" | "download"} setup.mode
   * @param {string} setup.batchUrl absolute URL of `POST /api/batches`
   * @param {(progress: Progress) => void} setup.onProgress
   * @param {(problems: import("./rows.js").Problem[]) => void} setup.onRefused
   * @param {(chunk: number, written: { row: number, submission: api.Submission }[]) => Promise<void>} [setup.onWritten]
   *   download mode: a chunk's pseudonymised rows, in order
   * @param {number} [setup.workers] Web Workers to run (0: in the page)
   * @param {string | URL} [setup.workerUrl] the worker script (pkg/pseudoform-workbench-worker.js)
   * @param {(lanes: { workers: number, inPage: boolean, reason?: string }) => void} [setup.onLanes]
   *   once the lanes are open: how many workers, or in the page and why
   */
  constructor(setup) {
    this.setup = setup;
    this.delivered = 0;
    this.refused = 0;
  }

  get paused() {
    return this.#paused;
  }

  pause() {
    this.#paused = true;
    this.#report();
  }

  resume() {
    this.#paused = false;
    this.#wake?.();
    this.#report();
  }

  cancel() {
    this.#controller.abort();
    this.resume();
  }

  /** Rows handled before this run started (the checkpoint's). */
  #before = 0;

  #report() {
    const { sendable, onProgress } = this.setup;
    const total = sendable.length;
    const done = Math.min(total, this.#before + this.#doneHere);
    const active = this.#activeMs + (this.#since ? performance.now() - this.#since : 0);
    const rate = active > 0 ? (this.#doneHere * 1000) / active : 0;
    onProgress({
      done,
      total,
      delivered: this.delivered,
      refused: this.refused,
      rate,
      secondsLeft: rate > 0 ? (total - done) / rate : undefined,
      paused: this.#paused,
      ...(this.#waiting === undefined ? {} : { waitingSeconds: this.#waiting }),
    });
  }

  /** Seconds the run waits for the TTP's budget, while it does. */
  #waiting = /** @type {number | undefined} */ (undefined);

  /**
   * `call()` until the TTP answers it other than 429 with a `Retry-After`:
   * a spent budget of the caller is waited out (at most `MAX_BUDGET_WAIT_S`
   * at a time, the progress saying so; cancel still stops it), then the
   * same request is made again with a fresh proof. Any other error, and a
   * 429 without `Retry-After` (a request larger than the budget), is thrown on.
   * @template T
   * @param {() => Promise<T>} call
   * @returns {Promise<T>}
   */
  async #withinBudget(call) {
    const signal = this.#controller.signal;
    for (;;) {
      try {
        return await call();
      } catch (error) {
        const after = /** @type {{ code?: unknown, retryAfter?: unknown }} */ (error)?.retryAfter;
        const spent = /** @type {{ code?: unknown }} */ (error)?.code === "ttp.rateLimited";
        if (!spent || typeof after !== "number" || after <= 0 || signal.aborted) throw error;
        this.#waiting = Math.min(after, MAX_BUDGET_WAIT_S);
        this.#report();
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, /** @type {number} */ (this.#waiting) * 1000);
          signal.addEventListener("abort", () => (clearTimeout(timer), resolve(undefined)), { once: true });
        });
        this.#waiting = undefined;
        this.#report();
        if (signal.aborted) throw new PseudoformError("aborted", "the run was cancelled");
      }
    }
  }

  async #gate() {
    while (this.#paused && !this.#controller.signal.aborted) {
      this.#activeMs += performance.now() - this.#since;
      this.#since = 0;
      await new Promise((resolve) => (this.#wake = () => resolve(undefined)));
      this.#since = performance.now();
    }
    if (this.#controller.signal.aborted) throw new PseudoformError("aborted", "the run was cancelled");
  }

  /**
   * What the chunks of this run share, once started.
   * @type {{ o: import("../pseudonymise.js").Settled, lanes: import("./pool.js").Lane[], inPage: boolean } | undefined}
   */
  #shared;
  /** Job ids of the lanes, one per chunk attempt. */
  #job = 0;

  /**
   * What every chunk of the run shares: the options checked, the
   * recipient's policy (its key verified), the credential (the login),
   * the provider's key when R is made, and the lanes with that context.
   */
  async #open() {
    const { options, workers = 0, workerUrl, onLanes } = this.setup;
    const signal = this.#controller.signal;
    await ready();
    const policy = await policyOf(settle({ ...options, signal }));
    const o = await withCredential(settle({ ...options, signal }));
    const required = requiredTypes(o, policy);
    const { permitted, refused, reversible } = permittedTypes(o, policy, required);
    // The provider's key once for the run, before anything is evaluated.
    const providerKey = reversible ? await fetchProviderKey(o) : undefined;
    /** @type {import("./work.js").Context} */
    const context = {
      recipientOrganization: o.recipientOrganization,
      recipientScope: o.recipientScope,
      provider: o.provider,
      required,
      permitted,
      refused,
      recipient: policy.recipient,
      providerKey,
    };
    const opened = await openLanes(context, { url: workerUrl, workers, signal });
    onLanes?.({ workers: opened.inPage ? 0 : opened.lanes.length, inPage: opened.inPage, reason: opened.reason });
    return { o, ...opened };
  }

  /**
   * Runs every chunk not in the checkpoint. Resolves when all are done;
   * rejects with the error that stopped it (`aborted` after cancel).
   */
  async start() {
    const { sendable, checkpoint } = this.setup;
    this.#before = Object.values(checkpoint.chunks).reduce((n, c) => n + c.rows.length, 0);
    this.#since = performance.now();
    this.#report();
    const size = checkpoint.chunkSize;
    /** @type {number[]} */
    const todo = [];
    for (let chunk = 0; chunk * size < sendable.length; chunk++) {
      if (!Object.hasOwn(checkpoint.chunks, String(chunk))) todo.push(chunk);
    }
    const indicesOf = (/** @type {number} */ chunk) => sendable.slice(chunk * size, (chunk + 1) * size);
    /** @param {number} chunk */
    const launch = (chunk) => {
      const made = this.#pseudonymise(indicesOf(chunk));
      // Awaited in order below; one that is never awaited (the run stopped) is dropped.
      made.catch(() => {});
      return made;
    };
    // One delivery in flight while the next chunks are pseudonymised; a
    // failed delivery (or chunk) stops the run before another is delivered.
    /** @type {Promise<void>} */
    let delivering = Promise.resolve();
    try {
      if (todo.length > 0) {
        await this.#gate();
        this.#shared = await this.#open();
        await this.#gate();
      }
      /** @type {ReturnType<typeof launch> | undefined} */
      let next = todo.length > 0 ? launch(todo[0]) : undefined;
      for (let k = 0; k < todo.length; k++) {
        const chunk = todo[k];
        const current = /** @type {ReturnType<typeof launch>} */ (next);
        next = undefined;
        // The next chunk is blinded while this one is at the TTP (not while paused).
        if (k + 1 < todo.length && !this.#paused) next = launch(todo[k + 1]);
        /** @type {Awaited<typeof current>} */
        let made;
        try {
          made = await current;
        } catch (error) {
          // The chunk in front of it is delivered first (its failure is the one
          // reported, being the earlier), so that the checkpoint is complete
          // when the run says it stopped.
          await delivering;
          throw error;
        }
        await delivering;
        await this.#gate();
        delivering = this.#finish(chunk, indicesOf(chunk), made).then(() => this.#report());
        // Awaited before the next delivery or at the end.
        delivering.catch(() => {});
        if (k + 1 < todo.length && !next) {
          await this.#gate();
          next = launch(todo[k + 1]);
        }
      }
      await delivering;
      checkpoint.finished = true;
      if (this.setup.mode === "deliver") saveCheckpoint(this.setup.registry, checkpoint);
    } finally {
      for (const lane of this.#shared?.lanes ?? []) lane.close();
      if (this.#since) this.#activeMs += performance.now() - this.#since;
      this.#since = 0;
      this.#report();
    }
  }

  /**
   * Pseudonymises the rows of a chunk: a submission per row made, a
   * problem per row refused (its field and rule). The rows are split over
   * the lanes; the TTP is called from the page. A failure of the TTP or of
   * a lane fails the whole chunk: nothing of it is delivered.
   * @param {number[]} indices
   */
  async #pseudonymise(indices) {
    const { rows, checkpoint } = this.setup;
    const { mapping } = checkpoint;
    const shared = this.#shared;
    if (!shared) throw new PseudoformError("internal", "the run has not started");
    const { o: settled, lanes } = shared;
    const signal = this.#controller.signal;
    const job = this.#job++;
    const per = Math.ceil(indices.length / lanes.length);
    const slices = lanes
      .map((lane, l) => ({ lane, indices: indices.slice(l * per, (l + 1) * per) }))
      .filter((s) => s.indices.length > 0);
    try {
      const prepared = await Promise.all(
        slices.map((s) =>
          s.lane.prepare(
            job,
            s.indices.map((i) => identityOf(rows[i], mapping)),
          ),
        ),
      );
      if (signal.aborted) throw new PseudoformError("aborted", "the run was cancelled");
      const o = { ...(await withCredential(settled)), signal };
      // The TTP's evaluations of every prepared row of the chunk, in order.
      const ok = prepared.flatMap((p) => p.flatMap((r) => (r.ok ? [r] : [])));
      /** @type {(string | string[])[]} */
      const evaluated = [];
      for (let start = 0; start < ok.length; start += LIMITS.maxRecordsPerRequest) {
        const part = ok.slice(start, start + LIMITS.maxRecordsPerRequest);
        if (o.ttpApi === "national") {
          evaluated.push(
            ...(await this.#withinBudget(() => Promise.all(part.map((r) => evaluateNational(r.items, o))))),
          );
        } else {
          evaluated.push(
            ...(await this.#withinBudget(() =>
              evaluateRecords(
                part.map((r) => r.items),
                o,
                part.map((r) => r.reversible),
              ),
            )),
          );
        }
      }
      if (signal.aborted) throw new PseudoformError("aborted", "the run was cancelled");
      let at = 0;
      const sealed = await Promise.all(
        slices.map((s, l) => {
          const count = prepared[l].filter((r) => r.ok).length;
          const mine = evaluated.slice(at, (at += count));
          return count > 0 ? s.lane.seal(job, mine) : Promise.resolve([]);
        }),
      );
      /** @type {import("./rows.js").Problem[]} */
      const problems = [];
      /** @type {{ index: number, submission: api.Submission }[]} */
      const made = [];
      slices.forEach((s, l) => {
        let m = 0;
        prepared[l].forEach((r, k) => {
          const index = s.indices[k];
          if (r.ok) {
            made.push({ index, submission: { ...sealed[l][m++].submission, data: dataOf(rows[index], mapping) } });
          } else for (const e of r.errors) problems.push(problemOf(rowNumber(index), e.field, e.code));
        });
      });
      return { made, problems };
    } catch (error) {
      for (const s of slices) s.lane.drop(job);
      throw PseudoformError.from(error);
    }
  }

  /**
   * Delivers a pseudonymised chunk (or keeps it for the download), records
   * it in the checkpoint and counts it.
   * @param {number} chunk
   * @param {number[]} indices
   * @param {{ made: { index: number, submission: api.Submission }[], problems: import("./rows.js").Problem[] }} pseudonymised
   */
  async #finish(chunk, indices, { made, problems }) {
    const { checkpoint, onRefused } = this.setup;
    const refusedRows = new Set(problems.map((p) => p.row)).size;
    if (this.setup.mode === "download") {
      await this.setup.onWritten?.(
        chunk,
        made.map((m) => ({ row: rowNumber(m.index), submission: m.submission })),
      );
      this.delivered += made.length;
    } else {
      const receipts = made.length > 0 ? await this.#deliver(chunk, made, problems) : [];
      checkpoint.chunks[String(chunk)] = {
        batchId: batchIdOf(checkpoint.runId, chunk),
        rows: indices.map(rowNumber),
        receipts,
      };
      saveCheckpoint(this.setup.registry, checkpoint);
    }
    this.refused += refusedRows;
    if (problems.length > 0) onRefused(problems);
    this.#doneHere += indices.length;
  }

  /**
   * Posts one chunk as a registry batch with one submitter proof.
   * @param {number} chunk
   * @param {{ index: number, submission: api.Submission }[]} made
   * @param {import("./rows.js").Problem[]} problems refusals are added here
   * @returns {Promise<[number, string, number | null][]>}
   */
  async #deliver(chunk, made, problems) {
    const { checkpoint, options, batchUrl } = this.setup;
    const submissions = made.map((m) => m.submission);
    /** @type {Record<string, string>} */
    const headers = {};
    if (options.session) {
      const recs = await Promise.all(submissions.map(recOf));
      headers.dpop = await options.session.submitterProof("POST", batchUrl, recs.join("."));
    }
    const answer = await requestJson(
      "registry",
      batchUrl,
      { method: "POST", json: { batchId: batchIdOf(checkpoint.runId, chunk), submissions }, headers },
      { timeoutMs: options.timeoutMs ?? 30_000, signal: this.#controller.signal },
    );
    const results = answer?.results;
    if (!Array.isArray(results) || results.length !== made.length) {
      throw new PseudoformError("registry.malformedAnswer", "the registry's batch answer has no result per record");
    }
    /** @type {[number, string, number | null][]} */
    const receipts = [];
    results.forEach((/** @type {any} */ r, k) => {
      const row = rowNumber(made[k].index);
      if (r?.status === "stored" || r?.status === "alreadyStored") {
        this.delivered++;
        receipts.push([row, r.status, typeof r.recordId === "number" ? r.recordId : null]);
      } else {
        const code = typeof r?.code === "string" ? r.code : "registry.rejected";
        problems.push(problemOf(row, typeof r?.field === "string" ? r.field : undefined, `registry.${code}`));
        receipts.push([row, "refused", null]);
      }
    });
    return receipts;
  }
}
