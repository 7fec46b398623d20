//! The registry's refusals: [`ReceiveError`], why the receiver refuses a
//! submission, and [`ApiError`], every problem answer of its HTTP API. Each
//! has a stable code, an HTTP status and a sentence that never contains a
//! submitted value, and answers as an [`ErrorBody`] (`IntoResponse`).
//!
//! The `field` of an error names the request member it is about
//! (`pseudonyms[1].temporaryPseudonym`, `data`), never its content. The one
//! exception is [`ReceiveError::IdentifyingField`], which names the refused
//! data key, always one of the fixed names of
//! [`pseudoform_protocol::registry::IDENTIFYING_FIELD_NAMES`].

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_protocol::ErrorBody;

/// A refused submission. Nothing of the record is stored when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// `recipientOrganization` or `recipientScope` is not this registry's.
    #[error("the submission is addressed to another registry")]
    RecipientMismatch {
        /// `recipientOrganization` or `recipientScope`.
        field: &'static str,
    },
    /// `methodVersion` is not a method version this registry supports.
    #[error("the method version is not supported")]
    UnsupportedMethod,
    /// The submission has no pseudonyms.
    #[error("the submission has no pseudonyms")]
    NoPseudonyms,
    /// More pseudonyms than there are pseudonym types.
    #[error("the submission has too many pseudonyms")]
    TooManyPseudonyms,
    /// A pseudonym type code is not one of the Wkz types.
    #[error("the pseudonym type is unknown")]
    UnknownType {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// A pseudonym type this registry may not receive.
    #[error("this registry may not receive this pseudonym type")]
    TypeNotAllowed {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The same pseudonym type appears twice.
    #[error("a pseudonym type appears more than once")]
    DuplicateType {
        /// Index in `pseudonyms` of the second occurrence.
        index: usize,
    },
    /// `data` has more fields than allowed.
    #[error("the data has too many fields")]
    TooManyFields,
    /// A `data` key is empty, too long or has characters other than
    /// `A-Z a-z 0-9 _ -`.
    #[error("a data field name is invalid")]
    InvalidFieldName,
    /// A `data` value is too long.
    #[error("a data value is too long")]
    ValueTooLong,
    /// A `data` key is the name of an identifying field.
    #[error("the data contains an identifying field")]
    IdentifyingField {
        /// The identifying field name it matched (a fixed name, not input).
        name: &'static str,
    },
    /// The temporary pseudonym is not a well-formed package.
    #[error("the temporary pseudonym is malformed")]
    MalformedPseudonym {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE uses a key-management or content-encryption algorithm (or a
    /// header parameter) this registry does not accept.
    #[error("the pseudonym's encryption algorithm is not accepted")]
    UnsupportedAlgorithm {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE does not decrypt with any key of this registry: tampered,
    /// truncated or made for another recipient.
    #[error("the pseudonym cannot be decrypted by this registry")]
    Undecryptable {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The decrypted plaintext is bare claims, not signed by the TTP, and
    /// this registry does not accept unsigned claims.
    #[error("the pseudonym's claims are not signed by the TTP")]
    Unsigned {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The claims' signature is not a valid signature of a pinned TTP key.
    #[error("the signature on the pseudonym's claims is not valid")]
    BadSignature {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The claims' `version` is not the protocol version.
    #[error("the pseudonym's protocol version is not supported")]
    VersionUnsupported {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE's lifetime (`exp - iat`) is longer than the protocol allows.
    #[error("the pseudonym's lifetime is too long")]
    LifetimeTooLong {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The pseudonyms come from more than one JWE while one of them is a
    /// record JWE: one submission is one record of one patient.
    #[error("the pseudonyms come from different records")]
    MixedRecords {
        /// Index in `pseudonyms` of the first pseudonym from another JWE.
        index: usize,
    },
    /// The decrypted claims are not a valid evaluation or record payload.
    #[error("the pseudonym's claims are invalid")]
    InvalidClaims {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The claims' `aud` or `scope` is not this registry's.
    #[error("the pseudonym was made for another recipient")]
    WrongRecipient {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE has expired.
    #[error("the pseudonym has expired")]
    Expired {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE was issued in the future.
    #[error("the pseudonym is not valid yet")]
    NotYetValid {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The JWE holds no evaluation for the submitted type.
    #[error("the pseudonym is not of the submitted type")]
    TypeMismatch {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The evaluated element is not a valid group element.
    #[error("the pseudonym's evaluated element is invalid")]
    InvalidEvaluation {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// The blind factor is not a valid non-zero scalar.
    #[error("the pseudonym's blind factor is invalid")]
    InvalidBlind {
        /// Index in `pseudonyms`.
        index: usize,
    },
    /// A JWE of this submission was already used by an earlier one.
    #[error("the pseudonym was already used")]
    Replayed,
    /// The store failed; nothing was stored.
    #[error("the record could not be stored")]
    Storage,
}

impl ReceiveError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ReceiveError::*;
        match self {
            UnsupportedMethod => "method.unsupported",
            NoPseudonyms => "pseudonyms.empty",
            TooManyPseudonyms => "pseudonyms.tooMany",
            TooManyFields => "data.tooManyFields",
            InvalidFieldName => "data.invalidFieldName",
            ValueTooLong => "data.valueTooLong",
            Replayed => "pseudonym.replayed",
            Storage => "internal",
            RecipientMismatch { .. } => "recipient.mismatch",
            UnknownType { .. } => "type.unknown",
            TypeNotAllowed { .. } => "type.notAllowed",
            DuplicateType { .. } => "type.duplicate",
            IdentifyingField { .. } => "data.identifyingField",
            MalformedPseudonym { .. } => "pseudonym.malformed",
            UnsupportedAlgorithm { .. } => "pseudonym.unsupportedAlgorithm",
            Undecryptable { .. } => "pseudonym.undecryptable",
            InvalidClaims { .. } => "pseudonym.invalidClaims",
            Unsigned { .. } => "pseudonym.unsigned",
            BadSignature { .. } => "pseudonym.badSignature",
            VersionUnsupported { .. } => "pseudonym.versionUnsupported",
            LifetimeTooLong { .. } => "pseudonym.lifetimeTooLong",
            MixedRecords { .. } => "pseudonyms.mixedRecords",
            WrongRecipient { .. } => "pseudonym.wrongRecipient",
            Expired { .. } => "pseudonym.expired",
            NotYetValid { .. } => "pseudonym.notYetValid",
            TypeMismatch { .. } => "pseudonym.typeMismatch",
            InvalidEvaluation { .. } => "pseudonym.invalidEvaluation",
            InvalidBlind { .. } => "pseudonym.invalidBlind",
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        use ReceiveError::*;
        match self {
            TypeNotAllowed { .. } => StatusCode::FORBIDDEN,
            Replayed => StatusCode::CONFLICT,
            Storage => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The request member the error is about, if any.
    pub fn field(&self) -> Option<String> {
        use ReceiveError::*;
        match self {
            RecipientMismatch { field } => Some((*field).to_owned()),
            UnsupportedMethod => Some("methodVersion".into()),
            NoPseudonyms | TooManyPseudonyms | MixedRecords { .. } => Some("pseudonyms".into()),
            UnknownType { index } | TypeNotAllowed { index } | DuplicateType { index } => {
                Some(format!("pseudonyms[{index}].type"))
            }
            TooManyFields | InvalidFieldName | ValueTooLong => Some("data".into()),
            IdentifyingField { name } => Some(format!("data.{name}")),
            MalformedPseudonym { index }
            | UnsupportedAlgorithm { index }
            | Undecryptable { index }
            | InvalidClaims { index }
            | Unsigned { index }
            | BadSignature { index }
            | VersionUnsupported { index }
            | LifetimeTooLong { index }
            | WrongRecipient { index }
            | Expired { index }
            | NotYetValid { index }
            | TypeMismatch { index }
            | InvalidEvaluation { index }
            | InvalidBlind { index } => Some(format!("pseudonyms[{index}].temporaryPseudonym")),
            Replayed | Storage => None,
        }
    }

    /// The problem answer for this error.
    pub fn to_body(&self) -> ErrorBody {
        let body = ErrorBody::new(self.code(), &self.to_string());
        match self.field() {
            Some(field) => body.with_field(&field),
            None => body,
        }
    }
}

impl IntoResponse for ReceiveError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.to_body())).into_response()
    }
}

/// A problem answer of the registry's HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The receiver refused the submission.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
    /// 415 `submission.contentType`: the body is not sent as JSON.
    #[error("the body must be sent as application/json")]
    ContentType,
    /// 413 `submission.tooLarge`: a body over the limit.
    #[error("the body is too large")]
    TooLarge,
    /// 400 `submission.unreadable`: the body could not be read.
    #[error("the body could not be read")]
    Unreadable,
    /// 422 `submission.malformed`: the body is not a submission.
    #[error("the body is not a valid submission")]
    Malformed,
    /// 422 `query.invalid`: `limit` is not a non-negative integer.
    #[error("limit must be a non-negative integer")]
    InvalidLimit,
    /// 404 `notFound`: no such API endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// 500 `internal`: the details go to the log.
    #[error("the registry failed; nothing was stored")]
    Internal,
    /// 503 `server.notReady`: the database cannot be written (`GET /ready`).
    #[error("the registry is not ready: its database cannot be written")]
    NotReady,
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Receive(e) => e.code(),
            ApiError::ContentType => "submission.contentType",
            ApiError::TooLarge => "submission.tooLarge",
            ApiError::Unreadable => "submission.unreadable",
            ApiError::Malformed => "submission.malformed",
            ApiError::InvalidLimit => "query.invalid",
            ApiError::NotFound => "notFound",
            ApiError::NotReady => "server.notReady",
            ApiError::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Receive(e) => e.status(),
            ApiError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unreadable => StatusCode::BAD_REQUEST,
            ApiError::Malformed | ApiError::InvalidLimit => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem answer.
    pub fn to_body(&self) -> ErrorBody {
        match self {
            ApiError::Receive(e) => e.to_body(),
            ApiError::InvalidLimit => {
                ErrorBody::new(self.code(), &self.to_string()).with_field("limit")
            }
            _ => ErrorBody::new(self.code(), &self.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    /// The answer to a body that is no submission; serde's message (which
    /// can quote the body) is dropped.
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::ContentType,
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::TooLarge
            }
            JsonRejection::BytesRejection(_) => ApiError::Unreadable,
            _ => ApiError::Malformed,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.to_body())).into_response()
    }
}
