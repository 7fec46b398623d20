// Shared support for the page tests: a real headless Chromium (Debian's) and
// a log of every request a page makes.
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
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
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    return page;
  };
  return { browser, newPage, requests, errors };
}
