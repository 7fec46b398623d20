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

/** Types an identity into the demo form (the sex is a select) and a remark. */
export async function fillForm(page, identity, remark = "controle na zes weken") {
  for (const [field, value] of Object.entries(identity)) {
    if (field === "sex") await page.selectOption("#sex", value);
    else await page.fill(`#${field}`, value);
  }
  await page.fill("#opmerking", remark);
}

/** Presses submit and waits for the outcome; `{ kind, text, retry }` of the status line. */
export async function submitForm(page) {
  await page.click("button[type=submit]");
  await page.waitForFunction(() => {
    const kind = document.querySelector("[data-pseudoform-status]").dataset.kind;
    return kind && kind !== "busy";
  });
  return page.evaluate(() => {
    const s = document.querySelector("[data-pseudoform-status]");
    return { kind: s.dataset.kind, text: s.textContent, retry: Boolean(s.querySelector("button")) };
  });
}
