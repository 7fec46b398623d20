// PseudoformError: the one error type of the module. It names a stable code
// and, where there is one, the field; it never carries an input value.

export class PseudoformError extends Error {
  /**
   * @param {string} code stable code, e.g. "bsn.checksum" or "ttp.timeout"
   * @param {string} message English sentence without any input value
   * @param {string} [field] the field or option the error is about
   * @param {{ status?: number, cause?: unknown }} [extra]
   */
  constructor(code, message, field, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "PseudoformError";
    this.code = code;
    if (field !== undefined) this.field = field;
    if (extra.status !== undefined) this.status = extra.status;
  }

  /** Turns anything thrown by the wasm module (or elsewhere) into a PseudoformError. */
  static from(error) {
    if (error instanceof PseudoformError) return error;
    if (error && typeof error.code === "string") {
      return new PseudoformError(error.code, String(error.message ?? error.code), error.field);
    }
    return new PseudoformError("internal", "unexpected internal error", undefined, { cause: error });
  }
}
