// The checkpoint of a delivery in localStorage, one per registry: the
// file's SHA-256, the run's id, the chunk size and the mapping (column
// names → fields), and per delivered chunk its batch id, the row numbers
// and the registry's receipts (status and record id). No value of the file,
// no identity, no pseudonym. A resume takes the same file only (by its
// hash): the same rows make the same chunks under the same batch ids, so a
// chunk sent again is answered `alreadyStored` and stored once.

import { PseudoformError } from "../errors.js";

const PREFIX = "pseudoform-workbench:checkpoint:";

/**
 * @typedef {{ batchId: string, rows: number[], receipts: [number, string, number | null][] }} DeliveredChunk
 *   receipts: `[row number, status, record id]`
 * @typedef {object} Checkpoint
 * @property {1} version
 * @property {string} file the file's hex SHA-256
 * @property {string} runId
 * @property {number} chunkSize
 * @property {number} total rows to send
 * @property {import("./mapping.js").Mapping} mapping
 * @property {Record<string, DeliveredChunk>} chunks by chunk index
 * @property {boolean} finished
 */

/**
 * The registry's checkpoint, if a well-formed one is stored.
 * @param {string} registry `<organization>|<scope>`
 * @returns {Checkpoint | undefined}
 */
export function loadCheckpoint(registry) {
  try {
    const c = JSON.parse(localStorage.getItem(PREFIX + registry) ?? "null");
    if (
      c?.version === 1 &&
      typeof c.file === "string" &&
      typeof c.runId === "string" &&
      Number.isInteger(c.chunkSize) &&
      Array.isArray(c.mapping) &&
      c.chunks &&
      typeof c.chunks === "object"
    ) {
      return c;
    }
  } catch {
    /* unreadable: none */
  }
  return undefined;
}

/**
 * @param {string} registry
 * @param {Checkpoint} checkpoint
 */
export function saveCheckpoint(registry, checkpoint) {
  try {
    localStorage.setItem(PREFIX + registry, JSON.stringify(checkpoint));
  } catch (error) {
    // Full or refused: stop rather than deliver what a resume would not know of.
    throw new PseudoformError("checkpoint.storage", "the browser cannot keep the checkpoint", "checkpoint", {
      cause: error,
    });
  }
}

/** @param {string} registry */
export function dropCheckpoint(registry) {
  localStorage.removeItem(PREFIX + registry);
}

/** A new run id: 64 random bits in hex (part of every batch id). */
export function newRunId() {
  return [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The batch id of a run's chunk: `wb-{runId}-{chunk}`. */
export const batchIdOf = (/** @type {string} */ runId, /** @type {number} */ chunk) => `wb-${runId}-${chunk}`;

/**
 * Rows of a checkpoint already delivered (stored or stored before).
 * @param {Checkpoint} checkpoint
 */
export function deliveredRows(checkpoint) {
  return Object.values(checkpoint.chunks).reduce((n, c) => n + c.rows.length, 0);
}
