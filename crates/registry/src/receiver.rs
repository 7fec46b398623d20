//! The registry receiver: checks a [`Submission`], decrypts and de-blinds its
//! temporary pseudonyms to definitive ones and stores the record.
//!
//! In order: the submission's envelope, shape, types (each allowed, every
//! required one present) and data ([`crate::submission`]); the JWEs open
//! and their claims pass ([`crate::claims`]); blind factors and evaluated
//! elements de-blind ([`crate::deblind`]). [`Receiver::from_config`]
//! ([`crate::load`]) builds a receiver from its configuration files.
//!
//! A submission has one of two shapes ([`Shape`]):
//! - **record**: the record JWE of `POST /v1/evaluate`, decrypted once, and
//!   one blind factor per type, encrypted to the registry
//!   (`encryptedBlindFactors`, whose `rec` must be the record JWE's digest,
//!   [`ReceiveError::BlindFactorsOfAnotherRecord`]); in the clear
//!   (`blindFactors`) only with [`Receiver::allowing_clear_blind_factors`]
//!   ([`ReceiveError::BlindFactorsNotEncrypted`]). A record is used whole:
//!   every evaluation in it has its blind factor
//!   ([`ReceiveError::PartialRecord`]) and every blind factor its evaluation
//!   ([`ReceiveError::TypeMismatch`]).
//! - **pseudonyms**: the national packaging, one JWE of `POST /oprf/eval`
//!   per type. A record JWE is refused there, and a single evaluation's JWE
//!   as a record ([`ReceiveError::WrongKind`]).
//!
//! RSA work is bounded: every JWE of a submission is checked (parts,
//! pinned `alg`, known `kid`, [`KeyRing::check`]) before the first RSA
//! decryption, and each is opened with exactly one key — at most two RSA
//! decryptions for the record shape (the blind factors, then the record),
//! one per type for the national shape.
//!
//! Before any time check, the JWEs' ids are looked up: a submission the
//! store already holds (the same JWEs, the same SHA-256 of the whole
//! submission) is a retry whose answer was lost, and gets the receipt of the
//! first time — even after its JWEs expired — without storing anything
//! again; a JWE of another stored submission is a replay
//! ([`ReceiveError::Replayed`]). Only then are the JWEs' times checked.
//!
//! The reversible pseudonym (`reversible`, type `R`) goes only with a record
//! and only to a registry that allows `R`; its shape is checked
//! ([`pseudoform_protocol::registry::ReversibleEnvelope::is_well_formed`]),
//! and its digest must be the `reversible` the TTP signed into the record's
//! claims ([`ReceiveError::ReversibleUnbound`]; claims that name one for a
//! submission without it: [`ReceiveError::ReversibleStripped`]). It is
//! stored opaque with those signed claims (the compact JWS), which the
//! provider's page checks before it opens it: the registry has no key to
//! open it, and cannot make or move one the page accepts. It is part of
//! the submission's digest, so a resend with another one is not the same
//! submission.
//!
//! Finally the record, its labels and the JWEs' ids are written in one
//! transaction; a JWE used before makes the whole submission fail
//! ([`ReceiveError::Replayed`]), unless it is the same submission stored a
//! moment before by a concurrent retry, which again gets its receipt.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use pseudoform_core::PseudonymType;
use pseudoform_protocol::package::TemporaryPseudonym;
use pseudoform_protocol::registry::{
    record_digest, BlindFactors, BlindFactorsPlaintext, Receipt, ReversibleEnvelope, Shape,
    Submission, SubmittedPseudonym, BLIND_FACTORS_CTY,
};
use pseudoform_protocol::unix_now;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::claims::{evaluation_of, refusal, Claims, Opened, Opener, DEFAULT_CLOCK_SKEW};
use crate::deblind::{decode_blind, labels};
use crate::error::{At, ReceiveError};
use crate::jwe::{Checked, JweAlg, KeyRing, SignatureKeys};
use crate::store::{
    BatchItem, NewPseudonym, NewRecord, NewReversible, Store, StoreError, Submitted, Trace, UsedJwe,
};
use crate::submission::{
    blind_factor_types, check_data, check_envelope, check_required, pseudonym_types,
};
use crate::submitter::SubmitterCheck;

/// What a submission's pseudonyms became: the labels to store, the current
/// label of each type for the receipt, the JWEs used, and the times of each
/// JWE opened (checked after the store was asked for a retry).
#[derive(Debug, Default)]
struct Deblinded {
    stored: Vec<NewPseudonym>,
    receipt: Vec<String>,
    used: BTreeMap<String, i64>,
    opened: Vec<(At, Opened)>,
    trace: Trace,
}

impl Deblinded {
    /// Adds the labels of one type.
    fn add(&mut self, of_type: Vec<NewPseudonym>) {
        self.receipt
            .extend(of_type.first().map(|current| current.label.clone()));
        self.stored.extend(of_type);
    }

    /// Marks the JWE opened at `at` as used until its `exp`.
    fn used(&mut self, opened: Opened, at: At) {
        if !opened.jti.starts_with("sha256:") {
            self.trace.ttp_jti = Some(match self.trace.ttp_jti.take() {
                Some(jtis) => format!("{jtis},{}", opened.jti),
                None => opened.jti.clone(),
            });
        }
        if self.trace.provider.is_none() {
            self.trace.provider.clone_from(&opened.provider);
        }
        let exp = self.used.entry(opened.jti.clone()).or_insert(opened.exp);
        *exp = (*exp).max(opened.exp);
        self.opened.push((at, opened));
    }
}

/// A submission that passed every check but its submitter proof, its
/// JWEs' times and the store: what [`Receiver::store_opened`] writes.
#[derive(Debug)]
pub(crate) struct OpenedSubmission {
    /// The submission as it came.
    pub(crate) submission: Submission,
    /// The hex SHA-256 of the whole submission (what makes a retry the same).
    digest: String,
    deblinded: Deblinded,
    reversible: Option<NewReversible>,
}

impl OpenedSubmission {
    /// The key each JWE's claims bind it to (`cnf.jkt`), if any.
    pub(crate) fn bound_keys(&self) -> Vec<Option<&str>> {
        self.deblinded
            .opened
            .iter()
            .map(|(_, opened)| crate::submitter::bound_key(&opened.claims))
            .collect()
    }

    /// The provider the TTP's signed claims name, if any.
    pub(crate) fn provider(&self) -> Option<&str> {
        self.deblinded.trace.provider.as_deref()
    }

    /// The current label of each type, as the receipt lists them.
    pub(crate) fn labels(&self) -> &[String] {
        &self.deblinded.receipt
    }
}

/// What storing an opened submission takes ([`Receiver::prepare_write`]).
#[derive(Debug)]
pub(crate) enum Write {
    /// The very same submission was stored before: its first receipt.
    Known(Receipt),
    /// A new record, checked, ready to write.
    New(Box<Pending>),
}

/// A record ready to write.
#[derive(Debug)]
pub(crate) struct Pending {
    submission: Submission,
    digest: String,
    deblinded: Deblinded,
    reversible: Option<NewReversible>,
    used: Vec<UsedJwe>,
}

impl Pending {
    /// Its receipt once stored as `record_id`.
    pub(crate) fn receipt(&self, record_id: i64) -> Receipt {
        Receipt {
            record_id,
            pseudonyms: self.deblinded.receipt.clone(),
        }
    }

    /// The ids of its JWEs.
    /// Its definitive pseudonyms' labels, as its receipt will name them.
    pub(crate) fn labels(&self) -> &[String] {
        &self.deblinded.receipt
    }

    fn jtis(&self) -> Vec<&str> {
        self.deblinded.used.keys().map(String::as_str).collect()
    }

    /// The record to write at `now` (with its batch item, if any).
    pub(crate) fn record<'a>(&'a self, now: i64, batch: Option<&'a BatchItem>) -> NewRecord<'a> {
        NewRecord {
            received_at: now,
            data: &self.submission.data,
            pseudonyms: &self.deblinded.stored,
            reversible: self.reversible.as_ref(),
            used: &self.used,
            trace: &self.deblinded.trace,
            digest: &self.digest,
            receipt: Box::new(move |id| {
                serde_json::to_string(&self.receipt(id)).unwrap_or_default()
            }),
            batch,
        }
    }
}

/// The reversible pseudonym to store with an opened record: the envelope
/// whose digest the TTP signed into the record's claims, with those signed
/// claims. An envelope the claims do not name (other, none, or claims
/// without a signature) is unbound; claims that name one the submission
/// does not carry make a partial record.
fn bind_reversible(
    envelope: Option<&ReversibleEnvelope>,
    deblinded: &Deblinded,
) -> Result<Option<NewReversible>, ReceiveError> {
    let signed = deblinded
        .opened
        .iter()
        .find_map(|(_, opened)| match &opened.claims {
            Claims::Record(claims) => Some((claims.reversible.as_deref(), opened.jws.as_deref())),
            Claims::Eval(_) => None,
        });
    let (named, jws) = signed.unwrap_or((None, None));
    match (envelope, named) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ReceiveError::ReversibleStripped),
        (Some(_), None) => Err(ReceiveError::ReversibleUnbound),
        (Some(envelope), Some(digest)) => {
            let jws = jws.ok_or(ReceiveError::ReversibleUnbound)?;
            if envelope.digest() != digest {
                return Err(ReceiveError::ReversibleUnbound);
            }
            Ok(Some(NewReversible {
                kid: envelope.kid.clone(),
                enc: envelope.enc.clone(),
                ct: envelope.ct.clone(),
                claims: jws.to_owned(),
            }))
        }
    }
}

/// Decrypted blind factors, overwritten when dropped.
struct Wiped(BlindFactorsPlaintext);

impl Drop for Wiped {
    fn drop(&mut self) {
        for blind in self.0.blind_factors.values_mut() {
            blind.zeroize();
        }
    }
}

/// The registry receiver. Cheap to share behind an [`Arc`].
#[derive(Debug)]
pub struct Receiver {
    opener: Opener,
    allowed: BTreeSet<PseudonymType>,
    required: BTreeSet<PseudonymType>,
    allow_clear_blind_factors: bool,
    allow_reversible: bool,
    require_reversible: bool,
    store: Arc<Store>,
    submitter: Option<SubmitterCheck>,
}

impl Receiver {
    /// A receiver for the registry `organization` (`oin:` + its OIN) and
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
        if let Err(rule) = pseudoform_protocol::recipient(organization, scope) {
            anyhow::bail!("{} must be {}", rule.field(), rule.rule());
        }
        anyhow::ensure!(!allowed_types.is_empty(), "allowed_types is empty");
        anyhow::ensure!(!keys.is_empty(), "no registry key is configured");
        Ok(Receiver {
            opener: Opener {
                organization: organization.to_owned(),
                scope: scope.to_owned(),
                keys,
                signature_keys: SignatureKeys::new(),
                accept_unsigned: false,
                ttp_alg: JweAlg::default(),
                skew: DEFAULT_CLOCK_SKEW,
            },
            allowed: allowed_types.iter().copied().collect(),
            required: BTreeSet::new(),
            allow_clear_blind_factors: false,
            allow_reversible: false,
            require_reversible: false,
            store,
            submitter: None,
        })
    }

    /// The same receiver refusing every record without all of `types`
    /// (`pseudonyms.requiredMissing`); each must be an allowed type.
    pub fn with_required_types(mut self, types: &[PseudonymType]) -> anyhow::Result<Self> {
        if let Some(ty) = types.iter().find(|t| !self.allowed.contains(t)) {
            anyhow::bail!("required_types: {ty} is not one of allowed_types");
        }
        self.required = types.iter().copied().collect();
        Ok(self)
    }

    /// The same receiver accepting (`allow`) the reversible pseudonym
    /// (`reversible`, type `R`) and, with `require`, refusing a record
    /// submission without one (`pseudonyms.requiredMissing`, field `R`).
    /// `require` without `allow` refuses every submission.
    pub fn with_reversible(mut self, allow: bool, require: bool) -> Self {
        self.allow_reversible = allow;
        self.require_reversible = require;
        self
    }

    /// Whether this receiver accepts the reversible pseudonym.
    pub fn allows_reversible(&self) -> bool {
        self.allow_reversible
    }

    /// The types every record must have.
    pub fn required_types(&self) -> impl Iterator<Item = PseudonymType> + '_ {
        self.required.iter().copied()
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

    /// The same receiver expecting the TTP's JWEs with `alg` (the default
    /// `RSA-OAEP-256`; `RSA-OAEP` for the national service). The blind
    /// factors' JWE is always `RSA-OAEP-256`.
    pub fn with_ttp_alg(mut self, alg: JweAlg) -> Self {
        self.opener.ttp_alg = alg;
        self
    }

    /// The same receiver accepting (`true`) or refusing (`false`, the
    /// default) `blindFactors` in the clear. DEVELOPMENT ONLY: a capture
    /// of the form's traffic with clear blind factors identifies the
    /// patient (`r⁻¹·B` is an unkeyed hash of the identity).
    pub fn allowing_clear_blind_factors(mut self, allow: bool) -> Self {
        self.allow_clear_blind_factors = allow;
        self
    }

    /// RSA decryptions this receiver has tried so far.
    pub fn rsa_decryptions(&self) -> u64 {
        self.opener.keys.decryptions()
    }

    /// The same receiver with another allowed clock skew (seconds, ≥ 0).
    pub fn with_clock_skew(mut self, seconds: i64) -> Self {
        self.opener.skew = seconds.max(0);
        self
    }

    /// The same receiver checking every submission's submitter proof with
    /// `check` ([`crate::submitter`]); without one (the default of
    /// [`Receiver::new`]) none is checked. [`Receiver::from_config`] always
    /// sets one.
    pub fn with_submitter_check(mut self, check: SubmitterCheck) -> Self {
        self.submitter = Some(check);
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

    /// The `kid`s (RFC 7638 thumbprints) of the pinned TTP signing keys.
    pub fn ttp_signing_kids(&self) -> Vec<&str> {
        self.opener.signature_keys.kids()
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
        self.receive_proved(submission, None, now)
    }

    /// [`Receiver::receive_at`] with the request's submitter proof (its
    /// `DPoP` header), checked after the JWEs open (their claims name the
    /// key) and before a resend is answered or anything is stored.
    pub fn receive_proved(
        &self,
        submission: Submission,
        proof: Option<&str>,
        now: i64,
    ) -> Result<Receipt, ReceiveError> {
        let opened = self.open_submission(submission)?;
        if let Some(check) = &self.submitter {
            check
                .check(
                    &opened.bound_keys(),
                    proof,
                    &crate::submitter::rec_of(&opened.submission),
                    now,
                )
                .map_err(ReceiveError::Submitter)?;
        }
        self.store_opened(opened, now).map(|(receipt, _)| receipt)
    }

    /// The submitter check of this receiver, if it has one.
    pub(crate) fn submitter(&self) -> Option<&SubmitterCheck> {
        self.submitter.as_ref()
    }

    /// The checks of a submission up to its submitter proof: envelope,
    /// shape, types, data, its JWEs opened and de-blinded, its reversible
    /// pseudonym bound. Nothing is stored.
    pub(crate) fn open_submission(
        &self,
        submission: Submission,
    ) -> Result<OpenedSubmission, ReceiveError> {
        // What makes a retry the same submission: all of it.
        let digest = serde_json::to_vec(&submission)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .map_err(|_| ReceiveError::Storage)?;
        check_envelope(&submission, self.organization(), self.scope())?;
        let shape = submission
            .shape()
            .map_err(|e| ReceiveError::Shape { field: e.field })?;
        let envelope = self.reversible_of(&submission, &shape)?;
        let deblinded = match shape {
            Shape::Record {
                record,
                blind_factors: BlindFactors::Encrypted(encrypted),
            } => {
                check_data(&submission.data)?;
                // Both JWEs pass every check before the first RSA.
                let record_jwe = self.opener.check(record, At::Record)?;
                let blinds_jwe = self
                    .opener
                    .keys
                    .check(encrypted, JweAlg::RsaOaep256)
                    .map_err(|e| refusal(e, At::EncryptedBlindFactors))?;
                if blinds_jwe.cty() != Some(BLIND_FACTORS_CTY) {
                    return Err(ReceiveError::BlindFactorsMalformed);
                }
                let plaintext = self
                    .opener
                    .keys
                    .open(&blinds_jwe)
                    .map_err(|e| refusal(e, At::EncryptedBlindFactors))?;
                let plaintext = Wiped(
                    serde_json::from_slice::<BlindFactorsPlaintext>(&plaintext)
                        .map_err(|_| ReceiveError::BlindFactorsMalformed)?,
                );
                let plaintext = &plaintext.0;
                if plaintext.rec != record_digest(record) {
                    return Err(ReceiveError::BlindFactorsOfAnotherRecord);
                }
                let blinds = blind_factor_types(&plaintext.blind_factors, &self.allowed)?;
                check_required(blinds.keys().copied(), &self.required)?;
                self.open_record(&record_jwe, &blinds)?
            }
            Shape::Record {
                record,
                blind_factors: BlindFactors::Clear(blind_factors),
            } => {
                if !self.allow_clear_blind_factors {
                    return Err(ReceiveError::BlindFactorsNotEncrypted);
                }
                let blinds = blind_factor_types(blind_factors, &self.allowed)?;
                check_required(blinds.keys().copied(), &self.required)?;
                check_data(&submission.data)?;
                let record_jwe = self.opener.check(record, At::Record)?;
                self.open_record(&record_jwe, &blinds)?
            }
            Shape::Pseudonyms(pseudonyms) => {
                let types = pseudonym_types(pseudonyms, &self.allowed)?;
                check_required(types.iter().copied(), &self.required)?;
                check_data(&submission.data)?;
                self.open_pseudonyms(pseudonyms, &types)?
            }
        };

        let reversible = bind_reversible(envelope, &deblinded)?;
        Ok(OpenedSubmission {
            submission,
            digest,
            deblinded,
            reversible,
        })
    }

    /// Stores an opened submission whose submitter proof passed, at `now`
    /// ([`Receiver::prepare_write`], then one transaction). The receipt,
    /// and whether it was stored now (`true`) or before.
    pub(crate) fn store_opened(
        &self,
        opened: OpenedSubmission,
        now: i64,
    ) -> Result<(Receipt, bool), ReceiveError> {
        match self.prepare_write(opened, now)? {
            Write::Known(receipt) => Ok((receipt, false)),
            Write::New(pending) => self.write_pending(&pending, now, None),
        }
    }

    /// Writes one checked record (with its batch item, if any) in a
    /// transaction of its own: its receipt and `true`, or, if a concurrent
    /// retry stored it first, that first receipt and `false`.
    pub(crate) fn write_pending(
        &self,
        pending: &Pending,
        now: i64,
        batch: Option<&BatchItem>,
    ) -> Result<(Receipt, bool), ReceiveError> {
        match self
            .store
            .insert_records(vec![pending.record(now, batch)], self.purge_before(now))
        {
            Ok(ids) => {
                let id = ids.first().copied().ok_or(ReceiveError::Storage)?;
                Ok((pending.receipt(id), true))
            }
            // A concurrent retry of the same submission stored it first.
            Err(StoreError::Replayed) => self
                .stored_receipt(&pending.jtis(), &pending.digest)?
                .map(|receipt| (receipt, false))
                .ok_or(ReceiveError::Replayed),
            Err(err) => {
                tracing::error!(error = %err, "storing a record failed");
                Err(ReceiveError::Storage)
            }
        }
    }

    /// Used JWEs that expired before this time are forgotten.
    pub(crate) fn purge_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.opener.skew).saturating_sub(60)
    }

    /// What storing an opened submission at `now` takes: a retry of a
    /// stored submission is answered its first receipt, whatever the time
    /// ([`Write::Known`]); otherwise the JWEs' times are checked and the
    /// record is ready to write ([`Write::New`]).
    pub(crate) fn prepare_write(
        &self,
        opened: OpenedSubmission,
        now: i64,
    ) -> Result<Write, ReceiveError> {
        let OpenedSubmission {
            submission,
            digest,
            deblinded,
            reversible,
        } = opened;
        let jtis: Vec<&str> = deblinded.used.keys().map(String::as_str).collect();
        if let Some(receipt) = self.stored_receipt(&jtis, &digest)? {
            return Ok(Write::Known(receipt));
        }
        for (at, opened) in &deblinded.opened {
            self.opener.check_time(opened, now, *at)?;
        }
        let used: Vec<UsedJwe> = deblinded
            .used
            .iter()
            .map(|(jti, expires_at)| UsedJwe {
                jti: jti.clone(),
                expires_at: *expires_at,
            })
            .collect();
        Ok(Write::New(Box::new(Pending {
            submission,
            digest,
            deblinded,
            reversible,
            used,
        })))
    }

    /// The reversible pseudonym of the submission: allowed here,
    /// well-formed, present if required. The national packaging has none
    /// ([`Submission::shape`] refuses one there). Its binding to the record
    /// is checked once the record is open ([`bind_reversible`]).
    fn reversible_of<'s>(
        &self,
        submission: &'s Submission,
        shape: &Shape<'_>,
    ) -> Result<Option<&'s ReversibleEnvelope>, ReceiveError> {
        let Some(envelope) = &submission.reversible else {
            // The national packaging cannot carry one: a registry that
            // requires `R` takes record submissions only.
            return if self.require_reversible {
                Err(ReceiveError::ReversibleMissing)
            } else {
                Ok(None)
            };
        };
        if !self.allow_reversible {
            return Err(ReceiveError::ReversibleNotAllowed);
        }
        if !envelope.is_well_formed() {
            return Err(ReceiveError::ReversibleMalformed);
        }
        if !matches!(shape, Shape::Record { .. }) {
            return Err(ReceiveError::Shape {
                field: "reversible",
            });
        }
        Ok(Some(envelope))
    }

    /// The record shape: one record JWE, used whole, and the blind factor
    /// of each of its evaluations. Labels in the record's order.
    fn open_record(
        &self,
        record: &Checked<'_>,
        blinds: &BTreeMap<PseudonymType, &str>,
    ) -> Result<Deblinded, ReceiveError> {
        let opened = self.opener.open(record, At::Record)?;
        let Claims::Record(claims) = &opened.claims else {
            return Err(ReceiveError::WrongKind { at: At::Record });
        };
        let mut out = Deblinded::default();
        let mut seen = BTreeSet::new();
        for evaluation in &claims.evaluations {
            let ty: PseudonymType = evaluation
                .pseudonym_type
                .parse()
                .map_err(|_| ReceiveError::InvalidClaims { at: At::Record })?;
            if !seen.insert(ty) {
                return Err(ReceiveError::InvalidClaims { at: At::Record });
            }
            let blind = blinds.get(&ty).ok_or(ReceiveError::PartialRecord { ty })?;
            let at = At::BlindFactor(ty);
            let evaluated = evaluation_of(&opened.claims, ty, at)?;
            out.add(labels(ty, &evaluated, &decode_blind(blind, at)?, at)?);
        }
        if let Some(ty) = blinds.keys().find(|ty| !seen.contains(ty)) {
            return Err(ReceiveError::TypeMismatch {
                at: At::BlindFactor(*ty),
            });
        }
        out.used(opened, At::Record);
        Ok(out)
    }

    /// The national packaging: one JWE of a single evaluation per type.
    fn open_pseudonyms(
        &self,
        pseudonyms: &[SubmittedPseudonym],
        types: &[PseudonymType],
    ) -> Result<Deblinded, ReceiveError> {
        let packages = pseudonyms
            .iter()
            .enumerate()
            .map(|(index, item)| {
                TemporaryPseudonym::decode(&item.temporary_pseudonym).map_err(|_| {
                    ReceiveError::MalformedPseudonym {
                        at: At::Pseudonym(index),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Every JWE passes every check before the first RSA.
        let checked = packages
            .iter()
            .enumerate()
            .map(|(index, package)| {
                self.opener
                    .check(&package.evaluated_output, At::Pseudonym(index))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Deblinded::default();
        for (index, ((package, ty), jwe)) in packages.iter().zip(types).zip(&checked).enumerate() {
            let at = At::Pseudonym(index);
            let opened = self.opener.open(jwe, at)?;
            if opened.is_record() {
                return Err(ReceiveError::WrongKind { at });
            }
            let evaluated = evaluation_of(&opened.claims, *ty, at)?;
            let blind = decode_blind(&package.blind_factor, at)?;
            out.add(labels(*ty, &evaluated, &blind, at)?);
            out.used(opened, at);
        }
        Ok(out)
    }
}
