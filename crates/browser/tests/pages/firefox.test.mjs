// Frame mode in headless Firefox (Debian's firefox-esr under geckodriver,
// the pair that runs the wasm module's browser tests): playwright drives
// only its own Firefox builds, so this file speaks W3C WebDriver to
// geckodriver directly. The clinician opens the framed demo form, logs in
// with a click inside the identity frame (the provider's popup on its own
// origin), types the identity into the frame and the clinical fields into
// the page, and submits: the registry stores one record with the required
// pseudonyms and exactly the clinical fields, the page's script cannot read
// the frame, and no request body or URL carries the identity.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { startChain } from "./chain.mjs";

const GECKODRIVER = process.env.GECKODRIVER ?? "geckodriver";
const FIREFOX = process.env.FIREFOX ?? "/usr/bin/firefox-esr";
/** The W3C key of an element reference. */
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

const PATIENT = {
  birthName: "van der Berg-Jansen",
  initial: "J.P.",
  birthDate: "01-02-1980",
  postcode: "1234 ab",
  houseNumber: "12",
  mrn: "PAT-0001",
};
/** Forms of the identity that must never appear in what the chain received. */
const SECRETS = ["Berg-Jansen", "BERGJANS", "01-02-1980", "19800201", "1234 ab", "1234AB", "PAT-0001"];

let chain, driver, session;

/** A free loopback port for geckodriver. */
async function freePort() {
  const server = net.createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = /** @type {net.AddressInfo} */ (server.address());
  server.close();
  await once(server, "close");
  return port;
}

/** One WebDriver command; rejects with the driver's error. */
async function command(method, path, body) {
  const response = await fetch(`${driver.url}${path}`, {
    method,
    headers: body ? { "content-type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${answer.value?.error}: ${answer.value?.message}`);
  return answer.value;
}
const s = (path) => `/session/${session}${path}`;
const run = (script, ...args) => command("POST", s("/execute/sync"), { script, args });
const find = async (css) => (await command("POST", s("/element"), { using: "css selector", value: css }))[ELEMENT];
const click = async (css) => command("POST", s(`/element/${await find(css)}/click`), {});
const type = async (css, text) => command("POST", s(`/element/${await find(css)}/value`), { text });

/** Polls `script` (in the current browsing context) until it returns a truthy value. */
async function until(script, what, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await run(script).catch(() => undefined);
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Polls the window handles until `ok(list)`; resolves to the list. */
async function windows(ok, what, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const list = await command("GET", s("/window/handles"));
    if (ok(list)) return list;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Into the identity frame of the top-level page. */
async function intoFrame() {
  await command("POST", s("/frame"), { id: null });
  await command("POST", s("/frame"), { id: { [ELEMENT]: await find("pseudoform-identity iframe") } });
}

before(async () => {
  chain = await startChain();
  const port = await freePort();
  const child = spawn(GECKODRIVER, ["--port", String(port), "--host", "127.0.0.1"], { stdio: "ignore" });
  driver = { child, url: `http://127.0.0.1:${port}` };
  const end = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${driver.url}/status`)
      .then((r) => r.json())
      .then((a) => a.value?.ready)
      .catch(() => false);
    if (ready) break;
    if (Date.now() > end) throw new Error("geckodriver did not start");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const created = await command("POST", "/session", {
    capabilities: {
      alwaysMatch: {
        browserName: "firefox",
        "moz:firefoxOptions": { binary: FIREFOX, args: ["-headless"], prefs: { "intl.accept_languages": "nl-NL" } },
      },
    },
  });
  session = created.sessionId;
});

after(async () => {
  if (session) await command("DELETE", s("")).catch(() => {});
  if (driver) {
    driver.child.kill();
    await once(driver.child, "exit");
  }
  await chain?.stop();
});

test("Firefox: the framed form logs in inside the frame and stores a record of pseudonyms and clinical data only", async () => {
  const ttpBefore = chain.ttpProxy.state.requests.length;
  await command("POST", s("/url"), { url: chain.frameFormUrl });
  await until("return !document.querySelector('button[type=submit]').disabled", "the framed form to be ready");
  const main = await command("GET", s("/window"));

  // The page's script cannot reach into the frame.
  assert.equal(await run("return document.querySelector('pseudoform-identity iframe').contentDocument"), null);
  assert.match(
    await run(
      "try { return String(document.querySelector('pseudoform-identity iframe').contentWindow.document.body) } catch (e) { return e.name }",
    ),
    /SecurityError/,
  );

  // The clinician logs in with the frame's own control: the provider's popup.
  await intoFrame();
  await until("return !document.querySelector('#identity').hidden", "the frame's fields");
  await click(".pseudoform-login");
  const handles = await windows((list) => list.length > 1, "the login popup");
  const popup = handles.find((h) => h !== main);
  await command("POST", s("/window"), { handle: popup });
  await until("return document.querySelector('#username')", "the portal's login page");
  await type("#username", chain.urls.account.username);
  await type("#password", chain.urls.account.password);
  await click("button[type=submit]");
  await windows((list) => list.length === 1, "the login popup to close");
  await command("POST", s("/window"), { handle: main });
  await intoFrame();
  await until("return document.querySelector('.pseudoform-login').hidden", "the frame's credential");

  // The identity into the frame, as the clinician types it.
  for (const [field, value] of Object.entries(PATIENT)) await type(`#${field}`, value);
  await click('#sex option[value="2"]');
  // The clinical fields into the page.
  await command("POST", s("/frame"), { id: null });
  await click("#diagnose option:nth-child(2)");
  await click("#asa option:nth-child(3)");
  await type("#opmerking", "controle na zes weken");
  await click("button[type=submit]");
  const kind = await until(
    "const k = document.querySelector('[data-pseudoform-status]').dataset.kind; return k && k !== 'busy' ? k : null",
    "the submission's outcome",
  );
  const text = await run("return document.querySelector('[data-pseudoform-status]').textContent");
  assert.equal(kind, "success", text);

  // One record: the required types, exactly the clinical fields.
  const records = await chain.records();
  assert.equal(records.length, 1);
  const [record] = records;
  const types = record.pseudonyms.map((label) => label.split(":")[0]);
  for (const required of ["NGGV", "RGG"]) assert.ok(types.includes(required), `${required} in ${types}`);
  assert.deepEqual(Object.keys(record.data).sort(), ["asa", "complicaties", "diagnose", "ingreepdatum", "opmerking"]);
  assert.deepEqual(
    [record.data.diagnose, record.data.asa, record.data.opmerking],
    ["Heupartrose", "II", "controle na zes weken"],
  );

  // The TTP was reached through the proxy; nothing it or the registry received carries the identity.
  const ttp = chain.ttpProxy.state.requests.slice(ttpBefore);
  assert.ok(
    ttp.some((r) => r.method === "POST" && r.url === "/v1/evaluate"),
    "the frame evaluated at the TTP",
  );
  const seen = JSON.stringify([ttp, chain.framedProxy.state.requests, records]);
  for (const secret of SECRETS) assert.ok(!seen.includes(secret), "an identity form reached the chain");
});
