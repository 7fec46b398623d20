// PseudoformError: the one error type of the module. It names a stable code
// and, where there is one, the field; it never carries an input value.
/** @import { FieldProblem } from "./pseudoform.js" */

export class PseudoformError extends Error {
  /** @type {"PseudoformError"} */
  name = "PseudoformError";

  /**
   * @param {string} code stable code, e.g. "bsn.checksum" or "ttp.timeout"
   * @param {string} message English sentence without any input value
   * @param {string} [field] the field or option the error is about
   * @param {{ status?: number, cause?: unknown, serverCode?: string, retryAfter?: number, problems?: FieldProblem[] }} [extra]
   *   the HTTP status and the server's code of a refusal, the seconds its
   *   `Retry-After` asks to wait, the error behind it, every field problem
   *   when there are several (`field` is the first)
   */
  constructor(code, message, field, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    if (field !== undefined) this.field = field;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.serverCode !== undefined) this.serverCode = extra.serverCode;
    if (extra.retryAfter !== undefined) this.retryAfter = extra.retryAfter;
    if (extra.problems !== undefined) this.problems = extra.problems;
  }

  /**
   * Turns anything thrown by the wasm module (or elsewhere) into a PseudoformError.
   * @param {unknown} error
   * @returns {PseudoformError}
   */
  static from(error) {
    if (error instanceof PseudoformError) return error;
    const thrown = /** @type {{ code?: unknown, message?: unknown, field?: string } | null | undefined} */ (error);
    if (thrown && typeof thrown.code === "string") {
      return new PseudoformError(thrown.code, String(thrown.message ?? thrown.code), thrown.field);
    }
    return new PseudoformError("internal", "unexpected internal error", undefined, { cause: error });
  }
}
