//! Security events: one structured record per event on the tracing target
//! `security`, for a SIEM, in the manner of the national reference
//! service's `PRS-OPRF-*` events. Each has a stable code and names the
//! parties involved (client, provider, acting person, recipient) and, for
//! a budget, its dimension and window — never an element or a token.
//!
//! | code | level | when |
//! |---|---|---|
//! | `TTP-TOKEN-ISSUED` | info | an access token was issued |
//! | `TTP-TOKEN-REFUSED` | warn | a known client's token request was refused |
//! | `TTP-AUTH-REFUSED` | warn | a request with a token of a known client was refused (expired, wrong key, bad proof) |
//! | `TTP-REPLAY-DETECTED` | warn | a client assertion, subject token or DPoP proof came a second time |
//! | `TTP-ROLE-VIOLATION` | warn | a caller asked what its role never allows (a recipient asking to evaluate) |
//! | `TTP-BUDGET-EXCEEDED` | warn | a budget refused evaluations (429) |
//!
//! The evaluations themselves have the national service's events, by its
//! codes and field names ([`OprfEvent`], [`emit_oprf`]):
//!
//! | code | level | when | fields |
//! |---|---|---|---|
//! | `PRS-OPRF-001` | info | an evaluation was answered | `handelende_oin`, `namens_oin`, `doel_oin`, `oprf_secret_versie`, `ontvanger_pubkey_id` |
//! | `PRS-OPRF-003` | error | an evaluation failed | `handelende_oin`, `namens_oin`, `doel_oin`, `error_type` (`invalid_blinded_input`, `crypto_evaluation_failure`), `endpoint` |
//! | `PRS-OPRF-004` | warn | no recipient (so no public key) for the organisation and scope asked | `handelende_oin`, `namens_oin`, `doel_oin` (empty: never a value the caller typed), `endpoint` |
//!
//! `handelende_oin` is the acting party (the caller's client id: an `oin:`
//! of a processor, or a provider's `ura:` where it acts itself),
//! `namens_oin` the provider it acts for (from the credential), plus
//! pseudoform's `persoon`, the acting person of a browser token. The
//! request's span carries its `request_id`, `correlation_id` and
//! `client_trace_id`.
//!
//! Unauthenticated junk gets no event of its own: it is counted in the
//! audit log's aggregated refusals.

/// A security event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An access token was issued.
    TokenIssued,
    /// A known client's token request was refused.
    TokenRefused,
    /// A request with a known client's token was refused.
    AuthRefused,
    /// A single-use id came again.
    ReplayDetected,
    /// A caller asked what its role never allows.
    RoleViolation,
    /// A budget refused evaluations.
    BudgetExceeded,
}

impl Event {
    /// The event's stable code.
    pub const fn code(self) -> &'static str {
        match self {
            Event::TokenIssued => "TTP-TOKEN-ISSUED",
            Event::TokenRefused => "TTP-TOKEN-REFUSED",
            Event::AuthRefused => "TTP-AUTH-REFUSED",
            Event::ReplayDetected => "TTP-REPLAY-DETECTED",
            Event::RoleViolation => "TTP-ROLE-VIOLATION",
            Event::BudgetExceeded => "TTP-BUDGET-EXCEEDED",
        }
    }
}

/// Who and what an event is about; empty where unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// The endpoint.
    pub endpoint: &'a str,
    /// The client id.
    pub client: &'a str,
    /// The provider.
    pub provider: &'a str,
    /// The acting person.
    pub person: &'a str,
    /// The recipient, `organization/scope`.
    pub recipient: &'a str,
    /// The outcome code of the answer.
    pub outcome: &'a str,
    /// A budget's dimension.
    pub dimension: &'a str,
    /// A budget's window.
    pub window: &'a str,
}

/// Emits `event` about `s`.
pub fn emit(event: Event, s: &Subject<'_>) {
    macro_rules! record {
        ($level:ident) => {
            tracing::$level!(
                target: "security",
                event = event.code(),
                endpoint = s.endpoint,
                client = s.client,
                provider = s.provider,
                person = s.person,
                recipient = s.recipient,
                outcome = s.outcome,
                dimension = s.dimension,
                window = s.window,
                "security event"
            )
        };
    }
    match event {
        Event::TokenIssued => record!(info),
        _ => record!(warn),
    }
}

/// An evaluation event, by the national service's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OprfEvent {
    /// `PRS-OPRF-001`: an evaluation was answered.
    EvalOk,
    /// `PRS-OPRF-003`: an evaluation failed.
    EvalFailed,
    /// `PRS-OPRF-004`: no recipient, so no public key, for what was asked.
    NoRecipientKey,
}

impl OprfEvent {
    /// The national event code.
    pub const fn code(self) -> &'static str {
        match self {
            OprfEvent::EvalOk => "PRS-OPRF-001",
            OprfEvent::EvalFailed => "PRS-OPRF-003",
            OprfEvent::NoRecipientKey => "PRS-OPRF-004",
        }
    }
}

/// What an evaluation event names; empty where unknown.
#[derive(Clone, Copy, Debug, Default)]
pub struct OprfSubject<'a> {
    /// The endpoint.
    pub endpoint: &'a str,
    /// `handelende_oin`: the acting party, the caller's client id.
    pub acting: &'a str,
    /// `namens_oin`: the provider it acts for.
    pub on_behalf_of: &'a str,
    /// `persoon`: the acting person (browser tokens).
    pub person: &'a str,
    /// `doel_oin`: the configured recipient organisation.
    pub target: &'a str,
    /// `oprf_secret_versie`: the current key version used.
    pub key_version: Option<u32>,
    /// `ontvanger_pubkey_id`: the `kid` of the recipient's key.
    pub recipient_kid: &'a str,
    /// `error_type` of a failure.
    pub error_type: &'a str,
}

/// Emits the evaluation event `event` about `s`.
pub fn emit_oprf(event: OprfEvent, s: &OprfSubject<'_>) {
    match event {
        OprfEvent::EvalOk => tracing::info!(
            target: "security",
            event = event.code(),
            handelende_oin = s.acting,
            namens_oin = s.on_behalf_of,
            persoon = s.person,
            doel_oin = s.target,
            oprf_secret_versie = s.key_version,
            ontvanger_pubkey_id = s.recipient_kid,
            "OPRF evaluation answered"
        ),
        OprfEvent::EvalFailed => tracing::error!(
            target: "security",
            event = event.code(),
            handelende_oin = s.acting,
            namens_oin = s.on_behalf_of,
            persoon = s.person,
            doel_oin = s.target,
            error_type = s.error_type,
            endpoint = s.endpoint,
            "OPRF evaluation failed"
        ),
        OprfEvent::NoRecipientKey => tracing::warn!(
            target: "security",
            event = event.code(),
            handelende_oin = s.acting,
            namens_oin = s.on_behalf_of,
            persoon = s.person,
            doel_oin = s.target,
            endpoint = s.endpoint,
            "OPRF refused: no recipient key for the organisation and scope"
        ),
    }
}
