//! The registry receiver: checks a [`Submission`], decrypts and de-blinds its
//! temporary pseudonyms to definitive ones and stores the record.
//!
//! In order: the submission's envelope, types and data
//! ([`crate::submission`]); each temporary pseudonym's package decodes; its
//! JWE opens and its claims pass ([`crate::claims`]); its blind factor and
//! evaluated element de-blind ([`crate::deblind`]). [`Receiver::from_config`]
//! ([`crate::load`]) builds a receiver from its configuration files.
//!
//! Before any time check, the JWEs' ids are looked up: a submission the
//! store already holds (the same JWEs, the same SHA-256 of the whole
//! submission) is a retry whose answer was lost, and gets the receipt of the
//! first time — even after its JWEs expired — without storing anything
//! again; a JWE of another stored submission is a replay
//! ([`ReceiveError::Replayed`]). Only then are the JWEs' times checked.
//!
//! Finally the record, its labels and the JWEs' ids are written in one
//! transaction; a JWE used before makes the whole submission fail
//! ([`ReceiveError::Replayed`]), unless it is the same submission stored
//! a moment before by a concurrent retry, which again gets its receipt. Several pseudonyms of one submission may
//! share one record JWE: that is what a batch evaluation produces. A record
//! JWE is one patient's record: when one pseudonym comes from a record JWE,
//! all of them must come from that one ([`ReceiveError::MixedRecords`]).
//! Single evaluations (`/oprf/eval`) are one JWE per pseudonym.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use pseudoform_core::PseudonymType;
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{Receipt, Submission};
use pseudoform_protocol::{unix_now, OIN_DIGITS};
use sha2::{Digest, Sha256};

use crate::claims::{evaluation_of, Opened, Opener, DEFAULT_CLOCK_SKEW};
use crate::deblind::{decode_blind, labels};
use crate::error::ReceiveError;
use crate::jwe::{KeyRing, SignatureKeys};
use crate::store::{NewPseudonym, Store, StoreError, Submitted, UsedJwe};
use crate::submission::{check_data, check_envelope, check_types};

/// The registry receiver. Cheap to share behind an [`Arc`].
#[derive(Debug)]
pub struct Receiver {
    opener: Opener,
    allowed: BTreeSet<PseudonymType>,
    store: Arc<Store>,
}

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
            pseudoform_protocol::is_oin(organization),
            "recipient_organization must be oin: followed by {OIN_DIGITS} digits"
        );
        pseudoform_core::Recipient::new(organization, scope)
            .map_err(|_| anyhow::anyhow!("recipient_scope is invalid"))?;
        anyhow::ensure!(!allowed_types.is_empty(), "allowed_types is empty");
        anyhow::ensure!(!keys.is_empty(), "no registry key is configured");
        Ok(Receiver {
            opener: Opener {
                organization: organization.to_owned(),
                scope: scope.to_owned(),
                keys,
                signature_keys: SignatureKeys::new(),
                accept_unsigned: false,
                skew: DEFAULT_CLOCK_SKEW,
            },
            allowed: allowed_types.iter().copied().collect(),
            store,
        })
    }

    /// The same receiver verifying the claims' signatures with `keys`, the
    /// TTP's pinned public signing keys.
    pub fn with_ttp_signing_keys(mut self, keys: SignatureKeys) -> Self {
        self.opener.signature_keys = keys;
        self
    }

    /// The same receiver accepting (`true`) or refusing (`false`, the
    /// default) JWEs whose claims are not signed. Only for a TTP that does
    /// not sign: anybody with the registry's public key can make them.
    pub fn accepting_unsigned(mut self, accept: bool) -> Self {
        self.opener.accept_unsigned = accept;
        self
    }

    /// The same receiver with another allowed clock skew (seconds, ≥ 0).
    pub fn with_clock_skew(mut self, seconds: i64) -> Self {
        self.opener.skew = seconds.max(0);
        self
    }

    /// The store the receiver writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The registry's organisation.
    pub fn organization(&self) -> &str {
        &self.opener.organization
    }

    /// The registry's scope.
    pub fn scope(&self) -> &str {
        &self.opener.scope
    }

    /// The `kid`s of the registry's keys.
    pub fn kids(&self) -> Vec<&str> {
        self.opener.keys.kids()
    }

    /// Checks, de-blinds and stores a submission now.
    pub fn receive(&self, submission: Submission) -> Result<Receipt, ReceiveError> {
        self.receive_at(submission, unix_now())
    }

    /// The receipt a stored submission was answered, if `jtis` and
    /// `digest` are one the store holds; a replay error if they clash with
    /// a stored one; `None` if it is new.
    fn stored_receipt(&self, jtis: &[&str], digest: &str) -> Result<Option<Receipt>, ReceiveError> {
        let known = self.store.submitted(jtis, digest).map_err(|err| {
            tracing::error!(error = %err, "reading the submitted JWEs failed");
            ReceiveError::Storage
        })?;
        match known {
            Submitted::New => Ok(None),
            Submitted::Conflict => Err(ReceiveError::Replayed),
            Submitted::Stored(json) => serde_json::from_str(&json).map(Some).map_err(|_| {
                tracing::error!("a stored receipt is damaged");
                ReceiveError::Storage
            }),
        }
    }

    /// [`Receiver::receive`] at a given time (seconds since the Unix epoch).
    pub fn receive_at(&self, submission: Submission, now: i64) -> Result<Receipt, ReceiveError> {
        // What makes a retry the same submission: all of it.
        let digest = serde_json::to_vec(&submission)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .map_err(|_| ReceiveError::Storage)?;
        check_envelope(&submission, self.organization(), self.scope())?;
        let types = check_types(&submission, &self.allowed)?;
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
        let mut opened: HashMap<&str, (usize, Opened)> = HashMap::new();
        for (index, package) in packages.iter().enumerate() {
            let jwe = package.evaluated_output.as_str();
            if !opened.contains_key(jwe) {
                let o = self.opener.open(jwe, index)?;
                // A record JWE is one patient's record: no pseudonym of
                // another JWE may join it, and it may join no other.
                if opened
                    .values()
                    .any(|(_, p)| (p.is_record() || o.is_record()) && p.jti != o.jti)
                {
                    return Err(ReceiveError::MixedRecords { index });
                }
                opened.insert(jwe, (index, o));
            }
        }

        // A retry of a stored submission, whatever the time: its receipt.
        let mut jtis: Vec<&str> = opened.values().map(|(_, o)| o.jti.as_str()).collect();
        jtis.sort_unstable();
        jtis.dedup();
        if let Some(receipt) = self.stored_receipt(&jtis, &digest)? {
            return Ok(receipt);
        }
        let mut first_use: Vec<&(usize, Opened)> = opened.values().collect();
        first_use.sort_by_key(|(index, _)| *index);
        for (index, o) in first_use {
            self.opener.check_time(o, now, *index)?;
        }

        let mut stored: Vec<NewPseudonym> = Vec::new();
        let mut receipt_labels: Vec<String> = Vec::new();
        for (index, (package, ty)) in packages.iter().zip(&types).enumerate() {
            let jwe = package.evaluated_output.as_str();
            let (_, o) = opened.get(jwe).ok_or(ReceiveError::Storage)?;
            let evaluated = evaluation_of(&o.claims, *ty, index)?;
            let blind = decode_blind(&package.blind_factor, index)?;
            let of_this = labels(*ty, &evaluated, &blind, index)?;
            receipt_labels.extend(of_this.first().map(|current| current.label.clone()));
            stored.extend(of_this);
        }

        let mut used: BTreeMap<&str, i64> = BTreeMap::new();
        for (_, o) in opened.values() {
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

        let purge_before = now.saturating_sub(self.opener.skew).saturating_sub(60);
        let receipt_of = |record_id| Receipt {
            record_id,
            pseudonyms: receipt_labels.clone(),
        };
        let receipt_json =
            |record_id| serde_json::to_string(&receipt_of(record_id)).unwrap_or_default();
        match self.store.insert_record(
            now,
            &submission.data,
            &stored,
            &used,
            purge_before,
            &digest,
            receipt_json,
        ) {
            Ok(record_id) => Ok(receipt_of(record_id)),
            // A concurrent retry of the same submission stored it first.
            Err(StoreError::Replayed) => self
                .stored_receipt(&jtis, &digest)?
                .ok_or(ReceiveError::Replayed),
            Err(err) => {
                tracing::error!(error = %err, "storing a record failed");
                Err(ReceiveError::Storage)
            }
        }
    }
}
