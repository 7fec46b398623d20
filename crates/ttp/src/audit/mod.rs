//! The audit log: who asked what of which recipient, and what they got —
//! **never** an input or output element, and only names the configuration
//! knows (an unknown recipient is written as empty, so nothing a caller
//! typed ends up in the log).
//!
//! - An **accepted** request gets its own row: time, endpoint, caller
//!   (client id), provider, acting person, the credential (the access
//!   token's `jti`), the `jti` of what was issued (the JWE, or the access
//!   token of `/v1/token`), recipient, pseudonym types with counts, the
//!   total, key versions, status and outcome. It is answered only once its
//!   row is committed.
//! - **Refusals** are aggregated: one row per minute, endpoint, caller (or
//!   none), status and outcome, with a count — so junk traffic grows the
//!   database by a bounded amount. Counts of the running minute that a
//!   crash interrupts are lost.
//! - Rows form a SHA-256 chain ([`chain`]); every commit appends a
//!   **signed head** (`ES256` by the TTP's signing key over the last row's
//!   id and hash) in the same transaction. [`chain::verify`] checks the
//!   chain against the heads with the public key only, so a rewritten and
//!   recomputed chain is detected; [`chain::export`] writes rows and heads
//!   for an auditor. Triggers refuse `UPDATE` and `DELETE`.
//!
//! Rows are written by one thread ([`writer`]) that commits whatever is
//! queued in one transaction (group commit). A request handler fills in an
//! [`AuditDraft`] as it learns who asks what, and finishes it into the row.

pub mod chain;
pub mod writer;

use std::collections::BTreeMap;

pub use writer::{open, AuditLog};

use crate::access::Principal;

/// One audited request, or (`count` > 1, or a refusal) an aggregate of
/// refusals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// Milliseconds since the Unix epoch (of an aggregate: its minute's start).
    pub time_ms: i64,
    /// The endpoint path (`/oprf/eval`, `/v1/evaluate`, `/v1/rekey`, `/v1/token`).
    pub endpoint: String,
    /// The caller's client id; empty when not authenticated.
    pub caller: String,
    /// The provider evaluations were made for.
    pub provider: String,
    /// The acting person (browser tokens).
    pub person: String,
    /// The `jti` of the access token presented.
    pub credential: String,
    /// The `jti` of what was issued: the JWE (of a batch, record `i` has
    /// `{jti}-{i}`), or the access token.
    pub jti: String,
    /// The configured recipient organisation; empty when unknown.
    pub organization: String,
    /// The configured recipient scope; empty when unknown.
    pub scope: String,
    /// Evaluations per pseudonym type code (rekey: `rekey`).
    pub types: BTreeMap<String, u64>,
    /// Total evaluations.
    pub total: u64,
    /// Key versions used (current first).
    pub key_versions: Vec<u32>,
    /// HTTP status of the answer.
    pub status: u16,
    /// `ok`, or the error code of the answer.
    pub outcome: String,
    /// How many requests the row stands for (1, or an aggregate's count).
    pub count: u64,
}

/// What the audit row of a request will say, filled in as it is handled:
/// only what the configuration or the credential knows, never a value
/// from the request itself.
#[derive(Debug)]
pub struct AuditDraft {
    event: AuditEvent,
}

impl AuditDraft {
    /// A draft for a request to `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        AuditDraft {
            event: AuditEvent {
                endpoint: endpoint.into(),
                count: 1,
                ..AuditEvent::default()
            },
        }
    }

    /// The endpoint of the request.
    pub fn endpoint(&self) -> &str {
        &self.event.endpoint
    }

    /// The authenticated caller's client id.
    pub fn caller(&mut self, id: &str) {
        self.event.caller = id.to_owned();
    }

    /// The caller's client id so far (empty when not authenticated).
    pub fn caller_id(&self) -> &str {
        &self.event.caller
    }

    /// Everything the credential says: caller, provider, person, token.
    pub fn principal(&mut self, p: &Principal) {
        self.event.caller = p.caller.id().to_owned();
        self.event.provider = p.provider.clone().unwrap_or_default();
        self.event.person = p.person.clone().unwrap_or_default();
        self.event.credential = p.token_jti.clone().unwrap_or_default();
    }

    /// The provider and person of a token being issued.
    pub fn issued_for(&mut self, provider: Option<&str>, person: Option<&str>) {
        self.event.provider = provider.unwrap_or_default().to_owned();
        self.event.person = person.unwrap_or_default().to_owned();
    }

    /// The configured recipient.
    pub fn recipient(&mut self, organization: &str, scope: &str) {
        self.event.organization = organization.to_owned();
        self.event.scope = scope.to_owned();
    }

    /// The `jti` of what the request was issued.
    pub fn jti(&mut self, jti: &str) {
        self.event.jti = jti.to_owned();
    }

    /// `n` more evaluations of the type with code `label` (`rekey` for rekeying).
    pub fn count(&mut self, label: &str, n: u64) {
        *self.event.types.entry(label.to_owned()).or_insert(0) += n;
        self.event.total += n;
    }

    /// The row so far (for the security events of the request).
    pub fn so_far(&self) -> &AuditEvent {
        &self.event
    }

    /// The evaluations counted so far.
    pub fn total(&self) -> u64 {
        self.event.total
    }

    /// The key versions used, current first.
    pub fn key_versions(&mut self, versions: Vec<u32>) {
        self.event.key_versions = versions;
    }

    /// The row: the draft with the time, the HTTP status and the outcome
    /// (`ok` or the error code).
    pub fn finish(mut self, status: u16, outcome: &str) -> AuditEvent {
        self.event.time_ms = pseudoform_protocol::unix_now_millis();
        self.event.status = status;
        self.event.outcome = outcome.to_owned();
        self.event
    }
}
