//! Admission: whether an authenticated principal may have what it asks of
//! a recipient. In this order: the recipient is well-formed (422) and
//! known (404); the caller's role and the credential's scope allow what is
//! asked, and the caller acts for this recipient (403: a recipient's
//! credential never evaluates, a provider's never re-keys); the `Origin`
//! fits the credential (403: a browser token only with exactly its own
//! origin, which must be one of the recipient's forms or an identity frame's
//! origin; a back end's token
//! never from a browser); then each pseudonym type is known (422,
//! [`known_type`]) and one the recipient may receive (403,
//! [`allowed_type`]).

use std::str::FromStr;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use pseudoform_core::PseudonymType;
use pseudoform_protocol::RecipientRule;

use crate::access::{Kind, Principal, Scope};
use crate::audit::AuditDraft;
use crate::config::{Role, REVERSIBLE_TYPE};
use crate::error::ApiError;
use crate::security::{self, Event, Subject};
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
    pseudoform_protocol::recipient(organization, scope).map_err(|rule| match rule {
        RecipientRule::Organization => ApiError::OrganizationInvalid,
        RecipientRule::Scope => ApiError::ScopeInvalid,
    })?;
    state
        .recipient(organization, scope)
        .ok_or(ApiError::RecipientUnknown)
}

/// Admits `principal` to ask `permission` of the recipient `(organization,
/// scope)` in a request with `headers`; records the recipient in the audit
/// draft as soon as it is known.
pub fn admit(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    (organization, scope): (&str, &str),
    permission: Permission,
    draft: &mut AuditDraft,
) -> Result<Arc<RecipientState>, ApiError> {
    let recipient = resolve(state, organization, scope)?;
    draft.recipient(&recipient.organization, &recipient.scope);
    let (organization, scope) = (recipient.organization.as_str(), recipient.scope.as_str());
    let caller = &principal.caller;
    match permission {
        Permission::Evaluate if caller.role() == Role::Recipient => {
            security::emit(
                Event::RoleViolation,
                &Subject {
                    endpoint: draft.endpoint(),
                    client: caller.id(),
                    recipient: &format!("{organization}/{scope}"),
                    outcome: "caller.notAllowed",
                    ..Subject::default()
                },
            );
            return Err(ApiError::RecipientMayNotEvaluate);
        }
        Permission::Evaluate
            if principal.scope != Scope::Evaluate || !caller.may_evaluate(organization, scope) =>
        {
            return Err(ApiError::MayNotEvaluate)
        }
        Permission::Rekey
            if principal.scope != Scope::Rekey || !caller.may_rekey(organization, scope) =>
        {
            return Err(ApiError::MayNotRekey)
        }
        _ => {}
    }
    check_origin(headers, principal, &recipient)?;
    Ok(recipient)
}

/// The `Origin` of a request: a browser token needs exactly its own, which
/// must be one of the recipient's forms; a back end's token none; a static
/// development token, if any, one of the recipient's forms.
fn check_origin(
    headers: &HeaderMap,
    principal: &Principal,
    recipient: &RecipientState,
) -> Result<(), ApiError> {
    let mut values = headers.get_all(header::ORIGIN).iter();
    let origin = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(v), None) => Some(v.to_str().map_err(|_| ApiError::OriginNotAllowed)?),
        (Some(_), Some(_)) => return Err(ApiError::OriginNotAllowed),
    };
    let allowed = |o: &str| recipient.allowed_origins.contains(&o.to_ascii_lowercase());
    match (principal.kind, origin) {
        (Kind::Browser, Some(o)) if principal.origin.as_deref() == Some(o) => {
            if allowed(o) {
                Ok(())
            } else {
                Err(ApiError::OriginNotAllowed)
            }
        }
        (Kind::Browser, _) | (Kind::Backend, Some(_)) => Err(ApiError::OriginMismatch),
        (Kind::Backend, None) | (Kind::Static, None) => Ok(()),
        (Kind::Static, Some(o)) if allowed(o) => Ok(()),
        (Kind::Static, Some(_)) => Err(ApiError::OriginNotAllowed),
    }
}

/// The pseudonym type of the code at request member `field`; 422 if it is
/// not a type of the core, 422 `type.notEvaluable` for type R (the
/// reversible pseudonym is encrypted in the browser, never evaluated).
pub fn known_type(code: &str, field: &str) -> Result<PseudonymType, ApiError> {
    if code == REVERSIBLE_TYPE {
        return Err(ApiError::TypeNotEvaluable {
            field: field.to_owned(),
        });
    }
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
