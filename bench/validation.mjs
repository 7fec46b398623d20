// The provider's side of type R (./build.sh bench; not a test): the time to
// open RECORDS reversible pseudonyms in headless Chromium, as the validation
// page opens them (openReversible of www/pkg with a non-extractable ECDH
// P-256 key, the registry's associated data), one after the other; the
// page's check of each record's TTP-signed claims (one ES256 verification
// and one SHA-256) comes on top and is not measured here.
// The envelopes are sealed in the same page first (sealReversible, to the
// key's public half). ROUNDS rounds after
// a warm-up; prints one line and writes bench/results/validation.json.
//   node bench/validation.mjs [--out bench/results/validation.json]
import { createServer } from "node:http";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "../crates/browser/tests/pages/support.mjs";

/** Reversible pseudonyms opened per round: the figure the issue asks for. */
export const RECORDS = 1000;
const ROUNDS = 5;
const WARMUP = 100;

const { values } = parseArgs({ options: { out: { type: "string", default: "bench/results/validation.json" } } });
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WWW = join(ROOT, "www");
const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

// www/ on loopback (a secure context for WebCrypto), and a blank page.
const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/") {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>bench</title>");
    return;
  }
  const file = normalize(join(WWW, path));
  if (!file.startsWith(WWW + sep)) return res.writeHead(404).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: CHROMIUM_ARGS,
});
try {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  const result = await page.evaluate(
    async ({ records, rounds, warmup }) => {
      const m = await import("/pkg/reversible.js");
      const ecdh = { name: "ECDH", namedCurve: "P-256" };
      const { privateKey, publicKey } = await crypto.subtle.generateKey(ecdh, false, ["deriveBits"]);
      const jwk = await crypto.subtle.exportKey("jwk", publicKey);
      const kid = await m.kidOf(jwk);
      const recipient = {
        recipientOrganization: "oin:00000001000000001000",
        recipientScope: "kwaliteitsregistratie-a",
      };
      const sealed = [];
      for (let i = 0; i < records; i++) {
        const aad = m.reversibleAad({ ...recipient, kid });
        sealed.push({ aad, envelope: await m.sealReversible({ ...jwk, kid }, `ura:00000001|PAT-${100000 + i}`, aad) });
      }
      const keyPair = { privateKey, publicKey };
      for (let i = 0; i < warmup; i++) await m.openReversible(keyPair, sealed[i].envelope, sealed[i].aad);
      const times = [];
      for (let r = 0; r < rounds; r++) {
        const start = performance.now();
        for (const { envelope, aad } of sealed) await m.openReversible(keyPair, envelope, aad);
        times.push(performance.now() - start);
      }
      return { times, userAgent: navigator.userAgent };
    },
    { records: RECORDS, rounds: ROUNDS, warmup: WARMUP },
  );
  const sorted = [...result.times].sort((a, b) => a - b);
  const medianMs = sorted[Math.floor(sorted.length / 2)];
  const summary = {
    records: RECORDS,
    rounds: ROUNDS,
    medianMs: Math.round(medianMs),
    minMs: Math.round(sorted[0]),
    maxMs: Math.round(sorted.at(-1)),
    perRecordUs: Math.round((medianMs * 1000) / RECORDS),
    browser: result.userAgent,
  };
  console.log(
    `validation: opening ${RECORDS} reversible pseudonyms in the page: median ${summary.medianMs} ms ` +
      `(${summary.perRecordUs} µs each; min ${summary.minMs}, max ${summary.maxMs} ms over ${ROUNDS} rounds)`,
  );
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, `${JSON.stringify(summary, null, 2)}\n`);
} finally {
  await browser.close();
  server.close();
}
