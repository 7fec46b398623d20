//! The submitter proof: only the browser (or back end) that obtained a
//! record's evaluations can submit it.
//!
//! The TTP puts the DPoP key of the credential that asked for an evaluation
//! into the signed claims (`cnf.jkt`). `POST /api/submissions` then needs a
//! `DPoP` header (RFC 9449 proof form) signed by that key: protected header
//! `typ: dpop+jwt`, `alg: ES256`, the public P-256 `jwk`; claims `htm`
//! `POST`, `htu` the registry's public submissions URL
//! (`{public_url}/api/submissions`, or that of one of `extra_public_urls`
//! for a registry reached under several names; compared without query),
//! `iat` within
//! [`PROOF_WINDOW_SECONDS`] of the registry's clock, a `jti` used once, and
//! `rec` = unpadded base64url SHA-256 of the record JWE string (of the
//! national shape's `temporaryPseudonym`s joined by `.`), so a proof is for
//! one record only. The proof's RFC 7638 thumbprint must equal `cnf.jkt`.
//!
//! Every send signs a fresh proof, a resend too: the resend of a stored
//! submission passes this check with its new proof and is then answered
//! with its first receipt. Used `jti`s are remembered (hashed) in the
//! registry's database until their window has passed, at most
//! [`MAX_REMEMBERED`] at once (beyond it the registry answers 503 rather
//! than forget one).
//!
//! Claims without `cnf` (the national TTP, development tokens) have no key
//! to check: they are accepted only with `require_submitter_proof = false`.

use std::path::Path;
use std::sync::Mutex;

use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jwk::Jwk;
use josekit::jws::{self, JwsVerifier};
use pseudoform_protocol::auth::{is_jti, ALG, DPOP_WINDOW_SECONDS, TYP_DPOP};
use pseudoform_protocol::jwk::ec_thumbprint;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::claims::Claims;
use pseudoform_protocol::registry::Submission;

/// How far a proof's `iat` may be from the registry's clock, in seconds.
pub const PROOF_WINDOW_SECONDS: i64 = DPOP_WINDOW_SECONDS;

/// The most proof ids remembered at once.
pub const MAX_REMEMBERED: i64 = 1_000_000;

/// The path of the submissions endpoint under `public_url`.
pub const SUBMISSIONS_PATH: &str = "/api/submissions";

/// Why a submission's proof was refused (never more than the rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubmitterError {
    /// The record is bound to a key and the request has no (single) `DPoP` header.
    #[error("the submission needs a DPoP proof of the key that obtained the record")]
    MissingProof,
    /// Not a valid proof for this request: header, signature, `htm`,
    /// `htu`, `iat` or `jti`.
    #[error("the DPoP proof is not valid for this request")]
    InvalidProof,
    /// The proof is for another record (`rec`).
    #[error("the DPoP proof is for another record")]
    WrongRecord,
    /// The proof is signed by another key than the one that obtained the record.
    #[error("the DPoP proof is signed by another key than the one that obtained the record")]
    WrongKey,
    /// The proof was used before.
    #[error("the DPoP proof was used before")]
    Replayed,
    /// The record is bound to no key and this registry requires one.
    #[error("the record is bound to no submitter key, and this registry requires one")]
    Unbound,
    /// The proof store failed, or holds too many ids.
    #[error("the submitter proof cannot be checked now")]
    Unavailable,
}

impl SubmitterError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            SubmitterError::MissingProof => "submitter.missingProof",
            SubmitterError::InvalidProof => "submitter.invalidProof",
            SubmitterError::WrongRecord => "submitter.wrongRecord",
            SubmitterError::WrongKey => "submitter.wrongKey",
            SubmitterError::Replayed => "submitter.proofReplayed",
            SubmitterError::Unbound => "submitter.unbound",
            SubmitterError::Unavailable => "server.notReady",
        }
    }

    /// 401 for a proof that is missing or wrong, 422 for a record no
    /// submitter may deliver here, 503 when the check cannot run.
    pub fn status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            SubmitterError::Unbound => StatusCode::UNPROCESSABLE_ENTITY,
            SubmitterError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The request member it is about: the header, or the record.
    pub fn field(self) -> Option<&'static str> {
        match self {
            SubmitterError::Unbound => Some("record"),
            SubmitterError::Unavailable => None,
            _ => Some("DPoP"),
        }
    }
}

/// The claims of a DPoP proof as the registry reads them: those of RFC 9449
/// and pseudoform's `rec` (submitter proofs).
#[derive(Deserialize)]
pub(crate) struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    #[serde(default)]
    pub(crate) rec: Option<String>,
    #[serde(default)]
    pub(crate) ath: Option<String>,
}

/// `rec` of a record JWE (or of the national shape's packages joined by `.`).
pub fn rec(record: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(record.as_bytes()))
}

/// The `rec` a submission's proof must carry: of its record JWE, or of its
/// national packages' `temporaryPseudonym`s joined by `.`
/// ([`pseudoform_protocol::registry::submission_rec`]).
pub fn rec_of(submission: &Submission) -> String {
    pseudoform_protocol::registry::submission_rec(submission)
}

/// The key a JWE's claims bind it to (`cnf.jkt`), if any.
pub(crate) fn bound_key(claims: &Claims) -> Option<&str> {
    let cnf = match claims {
        Claims::Eval(c) => c.cnf.as_ref(),
        Claims::Record(c) => c.cnf.as_ref(),
    };
    cnf.map(|c| c.jkt.as_str())
}

/// The P-256 public key of a proof's `jwk`: its verifier and thumbprint.
fn proof_key(
    jwk: &serde_json::Map<String, serde_json::Value>,
) -> Option<(impl JwsVerifier, String)> {
    let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    if text("kty") != Some("EC") || text("crv") != Some("P-256") || jwk.contains_key("d") {
        return None;
    }
    let x = Base64UrlUnpadded::decode_vec(text("x")?).ok()?;
    let y = Base64UrlUnpadded::decode_vec(text("y")?).ok()?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let public = Jwk::from_map(jwk.clone()).ok()?;
    let verifier = jws::ES256.verifier_from_jwk(&public).ok()?;
    Some((verifier, ec_thumbprint("P-256", &x, &y)))
}

/// The header of a compact JWS, unverified (to find its key).
fn peek_header(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let header = token.split('.').next()?;
    let bytes = Base64UrlUnpadded::decode_vec(header).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A proof that passed every check but single use: its key's thumbprint,
/// `jti` and `iat`.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The proof's id.
    pub jti: String,
    /// When it was made.
    pub iat: i64,
}

/// Verifies a DPoP proof (RFC 9449 §4.3) for the method `htm` on one of
/// `urls` at `now`: `typ` `dpop+jwt`, `alg` ES256, a public P-256 `jwk`,
/// its signature, `htm`, `htu` (compared without query and fragment), `iat`
/// within [`PROOF_WINDOW_SECONDS`] and a well-formed `jti`. Single use is
/// the caller's ([`ProofLedger::use_once`]); so are `rec` and `ath`.
pub(crate) fn verify_proof(
    proof: &str,
    htm: &str,
    urls: &[String],
    now: i64,
) -> Result<(Verified, ProofClaims), SubmitterError> {
    let invalid = SubmitterError::InvalidProof;
    let header = peek_header(proof).ok_or(invalid)?;
    let text = |name: &str| header.get(name).and_then(serde_json::Value::as_str);
    if !text("typ").is_some_and(|t| t.eq_ignore_ascii_case(TYP_DPOP)) || text("alg") != Some(ALG) {
        return Err(invalid);
    }
    let jwk = header
        .get("jwk")
        .and_then(serde_json::Value::as_object)
        .ok_or(invalid)?;
    let (verifier, jkt) = proof_key(jwk).ok_or(invalid)?;
    let (payload, _) = jws::deserialize_compact(proof, &verifier).map_err(|_| invalid)?;
    let claims: ProofClaims = serde_json::from_slice(&payload).map_err(|_| invalid)?;
    let htu = claims.htu.split(['?', '#']).next().unwrap_or_default();
    if !is_jti(&claims.jti)
        || claims.htm != htm
        || !urls.iter().any(|url| url == htu)
        || (claims.iat - now).abs() > PROOF_WINDOW_SECONDS
    {
        return Err(invalid);
    }
    let verified = Verified {
        jkt,
        jti: claims.jti.clone(),
        iat: claims.iat,
    };
    Ok((verified, claims))
}

/// Verifies `proof` for a POST to one of `urls` about the record whose
/// [`rec`] is `expected_rec`, at `now`.
pub fn verify(
    proof: &str,
    urls: &[String],
    expected_rec: &str,
    now: i64,
) -> Result<Verified, SubmitterError> {
    let (verified, claims) = verify_proof(proof, "POST", urls, now)?;
    if claims.rec.as_deref() != Some(expected_rec) {
        return Err(if claims.rec.is_some() {
            SubmitterError::WrongRecord
        } else {
            SubmitterError::InvalidProof
        });
    }
    Ok(verified)
}

/// The used DPoP proof ids of the registry, hashed, each until its window
/// has passed (table `submitter_proofs`), at most [`MAX_REMEMBERED`] at once.
#[derive(Debug)]
pub struct ProofLedger {
    used: Mutex<Connection>,
}

impl ProofLedger {
    /// The ledger in the database at `database` (creating its table).
    pub fn open(database: &Path) -> anyhow::Result<Self> {
        let connection = Connection::open(database)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS submitter_proofs (\
               id BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;\
             CREATE INDEX IF NOT EXISTS submitter_proofs_expiry ON submitter_proofs (expires_at);",
        )?;
        Ok(ProofLedger {
            used: Mutex::new(connection),
        })
    }

    /// Remembers a proof's id until its window has passed; a second use is
    /// [`SubmitterError::Replayed`].
    pub fn use_once(&self, proof: &Verified, now: i64) -> Result<(), SubmitterError> {
        let id: [u8; 32] = Sha256::digest(proof.jti.as_bytes()).into();
        let until = proof.iat.max(now) + PROOF_WINDOW_SECONDS + 1;
        let failed = |err: rusqlite::Error| {
            tracing::error!(error = %err, "the proof store failed");
            SubmitterError::Unavailable
        };
        let mut connection = self.used.lock().map_err(|_| SubmitterError::Unavailable)?;
        let tx = connection.transaction().map_err(failed)?;
        tx.execute(
            "DELETE FROM submitter_proofs WHERE expires_at < ?1",
            params![now],
        )
        .map_err(failed)?;
        let seen: Option<i64> = tx
            .query_row(
                "SELECT expires_at FROM submitter_proofs WHERE id = ?1",
                params![id.as_slice()],
                |row| row.get(0),
            )
            .optional()
            .map_err(failed)?;
        if seen.is_some() {
            return Err(SubmitterError::Replayed);
        }
        let count: i64 = tx
            .query_row("SELECT count(*) FROM submitter_proofs", [], |row| {
                row.get(0)
            })
            .map_err(failed)?;
        if count >= MAX_REMEMBERED {
            tracing::warn!("the proof store is full");
            return Err(SubmitterError::Unavailable);
        }
        tx.execute(
            "INSERT INTO submitter_proofs (id, expires_at) VALUES (?1, ?2)",
            params![id.as_slice(), until],
        )
        .map_err(failed)?;
        tx.commit().map_err(failed)
    }
}

/// The registry's check of submitter proofs, with its store of used ids.
#[derive(Debug)]
pub struct SubmitterCheck {
    urls: Vec<String>,
    batch_urls: Vec<String>,
    fhir_urls: Vec<String>,
    require: bool,
    ledger: ProofLedger,
}

impl SubmitterCheck {
    /// A check for proofs to `{url}/api/submissions` for each of
    /// `public_urls` (the first is the registry's own), refusing unbound
    /// records when `require`, remembering used ids in the table
    /// `submitter_proofs` of the database at `database`.
    pub fn open(public_urls: &[String], require: bool, database: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(!public_urls.is_empty(), "the registry needs a public_url");
        let under = |path: &str| -> Vec<String> {
            public_urls
                .iter()
                .map(|u| format!("{}{path}", u.trim_end_matches('/')))
                .collect()
        };
        Ok(SubmitterCheck {
            urls: under(SUBMISSIONS_PATH),
            batch_urls: under(pseudoform_protocol::registry::BATCH_PATH),
            fhir_urls: under(pseudoform_protocol::fhir::FHIR_PATH),
            require,
            ledger: ProofLedger::open(database)?,
        })
    }

    /// The URLs a proof may name (`htu`).
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Checks a submission whose claims name the keys `bound` (the `cnf.jkt`
    /// of each JWE; `None` for one without) with the request's `proof`, for
    /// the record whose [`rec`] is `record_rec`, at `now`. Every JWE of a
    /// submission must be bound to the same key, or to none.
    pub fn check(
        &self,
        bound: &[Option<&str>],
        proof: Option<&str>,
        record_rec: &str,
        now: i64,
    ) -> Result<(), SubmitterError> {
        let Some(jkt) = self.key_of(bound)? else {
            return Ok(());
        };
        let proof = proof.ok_or(SubmitterError::MissingProof)?;
        self.verify_once(proof, &self.urls, record_rec, now, Some(jkt))
            .map(|_| ())
    }

    /// The key the JWEs of one submission are bound to (`cnf.jkt` of each;
    /// all the same, or all none): `None` for an unbound record this
    /// registry accepts, [`SubmitterError::Unbound`] for one it refuses.
    pub fn key_of<'b>(&self, bound: &[Option<&'b str>]) -> Result<Option<&'b str>, SubmitterError> {
        let first = bound.first().copied().flatten();
        if bound.iter().any(|jkt| *jkt != first) {
            return Err(SubmitterError::WrongKey);
        }
        match first {
            None if self.require => Err(SubmitterError::Unbound),
            other => Ok(other),
        }
    }

    /// Checks a batch's one proof (`POST {public_url}/api/batches`, `rec`
    /// the [`pseudoform_protocol::registry::batch_rec`] of its
    /// submissions) at `now` and uses it up: the thumbprint of its key,
    /// which each bound submission's key must then be.
    pub fn check_batch(
        &self,
        proof: &str,
        batch_rec: &str,
        now: i64,
    ) -> Result<String, SubmitterError> {
        self.verify_once(proof, &self.batch_urls, batch_rec, now, None)
    }

    /// [`SubmitterCheck::check_batch`] for a FHIR Bundle
    /// (`POST {public_url}/fhir`).
    pub fn check_fhir(
        &self,
        proof: &str,
        batch_rec: &str,
        now: i64,
    ) -> Result<String, SubmitterError> {
        self.verify_once(proof, &self.fhir_urls, batch_rec, now, None)
    }

    /// Verifies `proof` for `urls` and `rec` (signed by `jkt`, if given) and
    /// uses its id once: its key's thumbprint.
    fn verify_once(
        &self,
        proof: &str,
        urls: &[String],
        rec: &str,
        now: i64,
        jkt: Option<&str>,
    ) -> Result<String, SubmitterError> {
        let verified = verify(proof, urls, rec, now)?;
        if jkt.is_some_and(|jkt| verified.jkt != jkt) {
            return Err(SubmitterError::WrongKey);
        }
        self.ledger.use_once(&verified, now)?;
        Ok(verified.jkt)
    }
}
