// The latency a submission through the identity frame adds (./build.sh
// bench; not a test): in headless Chromium against the demo chain (the real
// pseudoform-demo binary, chain.mjs), the time from the submit click to the
// form's `pseudoform:submitted` event, for the in-page demo form and the
// framed one, N each after a warm-up, the clinician logged in once per form.
// Prints one line; writes bench/results/frame.json.
//   node bench/frame.mjs [--n 30] [--warmup 3] [--out bench/results/frame.json]
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { startChain } from "../crates/browser/tests/pages/chain.mjs";
import { generateIdentities } from "../crates/browser/tests/pages/identities.mjs";
import {
  CLINICAL,
  fillForm,
  fillFramed,
  launch,
  logInFrame,
  openBound,
  openFramed,
  submitForm,
} from "../crates/browser/tests/pages/support.mjs";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "30" },
    warmup: { type: "string", default: "3" },
    out: { type: "string", default: "bench/results/frame.json" },
  },
});
const N = Number(values.n);
const WARMUP = Number(values.warmup);

/** Clicks submit and resolves to the milliseconds until `pseudoform:submitted`, measured in the page. */
function timedSubmit(page) {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const form = document.querySelector("form[data-pseudoform]");
        const start = performance.now();
        const done = () => {
          form.removeEventListener("pseudoform:error", failed);
          resolve(performance.now() - start);
        };
        const failed = (e) => {
          form.removeEventListener("pseudoform:submitted", done);
          reject(new Error(`submission failed: ${e.detail?.code}`));
        };
        form.addEventListener("pseudoform:submitted", done, { once: true });
        form.addEventListener("pseudoform:error", failed, { once: true });
        form.querySelector("button[type=submit]").click();
      }),
  );
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const summary = (times) => {
  const sorted = [...times].sort((a, b) => a - b);
  return { n: sorted.length, medianMs: quantile(sorted, 0.5), p90Ms: quantile(sorted, 0.9) };
};

const chain = await startChain();
const chrome = await launch({ account: chain.urls.account });
try {
  const identities = generateIdentities(2 * (N + WARMUP) + 2, 20261203).map((i) => i.typed);
  const times = { inPage: [], framed: [] };

  // In the page: the first submit logs the clinician in (the popup), so it is a warm-up.
  const inPage = await openBound(chrome.newPage, chain.formUrl);
  await fillForm(inPage, identities[0], "bench", CLINICAL);
  const first = await submitForm(inPage);
  if (first.kind !== "success") throw new Error(`in-page form: ${first.text}`);
  for (let i = 1; i <= N + WARMUP; i++) {
    await fillForm(inPage, identities[i], "bench", CLINICAL);
    const ms = await timedSubmit(inPage);
    if (i > WARMUP) times.inPage.push(ms);
  }
  await inPage.close();

  // In the frame: the login is the frame's own control.
  const { page, frame } = await openFramed(chrome.newPage, chain.frameFormUrl);
  await logInFrame(frame);
  const framedIdentities = identities.slice(N + WARMUP + 1).map(({ bsn: _bsn, ...rest }) => rest);
  for (let i = 0; i < N + WARMUP; i++) {
    await fillFramed(page, frame, framedIdentities[i], "bench", CLINICAL);
    const ms = await timedSubmit(page);
    if (i >= WARMUP) times.framed.push(ms);
  }
  await page.close();

  const result = {
    what: "submit click to pseudoform:submitted, headless Chromium, demo chain on loopback",
    inPage: summary(times.inPage),
    framed: summary(times.framed),
  };
  result.addedMedianMs = result.framed.medianMs - result.inPage.medianMs;
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, `${JSON.stringify({ ...result, times }, null, 2)}\n`);
  const f = (ms) => ms.toFixed(0);
  console.log(
    `frame latency (N=${N}): in-page median ${f(result.inPage.medianMs)} ms p90 ${f(result.inPage.p90Ms)} ms; ` +
      `framed median ${f(result.framed.medianMs)} ms p90 ${f(result.framed.p90Ms)} ms; ` +
      `added median ${f(result.addedMedianMs)} ms`,
  );
} finally {
  await chrome.browser.close();
  await chain.stop();
}
