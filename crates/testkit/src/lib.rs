//! # pseudoform-testkit
//!
//! The fixtures of the integration tests of the TTP (`crates/ttp`) and the
//! registry (`crates/registry`), in one place: a dev-dependency of both,
//! never published.
//!
//! - [`keys`]: the recipients' RSA keys and the TTP's (and a forger's)
//!   P-256 signing key, made once per test binary.
//! - [`jose`]: JWS and JWE built the way the TTP builds them, and opened
//!   the way a recipient opens them.
//! - [`vectors`]: the method's derivation vectors and the OPRF steps of a
//!   browser and a TTP around them.
//! - [`ttp`]: a real TTP on loopback with its SQLite database in a
//!   temporary directory, its recipients, callers and tokens.
//! - [`registry`]: a real registry on loopback, and submissions for it.
//! - [`validation`]: validate tokens and DPoP proofs of a provider, and
//!   record submissions with a reversible pseudonym.
//! - [`balancer`]: HAProxy in front of TTP replicas.
//! - [`softhsm`]: a SoftHSM2 token for the TTP's keys over PKCS#11.
//! - [`postgres`]: a PostgreSQL server of one test, for the shared ledger.
//! - [`process`]: a server binary as a real process, for the crash tests.
//! - [`disk`]: a tmpfs to fill, for the full-disk tests.
//! - [`mutate`]: deterministic mutations of valid bodies, for the runs of
//!   damaged requests against a real server.

// Fixtures, not the code under test: any fault here is a failing test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

pub mod balancer;
pub mod disk;
pub mod jose;
pub mod keys;
pub mod mutate;
pub mod postgres;
pub mod process;
pub mod registry;
pub mod softhsm;
pub mod ttp;
pub mod validation;
pub mod vectors;
