// CSV extracts as a care provider's EPD exports them, for the workbench's
// page tests: the quoting, the line ends and the bytes of the file, shared
// by every test that writes one (each chooses its own columns and rows).

/** Whether every character of `text` has a Windows-1252 byte that is its Latin-1 code point. */
export const cp1252Safe = (text) =>
  [...text].every((c) => c.charCodeAt(0) < 0x80 || (c.charCodeAt(0) >= 0xa0 && c.charCodeAt(0) <= 0xff));

/**
 * A CSV field, quoted as Excel quotes it: when it holds the delimiter, a
 * quote, a line break or a space.
 * @param {string} value
 * @param {string} delimiter
 */
export function csvField(value, delimiter) {
  const quoted = value.includes(delimiter) || /["\n ]/.test(value);
  return quoted ? `"${value.replaceAll('"', '""')}"` : value;
}

/**
 * The bytes of a CSV file: the `header` row and the `rows`, each a list of
 * values, joined by `delimiter`, every line (the last too) ended by `eol`,
 * in `encoding` ("latin1" for the Windows-1252 of a Dutch Excel, "utf8").
 * @param {string[]} header
 * @param {string[][]} rows
 * @param {{ delimiter?: string, eol?: string, encoding?: BufferEncoding }} [options]
 */
export function csvFile(header, rows, { delimiter = ";", eol = "\r\n", encoding = "latin1" } = {}) {
  const line = (values) => values.map((v) => csvField(v, delimiter)).join(delimiter);
  return Buffer.from(`${[header, ...rows].map(line).join(eol)}${eol}`, encoding);
}
