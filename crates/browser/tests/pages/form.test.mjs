// The drop-in form binding in real headless Chromium against the real chain
// (pseudoform-demo: TTP + registries on loopback), with real proxies to make
// the faults: every fault keeps the form intact, sends nothing identifying,
// stores nothing, and a retry after recovery succeeds.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { fillForm, launch, submitForm } from "./support.mjs";
import { startChain } from "./chain.mjs";

const PATIENT = {
  birthName: "van der Berg-Jansen",
  initial: "J.P.",
  birthDate: "01-02-1980",
  sex: "2",
  postcode: "1234 ab",
  houseNumber: "12",
  houseNumberAddition: "a",
  bsn: "999990007",
  mrn: "PAT-0001",
};
/** Forms of the identity that must never appear in any request. */
const SECRETS = [
  "Berg-Jansen",
  "BERGJANS",
  "BERGJANSEN",
  "01-02-1980",
  "19800201",
  "1234 ab",
  "1234AB",
  "999990007",
  "PAT-0001",
];

let chain, chrome, page;

before(async () => {
  chain = await startChain();
  chrome = await launch();
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

async function openForm() {
  page = await chrome.newPage();
  chrome.requests.length = 0;
  await page.goto(chain.formUrl);
  await page.waitForSelector("button[type=submit]:not([disabled])");
  // Short timeouts keep the slow-TTP case quick.
  await page.evaluate(() => {
    document.querySelector("form").dataset.pseudoformTimeoutMs = "1500";
  });
}

const fill = (identity) => fillForm(page, identity);
const submitAndWait = () => submitForm(page);

const formValues = () =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll("[data-pseudoform-field]")]
        .filter((e) => e.type !== "checkbox")
        .map((e) => [e.dataset.pseudoformField, e.value]),
    ),
  );

function assertNoIdentityLeft() {
  for (const request of chrome.requests) {
    for (const secret of SECRETS) {
      assert.ok(!request.url.includes(secret), `identity in URL ${request.url}`);
      assert.ok(!request.body.includes(secret), `identity in a request body to ${request.url}`);
    }
  }
}

const posts = (predicate) => chrome.requests.filter((r) => r.method === "POST" && predicate(new URL(r.url)));
const registryPosts = () => posts((u) => u.pathname === "/api/submissions");

describe("the demo form against the real chain", () => {
  beforeEach(openForm);

  test("a registration arrives in the registry with pseudonyms only", async () => {
    const before = (await chain.records()).length;
    await fill(PATIENT);
    const status = await submitAndWait();
    assert.equal(status.kind, "success", status.text);
    const records = await chain.records();
    assert.equal(records.length, before + 1);
    const record = records[0]; // newest first
    const types = record.pseudonyms.map((label) => label.split(":")[0]).sort();
    assert.deepEqual(types, ["A", "C", "GG", "MRN", "NGG", "NGGV", "RGG", "sNGG", "sNGGV"]);
    for (const label of record.pseudonyms) assert.match(label, /^[A-Za-z]+:v1:[A-Za-z0-9_-]{43}=$/);
    assert.equal(record.data.diagnose, "Heupartrose");
    const stored = JSON.stringify(record);
    for (const secret of SECRETS) assert.ok(!stored.includes(secret), "identity stored");
    // The form is cleared for the next patient.
    assert.equal((await formValues()).birthName, "");
    assertNoIdentityLeft();
  });

  test("the same person registered twice gets the same NGGV pseudonym", async () => {
    await fill(PATIENT);
    assert.equal((await submitAndWait()).kind, "success");
    await fill({ ...PATIENT, birthName: "Van der  Berg-Jansen", birthDate: "1980-02-01", postcode: "1234AB" });
    assert.equal((await submitAndWait()).kind, "success");
    const records = await chain.records();
    const nggv = (r) => r.pseudonyms.find((l) => l.startsWith("NGGV:"));
    assert.equal(nggv(records[0]), nggv(records[1]));
    assert.notEqual(records[0].id, records[1].id);
  });

  test("invalid fields are shown inline in Dutch and nothing is sent", async () => {
    const ttpBefore = chain.ttpProxy.state.requests.length;
    await fill({ ...PATIENT, bsn: "123456789", birthDate: "31-02-1980" });
    const status = await submitAndWait();
    assert.equal(status.kind, "error");
    const message = await page.textContent("[data-pseudoform-error-for=bsn]");
    assert.equal(message, "BSN voldoet niet aan de elfproef.");
    assert.equal(
      await page.textContent("[data-pseudoform-error-for=birthDate]"),
      "Geboortedatum bestaat niet in de kalender.",
    );
    assert.equal(await page.getAttribute("#bsn", "aria-invalid"), "true");
    assert.equal(chain.ttpProxy.state.requests.length, ttpBefore, "a request reached the TTP");
    assert.equal(registryPosts().length, 0);
    assert.equal((await formValues()).bsn, "123456789");
  });

  test("with the objection ticked, no request leaves the page", async () => {
    await fill(PATIENT);
    await page.check("[data-pseudoform-field=optOut]");
    const count = chrome.requests.length;
    const ttpBefore = chain.ttpProxy.state.requests.length;
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "optout");
    await page.waitForTimeout(300);
    assert.equal(chrome.requests.length, count);
    assert.equal(chain.ttpProxy.state.requests.length, ttpBefore);
    assert.match(await page.textContent("[data-pseudoform-status]"), /bezwaar/);
  });

  test("policy first: a type the registry may not receive is never made", async () => {
    const ttpBefore = chain.ttpProxy.state.requests.length;
    const result = await page.evaluate(
      async ([ttp, recipient]) => {
        const m = await import("/pkg/index.js");
        const { accessToken } = await (await fetch("/api/form-config")).json();
        const r = await m.pseudonymise(
          { bsn: "999990007", birthName: "Jansen", birthDate: "1-2-1980", sex: "m", initial: "P" },
          {
            ttp,
            accessToken,
            recipientOrganization: recipient.organization,
            recipientScope: recipient.scope,
            types: ["B", "NGGV"],
          },
        );
        return { types: r.pseudonyms.map((p) => p.type), skipped: r.skipped.map((s) => `${s.type}:${s.code}`) };
      },
      [chain.ttpProxy.url, chain.urls.recipientA],
    );
    assert.deepEqual(result.types, ["NGGV"]);
    assert.deepEqual(result.skipped, ["B:type.notAllowed"]);
    const sent = chain.ttpProxy.state.requests.slice(ttpBefore).filter((r) => r.method === "POST");
    assert.equal(sent.length, 1);
    assert.deepEqual(
      JSON.parse(sent[0].body).records[0].items.map((i) => i.type),
      ["NGGV"],
    );
  });

  test("an answer lost after the registry stored the record: the retry does not store it twice", async () => {
    const before = (await chain.records()).length;
    await fill(PATIENT);
    chain.registryProxy.setMode("dropAnswer");
    let status;
    try {
      status = await submitAndWait();
    } finally {
      chain.registryProxy.setMode("pass");
    }
    assert.equal(status.kind, "error");
    assert.ok(status.retry);
    assert.equal((await chain.records()).length, before + 1, "the registry did store it");
    await page.click("[data-pseudoform-status] button");
    await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "success");
    assert.equal((await chain.records()).length, before + 1, "stored twice");
    assertNoIdentityLeft();
  });

  test("binding a form twice keeps one binding, and clinical data never includes an identifying input", async () => {
    const before = (await chain.records()).length;
    const outcome = await page.evaluate(async () => {
      const m = await import("/pkg/index.js");
      const form = document.querySelector("form");
      // A page script adds a named identifying input after binding.
      const extra = document.createElement("input");
      extra.name = "geboortedatum_extra";
      extra.dataset.pseudoformField = "birthDate";
      extra.value = "01-02-1980";
      form.append(extra);
      // The one-tag bundle bound this form; the module API must not bind it again.
      let refused;
      try {
        m.protectForm(form);
      } catch (e) {
        refused = e.code;
      }
      // Within one copy of the module, binding twice returns the same binding.
      const other = document.createElement("form");
      document.body.append(other);
      const same = m.protectForm(other) === m.protectForm(other);
      other.remove();
      return { refused, same };
    });
    assert.deepEqual(outcome, { refused: "config.alreadyBound", same: true });
    await fill(PATIENT);
    assert.equal((await submitAndWait()).kind, "success");
    assert.equal((await chain.records()).length, before + 1, "one submit, one record");
    const record = (await chain.records())[0];
    assert.deepEqual(Object.keys(record.data).sort(), ["asa", "diagnose", "ingreepdatum", "opmerking"]);
    assertNoIdentityLeft();
  });

  const FAULTS = [
    ["the TTP unreachable", "ttp", "down", /niet bereikbaar/],
    ["the TTP answering 500", "ttp", "error500", /gaf een fout/],
    ["the TTP too slow", "ttp", "slow", /te traag/],
    ["a malformed TTP answer", "ttp", "malformed", /onbruikbaar antwoord/],
    ["a JWE for another registry", "ttp", "wrongRecipient", /registratie wees de aanlevering af/],
    ["the TTP refusing the form's origin (CORS)", "ttp", "noCors", /niet bereikbaar/],
    ["the registry down", "registry", "downForPost", /registratie is niet bereikbaar/],
  ];
  for (const [name, service, mode, message] of FAULTS) {
    test(`fails closed and keeps the form: ${name}; a retry succeeds after recovery`, async () => {
      const proxy = service === "ttp" ? chain.ttpProxy : chain.registryProxy;
      const before = (await chain.records()).length;
      await fill(PATIENT);
      const typed = await formValues();
      proxy.setMode(mode);
      try {
        const status = await submitAndWait();
        assert.equal(status.kind, "error");
        assert.match(status.text, message);
        assert.ok(status.retry, "a retry is offered");
        assert.deepEqual(await formValues(), typed, "the form keeps what was typed");
        assert.equal((await chain.records()).length, before, "nothing stored");
        if (service === "ttp" && mode !== "wrongRecipient") {
          assert.equal(registryPosts().length, 0, "nothing half-pseudonymised was submitted");
        }
      } finally {
        proxy.setMode("pass");
      }
      await page.click("[data-pseudoform-status] button");
      await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "success");
      assert.equal((await chain.records()).length, before + 1);
      assertNoIdentityLeft();
    });
  }
});
