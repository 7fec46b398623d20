// Finding 4 of issue 12: a capture of the form's own traffic (a HAR file, a
// TLS-inspecting proxy, an extension) must not identify the patient. Every
// request and response of the demo form — every origin, bodies and headers —
// is captured while a few identities are submitted in real headless
// Chromium. Every 32-byte value in the capture (base64url or base64, padded
// or not, also inside base64url-encoded JSON such as a temporary pseudonym)
// is a candidate blind factor r and a candidate blinded element B; r⁻¹·B is
// computed for every pair (@noble/curves ristretto255) and compared with
// HashToGroup of each typed identity's inputs. Those are computed with the
// project's own core: the page's wasm `prepare` blinds the typed identity
// with a fresh r, and r⁻¹ un-blinds it again. No pair may match. As a
// control, the same join given the blind factors the form sealed to the
// registry (decrypted here with the registry's private key from the demo's
// directory) matches every one of them: so the join would find them, and the
// test can fail.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ristretto255 } from "@noble/curves/ed25519.js";
import { fillForm, launch, submitForm } from "./support.mjs";
import { startChain } from "./chain.mjs";
import { generateIdentities } from "./identities.mjs";
import { REVERSIBLE_TYPE } from "../../../../www/pkg/constants.js";

/** Identities submitted; each makes one TTP request and one registry POST. */
const COUNT = 3;
const Point = ristretto255.Point;
const ORDER = Point.Fn.ORDER;

let chain, chrome;
before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const fromB64 = (text) => Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64");
const hex = (bytes) => Buffer.from(bytes).toString("hex");
const leToBigInt = (bytes) => [...bytes].reverse().reduce((n, b) => (n << 8n) | BigInt(b), 0n);

/** a⁻¹ mod ℓ (Fermat). */
function invert(a) {
  let result = 1n;
  let base = a % ORDER;
  for (let e = ORDER - 2n; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * base) % ORDER;
    base = (base * base) % ORDER;
  }
  return result;
}

/**
 * Every 32-byte value in `text`: each maximal base64/base64url token that
 * decodes to 32 bytes; a longer token that decodes to printable text is
 * searched again (a temporary pseudonym is base64url of JSON).
 */
function values32(text, into, depth = 0) {
  for (const [token] of text.matchAll(/[A-Za-z0-9_+/-]{16,}={0,2}/g)) {
    const bytes = fromB64(token.replace(/=+$/, ""));
    if (bytes.length === 32) into.add(hex(bytes));
    else if (depth < 2 && bytes.length > 32) {
      const inner = bytes.toString("utf8");
      if (/^[\x20-\x7e]+$/.test(inner)) values32(inner, into, depth + 1);
    }
  }
  return into;
}

/** Every r⁻¹·B (hex) of candidates `rs` × `bs` (valid scalars × valid points). */
function joins(rs, bs) {
  const points = [];
  for (const b of bs) {
    try {
      points.push(Point.fromBytes(Buffer.from(b, "hex")));
    } catch {
      /* not a ristretto255 element */
    }
  }
  const out = new Set();
  for (const r of rs) {
    const s = leToBigInt(Buffer.from(r, "hex"));
    if (s === 0n || s >= ORDER) continue;
    const inverse = invert(s);
    for (const p of points) out.add(hex(p.multiply(inverse).toBytes()));
  }
  return out;
}

test("a capture of the form's traffic joins no blinded element with a blind factor", async (t) => {
  const page = await chrome.newPage();
  // The capture: every request (headers, body) and response (headers,
  // body) of the page, whatever the origin, as a HAR file would hold them.
  const capture = [];
  const pending = [];
  page.on("requestfinished", (request) =>
    pending.push(
      (async () => {
        const response = await request.response();
        const body = response ? await response.body().catch(() => Buffer.alloc(0)) : Buffer.alloc(0);
        capture.push({
          url: request.url(),
          requestHeaders: JSON.stringify(await request.allHeaders()),
          requestBody: request.postData() ?? "",
          responseHeaders: JSON.stringify(response ? await response.allHeaders() : {}),
          responseBody: /json|text|javascript/.test(response?.headers()["content-type"] ?? "")
            ? body.toString("utf8")
            : "",
        });
      })(),
    ),
  );
  await page.goto(chain.formUrl);
  await page.waitForSelector("button[type=submit]:not([disabled])");
  const config = (await chain.json(`${chain.urls.registryA}/api/form-config`)).body;

  const identities = generateIdentities(COUNT, 4);
  const expected = new Map();
  for (const identity of identities) {
    await page.selectOption("#diagnose", { index: 1 });
    await fillForm(page, identity.typed, "geen bijzonderheden");
    assert.equal((await submitForm(page)).kind, "success");
    // HashToGroup of the typed identity's inputs, by the page's own core.
    const prepared = await page.evaluate(
      async ([typed, o]) => {
        const m = await import("/pkg/index.js");
        await m.ready();
        return m.prepare(typed, o).prepared;
      },
      [
        identity.typed,
        {
          recipientOrganization: config.recipientOrganization,
          recipientScope: config.recipientScope,
          provider: config.provider,
          // R is sealed to the provider, not blinded: no type of prepare.
          types: config.types.filter((t) => t !== REVERSIBLE_TYPE),
        },
      ],
    );
    assert.ok(prepared.length >= 4, "several types per identity");
    for (const p of prepared) {
      const r = leToBigInt(fromB64(p.blindFactor));
      const h = Point.fromBytes(fromB64(p.blindedInput)).multiply(invert(r));
      expected.set(hex(h.toBytes()), p.type);
    }
  }
  await Promise.all(pending);
  await page.close();

  const evaluations = capture.filter((c) => c.url.includes("/v1/evaluate"));
  const submissions = capture.filter((c) => c.url.endsWith("/api/submissions"));
  assert.equal(evaluations.length, COUNT);
  assert.equal(submissions.length, COUNT);
  for (const s of submissions) {
    const body = JSON.parse(s.requestBody);
    assert.equal(body.blindFactors, undefined, "no blind factor in the clear");
    assert.match(body.encryptedBlindFactors, /^[\w-]+(\.[\w-]+){4}$/);
  }

  // Every 32-byte value of the capture, as r and as B.
  const candidates = new Set();
  for (const c of capture) {
    for (const part of [c.url, c.requestHeaders, c.requestBody, c.responseHeaders, c.responseBody]) {
      values32(part, candidates);
    }
  }
  const blinded = evaluations.flatMap((e) =>
    JSON.parse(e.requestBody).records.flatMap((r) => r.items.map((i) => hex(fromB64(i.blindedInput)))),
  );
  assert.ok(
    blinded.every((b) => candidates.has(b)),
    "the capture holds every blinded element",
  );
  const found = [...joins(candidates, candidates)].filter((h) => expected.has(h));
  assert.deepEqual(found, [], "no r⁻¹·B of the capture is an identity's HashToGroup");

  // The control: the blind factors the form sealed, in the clear, join.
  const clear = new Set();
  for (const s of submissions) {
    const body = JSON.parse(s.requestBody);
    const opened = await chain.openSealed(body.encryptedBlindFactors);
    for (const r of Object.values(opened.blindFactors)) clear.add(hex(fromB64(r)));
    // The size of the submission, and of the same in the clear shape.
    const { encryptedBlindFactors, ...rest } = body;
    const inClear = JSON.stringify({ ...rest, blindFactors: opened.blindFactors }).length;
    t.diagnostic(
      `submission ${s.requestBody.length} B (${Object.keys(opened.blindFactors).length} types; ` +
        `encryptedBlindFactors ${encryptedBlindFactors.length} B); with clear blindFactors ${inClear} B`,
    );
  }
  const matched = [...joins(clear, candidates)].filter((h) => expected.has(h));
  assert.equal(
    new Set(matched).size,
    new Set(blinded).size,
    "given the clear r, every blinded element of the capture is joined to its identity",
  );
});

test("without a verified key of the registry the form evaluates and sends nothing", async () => {
  const page = await chrome.newPage();
  await page.goto(chain.formUrl);
  await page.waitForSelector("button[type=submit]:not([disabled])");
  // Evaluations only: the session's token request may come first.
  const posts = () =>
    chain.ttpProxy.state.requests.filter((r) => r.method === "POST" && !r.url.startsWith("/v1/token")).length;
  const before = posts();
  const outcome = (pins) =>
    page.evaluate(async (pins) => {
      const m = await import("/pkg/index.js");
      const config = await (await fetch("/api/form-config")).json();
      const session = new m.TtpSession({ ttp: config.ttp, subjectToken: m.popupLogin(config.login) });
      const identity = { birthName: "Jansen", birthDate: "1-2-1980", sex: "m", initial: "P", postcode: "1234" };
      try {
        const r = await m.pseudonymise(identity, {
          ...config,
          session,
          types: ["NGGV"],
          ttpSigningKeys: pins ?? config.ttpSigningKeys,
        });
        return { ok: true, keys: Object.keys(r.submission) };
      } catch (e) {
        return { ok: false, isError: e instanceof Error, code: e.code, field: e.field, message: e.message };
      }
    }, pins);
  // A pin the TTP's key does not have: refused before any evaluation.
  const refused = await outcome(["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]);
  assert.deepEqual(
    [refused.ok, refused.isError, refused.code, refused.field],
    [false, true, "recipientKey.invalid", "recipientKey"],
  );
  assert.equal(posts(), before, "nothing evaluated");
  // The pins the demo serves (its registry's): sealed blind factors only.
  const made = await outcome();
  assert.equal(made.ok, true, made.message);
  assert.ok(made.keys.includes("encryptedBlindFactors") && !made.keys.includes("blindFactors"), made.keys.join());
  await page.close();
});
