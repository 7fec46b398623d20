// The workbench's file: read in the browser, never uploaded. Its bytes are
// decoded as UTF-8 when they are valid UTF-8 (a BOM dropped), otherwise as
// Windows-1252 (what Excel writes for a Dutch "CSV (gescheiden door
// lijstscheidingsteken)"); papaparse splits the text (`;` or `,`, quoted
// fields, a header row). The file's SHA-256 identifies it for the
// checkpoint: a resume accepts the same bytes only.
import Papa from "papaparse";
import { PseudoformError } from "../errors.js";

/** The most data rows the workbench takes from one file. */
export const MAX_ROWS = 1_000_000;

/**
 * @typedef {{ header: string[], rows: string[][], encoding: "utf-8" | "windows-1252", delimiter: string, hash: string }} Table
 */

/**
 * The text of a file's bytes and the encoding it was read in.
 * @param {Uint8Array} bytes
 * @returns {{ text: string, encoding: "utf-8" | "windows-1252" }}
 */
export function decode(bytes) {
  try {
    const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    return { text, encoding: "utf-8" };
  } catch {
    return { text: new TextDecoder("windows-1252").decode(bytes), encoding: "windows-1252" };
  }
}

/**
 * Hex SHA-256 of bytes.
 * @param {Uint8Array} bytes
 */
export async function fileHash(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", /** @type {BufferSource} */ (bytes)));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The header and rows of a CSV text. Empty lines are skipped; a row shorter
 * than the header is padded with empty fields. Errors name the row, never
 * its content.
 * @param {string} text
 * @returns {{ header: string[], rows: string[][], delimiter: string }}
 */
export function parseCsv(text) {
  const parsed = Papa.parse(text, {
    delimiter: "",
    delimitersToGuess: [";", ",", "\t"],
    skipEmptyLines: "greedy",
  });
  const data = /** @type {string[][]} */ (parsed.data);
  const fatal = parsed.errors.find((e) => e.type === "Quotes");
  if (fatal) {
    throw new PseudoformError("file.quotes", `row ${(fatal.row ?? 0) + 1} has an unclosed quote`, "file");
  }
  if (data.length < 2) throw new PseudoformError("file.empty", "the file has no header row and data rows", "file");
  if (data.length - 1 > MAX_ROWS) throw new PseudoformError("file.tooLarge", "the file has too many rows", "file");
  const header = data[0].map((h) => h.trim());
  const width = header.length;
  const rows = data.slice(1).map((r) => (r.length >= width ? r : [...r, ...new Array(width - r.length).fill("")]));
  return { header, rows, delimiter: parsed.meta.delimiter };
}

/**
 * Reads a chosen file: decoded, parsed, hashed.
 * @param {Blob} file
 * @returns {Promise<Table>}
 */
export async function readTable(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const { text, encoding } = decode(bytes);
  const { header, rows, delimiter } = parseCsv(text);
  return { header, rows, encoding, delimiter, hash: await fileHash(bytes) };
}
