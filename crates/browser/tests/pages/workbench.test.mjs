// The processors' workbench (www/workbench/, docs/processors.md) as a new
// user runs it in the demo, in real headless Chromium against the real
// chain: a CSV extract as Excel writes it in the Netherlands (Windows-1252,
// `;`, quoted fields) with one invalid row and one objecting row is opened
// in the page, its columns mapped (the BSN column switched off: registry A
// may not receive it), every row checked (the report names row, field and
// rule, never the value; downloaded as CSV), then pseudonymised and
// delivered in batches of four. The first batch is stored but its answer
// is lost (the registry proxy drops it): the run stops; after a reload the
// same file resumes from the checkpoint, the lost batch is sent again under
// its batch id and is not stored twice. A second delivery of the whole file
// after another reload stores nothing new. Another file is refused while a
// delivery is unfinished. The registry holds exactly the valid,
// non-objecting rows. The download instead of a delivery holds pseudonyms
// and clinical columns only and sends the registry nothing; so does the
// FHIR download, whose Bundles an independent R4 validator accepts. Pause holds a
// run (against a slowed TTP), cancel stops it, and the same file resumes to
// exactly its rows. No identifying value of any row (the objecting and the
// invalid ones included) is in any request the browser made, any request
// the proxies forwarded, the chain's databases and logs, or the page's
// storage, while the same scan finds the values the preview shows. An XLSX
// workbook (date and number cells, a boolean opt-out) is delivered too.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch } from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";
import { generateIdentities, needlesOf } from "./identities.mjs";
import { cp1252Safe, csvFile, openFile, openWorkbench, runToEnd } from "./workbench-support.mjs";
import { chainHaystacks, derivedForms, needleIndex, scan } from "./leaks.mjs";
import writeExcelFile from "write-excel-file/node";
import { PSEUDONYM_TYPES as TYPES } from "../../../../www/pkg/constants.js";

const SCREENSHOT = join(ROOT, "docs", "screenshots", "workbench.png");

/** Identities whose values Windows-1252 can hold, at least one with a letter outside ASCII. */
const identities = generateIdentities(200, 20261203)
  .filter((i) => Object.values(i.typed).every(cp1252Safe))
  .slice(0, 12);
assert.ok(
  identities.some((i) => [...i.typed.birthName].some((c) => c.charCodeAt(0) > 0x7f)),
  "an accented name in the extract",
);
/** The second extract's identities (the pause and cancel test). */
const OTHERS = generateIdentities(200, 20261204)
  .filter((i) => Object.values(i.typed).every(cp1252Safe))
  .slice(0, 12);
/** The workbook's identities (the XLSX test): any letters, since XLSX holds Unicode. */
const IN_WORKBOOK = generateIdentities(6, 20261205);
/** Row indices (0 = the first data row, row 2 of the file) of the invalid and the objecting row. */
const INVALID = 3;
const OBJECTING = 6;
const INVALID_DATE = "31-02-1980";
const VALID = identities.length - 2;
const CHUNK = 4;

/** The extract: a header row and one row per identity, CRLF, Windows-1252 bytes. */
function extract(list) {
  const header = [
    "Patiëntnummer",
    "Geboortenaam",
    "Voorletters",
    "Geboortedatum",
    "Geslacht",
    "Postcode",
    "Huisnummer",
    "Toevoeging",
    "BSN",
    "Diagnose",
    "ASA",
    "Opmerking",
    "Bezwaar",
  ];
  const rows = list.map((identity, i) => {
    const t = identity.typed;
    return [
      t.mrn,
      t.birthName,
      t.initial,
      i === INVALID ? INVALID_DATE : t.birthDate,
      t.sex === "1" ? "man" : "vrouw",
      t.postcode,
      t.houseNumber,
      t.houseNumberAddition,
      t.bsn,
      i % 2 ? "Knieartrose" : "Heupartrose",
      "II",
      // A quoted field with the delimiter and a quote in it.
      i === 0 ? 'controle; "na" zes weken' : "geen bijzonderheden",
      i === OBJECTING ? "ja" : "nee",
    ];
  });
  return csvFile(header, rows);
}

const FILE = { name: "export-epd.csv", mimeType: "text/csv", buffer: extract(identities) };

let chain, chrome, page;

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});

after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const text = (selector) => page.textContent(selector);

test("a new user's extract: read in the browser, mapped, checked, delivered once despite a lost answer", async () => {
  page = await chrome.newPage();
  await openWorkbench(page, chain);
  const before = (await chain.records()).length;

  // 1. Read as Windows-1252 with `;`; nothing uploaded.
  await openFile(page, FILE);
  const info = await text("#file-info");
  assert.match(info, /^12 rijen, 13 kolommen; gelezen als Windows-1252, scheidingsteken ";"/);

  // 2. The mapping guessed from the header, then the BSN switched off.
  const roles = await page.$$eval("#mapping select", (selects) => selects.map((s) => s.value));
  assert.deepEqual(roles, [
    "mrn",
    "birthName",
    "initial",
    "birthDate",
    "sex",
    "postcode",
    "houseNumber",
    "houseNumberAddition",
    "bsn",
    "clinical",
    "clinical",
    "clinical",
    "optOut",
  ]);
  await page.selectOption("#mapping select[data-column='8']", "");
  // The preview shows the mapped columns of the first rows, on this screen only.
  assert.equal(await page.$$eval("#preview tbody tr", (rows) => rows.length), 5);
  assert.ok(!(await page.$$eval("#preview thead th", (h) => h.map((x) => x.textContent))).includes("BSN"));
  // The quoted field with `;` and `""` arrives as one value.
  assert.ok((await text("#preview tbody tr:first-child")).includes('controle; "na" zes weken'));
  await page.click("#save-preset");
  const preset = await page.evaluate(() =>
    JSON.parse(localStorage.getItem("pseudoform-workbench:preset:oin:00000001000000001000|kwaliteitsregistratie-a")),
  );
  assert.deepEqual(preset.BSN, { role: "" });
  assert.deepEqual(preset.Diagnose, { role: "clinical", name: "diagnose" });
  assert.deepEqual(preset["Patiëntnummer"], { role: "mrn" });
  // The preset applies to the next file with these columns: the BSN stays off.
  await openFile(page, { ...FILE, name: "volgende.csv", buffer: extract(OTHERS.slice(0, 5)) });
  assert.equal(await page.$eval("#mapping select[data-column='8']", (s) => s.value), "");
  await openFile(page, FILE);
  assert.equal(await page.$eval("#mapping select[data-column='8']", (s) => s.value), "");

  // 3. Every row checked: one invalid (row 5 of the file), one objecting; the report names row, field and rule.
  await page.click("#check");
  assert.equal(
    await text("#check-summary"),
    "12 rijen: 10 te versturen, 1 ongeldig (niet verstuurd), 1 met bezwaar (niet verstuurd).",
  );
  const report = await page.$$eval("#report tbody tr", (rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent)),
  );
  assert.deepEqual(report, [
    [String(INVALID + 2), "Geboortedatum", "calendar", "Geboortedatum bestaat niet in de kalender."],
  ]);
  const download = page.waitForEvent("download");
  await page.click("#download-report");
  const reportFile = await readFile(await (await download).path(), "utf8");
  assert.equal(
    reportFile,
    `\uFEFFrij;veld;regel;code;melding\r\n${INVALID + 2};Geboortedatum;calendar;birthDate.calendar;Geboortedatum bestaat niet in de kalender.\r\n`,
  );
  assert.ok(!reportFile.includes(INVALID_DATE) && !reportFile.includes(identities[INVALID].typed.birthName));

  // 4. Delivered in batches of four; the answer of the first batch is lost on the way back.
  await page.fill("#chunk", String(CHUNK));
  chain.registryProxy.setMode("dropAnswer");
  const stopped = await runToEnd(page);
  chain.registryProxy.setMode("pass");
  assert.equal(stopped.kind, "error", stopped.text);
  assert.match(stopped.text, /registry\.unreachable/);
  // The registry did store that batch; the checkpoint does not know it.
  assert.equal((await chain.records()).length, before + CHUNK);
  const checkpoint = await page.evaluate(() =>
    JSON.parse(
      localStorage.getItem("pseudoform-workbench:checkpoint:oin:00000001000000001000|kwaliteitsregistratie-a"),
    ),
  );
  assert.deepEqual(checkpoint.chunks, {});
  assert.equal(checkpoint.total, VALID);
  assert.equal(checkpoint.finished, false);
  // From now on the checkpoint's mapping holds for this file.
  assert.equal(await text("#start"), "Hervatten");
  assert.equal(await page.isDisabled("#mapping select[data-column='0']"), true);

  // Another file is refused while this delivery is unfinished.
  await page.reload();
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
  await openFile(page, { ...FILE, name: "ander.csv", buffer: extract(identities.slice(0, 5)) });
  assert.match(await text("#file-info"), /onderbroken aanlevering van een ander bestand/);
  assert.equal(await page.isHidden("#step-run"), true);

  // After the reload the same file resumes: the lost batch again under its id, then the rest.
  await openFile(page, FILE);
  assert.match(await text("#run-status"), /^Hervatten: 0 van 10 rijen/);
  assert.equal(await page.isDisabled("#mapping select[data-column='0']"), true);
  // Mid-run (the first resumed batch done) for the README.
  const shot = page
    .waitForFunction(() => document.getElementById("progress").value >= 4, undefined, { timeout: 60_000 })
    .then(async () => {
      await mkdir(join(ROOT, "docs", "screenshots"), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    });
  const resumed = await runToEnd(page);
  await shot;
  assert.equal(resumed.kind, "done", resumed.text);
  assert.match(
    resumed.text,
    /^Klaar: 10 rijen afgeleverd \(waarvan 4 al eerder opgeslagen, niet dubbel\), 0 geweigerd, 1 ongeldig, 1 met bezwaar/,
  );
  assert.equal(await text("#progress-text").then((t) => t.split(" · ")[0]), "10 van 10 rijen");
  const records = await chain.records();
  assert.equal(records.length, before + VALID, "exactly the valid, non-objecting rows are stored");
  // What arrived: pseudonyms (NGGV, RGG, MRN and R's key id) and the mapped clinical columns only.
  for (const record of records.slice(0, VALID)) {
    assert.deepEqual(Object.keys(record.data).sort(), ["asa", "diagnose", "opmerking"]);
    assert.ok(record.pseudonyms.some((l) => l.startsWith("NGGV:")));
    assert.ok(!record.pseudonyms.some((l) => l.startsWith("B:")), "no BSN pseudonym: the column was not mapped");
  }
  assert.ok(records.some((r) => r.data.opmerking === 'controle; "na" zes weken'));
  const done = await page.evaluate(() =>
    JSON.parse(
      localStorage.getItem("pseudoform-workbench:checkpoint:oin:00000001000000001000|kwaliteitsregistratie-a"),
    ),
  );
  assert.equal(done.finished, true);
  assert.deepEqual(
    Object.values(done.chunks).flatMap((c) => c.rows),
    identities.map((_, i) => i + 2).filter((r) => r !== INVALID + 2 && r !== OBJECTING + 2),
  );
  const statuses = Object.values(done.chunks).flatMap((c) => c.receipts.map((r) => r[1]));
  assert.deepEqual(statuses, [...Array(CHUNK).fill("alreadyStored"), ...Array(VALID - CHUNK).fill("stored")]);

  // The whole file delivered again after another reload: the same batch ids, nothing stored twice.
  await page.reload();
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
  await openFile(page, FILE);
  assert.match(await text("#run-status"), /^Dit bestand is al afgeleverd/);
  const again = await runToEnd(page);
  assert.equal(again.kind, "done", again.text);
  assert.match(again.text, /^Klaar: 10 rijen afgeleverd \(waarvan 10 al eerder opgeslagen, niet dubbel\)/);
  assert.equal((await chain.records()).length, before + VALID);
  // No error on the page but the browser's note of the answer the proxy dropped.
  assert.deepEqual(
    chrome.errors.filter((e) => !/^Failed to load resource: net::ERR_EMPTY_RESPONSE/.test(e)),
    [],
  );
});

/** The needles of a list of identities, by the page's own module. */
async function needlesOfAll(list) {
  const derived = await derivedForms(
    page,
    list.map((i) => i.typed),
    TYPES,
  );
  return needleIndex(
    new Set(list.flatMap((identity, k) => needlesOf(identity, derived[k].normalised, derived[k].inputs))),
  );
}

/**
 * A run to a download of `mode` in a new page, the BSN column left unused and 5 rows per chunk:
 * the registry's record count and the browser's request count before it, and its outcome.
 * @param {"csv" | "fhir"} mode
 */
async function downloadRun(mode) {
  page = await chrome.newPage();
  await openWorkbench(page, chain);
  const before = (await chain.records()).length;
  await openFile(page, FILE);
  await page.selectOption("#mapping select[data-column='8']", "");
  await page.check(`input[name=mode][value=${mode}]`);
  await page.fill("#chunk", "5");
  const sent = chrome.requests.length;
  const outcome = await runToEnd(page);
  assert.equal(outcome.kind, "done", outcome.text);
  return { before, sent, outcome };
}

test("download instead of delivery: a CSV of pseudonyms and the clinical columns, nothing sent to the registry", async () => {
  const { before, sent, outcome } = await downloadRun("csv");
  assert.match(outcome.text, /^Klaar: 10 rijen gepseudonimiseerd, 0 geweigerd, 1 ongeldig, 1 met bezwaar/);
  const download = page.waitForEvent("download");
  await page.click("#download-output");
  const csv = await readFile(await (await download).path(), "utf8");
  const lines = csv
    .replace(/^\uFEFF/, "")
    .trimEnd()
    .split("\r\n");
  assert.equal(
    lines[0],
    "row;recipientOrganization;recipientScope;methodVersion;record;encryptedBlindFactors;reversible;diagnose;asa;opmerking",
  );
  assert.equal(lines.length, 1 + VALID);
  assert.deepEqual(
    lines.slice(1).map((l) => Number(l.split(";")[0])),
    identities.map((_, i) => i + 2).filter((r) => r !== INVALID + 2 && r !== OBJECTING + 2),
  );
  for (const line of lines.slice(1)) {
    const [, organization, scope, version, record, sealed, reversible] = line.split(";");
    assert.deepEqual([organization, scope], [chain.urls.recipientA.organization, chain.urls.recipientA.scope]);
    assert.equal(version, "1");
    assert.equal(record.split(".").length, 5, "a compact JWE");
    assert.equal(sealed.split(".").length, 5, "a compact JWE");
    assert.equal(reversible.split(".").length, 3, "kid.enc.ct");
  }
  assert.deepEqual(scan(Buffer.from(csv, "utf8"), await needlesOfAll(identities)).leaks, []);
  // Nothing went to the registry's batch endpoint, and no checkpoint was kept.
  assert.ok(!chrome.requests.slice(sent).some((r) => r.url.includes("/api/batches")));
  assert.equal((await chain.records()).length, before);
  assert.equal(
    await page.evaluate(() => Object.keys(localStorage).filter((k) => k.includes(":checkpoint:")).length),
    0,
  );
});

test("download as FHIR: one delivery Bundle per batch, valid R4 by an independent validator, no identifying element", async () => {
  const { before, sent } = await downloadRun("fhir");
  const download = page.waitForEvent("download");
  await page.click("#download-output");
  const saved = await download;
  assert.equal(saved.suggestedFilename(), "gepseudonimiseerd.fhir.ndjson");
  const ndjson = await readFile(await saved.path(), "utf8");
  const lines = ndjson.trimEnd().split("\n");
  // Ten sendable rows in chunks of five: two Bundles.
  assert.equal(lines.length, 2);
  const dir = await mkdtemp(join(tmpdir(), "workbench-fhir-"));
  const files = [];
  for (const [k, line] of lines.entries()) {
    const bundle = JSON.parse(line);
    assert.equal(bundle.resourceType, "Bundle");
    assert.equal(bundle.type, "transaction");
    assert.match(bundle.identifier.value, new RegExp(`^wb-[0-9a-f]{16}-${k}$`));
    const patients = bundle.entry.filter((e) => e.resource.resourceType === "Patient");
    assert.equal(patients.length, 5);
    for (const { resource } of patients) {
      assert.deepEqual(Object.keys(resource).sort(), ["identifier", "meta", "resourceType"]);
      assert.deepEqual(
        resource.identifier.map((i) => i.system.split(":")[2]),
        ["record", "blind-factors", "reversible"],
      );
    }
    const observations = bundle.entry.filter((e) => e.resource.resourceType === "Observation");
    assert.equal(observations.length, 5 * 3, "asa, diagnose and opmerking per Patient");
    files.push(join(dir, `bundle-${k}.json`));
    await writeFile(files.at(-1), line);
  }
  // The independent validator (@medplum/core with the R4 definitions) accepts both.
  execFileSync(process.execPath, [join(ROOT, "scripts", "fhir-validate.mjs"), ...files], { stdio: "pipe" });
  await rm(dir, { recursive: true, force: true });
  assert.deepEqual(scan(Buffer.from(ndjson, "utf8"), await needlesOfAll(identities)).leaks, []);
  assert.ok(!chrome.requests.slice(sent).some((r) => r.url.includes("/api/batches") || r.url.includes("/fhir")));
  assert.equal((await chain.records()).length, before);
});

test("pause holds the run after the chunk in flight, cancel stops it, and the same file resumes to exactly its rows", async () => {
  const file = { ...FILE, name: "tweede-export.csv", buffer: extract(OTHERS) };
  page = await chrome.newPage();
  await openWorkbench(page, chain);
  const before = (await chain.records()).length;
  await openFile(page, file);
  await page.selectOption("#mapping select[data-column='8']", "");
  await page.fill("#chunk", "2");
  // A slow TTP, so that there is time to press the buttons.
  chain.ttpProxy.state.slowMs = 150;
  chain.ttpProxy.setMode("slow");
  try {
    await page.evaluate(() => delete document.getElementById("run-status").dataset.kind);
    await page.click("#start");
    const progressed = (n) =>
      page.waitForFunction((n) => document.getElementById("progress").value >= n, n, { timeout: 60_000 });
    await progressed(2);
    await page.click("#pause");
    assert.equal(await text("#run-status"), "Gepauzeerd na de batch die nu loopt.");
    // The chunk in flight ends; then nothing moves.
    await page.waitForTimeout(3000);
    const held = await page.evaluate(() => document.getElementById("progress").value);
    const stored = (await chain.records()).length;
    await page.waitForTimeout(2000);
    assert.equal(await page.evaluate(() => document.getElementById("progress").value), held);
    assert.equal((await chain.records()).length, stored);
    assert.match(await text("#progress-text"), /gepauzeerd$/);
    assert.ok(held < VALID);
    await page.click("#pause");
    await progressed(held + 2);
    await page.click("#cancel");
    await page.waitForFunction(() => document.getElementById("run-status").dataset.kind === "cancelled", undefined, {
      timeout: 60_000,
    });
    assert.match(await text("#run-status"), /^Afgebroken\./);
  } finally {
    chain.ttpProxy.setMode("pass");
  }
  const partial = (await chain.records()).length - before;
  assert.ok(partial < VALID, `${partial} rows stored before the cancel`);
  await page.reload();
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
  await openFile(page, file);
  assert.match(await text("#run-status"), /^Hervatten: /);
  const resumed = await runToEnd(page);
  assert.equal(resumed.kind, "done", resumed.text);
  assert.equal((await chain.records()).length, before + VALID);
});

test("an XLSX workbook: date cells, number cells, a boolean opt-out and an unclear one, delivered; a large sheet read without a worker", async () => {
  const rows = [
    [
      "Patiëntnummer",
      "Geboortenaam",
      "Voorletter",
      "Geboortedatum",
      "Geslacht",
      "Postcode",
      "Huisnummer",
      "Diagnose",
      "Bezwaar",
    ],
    ...IN_WORKBOOK.map(({ typed: t, date }, k) => [
      t.mrn,
      t.birthName,
      t.initial,
      { value: new Date(Date.UTC(date.year, date.month - 1, date.day)), type: Date, format: "dd-mm-yyyy" },
      t.sex === "1" ? "man" : "vrouw",
      t.postcode,
      Number(t.houseNumber),
      "Heupartrose",
      // A boolean objection; an unclear value leaves its row out too.
      k === 2 ? true : k === 4 ? "misschien" : false,
    ]),
  ];
  const buffer = await writeExcelFile(rows).toBuffer();
  page = await chrome.newPage();
  await openWorkbench(page, chain);
  // A sheet over 512 KiB, which read-excel-file alone would inflate in a blob: worker the CSP refuses.
  const large = [["Geboortenaam", "Voorletter", "Diagnose"]];
  for (let i = 0; i < 30_000; i++) large.push([`Naam${i}`, "J", `Heupartrose ${i}`]);
  await openFile(page, {
    name: "groot.xlsx",
    mimeType: "application/octet-stream",
    buffer: await writeExcelFile(large).toBuffer(),
  });
  assert.equal(
    await text("#file-info"),
    "30000 rijen, 3 kolommen; gelezen als Excel-werkmap (eerste blad). Het bestand is niet verstuurd.",
  );
  const before = (await chain.records()).length;
  await openFile(page, {
    name: "export.xlsx",
    mimeType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    buffer,
  });
  assert.equal(
    await text("#file-info"),
    "6 rijen, 9 kolommen; gelezen als Excel-werkmap (eerste blad). Het bestand is niet verstuurd.",
  );
  assert.deepEqual(await page.$$eval("#mapping select", (selects) => selects.map((s) => s.value)), [
    "mrn",
    "birthName",
    "initial",
    "birthDate",
    "sex",
    "postcode",
    "houseNumber",
    "clinical",
    "optOut",
  ]);
  // The date cell arrives as a date the method reads.
  const { date } = IN_WORKBOOK[0];
  const shown = `${String(date.day).padStart(2, "0")}-${String(date.month).padStart(2, "0")}-${date.year}`;
  assert.ok((await text("#preview tbody tr:first-child")).includes(shown));
  await page.click("#check");
  assert.equal(
    await text("#check-summary"),
    "6 rijen: 4 te versturen, 1 ongeldig (niet verstuurd), 1 met bezwaar (niet verstuurd).",
  );
  assert.deepEqual(
    await page.$$eval("#report tbody tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
    [
      [
        "6",
        "Bezwaar",
        "unknownValue",
        "Bezwaar heeft een onbekende waarde (gebruik ja of nee); de rij is niet verstuurd.",
      ],
    ],
  );
  const outcome = await runToEnd(page);
  assert.equal(outcome.kind, "done", outcome.text);
  assert.equal((await chain.records()).length, before + 4);
});

test("no identifying value of any row of any extract left the browser or reached a server, a database, a log or the page's storage", async () => {
  // No page error or CSP refusal in any test, but the browser's note of the answer the proxy dropped.
  assert.deepEqual(
    chrome.errors.filter((e) => !/^Failed to load resource: net::ERR_EMPTY_RESPONSE/.test(e)),
    [],
  );
  const all = [...identities, ...OTHERS, ...IN_WORKBOOK];
  const typed = all.map((i, k) => (k < 24 && k % 12 === INVALID ? { ...i.typed, birthDate: INVALID_DATE } : i.typed));
  const derived = await derivedForms(page, typed, TYPES);
  const needles = new Set([INVALID_DATE]);
  all.forEach((identity, k) => {
    for (const n of needlesOf(identity, derived[k].normalised, derived[k].inputs)) needles.add(n);
  });
  const index = needleIndex(needles);
  // The control: the preview on the screen does show values, and the scan finds them.
  assert.ok(scan(Buffer.from(await page.content(), "utf8"), index).leaks.length > 0, "the scan finds shown values");
  // Every request of the browser (its URL and body), to every origin.
  assert.ok(chrome.requests.some((r) => r.url.includes("/api/batches")));
  assert.ok(chrome.requests.some((r) => r.url.includes("/v1/evaluate")));
  for (const r of chrome.requests) {
    const { leaks } = scan(Buffer.from(`${r.method} ${r.url}\n${r.body}`, "utf8"), index);
    assert.deepEqual(leaks, [], `${r.method} ${r.url}`);
  }
  // What the servers received and kept.
  for (const [name, bytes] of await chainHaystacks(chain, [chain.ttpProxy, chain.registryProxy])) {
    assert.deepEqual(scan(bytes, index).leaks, [], name);
  }
  // The page's storage: the preset and the checkpoint, no value.
  const storage = await page.evaluate(
    () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
  );
  assert.deepEqual(scan(Buffer.from(storage, "utf8"), index).leaks, []);
  assert.ok(storage.includes("pseudoform-workbench:checkpoint:"));
});
