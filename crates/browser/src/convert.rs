//! Conversion of JS arguments to core types, with every check a JS caller
//! can trip: wrong types, absent members, over-long strings, throwing getters.

use alloc::string::String;

use js_sys::{Date, JsString, Reflect};
use pseudoform_core::fields::MAX_INPUT_CHARS;
use pseudoform_core::{CalendarDate, Field, FieldError, Identity, Rule};
use wasm_bindgen::{JsCast, JsValue};
use zeroize::Zeroizing;

use crate::js_error::{JsResult, PseudoformError};

/// Longest string copied into wasm memory, in UTF-16 code units. Longer
/// strings are refused before they are copied.
const MAX_COPY_UNITS: u32 = 4 * MAX_INPUT_CHARS as u32;

/// A JS string argument, copied into a buffer that is wiped on drop.
/// `name` is the argument or field name used in errors.
pub(crate) fn text_argument(value: &JsValue, name: &str) -> JsResult<Zeroizing<String>> {
    let Some(text) = value.dyn_ref::<JsString>() else {
        return Err(PseudoformError::argument(name, "type", "expected a string"));
    };
    if text.length() > MAX_COPY_UNITS {
        return Err(match Field::from_name(name) {
            Some(field) => FieldError::new(field, Rule::TooLong).into(),
            None => PseudoformError::argument(name, "tooLong", "the string is too long"),
        });
    }
    // A JsString may hold lone surrogates; `as_string` replaces them.
    Ok(Zeroizing::new(text.as_string().unwrap_or_default()))
}

/// An [`Identity`] from a plain JS object with optional string members
/// named after the fields. `undefined` and `null` members are absent.
pub(crate) fn identity_from_js(value: &JsValue) -> JsResult<Identity> {
    if !value.is_object() {
        return Err(PseudoformError::argument(
            "identity",
            "type",
            "expected an object",
        ));
    }
    let mut identity = Identity::new();
    for field in Field::ALL {
        let member = Reflect::get(value, &JsValue::from_str(field.name()))
            .map_err(|_| PseudoformError::argument(field.name(), "type", "could not be read"))?;
        if member.is_undefined() || member.is_null() {
            continue;
        }
        let text = text_argument(&member, field.name())?;
        identity.set(field, text.as_str());
    }
    Ok(identity)
}

/// Today's date in the browser's local time zone, which bounds birth dates.
pub(crate) fn today() -> CalendarDate {
    let now = Date::new_0();
    let (year, month, day) = (now.get_full_year(), now.get_month() + 1, now.get_date());
    u16::try_from(year)
        .ok()
        .zip(u8::try_from(month).ok())
        .zip(u8::try_from(day).ok())
        .and_then(|((y, m), d)| CalendarDate::new(y, m, d))
        // A clock that cannot be read as a date: refuse every birth date
        // after 1 January 1970 rather than accept future ones.
        .unwrap_or(CalendarDate::EPOCH)
}
