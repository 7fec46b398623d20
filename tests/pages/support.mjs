// Shared support for the page tests: a real loopback server for www/, a real
// headless Chromium (Debian's), and a log of every request a page makes.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
];

/** Starts tools/serve.py on a free loopback port; resolves to { url, stop }. */
export async function serveWww() {
  const child = spawn("python3", ["tools/serve.py", "--root", "www", "--port", "0"], {
    cwd: ROOT, stdio: ["ignore", "pipe", "inherit"],
  });
  let buffer = "";
  for await (const chunk of child.stdout) {
    buffer += chunk;
    const match = buffer.match(/on (http:\/\/[^\s]+)/);
    if (match) {
      return {
        url: match[1],
        stop: async () => { child.kill(); await once(child, "exit"); },
      };
    }
  }
  throw new Error("demo server did not start");
}

/** Launches Chromium; every request of every page is appended to `requests`. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: CHROMIUM_ARGS,
  });
  const requests = [];
  const errors = [];
  const newPage = async () => {
    const page = await browser.newPage();
    page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? "" }));
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    return page;
  };
  return { browser, newPage, requests, errors };
}
