// Type R in a real headless Chromium: the HPKE of reversible.js against the
// RFC 9180 / CFRG known answers of DHKEM(P-256, HKDF-SHA256), HKDF-SHA256
// with AES-256-GCM (the suite of R) and AES-128-GCM (RFC 9180 A.3.1), and
// against a second implementation (@hpke/core, in node) both ways; the
// envelope refused for another aad, key or kid; every check of the TTP's
// statement of a provider key; the envelope digest against the core's
// vector; the form path (pseudonymise) sealing R before the evaluation and
// sending only its digest with the record, never the number, flagging
// missing fields, refusing an identity of another provider and failing
// closed without a provider key; TtpSession's scope and audience.
// The TTP is a small fake on loopback (its statements signed with node's
// crypto); the page loads the built package from www/pkg.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createECDH, createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { Aes256Gcm, CipherSuite, DhkemP256HkdfSha256, HkdfSha256 } from "@hpke/core";

const PKG = fileURLToPath(new URL("../../../../www/pkg/", import.meta.url));
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
];
const PROVIDER = "ura:12345678";
const ORGANIZATION = "oin:00000001234567890000";
const SCOPE = "kwaliteit";

const hex = (text) => Buffer.from(text, "hex");
const b64u = (bytes) => Buffer.from(bytes).toString("base64url");

// RFC 9180 A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode, sequence 0.
const RFC_A31 = {
  aeadId: 1,
  skEm: "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
  skRm: "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
  enc: "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4",
  ct: "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434",
};
// The CFRG test-vectors.json (of RFC 9180), mode 0, kem_id 16, kdf_id 1, aead_id 2 (AES-256-GCM), sequence 0.
const CFRG_AES256 = {
  aeadId: 2,
  skEm: "90345e3a1d116c1dd39ae76d95ab858c142223a63e44f8f85318cfa91a84858e",
  skRm: "317f915db7bc629c48fe765587897e01e282d3e8445f79f27f65d031a88082b2",
  enc: "04c06b4f6bebc7bb495cb797ab753f911aff80aefb86fd8b6fcc35525f3ab5f03e0b21bd31a86c6048af3cb2d98e0d3bf01da5cc4c39ff5370d331a4f1f7d5a4e0",
  ct: "58c61a45059d0c5704560e9d88b564a8b63f1364b8d1fcb3c4c6ddc1d291742465e902cd216f8908da49f8f96f",
};
const VECTOR_INFO = "4f6465206f6e2061204772656369616e2055726e";
const VECTOR_AAD = "436f756e742d30";
const VECTOR_PT = "4265617574792069732074727574682c20747275746820626561757479";

/** The JWK (private with d, and public) of a P-256 scalar, its point made by node. */
function p256Jwk(skHex) {
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(hex(skHex));
  const point = ecdh.getPublicKey();
  const pub = { kty: "EC", crv: "P-256", x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) };
  return { pub, priv: { ...pub, d: b64u(hex(skHex)) }, point: point.toString("hex") };
}

const thumbprint = (jwk) =>
  createHash("sha256")
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest("base64url");

function jws(header, claims, privateKey) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  const signature = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${b64u(signature)}`;
}

// The TTP's signing key (pinned), a second one it lists but the page does not pin.
const ttpKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ttpJwk = { ...ttpKey.publicKey.export({ format: "jwk" }), kid: "ttp-1" };
const rogueKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
const rogueJwk = { ...rogueKey.publicKey.export({ format: "jwk" }), kid: "ttp-rogue" };
const PIN = thumbprint(ttpJwk);

/** A provider encryption key: the private JWK (for the page and @hpke/core) and the public statement JWK. */
function providerKey() {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const priv = privateKey.export({ format: "jwk" });
  const pub = { kty: "EC", crv: "P-256", x: priv.x, y: priv.y };
  const jwk = { ...pub, kid: thumbprint(pub), alg: "HPKE-P256-SHA256-A256GCM", use: "enc" };
  return { priv, jwk };
}

function statement({
  jwk,
  provider = PROVIDER,
  current = true,
  typ = "pseudoform-provider-key+jwt",
  key = ttpKey,
  kid = "ttp-1",
}) {
  return jws({ alg: "ES256", typ, kid }, { provider, jwk, current, iat: 1_700_000_000 }, key.privateKey);
}

// The registry's RSA key and the TTP's statement of it, for the policy.
const registryKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
const registryJwk = {
  ...registryKey.publicKey.export({ format: "jwk" }),
  kid: "reg-1",
  alg: "RSA-OAEP-256",
  use: "enc",
};
const recipientStatement = jws(
  { alg: "ES256", typ: "pseudoform-recipient-key+jwt", kid: "ttp-1" },
  { organization: ORGANIZATION, scope: SCOPE, jwk: registryJwk, iat: 1_700_000_000 },
  ttpKey.privateKey,
);

const provider = providerKey();
const previous = providerKey();
const other = providerKey();

/** What the fake TTP answers, changed by the tests, and every request it got. */
const ttp = {
  providerKeys: { [PROVIDER]: [statement({ jwk: provider.jwk }), statement({ jwk: previous.jwk, current: false })] },
  policy: { allowedTypes: ["NGGV", "MRN", "R"], requiredTypes: [], recipientKey: recipientStatement },
  requests: [],
};

const TYPES = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html" };

async function handle(request, response) {
  const url = new URL(request.url, "http://localhost");
  let body = "";
  for await (const chunk of request) body += chunk;
  const json = (status, value) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(value));
  };
  if (url.pathname === "/") {
    response.writeHead(200, { "content-type": "text/html" });
    return response.end("<!doctype html><title>reversible</title>");
  }
  if (url.pathname.startsWith("/pkg/")) {
    const file = normalize(join(PKG, url.pathname.slice(5)));
    if (!file.startsWith(PKG)) return json(404, {});
    try {
      const bytes = await readFile(file);
      response.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      return response.end(bytes);
    } catch {
      return json(404, {});
    }
  }
  ttp.requests.push({ method: request.method, url: request.url, body });
  switch (url.pathname) {
    case "/ttp/v1/signing-keys":
      return json(200, { keys: [ttpJwk, rogueJwk] });
    case "/ttp/v1/provider-keys": {
      const p = url.searchParams.get("provider");
      if (!(p in ttp.providerKeys)) return json(404, { code: "provider.unknown", field: "provider" });
      return json(200, { provider: p, keys: ttp.providerKeys[p] });
    }
    case "/ttp/v1/policy":
      return json(200, ttp.policy);
    case "/ttp/v1/evaluate": {
      const { records } = JSON.parse(body);
      const part = () => b64u(randomBytes(24));
      return json(200, { records: records.map(() => ({ jwe: [part(), part(), part(), part(), part()].join(".") })) });
    }
    case "/ttp/v1/token":
      return json(200, { access_token: "aaa.bbb.ccc", token_type: "DPoP", expires_in: 300, provider: PROVIDER });
    default:
      return json(404, { code: "notFound" });
  }
}

let server;
let browser;
let page;
let origin;

before(async () => {
  server = createServer((req, res) => handle(req, res).catch(() => res.end()));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
  page = await browser.newPage();
  await page.goto(`${origin}/`);
  await page.addScriptTag({
    type: "module",
    content: `import * as r from "/pkg/reversible.js"; import * as pf from "/pkg/index.js";
      await pf.ready(); window.r = r; window.pf = pf; window.loaded = true;`,
  });
  await page.waitForFunction(() => window.loaded === true, null, { timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve) ?? resolve());
});

/** Runs `fn(arg)` in the page, where `window.r` is reversible.js and `window.pf` the package. */
const inPage = (fn, arg) => page.evaluate(fn, arg);

/** The page's rejection of `fn(arg)` as `{ code, field }`, or "resolved". */
const refusal = (fn, arg) =>
  page.evaluate(
    async ([source, a]) => {
      try {
        await (0, eval)(`(${source})`)(a);
        return "resolved";
      } catch (e) {
        return { code: e.code, field: e.field };
      }
    },
    [fn.toString(), arg],
  );

describe("HPKE known answers", () => {
  for (const [name, v] of [
    ["RFC 9180 A.3.1 (AES-128-GCM)", RFC_A31],
    ["CFRG test vector of the suite of R (AES-256-GCM)", CFRG_AES256],
  ]) {
    test(`${name}: SealBase with the vector's ephemeral key gives its enc and ciphertext`, async () => {
      const e = p256Jwk(v.skEm);
      assert.equal(e.point, v.enc, "the vector's enc is the point of its skEm");
      const r = p256Jwk(v.skRm);
      const out = await inPage(
        async ({ e, r, v, info, aad, pt }) => {
          const h = (s) => Uint8Array.from(s.match(/../g).map((b) => parseInt(b, 16)));
          const x = (b) => [...b].map((n) => n.toString(16).padStart(2, "0")).join("");
          const alg = { name: "ECDH", namedCurve: "P-256" };
          const ephemeral = {
            privateKey: await crypto.subtle.importKey("jwk", e.priv, alg, false, ["deriveBits"]),
            publicKey: await crypto.subtle.importKey("jwk", e.pub, alg, true, []),
          };
          const sealed = await window.r.sealBase(h(r.point), h(info), h(aad), h(pt), { ephemeral, aeadId: v.aeadId });
          return { enc: x(sealed.enc), ct: x(sealed.ct) };
        },
        { e, r, v, info: VECTOR_INFO, aad: VECTOR_AAD, pt: VECTOR_PT },
      );
      assert.equal(out.enc, v.enc);
      assert.equal(out.ct, v.ct);
    });

    test(`${name}: OpenBase with a non-extractable private key gives the plaintext`, async () => {
      const r = p256Jwk(v.skRm);
      const pt = await inPage(
        async ({ r, v, info, aad }) => {
          const h = (s) => Uint8Array.from(s.match(/../g).map((b) => parseInt(b, 16)));
          const alg = { name: "ECDH", namedCurve: "P-256" };
          const keyPair = {
            privateKey: await crypto.subtle.importKey("jwk", r.priv, alg, false, ["deriveBits"]),
            publicKey: await crypto.subtle.importKey("jwk", r.pub, alg, true, []),
          };
          const opened = await window.r.openBase(keyPair, h(v.enc), h(info), h(aad), h(v.ct), { aeadId: v.aeadId });
          return [...opened].map((n) => n.toString(16).padStart(2, "0")).join("");
        },
        { r, v, info: VECTOR_INFO, aad: VECTOR_AAD },
      );
      assert.equal(pt, VECTOR_PT);
    });
  }

  test("the CFRG vector of the suite opens with @hpke/core too (the vector is the suite's)", async () => {
    const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const r = p256Jwk(CFRG_AES256.skRm);
    const privateKey = await suite.kem.importKey("raw", hex(CFRG_AES256.skRm), false);
    const publicKey = await suite.kem.importKey("raw", hex(r.point), true);
    const pt = await suite.open(
      { recipientKey: { privateKey, publicKey }, enc: hex(CFRG_AES256.enc), info: hex(VECTOR_INFO) },
      hex(CFRG_AES256.ct),
      hex(VECTOR_AAD),
    );
    assert.equal(Buffer.from(pt).toString("hex"), VECTOR_PT);
  });
});

/** The aad of the tests' record. */
const AAD = { recipientOrganization: ORGANIZATION, recipientScope: SCOPE, kid: provider.jwk.kid };

describe("sealReversible and openReversible", () => {
  test("reversibleAad is the contract's string", async () => {
    assert.equal(
      await inPage((a) => window.r.reversibleAad(a), AAD),
      `pseudoform-reversible/1|${ORGANIZATION}|${SCOPE}|${provider.jwk.kid}`,
    );
    assert.equal(await inPage((jwk) => window.r.kidOf(jwk), provider.jwk), provider.jwk.kid);
  });

  test("reversibleDigest is the core's: SHA-256 of kid.enc.ct, the shared vector and node's hash", async () => {
    // The vector of crates/core/src/reversible.rs (the_digest_is_the_sha256_of_kid_enc_ct_joined_by_dots).
    assert.equal(
      await inPage((e) => window.r.reversibleDigest(e), { kid: "kid-1", enc: "BAAB", ct: "AAEC" }),
      "zCvkhJYhY8rP3Uq3jWXJ6i6EKaUhhnFTdzTFTVq9Vs0",
    );
    const envelope = await inPage(({ jwk, aad }) => window.r.sealReversible(jwk, "ura:12345678|PAT-1", aad), {
      jwk: provider.jwk,
      aad: "aad",
    });
    const expected = createHash("sha256").update(`${envelope.kid}.${envelope.enc}.${envelope.ct}`).digest("base64url");
    assert.equal(await inPage((e) => window.r.reversibleDigest(e), envelope), expected);
    assert.equal(expected.length, 43);
  });

  test("sealReversible writes the thumbprint of the key it seals to, and refuses a JWK whose kid is another's", async () => {
    const result = await inPage(
      async ({ jwk, other }) => {
        const attempt = async (key) => {
          try {
            return (await window.r.sealReversible(key, "ura:12345678|PAT-1", "aad")).kid;
          } catch (e) {
            return `${e.code}/${e.field}`;
          }
        };
        return { own: await attempt(jwk), otherKid: await attempt({ ...jwk, kid: other }) };
      },
      { jwk: provider.jwk, other: other.jwk.kid },
    );
    assert.deepEqual(result, { own: provider.jwk.kid, otherKid: "providerKey.invalid/R" });
  });

  test("a sealed number opens with the provider's non-extractable key, and only with the same aad, key and kid", async () => {
    const result = await inPage(
      async ({ priv, jwk, other, aad }) => {
        const alg = { name: "ECDH", namedCurve: "P-256" };
        const pairOf = async (p) => ({
          privateKey: await crypto.subtle.importKey("jwk", p, alg, false, ["deriveBits"]),
          publicKey: await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: p.x, y: p.y }, alg, true, []),
        });
        const pair = await pairOf(priv);
        const otherPair = await pairOf(other);
        const text = window.r.reversibleAad(aad);
        const envelope = await window.r.sealReversible(jwk, "ura:12345678|PAT-123456", text);
        const attempt = async (kp, env, a) => {
          try {
            return await window.r.openReversible(kp, env, a);
          } catch (e) {
            return `${e.code}/${e.field}`;
          }
        };
        const variants = {
          organization: window.r.reversibleAad({ ...aad, recipientOrganization: "oin:00000001234567890001" }),
          scope: window.r.reversibleAad({ ...aad, recipientScope: "ander" }),
          kid: window.r.reversibleAad({ ...aad, kid: "x".repeat(43) }),
        };
        const enc = envelope.enc;
        return {
          envelope,
          extractable: pair.privateKey.extractable,
          opened: await attempt(pair, envelope, text),
          withPublicJwk: await attempt({ privateKey: pair.privateKey, publicKey: jwk }, envelope, text),
          wrongAad: Object.fromEntries(
            await Promise.all(Object.entries(variants).map(async ([k, a]) => [k, await attempt(pair, envelope, a)])),
          ),
          otherKey: await attempt(otherPair, envelope, text),
          otherKeyOwnKid: await attempt(otherPair, { ...envelope, kid: await window.r.kidOf(other) }, text),
          wrongKid: await attempt(pair, { ...envelope, kid: "x".repeat(43) }, text),
          flipped: await attempt(
            pair,
            { ...envelope, ct: envelope.ct.slice(0, -2) + (envelope.ct.endsWith("AA") ? "BA" : "AA") },
            text,
          ),
          shortEnc: await attempt(pair, { ...envelope, enc: enc.slice(0, 20) }, text),
          wrongType: await attempt(pair, { ...envelope, type: "MRN" }, text),
        };
      },
      { priv: provider.priv, jwk: provider.jwk, other: other.priv, aad: AAD },
    );
    assert.equal(result.extractable, false);
    assert.equal(result.envelope.type, "R");
    assert.equal(result.envelope.kid, provider.jwk.kid);
    assert.equal(Buffer.from(result.envelope.enc, "base64url").length, 65);
    assert.equal(Buffer.from(result.envelope.ct, "base64url").length, "ura:12345678|PAT-123456".length + 16);
    assert.equal(result.opened, "ura:12345678|PAT-123456");
    assert.equal(result.withPublicJwk, "ura:12345678|PAT-123456");
    const refused = "reversible.undecryptable/reversible";
    for (const [part, outcome] of Object.entries(result.wrongAad)) assert.equal(outcome, refused, part);
    for (const k of ["otherKey", "otherKeyOwnKid", "wrongKid", "flipped", "shortEnc", "wrongType"]) {
      assert.equal(result[k], refused, k);
    }
  });

  test("each seal is fresh: two envelopes of one number share no enc or ct", async () => {
    const [a, b] = await inPage(
      async ({ jwk }) => Promise.all([1, 2].map(() => window.r.sealReversible(jwk, "ura:12345678|PAT-1", "aad"))),
      { jwk: provider.jwk },
    );
    assert.notEqual(a.enc, b.enc);
    assert.notEqual(a.ct, b.ct);
  });

  test("@hpke/core opens what the page sealed, and the page opens what @hpke/core sealed", async () => {
    const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const aad = `pseudoform-reversible/1|${ORGANIZATION}|${SCOPE}|${provider.jwk.kid}`;
    const info = Buffer.from("pseudoform-reversible/1");
    const envelope = await inPage(({ jwk, aad }) => window.r.sealReversible(jwk, "ura:12345678|Z7654321", aad), {
      jwk: provider.jwk,
      aad,
    });
    const privateKey = await suite.kem.importKey("jwk", provider.priv, false);
    const publicKey = await suite.kem.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: provider.priv.x, y: provider.priv.y },
      true,
    );
    const opened = await suite.open(
      { recipientKey: { privateKey, publicKey }, enc: Buffer.from(envelope.enc, "base64url"), info },
      Buffer.from(envelope.ct, "base64url"),
      Buffer.from(aad),
    );
    assert.equal(Buffer.from(opened).toString(), "ura:12345678|Z7654321");

    const sender = await suite.createSenderContext({ recipientPublicKey: publicKey, info });
    const ct = await sender.seal(Buffer.from("ura:12345678|PAT-42"), Buffer.from(aad));
    const theirs = { type: "R", kid: provider.jwk.kid, enc: b64u(Buffer.from(sender.enc)), ct: b64u(Buffer.from(ct)) };
    const text = await inPage(
      async ({ priv, envelope, aad }) => {
        const alg = { name: "ECDH", namedCurve: "P-256" };
        const privateKey = await crypto.subtle.importKey("jwk", priv, alg, false, ["deriveBits"]);
        const publicKey = { kty: "EC", crv: "P-256", x: priv.x, y: priv.y };
        return window.r.openReversible({ privateKey, publicKey }, envelope, aad);
      },
      { priv: provider.priv, envelope: theirs, aad },
    );
    assert.equal(text, "ura:12345678|PAT-42");
  });
});

describe("the TTP's statement of a provider key", () => {
  const options = () => ({ ttp: `${origin}/ttp`, provider: PROVIDER, ttpSigningKeys: [PIN] });
  const check = (statements, o = options()) => refusal(async ([s, o]) => window.r.providerKeyOf(s, o), [statements, o]);

  test("the current key is taken, with its kid, JWK and a usable key", async () => {
    const key = await inPage(
      async ([s, o]) => {
        const k = await window.r.providerKeyOf(s, o);
        return { kid: k.kid, jwk: k.jwk, type: k.cryptoKey.type, alg: k.cryptoKey.algorithm.name };
      },
      [{ provider: PROVIDER, keys: ttp.providerKeys[PROVIDER] }, options()],
    );
    assert.deepEqual(key, { kid: provider.jwk.kid, jwk: provider.jwk, type: "public", alg: "ECDH" });
    // A single JWS and a bare list are taken too.
    assert.equal(await check(statement({ jwk: provider.jwk })), "resolved");
    assert.equal(
      await check([statement({ jwk: previous.jwk, current: false }), statement({ jwk: provider.jwk })]),
      "resolved",
    );
  });

  test("each failure has its code, field R", async () => {
    const R = (code) => ({ code, field: "R" });
    const jwk = provider.jwk;
    const cases = {
      "no key": [[], R("providerKey.missing")],
      "only a previous key": [[statement({ jwk, current: false })], R("providerKey.missing")],
      "another provider's key": [[statement({ jwk, provider: "ura:87654321" })], R("providerKey.mismatch")],
      "two current keys": [[statement({ jwk }), statement({ jwk: previous.jwk })], R("providerKey.invalid")],
      "signed by an unpinned TTP key": [
        [statement({ jwk, key: rogueKey, kid: "ttp-rogue" })],
        R("providerKey.invalid"),
      ],
      "a pinned kid over another key's signature": [[statement({ jwk, key: rogueKey })], R("providerKey.invalid")],
      "an unknown signing kid": [[statement({ jwk, kid: "ttp-none" })], R("providerKey.invalid")],
      "the recipient key's typ": [[statement({ jwk, typ: "pseudoform-recipient-key+jwt" })], R("providerKey.invalid")],
      "another alg": [[statement({ jwk: { ...jwk, alg: "ECDH-ES" } })], R("providerKey.invalid")],
      "use sig": [[statement({ jwk: { ...jwk, use: "sig" } })], R("providerKey.invalid")],
      "a kid that is not the thumbprint": [
        [statement({ jwk: { ...jwk, kid: other.jwk.kid } })],
        R("providerKey.invalid"),
      ],
      "a private key": [[statement({ jwk: { ...jwk, d: provider.priv.d } })], R("providerKey.invalid")],
      "not a point of the curve": [
        [statement({ jwk: { ...jwk, y: jwk.x, kid: thumbprint({ ...jwk, y: jwk.x }) } })],
        R("providerKey.invalid"),
      ],
      "a bad previous key beside a good current one": [
        [statement({ jwk }), statement({ jwk: previous.jwk, current: false, key: rogueKey, kid: "ttp-rogue" })],
        R("providerKey.invalid"),
      ],
      "not a JWS": [["not.a.jws!"], R("providerKey.invalid")],
      "a changed claim": [
        [statement({ jwk }).replace(/^([^.]+)\.([^.]+)/, (_, h) => `${h}.${b64u("{}")}`)],
        R("providerKey.invalid"),
      ],
      "not a list": [{ keys: "x" }, R("providerKey.invalid")],
    };
    for (const [name, [statements, expected]] of Object.entries(cases)) {
      assert.deepEqual(await check(statements), expected, name);
    }
    assert.deepEqual(
      await check([statement({ jwk })], { ...options(), provider: undefined }),
      R("providerKey.missing"),
    );
  });

  test("the directory's answer, as fetched, gives the current key", async () => {
    const fetched = await inPage(
      async (o) =>
        (
          await window.r.providerKeyOf(
            await (await fetch(`${o.ttp}/v1/provider-keys?provider=${encodeURIComponent(o.provider)}`)).json(),
            o,
          )
        ).kid,
      options(),
    );
    assert.equal(fetched, provider.jwk.kid);
  });
});

const IDENTITY = { birthName: "van den Berg", birthDate: "1980-02-01", sex: "2", initial: "J", mrn: "PAT-123456" };

describe("the form path (pseudonymise)", () => {
  const options = (extra = {}) => ({
    ttp: `${origin}/ttp`,
    recipientOrganization: ORGANIZATION,
    recipientScope: SCOPE,
    accessToken: "development",
    provider: PROVIDER,
    ttpSigningKeys: [PIN],
    types: "NGGV R",
    ...extra,
  });
  const run = (identity, o) =>
    inPage(
      async ([identity, o]) => {
        try {
          const result = await window.pf.pseudonymise(identity, o);
          return { ok: true, result };
        } catch (e) {
          return { ok: false, code: e.code, field: e.field, problems: e.problems };
        }
      },
      [identity, o],
    );

  test("R is sealed to the provider's current key, only its digest goes with the record to the TTP", async () => {
    ttp.requests.length = 0;
    const out = await run(IDENTITY, options());
    assert.ok(out.ok, JSON.stringify(out));
    const { submission, types } = out.result;
    assert.deepEqual(types, ["NGGV", "R"]);
    assert.equal(submission.reversible.type, "R");
    assert.equal(submission.reversible.kid, provider.jwk.kid);
    const aad = `pseudoform-reversible/1|${ORGANIZATION}|${SCOPE}|${provider.jwk.kid}`;
    const suite = new CipherSuite({ kem: new DhkemP256HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
    const privateKey = await suite.kem.importKey("jwk", provider.priv, false);
    const publicKey = await suite.kem.importKey(
      "jwk",
      { kty: "EC", crv: "P-256", x: provider.priv.x, y: provider.priv.y },
      true,
    );
    const opened = await suite.open(
      {
        recipientKey: { privateKey, publicKey },
        enc: Buffer.from(submission.reversible.enc, "base64url"),
        info: Buffer.from("pseudoform-reversible/1"),
      },
      Buffer.from(submission.reversible.ct, "base64url"),
      Buffer.from(aad),
    );
    // MRN's canonical input (the number as the method normalises it).
    const input = await inPage((i) => window.pf.pseudonymInput("MRN", { ...i, provider: "ura:12345678" }), IDENTITY);
    assert.equal(Buffer.from(opened).toString(), input);
    const asked = ttp.requests.find((r) => r.url.startsWith("/ttp/v1/provider-keys"));
    assert.ok(asked, "the provider's keys were fetched");
    assert.equal(new URL(asked.url, origin).searchParams.get("provider"), PROVIDER);
    const evaluate = ttp.requests.filter((r) => r.url === "/ttp/v1/evaluate");
    assert.equal(evaluate.length, 1);
    const [sent] = JSON.parse(evaluate[0].body).records;
    assert.deepEqual(
      sent.items.map((i) => i.type),
      ["NGGV"],
      "R is not evaluated",
    );
    const { kid, enc, ct } = submission.reversible;
    assert.equal(
      sent.reversible,
      createHash("sha256").update(`${kid}.${enc}.${ct}`).digest("base64url"),
      "the envelope's digest goes with the record, for the TTP to sign",
    );
    assert.deepEqual(Object.keys(sent).sort(), ["items", "reversible"]);
    for (const r of ttp.requests) {
      assert.ok(!r.body.includes("PAT-123456") && !r.url.includes("PAT-123456"), `no number in ${r.url}`);
    }
  });

  test("an identity naming another provider than the login's is refused when R is made, before any evaluation", async () => {
    ttp.requests.length = 0;
    const out = await run({ ...IDENTITY, provider: "ura:87654321" }, options());
    assert.deepEqual([out.ok, out.code, out.field], [false, "config.providerMismatch", "provider"]);
    assert.ok(!ttp.requests.some((r) => r.url === "/ttp/v1/evaluate"), "nothing evaluated");
    // The login's own provider, given in the identity, is fine.
    const own = await run({ ...IDENTITY, provider: PROVIDER }, options());
    assert.ok(own.ok, JSON.stringify(own));
    assert.deepEqual(own.result.types, ["NGGV", "R"]);
    // Without R nothing is sealed to the provider, so nothing is refused for it.
    const noR = await run({ ...IDENTITY, provider: "ura:87654321" }, options({ types: "NGGV" }));
    assert.ok(noR.ok, JSON.stringify(noR));
  });

  test("R asked for but not allowed by the policy is skipped; nothing is fetched for it", async () => {
    ttp.requests.length = 0;
    ttp.policy = { ...ttp.policy, allowedTypes: ["NGGV", "MRN"] };
    try {
      const out = await run(IDENTITY, options());
      assert.ok(out.ok);
      assert.equal(out.result.submission.reversible, undefined);
      const [sent] = JSON.parse(ttp.requests.find((r) => r.url === "/ttp/v1/evaluate").body).records;
      assert.equal(sent.reversible, undefined, "no digest without R");
      assert.deepEqual(
        out.result.skipped.map((s) => [s.type, s.code]),
        [["R", "type.notAllowed"]],
      );
      assert.ok(!ttp.requests.some((r) => r.url.startsWith("/ttp/v1/provider-keys")));
    } finally {
      ttp.policy = { ...ttp.policy, allowedTypes: ["NGGV", "MRN", "R"] };
    }
  });

  test("R best effort without a number is skipped; required R is flagged like MRN, before anything is sent", async () => {
    const noNumber = { ...IDENTITY, mrn: undefined };
    const best = await run(noNumber, options());
    assert.ok(best.ok);
    assert.deepEqual(
      best.result.skipped.map((s) => [s.type, s.code, s.field]),
      [["R", "mrn.required", "mrn"]],
    );
    assert.equal(best.result.submission.reversible, undefined);

    ttp.requests.length = 0;
    const required = await run(noNumber, options({ require: "R" }));
    assert.equal(required.ok, false);
    assert.equal(required.code, "pseudonym.requiredMissing");
    assert.deepEqual(
      required.problems.map((p) => [p.field, p.code, p.type]),
      [["mrn", "mrn.required", "R"]],
    );
    assert.deepEqual(ttp.requests, [], "nothing reached the TTP");

    // Required by the policy: checked after the policy, before any evaluation.
    ttp.requests.length = 0;
    ttp.policy = { ...ttp.policy, requiredTypes: ["R"] };
    try {
      const byPolicy = await run(noNumber, options({ types: "NGGV" }));
      assert.equal(byPolicy.code, "pseudonym.requiredMissing");
      assert.ok(!ttp.requests.some((r) => r.url === "/ttp/v1/evaluate"));
    } finally {
      ttp.policy = { ...ttp.policy, requiredTypes: [] };
    }
  });

  test("without a usable provider key nothing is evaluated (providerKey.*)", async () => {
    const saved = ttp.providerKeys[PROVIDER];
    const cases = [
      [[], "providerKey.missing"],
      [[statement({ jwk: provider.jwk, key: rogueKey, kid: "ttp-rogue" })], "providerKey.invalid"],
      [[statement({ jwk: provider.jwk, provider: "ura:87654321" })], "providerKey.mismatch"],
    ];
    try {
      for (const [keys, code] of cases) {
        ttp.providerKeys[PROVIDER] = keys;
        ttp.requests.length = 0;
        const out = await run(IDENTITY, options());
        assert.equal(out.code, code);
        assert.equal(out.field, "R");
        assert.ok(!ttp.requests.some((r) => r.url === "/ttp/v1/evaluate"), `${code}: nothing evaluated`);
      }
      delete ttp.providerKeys[PROVIDER];
      assert.equal((await run(IDENTITY, options())).code, "providerKey.missing", "an unknown provider");
    } finally {
      ttp.providerKeys[PROVIDER] = saved;
    }
  });

  test("a batch seals R per record with one key fetch, each digest with its record", async () => {
    ttp.requests.length = 0;
    const results = await inPage(
      ([records, o]) => window.pf.pseudonymiseBatch(records, o),
      [
        [
          IDENTITY,
          { ...IDENTITY, mrn: "PAT-654321" },
          { ...IDENTITY, mrn: undefined },
          { ...IDENTITY, provider: "ura:87654321" },
        ],
        options(),
      ],
    );
    assert.deepEqual(
      results.map((r) => r.ok && r.types),
      [["NGGV", "R"], ["NGGV", "R"], ["NGGV"], false],
    );
    assert.deepEqual(
      results[3].errors.map((e) => [e.code, e.field]),
      [["config.providerMismatch", "provider"]],
      "a record of another provider is refused, the batch goes on",
    );
    assert.notEqual(results[0].submission.reversible.ct, results[1].submission.reversible.ct);
    assert.equal(ttp.requests.filter((r) => r.url.startsWith("/ttp/v1/provider-keys")).length, 1);
    const sent = ttp.requests
      .filter((r) => r.url === "/ttp/v1/evaluate")
      .flatMap((r) => JSON.parse(r.body).records.map((record) => record.reversible));
    const digest = ({ kid, enc, ct }) => createHash("sha256").update(`${kid}.${enc}.${ct}`).digest("base64url");
    assert.deepEqual(sent, [
      digest(results[0].submission.reversible),
      digest(results[1].submission.reversible),
      undefined,
    ]);
  });

  test("validate flags a required R's fields as MRN's", async () => {
    const problems = await inPage((i) => window.pf.validate(i, { require: "R" }), {});
    assert.deepEqual(problems.map((p) => p.field).sort(), ["mrn", "provider"]);
  });
});

describe("TtpSession", () => {
  const exchange = (options) =>
    inPage(async (o) => {
      const session = new window.pf.TtpSession({ ...o, subjectToken: async () => "aaa.bbb.ccc" });
      await session.accessToken();
    }, options);
  const tokenRequest = () => new URLSearchParams(ttp.requests.findLast((r) => r.url === "/ttp/v1/token").body);

  test("posts scope and audience when given", async () => {
    await exchange({ ttp: `${origin}/ttp`, scope: "validate", audience: `${ORGANIZATION}|${SCOPE}` });
    const form = tokenRequest();
    assert.equal(form.get("scope"), "validate");
    assert.equal(form.get("audience"), `${ORGANIZATION}|${SCOPE}`);
    assert.equal(form.get("grant_type"), "urn:ietf:params:oauth:grant-type:token-exchange");
  });

  test("by default posts neither", async () => {
    await exchange({ ttp: `${origin}/ttp` });
    const form = tokenRequest();
    assert.equal(form.has("scope"), false);
    assert.equal(form.has("audience"), false);
  });

  test("refuses an empty scope or audience", async () => {
    for (const o of [{ scope: "" }, { audience: "" }, { scope: 1 }]) {
      const out = await refusal(
        async (o) => new window.pf.TtpSession({ ttp: "http://127.0.0.1:1", subjectToken: async () => "", ...o }),
        o,
      );
      assert.equal(out.code, "config.invalid", JSON.stringify(o));
    }
  });
});
