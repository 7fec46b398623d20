//! # pseudoform-core
//!
//! The published pseudonymisation method of pseudoform, **version 1**, as pure
//! Rust with no WebAssembly dependencies, so that every rule is tested natively
//! and the same code runs in the browser, the TTP and the registry.
//!
//! The pipeline, one module a step:
//!
//! 1. [`fields`]: validate and normalise each identifying field (birth name,
//!    birth date, sex, initial, postcode, house number and addition, BSN,
//!    local patient number, provider) to its canonical form.
//! 2. [`pseudonym_type`]: the ten Wkz pseudonym types and the canonical input
//!    value of each (`BERGJANS|19800101|2|J` for NGGV, …).
//! 3. [`derivation`]: the identifier `{"landCode":"NL","type":…,"value":…}` as
//!    RFC 8785 canonical JSON, and HKDF-SHA256 bound to the recipient.
//! 4. [`oprf`]: RFC 9497 ristretto255-SHA512 OPRF (blind, evaluate, unblind),
//!    built on [`xmd`] (RFC 9380 `expand_message_xmd`).
//!
//! Beside them [`reversible`] names type `R`, the local patient number
//! encrypted to the supplying provider (HPKE in the browser module).
//!
//! Errors ([`Error`], [`FieldError`]) name the field and the rule, never the
//! value. Buffers that hold identifying data are zeroised when dropped.
//!
//! The method is described in `docs/method.md`; its known-answer vectors live
//! in `docs/vectors/method-v1.json` and are run by the tests of this crate and
//! by the browser tests.

// `no_std` (with `alloc`) unless the `std` feature is on (the default): the
// browser module builds the core without std, so that no std panic and
// formatting machinery reaches its wasm (docs/size.md).
#![cfg_attr(not(any(feature = "std", test)), no_std)]

extern crate alloc;

pub mod date;
pub mod derivation;
pub mod encoding;
pub mod error;
pub mod fields;
mod fold;
pub mod identity;
pub mod oprf;
pub mod preparation;
pub mod pseudonym_type;
pub mod reversible;
pub mod xmd;

pub use date::CalendarDate;
pub use derivation::Recipient;
pub use error::{Error, FieldError, Rule};
pub use fields::Field;
pub use identity::Identity;
pub use pseudonym_type::PseudonymType;

/// `parts` joined into one string: what `[..].concat()` or `format!` would
/// make, without their generic code (size of the browser module).
pub(crate) fn concat(parts: &[&str]) -> alloc::string::String {
    let mut out = alloc::string::String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// The version of the published method implemented by this crate.
///
/// It is part of the HKDF `info` (`…|v1`) and of the method document; a change
/// to any normalisation rule or canonical form makes a new version.
pub const METHOD_VERSION: u32 = 1;
