// The workbench's downloads, written chunk by chunk into Blob parts so that
// the page does not keep every submission of a large file as objects:
// - CSV: the one shape of a pseudonymised file (PSEUDONYMISED_CSV of
//   constants.js, as `pseudoform batch --output` writes it): the row, the
//   registry, the method version, the record JWE, the sealed blind factors,
//   the reversible pseudonym (`kid.enc.ct`), then the clinical columns
//   (UTF-8 with a BOM, `;`, CRLF);
// - FHIR: per chunk one delivery Bundle (docs/fhir.md) under the chunk's
//   batch id, one per line (NDJSON); each can be posted to `POST /fhir`.
/** @import * as api from "../index.js" */
import { PSEUDONYMISED_CSV } from "../constants.js";
import { PseudoformError } from "../errors.js";
import { batchIdOf } from "./checkpoint.js";
import { bundleOf } from "./fhir.js";
import { CLINICAL } from "./mapping.js";
import { csvField } from "./rows.js";

export class Output {
  /** @type {BlobPart[]} */
  #parts = [];

  /**
   * @param {"csv" | "fhir"} format
   * @param {import("./mapping.js").Mapping} mapping
   * @param {string} registry `<organization>|<scope>`
   * @param {string} runId
   */
  constructor(format, mapping, registry, runId) {
    this.format = format;
    this.clinical = mapping.filter((m) => m.role === CLINICAL).map((m) => /** @type {string} */ (m.name));
    const [org, scope] = registry.split("|");
    this.org = org;
    this.scope = scope;
    this.runId = runId;
    if (format === "csv") {
      const head = [...PSEUDONYMISED_CSV.columns, ...this.clinical];
      this.#parts.push(`\uFEFF${head.map(csvField).join(PSEUDONYMISED_CSV.delimiter)}\r\n`);
    }
  }

  /** The file name of the download. */
  get name() {
    return this.format === "csv" ? "gepseudonimiseerd.csv" : "gepseudonimiseerd.fhir.ndjson";
  }

  /**
   * Adds the rows of one chunk, in order.
   * @param {number} chunk
   * @param {{ row: number, submission: api.Submission }[]} written
   */
  async add(chunk, written) {
    if (written.length === 0) return;
    if (this.format === "fhir") {
      const bundle = await bundleOf(
        batchIdOf(this.runId, chunk),
        this.org,
        this.scope,
        written.map((w) => w.submission),
      );
      this.#parts.push(new Blob([`${bundle}\n`]));
      return;
    }
    const lines = written.map(({ row, submission: s }) => {
      if (!("record" in s)) {
        throw new PseudoformError("output.packaging", "the CSV download takes the pseudoform packaging only");
      }
      const reversible = s.reversible ? `${s.reversible.kid}.${s.reversible.enc}.${s.reversible.ct}` : "";
      const data = this.clinical.map((n) => {
        const v = s.data[n];
        return Array.isArray(v) ? v.join(PSEUDONYMISED_CSV.listSeparator) : (v ?? "");
      });
      return [
        String(row),
        s.recipientOrganization,
        s.recipientScope,
        String(s.methodVersion),
        s.record,
        s.encryptedBlindFactors,
        reversible,
        ...data,
      ]
        .map(csvField)
        .join(PSEUDONYMISED_CSV.delimiter);
    });
    this.#parts.push(new Blob([`${lines.join("\r\n")}\r\n`]));
  }

  /** The whole download. */
  blob() {
    return new Blob(this.#parts, {
      type: this.format === "csv" ? "text/csv;charset=utf-8" : "application/fhir+ndjson",
    });
  }
}
