//! Errors as they cross into JavaScript: a real `Error` named
//! `PseudoformError` with a stable `code` and the `field`, never a string and
//! never the rejected value.

use alloc::borrow::ToOwned;
use alloc::string::String;

use js_sys::{Error as JsError, Reflect};
use wasm_bindgen::JsValue;

/// `parts` joined into one string, without the generic code of
/// `[..].concat()` or `format!` (size of the module, docs/size.md).
fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// Result type of every export: the error side becomes a thrown JS `Error`.
pub type JsResult<T> = Result<T, PseudoformError>;

/// An error on its way to JavaScript (thrown as a `PseudoformError`).
#[derive(Debug)]
pub struct PseudoformError {
    code: String,
    field: Option<String>,
    message: String,
}

impl PseudoformError {
    /// An error of the binding itself (an argument of the wrong JS type).
    pub(crate) fn argument(argument: &str, rule: &str, message: &str) -> Self {
        // Concatenation, not `format!`: core::fmt stays out of the module.
        PseudoformError {
            code: concat(&["argument.", rule]),
            field: Some(argument.to_owned()),
            message: concat(&[argument, ": ", message]),
        }
    }
}

impl From<pseudoform_core::Error> for PseudoformError {
    fn from(e: pseudoform_core::Error) -> Self {
        PseudoformError {
            code: e.code(),
            field: e.field().map(str::to_owned),
            message: e.message(),
        }
    }
}

impl From<pseudoform_core::FieldError> for PseudoformError {
    fn from(e: pseudoform_core::FieldError) -> Self {
        pseudoform_core::Error::from(e).into()
    }
}

impl From<PseudoformError> for JsValue {
    fn from(e: PseudoformError) -> JsValue {
        let error = JsError::new(&concat(&[&e.message, " (", &e.code, ")"]));
        error.set_name("PseudoformError");
        // Setting a property on a fresh Error object cannot fail; if it ever
        // did, the error would still be thrown, only without that property.
        let _ = Reflect::set(&error, &"code".into(), &e.code.into());
        if let Some(field) = e.field {
            let _ = Reflect::set(&error, &"field".into(), &field.into());
        }
        error.into()
    }
}
