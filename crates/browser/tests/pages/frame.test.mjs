// Frame mode in real headless Chromium against the real chain: the demo's
// framed form (/frame.html) with the identity frame on the demo's frame
// origin, the TTP and the registry behind the fault proxies of chain.mjs.
// The clinician logs in inside the frame, the record holds only pseudonyms
// and clinical data, the pseudonyms are those of the in-page form, faults
// fail closed with the values kept inside the frame, the opt-out sends
// nothing, the frame is accessible, themed and in English on request, a
// frame that cannot load keeps the submit disabled, and a page of an origin
// the frame host does not serve cannot frame it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { once } from "node:events";
import { join } from "node:path";
import {
  fillForm,
  fillFramed,
  frameValues,
  identityFrame,
  launch,
  logInFrame,
  openBound,
  openFramed,
  settled,
  statusOf,
  submitForm,
} from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";

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
/** The same patient in the frame, which shows the fields of the types registry A may receive (no B: no BSN). */
const FRAMED = Object.fromEntries(Object.entries(PATIENT).filter(([field]) => field !== "bsn"));
/** Forms of the identity that must never appear in any request of the page. */
const SECRETS = ["Berg-Jansen", "BERGJANS", "01-02-1980", "19800201", "1234 ab", "1234AB", "999990007", "PAT-0001"];

let chain, chrome;

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const frameUrl = () => chain.urls.frame;
const posts = (path) => chrome.requests.filter((r) => r.method === "POST" && new URL(r.url).pathname === path);

function assertNoIdentitySent() {
  for (const request of chrome.requests) {
    for (const secret of SECRETS) {
      assert.ok(!request.url.includes(secret), `identity in URL ${request.url}`);
      assert.ok(!request.body.includes(secret), `identity in a request body to ${request.url}`);
    }
  }
}

/** Presses the status line's retry and waits for the new outcome. */
async function retry(page) {
  await page.evaluate(() => delete document.querySelector("[data-pseudoform-status]").dataset.kind);
  await page.click("[data-pseudoform-status] button");
  return settled(page);
}

test("the framed form: login in the frame, pseudonyms and clinical data only, the same pseudonyms as in the page, accessible", async () => {
  // The same patient through the in-page form first.
  const inPage = await openBound(chrome.newPage, chain.formUrl);
  await fillForm(inPage, PATIENT);
  assert.equal((await submitForm(inPage)).kind, "success");
  const [direct] = await chain.records();
  await inPage.close();

  chrome.requests.length = 0;
  const ttpBefore = chain.ttpProxy.state.requests.length;
  const { page, frame } = await openFramed(chrome.newPage, chain.frameFormUrl);
  // The page's script cannot reach into the frame.
  assert.equal(await page.evaluate(() => document.querySelector("pseudoform-identity iframe").contentDocument), null);
  assert.equal(
    await page.getAttribute("pseudoform-identity iframe", "referrerpolicy"),
    "no-referrer",
    "the frame gets no referrer",
  );

  // The frame's fields: each labelled, in the method's order, Dutch.
  const fields = await frame.evaluate(() =>
    [...document.querySelectorAll("[data-pseudoform-field]")].map((c) => [c.id, c.labels[0]?.textContent.trim()]),
  );
  assert.deepEqual(fields.slice(0, 4), [
    ["birthName", "Geboortenaam"],
    ["birthDate", "Geboortedatum"],
    ["sex", "Geslacht"],
    ["initial", "Voorletter"],
  ]);
  assert.ok(
    fields.every(([, label]) => label),
    "every field has a label",
  );

  // Tab walks from the page into the frame (its log-in control, then its fields) and on.
  await page.focus("header a:last-of-type");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.tagName), "IFRAME");
  assert.equal(await frame.evaluate(() => document.activeElement.className), "pseudoform-login");
  const walked = [];
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press("Tab");
    const inFrame = await page.evaluate(() => document.activeElement.tagName === "IFRAME");
    if (!inFrame) break;
    walked.push(await frame.evaluate(() => document.activeElement.id));
  }
  assert.deepEqual(walked, [...fields.map(([id]) => id)]);
  assert.equal(await page.evaluate(() => document.activeElement.id), "diagnose", "Tab leaves the frame for the page");

  // Half filled: every problem at once, in the frame next to its field, by label in the page.
  assert.ok(!fields.some(([id]) => id === "bsn"), "no BSN field for a registry that may not receive type B");
  await frame.fill("#birthName", "Jansen");
  await frame.fill("#birthDate", "31-02-1980");
  let status = await submitForm(page);
  assert.equal(status.kind, "error");
  assert.equal(
    status.text,
    "Controleer de gemarkeerde velden: Geboortedatum, Geslacht, Voorletter, Postcode, Diagnose, ASA-klasse. Er is niets verstuurd.",
  );
  const shown = await frame.evaluate(() =>
    [...document.querySelectorAll("[data-pseudoform-error-for]")]
      .filter((e) => !e.hidden)
      .map((e) => [e.dataset.pseudoformErrorFor, e.getAttribute("role"), e.textContent]),
  );
  assert.deepEqual(shown, [
    ["birthDate", "alert", "Geboortedatum bestaat niet in de kalender."],
    ["sex", "alert", "Geslacht is niet ingevuld."],
    ["initial", "alert", "Voorletter is niet ingevuld."],
    ["postcode", "alert", "Postcode is niet ingevuld."],
  ]);
  assert.equal(await frame.getAttribute("#birthDate", "aria-invalid"), "true");
  assert.match(await frame.getAttribute("#birthDate", "aria-describedby"), /pseudoform-error-birthDate/);
  assert.equal(await frame.inputValue("#birthDate"), "31-02-1980", "the frame keeps what was typed");
  // The first problem is in the frame: the focus goes there.
  assert.equal(await frame.evaluate(() => document.activeElement.id), "birthDate");
  // The README's screenshot of frame mode, beside the in-page form's (audit.test.mjs).
  await page.screenshot({ path: join(ROOT, "docs", "screenshots", "frame.png"), fullPage: true });

  // Complete, not yet logged in: the frame asks for the login, nothing is sent.
  await fillFramed(page, frame, FRAMED);
  status = await submitForm(page);
  assert.equal(status.kind, "error");
  assert.match(status.text, /^Log eerst in bij uw zorgaanbieder/);
  assert.equal(posts("/v1/evaluate").length, 0);
  assert.equal(posts("/api/submissions").length, 0);

  await logInFrame(frame);
  // Enter in a field of the frame submits the page's form, as in a form without a frame.
  await page.evaluate(() => delete document.querySelector("[data-pseudoform-status]").dataset.kind);
  await frame.press("#mrn", "Enter");
  status = await settled(page);
  assert.equal(status.kind, "success", status.text);
  const [record] = await chain.records();
  assert.notEqual(record.id, direct.id);
  assert.deepEqual([...record.pseudonyms].sort(), [...direct.pseudonyms].sort(), "the same definitive pseudonyms");
  assert.deepEqual(Object.keys(record.data).sort(), ["asa", "complicaties", "diagnose", "ingreepdatum", "opmerking"]);
  // What the page posted: the frame's submission, the clinical data and the frame's proof.
  const [sent] = posts("/api/submissions");
  assert.deepEqual(Object.keys(JSON.parse(sent.body)).sort(), [
    "data",
    "encryptedBlindFactors",
    "methodVersion",
    "recipientOrganization",
    "recipientScope",
    "record",
    "reversible",
  ]);
  // The TTP was called from the frame's origin only.
  const frameOrigin = new URL(frameUrl()).origin;
  const ttp = chain.ttpProxy.state.requests.slice(ttpBefore);
  assert.ok(ttp.some((r) => r.url === "/v1/evaluate"));
  for (const r of ttp.filter((q) => q.headers.origin)) {
    assert.equal(r.headers.origin, frameOrigin, r.url);
  }
  // Reset for the next patient, inside the frame.
  assert.deepEqual(Object.values(await frameValues(frame)).filter(Boolean), []);
  assertNoIdentitySent();
  await page.close();
});

test("faults fail closed with the values kept in the frame, and a retry works", async () => {
  const { page, frame } = await openFramed(chrome.newPage, chain.frameFormUrl);
  await logInFrame(frame);
  const before = (await chain.records()).length;
  await fillFramed(page, frame, FRAMED);
  const typed = await frameValues(frame);
  chrome.requests.length = 0;

  chain.ttpProxy.setMode("down");
  let status;
  try {
    status = await submitForm(page);
  } finally {
    chain.ttpProxy.setMode("pass");
  }
  assert.equal(status.kind, "error");
  assert.match(status.text, /niet bereikbaar/);
  assert.ok(status.retry);
  assert.deepEqual(await frameValues(frame), typed, "the frame keeps what was typed");
  assert.equal(posts("/api/submissions").length, 0);

  // The registry down: the outcome is unknown; the retry sends the same submission with a fresh proof.
  chain.framedProxy.setMode("downForPost");
  try {
    status = await retry(page);
  } finally {
    chain.framedProxy.setMode("pass");
  }
  assert.equal(status.kind, "error");
  assert.match(status.text, /registratie is niet bereikbaar\. Misschien is de aanlevering toch aangekomen/);
  assert.deepEqual(await frameValues(frame), typed);
  assert.equal((await chain.records()).length, before, "nothing stored");
  status = await retry(page);
  assert.equal(status.kind, "success", status.text);
  assert.equal((await chain.records()).length, before + 1);
  const [first, second] = chain.framedProxy.state.requests
    .filter((r) => r.method === "POST" && r.url === "/api/submissions")
    .slice(-2);
  assert.equal(second.body, first.body, "the resend is the same submission");
  assert.notEqual(second.headers.dpop, first.headers.dpop, "with a fresh submitter proof");
  assert.equal(posts("/v1/evaluate").length, 1, "pseudonymised once after the TTP came back");
  assertNoIdentitySent();

  // Stored, but the answer lost; then the clinician changes the identity in the frame: the
  // next submit settles the earlier submission (no second record) and keeps the change.
  await fillFramed(page, frame, FRAMED);
  chain.framedProxy.setMode("dropAnswer");
  try {
    assert.equal((await submitForm(page)).kind, "error");
  } finally {
    chain.framedProxy.setMode("pass");
  }
  assert.equal((await chain.records()).length, before + 2, "the registry did store it");
  await frame.fill("#initial", "K");
  status = await submitForm(page);
  assert.equal(status.kind, "success", status.text);
  assert.match(status.text, /^De eerdere aanlevering is opgeslagen \(record \d+\)\. Wat u daarna/);
  assert.equal((await chain.records()).length, before + 2, "no second record");
  assert.equal(await frame.inputValue("#initial"), "K", "the change stays in the frame");

  // The objection: nothing to the TTP, nothing to the registry.
  await fillFramed(page, frame, FRAMED);
  await frame.check("#optOut");
  const count = chrome.requests.length;
  const ttpCount = chain.ttpProxy.state.requests.length;
  const registryCount = chain.framedProxy.state.requests.length;
  status = await submitForm(page);
  assert.equal(status.kind, "optout");
  assert.equal(chrome.requests.length, count, "a request left the page or the frame");
  assert.equal(chain.ttpProxy.state.requests.length, ttpCount);
  assert.equal(chain.framedProxy.state.requests.length, registryCount);
  await page.close();
});

test("English and a theme (the element's style and the setting) reach the frame; an unsafe theme value does not", async () => {
  const page = await chrome.newPage();
  await page.route("**/api/form-config", async (route) => {
    const response = await route.fetch();
    const config = await response.json();
    // The page's own style of the element (as its stylesheet would set it); the setting wins.
    await page.evaluate(() => {
      const style = document.querySelector("pseudoform-identity").style;
      style.setProperty("--pseudoform-font-family", "monospace");
      style.setProperty("--pseudoform-text", "rgb(1, 1, 1)");
    });
    await route.fulfill({
      response,
      json: {
        ...config,
        // Only GG asked for: the frame shows its fields; registry A's policy requires NGGV and
        // RGG, whose other fields the frame adds at the first check.
        types: ["GG"],
        lang: "en",
        theme: {
          "--pseudoform-text": "rgb(10, 20, 30)",
          "--pseudoform-background": "url(https://elders.example/x.png)",
          "--not-a-theme-property": "red",
        },
      },
    });
  });
  await page.goto(chain.frameFormUrl);
  const frame = await identityFrame(page);
  const style = await frame.evaluate(() => {
    const root = getComputedStyle(document.documentElement);
    return {
      lang: document.documentElement.lang,
      color: root.color,
      font: root.fontFamily,
      background: root.getPropertyValue("--pseudoform-background"),
      other: root.getPropertyValue("--not-a-theme-property"),
      label: document.querySelector("label[for=birthDate]").textContent,
      login: document.querySelector(".pseudoform-login").textContent,
    };
  });
  assert.deepEqual(style, {
    lang: "en",
    color: "rgb(10, 20, 30)",
    font: "monospace",
    background: "",
    other: "",
    label: "Birth date",
    login: "Log in at your care provider",
  });
  const shownFields = () =>
    frame.evaluate(() => [...document.querySelectorAll("[data-pseudoform-field]")].map((c) => c.id));
  assert.deepEqual(await shownFields(), ["birthDate", "sex", "optOut"]);
  const status = await submitForm(page);
  assert.equal(status.kind, "error");
  assert.deepEqual(await shownFields(), ["birthName", "birthDate", "sex", "initial", "postcode", "optOut"]);
  assert.match(status.text, /^Check the marked fields: Birth name, Birth date, Sex, Initial, Postcode, Diagnose,/);
  await page.close();
});

test("a frame that cannot load keeps the submit disabled and says so; the retry loads it", async () => {
  const page = await chrome.newPage();
  await page.route("**/api/form-config", async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: { ...(await response.json()), timeoutMs: 1500 } });
  });
  const frameFiles = `${new URL(frameUrl()).origin}/**`;
  await page.route(frameFiles, (route) => route.abort());
  await page.goto(chain.frameFormUrl);
  await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "unavailable");
  const status = await statusOf(page);
  assert.match(status.text, /^Het afgeschermde deel van het formulier \(de patiëntgegevens\) kon niet geladen worden/);
  assert.ok(status.retry);
  assert.equal(await page.isDisabled("button[type=submit]"), true);
  await page.unroute(frameFiles);
  await page.click("[data-pseudoform-status] button");
  await page.waitForSelector("button[type=submit]:not([disabled])");
  await identityFrame(page);
  await page.close();
});

test("the frame refuses a page whose origin is not its recipient's; the submit stays disabled", async () => {
  // Registry A's page claiming registry B as its recipient: A's origin may frame the frame
  // (frame-ancestors is every recipient's origins) but is not one of B's origins.
  const page = await chrome.newPage();
  await page.route("**/api/form-config", async (route) => {
    const response = await route.fetch();
    const b = chain.urls.recipientB;
    await route.fulfill({
      response,
      json: { ...(await response.json()), recipientOrganization: b.organization, recipientScope: b.scope },
    });
  });
  // Registry A's frame-mode origin, a frame parent of registry A only.
  await page.goto(`${chain.urls.registryAFramed}/frame.html`);
  await page.waitForFunction(() => document.querySelector("[data-pseudoform-status]").dataset.kind === "unavailable");
  assert.match((await statusOf(page)).text, /mag niet op deze pagina gebruikt worden/);
  assert.equal(await page.isDisabled("button[type=submit]"), true);
  assert.equal(await page.$("pseudoform-identity iframe"), null, "the refusing frame is removed");
  await page.close();
});

test("a page of an origin the frame host does not serve cannot frame it", async () => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><iframe src="${frameUrl()}"></iframe>`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    const page = await chrome.newPage();
    const refused = page.waitForEvent("console", {
      predicate: (m) => /frame-ancestors/.test(m.text()),
      timeout: 15_000,
    });
    const origin = `http://127.0.0.1:${server.address().port}`;
    await page.goto(`${origin}/`);
    const message = (await refused).text();
    assert.match(
      message,
      /violates the following Content Security Policy directive: "frame-ancestors [^"]+"\. The request has been blocked/,
    );
    assert.ok(!message.split('"')[1].includes(origin), "the page's origin is not an allowed ancestor");
    const frame = await (await page.$("iframe")).contentFrame();
    assert.equal(await frame.$("#identity"), null, "the frame page did not load");
    await page.close();
  } finally {
    server.close();
  }
});
