// A run of the workbench: the sendable rows in chunks (a chunk is the rows
// of one registry batch), each pseudonymised with pseudonymiseBatch() and
// delivered with `POST /api/batches` under the batch id `wb-{runId}-{chunk}`
// (docs/protocol.md), or written to the download; a chunk's delivery runs
// while the next one is pseudonymised. Between chunks the run
// can be paused; cancel aborts the chunk in flight. After every delivered
// chunk the checkpoint gets its row numbers and receipts; a chunk in the
// checkpoint is not sent again. A chunk whose delivery has no answer (or
// any failure) stops the run: resuming sends that chunk again under the
// same batch id, which the registry stores at most once.
/** @import * as api from "../index.js" */
import { pseudonymiseBatch } from "../index.js";
import { PseudoformError } from "../errors.js";
import { requestJson } from "../http.js";
import { sha256 } from "../dpop.js";
import { batchIdOf, saveCheckpoint } from "./checkpoint.js";
import { dataOf, identityOf, problemOf, rowNumber } from "./rows.js";

/** Most records in one registry batch (the registry's limit). */
export const MAX_CHUNK = 500;

/**
 * @typedef {{ done: number, total: number, delivered: number, refused: number, rate: number, secondsLeft: number | undefined, paused: boolean }} Progress
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
    });
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
   * Runs every chunk not in the checkpoint. Resolves when all are done;
   * rejects with the error that stopped it (`aborted` after cancel).
   */
  async start() {
    const { sendable, checkpoint } = this.setup;
    this.#before = Object.values(checkpoint.chunks).reduce((n, c) => n + c.rows.length, 0);
    this.#since = performance.now();
    this.#report();
    const size = checkpoint.chunkSize;
    // One delivery in flight while the next chunk is pseudonymised; a
    // failed delivery stops the run before another is sent.
    /** @type {Promise<void>} */
    let delivering = Promise.resolve();
    try {
      for (let chunk = 0; chunk * size < sendable.length; chunk++) {
        if (Object.hasOwn(checkpoint.chunks, String(chunk))) continue;
        await this.#gate();
        const indices = sendable.slice(chunk * size, (chunk + 1) * size);
        const made = await this.#pseudonymise(indices);
        await delivering;
        await this.#gate();
        delivering = this.#finish(chunk, indices, made).then(() => this.#report());
        // Awaited before the next delivery or at the end.
        delivering.catch(() => {});
      }
      await delivering;
      checkpoint.finished = true;
      if (this.setup.mode === "deliver") saveCheckpoint(this.setup.registry, checkpoint);
    } finally {
      if (this.#since) this.#activeMs += performance.now() - this.#since;
      this.#since = 0;
      this.#report();
    }
  }

  /**
   * Pseudonymises the rows of a chunk: a submission per row made, a
   * problem per row refused (its field and rule).
   * @param {number[]} indices
   */
  async #pseudonymise(indices) {
    const { rows, checkpoint, options } = this.setup;
    const { mapping } = checkpoint;
    const signal = this.#controller.signal;
    const results = await pseudonymiseBatch(
      indices.map((i) => identityOf(rows[i], mapping)),
      options,
      { signal, chunkSize: Math.min(indices.length, 1000) },
    );
    // A failure without a field is the TTP's for the whole chunk: stop, nothing of it sent.
    for (const r of results) {
      if (!r.ok && r.errors.some((e) => !e.field)) {
        const e = r.errors.find((x) => !x.field);
        throw new PseudoformError(e?.code ?? "ttp.failed", "the TTP did not pseudonymise the chunk");
      }
    }
    /** @type {import("./rows.js").Problem[]} */
    const problems = [];
    /** @type {{ index: number, submission: api.Submission }[]} */
    const made = [];
    results.forEach((r, k) => {
      const index = indices[k];
      if (r.ok) made.push({ index, submission: { ...r.submission, data: dataOf(rows[index], mapping) } });
      else for (const e of r.errors) problems.push(problemOf(rowNumber(index), e.field, e.code));
    });
    return { made, problems };
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
