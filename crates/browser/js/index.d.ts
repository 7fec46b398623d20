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
import type { ReversibleTypeCode, TypeCode } from "./constants.js";

export type {
  FieldName,
  FieldProblem,
  Identity,
  Preparation,
  PrepareOptions,
  PseudonymTypeCode,
  ReversibleTypeCode,
  TypeCode,
};

/** The one error type: a stable `code`, the `field` where there is one, never a value. */
export class PseudoformError extends Error {
  constructor(
    code: string,
    message: string,
    field?: string,
    extra?: { status?: number; cause?: unknown; serverCode?: string; retryAfter?: number; problems?: FieldProblem[] },
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
  /** The seconds a refusal's `Retry-After` asks to wait (a spent budget, a busy server). */
  readonly retryAfter?: number;
  /**
   * Every field problem when there are several, in field order (`field` is
   * the first): the invalid fields, or every field a required type lacks
   * (`pseudonym.requiredMissing`).
   */
  readonly problems?: FieldProblem[];
  /** Turns anything thrown into a PseudoformError. */
  static from(error: unknown): PseudoformError;
}

/** Loads the wasm module once per page (by default `pseudoform_bg.wasm` beside the script, with its integrity hash). */
export function ready(source?: string | URL | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** The canonical form of one field by the published method. Call `ready()` first. */
export function normalise(field: FieldName, value: string): string;
/** The canonical input value of one pseudonym type (`BERGJANS|19800201|2|J`). */
export function pseudonymInput(type: PseudonymTypeCode, identity: Identity): string;
/** The types a record must have, for `validate`. */
export interface ValidateOptions {
  /** Types that must be made (`R` too): every field they need that is not given is reported too. */
  require?: TypeCode[] | string;
  /** The configured provider, which MRN needs when the identity has none. */
  provider?: string;
}

/** Every rule broken by a given field, in field order; with `require`, every field those types lack too. */
export function validate(identity: Identity, options?: ValidateOptions): FieldProblem[];
/** Blinded inputs and blind factors per requested type; pure and synchronous. */
export function prepare(identity: Identity, options: PrepareOptions): Preparation;
/** The version of the published method. */
export function methodVersion(): number;

/** Where and for whom to pseudonymise. */
export interface PseudonymiseOptions {
  /** Base URL of the TTP (https; http only on loopback). */
  ttp: string;
  /** The registry's organisation, `oin:` + its OIN (8 digits, then 8 alphanumerics + `0000` or 9 + `000`). */
  recipientOrganization: string;
  /** The registry's scope. */
  recipientScope: string;
  /**
   * The pseudonym types the registry asks for; the TTP's policy may allow
   * fewer. `R` (the local patient number encrypted to the provider) is made
   * only where the policy allows it, and only with the pseudoform TTP.
   */
  types: TypeCode[] | string;
  /**
   * Types every record must have (with those the TTP's policy requires): a
   * record that lacks a field they need is refused before anything is sent
   * (`pseudonym.requiredMissing`, every field in `problems`). Requested too.
   */
  require?: TypeCode[] | string;
  /**
   * The supplying provider (scopes MRN). With a `session` the provider is
   * the login's (from the TTP's token answer); one given here that differs
   * is refused (`config.providerMismatch`).
   */
  provider?: string;
  /** The browser's credential at the TTP: short-lived, DPoP-bound (see `TtpSession`). */
  session?: TtpSession;
  /**
   * DEVELOPMENT ONLY: a static bearer token, accepted only by a TTP run with
   * `development_static_tokens = true`. Never in a production page.
   */
  accessToken?: string;
  /** Time allowed per request, default 10 000 ms. */
  timeoutMs?: number;
  /** Cancels the operation. */
  signal?: AbortSignal;
  /** `pseudoform` (batch endpoint and policy, default) or `national` (`POST /oprf/eval` per type). */
  ttpApi?: "pseudoform" | "national";
  /** With `ttpApi: "national"`: the types the recipient may receive. */
  allowedTypes?: TypeCode[];
  /**
   * RFC 7638 thumbprints of the TTP signing keys the page pins (a list or
   * space-separated): the recipient's key in the policy must be signed by one
   * of them. Without, the keys of the TTP's `GET /v1/signing-keys` are used.
   */
  ttpSigningKeys?: string[] | string;
}

/** One temporary pseudonym of the national packaging: base64url of `{"evaluated_output": <JWE>, "blind_factor": …}`. */
export interface TemporaryPseudonym {
  type: PseudonymTypeCode;
  temporaryPseudonym: string;
}

/** Who the pseudonyms were made for, and by which method version. */
export interface SubmissionEnvelope {
  recipientOrganization: string;
  recipientScope: string;
  methodVersion: number;
}

/**
 * What the registry needs of a pseudonymised record, without its clinical
 * data: with the pseudoform TTP the record JWE once and each type's blind
 * factor (the types made are its keys) sealed to the registry's key as a
 * compact JWE (`encryptedBlindFactors`, never in the clear); with the
 * national TTP one temporary pseudonym per type.
 */
export type SubmissionPseudonyms = SubmissionEnvelope &
  (
    | { record: string; encryptedBlindFactors: string; reversible?: ReversibleEnvelope }
    | { pseudonyms: TemporaryPseudonym[] }
  );

/**
 * `submission.reversible`: type R, MRN's canonical input `provider|mrn`
 * sealed with RFC 9180 HPKE (base mode, DHKEM(P-256, HKDF-SHA256),
 * HKDF-SHA256, AES-256-GCM) to the provider's current key, bound to the
 * registry and the key (`reversibleAad`), and to its record by the TTP's
 * signature over its digest (`reversibleDigest`) in the record's claims.
 * Only that provider can open it.
 */
export interface ReversibleEnvelope {
  type: ReversibleTypeCode;
  /** The provider key's RFC 7638 thumbprint. */
  kid: string;
  /** The encapsulated key, unpadded base64url of 65 bytes. */
  enc: string;
  /** The ciphertext with its tag, unpadded base64url (16 to 256 bytes). */
  ct: string;
}

/** A provider's public encryption key as the TTP states it. */
export interface ProviderJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  /** Its RFC 7638 thumbprint. */
  kid: string;
  alg: "HPKE-P256-SHA256-A256GCM";
  use: "enc";
}

/** A provider's verified current encryption key. */
export interface ProviderKey {
  kid: string;
  jwk: ProviderJwk;
  /** The ECDH P-256 public key. */
  cryptoKey: CryptoKey;
}

/** The associated data of an R ciphertext: `pseudoform-reversible/1|org|scope|kid`. */
export function reversibleAad(parts: { recipientOrganization: string; recipientScope: string; kid: string }): string;

/**
 * The digest of an R envelope that the TTP signs into its record's claims
 * (`reversible`): unpadded base64url SHA-256 of `{kid}.{enc}.{ct}`.
 */
export function reversibleDigest(envelope: { kid: string; enc: string; ct: string }): Promise<string>;

/**
 * Seals `plaintext` (`provider|mrn`) to a verified provider key (or its JWK)
 * with `aad`; the envelope's `kid` is recomputed from the key (a given kid
 * that differs: `providerKey.invalid`).
 */
export function sealReversible(
  publicKey: ProviderKey | ProviderJwk,
  plaintext: string,
  aad: string,
): Promise<ReversibleEnvelope>;

/**
 * Opens an R envelope with the provider's key pair (the private key may be
 * non-extractable). Rejects with `reversible.undecryptable` for another
 * key or registry.
 */
export function openReversible(
  keyPair: { privateKey: CryptoKey; publicKey: CryptoKey | JsonWebKey },
  envelope: unknown,
  aad: string,
): Promise<string>;

/**
 * The provider's current key from the TTP's statements (the answer of
 * `GET /v1/provider-keys`, its `keys`, or one JWS), each verified; rejects
 * with `providerKey.missing`, `providerKey.invalid` or `providerKey.mismatch`.
 */
export function providerKeyOf(
  statementsOrJws: unknown,
  options: Pick<PseudonymiseOptions, "ttp" | "ttpSigningKeys" | "timeoutMs" | "signal" | "provider">,
): Promise<ProviderKey>;

/** The RFC 7638 thumbprint of a P-256 public JWK (the kid of a provider key). */
export function kidOf(jwk: { kty: string; crv: string; x: string; y: string }): Promise<string>;

/** A clinical value: one string, or the strings of a checkbox group or multi-select, in order. */
export type ClinicalValue = string | string[];

/** `POST /api/submissions` body: the pseudonyms and the clinical fields by name. */
export type Submission = SubmissionPseudonyms & { data: Record<string, ClinicalValue> };

/** The registry's answer to a stored submission. */
export interface Receipt {
  recordId: number;
  /** The definitive pseudonyms' labels `TYPE:vN:<base64url>`. */
  pseudonyms: string[];
}

/** A requested type that was not made, and why. */
export interface SkippedType {
  type: TypeCode;
  code: string;
  field?: FieldName;
  message: string;
}

/** The result of `pseudonymise`. */
export interface Pseudonymised {
  /** The types made, in request order (`R` last, when made). */
  types: TypeCode[];
  /** Requested types not made (best-effort ones whose fields are not given, or not allowed). */
  skipped: SkippedType[];
  /** Post `{ ...submission, data }` to the registry. */
  submission: SubmissionPseudonyms;
}

/** What a subject-token source is asked for: the DPoP key's thumbprint and the page's origin. */
export interface SubjectTokenRequest {
  /** RFC 7638 thumbprint of the session's DPoP key (the subject token's `cnf.jkt`). */
  jkt: string;
  /** The form page's origin (the subject token's `origin`). */
  origin: string;
}

/** Resolves to a provider-signed subject token (compact JWS) for the request. */
export type SubjectTokenSource = (request: SubjectTokenRequest) => Promise<string>;

/** Options of a `TtpSession`. */
export interface TtpSessionOptions {
  /** Base URL of the TTP (its `POST /v1/token`). */
  ttp: string;
  /** The provider's login: e.g. `popupLogin(url)`. */
  subjectToken: SubjectTokenSource;
  /** The token's scope: default the TTP's evaluation; `validate` for a provider's validation page. */
  scope?: string;
  /** With `scope: "validate"`: the registry, `<recipientOrganization>|<recipientScope>`. */
  audience?: string;
}

/**
 * The browser's credential at the TTP: a non-extractable WebCrypto P-256
 * DPoP key, an access token obtained by token exchange of a provider-signed
 * subject token, kept until shortly before it expires, and a fresh DPoP
 * proof per request. Lives as long as the page; nothing is stored.
 */
export class TtpSession {
  constructor(options: TtpSessionOptions);
  /** The DPoP key's RFC 7638 thumbprint. */
  thumbprint(): Promise<string>;
  /** The provider of the current access token, once there is one. */
  readonly provider: string | undefined;
  /** Whether it holds an access token that needs no login before it is renewed. */
  readonly loggedIn: boolean;
  /** The access token (logging in first when there is none or it is about to expire). */
  accessToken(limits?: { timeoutMs?: number; signal?: AbortSignal }): Promise<{ token: string; provider: string }>;
  /** `Authorization` and `DPoP` headers of a TTP request. */
  headers(
    method: string,
    url: string,
    limits?: { timeoutMs?: number; signal?: AbortSignal },
  ): Promise<Record<string, string>>;
  /** The registry's submitter proof: a DPoP proof with `rec` = base64url SHA-256 of the record JWE. */
  submitterProof(method: string, url: string, record: string): Promise<string>;
  /** Drops the access token; the next request obtains a new one. */
  forget(): void;
}

/**
 * A subject-token source that opens the provider portal's popup page `url`
 * (with `jkt` and `origin` in its query) and takes the token the portal
 * posts back, only from the portal's origin and that popup window.
 */
export function popupLogin(url: string, options?: { timeoutMs?: number }): SubjectTokenSource;

/** Checks, asks the policy, blinds and obtains the evaluations from the TTP. */
export function pseudonymise(identity: Identity, options: PseudonymiseOptions): Promise<Pseudonymised>;

/** One record's outcome in a batch. */
export type BatchResult =
  ({ ok: true } & Pseudonymised) | { ok: false; errors: { field?: string; code: string; message: string }[] };

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

/** Posts a submission to the registry; resolves to its receipt (undefined for a 2xx without JSON). */
export function postSubmission(
  url: string,
  submission: Submission,
  options?: { timeoutMs?: number; signal?: AbortSignal; session?: SubmitterProver },
): Promise<Partial<Receipt> | undefined>;

/** What signs a submission's submitter proof: its `TtpSession` (or the identity frame that holds it). */
export interface SubmitterProver {
  submitterProof(method: string, url: string, record: string): Promise<string>;
}

/**
 * What a failed `postSubmission` means for the record: `expired` (not stored
 * and too late to resend: pseudonymise afresh), `refused` (not stored),
 * `unknown` (maybe stored: resend exactly the same submission, never a new
 * one; a stored one is answered with its first receipt).
 */
export function outcomeOf(error: unknown): "expired" | "refused" | "unknown";

/** Options of `protectForm`; by default read from the form's data-pseudoform-* attributes. */
export interface ProtectFormOptions extends Partial<Omit<PseudonymiseOptions, "signal">> {
  /** Same-origin URL of JSON that supplies the options. */
  config?: string;
  /**
   * The provider portal's login popup URL (`data-pseudoform-login`): on first
   * need the form opens it, and the portal posts a subject token back.
   */
  login?: string;
  /** `nl` (default) or `en`. */
  lang?: "nl" | "en";
  /** Enter in a field submits even while required clinical fields are untouched. */
  enterSubmits?: boolean;
  /**
   * Frame mode (pseudoform-identity.js): the identity frame page's URL, when
   * the form's <pseudoform-identity> element has no `src`.
   */
  frame?: string;
  /** Frame mode: values of the frame's theme properties (docs/frame.md), over the element's own. */
  theme?: Record<string, string>;
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
