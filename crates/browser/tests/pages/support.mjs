// Shared support for the page tests: a real headless Chromium (Debian's), a
// log of every request a page (and its login popup) makes, and the
// clinician's real login at the provider portal whenever a form opens it.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

/**
 * Logs the clinician in at the provider portal's popup, as a clinician does:
 * types the demo account into the login page and submits. A portal that
 * already has the clinician's session hands the token over and closes
 * without asking. Resolves when the popup has closed.
 */
export async function logIn(popup, account) {
  const closed = popup.waitForEvent("close", { timeout: 30_000 });
  const form = await Promise.race([
    popup.waitForSelector("#username", { timeout: 30_000 }).then(() => true),
    closed.then(() => false),
  ]);
  if (form) {
    await popup.fill("#username", account.username);
    await popup.fill("#password", account.password);
    await popup.click("button[type=submit]");
    await closed;
  }
}

/**
 * Launches Chromium; every request of every page (and popup) is appended to
 * `requests`. With `account` (the chain's `urls.account`), every login popup
 * a page opens is logged in with it (`logins` counts the popups).
 */
export async function launch({ account } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const requests = [];
  const errors = [];
  const logins = { count: 0 };
  const record = (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? "" });
  const newPage = async () => {
    const page = await browser.newPage({ locale: "nl-NL", timezoneId: "Europe/Amsterdam" });
    page.on("request", record);
    page.on("popup", (popup) => {
      logins.count++;
      popup.on("request", record);
      if (account) logIn(popup, account).catch((e) => errors.push(`login: ${e.message}`));
    });
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    return page;
  };
  return { browser, newPage, requests, errors, logins };
}

/** The demo form's required clinical fields, as a clinician chooses them. */
export const CLINICAL = { diagnose: "Heupartrose", asa: "II" };

/**
 * Types an identity into the demo form (the sex is a select), a remark and
 * the required clinical fields (`clinical`, by control id; selects chosen,
 * inputs typed).
 */
export async function fillForm(page, identity, remark = "controle na zes weken", clinical = CLINICAL) {
  for (const [field, value] of Object.entries(identity)) {
    if (field === "sex") await page.selectOption("#sex", value);
    else await page.fill(`#${field}`, value);
  }
  for (const [id, value] of Object.entries(clinical)) await page.selectOption(`#${id}`, value);
  await page.fill("#opmerking", remark);
}

/** The status line's `{ kind, text, retry }`. */
export function statusOf(page) {
  return page.evaluate(() => {
    const s = document.querySelector("[data-pseudoform-status]");
    return { kind: s.dataset.kind, text: s.textContent, retry: Boolean(s.querySelector("button")) };
  });
}

/** Every shown field message of the page: `[[key, text], …]` in document order. */
export function shownErrors(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("[data-pseudoform-error-for]")]
      .filter((e) => !e.hidden)
      .map((e) => [e.dataset.pseudoformErrorFor, e.textContent]),
  );
}

/** Opens a page and waits until its form is bound and the TTP's policy is known. */
export async function openBound(newPage, url) {
  const page = await newPage();
  const policy = page.waitForResponse((r) => r.url().includes("/v1/policy"));
  await page.goto(url);
  await page.waitForSelector("button[type=submit]:not([disabled])");
  await policy;
  return page;
}

/** Presses submit and waits for the outcome; `{ kind, text, retry }` of the status line. */
export async function submitForm(page) {
  await page.click("button[type=submit]");
  return settled(page);
}

/** Waits for the outcome of a submit, however it was started. */
export async function settled(page) {
  await page.waitForFunction(() => {
    const kind = document.querySelector("[data-pseudoform-status]").dataset.kind;
    return kind && kind !== "busy";
  });
  return statusOf(page);
}

/** The status line of the guide's example forms: the binding's, or `#status` of the programmatic one. */
const EXAMPLE_STATUS = "[data-pseudoform-status], #status";

/**
 * Submits one of the guide's example forms and waits for the new outcome
 * (the status line's kind is cleared first): `{ kind, text }`.
 */
export async function submitExample(page) {
  await page.evaluate((s) => delete document.querySelector(s).dataset.kind, EXAMPLE_STATUS);
  await page.click("button[type=submit]");
  await page.waitForFunction((s) => {
    const kind = document.querySelector(s).dataset.kind;
    return kind && kind !== "busy";
  }, EXAMPLE_STATUS);
  return page.evaluate((s) => {
    const e = document.querySelector(s);
    return { kind: e.dataset.kind, text: e.textContent };
  }, EXAMPLE_STATUS);
}

/**
 * A DPoP key of the test's own (not the browser's): proofs it signs are
 * well formed and valid for their URL, but by another key than the one a
 * token or record is bound to.
 */
export function foreignKey() {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { kty, crv, x, y } = publicKey.export({ format: "jwk" });
  const b64 = (data) => Buffer.from(data).toString("base64url");
  return {
    /** A proof for `method` on `url` with `claims` added (`ath`, `rec`). */
    proof(method, url, claims = {}) {
      const header = b64(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } }));
      const body = b64(
        JSON.stringify({
          jti: randomBytes(16).toString("hex"),
          htm: method,
          htu: url,
          iat: Math.floor(Date.now() / 1000),
          ...claims,
        }),
      );
      const signature = sign("sha256", Buffer.from(`${header}.${body}`), {
        key: privateKey,
        dsaEncoding: "ieee-p1363",
      });
      return `${header}.${body}.${b64(signature)}`;
    },
  };
}

/** Unpadded base64url SHA-256 (`ath`, `rec`). */
export const sha256 = (text) => createHash("sha256").update(text).digest("base64url");

// Frame mode: the identity frame inside the page's <pseudoform-identity>.

/** The identity frame of a page (a playwright Frame), once its fields are rendered. */
export async function identityFrame(page) {
  const element = await page.waitForSelector("pseudoform-identity iframe", { timeout: 30_000 });
  const frame = await element.contentFrame();
  await frame.waitForSelector("#identity:not([hidden])", { timeout: 30_000 });
  return frame;
}

/**
 * Opens a page in frame mode and waits until the frame has said ready (the
 * submit is enabled) and its fields are shown. Resolves to `{ page, frame }`.
 */
export async function openFramed(newPage, url) {
  const page = await newPage();
  await page.goto(url);
  await page.waitForSelector("button[type=submit]:not([disabled])", { timeout: 30_000 });
  return { page, frame: await identityFrame(page) };
}

/**
 * Logs the clinician in as they do in frame mode: a click on the frame's
 * own log-in control (the popup needs a click inside the frame), the popup
 * logged in by `launch({ account })`. Resolves when the frame has a credential.
 */
export async function logInFrame(frame) {
  await frame.click(".pseudoform-login");
  await frame.waitForSelector(".pseudoform-login", { state: "hidden", timeout: 30_000 });
}

/**
 * Types an identity into the identity frame (the sex is a select) and the
 * clinical fields into the page, as `fillForm` does for the in-page form.
 */
export async function fillFramed(page, frame, identity, remark = "controle na zes weken", clinical = CLINICAL) {
  for (const [field, value] of Object.entries(identity)) {
    if (field === "sex") await frame.selectOption("#sex", value);
    else await frame.fill(`#${field}`, value);
  }
  for (const [id, value] of Object.entries(clinical)) await page.selectOption(`#${id}`, value);
  await page.fill("#opmerking", remark);
}

/** The identifying values in the frame, by field (the opt-out left out). */
export function frameValues(frame) {
  return frame.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll("[data-pseudoform-field]")]
        .filter((e) => e.type !== "checkbox")
        .map((e) => [e.dataset.pseudoformField, e.value]),
    ),
  );
}
