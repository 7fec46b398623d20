// The three example forms of www/examples/, written from docs/embedding.md
// alone (radios, a date picker and fieldsets; selects, a textarea and
// checkbox groups; a minimal one on the programmatic API), in real headless
// Chromium under the guide's CSP, served by the real chain: the same patient
// typed into each gives byte-identical definitive pseudonyms, a missing
// required field is refused with every field flagged and nothing sent, and a
// clinical field with several values arrives whole.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fillForm, launch, openBound, submitExample as submit, submitForm } from "./support.mjs";
import { startChain } from "./chain.mjs";

let chain, chrome;

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const url = (name) => `${chain.registryProxy.url}/examples/${name}.html`;
const posts = (path) => chrome.requests.filter((r) => r.method === "POST" && new URL(r.url).pathname === path);

/** One patient, as a clinician types it into each form. */
const PATIENT = {
  birthName: "van der Berg-Jansen",
  initial: "J.P.",
  birthDate: { iso: "1980-02-01", typed: "01-02-1980" },
  sex: "2",
  postcode: "1234 AB",
  mrn: "PAT-0001",
};

/** The forms: how to type the patient (without the fields in `leave`) and the clinical fields. */
const FORMS = {
  operatie: {
    async identity(page, leave = []) {
      for (const id of ["birthName", "initial", "postcode", "mrn"]) {
        if (!leave.includes(id)) await page.fill(`#${id}`, PATIENT[id]);
      }
      if (!leave.includes("birthDate")) await page.fill("#birthDate", PATIENT.birthDate.iso);
      if (!leave.includes("sex")) {
        // Radios group although they have no name: the last one ticked is the only one.
        await page.check("#sex input[value='1']");
        await page.check(`#sex input[value='${PATIENT.sex}']`);
      }
    },
    async clinical(page) {
      await page.fill("#operatiedatum", "2026-11-02");
      await page.check("#zijde input[value=rechts]");
      await page.check("input[name=complicaties][value=wondinfectie]");
      await page.check("input[name=complicaties][value=heroperatie]");
    },
    data: { operatiedatum: "2026-11-02", zijde: "rechts", complicaties: ["wondinfectie", "heroperatie"] },
  },
  poli: {
    async identity(page, leave = []) {
      for (const id of ["birthName", "initial", "postcode", "mrn"]) {
        if (!leave.includes(id)) await page.fill(`#${id}`, PATIENT[id].toUpperCase());
      }
      if (!leave.includes("birthDate")) await page.fill("#birthDate", PATIENT.birthDate.typed);
      if (!leave.includes("sex")) await page.selectOption("#sex", PATIENT.sex);
      await page.fill("#houseNumber", "12");
    },
    async clinical(page) {
      await page.selectOption("#controle", "zes weken");
      await page.selectOption("#pijn", "3");
      await page.check("input[name=klachten][value=instabiliteit]");
      await page.check("input[name=klachten][value=stijfheid]");
      await page.fill("#toelichting", "loopt met stok\nverder goed");
    },
    data: {
      controle: "zes weken",
      pijn: "3",
      klachten: ["stijfheid", "instabiliteit"],
      toelichting: "loopt met stok\nverder goed",
    },
  },
  minimaal: {
    async identity(page, leave = []) {
      for (const id of ["birthName", "initial", "postcode", "mrn"]) {
        if (!leave.includes(id)) await page.fill(`#${id}`, ` ${PATIENT[id]} `);
      }
      if (!leave.includes("birthDate")) await page.fill("#birthDate", "1-2-1980");
      if (!leave.includes("sex")) await page.selectOption("#sex", PATIENT.sex);
    },
    async clinical(page) {
      await page.selectOption("#uitkomst", "matig");
      await page.selectOption("#klachten", ["pijn", "stijfheid"]);
    },
    data: { uitkomst: "matig", klachten: ["pijn", "stijfheid"] },
  },
};

async function open(name) {
  if (name === "minimaal") {
    const page = await chrome.newPage();
    await page.goto(url(name));
    await page.waitForSelector("button[type=submit]:not([disabled])");
    return page;
  }
  return openBound(chrome.newPage, url(name));
}

const flagged = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll("[data-pseudoform-error-for]")]
      .filter((e) => !e.hidden)
      .map((e) => e.dataset.pseudoformErrorFor),
  );

describe("the example forms of the guide against the real chain", () => {
  const stored = {};

  for (const name of Object.keys(FORMS)) {
    test(`${name}: a missing required field is refused with every field flagged, and nothing is sent`, async () => {
      const form = FORMS[name];
      const page = await open(name);
      const evaluations = posts("/v1/evaluate").length;
      const submissions = posts("/api/submissions").length;
      await form.identity(page, ["initial", "sex"]);
      if (name === "operatie") {
        // A half-typed birth date in the date picker, no operation date, no side.
        await page.fill("#birthDate", "");
        await page.focus("#birthDate");
        await page.keyboard.type("0102");
      } else {
        await form.clinical(page);
      }
      const status = await submit(page);
      assert.equal(status.kind, "error", status.text);
      const expected = {
        operatie: ["initial", "birthDate", "sex", "operatiedatum", "zijde"],
        poli: ["initial", "sex"],
        minimaal: ["initial", "sex"],
      }[name];
      assert.deepEqual(await flagged(page), expected);
      if (name === "operatie") {
        assert.equal(
          await page.textContent("[data-pseudoform-error-for=birthDate]"),
          "Geboortedatum heeft niet de verwachte vorm.",
        );
        assert.equal(await page.getAttribute("#sex", "aria-invalid"), "true");
        assert.equal(await page.textContent("[data-pseudoform-error-for=zijde]"), "Zijde is niet ingevuld.");
      }
      assert.equal(posts("/v1/evaluate").length, evaluations, "nothing went to the TTP");
      assert.equal(posts("/api/submissions").length, submissions, "nothing went to the registry");
      await page.close();
    });

    test(`${name}: the patient arrives with pseudonyms only, and a multi-value field whole`, async () => {
      const form = FORMS[name];
      const page = await open(name);
      await form.identity(page);
      await form.clinical(page);
      if (name === "operatie") {
        // The identifying radios are in no submission, not even a plain one.
        const plain = await page.evaluate(() => [...new FormData(document.querySelector("form")).keys()]);
        assert.deepEqual(plain.sort(), ["complicaties", "complicaties", "operatiedatum", "zijde"]);
        assert.deepEqual(await page.$$eval("#sex input:checked", (e) => e.map((i) => i.value)), [PATIENT.sex]);
      }
      const status = await submit(page);
      assert.equal(status.kind, "success", status.text);
      if (name !== "minimaal") assert.match(status.text, /Gemaakte pseudoniemen: NGGV, RGG, (A, )?MRN\./);
      const [record] = await chain.records();
      assert.deepEqual(record.data, form.data);
      stored[name] = record.pseudonyms;
      const body = posts("/api/submissions").at(-1).body;
      if (name === "operatie") {
        const original = JSON.parse(body);
        const { blindFactors } = await chain.openSealed(original.encryptedBlindFactors);
        const perType = JSON.stringify({
          ...original,
          record: undefined,
          encryptedBlindFactors: undefined,
          pseudonyms: Object.entries(blindFactors).map(([type, r]) => ({
            type,
            temporaryPseudonym: Buffer.from(
              JSON.stringify({ evaluated_output: original.record, blind_factor: r }),
            ).toString("base64url"),
          })),
        });
        console.log(
          `bytes per submission, NGGV+RGG+MRN: ${Buffer.byteLength(body)} B (per-type packaging of the same record: ${Buffer.byteLength(perType)} B)`,
        );
      }
      for (const secret of ["Berg-Jansen", "BERGJANS", "19800201", "1980-02-01", "1234 AB", "1234AB", "PAT-0001"]) {
        assert.ok(!body.includes(secret), `${secret} in the submission`);
        assert.ok(!JSON.stringify(record).includes(secret), `${secret} stored`);
      }
      await page.close();
    });
  }

  test("the same patient typed into each form has byte-identical definitive pseudonyms", () => {
    const pick = (labels, type) => labels.find((l) => l.startsWith(`${type}:`));
    for (const type of ["NGGV", "RGG", "MRN"]) {
      const labels = Object.values(stored).map((l) => pick(l, type));
      assert.equal(labels.length, 3);
      assert.match(labels[0], new RegExp(`^${type}:v1:[A-Za-z0-9_-]{43}=$`));
      assert.equal(new Set(labels).size, 1, `${type}: ${labels.join(" ")}`);
    }
  });

  test("the demo form gives the same patient the same definitive pseudonyms as the guide's forms", async () => {
    const page = await openBound(chrome.newPage, chain.formUrl);
    const { birthDate, ...rest } = PATIENT;
    await fillForm(page, { ...rest, birthDate: birthDate.typed });
    assert.equal((await submitForm(page)).kind, "success");
    const [record] = await chain.records();
    const pick = (labels, type) => labels.find((l) => l.startsWith(`${type}:`));
    for (const type of ["NGGV", "RGG", "MRN"]) {
      assert.ok(pick(record.pseudonyms, type), `${type} made by the demo form`);
      assert.equal(pick(record.pseudonyms, type), pick(stored.operatie, type), type);
    }
    await page.close();
  });

  test("another sex is another pseudonym; no page broke its CSP", async () => {
    const page = await open("operatie");
    await FORMS.operatie.identity(page);
    await page.check("#sex input[value='1']");
    await FORMS.operatie.clinical(page);
    assert.equal((await submit(page)).kind, "success");
    const [record] = await chain.records();
    const nggv = (labels) => labels.find((l) => l.startsWith("NGGV:"));
    assert.notEqual(nggv(record.pseudonyms), nggv(stored.operatie));
    const violations = chrome.errors.filter((e) => /Content Security Policy|Refused to/i.test(e));
    assert.deepEqual(violations, []);
    await page.close();
  });
});
