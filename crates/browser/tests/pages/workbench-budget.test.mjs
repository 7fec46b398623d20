// The workbench when a run spends the caller's TTP budget (docs/processors.md,
// "The TTP's budget"): the chain gives the provider's browsers 200
// evaluations a minute, and a new user delivers 60 rows in chunks of 20.
// Registry A's form derives 9 pseudonym types a row, so a chunk is 180
// evaluations and one minute holds one chunk: of the three chunks at least
// one finds the budget spent, and the TTP refuses it with 429 and a
// `Retry-After`. The run must wait it out, say so on the progress line, and
// go on to the end, every row stored once, instead of stopping half-way.
//
// Run time: one or two waits of at most a minute each, plus the delivery
// (one to two minutes in all).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./support.mjs";
import { startChain } from "./chain.mjs";
import { generateIdentities } from "./identities.mjs";
import { csvFile, openFile, openWorkbench, runOutcome } from "./workbench-support.mjs";

const ROWS = 60;
const identities = generateIdentities(ROWS, 20261207);

/** The extract: UTF-8, `,`, a header row the workbench maps by itself. */
function extract() {
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
  ];
  const rows = identities.map((identity, i) => {
    const t = identity.typed;
    return [
      `r${i + 2}`,
      t.mrn,
      t.birthName,
      t.initial,
      t.birthDate,
      t.sex === "1" ? "man" : "vrouw",
      t.postcode,
      t.houseNumber,
      t.houseNumberAddition,
      i % 2 ? "Knieartrose" : "Heupartrose",
    ];
  });
  return csvFile(header, rows, { delimiter: ",", eol: "\n", encoding: "utf8" });
}

let chain, chrome;

before(async () => {
  chain = await startChain({ rateLimit: 200 });
  chrome = await launch({ account: chain.urls.account });
});

after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

test("a run that spends the TTP's budget waits as long as the TTP asks, says so, and delivers every row once", async () => {
  const page = await chrome.newPage();
  await openWorkbench(page, chain);
  const all = async () => (await chain.json(`${chain.urls.registryA}/api/records?limit=10000`)).body;
  const before = (await all()).length;

  await openFile(page, { name: "export.csv", mimeType: "text/csv", buffer: extract() });
  await page.click("#check");
  assert.equal(
    await page.textContent("#check-summary"),
    `${ROWS} rijen: ${ROWS} te versturen, 0 ongeldig (niet verstuurd), 0 met bezwaar (niet verstuurd).`,
  );
  await page.fill("#chunk", "20");
  await page.click("#start");

  // The budget runs out on the way: the progress line says the run waits.
  await page.waitForFunction(
    () =>
      /het budget van de pseudonimiseringsdienst is voor nu op: wachten \(\d+ s\)/.test(
        document.getElementById("progress-text").textContent,
      ),
    undefined,
    { timeout: 120_000 },
  );
  const waiting = await page.textContent("#progress-text");
  const seconds = Number(/wachten \((\d+) s\)/.exec(waiting)?.[1]);
  assert.ok(seconds >= 1 && seconds <= 60, `waits ${seconds} s, within the minute's budget`);
  const doneWhileWaiting = await page.evaluate(() => document.getElementById("progress").value);
  assert.ok(doneWhileWaiting < ROWS, `${doneWhileWaiting} rows done when the budget was spent`);

  // Then it goes on by itself to the end.
  const outcome = await runOutcome(page, 240_000);
  assert.equal(outcome.kind, "done", outcome.text);
  assert.doesNotMatch(await page.textContent("#progress-text"), /wachten/);

  // Every row stored once, none twice, none missing.
  const records = await all();
  const stored = records.slice(0, records.length - before).map((r) => r.data.volgnummer);
  assert.equal(stored.length, ROWS);
  assert.deepEqual([...new Set(stored)].sort(), identities.map((_, i) => `r${i + 2}`).sort());
  await page.close();
});
