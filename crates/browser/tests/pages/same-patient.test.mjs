// The same patient, the same definitive pseudonyms, whichever way a record
// comes in (issue 14's Tests): one identity delivered once through the demo
// form (the clinician logged in at the provider portal, provider
// ura:00000001), once through the processors' workbench (the same login,
// in Web Workers), and once through the native command `pseudoform batch
// --deliver` as the demo's processor, which acts for the same provider
// ura:00000001 (its processor-connection.toml). Registry A stores three
// records whose definitive pseudonyms are equal per type: NGGV and RGG,
// which no provider enters, and MRN too, since all three act for the same
// provider (MRN's pseudonym depends on it). The workbench and the command
// read the same extract.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fillForm, launch, openBound, submitForm } from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";

const PATIENT = {
  birthName: "van der Berg-Jansen",
  initial: "J.P.",
  birthDate: "01-02-1980",
  sex: "2",
  postcode: "1234 ab",
  houseNumber: "12",
  houseNumberAddition: "a",
  mrn: "PAT-0001",
};

/** The extract of the workbench and the command: the patient, written as an EPD exports it. */
const EXTRACT = Buffer.from(
  [
    "Geboortenaam;Voorletters;Geboortedatum;Geslacht;Postcode;Huisnummer;Toevoeging;Patiëntnummer;Diagnose;ASA;Opmerking",
    // Other spellings of the same values: the method's normalisation makes them one.
    "VAN DER BERG-JANSEN;JP;1980-02-01;vrouw;1234AB;12;A;PAT-0001;Heupartrose;II;via extract",
  ].join("\r\n") + "\r\n",
  "utf8",
);

const MAPPING = `encoding = "utf-8"
delimiter = ";"

[identity]
birthName = "Geboortenaam"
initial = "Voorletters"
birthDate = "Geboortedatum"
sex = "Geslacht"
postcode = "Postcode"
houseNumber = "Huisnummer"
houseNumberAddition = "Toevoeging"
mrn = "Patiëntnummer"

[data]
diagnose = "Diagnose"
asa = "ASA"
opmerking = "Opmerking"
`;

let chain, chrome, dir;

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
  dir = await mkdtemp(join(tmpdir(), "pseudoform-same-patient-"));
});

after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The definitive pseudonyms of a record by type (`TYPE:value` labels; R is the provider's envelope, not one). */
const byType = (record) =>
  Object.fromEntries(record.pseudonyms.filter((l) => !l.startsWith("R:")).map((l) => [l.slice(0, l.indexOf(":")), l]));

test("the same patient through the form, the workbench and pseudoform batch: the same definitive pseudonyms per type", async () => {
  const before = (await chain.records()).length;

  // 1. The demo form, as the clinician fills it.
  const form = await openBound(chrome.newPage, chain.formUrl);
  await fillForm(form, PATIENT, "via formulier");
  const submitted = await submitForm(form);
  assert.equal(submitted.kind, "success", submitted.text);
  assert.equal((await chain.records()).length, before + 1);

  // 2. The workbench, the same extract as the command's.
  const page = await chrome.newPage();
  await page.goto(`${chain.formUrl}workbench/`);
  await page.waitForSelector("#page-status[data-kind=ready]", { timeout: 30_000 });
  await page.setInputFiles("#file", { name: "patient.csv", mimeType: "text/csv", buffer: EXTRACT });
  await page.waitForSelector("#file-info[data-kind=ready]");
  await page.click("#start");
  await page.waitForFunction(
    () => ["done", "error", "cancelled"].includes(document.getElementById("run-status").dataset.kind),
    undefined,
    { timeout: 120_000 },
  );
  assert.match(await page.textContent("#run-status"), /^Klaar: 1 rijen afgeleverd/);
  assert.equal(await page.$eval("#worker-status", (s) => s.dataset.kind), "workers");
  assert.equal((await chain.records()).length, before + 2);

  // 3. The native command, as the demo's processor for the same provider.
  const extract = join(dir, "patient.csv");
  const mapping = join(dir, "mapping.toml");
  await writeFile(extract, EXTRACT);
  await writeFile(mapping, MAPPING);
  const { stdout } = await promisify(execFile)(
    join(ROOT, "target", "release", "pseudoform"),
    [
      "batch",
      "--connection",
      join(chain.dir, "processor-connection.toml"),
      "--mapping",
      mapping,
      "--deliver",
      "--report",
      join(dir, "report.csv"),
      "--checkpoint",
      join(dir, "checkpoint.json"),
      extract,
    ],
    { cwd: dir, timeout: 120_000 },
  );
  const summary = JSON.parse(stdout);
  assert.equal(summary.stored, 1, stdout);

  // Three records of the one patient; the definitive pseudonyms equal per type.
  const all = await chain.records();
  const records = all.slice(0, all.length - before).reverse();
  assert.equal(records.length, 3);
  // In the order they came: the form's, the workbench's, the command's.
  assert.deepEqual(
    records.map((r) => r.data.opmerking),
    ["via formulier", "via extract", "via extract"],
  );
  const [a, b, c] = records.map(byType);
  for (const type of ["NGGV", "RGG", "MRN"]) {
    assert.ok(a[type], `the form made ${type}`);
    assert.equal(b[type], a[type], `${type}: the workbench as the form`);
    assert.equal(c[type], a[type], `${type}: the command as the form`);
  }
  // Every type the three have in common is equal too.
  const common = Object.keys(a).filter((t) => t in b && t in c);
  assert.ok(common.length >= 3);
  for (const type of common) assert.ok(a[type] === b[type] && b[type] === c[type], type);
});
