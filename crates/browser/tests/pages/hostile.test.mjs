// A hostile parent page: the registry's own origin serves a page that
// embeds the identity frame as docs/embedding.md says (the tag, the guide's
// CSP), and whose own script does everything a registry's script could:
// reads into the frame, listens to every message of its window and of the
// tag's port (it wraps MessageChannel and MessagePort), wraps fetch, listens
// to the keyboard, spoofs messages to the frame before the handshake (from
// itself, from a nested iframe of another origin and from a popup), sends a
// second init, replays, sends malformed messages and proof requests for
// another origin or a record the frame did not make, makes its own frames
// with inits for another recipient, an unknown provider and a theme that
// tries to escape, covers and shrinks the frame, navigates it, and posts
// submissions without the frame. Over generated identities typed into the
// frame, nothing identifying reaches what the page saw, any request of any
// page or frame, the registry's database or a log of the chain; each attempt
// is answered as docs/frame.md says; the registry stores exactly the records
// the clinician submitted.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { launch, logInFrame, settled } from "./support.mjs";
import { ROOT, startChain } from "./chain.mjs";
import { generateIdentities, needlesOf } from "./identities.mjs";
import { chainHaystacks, derivedForms, needleIndex, scan } from "./leaks.mjs";
import { PSEUDONYM_TYPES as TYPES } from "../../../../www/pkg/constants.js";

const COUNT = Number(process.env.PSEUDOFORM_HOSTILE_IDENTITIES ?? 200);
/** An origin of the attacker's own (served by the test's routes, never the network). */
const ATTACKER = "http://attacker.test";
const PROTOCOL = "pseudoform-frame/1";

let chain, chrome;
const identities = generateIdentities(COUNT, 20261202);

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

/**
 * The hostile page's own script (served as /hostile.js from the registry's
 * origin, run before the tag). Everything it observes goes to `seen`, the
 * outcome of each attempt to `results`.
 */
function hostileScript() {
  const PROTOCOL = "pseudoform-frame/1";
  const ATTACKER = "http://attacker.test";
  const seen = [];
  const results = { reads: {}, attacker: {}, preHandshake: {} };
  const replacer = (_key, value) =>
    value instanceof MessagePort ? "[port]" : value instanceof Window ? "[window]" : value;
  const note = (what, value) => {
    try {
      seen.push(`${what} ${JSON.stringify(value, replacer)}`);
    } catch {
      seen.push(`${what} ${String(value)}`);
    }
  };
  const tagFrame = () => document.querySelector("pseudoform-identity iframe");
  const delay = (ms) => new Promise((r) => setTimeout(r, ms));

  // Every port the page makes (the tag's too): every message both ways.
  const channels = [];
  const NativeChannel = window.MessageChannel;
  window.MessageChannel = class extends NativeChannel {
    constructor() {
      super();
      channels.push(this);
      this.port1.addEventListener("message", (e) => note("port in", e.data));
    }
  };
  const nativePost = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function (...args) {
    note("port out", args[0]);
    return nativePost.apply(this, args);
  };
  // Every request the page's scripts make, with its headers and body.
  const nativeFetch = window.fetch;
  const posted = [];
  window.fetch = async (input, init = {}) => {
    const headers = Object.fromEntries(new Headers(init.headers ?? {}).entries());
    note("fetch", { url: String(input), method: init.method ?? "GET", headers, body: init.body ?? "" });
    if (String(input).includes("/api/submissions")) posted.push({ url: String(input), headers, body: init.body });
    const response = await nativeFetch(input, init);
    const copy = response.clone();
    copy.text().then((t) => note("fetch answer", { url: String(input), status: response.status, body: t }));
    return response;
  };
  // The keyboard, the clipboard and focus, as the page sees them.
  for (const type of ["keydown", "keyup", "keypress", "input", "beforeinput", "paste", "copy", "focusin", "blur"]) {
    window.addEventListener(
      type,
      (e) => note(`event ${type}`, { key: e.key, data: e.data, target: e.target?.id ?? e.target?.tagName }),
      true,
    );
  }

  // Every message on the page's window; the tag's first hello is held back
  // until the spoofing before the handshake is done.
  let releaseHello;
  const helloHeld = new Promise((resolve) => (releaseHello = resolve));
  let held;
  const fromAttacker = [];
  window.addEventListener(
    "message",
    (e) => {
      note("window message", { origin: e.origin, data: e.data });
      if (e.origin === ATTACKER) fromAttacker.push(e.data);
      const frame = tagFrame();
      if (!held && frame && e.source === frame.contentWindow && e.data?.type === "hello" && e.isTrusted) {
        held = e;
        e.stopImmediatePropagation();
        releaseHello();
      }
    },
    true,
  );

  const config = nativeFetch("api/form-config").then((r) => r.json());

  /** Reads everything of the frame's window and document the page may try. */
  const readFrame = () => {
    const frame = tagFrame();
    const out = { contentDocument: String(frame.contentDocument) };
    const w = frame.contentWindow;
    const attempts = {
      document: () => w.document,
      "document.body.innerHTML": () => w.document.body.innerHTML,
      "location.href": () => w.location.href,
      name: () => w.name,
      localStorage: () => w.localStorage,
      sessionStorage: () => w.sessionStorage,
      origin: () => w.origin,
      navigator: () => w.navigator,
      getComputedStyle: () => w.getComputedStyle,
      history: () => w.history,
      frameElement: () => w.frameElement,
      "frames[0].document": () => w.frames[0].document,
      getSelection: () => w.getSelection(),
      "set onmessage": () => {
        w.onmessage = () => {};
      },
    };
    for (const [what, attempt] of Object.entries(attempts)) {
      try {
        const value = attempt();
        out[what] = `read: ${typeof value}`;
        note("read", { what, value: String(value) });
      } catch (error) {
        out[what] = error.name;
      }
    }
    return out;
  };

  /** A frame of our own, handed an init of our choice: its first answer over the port. */
  const ownFrame = async (id, init) => {
    const { frame: src } = await config;
    const iframe = document.createElement("iframe");
    iframe.id = id;
    iframe.src = src;
    const hello = new Promise((resolve) =>
      window.addEventListener("message", (e) => {
        if (e.source === iframe.contentWindow && e.data?.type === "hello") resolve(e);
      }),
    );
    document.body.append(iframe);
    await hello;
    const channel = new NativeChannel();
    const answer = new Promise((resolve) => (channel.port1.onmessage = (e) => resolve(e.data)));
    iframe.contentWindow.postMessage({ protocol: PROTOCOL, ...init }, new URL(src).origin, [channel.port2]);
    return { iframe, port: channel.port1, answer: await answer };
  };

  // Before the handshake: spoofed messages from this page, from a nested
  // frame of another origin and from a popup; then the held hello goes on.
  (async () => {
    await helloHeld;
    const c = await config;
    const target = held.source;
    const listen = () => {
      const ch = new NativeChannel();
      const heard = [];
      ch.port1.onmessage = (e) => heard.push(e.data);
      return { ch, heard };
    };
    const withoutPort = listen();
    const otherVersion = listen();
    const noProtocol = listen();
    target.postMessage({ protocol: PROTOCOL, type: "init", recipientOrganization: c.recipientOrganization }, "*");
    target.postMessage({ protocol: "pseudoform-frame/2", type: "init", ...c }, "*", [otherVersion.ch.port2]);
    target.postMessage({ type: "init", ...c }, "*", [noProtocol.ch.port2]);
    for (const m of [
      { protocol: PROTOCOL, type: "pseudonymise", id: 1 },
      { protocol: PROTOCOL, type: "state", id: 2 },
      {
        protocol: PROTOCOL,
        type: "proof",
        id: 3,
        method: "POST",
        url: `${location.origin}/api/submissions`,
        record: "x",
      },
      null,
      42,
      "init",
      [PROTOCOL, "init"],
      { protocol: PROTOCOL },
    ]) {
      target.postMessage(m, "*");
    }
    const query = new URLSearchParams({ org: c.recipientOrganization, scope: c.recipientScope, provider: c.provider });
    const nested = document.createElement("iframe");
    nested.src = `${ATTACKER}/attacker.html?role=nested&${query}`;
    document.body.append(nested);
    const popup = window.open(`${ATTACKER}/attacker.html?role=popup&${query}`, "attacker");
    results.attacker.popupOpened = Boolean(popup);
    const sent = (role) => fromAttacker.some((m) => m?.attacker === role && m.sent);
    for (let i = 0; i < 100 && !(sent("nested") && (!popup || sent("popup"))); i++) await delay(50);
    results.attacker.sentNested = sent("nested");
    results.attacker.sentPopup = sent("popup");
    // Time for the frame to answer any of them, were it to.
    await delay(400);
    results.preHandshake = {
      withoutPort: withoutPort.heard.length,
      otherVersion: otherVersion.heard.length,
      noProtocol: noProtocol.heard.length,
    };
    results.attacker.answers = fromAttacker.filter((m) => m && "answer" in m).map((m) => m.answer);
    popup?.close();
    nested.remove();
    window.dispatchEvent(new MessageEvent("message", { data: held.data, origin: held.origin, source: held.source }));
  })();

  let nextId = 1_000_000;
  /** A request of our own over the tag's port: the frame's answer. */
  const ask = (type, args = {}) => {
    const port = channels[0].port1;
    const id = nextId++;
    return new Promise((resolve) => {
      const on = (e) => {
        if (e.data?.type === "answer" && e.data.id === id) {
          port.removeEventListener("message", on);
          resolve(e.data);
        }
      };
      port.addEventListener("message", on);
      port.postMessage({ protocol: PROTOCOL, type, id, ...args });
    });
  };
  /** Whether a port hears anything within `ms`. */
  const heardWithin = (port, ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), ms);
      port.onmessage = (e) => {
        clearTimeout(timer);
        resolve(e.data);
      };
    });

  window.hostile = {
    seen,
    results,
    posted,
    config,
    readFrame,
    ask,
    /** The messages the tag sent over its port, of `type`. */
    sent: (type) =>
      seen
        .filter((s) => s.startsWith("port out "))
        .map((s) => JSON.parse(s.slice(9)))
        .filter((m) => m?.type === type),
    /** A raw message over the tag's port (malformed ones too). */
    raw: (m) => channels[0].port1.postMessage(m),
    /** A second init, with a port of our own, to the tag's frame. */
    async secondInit() {
      const c = await config;
      const ch = new NativeChannel();
      tagFrame().contentWindow.postMessage({ protocol: PROTOCOL, type: "init", ...c }, new URL(c.frame).origin, [
        ch.port2,
      ]);
      return heardWithin(ch.port1, 500);
    },
    ownFrame,
    heardWithin,
    /** Covers the frame with an input of the page's own and shrinks it. */
    cover() {
      const frame = tagFrame();
      frame.style.setProperty("max-height", "40px", "important");
      const r = frame.getBoundingClientRect();
      const overlay = document.createElement("input");
      overlay.id = "overlay";
      Object.assign(overlay.style, {
        position: "absolute",
        left: `${r.left + scrollX}px`,
        top: `${r.top + scrollY}px`,
        width: `${r.width}px`,
        height: `${r.height}px`,
        boxSizing: "border-box",
        padding: "0",
        border: "0",
        margin: "0",
        opacity: "0.01",
        zIndex: "10",
      });
      document.body.append(overlay);
      return { overlay: overlay.getBoundingClientRect().height, frame: frame.getBoundingClientRect().height };
    },
    /** Posts a submission of the page's own, without the frame. */
    async postOwn(body, headers = {}) {
      const response = await nativeFetch("api/submissions", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, body: await response.json().catch(() => null) };
    },
    tagFrame,
    note,
  };
}

/** The attacker's page on another origin: nested in the hostile page, as its popup, or as a fake frame. */
const ATTACKER_PAGE = `<!doctype html><meta charset="utf-8"><script>
const q = new URLSearchParams(location.search);
const role = q.get("role");
const home = role === "popup" ? opener : parent;
const report = (m) => home.postMessage({ attacker: role, ...m }, "*");
const P = "${PROTOCOL}";
if (role === "fake") {
  addEventListener("message", (e) => report({ got: e.data && typeof e.data === "object" ? String(e.data.type) : String(e.data) }));
  parent.postMessage({ protocol: P, type: "hello" }, "*");
} else {
  const target = home.frames[0];
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = (e) => report({ answer: e.data });
  target.postMessage({ protocol: P, type: "init", recipientOrganization: q.get("org"), recipientScope: q.get("scope"),
    provider: q.get("provider"), types: ["NGGV"], require: [], lang: "nl", theme: {}, timeoutMs: 1000 }, "*", [port2]);
  for (const type of ["state", "check", "pseudonymise"]) target.postMessage({ protocol: P, type, id: 7 }, "*");
  report({ sent: true });
}
</script>`;

/** The hostile page: the guide's markup and CSP (plus frame-src for its own other origin), the demo's clinical fields. */
async function hostilePage() {
  const tag = await readFile(join(ROOT, "www", "pkg", "pseudoform-identity.js"));
  const sri = `sha384-${createHash("sha384").update(tag).digest("base64")}`;
  return `<!doctype html>
<html lang="nl"><head><meta charset="utf-8"><title>Registratie</title>
<link rel="stylesheet" href="form.css">
<script src="hostile.js"></script>
<script type="module" src="pkg/pseudoform-identity.js" integrity="${sri}"></script>
</head><body><main>
<form data-pseudoform data-pseudoform-config="api/form-config" action="api/submissions" method="post" novalidate>
  <fieldset><legend>Patiënt</legend><pseudoform-identity></pseudoform-identity></fieldset>
  <fieldset><legend>Klinisch</legend>
    <label for="diagnose">Diagnose</label>
    <select id="diagnose" name="diagnose" required><option value="">—</option><option>Heupartrose</option><option>Knieartrose</option></select>
    <label for="asa">ASA-klasse</label>
    <select id="asa" name="asa" required><option value="">—</option><option>I</option><option>II</option></select>
    <label for="opmerking">Opmerking</label><input id="opmerking" name="opmerking">
  </fieldset>
  <button type="submit" disabled>Versturen</button>
  <div data-pseudoform-status role="status" aria-live="polite"></div>
</form></main></body></html>`;
}

/** The CSP of docs/embedding.md's frame mode, with frame-src also naming the page's own other origin. */
const csp = (frameOrigin) =>
  `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; ` +
  `frame-src ${frameOrigin} ${ATTACKER}; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'`;

async function submit(page) {
  await page.evaluate(() => delete document.querySelector("[data-pseudoform-status]").dataset.kind);
  await page.click("button[type=submit]");
  return settled(page);
}

test(`a hostile parent page sees nothing identifying over ${COUNT} identities, and none of its attempts has an effect`, async () => {
  const started = Date.now();
  const frameOrigin = new URL(chain.urls.frame).origin;
  const registry = chain.framedProxy.url;
  const html = await hostilePage();
  const page = await chrome.newPage();
  const context = page.context();
  // The hostile page and its script, served on the registry's origin (by the proxy in front of it).
  chain.framedProxy.state.pages["/hostile.html"] = {
    headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": csp(frameOrigin) },
    body: html,
  };
  chain.framedProxy.state.pages["/hostile.js"] = {
    headers: { "content-type": "text/javascript; charset=utf-8" },
    body: `(${hostileScript})();`,
  };
  await context.route(`${ATTACKER}/**`, (route) =>
    route.fulfill({ status: 200, contentType: "text/html", body: ATTACKER_PAGE }),
  );
  // A short per-request timeout, so that a frame that stopped answering fails in seconds.
  await page.route(`${registry}/api/form-config`, async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, json: { ...(await response.json()), timeoutMs: 5000 } });
  });
  const recordsBefore = (await chain.records()).length;
  const ttpBefore = chain.ttpProxy.state.requests.length;

  await page.goto(`${registry}/hostile.html`);
  await page.waitForSelector("button[type=submit]:not([disabled])", { timeout: 30_000 });
  const frameLocator = page.frameLocator("pseudoform-identity iframe");
  const frame = await (await page.$("pseudoform-identity iframe")).contentFrame();
  await frame.waitForSelector("#identity:not([hidden])");
  const fields = await frame.evaluate(() =>
    [...document.querySelectorAll("[data-pseudoform-field]")].map((e) => e.dataset.pseudoformField),
  );
  assert.ok(fields.includes("birthName") && !fields.includes("bsn"), fields.join());

  // Before the handshake nothing the page, its nested frame or its popup sent reached the frame.
  const results = await page.evaluate(() => window.hostile.results);
  assert.equal(results.attacker.sentNested, true, "the nested frame of another origin sent its messages");
  assert.equal(results.attacker.popupOpened, true, "the page opened its popup of another origin");
  assert.equal(results.attacker.sentPopup, true, "the popup sent its messages");
  assert.deepEqual(results.attacker.answers, [], "the frame answered another origin's window");
  assert.deepEqual(results.preHandshake, { withoutPort: 0, otherVersion: 0, noProtocol: 0 });

  // A second init to the tag's frame: no answer.
  assert.equal(await page.evaluate(() => window.hostile.secondInit()), null, "the frame answered a second init");

  // The page cannot read into the frame.
  const reads = await page.evaluate(() => window.hostile.readFrame());
  assert.equal(reads.contentDocument, "null");
  for (const [what, outcome] of Object.entries(reads)) {
    if (what !== "contentDocument") assert.equal(outcome, "SecurityError", `${what}: ${outcome}`);
  }

  // Frames of its own, with inits for another recipient, an unknown provider, unknown types, a theme that escapes.
  const other = (await chain.json(`${chain.urls.registryB}/api/form-config`)).body;
  const own = await page.evaluate(
    async ([other]) => {
      const h = window.hostile;
      const c = await h.config;
      const base = {
        type: "init",
        recipientOrganization: c.recipientOrganization,
        recipientScope: c.recipientScope,
        provider: c.provider,
        types: c.types,
        require: c.require,
        lang: "nl",
        timeoutMs: 4000,
      };
      const out = {};
      for (const [name, init] of Object.entries({
        otherRecipient: {
          ...base,
          recipientOrganization: other.recipientOrganization,
          recipientScope: other.recipientScope,
        },
        unknownRecipient: { ...base, recipientOrganization: "oin:99999999999999999999" },
        unknownProvider: { ...base, provider: "ura:99999999" },
        unknownType: { ...base, types: ["XX"] },
      })) {
        const { iframe, answer } = await h.ownFrame(`own-${name}`, init);
        out[name] = answer;
        iframe.remove();
      }
      const themed = await h.ownFrame("own-theme", {
        ...base,
        lang: "xx",
        theme: {
          "--pseudoform-background": `red; background-image: url(http://attacker.test/css1)`,
          "--pseudoform-text": "url(http://attacker.test/css2)",
          "--pseudoform-font-family": "x} input[value] {background: url(http://attacker.test/css3)}",
          "--pseudoform-error": "var(--x)",
          "--pseudoform-accent": "rgb(1, 2, 3)",
          color: "red",
        },
      });
      out.themed = themed.answer;
      // Over its own frame's port: requests before any check, a proof for nothing it made.
      const ask = (type, args) =>
        new Promise((resolve) => {
          themed.port.onmessage = (e) => e.data?.type === "answer" && resolve(e.data);
          themed.port.postMessage({ protocol: "pseudoform-frame/1", type, id: 1, ...args });
        });
      out.pseudonymiseFirst = await ask("pseudonymise", {});
      out.proofOfNothing = await ask("proof", {
        method: "POST",
        url: `${location.origin}/api/submissions`,
        record: "a.b.c.d.e",
      });
      return out;
    },
    [other],
  );
  // The other registry's recipient: as the frame host's settings.json says of this page's origin
  // (the chain lets the proxy's origin use both registries).
  const settings = (await chain.json(new URL("settings.json", chain.urls.frame).href)).body;
  const allowsB = settings.recipients.some(
    (r) => r.organization === other.recipientOrganization && r.origins.includes(registry),
  );
  assert.deepEqual(
    own.otherRecipient,
    allowsB
      ? { protocol: PROTOCOL, type: "ready" }
      : { protocol: PROTOCOL, type: "refused", code: "frame.originNotAllowed" },
  );
  assert.deepEqual(own.unknownRecipient, { protocol: PROTOCOL, type: "refused", code: "frame.originNotAllowed" });
  assert.deepEqual(own.unknownProvider, {
    protocol: PROTOCOL,
    type: "refused",
    code: "config.invalid",
    field: "provider",
  });
  assert.equal(own.unknownType.type, "refused");
  assert.equal(own.unknownType.code, "config.invalid");
  assert.equal(own.themed.type, "ready");
  assert.equal(own.pseudonymiseFirst.ok, false);
  assert.equal(own.pseudonymiseFirst.error.code, "frame.protocol");
  assert.equal(own.proofOfNothing.error.code, "frame.protocol");
  const themedFrame = await (await page.$("#own-theme")).contentFrame();
  const style = await themedFrame.evaluate(() => {
    const root = document.documentElement;
    return {
      lang: root.lang,
      inline: root.getAttribute("style"),
      accent: getComputedStyle(root).getPropertyValue("--pseudoform-accent").trim(),
    };
  });
  assert.deepEqual(style, { lang: "nl", inline: "--pseudoform-accent: rgb(1, 2, 3);", accent: "rgb(1, 2, 3)" });
  await page.evaluate(() => document.getElementById("own-theme").remove());

  // The clinician logs in inside the frame.
  await logInFrame(frame);

  const typedList = identities.map((identity) =>
    Object.fromEntries(Object.entries(identity.typed).filter(([field]) => fields.includes(field))),
  );
  const typeIdentity = async (typed) => {
    for (const [field, value] of Object.entries(typed)) {
      if (field === "sex") await frameLocator.locator("#sex").selectOption(value);
      else await frameLocator.locator(`#${field}`).fill(value);
    }
    await page.selectOption("#diagnose", { index: 1 + (typed.birthName.length % 2) });
    await page.selectOption("#asa", "II");
    await page.fill("#opmerking", "controle na zes weken");
  };
  const heights = new Set();
  const lastHeight = () =>
    page.evaluate(() => {
      const sizes = window.hostile.seen.filter((s) => s.startsWith("port in ") && s.includes('"resize"'));
      return sizes.length ? JSON.parse(sizes.at(-1).slice(8)).height : undefined;
    });

  // Identity 0, its birth name typed key by key while the page polls the frame's state: the
  // revision it reads says nothing of how much was typed.
  const revisions = [await page.evaluate(() => window.hostile.ask("state").then((a) => a.revision))];
  for (const key of typedList[0].birthName) {
    await frameLocator.locator("#birthName").pressSequentially(key);
    revisions.push(await page.evaluate(() => window.hostile.ask("state").then((a) => a.revision)));
  }
  assert.equal(await frameLocator.locator("#birthName").inputValue(), typedList[0].birthName);
  assert.deepEqual(new Set(revisions), new Set([revisions[0]]), `revisions while typing: ${revisions.join()}`);
  // The rest of identity 0, with the page's own requests over the tag's port while it is typed.
  await typeIdentity(typedList[0]);
  const port = await page.evaluate(async (registryB) => {
    const h = window.hostile;
    const c = await h.config;
    const own = `${location.origin}/api/submissions`;
    const out = {};
    out.state = await h.ask("state");
    out.check = await h.ask("check", { fresh: false });
    out.pseudonymiseUnchecked = await h.ask("pseudonymise");
    out.checkFresh = await h.ask("check", { fresh: true });
    out.pseudonymise = await h.ask("pseudonymise");
    const record = out.pseudonymise.submission?.record;
    out.proofOtherOrigin = await h.ask("proof", { method: "POST", url: `${registryB}/api/submissions`, record });
    out.proofTtp = await h.ask("proof", { method: "POST", url: `${new URL(c.frame).origin}/v1/token`, record });
    out.proofGet = await h.ask("proof", { method: "GET", url: own, record });
    out.proofNotAUrl = await h.ask("proof", { method: "POST", url: "not a url", record });
    out.proofOtherRecord = await h.ask("proof", { method: "POST", url: own, record: `${record}x` });
    out.proofNoRecord = await h.ask("proof", { method: "POST", url: own });
    // Malformed messages over the port: ignored, or answered frame.protocol; the frame still answers after them.
    const P = "pseudoform-frame/1";
    for (const m of [
      null,
      1,
      "x",
      [],
      { protocol: P },
      { protocol: P, type: "state" },
      { protocol: P, type: "nonsense", id: 5 },
      { protocol: P, type: "focus", field: "</x>" },
      { protocol: P, type: "__proto__", id: 6 },
      { protocol: P, type: "constructor", id: 7 },
    ]) {
      h.raw(m);
    }
    out.stillState = await h.ask("state");
    return out;
  }, chain.urls.registryB);
  assert.equal(port.state.ok, true);
  assert.deepEqual(Object.keys(port.state).sort(), ["id", "ok", "optedOut", "protocol", "revision", "type"]);
  assert.deepEqual(port.check.problems, []);
  // Before a fresh check (the recipient's policy not yet fetched) the frame refuses to pseudonymise.
  assert.equal(port.pseudonymiseUnchecked.ok, false);
  assert.equal(port.pseudonymiseUnchecked.error.code, "frame.protocol");
  assert.equal(port.pseudonymise.ok, true, JSON.stringify(port.pseudonymise.error));
  // Registry A receives R: the patient number sealed to the provider goes along.
  assert.deepEqual(Object.keys(port.pseudonymise.submission).sort(), [
    "encryptedBlindFactors",
    "methodVersion",
    "recipientOrganization",
    "recipientScope",
    "record",
    "reversible",
  ]);
  for (const name of [
    "proofOtherOrigin",
    "proofTtp",
    "proofGet",
    "proofNotAUrl",
    "proofOtherRecord",
    "proofNoRecord",
  ]) {
    assert.equal(port[name].ok, false, name);
    assert.equal(port[name].error.code, "frame.protocol", name);
  }
  assert.equal(port.stillState.ok, true, "the frame answers after malformed messages");
  // The clinician ticks the objection: the page's own requests cannot pseudonymise past it, nor
  // prove the delivery of the record made before it, and nothing reaches the TTP meanwhile.
  await frameLocator.locator("#optOut").check();
  const ttpSeen = chain.ttpProxy.state.requests.length;
  const objecting = await page.evaluate(async (record) => {
    const h = window.hostile;
    const own = `${location.origin}/api/submissions`;
    const out = {};
    out.state = await h.ask("state");
    out.check = await h.ask("check", { fresh: true });
    out.pseudonymise = await h.ask("pseudonymise");
    out.proof = await h.ask("proof", { method: "POST", url: own, record });
    return out;
  }, port.pseudonymise.submission.record);
  assert.equal(objecting.state.optedOut, true);
  for (const name of ["pseudonymise", "proof"]) {
    assert.equal(objecting[name].ok, false, name);
    assert.equal(objecting[name].error.code, "optOut", name);
  }
  assert.deepEqual(
    chain.ttpProxy.state.requests.slice(ttpSeen).filter((r) => r.method === "POST"),
    [],
    "no TTP request under the objection",
  );
  await frameLocator.locator("#optOut").uncheck();

  // A TTP credential of the page's own: the provider's portal does not vouch for its origin
  // (a frame parent only), and the TTP answers no browser request of it (no CORS), while it
  // does for an in-page form's origin.
  const portalPopup = page.waitForEvent("popup");
  await page.evaluate((login) => {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const jkt = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
    window.hostile.subjectTokens = [];
    addEventListener("message", (e) => {
      if (e.data?.type === "pseudoform:subject-token") window.hostile.subjectTokens.push(e.data);
    });
    const target = new URL(login);
    target.searchParams.set("jkt", jkt);
    target.searchParams.set("origin", location.origin);
    window.open(target.href, "own-login");
  }, chain.urls.login);
  const ownLogin = await portalPopup;
  await ownLogin.waitForLoadState();
  assert.match(await ownLogin.textContent("body"), /niet bekend bij uw zorgaanbieder/);
  assert.equal(await ownLogin.$("#username"), null, "no login offered to the page's own key");
  await ownLogin.close();
  assert.deepEqual(await page.evaluate(() => window.hostile.subjectTokens), []);
  const preflight = async (origin) =>
    (
      await fetch(`${chain.urls.ttp}/v1/token`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "dpop" },
      })
    ).headers.get("access-control-allow-origin");
  assert.equal(await preflight(new URL(page.url()).origin), null, "the TTP allows the frame's parent no request");
  assert.equal(await preflight(chain.registryProxy.url), chain.registryProxy.url, "control: an in-page form origin");
  // The page's own submission (not the clinician's) is never posted; the clinician's submit stores one record.
  let status = await submit(page);
  assert.equal(status.kind, "success", status.text);
  heights.add(await lastHeight());
  assert.equal((await chain.records()).length, recordsBefore + 1);

  // After the store: replays of what the tag sent, and submissions without the frame.
  const replay = await page.evaluate(async () => {
    const h = window.hostile;
    const out = {};
    const [proof] = h.sent("proof").slice(-1);
    out.proof = await h.ask("proof", { method: proof.method, url: proof.url, record: proof.record });
    out.pseudonymise = await h.ask("pseudonymise");
    const [sent] = h.posted.slice(-1);
    out.resend = await h.postOwn(sent.body, { dpop: sent.headers.dpop });
    out.noProof = await h.postOwn(sent.body);
    const body = JSON.parse(sent.body);
    out.otherData = await h.postOwn({ ...body, data: { diagnose: "Knieartrose" } }, { dpop: sent.headers.dpop });
    out.fabricated = await h.postOwn({ ...body, record: "eyJhbGciOiJub25lIn0.a.b.c.d", encryptedBlindFactors: "x" });
    out.garbage = await h.postOwn("{not json");
    return out;
  });
  assert.equal(replay.proof.error?.code, "frame.protocol", "a proof for a record the frame forgot after the store");
  assert.equal(replay.pseudonymise.ok, false, "pseudonymise after the reset, before a state");
  for (const name of ["resend", "noProof", "otherData", "fabricated", "garbage"]) {
    assert.ok(replay[name].status >= 400 && replay[name].status < 500, `${name}: ${replay[name].status}`);
  }
  assert.equal((await chain.records()).length, recordsBefore + 1, "a submission of the page's own was stored");

  // The rest, the frame covered by an input of the page's own and shrunk half way.
  for (let i = 1; i < COUNT; i++) {
    if (i === Math.floor(COUNT / 2)) {
      const covered = await page.evaluate(() => window.hostile.cover());
      assert.ok(Math.abs(covered.overlay - covered.frame) < 1 && covered.frame <= 40, JSON.stringify(covered));
    }
    await typeIdentity(typedList[i]);
    heights.add(await lastHeight());
    status = await submit(page);
    assert.equal(status.kind, "success", `identity ${i}: ${status.text}`);
  }
  assert.equal(await page.inputValue("#overlay"), "", "the page's overlay got what was typed into the frame");
  const records = await chain.records();
  assert.equal(records.length, recordsBefore + COUNT, "the registry stores exactly the clinician's records");
  const c = await page.evaluate(() => window.hostile.config);
  const query = new URLSearchParams({
    recipientOrganization: c.recipientOrganization,
    recipientScope: c.recipientScope,
  });
  const { requiredTypes } = (await chain.json(`${chain.urls.ttp}/v1/policy?${query}`)).body;
  assert.ok(requiredTypes.length > 0, "the recipient requires types");
  for (const record of records.slice(0, COUNT)) {
    const types = record.pseudonyms.map((p) => p.split(":")[0]);
    for (const type of requiredTypes) assert.ok(types.includes(type), `record ${record.id} lacks ${type}`);
    assert.deepEqual(Object.keys(record.data).sort(), ["asa", "diagnose", "opmerking"]);
  }
  // The frame's height the page sees does not depend on what was typed.
  assert.equal(heights.size, 1, `heights seen: ${[...heights].join()}`);

  const typedAt = Date.now();
  // Navigating the frame: to a fake frame of the page's other origin (which says hello and reports
  // what it is sent), then back to the frame's own URL with settings of the page's choosing.
  await page.evaluate((attacker) => {
    window.hostile.tagFrame().contentWindow.location = `${attacker}/attacker.html?role=fake`;
  }, ATTACKER);
  await page.waitForFunction(() =>
    window.hostile.seen.some((s) => s.includes('"origin":"http://attacker.test"') && s.includes('"hello"')),
  );
  const hellos = () => page.evaluate(() => window.hostile.seen.filter((s) => s.includes('"type":"hello"')).length);
  const before = await hellos();
  await page.evaluate(
    ([attacker, src]) => {
      window.hostile.tagFrame().src = `${src}?ttp=${encodeURIComponent(attacker)}&lang=en#init`;
    },
    [ATTACKER, chain.urls.frame],
  );
  await page.waitForFunction((n) => window.hostile.seen.filter((s) => s.includes('"type":"hello"')).length > n, before);
  status = await submit(page);
  assert.equal(status.kind, "error");
  assert.match(status.text, /^Het afgeschermde deel van het formulier \(de patiëntgegevens\) kon niet geladen worden/);
  const fake = await page.evaluate(() => window.hostile.seen.filter((s) => s.includes('"attacker":"fake"')));
  assert.ok(!fake.some((s) => s.includes('"got"')), `the fake frame was sent ${fake.join()}`);
  assert.equal((await chain.records()).length, recordsBefore + COUNT, "navigation stored a record");

  // What the page saw, every request, the databases and the logs: nothing identifying.
  const seen = await page.evaluate(() => window.hostile.seen);
  assert.ok(
    seen.some((s) => s.startsWith("port in ") && s.includes('"submission"')),
    "the page saw the submissions",
  );
  assert.ok(
    seen.some((s) => s.startsWith("event keydown") || s.startsWith("event focusin")),
    "the page listened",
  );
  const ttpAfter = chain.ttpProxy.state.requests.length;
  const derivePage = await chrome.newPage();
  await derivePage.goto(chain.formUrl);
  const forms = await derivedForms(derivePage, typedList, TYPES);
  await derivePage.close();
  const needles = new Set();
  for (const [i, identity] of identities.entries()) {
    for (const n of needlesOf(identity, forms[i].normalised, forms[i].inputs)) needles.add(n);
  }
  const haystacks = [["what the hostile page saw", Buffer.from(seen.join("\n"))]];
  for (const r of chrome.requests) haystacks.push([`request ${r.url}`, Buffer.from(`${r.method} ${r.url}\n${r.body}`)]);
  haystacks.push(...(await chainHaystacks(chain, [chain.ttpProxy, chain.registryProxy, chain.framedProxy])));
  assert.ok(haystacks.some(([name]) => name.startsWith("database registry-a")));
  const index = needleIndex(needles);
  // The scan finds a value next to hex digits, and lets pass only one inside a whole hex id.
  const probe = needleIndex(["5769cb"]);
  assert.deepEqual(scan(Buffer.from('{"postcode":"5769cb"} a5769cb0'), probe).leaks, ["5769cb", "5769cb"]);
  assert.deepEqual(scan(Buffer.from(`jti ${"0".repeat(13)}5769cb${"f".repeat(13)}`), probe).leaks, []);
  let scanned = 0;
  for (const [name, bytes] of haystacks) {
    scanned += bytes.length;
    assert.deepEqual(scan(bytes, index).leaks, [], `an identifying value in ${name}`);
  }

  // The TTP heard only the frame's origin; nothing went to the page's other origin but its own pages.
  for (const r of chain.ttpProxy.state.requests.slice(ttpBefore, ttpAfter).filter((q) => q.headers.origin)) {
    assert.equal(r.headers.origin, frameOrigin, r.url);
  }
  const attackerRequests = chrome.requests.filter((r) => r.url.startsWith(ATTACKER));
  assert.ok(
    attackerRequests.every((r) => new URL(r.url).pathname === "/attacker.html"),
    attackerRequests.map((r) => r.url).join(),
  );
  console.log(
    `hostile parent: ${COUNT} identities, ${needles.size} forms, ${seen.length} observations, ` +
      `${chrome.requests.length} requests, ${haystacks.length} haystacks (${(scanned / 1e6).toFixed(1)} MB); ${((typedAt - started) / 1000).toFixed(1)} s to the last store, ${((Date.now() - started) / 1000).toFixed(1)} s in all`,
  );
  await page.close();
});
