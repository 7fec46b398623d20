//! The registry's refusals: [`ReceiveError`], why the receiver refuses a
//! submission, and [`ApiError`], every problem answer of its HTTP API. Each
//! has a stable code, an HTTP status and a sentence that never contains a
//! submitted value, and answers as an [`ErrorBody`] (`IntoResponse`).
//!
//! The `field` of an error names the request member it is about
//! (`pseudonyms[1].temporaryPseudonym`, `record`, `blindFactors.NGGV`,
//! `data`; the type code for a missing required type), never its content. The one
//! exception is [`ReceiveError::IdentifyingField`], which names the refused
//! data key, always one of the fixed names of
//! [`pseudoform_protocol::registry::IDENTIFYING_FIELD_NAMES`].

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pseudoform_core::PseudonymType;
use pseudoform_protocol::ErrorBody;

/// Where in a submission a refused pseudonym is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// `pseudonyms[i]` of the national packaging.
    Pseudonym(usize),
    /// The record JWE, `record`.
    Record,
    /// The blind factor of a type, `blindFactors.<TYPE>`.
    BlindFactor(PseudonymType),
    /// `blindFactors` as a whole (a key that is no type code is not echoed).
    BlindFactors,
    /// The JWE of the blind factors, `encryptedBlindFactors`.
    EncryptedBlindFactors,
}

impl At {
    /// The request member of a JWE, claims or blind-factor error here.
    fn member(self) -> String {
        match self {
            At::Pseudonym(index) => format!("pseudonyms[{index}].temporaryPseudonym"),
            At::Record => "record".into(),
            At::BlindFactor(ty) => format!("blindFactors.{}", ty.code()),
            At::BlindFactors => "blindFactors".into(),
            At::EncryptedBlindFactors => "encryptedBlindFactors".into(),
        }
    }

    /// The request member of a type error here.
    fn type_member(self) -> String {
        match self {
            At::Pseudonym(index) => format!("pseudonyms[{index}].type"),
            other => other.member(),
        }
    }
}

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
    /// Not exactly one of `record` (with `blindFactors`) and `pseudonyms`.
    #[error("the submission needs exactly one of record (with blindFactors) and pseudonyms")]
    Shape {
        /// The member that is missing or must not be there.
        field: &'static str,
    },
    /// The submission has no pseudonyms.
    #[error("the submission has no pseudonyms")]
    NoPseudonyms {
        /// `pseudonyms` or `blindFactors`.
        field: &'static str,
    },
    /// More pseudonyms than there are pseudonym types.
    #[error("the submission has too many pseudonyms")]
    TooManyPseudonyms {
        /// `pseudonyms` or `blindFactors`.
        field: &'static str,
    },
    /// A pseudonym type code is not one of the Wkz types.
    #[error("the pseudonym type is unknown")]
    UnknownType {
        /// Where.
        at: At,
    },
    /// A pseudonym type this registry may not receive.
    #[error("this registry may not receive this pseudonym type")]
    TypeNotAllowed {
        /// Where.
        at: At,
    },
    /// The same pseudonym type appears twice.
    #[error("a pseudonym type appears more than once")]
    DuplicateType {
        /// Where the second occurrence is.
        at: At,
    },
    /// A type this registry requires was not made: the record would be partial.
    #[error("a pseudonym type this registry requires is missing")]
    RequiredMissing {
        /// The first required type missing, in the order of the Wkz table.
        ty: PseudonymType,
    },
    /// The record JWE evaluates a type the submission has no blind factor
    /// for: a record is used whole or not at all.
    #[error("the record evaluates a type that has no blind factor")]
    PartialRecord {
        /// The type without a blind factor.
        ty: PseudonymType,
    },
    /// `reversible` sent to a registry that does not accept type `R`.
    #[error("this registry may not receive the reversible pseudonym")]
    ReversibleNotAllowed,
    /// `reversible` is not of the shape of a reversible pseudonym.
    #[error("the reversible pseudonym is malformed")]
    ReversibleMalformed,
    /// This registry requires the reversible pseudonym and the record has none.
    #[error("a pseudonym type this registry requires is missing")]
    ReversibleMissing,
    /// `reversible` whose digest is not the `reversible` of the record's
    /// TTP-signed claims (or a record without signed claims): the provider
    /// could not tell it from a forgery, so it is not stored.
    #[error("the reversible pseudonym is not the one the TTP signed into the record")]
    ReversibleUnbound,
    /// The record's claims name a reversible pseudonym the submission does
    /// not carry: a record is used whole or not at all.
    #[error("the record names a reversible pseudonym the submission does not carry")]
    ReversibleStripped,
    /// `data` has more values than allowed.
    #[error("the data has too many values")]
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
        /// Where.
        at: At,
    },
    /// A single evaluation's JWE as `record`, or a record JWE in the
    /// national packaging: a record JWE goes in `record`, a JWE of
    /// `POST /oprf/eval` in `pseudonyms`.
    #[error("the JWE is of the other kind: a record JWE goes in record, a single evaluation in pseudonyms")]
    WrongKind {
        /// Where.
        at: At,
    },
    /// The JWE uses a key-management or content-encryption algorithm (or a
    /// header parameter) this registry does not accept.
    #[error("the pseudonym's encryption algorithm is not accepted")]
    UnsupportedAlgorithm {
        /// Where.
        at: At,
    },
    /// The JWE's protected header names no key (`kid`).
    #[error("the JWE names no key of this registry")]
    MissingKid {
        /// Where.
        at: At,
    },
    /// The JWE's `kid` is none of this registry's keys.
    #[error("the JWE is for a key this registry does not have")]
    UnknownKid {
        /// Where.
        at: At,
    },
    /// `blindFactors` in the clear, which this registry refuses: the
    /// browser encrypts them to the registry (`encryptedBlindFactors`).
    #[error("the blind factors must be encrypted to the registry (encryptedBlindFactors)")]
    BlindFactorsNotEncrypted,
    /// The decrypted `encryptedBlindFactors` is not a blind-factors
    /// plaintext, or its JWE's `cty` is not `application/json`.
    #[error("the encrypted blind factors are malformed")]
    BlindFactorsMalformed,
    /// The encrypted blind factors belong to another record JWE (`rec`).
    #[error("the encrypted blind factors belong to another record")]
    BlindFactorsOfAnotherRecord,
    /// The JWE does not decrypt with any key of this registry: tampered,
    /// truncated or made for another recipient.
    #[error("the pseudonym cannot be decrypted by this registry")]
    Undecryptable {
        /// Where.
        at: At,
    },
    /// The decrypted plaintext is bare claims, not signed by the TTP, and
    /// this registry does not accept unsigned claims.
    #[error("the pseudonym's claims are not signed by the TTP")]
    Unsigned {
        /// Where.
        at: At,
    },
    /// The claims' signature is not a valid signature of a pinned TTP key.
    #[error("the signature on the pseudonym's claims is not valid")]
    BadSignature {
        /// Where.
        at: At,
    },
    /// The claims' `version` is not the protocol version.
    #[error("the pseudonym's protocol version is not supported")]
    VersionUnsupported {
        /// Where.
        at: At,
    },
    /// The JWE's lifetime (`exp - iat`) is longer than the protocol allows.
    #[error("the pseudonym's lifetime is too long")]
    LifetimeTooLong {
        /// Where.
        at: At,
    },
    /// The decrypted claims are not a valid evaluation or record payload.
    #[error("the pseudonym's claims are invalid")]
    InvalidClaims {
        /// Where.
        at: At,
    },
    /// A single evaluation's claims name no `key_version` (the national
    /// reference service's claims): the registry never guesses one.
    #[error("the pseudonym's claims must name the key version of subject (key_version); the registry never infers it")]
    KeyVersionMissing {
        /// Where.
        at: At,
    },
    /// The claims' `aud` or `scope` is not this registry's.
    #[error("the pseudonym was made for another recipient")]
    WrongRecipient {
        /// Where.
        at: At,
    },
    /// The JWE has expired.
    #[error("the pseudonym has expired")]
    Expired {
        /// Where.
        at: At,
    },
    /// The JWE was issued in the future.
    #[error("the pseudonym is not valid yet")]
    NotYetValid {
        /// Where.
        at: At,
    },
    /// The JWE holds no evaluation for the submitted type.
    #[error("the pseudonym is not of the submitted type")]
    TypeMismatch {
        /// Where.
        at: At,
    },
    /// The evaluated element is not a valid group element.
    #[error("the pseudonym's evaluated element is invalid")]
    InvalidEvaluation {
        /// Where.
        at: At,
    },
    /// The blind factor is not a valid non-zero scalar.
    #[error("the pseudonym's blind factor is invalid")]
    InvalidBlind {
        /// Where.
        at: At,
    },
    /// A JWE of this submission was already used by an earlier one.
    #[error("the pseudonym was already used")]
    Replayed,
    /// The store failed; nothing was stored.
    #[error("the record could not be stored")]
    Storage,
    /// The submitter proof is missing or wrong ([`crate::submitter`]).
    #[error(transparent)]
    Submitter(crate::submitter::SubmitterError),
}

impl ReceiveError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        use ReceiveError::*;
        match self {
            UnsupportedMethod => "method.unsupported",
            Shape { .. } => "submission.shape",
            NoPseudonyms { .. } => "pseudonyms.empty",
            TooManyPseudonyms { .. } => "pseudonyms.tooMany",
            RequiredMissing { .. } | ReversibleMissing => "pseudonyms.requiredMissing",
            ReversibleNotAllowed => "type.notAllowed",
            ReversibleMalformed => "reversible.malformed",
            ReversibleUnbound => "reversible.unbound",
            PartialRecord { .. } | ReversibleStripped => "pseudonyms.partialRecord",
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
            WrongKind { .. } => "pseudonym.wrongKind",
            UnsupportedAlgorithm { .. } => "pseudonym.unsupportedAlgorithm",
            MissingKid { .. } => "pseudonym.kidMissing",
            UnknownKid { .. } => "pseudonym.kidUnknown",
            BlindFactorsNotEncrypted => "blindFactors.notEncrypted",
            BlindFactorsMalformed => "blindFactors.malformed",
            BlindFactorsOfAnotherRecord => "blindFactors.recordMismatch",
            Undecryptable { .. } => "pseudonym.undecryptable",
            InvalidClaims { .. } => "pseudonym.invalidClaims",
            KeyVersionMissing { .. } => "pseudonym.keyVersionMissing",
            Unsigned { .. } => "pseudonym.unsigned",
            BadSignature { .. } => "pseudonym.badSignature",
            VersionUnsupported { .. } => "pseudonym.versionUnsupported",
            LifetimeTooLong { .. } => "pseudonym.lifetimeTooLong",
            WrongRecipient { .. } => "pseudonym.wrongRecipient",
            Expired { .. } => "pseudonym.expired",
            NotYetValid { .. } => "pseudonym.notYetValid",
            TypeMismatch { .. } => "pseudonym.typeMismatch",
            InvalidEvaluation { .. } => "pseudonym.invalidEvaluation",
            InvalidBlind { .. } => "pseudonym.invalidBlind",
            Submitter(e) => e.code(),
        }
    }

    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        use ReceiveError::*;
        match self {
            TypeNotAllowed { .. } | ReversibleNotAllowed => StatusCode::FORBIDDEN,
            Replayed => StatusCode::CONFLICT,
            Storage => StatusCode::INTERNAL_SERVER_ERROR,
            Submitter(e) => e.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The request member the error is about, if any (for
    /// [`ReceiveError::RequiredMissing`] the missing type's code).
    pub fn field(&self) -> Option<String> {
        use ReceiveError::*;
        match self {
            RecipientMismatch { field }
            | Shape { field }
            | NoPseudonyms { field }
            | TooManyPseudonyms { field } => Some((*field).to_owned()),
            UnsupportedMethod => Some("methodVersion".into()),
            RequiredMissing { ty } => Some(ty.code().to_owned()),
            ReversibleMissing | ReversibleNotAllowed | ReversibleStripped => {
                Some(pseudoform_protocol::registry::REVERSIBLE_TYPE.to_owned())
            }
            ReversibleMalformed | ReversibleUnbound => Some("reversible".into()),
            PartialRecord { ty } => Some(At::BlindFactor(*ty).member()),
            UnknownType { at } | TypeNotAllowed { at } | DuplicateType { at } => {
                Some(at.type_member())
            }
            TooManyFields | InvalidFieldName | ValueTooLong => Some("data".into()),
            BlindFactorsNotEncrypted => Some("blindFactors".into()),
            BlindFactorsMalformed | BlindFactorsOfAnotherRecord => {
                Some(At::EncryptedBlindFactors.member())
            }
            IdentifyingField { name } => Some(format!("data.{name}")),
            MalformedPseudonym { at }
            | WrongKind { at }
            | UnsupportedAlgorithm { at }
            | MissingKid { at }
            | UnknownKid { at }
            | Undecryptable { at }
            | InvalidClaims { at }
            | KeyVersionMissing { at }
            | Unsigned { at }
            | BadSignature { at }
            | VersionUnsupported { at }
            | LifetimeTooLong { at }
            | WrongRecipient { at }
            | Expired { at }
            | NotYetValid { at }
            | TypeMismatch { at }
            | InvalidEvaluation { at }
            | InvalidBlind { at } => Some(at.member()),
            Replayed | Storage => None,
            Submitter(e) => e.field().map(str::to_owned),
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
