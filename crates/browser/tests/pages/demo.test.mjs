// The method page of the demo with the *built* package (www/pkg after wasm-opt), served by
// the demo registry, in real headless Chromium under the page's strict CSP: the module loads, every
// field normalises as the method says, errors are Dutch and never echo the
// value, and the page makes no request beyond its own static files.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { launch } from "./support.mjs";
import { startChain } from "./chain.mjs";

let server, chrome, page;

before(async () => {
  server = await startChain();
  chrome = await launch();
  page = await chrome.newPage();
  await page.goto(`${server.urls.registryA}/method.html`);
  await page.waitForFunction(() => document.getElementById("method-version").textContent === "1");
});

after(async () => {
  await chrome?.browser.close();
  await server?.stop();
});

const cell = (table, label) =>
  page.evaluate(
    ([t, l]) => {
      const row = [...document.querySelectorAll(`#${t} tbody tr`)].find((r) => r.cells[0].textContent === l);
      return row ? { text: row.cells[1].textContent, kind: row.cells[1].className } : null;
    },
    [table, label],
  );

test("the built module loads under the CSP and reports method version 1", async () => {
  assert.equal(await page.textContent("#method-version"), "1");
  assert.deepEqual(chrome.errors, []);
});

test("typing an identity shows the canonical forms and the NGGV input", async () => {
  await page.fill("input[name=birthName]", "van der Berg-Jansen");
  await page.fill("input[name=birthDate]", "1-2-1980");
  await page.fill("input[name=sex]", "vrouw");
  await page.fill("input[name=initial]", "J.P.");
  await page.fill("input[name=postcode]", "1234 ab");
  assert.deepEqual(await cell("fields", "Geboortenaam"), { text: "BERGJANSEN", kind: "ok" });
  assert.deepEqual(await cell("fields", "Postcode"), { text: "1234AB", kind: "ok" });
  assert.deepEqual(await cell("types", "NGGV"), { text: "BERGJANS|19800201|2|J", kind: "ok" });
  assert.deepEqual(await cell("types", "RGG"), { text: "1234|19800201|2", kind: "ok" });
  // No house number yet: type A is not made, and the page says why.
  assert.deepEqual(await cell("types", "A"), { text: "Huisnummer is niet ingevuld.", kind: "error" });
});

test("an invalid value gets a Dutch message that does not echo it", async () => {
  const typed = "123456789";
  await page.fill("input[name=bsn]", typed);
  const bsn = await cell("fields", "BSN");
  assert.equal(bsn.kind, "error");
  assert.equal(bsn.text, "BSN voldoet niet aan de elfproef.");
  assert.ok(!bsn.text.includes(typed));
  await page.fill("input[name=birthDate]", "31-02-1980");
  assert.equal((await cell("fields", "Geboortedatum")).text, "Geboortedatum bestaat niet in de kalender.");
});

test("nothing typed ever leaves the page", async () => {
  const origin = new URL(server.urls.registryA).origin;
  assert.ok(chrome.requests.length > 0);
  for (const request of chrome.requests) {
    assert.equal(new URL(request.url).origin, origin, request.url);
    assert.equal(request.method, "GET", request.url);
    assert.equal(new URL(request.url).search, "", request.url);
  }
  assert.deepEqual(chrome.errors, []);
});
