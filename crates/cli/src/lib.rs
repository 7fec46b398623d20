//! `pseudoform batch`: a processor's (or provider's) native batch command.
//!
//! It streams a CSV extract ([`input`]), maps its columns ([`mapping`]),
//! validates every row by the published method ([`rows`]), blinds each
//! row's pseudonym types locally with the same core as the browser
//! ([`pseudonymise`]), asks the TTP for the evaluations of the blinded
//! elements in parallel chunks and delivers to the registry ([`remote`]),
//! writes the pseudonymised file and the report ([`output`]), keeps a
//! checkpoint to resume from ([`checkpoint`]) and ends with a summary
//! ([`summary`]). The file never goes to the TTP: only blinded elements do;
//! the registry gets only pseudonymised records.
//!
//! [`run::run`] is the whole command; `src/main.rs` only parses arguments.
//! docs/processors.md is the user's guide.

pub mod checkpoint;
pub mod connection;
pub mod input;
pub mod mapping;
pub mod output;
pub mod progress;
pub mod pseudonymise;
pub mod remote;
pub mod rows;
pub mod run;
pub mod summary;
