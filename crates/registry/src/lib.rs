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
//! - [`receiver`]: [`Receiver::receive`], a submission from checks to store.
//! - [`batch`]: [`Receiver::receive_batch`], a processor's batch of submissions.
//! - [`fhir`]: FHIR deliveries ([`Receiver::receive_fhir`]) and the FHIR export.
//! - [`submission`]: the checks of a submission's envelope, types and data.
//! - [`submitter`]: the submitter proof (DPoP of the key that obtained the record).
//! - [`provider_auth`]: the provider endpoints' TTP validate token and DPoP
//!   proof ([`provider_auth::ValidatingProvider`]).
//! - [`validation`]: validation requests, answers and withdrawals of records
//!   with a reversible pseudonym (type `R`), and their audit.
//! - [`claims`]: opening a pseudonym's JWE and checking its claims.
//! - [`deblind`]: from an evaluation and a blind factor to stored labels.
//! - [`load`]: [`Receiver::from_config`], the receiver's files.
//! - [`jwe`]: the registry's keys and JWE decryption.
//! - [`store`]: the SQLite store.
//! - [`rekey`]: re-pseudonymisation to a new key version through the TTP.
//! - [`http`]: the demo server ([`app`], [`serve`]).
//! - [`view`]: the HTML page of what the registry holds.
//! - [`error`]: [`ReceiveError`] and [`error::ApiError`], stable codes and
//!   statuses, answered as problem bodies.

pub mod batch;
pub mod claims;
pub mod config;
pub mod deblind;
pub mod error;
pub mod fhir;
pub mod http;
pub mod jwe;
pub mod load;
pub mod provider_auth;
pub mod receiver;
pub mod rekey;
pub mod store;
pub mod submission;
pub mod submitter;
pub mod validation;
pub mod view;

pub use config::RegistryConfig;
pub use error::ReceiveError;
pub use http::{app, serve};
pub use receiver::Receiver;
