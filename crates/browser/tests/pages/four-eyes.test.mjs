// Four-eyes approval at the provider, in real headless Chromium against the
// real chain started with `--four-eyes`: the portal (the provider's identity
// provider) signs no subject token for the validation page until a second
// account has approved the first account's ask. Two browser contexts, one
// per demo account: without the approval no request of the validation page
// reaches the registry (nor a validation token request the TTP) and no
// number is shown, even with the key imported; the asker cannot approve its
// own ask; after the second account clicks "Goedkeuren", the first sees the
// patient numbers of the asked records, while the second (not approved
// itself) still sees none.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fillForm, launch, openBound, submitForm } from "./support.mjs";
import { startChain } from "./chain.mjs";
import { generateIdentities } from "./identities.mjs";

const identities = generateIdentities(2, 20261215);
const typed = identities.map(({ typed: { bsn: _bsn, ...rest } }) => rest);
const REGISTRY = "registry-a";

let chain, chrome;
/** Uncaught exceptions of the test's pages. */
const pageErrors = [];

before(async () => {
  chain = await startChain({ args: ["--four-eyes"] });
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

/** The number the provider expects to see for identity `index`. */
const numberOf = (index) => typed[index].mrn.replace(/\s+/g, "");

/** Submits identity `index` through the demo form: the registry's record id. */
async function submit(index) {
  const remark = `vier ogen ${index}`;
  const page = await openBound(chrome.newPage, chain.formUrl);
  await fillForm(page, typed[index], remark);
  const status = await submitForm(page);
  assert.equal(status.kind, "success", status.text);
  await page.close();
  const record = (await chain.records()).find((r) => r.data.opmerking === remark);
  assert.ok(record?.reversible, "the registry holds the record with R");
  return record.id;
}

/**
 * Opens the validation page in a fresh browser context (its own profile and
 * cookies), logs `account` in at the portal and waits for the page to settle.
 * Every request the page makes is kept in `requests`.
 */
async function openAs(account) {
  const page = await chrome.newPage();
  const requests = [];
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? "" }));
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${chain.urls.portal}/validation`);
  await page.waitForFunction(() => document.body.dataset.state === "login");
  await page.click("#login-link");
  await page.fill("#username", account.username);
  await page.fill("#password", account.password);
  await Promise.all([page.waitForURL(/\/validation$/), page.click("button[type=submit]")]);
  await page.waitForFunction(() => ["approval", "ready", "error"].includes(document.body.dataset.state));
  return { page, requests };
}

/** The validation page's requests to the registry (any path) and its validate-token requests to the TTP. */
function validationCalls(requests) {
  const registryOrigin = new URL(chain.urls.registryA).origin;
  const registry = requests.filter((r) => new URL(r.url).origin === registryOrigin);
  const tokens = chain.ttpProxy.state.requests.filter(
    (r) => r.method === "POST" && r.url.startsWith("/v1/token") && r.body.includes("scope=validate"),
  );
  return { registry, tokens };
}

/** Registry A's validation audit events of type `event`. */
async function auditEvents(event) {
  const audit = (await chain.json(`${chain.urls.registryA}/api/validation-audit`)).body;
  assert.ok(Array.isArray(audit), "the registry lists its validation audit");
  return audit.filter((row) => row.event === event);
}

/** The numbers the page shows for registry A's rows: `{ recordId → number }`. */
const shownNumbers = (page) =>
  page.evaluate(
    (registry) =>
      Object.fromEntries(
        [...document.querySelectorAll(`[data-registry="${registry}"] tr[data-record-id]`)].map((row) => [
          row.dataset.recordId,
          row.dataset.error ? null : row.querySelector("td.number").textContent,
        ]),
      ),
    REGISTRY,
  );

test("four-eyes: no registry request and no number before a second account approves; then the numbers", async () => {
  assert.equal(chain.urls.fourEyes, true, "the demo runs with --four-eyes");
  const ids = [await submit(0), await submit(1)];
  // The registry's staff asks about both records (the registry page's form).
  const staff = await chrome.newPage();
  await staff.goto(`${chain.urls.registryA}/registry`);
  for (const id of ids) await staff.check(`input[name=record][value="${id}"]`);
  await Promise.all([staff.waitForNavigation(), staff.click("button:has-text('Validatie vragen')")]);
  await staff.close();

  // The first account: logged in, but the portal gives the page no token.
  const first = await openAs(chain.urls.account);
  assert.equal(await first.page.evaluate(() => document.body.dataset.state), "approval");
  await first.page.waitForSelector("#ask-approval");
  assert.equal(await first.page.isVisible("#four-eyes"), true);
  // The key imported now opens nothing: the page has no requests to open.
  await first.page.setInputFiles("#key-file", join(chain.dir, "provider-a-enc.key.pem"));
  await first.page.waitForSelector("#key-list li[data-kid]");
  await first.page.click("#ask-approval");
  await first.page.waitForSelector("#approval-waiting");
  assert.match(await first.page.textContent("#approval-waiting"), /Wacht op goedkeuring door een tweede medewerker/);
  // Its own ask is not offered to itself, and the portal refuses a self-approval.
  await first.page.waitForSelector("#approval-none");
  const self = await first.page.evaluate(async () => {
    const state = await (await fetch("/api/approvals", { credentials: "same-origin" })).json();
    const answer = await fetch(`/api/approvals/${encodeURIComponent(state.own.id)}/approve`, {
      method: "POST",
      credentials: "same-origin",
    });
    const token = await fetch("/api/subject-token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", origin: location.origin }),
      credentials: "same-origin",
    });
    return {
      own: state.own.status,
      account: state.account,
      status: answer.status,
      code: (await answer.json()).code,
      token: [token.status, (await token.json()).code],
    };
  });
  assert.deepEqual(self, {
    own: "pending",
    account: chain.urls.account.id,
    status: 403,
    code: "approval.sameAccount",
    token: [403, "approval.required"],
  });
  // A few polls later: still nothing reached the registry, no validate token, no number.
  await first.page.waitForFunction(() => Number(document.body.dataset.approvals) >= 3, undefined, {
    timeout: 20_000,
  });
  const before = validationCalls(first.requests);
  assert.deepEqual(before.registry, [], "no request of the page reached the registry");
  assert.deepEqual(before.tokens, [], "no validation token was asked of the TTP");
  assert.equal(await first.page.evaluate(() => document.body.dataset.state), "approval");
  assert.deepEqual(await shownNumbers(first.page), {});
  const html = await first.page.content();
  for (const index of [0, 1]) assert.equal(html.includes(numberOf(index)), false, "no number on the page");
  assert.deepEqual(await auditEvents("request.listed"), [], "the registry listed nothing for the provider");

  // The second account (another context) sees the pending ask by account id and approves it.
  const second = await openAs(chain.urls.secondAccount);
  assert.equal(await second.page.evaluate(() => document.body.dataset.state), "approval");
  const ask = `#approval-pending li[data-account="${chain.urls.account.id}"]`;
  await second.page.waitForSelector(ask);
  assert.match(await second.page.textContent(ask), new RegExp(`Medewerker ${chain.urls.account.id}`));
  await second.page.click(`${ask} button:has-text('Goedkeuren')`);
  await second.page.waitForSelector("#approval-none");

  // The first account's page notices (it polls) and opens the asked records.
  await first.page.waitForFunction(() => document.body.dataset.state === "ready", undefined, { timeout: 20_000 });
  await first.page.waitForFunction(() => Number(document.body.dataset.loads) > 0);
  assert.deepEqual(
    await shownNumbers(first.page),
    Object.fromEntries(ids.map((id, index) => [String(id), numberOf(index)])),
  );
  await first.page.waitForSelector("#approval-granted");
  const afterwards = validationCalls(first.requests);
  assert.ok(afterwards.registry.length > 0 && afterwards.tokens.length > 0, "now the page reached the registry");
  assert.ok((await auditEvents("request.listed")).length > 0);

  // The approver itself has no approval: its page still shows no number and asked the registry nothing.
  assert.equal(await second.page.evaluate(() => document.body.dataset.state), "approval");
  assert.deepEqual(validationCalls(second.requests).registry, []);
  const secondHtml = await second.page.content();
  for (const index of [0, 1]) assert.equal(secondHtml.includes(numberOf(index)), false);
  assert.deepEqual(pageErrors, []);
});
