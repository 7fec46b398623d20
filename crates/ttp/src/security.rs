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
