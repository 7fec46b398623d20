// Shared support for the page tests: a real headless Chromium (Debian's) and
// a log of every request a page makes.
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

/** Launches Chromium; every request of every page is appended to `requests`. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const requests = [];
  const errors = [];
  const newPage = async () => {
    const page = await browser.newPage({ locale: "nl-NL", timezoneId: "Europe/Amsterdam" });
    page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? "" }));
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    return page;
  };
  return { browser, newPage, requests, errors };
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
