//! # pseudoform-registry
//!
//! The registry receiver of pseudoform: it accepts pseudonymised submissions
//! from the browser module, decrypts the TTP's JWEs with the registry's RSA
//! key, de-blinds each temporary pseudonym to the definitive one
//! (`N = r⁻¹·Z`, see [`pseudoform_core::oprf`]) and stores the record with
//! its labels in SQLite. It never sees an identity, and stores neither blind
//! factors nor JWEs.
//!
//! - [`config`]: [`RegistryConfig`], read from TOML.
//! - [`receiver`]: [`Receiver::receive`], all checks of a submission.
//! - [`jwe`]: the registry's keys and JWE decryption.
//! - [`store`]: the SQLite store.
//! - [`rekey`]: re-pseudonymisation to a new key version through the TTP.
//! - [`http`]: the demo server ([`app`], [`serve`]).
//! - [`view`]: the HTML page of what the registry holds.
//! - [`error`]: [`ReceiveError`], stable codes and statuses.

pub mod config;
pub mod error;
pub mod http;
pub mod jwe;
pub mod receiver;
pub mod rekey;
pub mod store;
pub mod view;

pub use config::RegistryConfig;
pub use error::ReceiveError;
pub use http::{app, serve};
pub use receiver::Receiver;
