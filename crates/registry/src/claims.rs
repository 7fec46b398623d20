//! Opening a temporary pseudonym's JWE and checking its claims.
//!
//! The JWE has the pinned `alg` and names one of the registry's keys
//! ([`Opener::check`], before any cryptography), decrypts with that key
//! ([`crate::jwe`]); its
//! plaintext is a JWS of the claims with a valid signature of a pinned TTP
//! key (bare claims only where `accept_unsigned` allows them); the claims
//! are a record payload ([`RecordClaims`], has `evaluations`) or a single
//! evaluation ([`EvalClaims`], has `subject`); `version` is the protocol's;
//! `aud` and `scope` are the registry's; `exp - iat` is at most the
//! protocol's 300 s (plus the clock skew); it holds the evaluation of the
//! submitted type. Whether it has expired or was issued in the future (30 s
//! of clock skew by default) is a separate check, [`Opener::check_time`]:
//! the receiver first asks the store whether the JWE's `jti` belongs to a
//! record it already holds (a retry), which is answered whatever the time.

use std::collections::BTreeMap;

use pseudoform_core::PseudonymType;
use pseudoform_protocol::claims::{EvalClaims, RecordClaims};
use pseudoform_protocol::{JWE_LIFETIME_SECONDS, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};

use crate::error::{At, ReceiveError};
use crate::jwe::{Checked, JweAlg, JweError, KeyRing, Plaintext, SignatureError, SignatureKeys};

/// Default allowed clock difference with the TTP, in seconds.
pub const DEFAULT_CLOCK_SKEW: i64 = 30;
/// Longest `jti` accepted, in characters.
const MAX_JTI: usize = 256;

/// The decrypted claims of one JWE.
#[derive(Debug)]
pub(crate) enum Claims {
    /// Of `POST /oprf/eval`: one evaluation.
    Eval(EvalClaims),
    /// Of `POST /v1/evaluate`: one patient's record.
    Record(RecordClaims),
}

/// A JWE whose claims passed every check.
#[derive(Debug)]
pub(crate) struct Opened {
    /// Its claims.
    pub claims: Claims,
    /// Its `jti`, or `sha256:` + hex of the JWE when it has none.
    pub jti: String,
    /// Its `exp`.
    pub exp: i64,
    /// Its `iat`.
    pub iat: i64,
    /// The provider the TTP names in the claims, if any.
    pub provider: Option<String>,
    /// The compact JWS of the claims, when they were signed (kept for a
    /// record with a reversible pseudonym: the provider checks it).
    pub jws: Option<String>,
}

impl Opened {
    /// Whether it is a record JWE (one patient's record).
    pub fn is_record(&self) -> bool {
        matches!(self.claims, Claims::Record(_))
    }
}

/// The evaluation of one type inside a JWE.
#[derive(Debug)]
pub(crate) struct Evaluated<'a> {
    /// The key version of `subject`.
    pub key_version: u32,
    /// `pseudonym:eval:` + the evaluated element.
    pub subject: &'a str,
    /// Evaluations under older key versions: version → element.
    pub extra_versions: &'a BTreeMap<String, String>,
}

/// What a JWE must be to be accepted by one registry: its recipient, keys,
/// pinned TTP signing keys and clock skew.
#[derive(Debug)]
pub(crate) struct Opener {
    /// The registry's organisation.
    pub organization: String,
    /// The registry's scope.
    pub scope: String,
    /// The registry's private keys.
    pub keys: KeyRing,
    /// The TTP's pinned public signing keys.
    pub signature_keys: SignatureKeys,
    /// Whether unsigned claims are accepted.
    pub accept_unsigned: bool,
    /// The `alg` of the TTP's JWEs.
    pub ttp_alg: JweAlg,
    /// Allowed clock difference with the TTP, in seconds.
    pub skew: i64,
}

/// A JWE error at `at` of a submission as its refusal.
pub(crate) fn refusal(error: JweError, at: At) -> ReceiveError {
    match error {
        JweError::Undecryptable => ReceiveError::Undecryptable { at },
        JweError::UnsupportedAlgorithm => ReceiveError::UnsupportedAlgorithm { at },
        JweError::MissingKid => ReceiveError::MissingKid { at },
        JweError::UnknownKid => ReceiveError::UnknownKid { at },
    }
}

impl Opener {
    /// Checks the TTP's JWE at `at` of a submission without any
    /// cryptography ([`KeyRing::check`], the pinned `alg`).
    pub fn check<'a>(&'a self, jwe: &'a str, at: At) -> Result<Checked<'a>, ReceiveError> {
        self.keys
            .check(jwe, self.ttp_alg)
            .map_err(|e| refusal(e, at))
    }

    /// Decrypts the checked JWE at `at` of a submission and checks its
    /// claims, all but their time ([`Opener::check_time`]).
    pub fn open(&self, checked: &Checked<'_>, at: At) -> Result<Opened, ReceiveError> {
        let jwe = checked.compact();
        let plaintext = self.keys.open(checked).map_err(|e| refusal(e, at))?;
        let (payload, jws) = match self.signature_keys.verify(&plaintext) {
            Ok(Plaintext::Signed(claims)) => {
                let jws = std::str::from_utf8(&plaintext)
                    .map(|text| text.trim_ascii().to_owned())
                    .ok();
                (claims, jws)
            }
            Ok(Plaintext::Unsigned) if self.accept_unsigned => (plaintext, None),
            Ok(Plaintext::Unsigned) | Err(SignatureError::Unsigned) => {
                return Err(ReceiveError::Unsigned { at })
            }
            Err(SignatureError::BadSignature) => return Err(ReceiveError::BadSignature { at }),
        };
        let invalid = || ReceiveError::InvalidClaims { at };
        let value: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        let object = value.as_object().ok_or_else(invalid)?;
        let claims = if object.contains_key("evaluations") {
            Claims::Record(serde_json::from_value(value).map_err(|_| invalid())?)
        } else if object.contains_key("subject") {
            Claims::Eval(serde_json::from_value(value).map_err(|_| invalid())?)
        } else {
            return Err(invalid());
        };
        let (version, aud, scope, iat, exp, jti, provider) = match &claims {
            Claims::Eval(c) => (
                &c.version,
                &c.aud,
                &c.scope,
                c.iat,
                c.exp,
                c.jti.clone(),
                c.provider.clone(),
            ),
            Claims::Record(c) => (
                &c.version,
                &c.aud,
                &c.scope,
                c.iat,
                c.exp,
                Some(c.jti.clone()),
                c.provider.clone(),
            ),
        };
        if provider.as_ref().is_some_and(|p| p.len() > MAX_JTI) {
            return Err(invalid());
        }
        if version != PROTOCOL_VERSION {
            return Err(ReceiveError::VersionUnsupported { at });
        }
        if *aud != self.organization || *scope != self.scope {
            return Err(ReceiveError::WrongRecipient { at });
        }
        if exp < iat {
            return Err(invalid());
        }
        if exp.saturating_sub(iat) > JWE_LIFETIME_SECONDS.saturating_add(self.skew) {
            return Err(ReceiveError::LifetimeTooLong { at });
        }
        let jti = match jti {
            Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => jti,
            Some(_) => return Err(invalid()),
            None => format!("sha256:{}", hex::encode(Sha256::digest(jwe.as_bytes()))),
        };
        Ok(Opened {
            claims,
            jti,
            exp,
            iat,
            provider,
            jws,
        })
    }

    /// Checks the time of the JWE opened at `at` at `now`: not expired,
    /// not issued in the future, within the clock skew.
    pub fn check_time(&self, opened: &Opened, now: i64, at: At) -> Result<(), ReceiveError> {
        if opened.exp < now.saturating_sub(self.skew) {
            return Err(ReceiveError::Expired { at });
        }
        if opened.iat > now.saturating_add(self.skew) {
            return Err(ReceiveError::NotYetValid { at });
        }
        Ok(())
    }
}

/// A key version as `extra_versions` names it: a positive integer.
pub(crate) fn parse_version(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|v| *v > 0)
}

/// The evaluation of `ty` in the claims, with its key version.
pub(crate) fn evaluation_of(
    claims: &Claims,
    ty: PseudonymType,
    at: At,
) -> Result<Evaluated<'_>, ReceiveError> {
    match claims {
        Claims::Eval(c) => {
            if c.pseudonym_type.as_deref().unwrap_or("B") != ty.code() {
                return Err(ReceiveError::TypeMismatch { at });
            }
            let key_version = match c.key_version {
                Some(0) => return Err(ReceiveError::InvalidClaims { at }),
                Some(v) => v,
                // The national service names no version: its `subject` is
                // the latest *active* one, which need not follow the
                // highest of `extra_versions` (versions retire, several
                // are active at once). A guess could file a pseudonym
                // under another version's label, for good: refused.
                None => return Err(ReceiveError::KeyVersionMissing { at }),
            };
            Ok(Evaluated {
                key_version,
                subject: &c.subject,
                extra_versions: &c.extra_versions,
            })
        }
        Claims::Record(c) => {
            if c.key_version == 0 {
                return Err(ReceiveError::InvalidClaims { at });
            }
            let mut found = c
                .evaluations
                .iter()
                .filter(|e| e.pseudonym_type == ty.code());
            let evaluation = found.next().ok_or(ReceiveError::TypeMismatch { at })?;
            if found.next().is_some() {
                return Err(ReceiveError::InvalidClaims { at });
            }
            Ok(Evaluated {
                key_version: c.key_version,
                subject: &evaluation.subject,
                extra_versions: &evaluation.extra_versions,
            })
        }
    }
}
