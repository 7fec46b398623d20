// fetch with a timeout, cancellation and fail-closed answer handling. Every
// failure becomes a PseudoformError with a code for the clinician; request
// and answer bodies never appear in an error.
import { PseudoformError } from "./errors.js";

/** Default time allowed for one request, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** @typedef {"ttp" | "registry"} Service who is called, for the error codes */

/**
 * @typedef {object} Limits
 * @property {number} [timeoutMs] time allowed, default {@link DEFAULT_TIMEOUT_MS}
 * @property {AbortSignal} [signal] cancels the request
 * @property {boolean} [allowEmpty] a 2xx without a JSON body resolves to
 *   undefined instead of failing (the registry has stored the record
 *   whatever its body says)
 */

/**
 * Sends one request and returns the parsed JSON answer for a 2xx status,
 * unchecked: the caller checks its shape.
 * @param {Service} service
 * @param {string} url absolute or page-relative URL
 * @param {{ method?: string, json?: unknown, form?: URLSearchParams, headers?: Record<string, string> }} init
 *   `json` or `form` is the body; `headers` the credential headers
 * @param {Limits} [limits]
 * @returns {Promise<any>}
 */
export async function requestJson(service, url, init, limits = {}) {
  const timeoutMs = limits.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  const outer = limits.signal;
  const onAbort = () => controller.abort();
  if (outer?.aborted) controller.abort();
  outer?.addEventListener("abort", onAbort, { once: true });

  /** @type {Record<string, string>} */
  const headers = { ...init.headers, accept: "application/json" };
  if (init.json !== undefined) headers["content-type"] = "application/json";
  if (init.form !== undefined) headers["content-type"] = "application/x-www-form-urlencoded";
  let response;
  try {
    response = await fetch(url, {
      method: init.method ?? "GET",
      headers,
      body:
        init.form !== undefined
          ? init.form.toString()
          : init.json === undefined
            ? undefined
            : JSON.stringify(init.json),
      signal: controller.signal,
      credentials: service === "registry" ? "same-origin" : "omit",
      cache: "no-store",
      redirect: "error",
      referrerPolicy: "no-referrer",
    });
    const body = await readJson(response);
    if (response.ok) {
      if (body === undefined && !limits.allowEmpty) throw malformed(service, response.status);
      return body;
    }
    throw refusal(service, response.status, body, retryAfterOf(response));
  } catch (error) {
    if (error instanceof PseudoformError) throw error;
    if (outer?.aborted) throw new PseudoformError("aborted", "the operation was cancelled");
    if (timedOut)
      throw new PseudoformError(`${service}.timeout`, `the ${service} did not answer within ${timeoutMs} ms`);
    throw new PseudoformError(`${service}.unreachable`, `the ${service} cannot be reached`, undefined, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

/**
 * The JSON body of an answer, or undefined when it has none.
 * @param {Response} response
 * @returns {Promise<unknown>}
 */
async function readJson(response) {
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json")) return undefined;
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/**
 * @param {Service} service
 * @param {number} status
 */
function malformed(service, status) {
  return new PseudoformError(
    `${service}.malformedAnswer`,
    `the ${service} gave an answer that is not the expected JSON`,
    undefined,
    { status },
  );
}

/**
 * @param {Service} service
 * @param {number} status
 * @param {unknown} body
 * @param {number | undefined} retryAfter
 */
function refusal(service, status, body, retryAfter) {
  const code = /** @type {{ code?: unknown } | undefined} */ (body)?.code;
  const serverCode = typeof code === "string" ? code : undefined;
  const kind =
    status === 401 || status === 403
      ? "refused"
      : status === 429
        ? "rateLimited"
        : status >= 500
          ? "failed"
          : "rejected";
  return new PseudoformError(
    `${service}.${kind}`,
    `the ${service} answered ${status}${serverCode ? ` (${serverCode})` : ""}`,
    undefined,
    { status, serverCode, retryAfter },
  );
}

/**
 * The seconds of a `Retry-After` given as a number (at most a day), if any.
 * @param {Response} response
 * @returns {number | undefined}
 */
function retryAfterOf(response) {
  const value = response.headers.get("retry-after")?.trim() ?? "";
  return /^\d{1,5}$/.test(value) ? Math.min(Number(value), 86_400) : undefined;
}
