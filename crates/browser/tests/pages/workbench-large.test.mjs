// The workbench with its Web Workers at the size of a real extract, in real
// headless Chromium against the real chain (docs/processors.md): a
// generated extract of 10 000 rows as Excel writes it in the Netherlands
// (Windows-1252 with accented names, `;`, a quoted field with `;` and `"`),
// 2 % of the rows broken (an impossible date, a bad postcode, a missing
// required field) and an opt-out column. A new user checks it, starts the
// delivery, cancels it in the middle and resumes it after a reload: the
// registry holds exactly the valid, non-objecting rows, each once, and the
// report lists exactly the broken rows. Then the two ways a run must not
// go half: without Web Workers (an old browser) the whole run goes in the
// page and the page says so; a worker that fails fails its chunk closed,
// nothing of it delivered, the checkpoint without it, and the same file
// resumes to exactly its rows.
//
// Run time: the 10 000 rows take most of it, about 1½ to 2½ minutes on the
// 2-core development machine (the registry's work dominates, docs/processors.md);
// the test allows 4 minutes for the delivery.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { launch } from "./support.mjs";
import { startChain } from "./chain.mjs";
import { generateIdentities } from "./identities.mjs";
import { cp1252Safe, csvFile, openFile, openWorkbench, runToEnd } from "./workbench-support.mjs";

const ROWS = 10_000;
const identities = generateIdentities(ROWS + 3000, 20261206)
  .filter((i) => Object.values(i.typed).every(cp1252Safe))
  .slice(0, ROWS);
assert.equal(identities.length, ROWS);
assert.ok(identities.filter((i) => [...i.typed.birthName].some((c) => c.charCodeAt(0) > 0x7f)).length > 100);

/** Row index i (0 = row 2 of the file) is broken, and how; one in 50 (2 %). */
const brokenKind = (i) => (i % 50 === 7 ? ["birthDate", "postcode", "birthName"][Math.floor(i / 50) % 3] : undefined);
/** Row index i objects; one in 25, never a broken row. */
const objecting = (i) => i % 25 === 3;

/** An extract of `list`: the header and one row per identity, CRLF, Windows-1252 bytes. */
function extract(list, { broken = brokenKind, objects = objecting } = {}) {
  const header = [
    "Volgnummer",
    "Patiëntnummer",
    "Geboortenaam",
    "Voorletters",
    "Geboortedatum",
    "Geslacht",
    "Postcode",
    "Huisnummer",
    "Toevoeging",
    "Diagnose",
    "Opmerking",
    "Bezwaar",
  ];
  const rows = list.map((identity, i) => {
    const t = identity.typed;
    const kind = broken(i);
    return [
      `r${i + 2}`,
      t.mrn,
      kind === "birthName" ? "" : t.birthName,
      t.initial,
      kind === "birthDate" ? `30-02-${identity.date.year}` : t.birthDate,
      t.sex === "1" ? "man" : "vrouw",
      kind === "postcode" ? "12345" : t.postcode,
      t.houseNumber,
      t.houseNumberAddition,
      i % 2 ? "Knieartrose" : "Heupartrose",
      i % 10 === 0 ? 'controle; "na" zes weken' : "geen bijzonderheden",
      objects(i) ? "ja" : "nee",
    ];
  });
  return csvFile(header, rows);
}

const FILE = { name: "export-epd-groot.csv", mimeType: "text/csv", buffer: extract(identities) };
const BROKEN = identities.map((_, i) => i).filter((i) => brokenKind(i));
const VALID = identities.map((_, i) => i).filter((i) => !brokenKind(i) && !objecting(i));
assert.equal(BROKEN.length, ROWS / 50);

let chain, chrome, page;

before(async () => {
  // A budget this run cannot reach: it measures the run, and the waits for
  // a spent budget (and their 429s in the console) are the subject of
  // workbench-budget.test.mjs. A row of registry A is nine evaluations.
  chain = await startChain({ rateLimit: 1_000_000 });
  chrome = await launch({ account: chain.urls.account });
});

after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const CHECKPOINT = "pseudoform-workbench:checkpoint:oin:00000001000000001000|kwaliteitsregistratie-a";

const text = (selector) => page.textContent(selector);
const workerStatus = () =>
  page.evaluate(() => {
    const s = document.getElementById("worker-status");
    return { kind: s.dataset.kind, text: s.textContent };
  });

/** Every record registry A holds, newest first (chain.records() gives the newest 500). */
const allRecords = async () => (await chain.json(`${chain.urls.registryA}/api/records?limit=10000`)).body;
/** How many records registry A holds. */
const count = async () => (await allRecords()).length;
/** The `volgnummer` of every record registry A stored after the first `before`. */
const storedRows = async (before) => {
  const all = await allRecords();
  return all.slice(0, all.length - before).map((r) => r.data.volgnummer);
};

test("a new user's 10 000-row extract: 2 % broken rows reported, objecting rows left out, delivered in Web Workers, cancelled and resumed, every valid row stored once", async () => {
  page = await chrome.newPage();
  await openWorkbench(page, chain);
  const before = await count();
  await openFile(page, FILE, 60_000);
  assert.match(await text("#file-info"), /^10000 rijen, 12 kolommen; gelezen als Windows-1252, scheidingsteken ";"/);
  // The quoted field with `;` and `""` arrives as one value; an accented name as itself.
  assert.ok((await text("#preview tbody tr:first-child")).includes('controle; "na" zes weken'));
  assert.equal(await page.$eval("#mapping select[data-column='0']", (s) => s.value), "clinical");
  await page.click("#check");
  assert.equal(
    await text("#check-summary"),
    `10000 rijen: ${VALID.length} te versturen, ${BROKEN.length} ongeldig (niet verstuurd), 400 met bezwaar (niet verstuurd).`,
  );
  // The downloaded report: exactly the broken rows, each by its field and rule.
  const download = page.waitForEvent("download");
  await page.click("#download-report");
  const report = (await readFile(await (await download).path(), "utf8"))
    .replace(/^\uFEFF/, "")
    .trimEnd()
    .split("\r\n")
    .slice(1)
    .map((line) => line.split(";"));
  assert.deepEqual(
    report.map((r) => Number(r[0])),
    BROKEN.map((i) => i + 2),
  );
  const RULES = { birthDate: "birthDate.calendar", postcode: "postcode.format", birthName: "birthName.required" };
  assert.deepEqual(
    report.map((r) => r[3]),
    BROKEN.map((i) => RULES[brokenKind(i)]),
  );

  // Delivered in batches of 500, in Web Workers; cancelled in the middle.
  await page.fill("#chunk", "500");
  await page.evaluate(() => delete document.getElementById("run-status").dataset.kind);
  await page.click("#start");
  await page.waitForFunction(() => document.getElementById("progress").value >= 3000, undefined, {
    timeout: 180_000,
  });
  assert.equal((await workerStatus()).kind, "workers");
  assert.match((await workerStatus()).text, /^De rijen worden gepseudonimiseerd in [1-4] Web Workers?\.$/);
  await page.click("#cancel");
  await page.waitForFunction(() => document.getElementById("run-status").dataset.kind === "cancelled", undefined, {
    timeout: 60_000,
  });
  const partial = (await count()) - before;
  assert.ok(partial >= 3000 && partial < VALID.length, `${partial} rows stored before the cancel`);

  // The checkpoint has the rows of the chunks delivered before the cancel.
  const cancelled = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), CHECKPOINT);
  const kept = Object.values(cancelled.chunks).flatMap((c) => c.rows).length;
  assert.ok(kept >= 3000 && kept <= partial, `${kept} rows in the checkpoint`);
  assert.equal(cancelled.finished, false);

  // After a reload the same file resumes to the end.
  await page.reload();
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
  await openFile(page, FILE, 60_000);
  assert.match(await text("#run-status"), /^Hervatten: /);
  const resumed = await runToEnd(page, 240_000);
  assert.equal(resumed.kind, "done", resumed.text);
  // This run delivered what the checkpoint had no receipt for (the chunk cancelled in flight included).
  assert.match(resumed.text, new RegExp(`^Klaar: ${VALID.length - kept} rijen afgeleverd`));
  // Every valid, non-objecting row once; nothing else.
  const stored = await storedRows(before);
  assert.equal(stored.length, VALID.length);
  assert.deepEqual([...stored].sort(), VALID.map((i) => `r${i + 2}`).sort());
  const done = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), CHECKPOINT);
  assert.equal(done.finished, true);
  assert.deepEqual(
    Object.values(done.chunks)
      .flatMap((c) => c.rows)
      .sort((a, b) => a - b),
    VALID.map((i) => i + 2),
  );
  assert.deepEqual(
    chrome.errors.filter((e) => !/^Failed to load resource: net::ERR_/.test(e)),
    [],
  );
});

/** A small extract: 12 rows, none broken, none objecting. */
const SMALL = {
  name: "klein.csv",
  mimeType: "text/csv",
  buffer: extract(
    generateIdentities(200, 20261207)
      .filter((i) => Object.values(i.typed).every(cp1252Safe))
      .slice(0, 12),
    {
      broken: () => undefined,
      objects: () => false,
    },
  ),
};

test("without Web Workers (an old browser) the whole run goes in the page, and the page says so", async () => {
  page = await chrome.newPage();
  await page.addInitScript(() => {
    delete window.Worker;
  });
  await openWorkbench(page, chain);
  await page.evaluate((key) => localStorage.removeItem(key), CHECKPOINT);
  const before = await count();
  await openFile(page, SMALL, 60_000);
  await page.fill("#chunk", "5");
  const outcome = await runToEnd(page, 240_000);
  assert.equal(outcome.kind, "done", outcome.text);
  assert.deepEqual(await workerStatus(), {
    kind: "fallback",
    text: "Web Workers konden niet starten (worker.unsupported); de rijen worden in deze pagina zelf gepseudonimiseerd, langzamer.",
  });
  assert.equal(await count(), before + 12);
});

test("a Web Worker that fails fails its chunk closed: nothing of it delivered, the checkpoint without it, and the same file resumes to exactly its rows", async () => {
  page = await chrome.newPage();
  let crash = true;
  // A worker that starts, then throws on the first rows it is given.
  await page.route("**/pkg/pseudoform-workbench-worker.js", (route) =>
    crash
      ? route.fulfill({
          contentType: "text/javascript",
          body: `self.onmessage = ({ data }) => {
            if (data.op === "init") self.postMessage({ id: data.id, result: true });
            else if (data.op === "prepare") throw new Error("a fault");
          };`,
        })
      : route.continue(),
  );
  await openWorkbench(page, chain);
  await page.evaluate((key) => localStorage.removeItem(key), CHECKPOINT);
  const before = await count();
  const sent = chrome.requests.length;
  await openFile(
    page,
    { ...SMALL, name: "klein-2.csv", buffer: Buffer.concat([SMALL.buffer, Buffer.from("\r\n")]) },
    60_000,
  );
  await page.fill("#chunk", "5");
  const stopped = await runToEnd(page, 240_000);
  assert.equal(stopped.kind, "error", stopped.text);
  assert.match(stopped.text, /worker\.failed/);
  assert.equal((await workerStatus()).kind, "workers");
  // Nothing went to the TTP's evaluation or the registry, nothing stored, no chunk in the checkpoint.
  assert.ok(!chrome.requests.slice(sent).some((r) => r.url.includes("/v1/evaluate") || r.url.includes("/api/batches")));
  assert.equal(await count(), before);
  const checkpoint = await page.evaluate((key) => JSON.parse(localStorage.getItem(key)), CHECKPOINT);
  assert.deepEqual(checkpoint.chunks, {});
  assert.equal(checkpoint.finished, false);
  // With the real worker the same file resumes to exactly its rows.
  crash = false;
  const resumed = await runToEnd(page, 240_000);
  assert.equal(resumed.kind, "done", resumed.text);
  assert.equal(await count(), before + 12);
});
