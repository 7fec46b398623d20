//! Which budgets a request is charged to, and the charge itself.
//!
//! An evaluation request is charged, per evaluated element, to its
//! credential (a browser token by its `jti`, a back end by its client id),
//! its acting person (provider + person, browser tokens only), its provider
//! and its recipient; a re-keying request to the recipient's client only.
//! Every budget counts per UTC minute and per UTC day, in the ledger, so
//! that restarts and other processes see the same counts. Exceeded: 429
//! with `Retry-After`, and a `TTP-BUDGET-EXCEEDED` security event.

use crate::access::{Kind, Principal, Scope};
use crate::config::Budgets;
use crate::error::ApiError;
use crate::ledger::{Charge, Charged, Dimension};
use crate::security::{self, Event, Subject};
use crate::state::{AppState, RecipientState};

/// The budgets `principal` is charged to for a request to `recipient`.
pub fn charges(principal: &Principal, recipient: &RecipientState, global: &Budgets) -> Vec<Charge> {
    let own = principal.caller.budgets();
    let client = format!("client:{}", principal.caller.id());
    if principal.scope == Scope::Rekey {
        return vec![Charge {
            dimension: Dimension::Credential,
            key: client,
            limit: own.rekey,
        }];
    }
    let mut charges = Vec::with_capacity(4);
    charges.push(match (principal.kind, &principal.token_jti) {
        (Kind::Browser, Some(jti)) => Charge {
            dimension: Dimension::Credential,
            key: format!("token:{jti}"),
            limit: own.browser_token,
        },
        _ => Charge {
            dimension: Dimension::Credential,
            key: client,
            limit: own.client,
        },
    });
    let provider = principal.provider.as_deref().unwrap_or_default();
    if let Some(person) = &principal.person {
        charges.push(Charge {
            dimension: Dimension::Person,
            key: format!("{provider}|{person}"),
            limit: own.person,
        });
    }
    charges.push(Charge {
        dimension: Dimension::Provider,
        key: provider.to_owned(),
        limit: global.provider,
    });
    charges.push(Charge {
        dimension: Dimension::Recipient,
        key: format!("{}|{}", recipient.organization, recipient.scope),
        limit: recipient.budget.unwrap_or(global.recipient),
    });
    charges
}

/// Charges `n` evaluations of `principal` for `recipient` on `endpoint`:
/// 429 when a budget is spent (with the seconds to wait, unless `n` alone
/// is more than a budget), after a security event.
pub async fn spend(
    state: &AppState,
    endpoint: &str,
    principal: &Principal,
    recipient: &RecipientState,
    n: u64,
) -> Result<(), ApiError> {
    if n == 0 {
        return Ok(());
    }
    let charges = charges(principal, recipient, &state.budgets);
    match state.charge(charges, n).await? {
        Charged::Booked => Ok(()),
        Charged::Exceeded {
            dimension,
            window,
            retry_after,
        } => {
            let domain = format!("{}/{}", recipient.organization, recipient.scope);
            let window = window.to_string();
            security::emit(
                Event::BudgetExceeded,
                &Subject {
                    endpoint,
                    client: principal.caller.id(),
                    provider: principal.provider.as_deref().unwrap_or_default(),
                    person: principal.person.as_deref().unwrap_or_default(),
                    recipient: &domain,
                    outcome: "rateLimited",
                    dimension: dimension.name(),
                    window: &window,
                },
            );
            Err(match retry_after {
                Some(retry_after) => ApiError::RateLimited { retry_after },
                None => ApiError::OverBudget,
            })
        }
    }
}
