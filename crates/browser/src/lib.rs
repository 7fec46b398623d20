//! # pseudoform (browser module)
//!
//! The thin WebAssembly binding of [`pseudoform_core`]: it converts JS values
//! to core types and core errors to JS `Error` objects, and does nothing
//! else. Every rule lives in the core, where it is tested natively.
//!
//! Exports (camelCase, see `www/pkg/pseudoform.d.ts`):
//! - [`normalise`]`(field, value)`: the canonical form of one field;
//! - [`pseudonym_input`] as `pseudonymInput(type, identity)`: the canonical
//!   input value of one pseudonym type;
//! - [`validate`]`(identity)`: every rule broken by a given field;
//! - [`prepare`]`(identity, options)`: blinded inputs and blind factors per
//!   pseudonym type, ready for the TTP;
//! - [`method_version`] as `methodVersion()`.
//!
//! Nothing JS can pass makes this module panic: arguments of the wrong type,
//! missing fields and over-long strings come back as a thrown
//! `PseudoformError` with a stable `code` and the `field`.

#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

mod convert;
mod js_error;
mod prepare;
mod random;

use js_sys::JsString;
use pseudoform_core::{fields, Field, PseudonymType};
use wasm_bindgen::prelude::*;

use crate::convert::{identity_from_js, text_argument, today};
pub use crate::js_error::{JsResult, PseudoformError};

/// Without std (the browser build) a panic is a trap, as with std and
/// `panic = "abort"`, but without std's panic hook and message formatting.
/// Nothing JS can pass makes this module panic (see the tests).
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// The module's allocator in the browser: a small free list (the module is
/// single-threaded and allocates little) instead of std's dlmalloc.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

// The field names and type codes are the core's, from the package's generated
// constants.d.ts (crates/browser/constants), never a copy here.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
import type { FieldName, PseudonymTypeCode } from "./constants.js";
export type { FieldName, PseudonymTypeCode };

/**
 * The raw values of a patient's identifying fields, as typed in the form,
 * by field name. `provider` is the supplying provider, which scopes the
 * local patient number (MRN).
 */
export type Identity = { [F in FieldName]?: string };

/** Options of `prepare`. */
export interface PrepareOptions {
  /** The registry's organisation, `oin:` + its OIN (8 digits, then 8 alphanumerics + `0000` or 9 + `000`). */
  recipientOrganization: string;
  /** The registry's scope (key domain). */
  recipientScope: string;
  /** The types to make: an array of codes or one space-separated string. */
  types: PseudonymTypeCode[] | string;
  /** The supplying provider, used by MRN when the identity has none. */
  provider?: string;
}

/** A type ready for the TTP. */
export interface PreparedPseudonym {
  type: PseudonymTypeCode;
  /** The blinded element for the TTP, padded base64url (44 characters). */
  blindedInput: string;
  /** The blind factor for the registry, padded base64url. Keep it secret. */
  blindFactor: string;
}

/** A rule broken by a field; `type` is set when it explains a skipped type. */
export interface FieldProblem {
  field: FieldName;
  code: string;
  message: string;
  type?: PseudonymTypeCode;
}

/** The result of `prepare`. */
export interface Preparation {
  prepared: PreparedPseudonym[];
  /** Requested types not made because a field they need is not given. */
  skipped: FieldProblem[];
}

/** What every function of this module throws: never a string, never a value. */
export interface PseudoformError extends Error {
  name: "PseudoformError";
  /** Stable code, `<field>.<rule>` such as `bsn.checksum`, or `type.unknown`. */
  code: string;
  /** The field or argument the error is about, if any. */
  field?: string;
}
"#;

/// The canonical form of one identifying field by method v1
/// (`normalise("birthName", "van der Berg-Jansen")` → `"BERGJANSEN"`).
///
/// Throws a `PseudoformError` (`birthDate.future`, `bsn.checksum`, …) that
/// names the field and the rule, never the value.
#[wasm_bindgen]
pub fn normalise(
    #[wasm_bindgen(unchecked_param_type = "FieldName")] field: JsValue,
    #[wasm_bindgen(unchecked_param_type = "string")] value: JsValue,
) -> JsResult<JsString> {
    let name = text_argument(&field, "field")?;
    let field = Field::from_name(&name).ok_or(pseudoform_core::Error::UnknownField)?;
    let raw = text_argument(&value, field.name())?;
    let normalised = fields::normalise(field, &raw, today())?;
    Ok(JsString::from(normalised.as_str()))
}

/// The canonical input value of one pseudonym type for an identity
/// (`pseudonymInput("NGGV", {...})` → `"BERGJANS|19800201|2|J"`): the
/// normalised fields joined by `|` in the order of the Wkz table.
///
/// Throws a `PseudoformError`: `type.unknown`, or the first field the type
/// needs that is missing (`<field>.required`) or invalid.
#[wasm_bindgen(js_name = pseudonymInput)]
pub fn pseudonym_input(
    #[wasm_bindgen(js_name = "type", unchecked_param_type = "PseudonymTypeCode")]
    pseudonym_type: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Identity")] identity: JsValue,
) -> JsResult<JsString> {
    let code = text_argument(&pseudonym_type, "type")?;
    let pseudonym_type: PseudonymType = code.parse()?;
    let identity = identity_from_js(&identity)?;
    let input = pseudonym_type.canonical_input(&identity, today())?;
    Ok(JsString::from(input.as_str()))
}

/// Every rule broken by a given field of `identity`, as
/// `[{ field, code, message }]` in field order (empty when all given fields
/// are valid). Fields that are not given are not reported.
#[wasm_bindgen(unchecked_return_type = "FieldProblem[]")]
pub fn validate(
    #[wasm_bindgen(unchecked_param_type = "Identity")] identity: JsValue,
) -> JsResult<js_sys::Array> {
    prepare::validate(&identity)
}

/// Prepares a record for the TTP, synchronously and without I/O: for each
/// requested type, `{ type, blindedInput, blindFactor }` with a fresh random
/// blind; types whose fields are not given are listed in `skipped` with the
/// reason. Throws the first invalid field (`bsn.checksum`, …), an unknown
/// type (`type.unknown`) or a malformed recipient.
#[wasm_bindgen(unchecked_return_type = "Preparation")]
pub fn prepare(
    #[wasm_bindgen(unchecked_param_type = "Identity")] identity: JsValue,
    #[wasm_bindgen(unchecked_param_type = "PrepareOptions")] options: JsValue,
) -> JsResult<js_sys::Object> {
    prepare::prepare(&identity, &options)
}

/// The version of the published method this module implements.
#[wasm_bindgen(js_name = methodVersion)]
pub fn method_version() -> u32 {
    pseudoform_core::METHOD_VERSION
}
