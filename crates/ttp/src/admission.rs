//! Admission: whether an authenticated caller may have what it asks of a
//! recipient. In this order: the recipient is well-formed (422) and known
//! (404), the caller may evaluate or rekey for it (403), the request's
//! `Origin`, if any, is one of its forms (403); then each pseudonym type is
//! known (422, [`known_type`]) and one the recipient may receive (403,
//! [`allowed_type`]).

use std::str::FromStr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use pseudoform_core::{PseudonymType, Recipient};

use crate::audit::AuditDraft;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{AppState, RecipientState};

/// What a caller asks of a recipient: evaluations, or re-keying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// `POST /oprf/eval` and `POST /v1/evaluate`.
    Evaluate,
    /// `POST /v1/rekey`.
    Rekey,
}

/// The configured recipient `(organization, scope)`: 422 for a malformed
/// organisation or scope, 404 for an unknown recipient.
pub fn resolve(
    state: &AppState,
    organization: &str,
    scope: &str,
) -> Result<Arc<RecipientState>, ApiError> {
    if !pseudoform_protocol::is_oin(organization) {
        return Err(ApiError::OrganizationInvalid);
    }
    if Recipient::new(organization, scope).is_err() {
        return Err(ApiError::ScopeInvalid);
    }
    state
        .recipient(organization, scope)
        .ok_or(ApiError::RecipientUnknown)
}

/// Admits `caller` to ask `permission` of the recipient `(organization,
/// scope)` in a request with `headers`; records the recipient in the audit
/// draft as soon as it is known.
pub fn admit(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    (organization, scope): (&str, &str),
    permission: Permission,
    draft: &mut AuditDraft,
) -> Result<Arc<RecipientState>, ApiError> {
    let recipient = resolve(state, organization, scope)?;
    draft.recipient(&recipient.organization, &recipient.scope);
    let (organization, scope) = (&recipient.organization, &recipient.scope);
    match permission {
        Permission::Evaluate if !caller.may_call(organization, scope) => {
            return Err(ApiError::MayNotEvaluate)
        }
        Permission::Rekey if !caller.may_rekey(organization, scope) => {
            return Err(ApiError::MayNotRekey)
        }
        _ => {}
    }
    check_origin(headers, &recipient)?;
    Ok(recipient)
}

/// 403 when the request carries an `Origin` that is not the recipient's.
fn check_origin(headers: &HeaderMap, recipient: &RecipientState) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let allowed = value.to_str().is_ok_and(|origin| {
        recipient
            .allowed_origins
            .contains(&origin.to_ascii_lowercase())
    });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::OriginNotAllowed)
    }
}

/// The pseudonym type of the code at request member `field`; 422 if it is
/// not a type of the core.
pub fn known_type(code: &str, field: &str) -> Result<PseudonymType, ApiError> {
    PseudonymType::from_str(code).map_err(|_| ApiError::TypeUnknown {
        field: field.to_owned(),
    })
}

/// 403 if the recipient may not receive `t` (the type at request member
/// `field`).
pub fn allowed_type(
    recipient: &RecipientState,
    t: PseudonymType,
    field: &str,
) -> Result<(), ApiError> {
    if recipient.allowed_types.contains(&t) {
        Ok(())
    } else {
        Err(ApiError::TypeNotAllowed {
            field: field.to_owned(),
        })
    }
}
