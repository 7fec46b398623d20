// The proof of the one promise, as a new user would use the demo: 200
// generated identities typed into the demo form in real headless Chromium,
// every request of every page captured, and afterwards every database file
// and every log of the TTP and the registries read: no identifying value
// appears anywhere in any recognisable form. A share of them is also typed
// into the three example forms of docs/embedding.md (www/examples/), whose
// requests are scanned the same way. Plus the correctness of what
// arrives, the strict deployment (CSP and Subresource Integrity), and the
// screenshots shown in the README.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fillForm, launch, submitExample, submitForm } from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";
import { generateIdentities, needlesOf } from "./identities.mjs";
import { chainHaystacks, derivedForms, needleIndex, scan } from "./leaks.mjs";
import { PSEUDONYM_TYPES as TYPES } from "../../../../www/pkg/constants.js";

const COUNT = Number(process.env.PSEUDOFORM_AUDIT_IDENTITIES ?? 200);
/** Identities typed into each example form of the guide, after the demo form. */
const PER_EXAMPLE = Math.max(1, Math.min(20, Math.floor(COUNT / 10)));
const SCREENSHOTS = join(ROOT, "docs", "screenshots");

let chain, chrome;
const identities = generateIdentities(COUNT);
const needles = new Set();

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

async function openForm(url) {
  const page = await chrome.newPage();
  await page.goto(url);
  await page.waitForSelector("button[type=submit]:not([disabled])");
  return page;
}

async function type(page, typed) {
  await page.selectOption("#diagnose", { index: 1 });
  await fillForm(page, typed, "geen bijzonderheden");
}

const submit = submitForm;

const nggvOf = (record) => record.pseudonyms.find((l) => l.startsWith("NGGV:"));

const iso = ({ year, month, day }) => `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;

/** How a clinician types an identity and a clinical field into each example form. */
const EXAMPLES = {
  async operatie(page, identity) {
    const t = identity.typed;
    for (const field of ["birthName", "initial", "postcode", "mrn"]) await page.fill(`#${field}`, t[field]);
    await page.fill("#birthDate", iso(identity.date));
    await page.check(`#sex input[value='${t.sex}']`);
    await page.fill("#operatiedatum", "2026-11-02");
    await page.check("#zijde input[value=links]");
    await page.check("input[name=complicaties][value=trombose]");
  },
  async poli(page, identity) {
    const t = identity.typed;
    for (const field of ["birthName", "initial", "birthDate", "postcode", "houseNumber", "mrn"]) {
      await page.fill(`#${field}`, t[field]);
    }
    await page.selectOption("#sex", t.sex);
    await page.selectOption("#controle", { index: 1 });
    await page.selectOption("#pijn", { index: 1 });
    await page.check("input[name=klachten][value=stijfheid]");
    await page.fill("#toelichting", "geen bijzonderheden");
  },
  async minimaal(page, identity) {
    const t = identity.typed;
    for (const field of ["birthName", "initial", "birthDate", "postcode", "mrn"])
      await page.fill(`#${field}`, t[field]);
    await page.selectOption("#sex", t.sex);
    await page.selectOption("#klachten", ["pijn"]);
  },
};

describe("leak audit over generated identities", () => {
  test(`${COUNT} identities typed into the demo form arrive with pseudonyms only`, async () => {
    const page = await openForm(chain.formUrl);
    const before = (await chain.records()).length;
    for (const [i, identity] of identities.entries()) {
      await type(page, identity.typed);
      if (i === 0) {
        await mkdir(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, "form.png"), fullPage: true });
      }
      const [{ normalised, inputs }] = await derivedForms(page, [identity.typed], TYPES);
      for (const n of needlesOf(identity, normalised, inputs)) needles.add(n);
      const status = await submit(page);
      assert.equal(status.kind, "success", `identity ${i}: ${status.text}`);
    }
    const records = await chain.records();
    assert.equal(records.length, before + COUNT);
    // Every record is in the registry view, with its pseudonyms.
    const view = await (await fetch(`${chain.urls.registryA}/registry`)).text();
    for (const record of records.slice(0, COUNT)) {
      assert.ok(nggvOf(record), `record ${record.id} has an NGGV pseudonym`);
      assert.ok(view.includes(nggvOf(record)), `record ${record.id} missing from the registry view`);
    }
    // No identity in the browser's storage either.
    const storage = await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]);
    assert.deepEqual(storage, [0, 0, ""]);
  });

  test("the same person registered twice, or from a second origin, has the same NGGV; another registry a different one", async () => {
    const sample = identities.slice(0, 5);
    const retype = (t) => ({ ...t, birthName: t.birthName.toLowerCase(), postcode: t.postcode.replace(" ", "") });
    // The registry's own origin is a second form origin next to the proxy's.
    const second = await openForm(`${chain.urls.registryA}/`);
    const registryB = await openForm(`${chain.urls.registryB}/`);
    for (const identity of sample) {
      await type(second, retype(identity.typed));
      assert.equal((await submit(second)).kind, "success");
      await type(registryB, identity.typed);
      assert.equal((await submit(registryB)).kind, "success");
    }
    const a = await chain.records("A");
    const b = await chain.records("B");
    for (const [i] of sample.entries()) {
      // Newest first: the second registrations come first.
      const again = a[sample.length - 1 - i];
      const first = a.at(-1 - i); // the oldest records are the first registrations
      assert.equal(nggvOf(again), nggvOf(first), `identity ${i}: NGGV differs between registrations`);
      const other = b[sample.length - 1 - i];
      assert.notEqual(nggvOf(other).split(":")[2], nggvOf(first).split(":")[2], "two registries share a pseudonym");
    }
  });

  test(`${PER_EXAMPLE} identities typed into each example form of the guide arrive with pseudonyms only`, async () => {
    const sample = identities.slice(0, PER_EXAMPLE);
    for (const [name, typeInto] of Object.entries(EXAMPLES)) {
      const page = await openForm(`${chain.registryProxy.url}/examples/${name}.html`);
      const before = (await chain.records()).length;
      for (const [i, identity] of sample.entries()) {
        await typeInto(page, identity);
        const [{ normalised, inputs }] = await derivedForms(page, [identity.typed], TYPES);
        for (const n of needlesOf(identity, normalised, inputs)) needles.add(n);
        const status = await submitExample(page);
        assert.equal(status.kind, "success", `${name}, identity ${i}: ${status.text}`);
      }
      const records = await chain.records();
      assert.equal(records.length, before + sample.length, name);
      // The same person through the demo form and through this one: the same NGGV.
      const demo = records.filter((r) => "diagnose" in r.data).at(-1);
      assert.equal(nggvOf(records[sample.length - 1]), nggvOf(demo), `${name}: NGGV differs from the demo form's`);
      await page.close();
    }
  });

  test("no identifying value in any request, database or log", async () => {
    assert.ok(needles.size >= COUNT * 10, `only ${needles.size} forms collected`);
    const haystacks = [];
    for (const r of chrome.requests) {
      haystacks.push([
        `page request ${r.url}`,
        Buffer.from(`${r.method} ${r.url}\n${JSON.stringify(r.headers)}\n${r.body}`),
      ]);
    }
    haystacks.push(...(await chainHaystacks(chain, [chain.ttpProxy, chain.registryProxy])));
    assert.ok(
      chrome.requests.filter((r) => r.method === "POST").length >= COUNT * 2,
      "TTP and registry requests captured",
    );
    assert.ok(
      haystacks.some(([name]) => name.startsWith("database ttp")),
      "TTP database read",
    );
    assert.ok(
      haystacks.some(([name]) => name.startsWith("database registry-a")),
      "registry database read",
    );
    // The scan finds a value next to hex digits, and lets pass only one inside a whole hex id.
    const probe = needleIndex(["5769cb"]);
    assert.deepEqual(scan(Buffer.from('{"postcode":"5769cb"} a5769cb0'), probe), {
      leaks: ["5769cb", "5769cb"],
      inHexTokens: 0,
    });
    assert.deepEqual(scan(Buffer.from(`jti ${"0".repeat(13)}5769cb${"f".repeat(13)}`), probe), {
      leaks: [],
      inHexTokens: 1,
    });
    let scanned = 0;
    let chance = 0;
    const index = needleIndex(needles);
    for (const [name, bytes] of haystacks) {
      scanned += bytes.length;
      const found = scan(bytes, index);
      assert.deepEqual(found.leaks, [], `an identifying value appears in ${name}`);
      chance += found.inHexTokens;
    }
    console.log(
      `leak audit: ${COUNT} identities, ${needles.size} forms, ${chrome.requests.length} page requests, ` +
        `${haystacks.length} haystacks, ${(scanned / 1e6).toFixed(1)} MB scanned, ` +
        `${chance} chance matches inside hex ids or hashes`,
    );
  });
});

describe("strict deployment", () => {
  test("the form is served with the strict CSP and the script and wasm with Subresource Integrity", async () => {
    const response = await fetch(chain.formUrl);
    const csp = response.headers.get("content-security-policy");
    const ttpOrigin = new URL(chain.ttpProxy.url).origin;
    assert.ok(
      csp.startsWith(`default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ${ttpOrigin}`),
      csp,
    );
    const html = await response.text();
    const bundle = await readFile(join(ROOT, "www", "pkg", "pseudoform-auto.js"));
    const sri = `sha384-${createHash("sha384").update(bundle).digest("base64")}`;
    assert.ok(
      html.includes(`src="pkg/pseudoform-auto.js" integrity="${sri}"`),
      "the one tag carries the bundle's hash",
    );
    const wasm = await readFile(join(ROOT, "www", "pkg", "pseudoform_bg.wasm"));
    const wasmSri = `sha384-${createHash("sha384").update(wasm).digest("base64")}`;
    assert.ok(bundle.toString().includes(wasmSri), "the bundle fetches the wasm with its hash");
  });

  for (const [what, path] of [
    ["script", "/pkg/pseudoform-auto.js"],
    ["wasm", "/pkg/pseudoform_bg.wasm"],
  ]) {
    test(`a tampered ${what} is refused: the form stays disabled and nothing is sent`, async () => {
      chain.registryProxy.state.tamperPath = path;
      chain.registryProxy.setMode("tamper");
      const ttpBefore = chain.ttpProxy.state.requests.length;
      const page = await chrome.newPage();
      const errors = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      try {
        await page.goto(chain.formUrl);
        await page.waitForTimeout(1500);
        assert.equal(await page.isDisabled("button[type=submit]"), true, "submit must stay disabled");
        assert.ok(errors.some((e) => /integrity/i.test(e)) || what === "wasm", errors.join("\n"));
        if (what === "wasm") {
          const status = await page.textContent("[data-pseudoform-status]");
          assert.match(status, /Er is niets verstuurd/);
        }
        assert.equal(chain.ttpProxy.state.requests.length, ttpBefore, "the TTP was called");
      } finally {
        chain.registryProxy.setMode("pass");
        await page.close();
      }
    });
  }

  test("screenshots: an inline validation error and the registry view", async () => {
    const page = await openForm(chain.formUrl);
    await type(page, { ...identities[1].typed, bsn: "123456789", birthDate: "31-02-1980" });
    await submit(page);
    await page.screenshot({ path: join(SCREENSHOTS, "validation.png"), fullPage: true });
    assert.equal(await page.getAttribute("#bsn", "aria-invalid"), "true");
    const view = await chrome.newPage();
    await view.setViewportSize({ width: 1100, height: 800 });
    await view.goto(`${chain.urls.registryA}/registry`);
    await view.screenshot({ path: join(SCREENSHOTS, "registry.png") });
    assert.match(await view.textContent("body"), /NGGV:v1:/);
  });
});
