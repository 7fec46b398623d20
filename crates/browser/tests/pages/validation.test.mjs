// The validation round trip of the reversible pseudonym (type R), as a new
// user runs it in the demo, in real headless Chromium against the real
// chain: the clinician submits records through the demo form (in the page
// and in frame mode), each with R sealed to provider A's current key; the
// registry's staff asks for validation of some of them on the registry
// page; the provider's validation page (the portal's /validation, the key
// file imported with setInputFiles) shows exactly the right patient numbers
// for exactly those records; the answers (confirm, correct, withdraw) reach
// the registry, which no longer lists the withdrawn record; a withdrawal by
// patient number ("Bezwaar van een patiënt"). The registry's, the TTP's and
// a second provider's real keys (from the demo's folder) cannot open the
// ciphertexts, tried in the page with WebCrypto, while provider A's opens
// them; a ciphertext opened as for another registry does not open; the page
// shows no number for an R that the TTP did not sign for that record
// (database edits: a ciphertext copied to another record, with or without
// that record's signed claims, and one forged with the provider's public
// key: `validation.unbound`); after a key rotation (a second key listed
// last at the TTP, the chain restarted in its folder) new records use the
// new kid and old ones still open with the old key, both only by provider
// A, and a profile without the TTP's current key is warned; deleting a key
// asks first. Last, the leak audit over the whole round trip: no patient
// number (nor any other form of the identities) in any request the browser
// made to the registry or the TTP, in any request the proxies forwarded,
// any log, any database or the provider page's browser storage.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { Aes256Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from "@hpke/core";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fillForm, fillFramed, launch, logInFrame, openBound, openFramed, submitForm } from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";
import { generateIdentities, needlesOf } from "./identities.mjs";
import { chainHaystacks, derivedForms, needleIndex, scan } from "./leaks.mjs";
import { PSEUDONYM_TYPES as TYPES } from "../../../../www/pkg/constants.js";

const SCREENSHOT = join(ROOT, "docs", "screenshots", "provider-validation.png");
/** Identities: four for the round trip, one for the objection (submitted twice), two after the rotation. */
const identities = generateIdentities(7, 20261202);
const typed = identities.map(({ typed: { bsn: _bsn, ...rest } }) => rest);
const REGISTRY = "registry-a";

let chain, chrome;
/** Every console error and uncaught exception of the test's pages: `{ text, url }`. */
const consoleErrors = [];
/** Haystacks of the first chain (its proxies and logs), kept over the restart. */
const earlier = [];
/** The provider page as it showed the numbers: the leak scan's control. */
let shownPage;
/** Every submission to registry A: `{ identity, recordId, record, reversible }`. */
const submitted = [];

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
  // Each page's console errors with where they come from.
  const newPage = chrome.newPage;
  chrome.newPage = async () => {
    const page = await newPage();
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push({ text: m.text(), url: m.location().url });
    });
    page.on("pageerror", (e) => consoleErrors.push({ text: e.message, url: page.url() }));
    return page;
  };
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

/** Unpadded base64url SHA-256 of a string. */
const sha256 = (text) => createHash("sha256").update(text).digest("base64url");
/** The RFC 7638 thumbprint (kid) of a public key PEM file's key. */
async function kidOf(publicPemFile) {
  const { crv, kty, x, y } = createPublicKey(await readFile(publicPemFile)).export({ format: "jwk" });
  return sha256(JSON.stringify({ crv, kty, x, y }));
}
/** A private key file as PKCS#8 PEM (the TTP's signing key may be SEC1). */
const pkcs8 = async (file) => createPrivateKey(await readFile(file)).export({ type: "pkcs8", format: "pem" });
const inDir = (name) => join(chain.dir, name);

/** The submissions the proxies forwarded since `from` (per proxy), parsed. */
function submissionsSince(from) {
  return [chain.registryProxy, chain.framedProxy].flatMap((proxy, i) =>
    proxy.state.requests
      .slice(from[i])
      .filter((r) => r.method === "POST" && r.url.startsWith("/api/submissions"))
      .map((r) => JSON.parse(r.body)),
  );
}
const marks = () => [chain.registryProxy.state.requests.length, chain.framedProxy.state.requests.length];

/** Submits `identity` (index into `identities`) through the in-page or the frame-mode form. */
async function submit(index, mode = "page") {
  const from = marks();
  const remark = `validatie ${index} ${submitted.length}`;
  let page;
  if (mode === "page") {
    page = await openBound(chrome.newPage, chain.formUrl);
    await fillForm(page, typed[index], remark);
  } else {
    const framed = await openFramed(chrome.newPage, chain.frameFormUrl);
    page = framed.page;
    await logInFrame(framed.frame);
    await fillFramed(page, framed.frame, typed[index], remark);
  }
  const status = await submitForm(page);
  assert.equal(status.kind, "success", status.text);
  await page.close();
  const [body] = submissionsSince(from);
  assert.ok(body?.record && body.reversible, "the submission carries the record and R");
  assert.equal(body.reversible.type, "R");
  const record = (await chain.records()).find((r) => r.data.opmerking === remark);
  assert.ok(record, "the registry holds the record");
  const entry = { index, recordId: record.id, record: body.record, reversible: body.reversible, mode };
  submitted.push(entry);
  return entry;
}

/** Asks for validation of `ids` on the registry page, as the registry's staff does. */
async function askValidation(ids, question) {
  const page = await chrome.newPage();
  await page.goto(`${chain.urls.registryA}/registry`);
  for (const id of ids) await page.check(`input[name=record][value="${id}"]`);
  if (question) await page.fill("[name=question]", question);
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Validatie vragen')")]);
  await page.close();
}

/** How often the provider page has finished loading its requests. */
const loads = (page) => page.evaluate(() => Number(document.body.dataset.loads ?? 0));

/**
 * Opens the provider's validation page in a fresh profile, logs in at the
 * portal through the page's link and imports `keyFiles`. Resolves to the page.
 */
async function openProvider(keyFiles) {
  const page = await chrome.newPage();
  await page.goto(`${chain.urls.portal}/validation`);
  await page.waitForFunction(() => ["login", "ready", "error"].includes(document.body.dataset.state));
  assert.equal(await page.evaluate(() => document.body.dataset.state), "login", "a fresh profile must log in");
  await page.click("#login-link");
  await page.fill("#username", chain.urls.account.username);
  await page.fill("#password", chain.urls.account.password);
  await Promise.all([page.waitForURL(/\/validation$/), page.click("button[type=submit]")]);
  await page.waitForFunction(() => document.body.dataset.state === "ready", undefined, { timeout: 30_000 });
  for (const file of keyFiles) {
    const before = await loads(page);
    await page.setInputFiles("#key-file", file);
    await page.waitForFunction((n) => Number(document.body.dataset.loads) > n, before, { timeout: 30_000 });
  }
  return page;
}

/** The rows the provider page shows: `{ recordId → { number, error, answered } }`. */
function shownRows(page) {
  return page.evaluate(
    (registry) =>
      Object.fromEntries(
        [...document.querySelectorAll(`[data-registry="${registry}"] tr[data-record-id]`)].map((row) => [
          row.dataset.recordId,
          {
            number: row.dataset.error ? null : row.querySelector("td.number").textContent,
            error: row.dataset.error ?? null,
            answered: row.dataset.answered ?? null,
          },
        ]),
      ),
    REGISTRY,
  );
}

/** The MRN the provider expects to see for a submission. */
const numberOf = (entry) => typed[entry.index].mrn.replace(/\s+/g, "");

/** Registry A's records, the withdrawn ones too. */
const allRecords = async () => (await chain.json(`${chain.urls.registryA}/api/records?include=withdrawn`)).body;

/**
 * In the provider page: opens each envelope with each PKCS#8 key (`keys`,
 * by name) and the aad of `recipient`: `{ name → [plaintext | error code] }`.
 */
function tryKeys(page, keys, entries, recipient) {
  return page.evaluate(
    async ({ keys, entries, recipient }) => {
      const m = await import("/pseudoform-validation.js");
      const result = {};
      for (const [name, pem] of Object.entries(keys)) {
        let key;
        try {
          key = await m.keyFromPem(pem);
        } catch (error) {
          result[name] = entries.map(() => `import:${error.code}`);
          continue;
        }
        result[name] = [];
        for (const { reversible } of entries) {
          const aad = m.reversibleAad({ ...recipient, kid: reversible.kid });
          try {
            result[name].push(await m.openReversible(key, reversible, aad));
          } catch (error) {
            result[name].push(`open:${error.code}`);
          }
        }
      }
      return result;
    },
    { keys, entries: entries.map((e) => ({ reversible: e.reversible })), recipient },
  );
}

/** The RSA key of a registry tried on the ciphertexts as RSA-OAEP-256 (what that key can do). */
function tryRsa(page, pem, entries) {
  return page.evaluate(
    async ({ pem, cts }) => {
      const der = Uint8Array.from(atob(pem.replace(/-----[^-]+-----|\s+/g, "")), (c) => c.charCodeAt(0));
      const key = await crypto.subtle.importKey("pkcs8", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, [
        "decrypt",
      ]);
      const b64 = (s) => Uint8Array.from(atob(s.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
      const outcomes = [];
      for (const ct of cts) {
        try {
          await crypto.subtle.decrypt({ name: "RSA-OAEP" }, key, b64(ct));
          outcomes.push("opened");
        } catch {
          outcomes.push("refused");
        }
      }
      return outcomes;
    },
    { pem, cts: entries.map((e) => e.reversible.ct) },
  );
}

/**
 * The pages' errors, but for two failed loads Chromium logs: the portal's
 * 401 of a subject token before the login (how the page learns it must log
 * in), and the registry page's icon (it links none).
 */
const pageErrors = () =>
  consoleErrors
    .filter(({ text, url }) => {
      const { pathname } = new URL(url, "http://x");
      if (/status of 401/.test(text) && pathname === "/api/subject-token") return false;
      return !(/status of 404/.test(text) && pathname === "/favicon.ico");
    })
    .map(({ text, url }) => `${text} (${url})`);

const recipientA = () => ({
  recipientOrganization: chain.urls.recipientA.organization,
  recipientScope: chain.urls.recipientA.scope,
});

test("records with R: in the page and in frame mode, each sealed to provider A's current key", async () => {
  await submit(0);
  await submit(1);
  await submit(2, "frame");
  await submit(3);
  const kid = await kidOf(inDir("provider-a-enc.pub.pem"));
  for (const entry of submitted) assert.equal(entry.reversible.kid, kid, "sealed to the current key");
  const listed = await chain.records();
  for (const entry of submitted) {
    const record = listed.find((r) => r.id === entry.recordId);
    assert.equal(record.reversible?.kid, kid);
    assert.equal(record.status, "active");
    assert.equal(JSON.stringify(record).includes(entry.reversible.ct), false, "the list shows no ciphertext");
  }
});

test("the provider's page shows exactly the numbers of exactly the asked records; the answers reach the registry", async () => {
  const [confirm, correct, withdraw, unasked] = submitted;
  await askValidation([confirm.recordId, correct.recordId, withdraw.recordId], "Klopt de operatiedatum?");
  const page = await openProvider([inDir("provider-a-enc.key.pem")]);
  const rows = await shownRows(page);
  assert.deepEqual(
    rows,
    Object.fromEntries(
      [confirm, correct, withdraw].map((e) => [
        String(e.recordId),
        { number: numberOf(e), error: null, answered: null },
      ]),
    ),
  );
  assert.equal(rows[String(unasked.recordId)], undefined, "a record not asked about is not shown");
  assert.equal(await page.$("#directory-warning"), null, "the TTP's current key is the one in this browser");
  assert.match(await page.textContent("[data-request] .question"), /Klopt de operatiedatum\?/);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  shownPage = Buffer.from(await page.content());

  // The key stays in the profile (non-extractable); nothing else is stored.
  const stored = await page.evaluate(async () => {
    const dbs = (await indexedDB.databases()).map((d) => d.name);
    const db = await new Promise((resolve) => {
      const r = indexedDB.open("pseudoform-provider-keys");
      r.onsuccess = () => resolve(r.result);
    });
    const keys = await new Promise((resolve) => {
      const r = db.transaction("keys").objectStore("keys").getAll();
      r.onsuccess = () => resolve(r.result);
    });
    db.close();
    return {
      dbs,
      local: localStorage.length,
      session: sessionStorage.length,
      keys: keys.map((k) => ({
        fields: Object.keys(k).sort(),
        extractable: k.privateKey.extractable,
        type: k.privateKey.algorithm.name,
      })),
    };
  });
  assert.deepEqual(stored, {
    dbs: ["pseudoform-provider-keys"],
    local: 0,
    session: 0,
    keys: [{ fields: ["importedAt", "kid", "privateKey", "publicKey"], extractable: false, type: "ECDH" }],
  });
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.state === "ready" && Number(document.body.dataset.loads) > 0);
  assert.equal((await shownRows(page))[String(confirm.recordId)].number, numberOf(confirm), "the kept key opens again");

  const answer = async (entry, kind, correction) => {
    const row = `[data-registry="${REGISTRY}"] tr[data-record-id="${entry.recordId}"]`;
    if (correction) await page.fill(`${row} input.correction`, correction);
    await page.click(`${row} button[data-answer=${kind}]`);
    await page.waitForSelector(`${row}[data-answered=${kind}]`);
  };
  await answer(confirm, "confirm");
  await answer(correct, "correct", "operatiedatum is 2 november");
  await answer(withdraw, "withdraw");

  const active = await chain.records();
  const byId = (list, e) => list.find((r) => r.id === e.recordId);
  assert.equal(byId(active, confirm).validation, "confirm");
  assert.equal(byId(active, correct).validation, "correct");
  assert.equal(byId(active, withdraw), undefined, "the withdrawn record is no longer listed");
  assert.equal(byId(active, unasked).validation ?? "none", "none");
  const all = await allRecords();
  assert.equal(byId(all, withdraw).status, "withdrawn");
  assert.equal(byId(all, withdraw).validation, "withdraw");
  const registryPage = await chrome.newPage();
  await registryPage.goto(`${chain.urls.registryA}/registry`);
  const text = await registryPage.textContent("body");
  assert.match(text, /Validatieverzoeken/);
  await registryPage.close();
  assert.deepEqual(pageErrors(), []);
  await page.close();
});

test("a withdrawal by patient number: every record of that patient, after a confirmation", async () => {
  const first = await submit(4);
  const second = await submit(4, "frame");
  const other = submitted[3];
  const page = await openProvider([inDir("provider-a-enc.key.pem")]);
  // Typed as a clinician may (spaces); the page normalises it as the module does.
  const mrn = typed[4].mrn;
  await page.fill("#objection-number", ` ${mrn.slice(0, 3)} ${mrn.slice(3)} `);
  await page.click("#objection-form button[type=submit]");
  await page.waitForSelector("#objection-results[data-state=found]");
  const found = await page.$$eval("#objection-matches li", (items) => items.map((i) => Number(i.dataset.recordId)));
  assert.deepEqual(found.sort(), [first.recordId, second.recordId].sort());
  assert.equal(new URL(page.url()).search, "", "the number is in no URL");
  await page.click("#objection-withdraw");
  await page.click("#objection-yes");
  await page.waitForSelector("#objection-results[data-state=withdrawn]");
  const active = await chain.records();
  assert.equal(
    active.find((r) => r.id === first.recordId),
    undefined,
  );
  assert.equal(
    active.find((r) => r.id === second.recordId),
    undefined,
  );
  assert.ok(
    active.find((r) => r.id === other.recordId),
    "another patient's record stays",
  );
  const audit = (await chain.json(`${chain.urls.registryA}/api/validation-audit`)).body;
  const events = (audit.events ?? audit).map((e) => e.event);
  for (const event of ["request.created", "request.listed", "answer.recorded", "records.listed", "record.withdrawn"]) {
    assert.ok(events.includes(event), `audited: ${event}`);
  }
  await page.close();
});

test("only provider A's key opens R: not the registry's, the TTP's or a second provider's, nor for another record or registry", async () => {
  const page = await openProvider([inDir("provider-a-enc.key.pem")]);
  const entries = submitted.slice(0, 4);
  const keys = {
    providerA: await pkcs8(inDir("provider-a-enc.key.pem")),
    secondProvider: await pkcs8(inDir("provider-b-enc.key.pem")),
    ttpSigning: await pkcs8(inDir("ttp-signing-key.pem")),
    providerClient: await pkcs8(inDir("provider-client-key.pem")),
    registryA: await pkcs8(inDir("registry-a-key.pem")),
  };
  const opened = await tryKeys(page, keys, entries, recipientA());
  const provider = chain.urls.provider;
  assert.deepEqual(
    opened.providerA,
    entries.map((e) => `${provider}|${numberOf(e)}`),
  );
  for (const name of ["secondProvider", "ttpSigning", "providerClient"]) {
    assert.deepEqual(
      opened[name],
      entries.map(() => "open:reversible.undecryptable"),
      name,
    );
  }
  assert.deepEqual(
    opened.registryA,
    entries.map(() => "import:providerKey.invalid"),
    "an RSA key is no KEM key",
  );
  assert.deepEqual(
    await tryRsa(page, keys.registryA, entries),
    entries.map(() => "refused"),
  );

  // Bound to the registry: provider A's key, but registry B's aad.
  const asB = await tryKeys(page, { providerA: keys.providerA }, entries, {
    recipientOrganization: chain.urls.recipientB.organization,
    recipientScope: chain.urls.recipientB.scope,
  });
  assert.deepEqual(
    asB.providerA,
    entries.map(() => "open:reversible.undecryptable"),
  );
  await page.close();

  // Edits of the registry's database, as an attacker with write access would make them.
  const sql = (statement) => execFileSync("sqlite3", [inDir("registry-a.sqlite"), statement]);
  const copy = (columns, from, to) =>
    sql(
      `UPDATE reversible SET ${columns
        .map((c) => `${c} = (SELECT ${c} FROM reversible WHERE record_id = ${from.recordId})`)
        .join(", ")} WHERE record_id = ${to.recordId}`,
    );
  const [from, to] = [entries[0], entries[3]];
  const forged = await submit(0);
  const target = await submit(1);
  // (a) A ciphertext copied to another record without its signed claims.
  copy(["kid", "enc", "ct"], from, target);
  // (b) A forgery: sealed by the attacker to provider A's public key (which is public), with
  // the aad of this registry, the record's own signed claims left as they are.
  const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
  const publicJwk = createPublicKey(await readFile(inDir("provider-a-enc.pub.pem"))).export({ format: "jwk" });
  const kid = await kidOf(inDir("provider-a-enc.pub.pem"));
  const sender = await suite.createSenderContext({
    recipientPublicKey: await suite.kem.importKey("jwk", publicJwk, true),
    info: Buffer.from("pseudoform-reversible/1"),
  });
  const chosen = "PAT-999999";
  const aad = `pseudoform-reversible/1|${recipientA().recipientOrganization}|${recipientA().recipientScope}|${kid}`;
  const ct = await sender.seal(Buffer.from(`${chain.urls.provider}|${chosen}`), Buffer.from(aad));
  const b64 = (bytes) => Buffer.from(bytes).toString("base64url");
  sql(
    `UPDATE reversible SET kid = '${kid}', enc = '${b64(sender.enc)}', ct = '${b64(ct)}' WHERE record_id = ${forged.recordId}`,
  );
  // (c) A ciphertext copied to another record together with its signed claims: the same claims
  // then come with two records.
  copy(["kid", "enc", "ct", "claims"], from, to);
  await askValidation([from.recordId, to.recordId, forged.recordId, target.recordId]);
  const provider2 = await openProvider([inDir("provider-a-enc.key.pem")]);
  const rows = await shownRows(provider2);
  for (const entry of [target, forged, to, from]) {
    assert.deepEqual(
      rows[String(entry.recordId)],
      { number: null, error: "validation.unbound", answered: null },
      `record ${entry.recordId}`,
    );
    const cell = await provider2.textContent(`tr[data-record-id="${entry.recordId}"] td.number`);
    assert.ok(!cell.includes(numberOf(from)) && !cell.includes(chosen), "no number shown");
    assert.match(cell, /validation\.unbound/);
    assert.equal(
      await provider2.$(`tr[data-record-id="${entry.recordId}"] button[data-answer]`),
      null,
      "nothing can be answered for it",
    );
  }
  // The forged number matches in no withdrawal search either.
  await provider2.fill("#objection-number", chosen);
  await provider2.click("#objection-form button[type=submit]");
  await provider2.waitForSelector("#objection-results[data-state=found]");
  assert.equal(await provider2.$$eval("#objection-matches li", (items) => items.length), 0);
  await provider2.close();
});

test("rotation: new records use the new kid, old ones still open with the old key, both only by provider A", async () => {
  earlier.push(...(await chainHaystacks(chain, [chain.ttpProxy, chain.registryProxy, chain.framedProxy])));
  const dir = chain.dir;
  await chain.stop({ keep: true });
  chain = await startChain({ dir, args: ["--rotate-provider-key"] });
  const oldKid = await kidOf(inDir("provider-a-enc.pub.pem"));
  const newKid = await kidOf(inDir("provider-a-enc-2.pub.pem"));
  assert.notEqual(oldKid, newKid);
  const directory = (await chain.json(`${chain.urls.ttp}/v1/provider-keys?provider=${chain.urls.provider}`)).body;
  assert.equal(directory.keys.length, 2, "the TTP lists the current and the previous key");

  const fresh = await submit(5);
  const alsoFresh = await submit(6, "frame");
  assert.equal(fresh.reversible.kid, newKid);
  assert.equal(alsoFresh.reversible.kid, newKid);
  const old = submitted[1]; // answered "correct" before, still active
  assert.equal(old.reversible.kid, oldKid);

  await askValidation([old.recordId, fresh.recordId, alsoFresh.recordId]);
  // With both keys: all open. With the new key only: the old one has no key.
  const both = await openProvider([inDir("provider-a-enc.key.pem"), inDir("provider-a-enc-2.key.pem")]);
  const rows = await shownRows(both);
  for (const entry of [old, fresh, alsoFresh]) {
    assert.equal(rows[String(entry.recordId)]?.number, numberOf(entry), `record ${entry.recordId}`);
  }
  const keys = {
    old: await pkcs8(inDir("provider-a-enc.key.pem")),
    current: await pkcs8(inDir("provider-a-enc-2.key.pem")),
    secondProvider: await pkcs8(inDir("provider-b-enc.key.pem")),
    ttpSigning: await pkcs8(inDir("ttp-signing-key.pem")),
  };
  const entries = [old, fresh, alsoFresh];
  const opened = await tryKeys(both, keys, entries, recipientA());
  const provider = chain.urls.provider;
  assert.deepEqual(opened.old, [
    `${provider}|${numberOf(old)}`,
    "open:reversible.undecryptable",
    "open:reversible.undecryptable",
  ]);
  assert.deepEqual(opened.current, [
    "open:reversible.undecryptable",
    `${provider}|${numberOf(fresh)}`,
    `${provider}|${numberOf(alsoFresh)}`,
  ]);
  assert.deepEqual(
    opened.secondProvider,
    entries.map(() => "open:reversible.undecryptable"),
  );
  assert.deepEqual(
    opened.ttpSigning,
    entries.map(() => "open:reversible.undecryptable"),
  );

  // Deleting a key asks first, naming it; cancelling keeps it.
  const item = `#key-list li[data-kid="${oldKid}"]`;
  await both.click(`${item} button[data-delete]`);
  assert.match(await both.textContent(`${item} .delete-confirm`), new RegExp(`${oldKid}.*geen reservekopie`, "s"));
  await both.click(`${item} button[data-delete-cancel]`);
  assert.equal(await both.$(`${item} .delete-confirm`), null);
  assert.ok(await both.$(item), "cancelled: the key stays");
  const before = await loads(both);
  await both.click(`${item} button[data-delete]`);
  await both.click(`${item} button[data-delete-confirm]`);
  await both.waitForFunction((n) => Number(document.body.dataset.loads) > n, before);
  assert.equal(await both.$(item), null, "confirmed: the key is gone");
  assert.equal((await shownRows(both))[String(old.recordId)].error, "validation.noKey");
  await both.close();

  const newOnly = await openProvider([inDir("provider-a-enc-2.key.pem")]);
  const onlyNew = await shownRows(newOnly);
  assert.equal(onlyNew[String(old.recordId)].error, "validation.noKey");
  assert.equal(onlyNew[String(fresh.recordId)].number, numberOf(fresh));
  assert.equal(await newOnly.$("#directory-warning"), null, "the current key is here");
  await newOnly.close();

  // A profile that lacks the key the TTP names as current is warned, with both kids.
  const oldOnly = await openProvider([inDir("provider-a-enc.key.pem")]);
  const warning = await oldOnly.waitForSelector("#directory-warning");
  assert.equal(await warning.getAttribute("data-kid"), newKid);
  assert.equal(await warning.getAttribute("role"), "alert");
  const text = await warning.textContent();
  assert.ok(text.includes(newKid) && text.includes(oldKid), text);
  assert.equal((await shownRows(oldOnly))[String(old.recordId)].number, numberOf(old));
  await oldOnly.close();
});

test("leak audit: no patient number or other identifying form anywhere over the whole round trip", async () => {
  const formPage = await openBound(chrome.newPage, chain.formUrl);
  const derived = await derivedForms(formPage, typed, TYPES);
  await formPage.close();
  const needles = new Set();
  identities.forEach((identity, i) => {
    for (const n of needlesOf(identity, derived[i].normalised, derived[i].inputs)) needles.add(n);
  });
  for (const t of typed) {
    needles.add(t.mrn);
    needles.add(`${chain.urls.provider}|${t.mrn}`);
  }
  const index = needleIndex(needles);
  const portal = new URL(chain.urls.portal).origin;
  const browserRequests = chrome.requests
    .filter((r) => new URL(r.url).origin !== portal || r.method !== "GET")
    .map((r) => [`browser ${r.method} ${r.url}`, Buffer.from(`${r.url}\n${r.body}`)]);
  assert.ok(browserRequests.some(([name]) => name.includes("/api/validation-requests")));
  assert.ok(browserRequests.some(([name]) => name.includes("/api/provider-records")));
  assert.ok(browserRequests.some(([name]) => name.includes("/api/withdrawals")));
  // The provider page's own storage after a search by number: localStorage, sessionStorage and
  // every IndexedDB store, each value but the (non-extractable, unreadable) CryptoKeys.
  const provider = await openProvider([inDir("provider-a-enc-2.key.pem")]);
  await provider.fill("#objection-number", typed[5].mrn);
  await provider.click("#objection-form button[type=submit]");
  await provider.waitForSelector("#objection-results[data-state=found]");
  const storage = await provider.evaluate(async () => {
    const entries = (store) =>
      Object.fromEntries(
        Array.from({ length: store.length }, (_, i) => store.key(i)).map((k) => [k, store.getItem(k)]),
      );
    const dump = { local: entries(localStorage), session: entries(sessionStorage), indexedDB: {} };
    for (const { name } of await indexedDB.databases()) {
      const db = await new Promise((resolve, reject) => {
        const r = indexedDB.open(name);
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => reject(r.error);
      });
      for (const storeName of db.objectStoreNames) {
        const values = await new Promise((resolve) => {
          const r = db.transaction(storeName).objectStore(storeName).getAll();
          r.onsuccess = () => resolve(r.result);
        });
        dump.indexedDB[`${name}/${storeName}`] = values.map((v) =>
          Object.fromEntries(Object.entries(v).filter(([, x]) => !(x instanceof CryptoKey))),
        );
      }
      db.close();
    }
    return dump;
  });
  await provider.close();
  assert.deepEqual(
    Object.values(storage.indexedDB)
      .flat()
      .map((v) => Object.keys(v).sort()),
    [["importedAt", "kid"]],
    "the key store holds the key, its kid and when it came",
  );
  const haystacks = [
    ...earlier,
    ...(await chainHaystacks(chain, [chain.ttpProxy, chain.registryProxy, chain.framedProxy])),
    ...browserRequests,
    ["provider page storage", Buffer.from(JSON.stringify(storage))],
  ];
  // The control: the same scan finds the numbers where they belong, in the provider's page.
  const shown = scan(shownPage, index).leaks;
  for (const entry of submitted.slice(0, 3))
    assert.ok(shown.includes(numberOf(entry)), "the scan finds a shown number");
  const leaks = [];
  for (const [name, bytes] of haystacks) {
    const { leaks: found } = scan(bytes, index);
    if (found.length) leaks.push(`${name}: ${found.length} leak(s)`);
  }
  assert.deepEqual(leaks, []);
  assert.deepEqual(pageErrors(), []);
});
