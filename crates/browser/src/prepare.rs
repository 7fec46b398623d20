//! `validate` and `prepare`: JS objects in, JS objects out, the work in
//! [`pseudoform_core::preparation`].

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use js_sys::{Array, JsString, Object, Reflect};
use pseudoform_core::encoding::encode;
use pseudoform_core::preparation::{self, Outcome};
use pseudoform_core::{Error, Field, FieldError, PseudonymType, Recipient};
use wasm_bindgen::{JsCast, JsValue};

use crate::convert::{identity_from_js, text_argument, today};
use crate::js_error::{JsResult, PseudoformError};

/// Most pseudonym types one call may request (there are ten; duplicates are
/// tolerated up to this bound).
const MAX_REQUESTED_TYPES: u32 = 32;

/// Sets `key` on a fresh plain object; setting a data property on a plain
/// object cannot fail.
fn set(object: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(object, &JsValue::from_str(key), &value.into());
}

fn member(options: &JsValue, name: &str) -> JsResult<JsValue> {
    Reflect::get(options, &JsValue::from_str(name))
        .map_err(|_| PseudoformError::argument(name, "type", "could not be read"))
}

/// The requested types: an array of codes or one space-separated string.
fn requested_types(value: &JsValue) -> JsResult<Vec<PseudonymType>> {
    let codes: Vec<String> = if let Some(list) = value.dyn_ref::<Array>() {
        if list.length() > MAX_REQUESTED_TYPES {
            return Err(PseudoformError::argument(
                "types",
                "tooLong",
                "too many types",
            ));
        }
        list.iter()
            .map(|v| text_argument(&v, "types").map(|s| s.to_string()))
            .collect::<JsResult<_>>()?
    } else {
        text_argument(value, "types")?
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    if codes.is_empty() {
        return Err(PseudoformError::argument(
            "types",
            "required",
            "no pseudonym type requested",
        ));
    }
    codes
        .iter()
        .map(|c| c.parse::<PseudonymType>().map_err(PseudoformError::from))
        .collect()
}

fn field_error_object(error: &FieldError) -> Object {
    let object = Object::new();
    set(&object, "field", error.field.name());
    set(&object, "code", error.code());
    set(&object, "message", error.message());
    object
}

/// Every rule broken by a given field, as `[{ field, code, message }]`.
pub(crate) fn validate(identity: &JsValue) -> JsResult<Array> {
    let identity = identity_from_js(identity)?;
    Ok(preparation::validate(&identity, today())
        .iter()
        .map(field_error_object)
        .collect())
}

/// See [`crate::prepare`].
pub(crate) fn prepare(identity: &JsValue, options: &JsValue) -> JsResult<Object> {
    if !options.is_object() {
        return Err(PseudoformError::argument(
            "options",
            "type",
            "expected an object",
        ));
    }
    let organization = text_argument(
        &member(options, "recipientOrganization")?,
        "recipientOrganization",
    )?;
    let scope = text_argument(&member(options, "recipientScope")?, "recipientScope")?;
    let recipient = Recipient::new(&organization, &scope)?;
    let types = requested_types(&member(options, "types")?)?;

    let mut identity = identity_from_js(identity)?;
    let provider = member(options, "provider")?;
    if identity.get(Field::Provider).is_none() && !provider.is_undefined() && !provider.is_null() {
        identity.set(
            Field::Provider,
            text_argument(&provider, "provider")?.as_str(),
        );
    }

    let random = |bytes: &mut [u8; 64]| {
        crate::random::fill(bytes)
            .then_some(())
            .ok_or(Error::RandomUnavailable)
    };
    let outcomes = preparation::prepare(&identity, &recipient, &types, today(), random)?;

    let prepared = Array::new();
    let skipped = Array::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Prepared(item) => {
                let object = Object::new();
                set(&object, "type", item.pseudonym_type.code());
                set(&object, "blindedInput", encode(&item.blinded_input));
                set(
                    &object,
                    "blindFactor",
                    JsString::from(encode(item.blind.to_bytes().as_ref()).as_str()),
                );
                prepared.push(&object);
            }
            Outcome::Skipped {
                pseudonym_type,
                reason,
            } => {
                let object = field_error_object(&reason);
                set(&object, "type", pseudonym_type.code());
                skipped.push(&object);
            }
        }
    }
    let result = Object::new();
    set(&result, "prepared", prepared);
    set(&result, "skipped", skipped);
    Ok(result)
}
