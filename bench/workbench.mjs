#!/usr/bin/env node
// The processors' workbench (docs/processors.md) from file to delivered, in
// headless Chromium against the demo chain on loopback (the real
// pseudoform-demo binary, crates/browser/tests/pages/chain.mjs; the
// clinician logged in at the portal):
//
//   node bench/workbench.mjs [--rows N] [--modes deliver,csv] [--out FILE]
//
// N rows (default 100 000, or WORKBENCH_BENCH_ROWS) of a synthetic extract
// (made-up identities, every row valid, none objecting; the types
// NGGV, RGG and MRN, or --types: the demo's form configuration, which names
// every type registry A may receive and R, is answered with these types to
// the page) are opened in the page, checked and
// run in chunks of 500, once with 1 Web Worker (`?workers=1`) and once with
// one per core (the page's default), in one run of the script; each run its
// own extract, so that nothing is `alreadyStored`. Mode `deliver` delivers
// to registry A; `csv` (with --modes) writes the CSV download instead (the
// CPU work without the registry's). Per run it prints the rows/s, the
// seconds from Start to "Klaar" and the page's peak JS heap (CDP
// Performance.getMetrics JSHeapUsedSize, sampled every second; the
// workers' heaps are their own and not in it), and writes the figures as
// JSON. The TTP's per-minute budget is raised (--rate-limit, default 10 000 000
// evaluations a minute) so that it does not stop a run. Benchmarks report;
// they do not fail.
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { startChain } from "../crates/browser/tests/pages/chain.mjs";
import { launch } from "../crates/browser/tests/pages/support.mjs";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: process.env.WORKBENCH_BENCH_ROWS ?? "100000" },
    modes: { type: "string", default: "deliver" },
    types: { type: "string", default: "NGGV,RGG,MRN" },
    "rate-limit": { type: "string", default: "10000000" },
    out: { type: "string", default: "bench/results/workbench.json" },
  },
});
const ROWS = Number(values.rows);
const MODES = values.modes.split(",").filter(Boolean);
const TYPES = values.types.split(",").filter(Boolean);

const SYLLABLES = ["ba", "de", "ki", "lo", "mu", "ne", "ri", "so"];
/** A synthetic extract of `n` rows, its patients numbered from `offset` (UTF-8, `;`). */
function synthetic(n, offset) {
  const lines = ["Patiëntnummer;Geboortenaam;Voorletters;Geboortedatum;Geslacht;Postcode;Huisnummer;Diagnose"];
  for (let k = 0; k < n; k++) {
    const i = offset + k;
    const name = [0, 1, 2, 3].map((b) => SYLLABLES[(i >> (3 * b)) % 8]).join("");
    const day = String(1 + (i % 28)).padStart(2, "0");
    const month = String(1 + (Math.floor(i / 28) % 12)).padStart(2, "0");
    lines.push(
      [
        `PAT-${1_000_000 + i}`,
        name,
        String.fromCharCode(65 + (i % 26)),
        `${day}-${month}-${1930 + (i % 80)}`,
        i % 2 ? "vrouw" : "man",
        `${1000 + (i % 9000)} ${["AB", "CD", "EF", "GH"][i % 4]}`,
        String(1 + (i % 200)),
        i % 2 ? "Knieartrose" : "Heupartrose",
      ].join(";"),
    );
  }
  return Buffer.from(`${lines.join("\r\n")}\r\n`, "utf8");
}

// The TTP's budget of the provider's browsers, evaluations a minute: the demo's default
// (60 000) stops a run above ~330 rows/s of three types with ttp.rateLimited; the bench
// measures the page and the chain, not the budget.
const chain = await startChain({ rateLimit: Number(values["rate-limit"]) });
const chrome = await launch({ account: chain.urls.account });
/** @type {any[]} */
const runs = [];
let offset = 0;
try {
  for (const mode of MODES) {
    for (const [label, query] of [
      ["1 worker", "?workers=1"],
      ["all workers", ""],
    ]) {
      const page = await chrome.newPage();
      const cdp = await page.context().newCDPSession(page);
      await cdp.send("Performance.enable");
      // The types the workbench asks for: the demo's form config names every type registry A
      // may receive (and R); the bench asks for --types only, as a registry configured so would.
      await page.route("**/api/form-config", async (route) => {
        const response = await route.fetch();
        const config = await response.json();
        await route.fulfill({ response, json: { ...config, types: TYPES } });
      });
      await page.goto(`${chain.formUrl}workbench/${query}`);
      await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 60_000 });
      await page.evaluate(() => {
        for (const key of Object.keys(localStorage)) if (key.includes(":checkpoint:")) localStorage.removeItem(key);
      });
      const buffer = synthetic(ROWS, offset);
      offset += ROWS;
      await page.setInputFiles("#file", { name: `bench-${offset}.csv`, mimeType: "text/csv", buffer });
      await page.waitForSelector("#file-info[data-kind=ready]", { timeout: 300_000 });
      if (mode !== "deliver") await page.check(`input[name=mode][value=${mode}]`);
      await page.fill("#chunk", "500");
      let peak = 0;
      const sample = async () => {
        const { metrics } = await cdp.send("Performance.getMetrics");
        peak = Math.max(peak, metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? 0);
      };
      await sample();
      const load = loadavg()[0];
      const start = performance.now();
      await page.click("#start");
      const sampler = setInterval(() => sample().catch(() => {}), 1000);
      try {
        await page.waitForFunction(
          () => ["done", "error", "cancelled"].includes(document.getElementById("run-status").dataset.kind),
          undefined,
          { timeout: 0, polling: 500 },
        );
      } finally {
        clearInterval(sampler);
      }
      const seconds = (performance.now() - start) / 1000;
      await sample();
      const outcome = await page.textContent("#run-status");
      const workers = await page.textContent("#worker-status");
      const ok = (await page.$eval("#run-status", (s) => s.dataset.kind)) === "done";
      const run = {
        mode,
        label,
        rows: ROWS,
        types: TYPES,
        ok,
        seconds,
        rowsPerSecond: ok ? ROWS / seconds : 0,
        peakHeapBytes: peak,
        workers,
        outcome,
        loadBefore: load,
      };
      runs.push(run);
      console.log(
        `workbench ${mode.padEnd(7)} ${label.padEnd(11)} ${ROWS} rows: ${ok ? "" : "FAILED "}${run.rowsPerSecond.toFixed(0)} rows/s, ` +
          `${seconds.toFixed(1)} s, peak page JS heap ${(peak / 2 ** 20).toFixed(1)} MiB (${workers})${ok ? "" : ` ${outcome}`}`,
      );
      await page.close();
    }
  }
} finally {
  await chrome.browser.close();
  await chain.stop();
}
await mkdir(dirname(values.out), { recursive: true });
await writeFile(
  values.out,
  `${JSON.stringify({ date: new Date().toISOString(), cores: cpus().length, rows: ROWS, runs }, null, 2)}\n`,
);
