//! The registry receiver: checks a [`Submission`], decrypts and de-blinds its
//! temporary pseudonyms to definitive ones and stores the record.
//!
//! In order: the submission's envelope, types and data
//! ([`crate::submission`]); each temporary pseudonym's package decodes; its
//! JWE opens and its claims pass ([`crate::claims`]); its blind factor and
//! evaluated element de-blind ([`crate::deblind`]). [`Receiver::from_config`]
//! ([`crate::load`]) builds a receiver from its configuration files.
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

use pseudoform_core::PseudonymType;
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{Receipt, Submission};
use pseudoform_protocol::{unix_now, OIN_DIGITS};

use crate::claims::{evaluation_of, Opened, Opener, DEFAULT_CLOCK_SKEW};
use crate::deblind::{decode_blind, labels};
use crate::error::ReceiveError;
use crate::jwe::{KeyRing, SignatureKeys};
use crate::store::{NewPseudonym, Store, StoreError, UsedJwe};
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

    /// [`Receiver::receive`] at a given time (seconds since the Unix epoch).
    pub fn receive_at(&self, submission: Submission, now: i64) -> Result<Receipt, ReceiveError> {
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
        let mut opened: HashMap<&str, Opened> = HashMap::new();
        let mut stored: Vec<NewPseudonym> = Vec::new();
        let mut receipt_labels: Vec<String> = Vec::new();
        for (index, (package, ty)) in packages.iter().zip(&types).enumerate() {
            let jwe = package.evaluated_output.as_str();
            if !opened.contains_key(jwe) {
                let o = self.opener.open(jwe, now, index)?;
                // A record JWE is one patient's record: no pseudonym of
                // another JWE may join it, and it may join no other.
                if opened
                    .values()
                    .any(|p| (p.is_record() || o.is_record()) && p.jti != o.jti)
                {
                    return Err(ReceiveError::MixedRecords { index });
                }
                opened.insert(jwe, o);
            }
            let o = opened.get(jwe).ok_or(ReceiveError::Storage)?;
            let evaluated = evaluation_of(&o.claims, *ty, index)?;
            let blind = decode_blind(&package.blind_factor, index)?;
            let of_this = labels(*ty, &evaluated, &blind, index)?;
            receipt_labels.extend(of_this.first().map(|current| current.label.clone()));
            stored.extend(of_this);
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

        let purge_before = now.saturating_sub(self.opener.skew).saturating_sub(60);
        match self
            .store
            .insert_record(now, &submission.data, &stored, &used, purge_before)
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
}
