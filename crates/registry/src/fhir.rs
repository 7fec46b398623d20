//! FHIR deliveries at the registry (docs/fhir.md): `POST /fhir` takes a
//! delivery Bundle ([`pseudoform_protocol::fhir::batch_of`]) with one
//! submitter proof (`htu` `{public_url}/fhir`, `rec` the
//! [`batch_rec`] of its submissions) **all or nothing**: every Patient is
//! opened and checked first as `POST /api/submissions` would, any refusal
//! refuses the whole Bundle ([`FhirRefusal`], an `OperationOutcome`
//! naming the entry and the pseudoform code), and the records are written
//! in one transaction. The same `batchId` again gets the same receipts and
//! stores nothing twice (the batch items of [`crate::batch`]).
//!
//! `GET /fhir/Patient` exports what the registry holds as a `searchset`
//! Bundle ([`export`]): a Patient per record with its definitive
//! pseudonyms as identifiers, and its Observations.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pseudoform_protocol::fhir::{
    batch_of, observation_of, system, typed_system, FIELD_KIND, PSEUDONYM_KIND, REVERSIBLE_KIND,
};
use pseudoform_protocol::registry::{
    batch_rec, submission_rec, Receipt, MAX_SUBMISSIONS_PER_BATCH,
};
use serde_json::{json, Value};

use crate::batch::ITEM_CONFLICT;
use crate::error::ReceiveError;
use crate::receiver::{OpenedSubmission, Receiver, Write};
use crate::store::{BatchItem, StoreError, StoredRecord};

/// The media type of FHIR JSON.
pub const FHIR_JSON: &str = "application/fhir+json";

/// A refused Bundle: nothing of it stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FhirRefusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The pseudoform code.
    pub code: String,
    /// The FHIRPath of the element (or the entry) it is about.
    pub field: Option<String>,
}

impl FhirRefusal {
    fn new(status: StatusCode, code: &str, field: Option<String>) -> Self {
        FhirRefusal {
            status,
            code: code.to_owned(),
            field,
        }
    }

    /// A refusal of the receiver about the Patient at `entry`.
    fn of(err: &ReceiveError, entry: &str) -> Self {
        let field = match err.field() {
            Some(member) => format!("{entry}.resource ({member})"),
            None => format!("{entry}.resource"),
        };
        FhirRefusal::new(err.status(), err.code(), Some(field))
    }

    /// The `OperationOutcome` of the refusal.
    pub fn outcome(&self) -> Value {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "security",
            StatusCode::PAYLOAD_TOO_LARGE => "too-costly",
            StatusCode::CONFLICT => "duplicate",
            s if s.is_server_error() => "exception",
            _ => "invalid",
        };
        let mut issue = json!({
            "severity": "error",
            "code": kind,
            "details": {
                "coding": [{ "system": "urn:pseudoform:error", "code": self.code }],
                "text": self.code,
            },
        });
        if let Some(field) = &self.field {
            if let Some(issue) = issue.as_object_mut() {
                issue.insert("expression".into(), json!([field]));
            }
        }
        json!({ "resourceType": "OperationOutcome", "issue": [issue] })
    }
}

impl IntoResponse for FhirRefusal {
    fn into_response(self) -> Response {
        fhir_response(self.status, &self.outcome())
    }
}

/// A FHIR JSON answer.
pub fn fhir_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, FHIR_JSON)],
        body.to_string(),
    )
        .into_response()
}

/// The FHIRPath of each Patient entry of `bundle`, in order.
fn patient_entries(bundle: &Value) -> Vec<String> {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| is_patient(e))
                .map(|(i, _)| format!("Bundle.entry[{i}]"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a Bundle entry is a Patient's.
fn is_patient(entry: &Value) -> bool {
    entry
        .get("request")
        .and_then(|r| r.get("url"))
        .and_then(Value::as_str)
        == Some("Patient")
}

fn internal() -> FhirRefusal {
    FhirRefusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
}

impl Receiver {
    /// Checks and stores a delivery Bundle with the request's `DPoP`
    /// `proof` at `now`, all or nothing: the `transaction-response` Bundle,
    /// or the refusal.
    pub fn receive_fhir(
        &self,
        bundle: &Value,
        proof: Option<&str>,
        now: i64,
    ) -> Result<Value, FhirRefusal> {
        let batch = batch_of(bundle, self.organization(), self.scope()).map_err(|e| {
            FhirRefusal::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, Some(e.field))
        })?;
        if batch.submissions.len() > MAX_SUBMISSIONS_PER_BATCH {
            return Err(FhirRefusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch.tooLarge",
                Some("Bundle.entry".into()),
            ));
        }
        let entries = patient_entries(bundle);
        let entry = |i: usize| entries.get(i).cloned().unwrap_or_else(|| "Bundle".into());

        let proof_key = match (self.submitter(), proof) {
            (Some(check), Some(proof)) => {
                let recs: Vec<String> = batch.submissions.iter().map(submission_rec).collect();
                let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
                Some(
                    check
                        .check_fhir(proof, &batch_rec(&recs), now)
                        .map_err(|e| FhirRefusal::of(&ReceiveError::Submitter(e), "Bundle"))?,
                )
            }
            _ => None,
        };

        // Every Patient opened and checked before anything is stored.
        let mut opened: Vec<OpenedSubmission> = Vec::with_capacity(batch.submissions.len());
        for (i, submission) in batch.submissions.into_iter().enumerate() {
            let item = self
                .open_submission(submission)
                .map_err(|e| FhirRefusal::of(&e, &entry(i)))?;
            if let Some(check) = self.submitter() {
                let key = check
                    .key_of(&item.bound_keys())
                    .map_err(|e| FhirRefusal::of(&ReceiveError::Submitter(e), &entry(i)))?;
                if let Some(jkt) = key {
                    let wrong = match &proof_key {
                        Some(k) if k == jkt => None,
                        Some(_) => Some(crate::submitter::SubmitterError::WrongKey),
                        None => Some(crate::submitter::SubmitterError::MissingProof),
                    };
                    if let Some(e) = wrong {
                        return Err(FhirRefusal::of(&ReceiveError::Submitter(e), &entry(i)));
                    }
                }
            }
            opened.push(item);
        }

        // Stored before under this batch id: the same answer.
        let mut receipts: Vec<Option<Receipt>> = Vec::with_capacity(opened.len());
        let mut items = Vec::with_capacity(opened.len());
        for (i, item) in opened.iter().enumerate() {
            let key = BatchItem {
                provider: item.provider().unwrap_or_default().to_owned(),
                batch_id: batch.batch_id.clone(),
                index: i64::try_from(i).unwrap_or(i64::MAX),
                data_digest: crate::batch::data_digest(&item.submission),
            };
            let stored = self
                .store()
                .batch_item(&key.provider, &key.batch_id, key.index)
                .map_err(|_| internal())?;
            receipts.push(match stored {
                None => None,
                Some(stored) => {
                    let receipt: Receipt =
                        serde_json::from_str(&stored.receipt).map_err(|_| internal())?;
                    if receipt.pseudonyms != item.labels() || stored.data_digest != key.data_digest
                    {
                        return Err(FhirRefusal::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            ITEM_CONFLICT,
                            Some(entry(i)),
                        ));
                    }
                    Some(receipt)
                }
            });
            items.push(key);
        }

        // The new ones: times checked, then written in one transaction.
        let mut pending = Vec::new();
        for (i, item) in opened.into_iter().enumerate() {
            if receipts.get(i).is_some_and(Option::is_some) {
                continue;
            }
            match self
                .prepare_write(item, now)
                .map_err(|e| FhirRefusal::of(&e, &entry(i)))?
            {
                Write::Known(receipt) => {
                    if let Some(slot) = receipts.get_mut(i) {
                        *slot = Some(receipt);
                    }
                }
                Write::New(p) => pending.push((i, p)),
            }
        }
        if !pending.is_empty() {
            let records = pending
                .iter()
                .map(|(i, p)| p.record(now, items.get(*i)))
                .collect();
            let ids = match self.store().insert_records(records, self.purge_before(now)) {
                Ok(ids) => ids,
                Err(StoreError::Replayed) => {
                    return Err(FhirRefusal::of(&ReceiveError::Replayed, "Bundle"))
                }
                Err(err) => {
                    tracing::error!(error = %err, "storing a FHIR Bundle failed");
                    return Err(internal());
                }
            };
            for ((i, p), id) in pending.iter().zip(ids) {
                if let Some(slot) = receipts.get_mut(*i) {
                    *slot = Some(p.receipt(id));
                }
            }
        }
        Ok(transaction_response(bundle, &receipts))
    }
}

/// The `transaction-response` of `bundle`: one entry per entry, Patients
/// with the location of their record.
fn transaction_response(bundle: &Value, receipts: &[Option<Receipt>]) -> Value {
    let mut patients = receipts.iter();
    let entries: Vec<Value> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    if is_patient(e) {
                        let id = patients
                            .next()
                            .and_then(Option::as_ref)
                            .map(|r| r.record_id)
                            .unwrap_or_default();
                        json!({ "response": { "status": "201 Created",
                                              "location": format!("Patient/{id}") } })
                    } else {
                        json!({ "response": { "status": "201 Created" } })
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": entries })
}

/// The `searchset` export of `records` (withdrawn ones already left out)
/// of the registry `org`/`scope` at `base` (its public URL): a Patient per
/// record with its definitive pseudonyms (and its reversible pseudonym) as
/// identifiers, then its Observations.
pub fn export(records: &[StoredRecord], org: &str, scope: &str, base: &str) -> Value {
    let field_system = system(FIELD_KIND, org, scope);
    let mut entries = Vec::new();
    for record in records {
        let id = record.id;
        let mut identifiers: Vec<Value> = record
            .pseudonyms
            .iter()
            .filter_map(|p| {
                let (ty, value) = p.label.split_once(':')?;
                Some(json!({
                    "system": typed_system(PSEUDONYM_KIND, ty, org, scope),
                    "value": value,
                }))
            })
            .collect();
        if let Some(r) = &record.reversible {
            identifiers.push(json!({
                "system": system(REVERSIBLE_KIND, org, scope),
                "value": format!("{}.{}.{}", r.kid, r.enc, r.ct),
            }));
        }
        let mut patient = json!({ "resourceType": "Patient", "id": id.to_string() });
        if let (false, Some(patient)) = (identifiers.is_empty(), patient.as_object_mut()) {
            patient.insert("identifier".into(), Value::Array(identifiers));
        }
        entries.push(json!({
            "fullUrl": format!("{base}/fhir/Patient/{id}"),
            "resource": patient,
            "search": { "mode": "match" },
        }));
        for (n, (name, value)) in record.data.iter().enumerate() {
            let mut observation =
                observation_of(name, value, &format!("Patient/{id}"), &field_system);
            if let Some(observation) = observation.as_object_mut() {
                observation.insert("id".into(), json!(format!("{id}-{n}")));
            }
            entries.push(json!({
                "fullUrl": format!("{base}/fhir/Observation/{id}-{n}"),
                "resource": observation,
                "search": { "mode": "include" },
            }));
        }
    }
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": records.len(),
        "entry": entries,
    })
}
