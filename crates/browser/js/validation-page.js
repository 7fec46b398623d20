// The provider's validation page (docs/protocol.md, "Validation: the
// provider's side"), served on the provider's own origin (the demo: the
// portal's /validation) and bundled by the build as pseudoform-validation.js.
//
// It reads /validation-config.json, keeps the provider's encryption keys in
// IndexedDB (provider-keys.js), logs in through the portal's session (a
// same-origin POST /api/subject-token; without a session a link to the
// portal's login, which comes back here), holds one TtpSession per registry
// with scope `validate` and that registry as audience, lists the registry's
// open validation requests, checks each record's binding (the TTP-signed
// record claims the registry hands on: signed by a pinned TTP key, of this
// provider and this registry, carrying the envelope's digest; else
// `validation.unbound` and no number), opens its reversible pseudonym here
// (openReversible; the associated data from the configured registry and the
// envelope's kid), checks that it names this provider, shows the local
// patient number beside the clinical data and posts the answers. At start
// it compares the TTP's directory entry of the provider with the keys in
// this browser and warns when the TTP's current key is not one of them. "Bezwaar van een patiënt": the typed number is
// normalised by the wasm module, every record of the provider at each
// registry is opened here, the matches are listed and, after a
// confirmation, withdrawn. Numbers live in the page only: never in storage,
// a URL, a log or a request.
//
// Four-eyes (config `fourEyes`): the portal signs no subject token for this
// page until another account has approved this account's ask (`403
// approval.required`), so without it no validation token exists and no
// request reaches a registry. The page then offers "Goedkeuring vragen"
// (POST /api/approvals), shows the wait and polls; every account sees the
// other accounts' pending asks (account ids only) with "Goedkeuren".
import { PseudoformError } from "./errors.js";
import { requestJson } from "./http.js";
import { TtpSession } from "./session.js";
import { fetchProviderKey, openReversible, reversibleAad, reversibleDigest } from "./reversible.js";
import { isText, verifiedClaims } from "./statement.js";
import { normalise, pseudonymInput, ready } from "./wasm.js";
import { deleteKey, generateKey, keyFromPem, publicPem, storeKey, storedKeys } from "./provider-keys.js";

// For the page tests and the benchmark, which run in this page.
export { keyFromPem, openReversible, reversibleAad };

/** Records asked per page of /api/provider-records (the registry's maximum). */
export const PAGE_LIMIT = 1000;

/** How often the page asks the portal about approvals while four-eyes applies, in ms. */
export const APPROVAL_POLL_MS = 3000;

/**
 * @typedef {{ name: string, url: string, recipientOrganization: string, recipientScope: string }} RegistryConfig
 * @typedef {{ ttp: string, provider: string, ttpSigningKeys: string[], registries: RegistryConfig[], fourEyes: boolean }} ValidationConfig
 * @typedef {{ type: string, kid: string, enc: string, ct: string }} Envelope
 * @typedef {import("./provider-keys.js").ProviderKey} ProviderKey
 */

/** Dutch texts of the codes the page shows; an unknown code gets the general text. */
const TEXTS = {
  "login.required": "U bent niet ingelogd bij het zorgportaal.",
  "approval.required": "Voor deze pagina is eerst goedkeuring door een tweede medewerker nodig.",
  "approval.sameAccount": "U kunt uw eigen verzoek niet goedkeuren.",
  "approval.unknown": "Dit verzoek om goedkeuring bestaat niet (meer).",
  "approval.expired": "Dit verzoek om goedkeuring is verlopen.",
  "approval.notPending": "Dit verzoek is al goedgekeurd.",
  "approval.failed": "Het zorgportaal gaf geen antwoord over de goedkeuring.",
  "providerKey.invalid": "Dit sleutelbestand is geen bruikbare P-256-sleutel (PKCS#8 PEM).",
  "providerKey.noStorage": "De browser kan de sleutel niet bewaren.",
  "validation.noKey": "De sleutel van deze versleuteling staat niet in deze browser.",
  "validation.unbound":
    "Deze registratie is niet door de TTP aan dit patiëntnummer gebonden; het nummer wordt niet getoond.",
  "validation.otherProvider": "Deze registratie hoort niet bij uw zorgaanbieder.",
  "validation.numberInvalid": "Dit patiëntnummer is ongeldig.",
  "reversible.undecryptable": "Het patiëntnummer kan niet worden geopend.",
  "registry.refused": "Het register weigert het verzoek.",
  "registry.rejected": "Het register wijst het verzoek af.",
  "registry.unreachable": "Het register is niet bereikbaar.",
  "registry.timeout": "Het register antwoordt niet op tijd.",
  "registry.malformedAnswer": "Het register gaf een onverwacht antwoord.",
  "ttp.refused": "De TTP weigert de aanmelding.",
  "ttp.unreachable": "De TTP is niet bereikbaar.",
  "ttp.timeout": "De TTP antwoordt niet op tijd.",
  "portal.failed": "Het zorgportaal gaf geen aanmelding.",
};

/**
 * A Dutch sentence for an error, with its code and field (never a value).
 * @param {unknown} error
 */
export function describe(error) {
  const e = PseudoformError.from(error);
  const text = /** @type {Record<string, string>} */ (TEXTS)[e.code] ?? "Er ging iets mis.";
  const server = /** @type {{ serverCode?: string }} */ (e).serverCode;
  const detail = [e.code, server, e.field ? `veld ${e.field}` : undefined].filter(Boolean).join(", ");
  return `${text} (${detail})`;
}

/**
 * A subject-token source from the portal's session: a same-origin POST; a
 * `401` means no session (code `login.required`).
 * @param {{ jkt: string, origin: string }} target
 * @returns {Promise<string>}
 */
export async function portalSubjectToken({ jkt, origin }) {
  let answer;
  try {
    answer = await fetch("/api/subject-token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jkt, origin }),
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
    });
  } catch (error) {
    throw new PseudoformError("portal.failed", "the portal cannot be reached", "login", { cause: error });
  }
  if (answer.status === 401) throw new PseudoformError("login.required", "log in at the portal first", "login");
  const body = await answer.json().catch(() => undefined);
  if (answer.status === 403 && body?.code === "approval.required") {
    throw new PseudoformError("approval.required", "four-eyes: another account must approve first", "login");
  }
  if (!answer.ok || typeof body?.subjectToken !== "string") {
    throw new PseudoformError("portal.failed", `the portal answered ${answer.status}`, "login", {
      status: answer.status,
    });
  }
  return body.subjectToken;
}

/**
 * A call of the portal's approval API (same origin, the session cookie):
 * its JSON, or a PseudoformError with the portal's code.
 * @param {"GET" | "POST"} method
 * @param {string} path
 */
export async function portalApprovals(method, path = "/api/approvals") {
  let answer;
  try {
    answer = await fetch(path, { method, credentials: "same-origin", cache: "no-store", redirect: "error" });
  } catch (error) {
    throw new PseudoformError("approval.failed", "the portal cannot be reached", "approval", { cause: error });
  }
  const body = await answer.json().catch(() => undefined);
  if (answer.ok && body && typeof body === "object") return body;
  const code = typeof body?.code === "string" && /^[a-zA-Z.]{1,64}$/.test(body.code) ? body.code : "approval.failed";
  throw new PseudoformError(code, `the portal answered ${answer.status}`, "approval", { status: answer.status });
}

/**
 * The local patient number in an opened plaintext `provider|mrn`, if its
 * provider part is `provider`; else `validation.otherProvider`.
 * @param {string} plaintext
 * @param {string} provider
 */
export function numberOf(plaintext, provider) {
  const at = plaintext.indexOf("|");
  if (at < 0 || plaintext.slice(0, at) !== provider || at === plaintext.length - 1) {
    throw new PseudoformError("validation.otherProvider", "the pseudonym names another provider", "R");
  }
  return plaintext.slice(at + 1);
}

/** The `typ` of the TTP's record claims (the JWS inside each record JWE). */
const CLAIMS_TYP = "JWT";
/** @type {import("./statement.js").Refusal} */
const UNBOUND = { prefix: "validation", field: "reversible", what: "record's claims" };

/**
 * Which records each claims `jti` came with, per registry, of every record
 * the page has seen (noteClaims): one record's claims shown with a second
 * record is a copy (checkBinding refuses both).
 * @typedef {Map<string, Set<string>>} SeenClaims
 */

/**
 * The `jti` of a record's claims JWS, read without verifying (only to find
 * copies; checkBinding verifies).
 * @param {unknown} claims
 */
function jtiOf(claims) {
  try {
    const payload = JSON.parse(atob(String(claims).split(".")[1].replaceAll("-", "+").replaceAll("_", "/")));
    return isText(payload?.jti) ? payload.jti : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Notes the claims of records of `registry` in `seen`.
 * @param {SeenClaims} seen
 * @param {RegistryConfig} registry
 * @param {unknown[]} records
 */
export function noteClaims(seen, registry, records) {
  for (const record of records) {
    const r = /** @type {{ claims?: unknown, recordId?: unknown } | null} */ (record);
    const jti = jtiOf(r?.claims);
    if (jti === undefined) continue;
    const id = `${registry.name} ${jti}`;
    const ids = seen.get(id) ?? new Set();
    ids.add(String(r?.recordId));
    seen.set(id, ids);
  }
}

/**
 * Checks that a record's R is the one the TTP signed for this provider and
 * registry: `record.claims` (the record's claims JWS, from the registry) is
 * signed by a TTP key whose thumbprint the configuration pins, names this
 * provider and the configured registry, and carries the digest of
 * `record.reversible`; and (with `seen`) that these claims came with no
 * other record. `exp` is not checked (records are old). Anything else is
 * `validation.unbound` (field `reversible`); an unreachable TTP is its own
 * error. What stays possible: the registry showing a record's own R and
 * claims beside other clinical data (the TTP never signs the data) while
 * hiding the record they came with.
 * @param {Pick<ValidationConfig, "ttp" | "provider" | "ttpSigningKeys">} config
 * @param {RegistryConfig} registry
 * @param {{ claims?: unknown, reversible?: Partial<Envelope>, recordId?: unknown }} record
 * @param {SeenClaims} [seen]
 */
export async function checkBinding(config, registry, record, seen) {
  const unbound = (/** @type {string} */ why, /** @type {unknown} */ cause = undefined) =>
    new PseudoformError("validation.unbound", why, "reversible", cause === undefined ? {} : { cause });
  const envelope = record?.reversible;
  if (!isText(envelope?.kid) || !isText(envelope?.enc) || !isText(envelope?.ct)) {
    throw unbound("the record has no reversible pseudonym");
  }
  if (!Array.isArray(config.ttpSigningKeys) || config.ttpSigningKeys.length === 0) {
    throw unbound("the page pins no TTP signing key");
  }
  /** @type {Record<string, any>} */
  let claims;
  try {
    claims = await verifiedClaims(record.claims, CLAIMS_TYP, config, UNBOUND);
  } catch (error) {
    const e = PseudoformError.from(error);
    if (e.code.startsWith(`${UNBOUND.prefix}.`)) throw unbound("the record's claims are not the TTP's", error);
    throw e;
  }
  if (
    claims.provider !== config.provider ||
    claims.aud !== registry.recipientOrganization ||
    claims.scope !== registry.recipientScope ||
    !isText(claims.reversible) ||
    claims.reversible !== (await reversibleDigest(/** @type {Envelope} */ (envelope)))
  ) {
    throw unbound("the TTP signed no such reversible pseudonym for this provider and registry");
  }
  if ((seen?.get(`${registry.name} ${claims.jti}`)?.size ?? 0) > 1) {
    throw unbound("the record's claims came with another record too");
  }
}

/**
 * Opens one record's reversible pseudonym with the stored key of its kid,
 * after checking its binding (checkBinding): the local patient number.
 * @param {Map<string, ProviderKey>} keys
 * @param {RegistryConfig} registry
 * @param {{ claims?: unknown, reversible: Envelope, recordId?: unknown }} record
 * @param {Pick<ValidationConfig, "ttp" | "provider" | "ttpSigningKeys">} config
 * @param {SeenClaims} [seen]
 */
export async function openNumber(keys, registry, record, config, seen) {
  await checkBinding(config, registry, record, seen);
  const envelope = record.reversible;
  const key = keys.get(envelope.kid);
  if (!key) throw new PseudoformError("validation.noKey", "no stored key has this kid", "kid");
  const aad = reversibleAad({
    recipientOrganization: registry.recipientOrganization,
    recipientScope: registry.recipientScope,
    kid: envelope.kid,
  });
  return numberOf(await openReversible(key, envelope, aad), config.provider);
}

/**
 * One registry's client: its TtpSession (scope `validate`, audience the
 * registry) and its provider endpoints.
 */
export class RegistryClient {
  /** @type {TtpSession} */
  #session;

  /**
   * @param {ValidationConfig} config
   * @param {RegistryConfig} registry
   * @param {import("./index.js").SubjectTokenSource} subjectToken
   */
  constructor(config, registry, subjectToken) {
    this.registry = registry;
    this.base = registry.url.replace(/\/+$/, "");
    this.#session = new TtpSession(
      /** @type {any} */ ({
        ttp: config.ttp,
        subjectToken,
        scope: "validate",
        audience: `${registry.recipientOrganization}|${registry.recipientScope}`,
      }),
    );
  }

  /** Obtains the token (and so finds out whether the clinician is logged in). */
  async logIn() {
    await this.#session.accessToken();
  }

  /**
   * @param {string} method
   * @param {string} path with its query
   * @param {unknown} [json]
   */
  async call(method, path, json) {
    const url = `${this.base}${path}`;
    const headers = await this.#session.headers(method, url);
    return requestJson("registry", url, { method, headers, json });
  }

  /** The provider's validation requests at this registry. */
  async requests() {
    const answer = await this.call("GET", "/api/validation-requests");
    if (!Array.isArray(answer?.requests)) throw malformedRegistry();
    return /** @type {any[]} */ (answer.requests);
  }

  /**
   * @param {string} id
   * @param {{ recordId: number, answer: string, correction?: string }[]} answers
   */
  answer(id, answers) {
    return this.call("POST", `/api/validation-requests/${encodeURIComponent(id)}/answers`, { answers });
  }

  /** Every record of the provider with a reversible pseudonym (all pages). */
  async providerRecords() {
    const records = [];
    /** @type {number | null} */
    let after = null;
    do {
      const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
      if (after !== null) query.set("after", String(after));
      const answer = await this.call("GET", `/api/provider-records?${query}`);
      if (!Array.isArray(answer?.records)) throw malformedRegistry();
      records.push(...answer.records);
      const next = answer.next;
      if (next !== null && (typeof next !== "number" || (after !== null && next <= after))) throw malformedRegistry();
      after = next;
    } while (after !== null);
    return records;
  }

  /** @param {number[]} recordIds */
  withdraw(recordIds) {
    return this.call("POST", "/api/withdrawals", { recordIds });
  }
}

const malformedRegistry = () =>
  new PseudoformError("registry.malformedAnswer", "the registry's answer is not the expected JSON");

// ---------------------------------------------------------------- the page

/**
 * An element with text and attributes.
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {(Node | string)[]} [children]
 */
function el(tag, attributes = {}, children = []) {
  const e = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) e.setAttribute(name, value);
  e.append(...children);
  return e;
}

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @param {string} text @param {"info" | "error"} [kind] */
function say(text, kind = "info") {
  const status = byId("status");
  status.textContent = text;
  status.dataset.kind = kind;
}

/** The clinical data of a record, as a list. @param {unknown} data */
function dataList(data) {
  const list = el("dl", { class: "data" });
  const entries =
    data && typeof data === "object" ? Object.entries(data) : [["gegevens", JSON.stringify(data ?? null)]];
  for (const [name, value] of entries) {
    const text = Array.isArray(value) ? value.join(", ") : typeof value === "string" ? value : JSON.stringify(value);
    list.append(el("dt", {}, [name]), el("dd", {}, [text || "—"]));
  }
  return list;
}

class ValidationPage {
  /** @param {ValidationConfig} config */
  constructor(config) {
    this.config = config;
    /** @type {Map<string, ProviderKey>} */
    this.keys = new Map();
    this.clients = config.registries.map((r) => new RegistryClient(config, r, portalSubjectToken));
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.poll = undefined;
    /** The TTP's current key of this provider (checkDirectory). @type {Promise<{ kid: string }> | undefined} */
    this.directory = undefined;
    /** The claims of every record seen (noteClaims). @type {SeenClaims} */
    this.seen = new Map();
  }

  async start() {
    byId("provider").textContent = this.config.provider;
    this.bindKeys();
    this.bindObjection();
    this.bindApprovals();
    await this.showKeys();
    await this.logIn();
  }

  /** Obtains the validation token and shows the requests, or why not. */
  async logIn() {
    try {
      await this.clients[0]?.logIn();
    } catch (error) {
      const code = PseudoformError.from(error).code;
      if (code === "login.required") {
        byId("login").hidden = false;
        say("Log in bij het zorgportaal om de validatieverzoeken te zien.");
        document.body.dataset.state = "login";
        return;
      }
      if (code === "approval.required" && this.config.fourEyes) {
        document.body.dataset.state = "approval";
        await this.showApprovals();
        return;
      }
      say(describe(error), "error");
      document.body.dataset.state = "error";
      return;
    }
    byId("login").hidden = true;
    document.body.dataset.state = "loading";
    if (this.config.fourEyes) await this.showApprovals();
    await this.showRequests();
  }

  bindApprovals() {
    const section = byId("four-eyes");
    section.addEventListener("click", async (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      if (!button) return;
      try {
        if (button.id === "ask-approval") {
          await portalApprovals("POST");
          say("Goedkeuring gevraagd.");
        } else if (button.dataset.approve) {
          await portalApprovals("POST", `/api/approvals/${encodeURIComponent(button.dataset.approve)}/approve`);
          say(`Verzoek van ${button.dataset.account ?? "een collega"} goedgekeurd.`);
        }
      } catch (error) {
        say(describe(error), "error");
      }
      await this.showApprovals();
    });
  }

  /**
   * Four-eyes: this account's own ask and the other accounts' pending asks.
   * While this account waits, it asks the portal again every
   * APPROVAL_POLL_MS and logs in once approved.
   */
  async showApprovals() {
    clearTimeout(this.poll);
    const section = byId("four-eyes");
    section.hidden = false;
    const own = byId("approval-own");
    const others = byId("approval-others");
    let state;
    try {
      state = await portalApprovals("GET");
    } catch (error) {
      own.replaceChildren(el("p", { class: "error", role: "alert" }, [describe(error)]));
      return;
    }
    const waiting = document.body.dataset.state === "approval";
    const mine = state.own;
    if (!waiting) {
      own.replaceChildren(el("p", { id: "approval-granted" }, ["Goedgekeurd door een tweede medewerker."]));
    } else if (mine?.status === "approved") {
      own.replaceChildren(el("p", { id: "approval-granted" }, ["Goedgekeurd door een tweede medewerker."]));
      await this.logIn();
      return;
    } else if (mine?.status === "pending") {
      own.replaceChildren(
        el("p", { id: "approval-waiting", role: "status" }, ["Wacht op goedkeuring door een tweede medewerker."]),
        el("button", { type: "button", id: "approval-refresh" }, ["Vernieuwen"]),
      );
      say("Wacht op goedkeuring door een tweede medewerker.");
    } else {
      own.replaceChildren(
        el("p", {}, [
          "Patiëntnummers worden pas getoond als een tweede medewerker dat goedkeurt (vier-ogen-principe).",
        ]),
        el("button", { type: "button", id: "ask-approval" }, ["Goedkeuring vragen"]),
      );
      say("Vraag goedkeuring aan een tweede medewerker om de validatieverzoeken te zien.");
    }
    const pending = Array.isArray(state.pending) ? state.pending : [];
    others.replaceChildren(
      el("h3", {}, ["Verzoeken van collega's om goedkeuring"]),
      pending.length
        ? el(
            "ul",
            { id: "approval-pending" },
            pending.map((/** @type {any} */ ask) =>
              el("li", { "data-approval": String(ask.id), "data-account": String(ask.account) }, [
                `Medewerker ${String(ask.account)} vraagt goedkeuring. `,
                el("button", { type: "button", "data-approve": String(ask.id), "data-account": String(ask.account) }, [
                  "Goedkeuren",
                ]),
              ]),
            ),
          )
        : el("p", { id: "approval-none" }, ["Geen verzoeken om goedkeuring."]),
    );
    document.body.dataset.approvals = String(Number(document.body.dataset.approvals ?? 0) + 1);
    this.poll = setTimeout(() => this.showApprovals().catch(() => {}), APPROVAL_POLL_MS);
  }

  async showKeys() {
    try {
      this.keys = await storedKeys();
    } catch (error) {
      say(describe(error), "error");
    }
    const list = byId("key-list");
    list.replaceChildren(
      ...[...this.keys.values()].map((key) =>
        el("li", { "data-kid": key.kid }, [
          el("code", {}, [key.kid]),
          ` (sinds ${key.importedAt.slice(0, 10)}) `,
          el("button", { type: "button", "data-delete": key.kid }, ["Verwijderen"]),
        ]),
      ),
    );
    byId("no-keys").hidden = this.keys.size > 0;
    await this.checkDirectory();
  }

  /**
   * Compares the TTP's directory entry of this provider (fetched and
   * verified once per page load) with the keys in this browser, and warns
   * prominently when the TTP's current key is not one of them: new records
   * are then sealed to a key this browser cannot open (a rotation not done
   * here, or a key the TTP put there).
   */
  async checkDirectory() {
    this.directory ??= fetchProviderKey(this.config);
    /** @type {string | undefined} */
    let current;
    /** @type {string} */
    let text = "";
    try {
      current = (await this.directory).kid;
    } catch (error) {
      this.directory = undefined;
      text = `Let op: de sleutel van uw zorgaanbieder bij de TTP kan niet worden gecontroleerd. ${describe(error)}`;
    }
    if (current !== undefined && !this.keys.has(current)) {
      const here = this.keys.size ? [...this.keys.keys()].join(", ") : "geen";
      text =
        `Let op: de TTP noemt sleutel ${current} als huidige sleutel van uw zorgaanbieder, maar die staat niet in ` +
        `deze browser (hier: ${here}). Nieuwe registraties worden naar die sleutel versleuteld; controleer dit met ` +
        `de beheerder van de TTP.`;
    }
    let warning = document.getElementById("directory-warning");
    if (!text) {
      warning?.remove();
      return;
    }
    if (!warning) {
      warning = el("p", { id: "directory-warning", role: "alert", class: "warning" });
      byId("status").after(warning);
    }
    warning.textContent = text;
    warning.dataset.kid = current ?? "";
  }

  bindKeys() {
    const file = /** @type {HTMLInputElement} */ (byId("key-file"));
    file.addEventListener("change", async () => {
      const chosen = file.files?.[0];
      file.value = "";
      if (!chosen) return;
      try {
        const key = await keyFromPem(await chosen.text());
        await storeKey(key);
        say(`Sleutel ${key.kid} is bewaard in deze browser (niet exporteerbaar).`);
        await this.refresh();
      } catch (error) {
        say(describe(error), "error");
      }
    });
    byId("generate").addEventListener("click", async () => {
      try {
        const key = await generateKey();
        await storeKey(key);
        const shown = /** @type {HTMLElement} */ (byId("public-pem"));
        shown.textContent = await publicPem(key.publicKey);
        shown.hidden = false;
        say(
          `Sleutel ${key.kid} is gemaakt. Geef de publieke sleutel hieronder aan de beheerder van de TTP. ` +
            "Deze sleutel bestaat alleen in deze browser en heeft geen reservekopie.",
        );
        await this.refresh();
      } catch (error) {
        say(describe(error), "error");
      }
    });
    // Deleting asks first, naming the key: a generated key has no backup.
    byId("key-list").addEventListener("click", async (event) => {
      const button = /** @type {HTMLElement} */ (event.target).closest("button");
      const item = button?.closest("li");
      if (!button || !item) return;
      const { delete: kid, deleteConfirm: confirmed } = button.dataset;
      if (kid) {
        item.querySelector(".delete-confirm")?.remove();
        item.append(
          el("div", { class: "delete-confirm", role: "alert" }, [
            el("p", {}, [
              `Sleutel ${kid} verwijderen? Registraties die naar deze sleutel versleuteld zijn, kunt u daarna in ` +
                "deze browser niet meer openen. Een in deze browser gemaakte sleutel heeft geen reservekopie.",
            ]),
            el("button", { type: "button", "data-delete-confirm": kid }, ["Ja, verwijderen"]),
            el("button", { type: "button", "data-delete-cancel": "" }, ["Annuleren"]),
          ]),
        );
      } else if ("deleteCancel" in button.dataset) {
        item.querySelector(".delete-confirm")?.remove();
      } else if (confirmed) {
        await deleteKey(confirmed).catch((error) => say(describe(error), "error"));
        await this.refresh();
      }
    });
  }

  async refresh() {
    await this.showKeys();
    if (document.body.dataset.state === "ready") await this.showRequests();
  }

  async showRequests() {
    const section = byId("requests");
    section.replaceChildren();
    document.body.dataset.state = "loading";
    let count = 0;
    for (const client of this.clients) {
      const block = el("section", { class: "registry", "data-registry": client.registry.name }, [
        el("h3", {}, [client.registry.name]),
      ]);
      section.append(block);
      let requests;
      try {
        requests = await client.requests();
      } catch (error) {
        block.append(el("p", { class: "error", role: "alert" }, [describe(error)]));
        continue;
      }
      const open = requests.filter((r) => r?.status === "open");
      noteClaims(
        this.seen,
        client.registry,
        open.flatMap((r) => (Array.isArray(r.records) ? r.records : [])),
      );
      if (open.length === 0) block.append(el("p", {}, ["Geen open validatieverzoeken."]));
      for (const request of open) {
        block.append(await this.requestBlock(client, request));
        count++;
      }
    }
    document.body.dataset.state = "ready";
    document.body.dataset.loads = String(Number(document.body.dataset.loads ?? 0) + 1);
    say(count ? `${count} open validatieverzoek(en).` : "Er zijn geen open validatieverzoeken.");
  }

  /**
   * @param {RegistryClient} client
   * @param {any} request
   */
  async requestBlock(client, request) {
    const block = el("article", { class: "request", "data-request": String(request.id) }, [
      el("h4", {}, [`Verzoek van ${String(request.createdAt ?? "").slice(0, 10)}`]),
    ]);
    if (request.question) block.append(el("p", { class: "question" }, [`Vraag van het register: ${request.question}`]));
    const table = el("table", {}, [
      el("thead", {}, [
        el(
          "tr",
          {},
          ["Patiëntnummer", "Gegevens", "Antwoord"].map((h) => el("th", {}, [h])),
        ),
      ]),
    ]);
    const body = el("tbody");
    table.append(body);
    for (const record of Array.isArray(request.records) ? request.records : []) {
      body.append(await this.recordRow(client, request, record));
    }
    block.append(table);
    return block;
  }

  /**
   * @param {RegistryClient} client
   * @param {any} request
   * @param {any} record
   */
  async recordRow(client, request, record) {
    const row = el("tr", { "data-record-id": String(record.recordId) });
    const number = el("td", { class: "number" });
    let opened = false;
    try {
      number.textContent = await openNumber(this.keys, client.registry, record, this.config, this.seen);
      opened = true;
    } catch (error) {
      number.textContent = describe(error);
      number.classList.add("error");
      row.dataset.error = PseudoformError.from(error).code;
    }
    const answerCell = el("td", { class: "answer" });
    const done = el("span", { class: "answered" });
    const show = (/** @type {any} */ answer) => {
      if (!answer?.answer) return;
      row.dataset.answered = answer.answer;
      done.textContent = { confirm: "Bevestigd", correct: "Gecorrigeerd", withdraw: "Ingetrokken" }[
        /** @type {"confirm"} */ (answer.answer)
      ];
    };
    show(record.answer);
    const correction = /** @type {HTMLInputElement} */ (
      el("input", { class: "correction", maxlength: "500", "aria-label": "Correctie", autocomplete: "off" })
    );
    const button = (/** @type {string} */ answer, /** @type {string} */ label) => {
      const b = el("button", { type: "button", "data-answer": answer }, [label]);
      b.addEventListener("click", async () => {
        /** @type {{ recordId: number, answer: string, correction?: string }} */
        const item = { recordId: record.recordId, answer };
        if (answer === "correct") {
          if (!correction.value.trim()) {
            say("Vul eerst de correctie in.", "error");
            correction.focus();
            return;
          }
          item.correction = correction.value.trim();
        }
        try {
          await client.answer(request.id, [item]);
          show(item);
          say(`Antwoord voor registratie ${record.recordId} verstuurd.`);
        } catch (error) {
          say(describe(error), "error");
        }
      });
      return b;
    };
    if (opened) {
      answerCell.append(
        button("confirm", "Bevestigen"),
        correction,
        button("correct", "Corrigeren"),
        button("withdraw", "Intrekken"),
      );
    }
    answerCell.append(done);
    row.append(number, el("td", {}, [dataList(record.data)]), answerCell);
    return row;
  }

  bindObjection() {
    const form = /** @type {HTMLFormElement} */ (byId("objection-form"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = /** @type {HTMLInputElement} */ (byId("objection-number"));
      await this.search(input.value);
    });
  }

  /** @param {string} typed */
  async search(typed) {
    const results = byId("objection-results");
    results.replaceChildren();
    results.dataset.state = "searching";
    let wanted;
    try {
      await ready();
      const mrn = normalise("mrn", typed);
      wanted = numberOf(pseudonymInput("MRN", { provider: this.config.provider, mrn }), this.config.provider);
    } catch {
      results.dataset.state = "error";
      say(describe(new PseudoformError("validation.numberInvalid", "the number is invalid", "mrn")), "error");
      return;
    }
    /** @type {{ client: RegistryClient, record: any }[]} */
    const matches = [];
    let unopened = 0;
    for (const client of this.clients) {
      let records;
      try {
        records = await client.providerRecords();
      } catch (error) {
        results.append(el("p", { class: "error", role: "alert" }, [`${client.registry.name}: ${describe(error)}`]));
        continue;
      }
      noteClaims(this.seen, client.registry, records);
      for (const record of records) {
        if (record?.status === "withdrawn") continue;
        try {
          if ((await openNumber(this.keys, client.registry, record, this.config, this.seen)) === wanted) {
            matches.push({ client, record });
          }
        } catch {
          unopened++;
        }
      }
    }
    const list = el(
      "ul",
      { id: "objection-matches" },
      matches.map(({ client, record }) =>
        el("li", { "data-registry": client.registry.name, "data-record-id": String(record.recordId) }, [
          `${client.registry.name}: registratie ${record.recordId} van ${String(record.receivedAt ?? "").slice(0, 10)}`,
        ]),
      ),
    );
    const summary = el("p", { id: "objection-summary" }, [
      matches.length
        ? `${matches.length} registratie(s) van deze patiënt gevonden.`
        : "Geen registraties van deze patiënt gevonden.",
      unopened ? ` ${unopened} registratie(s) konden niet worden geopend.` : "",
    ]);
    results.append(summary, list);
    if (matches.length) {
      const withdraw = el("button", { type: "button", id: "objection-withdraw" }, ["Intrekken…"]);
      const confirm = el("div", { id: "objection-confirm", hidden: "" }, [
        el("p", {}, [
          `Weet u zeker dat u deze ${matches.length} registratie(s) wilt intrekken? Het register verwerkt ze daarna niet meer.`,
        ]),
      ]);
      const yes = el("button", { type: "button", id: "objection-yes" }, ["Ja, intrekken"]);
      const no = el("button", { type: "button", id: "objection-no" }, ["Annuleren"]);
      confirm.append(yes, no);
      withdraw.addEventListener("click", () => {
        confirm.hidden = false;
        withdraw.hidden = true;
      });
      no.addEventListener("click", () => {
        confirm.hidden = true;
        withdraw.hidden = false;
      });
      yes.addEventListener("click", async () => {
        yes.setAttribute("disabled", "");
        try {
          for (const client of this.clients) {
            const ids = matches.filter((m) => m.client === client).map((m) => m.record.recordId);
            if (ids.length) await client.withdraw(ids);
          }
          confirm.hidden = true;
          results.dataset.state = "withdrawn";
          say(`${matches.length} registratie(s) ingetrokken.`);
          if (document.body.dataset.state === "ready") await this.showRequests();
        } catch (error) {
          yes.removeAttribute("disabled");
          say(describe(error), "error");
        }
      });
      results.append(withdraw, confirm);
    }
    results.dataset.state = "found";
  }
}

/** Loads the configuration and starts the page. */
async function main() {
  let config;
  try {
    const answer = await fetch("/validation-config.json", { cache: "no-store", credentials: "same-origin" });
    config = /** @type {ValidationConfig} */ (await answer.json());
    if (!answer.ok || typeof config?.ttp !== "string" || !Array.isArray(config.registries)) throw new Error("config");
  } catch {
    say("De configuratie van deze pagina ontbreekt (config.invalid).", "error");
    return;
  }
  await new ValidationPage(config).start();
}

if (globalThis.document?.getElementById("validation")) {
  main().catch((error) => say(describe(error), "error"));
}
