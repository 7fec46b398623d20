// The drop-in form binding in real headless Chromium against the real chain
// (pseudoform-demo: TTP + registries on loopback), with real proxies to make
// the faults: every fault keeps the form intact, sends nothing identifying,
// stores nothing, and a retry after recovery succeeds.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  fillForm,
  foreignKey,
  launch,
  openBound,
  settled,
  sha256,
  shownErrors,
  statusOf,
  submitForm,
} from "./support.mjs";
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
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

async function openForm() {
  chrome.requests.length = 0;
  page = await openBound(chrome.newPage, chain.formUrl);
  // Short timeouts keep the slow-TTP case quick.
  await page.evaluate(() => {
    document.querySelector("form").dataset.pseudoformTimeoutMs = "1500";
  });
}

const fill = (identity) => fillForm(page, identity);
const submitAndWait = () => submitForm(page);
/** Presses the status line's retry button and waits for the new outcome. */
async function retry() {
  await page.evaluate(() => delete document.querySelector("[data-pseudoform-status]").dataset.kind);
  await page.click("[data-pseudoform-status] button");
  return settled(page);
}

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
const evaluations = () => posts((u) => u.pathname === "/v1/evaluate");

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
    assert.deepEqual(record.data.complicaties, [], "an unticked checkbox group arrives as an empty list");
    const stored = JSON.stringify(record);
    for (const secret of SECRETS) assert.ok(!stored.includes(secret), "identity stored");
    // The form is cleared for the next patient, and says which pseudonyms were made.
    assert.equal((await formValues()).birthName, "");
    assert.match(
      status.text,
      /^Verzonden \(record \d+\)\. Gemaakte pseudoniemen: NGGV, sNGGV, NGG, sNGG, C, RGG, GG, A, MRN, R\./,
    );
    // The record JWE once, with a blind factor per type beside it, sealed
    // to the registry's key and bound to the record; registry A also
    // receives R, the patient number sealed to the provider.
    const [sent] = registryPosts();
    const body = JSON.parse(sent.body);
    assert.deepEqual(Object.keys(body).sort(), [
      "data",
      "encryptedBlindFactors",
      "methodVersion",
      "recipientOrganization",
      "recipientScope",
      "record",
      "reversible",
    ]);
    const sealed = await chain.openSealed(body.encryptedBlindFactors);
    assert.deepEqual(Object.keys(sealed.header), ["alg", "enc", "kid", "cty"]);
    assert.deepEqual(
      [sealed.header.alg, sealed.header.enc, sealed.header.cty],
      ["RSA-OAEP-256", "A256GCM", "application/json"],
    );
    assert.equal(sealed.rec, createHash("sha256").update(body.record, "ascii").digest("base64url"));
    assert.deepEqual(Object.keys(sealed.blindFactors), ["NGGV", "sNGGV", "NGG", "sNGG", "C", "RGG", "GG", "A", "MRN"]);
    assert.equal(sent.body.split(body.record).length, 2, "the record JWE appears once");
    // The same record in the per-type packaging the form used before: one JWE per type.
    const perType = JSON.stringify({
      recipientOrganization: body.recipientOrganization,
      recipientScope: body.recipientScope,
      methodVersion: body.methodVersion,
      pseudonyms: Object.entries(sealed.blindFactors).map(([type, r]) => ({
        type,
        temporaryPseudonym: Buffer.from(JSON.stringify({ evaluated_output: body.record, blind_factor: r })).toString(
          "base64url",
        ),
      })),
      data: body.data,
    });
    const bytes = Buffer.byteLength(sent.body);
    console.log(
      `bytes per submission, nine types: ${bytes} B (per-type packaging of the same record: ${Buffer.byteLength(perType)} B)`,
    );
    assert.ok(bytes * 5 < Buffer.byteLength(perType), `${bytes} B`);
    assertNoIdentityLeft();
  });

  test("the wasm is fetched once per page, however often the form is submitted", async () => {
    for (let i = 0; i < 3; i++) {
      await fill(PATIENT);
      assert.equal((await submitAndWait()).kind, "success");
    }
    const wasm = chrome.requests.filter((r) => new URL(r.url).pathname.endsWith("/pseudoform_bg.wasm"));
    console.log(`wasm fetches for one page and three submissions: ${wasm.length}`);
    assert.equal(wasm.length, 1);
  });

  test("a half-filled form: every problem at once, in field order, in Dutch or English, and nothing sent", async () => {
    const before = (await chain.records()).length;
    await page.fill("#birthName", "Jansen");
    await page.fill("#bsn", "123456789");
    // A half-typed date in the clinical date picker: the browser holds input it cannot give.
    await page.focus("#ingreepdatum");
    await page.keyboard.type("12");
    await page.fill("#opmerking", "x");
    let status = await submitAndWait();
    assert.equal(status.kind, "error");
    const shown = await shownErrors(page);
    assert.deepEqual(shown, [
      ["initial", "Voorletter is niet ingevuld."],
      ["birthDate", "Geboortedatum is niet ingevuld."],
      ["sex", "Geslacht is niet ingevuld."],
      ["postcode", "Postcode is niet ingevuld."],
      ["bsn", "BSN voldoet niet aan de elfproef."],
      ["diagnose", "Diagnose is niet ingevuld."],
      ["ingreepdatum", "Datum ingreep heeft niet de verwachte vorm."],
      ["asa", "ASA-klasse is niet ingevuld."],
    ]);
    // The status line lists them in the same order; the first has the focus.
    assert.equal(
      status.text,
      "Controleer de gemarkeerde velden: Voorletter, Geboortedatum, Geslacht, Postcode, BSN, Diagnose, Datum ingreep, ASA-klasse. Er is niets verstuurd.",
    );
    assert.equal(await page.evaluate(() => document.activeElement.id), "initial");
    for (const id of ["birthDate", "sex", "diagnose", "asa", "ingreepdatum"]) {
      assert.equal(await page.getAttribute(`#${id}`, "aria-invalid"), "true", id);
    }
    assert.equal(evaluations().length, 0, "nothing went to the TTP");
    assert.equal(registryPosts().length, 0, "nothing went to the registry");
    // English on request.
    await page.evaluate(() => (document.querySelector("form").dataset.pseudoformLang = "en"));
    status = await submitAndWait();
    assert.match(status.text, /^Check the marked fields: Initial, Birth date, Sex, Postcode, BSN, Diagnose,/);
    assert.deepEqual((await shownErrors(page))[0], ["initial", "Initial: a value is required."]);
    assert.equal((await chain.records()).length, before);
  });

  test("Enter in a field never submits while a required clinical field is untouched", async () => {
    const before = (await chain.records()).length;
    // The clinician has typed the patient and a remark but not touched the diagnose or the
    // ASA class, which the page has preset (as a page may).
    await fillForm(page, PATIENT, "controle", {});
    await page.evaluate(() => {
      for (const id of ["diagnose", "asa"]) document.getElementById(id).selectedIndex = 1;
    });
    await page.press("#mrn", "Enter");
    const status = await statusOf(page);
    assert.equal(status.kind, "error");
    assert.match(status.text, /^Enter verstuurt nog niet/);
    assert.deepEqual(await shownErrors(page), [
      ["diagnose", "Diagnose is nog niet door u ingevuld of gekozen."],
      ["asa", "ASA-klasse is nog niet door u ingevuld of gekozen."],
    ]);
    assert.equal(evaluations().length, 0);
    assert.equal(registryPosts().length, 0);
    // Chosen by the clinician, Enter submits.
    await page.selectOption("#diagnose", "Knieartrose");
    await page.selectOption("#asa", "III");
    await page.press("#mrn", "Enter");
    assert.equal((await settled(page)).kind, "success");
    const records = await chain.records();
    assert.equal(records.length, before + 1);
    assert.deepEqual([records[0].data.diagnose, records[0].data.asa], ["Knieartrose", "III"]);
  });

  test("a checkbox group arrives whole, in the form's order", async () => {
    await fill(PATIENT);
    await page.check("input[name=complicaties][value=heroperatie]");
    await page.check("input[name=complicaties][value=wondinfectie]");
    assert.equal((await submitAndWait()).kind, "success");
    const [record] = await chain.records();
    assert.deepEqual(record.data.complicaties, ["wondinfectie", "heroperatie"]);
    assert.equal(await page.isChecked("input[name=complicaties][value=wondinfectie]"), false, "the form is emptied");
  });

  test("an unknown outcome is resent as it was; only an answer that it was never stored makes a new one", async () => {
    const before = (await chain.records()).length;
    await fill(PATIENT);
    chain.registryProxy.setMode("downForPost");
    let status;
    try {
      status = await submitAndWait();
      assert.equal(status.kind, "error");
      assert.match(status.text, /^De registratie is niet bereikbaar\. Misschien is de aanlevering toch aangekomen\./);
      // Retried while the registry is still down: the same submission again, no new pseudonymisation.
      await page.click("[data-pseudoform-status] button");
      status = await settled(page);
      assert.equal(status.kind, "error");
    } finally {
      chain.registryProxy.setMode("pass");
    }
    assert.equal(evaluations().length, 1, "pseudonymised once");
    const sent = registryPosts().map((r) => r.body);
    assert.equal(sent.length, 2);
    assert.equal(sent[1], sent[0], "the resend is the same submission");
    // The registry answers that this submission can no longer be stored (never had it,
    // too late): now, and only now, the form pseudonymises afresh and delivers.
    chain.registryProxy.setMode("expiredOnce");
    await page.click("[data-pseudoform-status] button");
    status = await settled(page);
    assert.equal(status.kind, "success", status.text);
    assert.equal(evaluations().length, 2);
    const all = registryPosts().map((r) => r.body);
    assert.equal(all.length, 4);
    assert.equal(all[2], all[0], "first the same submission once more");
    assert.notEqual(JSON.parse(all[3]).record, JSON.parse(all[0]).record, "then a new one");
    assert.equal((await chain.records()).length, before + 1, "stored once");
    assertNoIdentityLeft();
  });

  test("after an unknown outcome a changed form first settles the earlier submission, never a second record", async () => {
    const before = (await chain.records()).length;
    await fill(PATIENT);
    chain.registryProxy.setMode("dropAnswer");
    try {
      assert.equal((await submitAndWait()).kind, "error");
    } finally {
      chain.registryProxy.setMode("pass");
    }
    const stored = await chain.records();
    assert.equal(stored.length, before + 1, "the registry did store it");
    await page.fill("#opmerking", "gewijzigd na de fout");
    const status = await submitAndWait();
    assert.equal(status.kind, "success");
    // The resend is answered with the first receipt: the record's own id.
    assert.ok(
      status.text.startsWith(
        `De eerdere aanlevering is opgeslagen (record ${Math.max(...stored.map((r) => r.id))}). Wat u daarna in het formulier wijzigde is niet verstuurd`,
      ),
      status.text,
    );
    assert.equal((await chain.records()).length, before + 1, "no second record");
    assert.equal(evaluations().length, 1);
    assert.equal(await page.inputValue("#opmerking"), "gewijzigd na de fout", "the change stays in the form");
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
    assert.equal(evaluations().length, 0, "an evaluation was asked of the TTP");
    assert.equal(registryPosts().length, 0);
    assert.equal((await formValues()).bsn, "123456789");
  });

  test("with the objection ticked, no request leaves the page, not even a login or a token request", async () => {
    await fill(PATIENT);
    await page.check("[data-pseudoform-field=optOut]");
    const count = chrome.requests.length;
    const ttpBefore = chain.ttpProxy.state.requests.length;
    const logins = chrome.logins.count;
    await page.click("button[type=submit]");
    await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "optout");
    await page.waitForTimeout(300);
    assert.equal(chrome.requests.length, count);
    assert.equal(chain.ttpProxy.state.requests.length, ttpBefore, "a request (a token request too) reached the TTP");
    assert.equal(chrome.logins.count, logins, "a login window opened");
    assert.match(await page.textContent("[data-pseudoform-status]"), /bezwaar/);
  });

  test("the browser's TTP token works only with its own key, from its own origin", async () => {
    // A session of the page's own, logged in through the portal's popup:
    // the headers it would send, four times (each proof is single use),
    // and a real blinded element to send with them.
    const evaluate = `${chain.ttpProxy.url}/v1/evaluate`;
    const { sets, blindedInput } = await page.evaluate(
      async ([ttp, url, recipient]) => {
        const m = await import("/pkg/index.js");
        await m.ready();
        const { login } = await (await fetch("/api/form-config")).json();
        const session = new m.TtpSession({ ttp, subjectToken: m.popupLogin(login) });
        const sets = [];
        for (let i = 0; i < 4; i++) sets.push(await session.headers("POST", url));
        const { prepared } = m.prepare(
          { birthDate: "1-2-1980", sex: "2" },
          { recipientOrganization: recipient.organization, recipientScope: recipient.scope, types: ["GG"] },
        );
        return { sets, blindedInput: prepared[0].blindedInput };
      },
      [chain.ttpProxy.url, evaluate, chain.urls.recipientA],
    );
    const [own, noOrigin, elsewhere, control] = sets;
    assert.match(own.authorization, /^DPoP [\w-]+\.[\w-]+\.[\w-]+$/);
    const origin = new URL(chain.formUrl).origin;
    const body = JSON.stringify({
      recipientOrganization: chain.urls.recipientA.organization,
      recipientScope: chain.urls.recipientA.scope,
      records: [{ items: [{ type: "GG", blindedInput }] }],
    });
    const send = (headers, from) =>
      chain.json(`${chain.urls.ttp}/v1/evaluate`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers, ...(from ? { origin: from } : {}) },
        body,
      });
    // Lifted, with a proof of another key: refused.
    const token = own.authorization.slice("DPoP ".length);
    const lifted = await send(
      { authorization: own.authorization, dpop: foreignKey().proof("POST", evaluate, { ath: sha256(token) }) },
      origin,
    );
    assert.equal(lifted.status, 401, JSON.stringify(lifted.body));
    assert.equal(lifted.body.code, "auth.wrongKey");
    // Its own key's proof, but without an Origin, or from another origin: refused.
    const bare = await send(noOrigin);
    assert.equal(bare.status, 403, JSON.stringify(bare.body));
    assert.equal(bare.body.code, "origin.notAllowed");
    const other = await send(elsewhere, "http://elders.example.nl");
    assert.equal(other.status, 403, JSON.stringify(other.body));
    assert.equal(other.body.code, "origin.notAllowed");
    // The same token with its own key's proof from its origin works: the
    // refusals were the key's and the origin's.
    const accepted = await send(control, origin);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  });

  test("a submission without its proof, or with another key's, is refused and nothing is stored", async () => {
    const before = (await chain.records()).length;
    await fill(PATIENT);
    const typed = await formValues();
    const submissions = `${chain.registryProxy.url}/api/submissions`;
    /** The submitter proof of another key, for this URL and record. */
    const foreignProof = (body) => foreignKey().proof("POST", submissions, { rec: sha256(JSON.parse(body).record) });
    const changes = [(headers) => delete headers.dpop, (headers, body) => (headers.dpop = foreignProof(body))];
    const sent = [];
    chain.registryProxy.state.rewrite = (headers, body) => {
      changes[sent.length](headers, body);
      sent.push(body);
    };
    chain.registryProxy.setMode("rewrite");
    try {
      for (let i = 0; i < changes.length; i++) {
        const status = i === 0 ? await submitAndWait() : await retry();
        assert.equal(status.kind, "error", status.text);
        assert.ok(status.retry, "no retry offered");
        assert.match(status.text, /weigert de aanlevering/);
        assert.deepEqual(await formValues(), typed, "the typed values are gone");
        assert.equal((await chain.records()).length, before, "a record was stored");
      }
    } finally {
      chain.registryProxy.setMode("pass");
    }
    // What the registry answered them (the same bodies, sent again as they reached it).
    const post = (body, dpop) =>
      chain.json(`${chain.urls.registryA}/api/submissions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(dpop ? { dpop } : {}) },
        body,
      });
    const missing = await post(sent[0]);
    assert.deepEqual([missing.status, missing.body.code], [401, "submitter.missingProof"]);
    const wrong = await post(sent[1], foreignProof(sent[1]));
    assert.deepEqual([wrong.status, wrong.body.code], [401, "submitter.wrongKey"]);
    assert.equal((await chain.records()).length, before, "a record was stored");
    // The retry with the form's own proof stores it.
    const status = await retry();
    assert.equal(status.kind, "success", status.text);
    assert.equal((await chain.records()).length, before + 1);
    assertNoIdentityLeft();
  });

  test("policy first: a type the registry may not receive is never made", async () => {
    const ttpBefore = chain.ttpProxy.state.requests.length;
    const result = await page.evaluate(
      async ([ttp, recipient]) => {
        const m = await import("/pkg/index.js");
        const { login } = await (await fetch("/api/form-config")).json();
        const session = new m.TtpSession({ ttp, subjectToken: m.popupLogin(login) });
        const r = await m.pseudonymise(
          { bsn: "999990007", birthName: "Jansen", birthDate: "1-2-1980", sex: "m", initial: "P", postcode: "1234" },
          {
            ttp,
            session,
            recipientOrganization: recipient.organization,
            recipientScope: recipient.scope,
            types: ["B", "NGGV"],
          },
        );
        return {
          types: r.types,
          sealed: r.submission.encryptedBlindFactors,
          skipped: r.skipped.map((s) => `${s.type}:${s.code}`),
        };
      },
      [chain.ttpProxy.url, chain.urls.recipientA],
    );
    // Registry A requires RGG in its policy: requested too, and made from the PC4.
    assert.deepEqual(result.types, ["NGGV", "RGG"]);
    assert.deepEqual(Object.keys((await chain.openSealed(result.sealed)).blindFactors), ["NGGV", "RGG"]);
    assert.deepEqual(result.skipped, ["B:type.notAllowed"]);
    const sent = chain.ttpProxy.state.requests
      .slice(ttpBefore)
      .filter((r) => r.method === "POST" && r.url === "/v1/evaluate");
    assert.equal(sent.length, 1);
    assert.deepEqual(
      JSON.parse(sent[0].body).records[0].items.map((i) => i.type),
      ["NGGV", "RGG"],
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

  test("an evaluation a load balancer resent (its proof spent): sent once more with a fresh proof, stored once", async () => {
    const before = (await chain.records()).length;
    const seen = chain.ttpProxy.state.requests.length;
    await fill(PATIENT);
    chain.ttpProxy.setMode("resendOnce");
    let status;
    try {
      status = await submitAndWait();
    } finally {
      chain.ttpProxy.setMode("pass");
    }
    assert.equal(status.kind, "success", status.text);
    assert.equal((await chain.records()).length, before + 1, "stored once");
    // The page sent the evaluation twice: the first (forwarded twice on the
    // way, its second copy refused as a spent proof), then with a new proof.
    const sent = chain.ttpProxy.state.requests
      .slice(seen)
      .filter((r) => r.method === "POST" && r.url.startsWith("/v1/evaluate"));
    assert.equal(sent.length, 2);
    assert.notEqual(sent[0].headers.dpop, sent[1].headers.dpop, "a fresh proof");
    assert.equal(sent[0].headers.authorization, sent[1].headers.authorization, "the same access token");
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
    assert.deepEqual(Object.keys(record.data).sort(), ["asa", "complicaties", "diagnose", "ingreepdatum", "opmerking"]);
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
