// The provider's login in a popup: the source of a TtpSession's subject
// tokens for a form page. On first need it opens the provider portal's
// popup page with the DPoP key's thumbprint and the form's origin; the
// portal, for a logged-in clinician, signs a subject token and posts it
// back with `postMessage(…, formOrigin)`. Only a message from the portal's
// origin *and* from the popup window this call opened is taken.
/** @import * as api from "./index.js" */
import { PseudoformError } from "./errors.js";

/** The `type` of the portal's message. */
export const LOGIN_MESSAGE = "pseudoform:subject-token";
/** How long the clinician has to log in, by default. */
const DEFAULT_LOGIN_MS = 10 * 60_000;
const CLOSED_POLL_MS = 250;

/**
 * A subject-token source that logs the clinician in at the provider portal's
 * popup page `url` (https; http only on loopback).
 * @type {typeof api.popupLogin}
 */
export function popupLogin(url, { timeoutMs = DEFAULT_LOGIN_MS } = {}) {
  let portal;
  try {
    portal = new URL(url, globalThis.location?.href);
    if (portal.protocol !== "https:" && !["localhost", "127.0.0.1", "[::1]"].includes(portal.hostname)) {
      throw new Error("not https");
    }
  } catch {
    throw new PseudoformError("config.invalid", "option login must be an https URL (http only on loopback)", "login");
  }
  return ({ jkt, origin }) =>
    new Promise((resolve, reject) => {
      const target = new URL(portal);
      target.searchParams.set("jkt", jkt);
      target.searchParams.set("origin", origin);
      const popup = window.open(target.toString(), "pseudoform-login", "popup,width=520,height=640");
      if (!popup) {
        reject(new PseudoformError("login.popupBlocked", "the browser blocked the login window", "login"));
        return;
      }
      let closedSeen = false;
      /** @param {unknown} result @param {boolean} ok */
      const finish = (result, ok) => {
        window.removeEventListener("message", onMessage);
        clearInterval(poll);
        clearTimeout(timer);
        if (ok) resolve(/** @type {string} */ (result));
        else reject(result);
      };
      /** @param {MessageEvent} event */
      const onMessage = (event) => {
        if (event.origin !== portal.origin || event.source !== popup) return;
        const data = /** @type {{ type?: unknown, subjectToken?: unknown } | null} */ (event.data);
        if (data?.type !== LOGIN_MESSAGE) return;
        if (typeof data.subjectToken !== "string") {
          finish(new PseudoformError("login.malformed", "the login gave no usable subject token", "login"), false);
          return;
        }
        finish(data.subjectToken, true);
      };
      // A closed popup without a message: the clinician closed it. One poll
      // of grace lets a message posted just before closing arrive first.
      const poll = setInterval(() => {
        if (!popup.closed) return;
        if (closedSeen) finish(new PseudoformError("login.closed", "the login window was closed", "login"), false);
        closedSeen = true;
      }, CLOSED_POLL_MS);
      const timer = setTimeout(() => {
        popup.close();
        finish(new PseudoformError("login.timeout", "the login took too long", "login"), false);
      }, timeoutMs);
      window.addEventListener("message", onMessage);
    });
}
