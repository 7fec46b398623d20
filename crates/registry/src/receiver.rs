//! The registry receiver: checks a [`Submission`], decrypts and de-blinds its
//! temporary pseudonyms to definitive ones and stores the record.
//!
//! For each temporary pseudonym: the package decodes; its JWE decrypts with
//! one of the registry's keys ([`crate::jwe`]); its plaintext is a JWS of
//! the claims with a valid signature of a pinned TTP key (bare claims only
//! where `accept_unsigned` allows them); the claims are a record
//! payload ([`RecordClaims`], has `evaluations`) or a single evaluation
//! ([`EvalClaims`], has `subject`); `version` is the protocol's; `aud` and
//! `scope` are the registry's; `exp - iat` is at most the protocol's 300 s
//! (plus the clock skew); the JWE has not expired and was not issued in the
//! future (30 s of clock skew by default); it holds the evaluation of the submitted type; the evaluated
//! element and the blind factor are valid; `N = r⁻¹·Z`. Evaluations under
//! older key versions (`extra_versions`) are de-blinded and stored too, so
//! that records received during a key rotation link to older ones.
//!
//! Finally the record, its labels and the JWEs' ids are written in one
//! transaction; a JWE used before makes the whole submission fail
//! ([`ReceiveError::Replayed`]). Several pseudonyms of one submission may
//! share one record JWE: that is what a batch evaluation produces. A record
//! JWE is one patient's record: when one pseudonym comes from a record JWE,
//! all of them must come from that one ([`ReceiveError::MixedRecords`]).
//! Single evaluations (`/oprf/eval`) are one JWE per pseudonym.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Context;
use pseudoform_core::encoding;
use pseudoform_core::oprf::{self, Blind};
use pseudoform_core::PseudonymType;
use pseudoform_protocol::claims::{EvalClaims, RecordClaims};
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{label, Receipt, Submission, IDENTIFYING_FIELD_NAMES};
use pseudoform_protocol::{JWE_LIFETIME_SECONDS, PROTOCOL_VERSION, SUBJECT_PREFIX};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{is_oin, RegistryConfig};
use crate::error::ReceiveError;
use crate::jwe::{JweError, KeyRing, Plaintext, SignatureError, SignatureKeys};
use crate::store::{NewPseudonym, Store, StoreError, UsedJwe};

/// Most fields in `data`.
pub const MAX_DATA_FIELDS: usize = 100;
/// Longest `data` key, in characters (`A-Z a-z 0-9 _ -`).
pub const MAX_FIELD_NAME: usize = 64;
/// Longest `data` value, in characters.
pub const MAX_FIELD_VALUE: usize = 4096;
/// The method versions this registry accepts.
pub const SUPPORTED_METHOD_VERSION: u32 = pseudoform_core::METHOD_VERSION;
/// Default allowed clock difference with the TTP, in seconds.
pub const DEFAULT_CLOCK_SKEW: i64 = 30;
/// Longest `jti` accepted, in characters.
const MAX_JTI: usize = 256;

/// The registry receiver. Cheap to share behind an [`Arc`].
#[derive(Debug)]
pub struct Receiver {
    organization: String,
    scope: String,
    allowed: BTreeSet<PseudonymType>,
    keys: KeyRing,
    signature_keys: SignatureKeys,
    accept_unsigned: bool,
    store: Arc<Store>,
    skew: i64,
}

/// The decrypted, checked claims of one JWE.
enum Claims {
    Eval(EvalClaims),
    Record(RecordClaims),
}

struct Opened {
    claims: Claims,
    jti: String,
    exp: i64,
}

/// The evaluation of one type inside a JWE.
struct Evaluated<'a> {
    key_version: u32,
    subject: &'a str,
    extra_versions: &'a BTreeMap<String, String>,
}

/// Current time, seconds since the Unix epoch.
pub use pseudoform_protocol::unix_now;

impl Receiver {
    /// A receiver for the registry `organization` (`oin:` + 20 digits) and
    /// `scope`, accepting `allowed_types`, decrypting with `keys` and
    /// storing into `store`. It pins no TTP signing key: give them with
    /// [`Receiver::with_ttp_signing_keys`], or every JWE is refused.
    pub fn new(
        organization: &str,
        scope: &str,
        allowed_types: &[PseudonymType],
        keys: KeyRing,
        store: Arc<Store>,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            is_oin(organization),
            "recipient_organization must be oin: followed by 20 digits"
        );
        pseudoform_core::Recipient::new(organization, scope)
            .map_err(|_| anyhow::anyhow!("recipient_scope is invalid"))?;
        anyhow::ensure!(!allowed_types.is_empty(), "allowed_types is empty");
        anyhow::ensure!(!keys.is_empty(), "no registry key is configured");
        Ok(Receiver {
            organization: organization.to_owned(),
            scope: scope.to_owned(),
            allowed: allowed_types.iter().copied().collect(),
            keys,
            signature_keys: SignatureKeys::new(),
            accept_unsigned: false,
            store,
            skew: DEFAULT_CLOCK_SKEW,
        })
    }

    /// The same receiver verifying the claims' signatures with `keys`, the
    /// TTP's pinned public signing keys.
    pub fn with_ttp_signing_keys(mut self, keys: SignatureKeys) -> Self {
        self.signature_keys = keys;
        self
    }

    /// The same receiver accepting (`true`) or refusing (`false`, the
    /// default) JWEs whose claims are not signed. Only for a TTP that does
    /// not sign: anybody with the registry's public key can make them.
    pub fn accepting_unsigned(mut self, accept: bool) -> Self {
        self.accept_unsigned = accept;
        self
    }

    /// The same receiver with another allowed clock skew (seconds, ≥ 0).
    pub fn with_clock_skew(mut self, seconds: i64) -> Self {
        self.skew = seconds.max(0);
        self
    }

    /// A receiver from a configuration: loads the keys and opens the store.
    pub fn from_config(config: &RegistryConfig) -> anyhow::Result<Self> {
        let mut keys = KeyRing::new();
        for (i, key) in config.keys.iter().enumerate() {
            let pem = Zeroizing::new(match (&key.path, &key.pem) {
                (Some(path), None) => std::fs::read(path)
                    .with_context(|| format!("cannot read registry key {}", path.display()))?,
                (None, Some(pem)) => pem.as_bytes().to_vec(),
                _ => anyhow::bail!("keys[{i}] needs exactly one of path and pem"),
            });
            keys.add_pem(&pem, key.kid.as_deref())
                .with_context(|| format!("keys[{i}] cannot be used"))?;
        }
        let mut signature_keys = SignatureKeys::new();
        for path in &config.ttp_signing_keys {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read TTP signing key {}", path.display()))?;
            signature_keys
                .add_pem(&pem)
                .with_context(|| format!("TTP signing key {}", path.display()))?;
        }
        anyhow::ensure!(
            !signature_keys.is_empty() || config.accept_unsigned,
            "ttp_signing_keys is empty: pin the TTP's public signing key \
             (`pseudoform-ttp signing-key --public-pem`)"
        );
        let allowed = parse_types(&config.allowed_types)?;
        let store = Store::open(&config.database)
            .with_context(|| format!("cannot open the database {}", config.database.display()))?;
        Ok(Receiver::new(
            &config.recipient_organization,
            &config.recipient_scope,
            &allowed,
            keys,
            Arc::new(store),
        )?
        .with_clock_skew(config.clock_skew_seconds)
        .with_ttp_signing_keys(signature_keys)
        .accepting_unsigned(config.accept_unsigned))
    }

    /// The store the receiver writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The registry's organisation.
    pub fn organization(&self) -> &str {
        &self.organization
    }

    /// The registry's scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The `kid`s of the registry's keys.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.kids()
    }

    /// Checks, de-blinds and stores a submission now.
    pub fn receive(&self, submission: Submission) -> Result<Receipt, ReceiveError> {
        self.receive_at(submission, unix_now())
    }

    /// [`Receiver::receive`] at a given time (seconds since the Unix epoch).
    pub fn receive_at(&self, submission: Submission, now: i64) -> Result<Receipt, ReceiveError> {
        self.check_envelope(&submission)?;
        let types = self.check_types(&submission)?;
        check_data(&submission.data)?;

        let packages = submission
            .pseudonyms
            .iter()
            .enumerate()
            .map(|(index, item)| {
                TemporaryPseudonym::decode(&item.temporary_pseudonym)
                    .map_err(|_| ReceiveError::MalformedPseudonym { index })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // One record JWE may carry the evaluations of several pseudonyms:
        // each distinct JWE is decrypted and checked once.
        let mut opened: HashMap<&str, Opened> = HashMap::new();
        let mut labels: Vec<NewPseudonym> = Vec::new();
        let mut receipt_labels: Vec<String> = Vec::new();
        for (index, (package, ty)) in packages.iter().zip(&types).enumerate() {
            let jwe = package.evaluated_output.as_str();
            if !opened.contains_key(jwe) {
                let o = self.open(jwe, now, index)?;
                // A record JWE is one patient's record: no pseudonym of
                // another JWE may join it, and it may join no other.
                let is_record = |o: &Opened| matches!(o.claims, Claims::Record(_));
                if opened
                    .values()
                    .any(|p| (is_record(p) || is_record(&o)) && p.jti != o.jti)
                {
                    return Err(ReceiveError::MixedRecords { index });
                }
                opened.insert(jwe, o);
            }
            let o = opened.get(jwe).ok_or(ReceiveError::Storage)?;
            let evaluated = evaluation_of(&o.claims, *ty, index)?;
            let blind = decode_blind(&package.blind_factor, index)?;

            let subject = evaluated
                .subject
                .strip_prefix(SUBJECT_PREFIX)
                .ok_or(ReceiveError::InvalidEvaluation { index })?;
            let n = deblind(&blind, subject, index)?;
            let current = label(ty.code(), evaluated.key_version, &encoding::encode(&n));
            receipt_labels.push(current.clone());
            labels.push(NewPseudonym {
                pseudonym_type: ty.code().to_owned(),
                key_version: evaluated.key_version,
                label: current,
                is_current: true,
            });
            for (version, element) in evaluated.extra_versions {
                let version = parse_version(version)
                    .filter(|v| *v != evaluated.key_version)
                    .ok_or(ReceiveError::InvalidClaims { index })?;
                let n = deblind(&blind, element, index)?;
                labels.push(NewPseudonym {
                    pseudonym_type: ty.code().to_owned(),
                    key_version: version,
                    label: label(ty.code(), version, &encoding::encode(&n)),
                    is_current: false,
                });
            }
        }

        let mut used: BTreeMap<&str, i64> = BTreeMap::new();
        for o in opened.values() {
            let exp = used.entry(o.jti.as_str()).or_insert(o.exp);
            *exp = (*exp).max(o.exp);
        }
        let used: Vec<UsedJwe> = used
            .into_iter()
            .map(|(jti, expires_at)| UsedJwe {
                jti: jti.to_owned(),
                expires_at,
            })
            .collect();

        let purge_before = now.saturating_sub(self.skew).saturating_sub(60);
        match self
            .store
            .insert_record(now, &submission.data, &labels, &used, purge_before)
        {
            Ok(record_id) => Ok(Receipt {
                record_id,
                pseudonyms: receipt_labels,
            }),
            Err(StoreError::Replayed) => Err(ReceiveError::Replayed),
            Err(err) => {
                tracing::error!(error = %err, "storing a record failed");
                Err(ReceiveError::Storage)
            }
        }
    }

    fn check_envelope(&self, submission: &Submission) -> Result<(), ReceiveError> {
        if submission.recipient_organization != self.organization {
            return Err(ReceiveError::RecipientMismatch {
                field: "recipientOrganization",
            });
        }
        if submission.recipient_scope != self.scope {
            return Err(ReceiveError::RecipientMismatch {
                field: "recipientScope",
            });
        }
        if submission.method_version != SUPPORTED_METHOD_VERSION {
            return Err(ReceiveError::UnsupportedMethod);
        }
        if submission.pseudonyms.is_empty() {
            return Err(ReceiveError::NoPseudonyms);
        }
        if submission.pseudonyms.len() > PseudonymType::ALL.len() {
            return Err(ReceiveError::TooManyPseudonyms);
        }
        Ok(())
    }

    fn check_types(&self, submission: &Submission) -> Result<Vec<PseudonymType>, ReceiveError> {
        let mut seen = BTreeSet::new();
        let mut types = Vec::with_capacity(submission.pseudonyms.len());
        for (index, item) in submission.pseudonyms.iter().enumerate() {
            let ty: PseudonymType = item
                .pseudonym_type
                .parse()
                .map_err(|_| ReceiveError::UnknownType { index })?;
            if !self.allowed.contains(&ty) {
                return Err(ReceiveError::TypeNotAllowed { index });
            }
            if !seen.insert(ty) {
                return Err(ReceiveError::DuplicateType { index });
            }
            types.push(ty);
        }
        Ok(types)
    }

    /// Decrypts one JWE and checks its claims.
    fn open(&self, jwe: &str, now: i64, index: usize) -> Result<Opened, ReceiveError> {
        let plaintext = self.keys.decrypt(jwe).map_err(|e| match e {
            JweError::Undecryptable => ReceiveError::Undecryptable { index },
            JweError::UnsupportedAlgorithm => ReceiveError::UnsupportedAlgorithm { index },
        })?;
        let payload = match self.signature_keys.verify(&plaintext) {
            Ok(Plaintext::Signed(claims)) => claims,
            Ok(Plaintext::Unsigned) if self.accept_unsigned => plaintext,
            Ok(Plaintext::Unsigned) | Err(SignatureError::Unsigned) => {
                return Err(ReceiveError::Unsigned { index })
            }
            Err(SignatureError::BadSignature) => return Err(ReceiveError::BadSignature { index }),
        };
        let invalid = || ReceiveError::InvalidClaims { index };
        let value: serde_json::Value = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        let object = value.as_object().ok_or_else(invalid)?;
        let claims = if object.contains_key("evaluations") {
            Claims::Record(serde_json::from_value(value).map_err(|_| invalid())?)
        } else if object.contains_key("subject") {
            Claims::Eval(serde_json::from_value(value).map_err(|_| invalid())?)
        } else {
            return Err(invalid());
        };
        let (version, aud, scope, iat, exp, jti) = match &claims {
            Claims::Eval(c) => (&c.version, &c.aud, &c.scope, c.iat, c.exp, c.jti.clone()),
            Claims::Record(c) => (
                &c.version,
                &c.aud,
                &c.scope,
                c.iat,
                c.exp,
                Some(c.jti.clone()),
            ),
        };
        if version != PROTOCOL_VERSION {
            return Err(ReceiveError::VersionUnsupported { index });
        }
        if *aud != self.organization || *scope != self.scope {
            return Err(ReceiveError::WrongRecipient { index });
        }
        if exp < iat {
            return Err(invalid());
        }
        if exp.saturating_sub(iat) > JWE_LIFETIME_SECONDS.saturating_add(self.skew) {
            return Err(ReceiveError::LifetimeTooLong { index });
        }
        if exp < now.saturating_sub(self.skew) {
            return Err(ReceiveError::Expired { index });
        }
        if iat > now.saturating_add(self.skew) {
            return Err(ReceiveError::NotYetValid { index });
        }
        let jti = match jti {
            Some(jti) if !jti.is_empty() && jti.len() <= MAX_JTI => jti,
            Some(_) => return Err(invalid()),
            None => format!("sha256:{}", hex::encode(Sha256::digest(jwe.as_bytes()))),
        };
        Ok(Opened { claims, jti, exp })
    }
}

/// Parses configured type codes.
pub fn parse_types(codes: &[String]) -> anyhow::Result<Vec<PseudonymType>> {
    codes
        .iter()
        .map(|code| {
            code.parse::<PseudonymType>()
                .map_err(|_| anyhow::anyhow!("allowed_types: unknown pseudonym type {code:?}"))
        })
        .collect()
}

fn parse_version(text: &str) -> Option<u32> {
    text.parse::<u32>().ok().filter(|v| *v > 0)
}

/// The evaluation of `ty` in the claims, with its key version.
fn evaluation_of(
    claims: &Claims,
    ty: PseudonymType,
    index: usize,
) -> Result<Evaluated<'_>, ReceiveError> {
    match claims {
        Claims::Eval(c) => {
            if c.pseudonym_type.as_deref().unwrap_or("B") != ty.code() {
                return Err(ReceiveError::TypeMismatch { index });
            }
            let key_version = match c.key_version {
                Some(0) => return Err(ReceiveError::InvalidClaims { index }),
                Some(v) => v,
                // The national service names no version: its `subject` is
                // the latest one, its `extra_versions` the older ones.
                None => c
                    .extra_versions
                    .keys()
                    .filter_map(|v| parse_version(v))
                    .max()
                    .map_or(1, |v| v.saturating_add(1)),
            };
            Ok(Evaluated {
                key_version,
                subject: &c.subject,
                extra_versions: &c.extra_versions,
            })
        }
        Claims::Record(c) => {
            if c.key_version == 0 {
                return Err(ReceiveError::InvalidClaims { index });
            }
            let mut found = c
                .evaluations
                .iter()
                .filter(|e| e.pseudonym_type == ty.code());
            let evaluation = found.next().ok_or(ReceiveError::TypeMismatch { index })?;
            if found.next().is_some() {
                return Err(ReceiveError::InvalidClaims { index });
            }
            Ok(Evaluated {
                key_version: c.key_version,
                subject: &evaluation.subject,
                extra_versions: &evaluation.extra_versions,
            })
        }
    }
}

fn decode_blind(text: &str, index: usize) -> Result<Blind, ReceiveError> {
    let bytes = zeroize::Zeroizing::new(
        encoding::decode_array::<32>(text).map_err(|_| ReceiveError::InvalidBlind { index })?,
    );
    Blind::from_bytes(&bytes).map_err(|_| ReceiveError::InvalidBlind { index })
}

/// `N = r⁻¹·Z` for an evaluated element in padded base64url, bare (as the
/// national service writes `extra_versions` values) or after
/// `pseudonym:eval:` (a `subject` without its prefix is refused earlier).
fn deblind(blind: &Blind, element: &str, index: usize) -> Result<[u8; 32], ReceiveError> {
    let invalid = || ReceiveError::InvalidEvaluation { index };
    let b64 = element.strip_prefix(SUBJECT_PREFIX).unwrap_or(element);
    let z = encoding::decode_array::<32>(b64).map_err(|_| invalid())?;
    oprf::unblind(blind, &z).map_err(|_| invalid())
}

/// The `data` checks: bounded, well-formed keys, no identifying field.
fn check_data(data: &BTreeMap<String, String>) -> Result<(), ReceiveError> {
    if data.len() > MAX_DATA_FIELDS {
        return Err(ReceiveError::TooManyFields);
    }
    for (key, value) in data {
        if key.is_empty()
            || key.len() > MAX_FIELD_NAME
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ReceiveError::InvalidFieldName);
        }
        if let Some(name) = identifying_name(key) {
            return Err(ReceiveError::IdentifyingField { name });
        }
        if value.chars().count() > MAX_FIELD_VALUE {
            return Err(ReceiveError::ValueTooLong);
        }
    }
    Ok(())
}

/// The identifying field name `key` is a spelling of: compared without case,
/// `_` and `-` (so `BSN`, `birth_name` and `birth-date` are caught too).
fn identifying_name(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let key = squash(key);
    IDENTIFYING_FIELD_NAMES
        .iter()
        .copied()
        .find(|name| squash(name) == key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn identifying_names_are_caught_in_any_spelling() {
        assert_eq!(identifying_name("bsn"), Some("bsn"));
        assert_eq!(identifying_name("BSN"), Some("bsn"));
        assert_eq!(identifying_name("birth_name"), Some("birthName"));
        assert_eq!(identifying_name("Birth-Date"), Some("birthDate"));
        assert_eq!(identifying_name("diagnosis"), None);
    }

    #[test]
    fn data_bounds() {
        let mut data = BTreeMap::new();
        data.insert("ok_field-1".to_owned(), "x".repeat(MAX_FIELD_VALUE));
        assert_eq!(check_data(&data), Ok(()));
        data.insert("long".to_owned(), "é".repeat(MAX_FIELD_VALUE + 1));
        assert_eq!(check_data(&data), Err(ReceiveError::ValueTooLong));
        let mut data = BTreeMap::new();
        data.insert("bad key".to_owned(), String::new());
        assert_eq!(check_data(&data), Err(ReceiveError::InvalidFieldName));
        let data: BTreeMap<String, String> = (0..=MAX_DATA_FIELDS)
            .map(|i| (format!("f{i}"), String::new()))
            .collect();
        assert_eq!(check_data(&data), Err(ReceiveError::TooManyFields));
    }
}
