// What the workbench's page tests share: CSV extracts as a care provider's
// EPD exports them (the quoting, the line ends and the bytes of the file;
// each test chooses its own columns and rows) and the steps of a run.

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

/**
 * Opens the workbench of `chain`'s registry A in `page` and waits until it
 * knows the registry.
 * @param {import("playwright-core").Page} page
 * @param {{ formUrl: string }} chain
 */
export async function openWorkbench(page, chain) {
  await page.goto(`${chain.formUrl}workbench/`);
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
}

/**
 * Opens the extract `file` and waits until it is read (or refused).
 * @param {import("playwright-core").Page} page
 * @param {{ name: string, mimeType: string, buffer: Buffer }} file
 */
export async function openFile(page, file, timeout = 30_000) {
  await page.evaluate(() => delete document.getElementById("file-info").dataset.kind);
  await page.setInputFiles("#file", file);
  await page.waitForSelector("#file-info[data-kind=ready], #file-info[data-kind=error]", { timeout });
}

/**
 * Waits at most `timeout` ms for the run's outcome: `{ kind, text }`.
 * @param {import("playwright-core").Page} page
 */
export async function runOutcome(page, timeout = 120_000) {
  await page.waitForFunction(
    () => ["done", "error", "cancelled"].includes(document.getElementById("run-status").dataset.kind),
    undefined,
    { timeout },
  );
  return page.evaluate(() => {
    const s = document.getElementById("run-status");
    return { kind: s.dataset.kind, text: s.textContent };
  });
}

/**
 * Presses start (or resume) and waits for the run's outcome: `{ kind, text }`.
 * @param {import("playwright-core").Page} page
 */
export async function runToEnd(page, timeout = 120_000) {
  await page.evaluate(() => delete document.getElementById("run-status").dataset.kind);
  await page.click("#start");
  return runOutcome(page, timeout);
}
