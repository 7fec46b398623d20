// The two frame-mode example forms of www/examples/, written from
// docs/embedding.md §14 alone (radios, a select and a date field; a
// checkbox group and a textarea; each its own theme in a stylesheet), in
// real headless Chromium under the guide's CSP against the real chain: a
// full submission stores exactly the clinical fields given plus the
// recipient's required pseudonym types, and the theme set on the page
// reaches the frame's computed style.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { identityFrame, launch, logInFrame, settled } from "./support.mjs";
import { startChain } from "./chain.mjs";

let chain, chrome;

before(async () => {
  chain = await startChain();
  chrome = await launch({ account: chain.urls.account });
});
after(async () => {
  await chrome?.browser.close();
  await chain?.stop();
});

const PATIENT = {
  birthName: "de Vries",
  initial: "M.",
  birthDate: "14-07-1962",
  sex: "1",
  postcode: "3511 AB",
  houseNumber: "7",
  mrn: "Z1234567",
};

const FORMS = {
  "frame-operatie": {
    async clinical(page) {
      await page.selectOption("#ingreep", "tka");
      await page.fill("#operatiedatum", "2026-11-03");
      await page.check("#zijde input[value=links]");
    },
    data: { ingreep: "tka", operatiedatum: "2026-11-03", zijde: "links" },
    theme: { color: "rgb(20, 40, 80)", fontFamily: "Georgia, serif", "--pseudoform-radius": "0" },
  },
  "frame-poli": {
    async clinical(page) {
      await page.check("input[name=klachten][value=pijn]");
      await page.check("input[name=klachten][value=instabiliteit]");
      await page.fill("#toelichting", "loopt weer\nzonder stok");
    },
    data: { klachten: ["pijn", "instabiliteit"], toelichting: "loopt weer\nzonder stok" },
    theme: { color: "rgb(60, 20, 20)", "--pseudoform-error": "#a4161a", "--pseudoform-spacing": "1.5rem" },
  },
};

for (const [name, form] of Object.entries(FORMS)) {
  test(`${name}: a full submission through the frame stores the clinical fields and the required types; the page's theme reaches the frame`, async () => {
    const page = await chrome.newPage();
    await page.goto(`${chain.framedProxy.url}/examples/${name}.html`);
    await page.waitForSelector("button[type=submit]:not([disabled])", { timeout: 30_000 });
    const frame = await identityFrame(page);
    const style = await frame.evaluate(
      (names) => {
        const root = getComputedStyle(document.documentElement);
        const custom = Object.fromEntries(names.map((n) => [n, root.getPropertyValue(n).trim()]));
        return { color: root.color, fontFamily: root.fontFamily, ...custom };
      },
      Object.keys(form.theme).filter((n) => n.startsWith("--")),
    );
    for (const [property, value] of Object.entries(form.theme)) assert.equal(style[property], value, property);

    await logInFrame(frame);
    const shown = await frame.evaluate(() =>
      [...document.querySelectorAll("[data-pseudoform-field]")].map((e) => e.dataset.pseudoformField),
    );
    for (const [field, value] of Object.entries(PATIENT)) {
      if (!shown.includes(field)) continue;
      if (field === "sex") await page.frameLocator("pseudoform-identity iframe").locator("#sex").selectOption(value);
      else await page.frameLocator("pseudoform-identity iframe").locator(`#${field}`).fill(value);
    }
    await form.clinical(page);
    const before = (await chain.records()).length;
    await page.click("button[type=submit]");
    const status = await settled(page);
    assert.equal(status.kind, "success", status.text);
    const records = await chain.records();
    assert.equal(records.length, before + 1);
    const [record] = records;
    assert.deepEqual(record.data, form.data);
    const config = (await chain.json(`${chain.framedProxy.url}/api/form-config`)).body;
    const query = new URLSearchParams({
      recipientOrganization: config.recipientOrganization,
      recipientScope: config.recipientScope,
    });
    const { requiredTypes } = (await chain.json(`${chain.urls.ttp}/v1/policy?${query}`)).body;
    const types = record.pseudonyms.map((p) => p.split(":")[0]);
    for (const type of requiredTypes) assert.ok(types.includes(type), `${name}: no ${type}`);
    await page.close();
  });
}
