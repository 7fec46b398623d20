// Types of the pseudoform JS API (js/index.js, which tsc checks against this
// file). The wasm-level declarations (Identity, Preparation, …) come from
// pseudoform.d.ts, generated from the Rust doc comments; the field names and
// type codes from constants.d.ts, generated from the Rust core.
import type {
  FieldName,
  FieldProblem,
  Identity,
  Preparation,
  PrepareOptions,
  PseudonymTypeCode,
} from "./pseudoform.js";

export type { FieldName, FieldProblem, Identity, Preparation, PrepareOptions, PseudonymTypeCode };

/** The one error type: a stable `code`, the `field` where there is one, never a value. */
export class PseudoformError extends Error {
  constructor(
    code: string,
    message: string,
    field?: string,
    extra?: { status?: number; cause?: unknown; serverCode?: string },
  );
  readonly name: "PseudoformError";
  /** `bsn.checksum`, `ttp.timeout`, `registry.rejected`, `policy.noTypes`, `aborted`, … */
  readonly code: string;
  /** The field or option the error is about. */
  readonly field?: string;
  /** The HTTP status of a refusal by the TTP or the registry. */
  readonly status?: number;
  /** The code the TTP or registry gave for a refusal. */
  serverCode?: string;
  /** Turns anything thrown into a PseudoformError. */
  static from(error: unknown): PseudoformError;
}

/** Loads the wasm module once (by default `pseudoform_bg.wasm` beside the script). */
export function ready(source?: string | URL | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** The canonical form of one field by the published method. Call `ready()` first. */
export function normalise(field: FieldName, value: string): string;
/** The canonical input value of one pseudonym type (`BERGJANS|19800201|2|J`). */
export function pseudonymInput(type: PseudonymTypeCode, identity: Identity): string;
/** Every rule broken by a given field. */
export function validate(identity: Identity): FieldProblem[];
/** Blinded inputs and blind factors per requested type; pure and synchronous. */
export function prepare(identity: Identity, options: PrepareOptions): Preparation;
/** The version of the published method. */
export function methodVersion(): number;

/** Where and for whom to pseudonymise. */
export interface PseudonymiseOptions {
  /** Base URL of the TTP (https; http only on loopback). */
  ttp: string;
  /** The registry's organisation, `oin:` + 20 digits. */
  recipientOrganization: string;
  /** The registry's scope. */
  recipientScope: string;
  /** The pseudonym types the registry asks for; the TTP's policy may allow fewer. */
  types: PseudonymTypeCode[] | string;
  /** The supplying provider (scopes MRN). */
  provider?: string;
  /** Bearer token of the provider or processor at the TTP. */
  accessToken?: string;
  /** Time allowed per request, default 10 000 ms. */
  timeoutMs?: number;
  /** Cancels the operation. */
  signal?: AbortSignal;
  /** `pseudoform` (batch endpoint and policy, default) or `national` (`POST /oprf/eval` per type). */
  ttpApi?: "pseudoform" | "national";
  /** With `ttpApi: "national"`: the types the recipient may receive. */
  allowedTypes?: PseudonymTypeCode[];
}

/** One temporary pseudonym: base64url of `{"evaluated_output": <JWE>, "blind_factor": …}`. */
export interface TemporaryPseudonym {
  type: PseudonymTypeCode;
  temporaryPseudonym: string;
}

/** A requested type that was not made, and why. */
export interface SkippedType {
  type: PseudonymTypeCode;
  code: string;
  field?: FieldName;
  message: string;
}

/** The result of `pseudonymise`. */
export interface Pseudonymised {
  pseudonyms: TemporaryPseudonym[];
  skipped: SkippedType[];
}

/** Validates, asks the policy, blinds and obtains temporary pseudonyms from the TTP. */
export function pseudonymise(identity: Identity, options: PseudonymiseOptions): Promise<Pseudonymised>;

/** One record's outcome in a batch. */
export type BatchResult =
  | { ok: true; pseudonyms: TemporaryPseudonym[]; skipped: SkippedType[] }
  | { ok: false; errors: { field?: string; code: string; message: string }[] };

/** Progress and cancellation of a batch. */
export interface BatchControl {
  onProgress?: (progress: { done: number; total: number }) => void;
  signal?: AbortSignal;
  /** Records per TTP request, default 100, at most 1000. */
  chunkSize?: number;
}

/** Pseudonymises many identities; a bad record never stops the batch. */
export function pseudonymiseBatch(
  records: Identity[],
  options: Omit<PseudonymiseOptions, "signal">,
  control?: BatchControl,
): Promise<BatchResult[]>;

/** Options of `protectForm`; by default read from the form's data-pseudoform-* attributes. */
export interface ProtectFormOptions extends Partial<Omit<PseudonymiseOptions, "signal">> {
  /** Same-origin URL of JSON that supplies the options (e.g. with a session's access token). */
  config?: string;
  /** `nl` (default) or `en`. */
  lang?: "nl" | "en";
}

/** The handle of a bound form. */
export interface FormController {
  /** Resolves when the module and settings are loaded. */
  readonly ready: Promise<void>;
  /** Runs the same steps as pressing the submit button. */
  submit(): Promise<void>;
  /** Unbinds the form. */
  destroy(): void;
}

/** Binds a registry form: inline validation, opt-out, pseudonymisation, fail-closed submit. */
export function protectForm(form: HTMLFormElement, options?: ProtectFormOptions): FormController;

/** A sentence for the clinician for any error (`nl` default, `en`), never containing a value. */
export function describeError(error: unknown, lang?: "nl" | "en"): string;

/** The label of every field of the method (`nl` default, `en`), for pages that build their own UI. */
export function fieldLabels(lang?: "nl" | "en"): Record<FieldName, string>;
