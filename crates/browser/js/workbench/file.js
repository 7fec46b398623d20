// The workbench's file: read in the browser, never uploaded. Its bytes are
// decoded as UTF-8 when they are valid UTF-8 (a BOM dropped), otherwise as
// Windows-1252 (what Excel writes for a Dutch "CSV (gescheiden door
// lijstscheidingsteken)"); papaparse splits the text (`;` or `,`, quoted
// fields, a header row). The file's SHA-256 identifies it for the
// checkpoint: a resume accepts the same bytes only. An XLSX workbook (its
// first sheet) is read by read-excel-file, bundled into the workbench only:
// text cells as they are, numbers as digits, date cells as dd-mm-jjjj. Its
// parts are unpacked here first (fflate, synchronously) and handed on
// uncompressed: read-excel-file would inflate a large part in a Web Worker
// from a blob: URL, which the page's CSP refuses (and the read would hang).
import Papa from "papaparse";
import { unzipSync, zipSync } from "fflate";
import { readSheet } from "read-excel-file/browser";
import { PseudoformError } from "../errors.js";

/** The most data rows the workbench takes from one file. */
export const MAX_ROWS = 1_000_000;

/**
 * @typedef {{ header: string[], rows: string[][], encoding: "utf-8" | "windows-1252" | "xlsx", delimiter: string, hash: string }} Table
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

/** Whether bytes are a ZIP archive (an XLSX workbook is one). */
const isZip = (/** @type {Uint8Array} */ b) => b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/** Two digits. */
const two = (/** @type {number} */ n) => String(n).padStart(2, "0");

/**
 * A cell of a sheet as text: a date cell as dd-mm-jjjj (its UTC day, as
 * read-excel-file gives it), a number in digits, empty for none.
 * @param {unknown} cell
 */
export function cellText(cell) {
  if (cell === null || cell === undefined) return "";
  if (cell instanceof Date) return `${two(cell.getUTCDate())}-${two(cell.getUTCMonth() + 1)}-${cell.getUTCFullYear()}`;
  if (typeof cell === "number") return Number.isInteger(cell) ? cell.toFixed(0) : String(cell);
  return String(cell);
}

/**
 * The header and rows of a sheet's cells: empty rows skipped, short rows padded.
 * @param {unknown[][]} cells
 */
export function tableOfCells(cells) {
  const data = cells.map((r) => r.map(cellText)).filter((r) => r.some((c) => c.trim() !== ""));
  if (data.length < 2) throw new PseudoformError("file.empty", "the file has no header row and data rows", "file");
  if (data.length - 1 > MAX_ROWS) throw new PseudoformError("file.tooLarge", "the file has too many rows", "file");
  const header = data[0].map((h) => h.trim());
  const width = header.length;
  const rows = data.slice(1).map((r) => (r.length >= width ? r : [...r, ...new Array(width - r.length).fill("")]));
  return { header, rows };
}

/**
 * Reads a chosen file: decoded (or unpacked, for XLSX), parsed, hashed.
 * @param {Blob} file
 * @returns {Promise<Table>}
 */
export async function readTable(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const hash = await fileHash(bytes);
  if (isZip(bytes)) {
    let cells;
    try {
      const parts = unzipSync(bytes, { filter: (f) => /\.(xml|rels)$/.test(f.name) });
      const stored = zipSync(parts, { level: 0 });
      cells = /** @type {unknown[][]} */ (await readSheet(new Blob([/** @type {BlobPart} */ (stored)])));
    } catch {
      throw new PseudoformError("file.xlsx", "the workbook cannot be read", "file");
    }
    return { ...tableOfCells(cells), encoding: "xlsx", delimiter: "", hash };
  }
  const { text, encoding } = decode(bytes);
  const { header, rows, delimiter } = parseCsv(text);
  return { header, rows, encoding, delimiter, hash };
}
