//! FHIR R4 deliveries (docs/fhir.md): a processor's batch as a `Bundle` of
//! type `transaction` whose `Patient`s carry only pseudonyms — one
//! `identifier` per pseudonym element, each under a `system` URI of its
//! kind and key domain — each followed by its clinical `Observation`s.
//!
//! [`bundle_of`] makes such a Bundle from submissions, [`batch_of`] reads
//! one back into a [`BatchSubmission`] (a lossless round trip of `data`),
//! refusing every element outside the allow-list: on a Patient anything but
//! `resourceType`, `meta.tag` and `identifier` is
//! [`IDENTIFYING_ELEMENT`] (no name, birthDate, address, gender, telecom,
//! text, extension, id …), elsewhere [`UNSUPPORTED_ELEMENT`].
//!
//! Pure: no I/O, no randomness (`fullUrl`s are UUIDs derived from the
//! batch id and the entry's index, not from any identity).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::registry::{
    BatchSubmission, Data, DataValue, ReversibleEnvelope, Submission, SubmittedPseudonym,
    REVERSIBLE_TYPE,
};

/// The path of the registry's FHIR delivery endpoint (`POST`).
pub const FHIR_PATH: &str = "/fhir";

/// The prefix of every pseudoform system URI.
pub const SYSTEM_PREFIX: &str = "urn:pseudoform:";
/// `Patient.identifier` kind: the record JWE (all of a record's temporary
/// pseudonyms, signed together by the TTP); `urn:pseudoform:record:{org}:{scope}`.
pub const RECORD_KIND: &str = "record";
/// `Patient.identifier` kind: `encryptedBlindFactors`.
pub const BLIND_FACTORS_KIND: &str = "blind-factors";
/// `Patient.identifier` kind: the reversible pseudonym as `kid.enc.ct`.
pub const REVERSIBLE_KIND: &str = "reversible";
/// `Patient.identifier` kind of the national packaging: one temporary
/// pseudonym, `urn:pseudoform:temporary-pseudonym:{TYPE}:{org}:{scope}`.
pub const TEMPORARY_PSEUDONYM_KIND: &str = "temporary-pseudonym";
/// `Patient.identifier` kind of the export: a definitive pseudonym, value
/// `v{N}:{base64url}`; `urn:pseudoform:pseudonym:{TYPE}:{org}:{scope}`.
pub const PSEUDONYM_KIND: &str = "pseudonym";
/// `Observation.code.coding` kind: code = the clinical field name.
pub const FIELD_KIND: &str = "field";
/// `Patient.meta.tag` system; code = the method version.
pub const METHOD_VERSION_SYSTEM: &str = "urn:pseudoform:method-version";
/// `Bundle.identifier` system; value = the `batchId`.
pub const BATCH_SYSTEM: &str = "urn:pseudoform:batch";
/// `Observation.meta.tag` system marking a list value (code [`LIST_CODE`]).
pub const VALUE_KIND_SYSTEM: &str = "urn:pseudoform:value-kind";
/// The code of [`VALUE_KIND_SYSTEM`] for a list value.
pub const LIST_CODE: &str = "list";
/// HL7's data-absent-reason code system: an empty value.
pub const DATA_ABSENT_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
/// The data-absent-reason code of an empty text or list element.
pub const DATA_ABSENT_CODE: &str = "unknown";

/// Refusal: an element on a Patient outside the allow-list.
pub const IDENTIFYING_ELEMENT: &str = "fhir.identifyingElement";
/// Refusal: an element elsewhere outside the allow-list.
pub const UNSUPPORTED_ELEMENT: &str = "fhir.unsupportedElement";
/// Refusal: a required element missing, or of the wrong form.
pub const SHAPE: &str = "fhir.shape";
/// Refusal: an Observation's subject is no Patient before it.
pub const REFERENCE: &str = "fhir.reference";

/// Why a Bundle is not a pseudoform delivery: a code and the FHIRPath of
/// the element (`Bundle.entry[2].resource.name`), never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FhirError {
    /// [`IDENTIFYING_ELEMENT`], [`UNSUPPORTED_ELEMENT`], [`SHAPE`] or [`REFERENCE`].
    pub code: &'static str,
    /// The FHIRPath of the element.
    pub field: String,
}

impl std::fmt::Display for FhirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.code, self.field)
    }
}

impl std::error::Error for FhirError {}

/// The system URI of `kind` for the key domain `org`/`scope`:
/// `urn:pseudoform:{kind}:{org}:{scope}`.
pub fn system(kind: &str, org: &str, scope: &str) -> String {
    format!("{SYSTEM_PREFIX}{kind}:{org}:{scope}")
}

/// The system URI of a typed `kind` ([`PSEUDONYM_KIND`],
/// [`TEMPORARY_PSEUDONYM_KIND`]): `urn:pseudoform:{kind}:{TYPE}:{org}:{scope}`.
pub fn typed_system(kind: &str, pseudonym_type: &str, org: &str, scope: &str) -> String {
    format!("{SYSTEM_PREFIX}{kind}:{pseudonym_type}:{org}:{scope}")
}

/// The domain of the entries' `fullUrl`s: each is a UUID (version-4 form)
/// of the SHA-256 of `{FULL_URL_DOMAIN}|{batchId}|{index}`.
pub const FULL_URL_DOMAIN: &str = "pseudoform-fhir/1";

/// A UUID (version-4 form) derived from the batch and an entry's index.
fn full_url(batch_id: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("{FULL_URL_DOMAIN}|{batch_id}|{index}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn identifier(system: String, value: &str) -> Value {
    json!({ "system": system, "value": value })
}

/// The Patient of a submission: its pseudonym elements as identifiers.
fn patient_of(submission: &Submission, org: &str, scope: &str) -> Value {
    let mut identifiers = Vec::new();
    if let Some(record) = &submission.record {
        identifiers.push(identifier(system(RECORD_KIND, org, scope), record));
    }
    if let Some(sealed) = &submission.encrypted_blind_factors {
        identifiers.push(identifier(system(BLIND_FACTORS_KIND, org, scope), sealed));
    }
    for p in submission.pseudonyms.iter().flatten() {
        identifiers.push(identifier(
            typed_system(TEMPORARY_PSEUDONYM_KIND, &p.pseudonym_type, org, scope),
            &p.temporary_pseudonym,
        ));
    }
    if let Some(r) = &submission.reversible {
        identifiers.push(identifier(
            system(REVERSIBLE_KIND, org, scope),
            &format!("{}.{}.{}", r.kid, r.enc, r.ct),
        ));
    }
    json!({
        "resourceType": "Patient",
        "meta": { "tag": [{ "system": METHOD_VERSION_SYSTEM,
                            "code": submission.method_version.to_string() }] },
        "identifier": identifiers,
    })
}

/// A string value, or its absence (FHIR strings are never empty).
fn put_string(target: &mut Map<String, Value>, text: &str) {
    if text.is_empty() {
        target.insert(
            "dataAbsentReason".into(),
            json!({ "coding": [{ "system": DATA_ABSENT_SYSTEM, "code": DATA_ABSENT_CODE }] }),
        );
    } else {
        target.insert("valueString".into(), json!(text));
    }
}

/// The Observation of one clinical field of the Patient at `subject`
/// (its `fullUrl` or `Patient/{id}`), coded under `field_system`.
pub fn observation_of(name: &str, value: &DataValue, subject: &str, field_system: &str) -> Value {
    let code = json!({ "coding": [{ "system": field_system, "code": name }] });
    let mut o = Map::new();
    o.insert("resourceType".into(), json!("Observation"));
    if let DataValue::List(_) = value {
        o.insert(
            "meta".into(),
            json!({ "tag": [{ "system": VALUE_KIND_SYSTEM, "code": LIST_CODE }] }),
        );
    }
    o.insert("status".into(), json!("final"));
    o.insert("code".into(), code.clone());
    o.insert("subject".into(), json!({ "reference": subject }));
    match value {
        DataValue::Text(text) => put_string(&mut o, text),
        DataValue::List(items) if items.is_empty() => put_string(&mut o, ""),
        DataValue::List(items) => {
            let components: Vec<Value> = items
                .iter()
                .map(|item| {
                    let mut c = Map::new();
                    c.insert("code".into(), code.clone());
                    put_string(&mut c, item);
                    Value::Object(c)
                })
                .collect();
            o.insert("component".into(), Value::Array(components));
        }
    }
    Value::Object(o)
}

/// The delivery Bundle (`transaction`) of `submissions` for the registry
/// `org`/`scope` under `batch_id`: each submission a Patient followed by
/// one Observation per clinical field. Blind factors in the clear
/// (development only) have no FHIR form and are left out.
pub fn bundle_of(batch_id: &str, org: &str, scope: &str, submissions: &[Submission]) -> Value {
    let field_system = system(FIELD_KIND, org, scope);
    let mut entries = Vec::new();
    let mut entry = |resource: Value, kind: &str| {
        let url = full_url(batch_id, entries.len());
        entries.push(json!({
            "fullUrl": url,
            "resource": resource,
            "request": { "method": "POST", "url": kind },
        }));
        url
    };
    for submission in submissions {
        let subject = entry(patient_of(submission, org, scope), "Patient");
        for (name, value) in &submission.data {
            entry(
                observation_of(name, value, &subject, &field_system),
                "Observation",
            );
        }
    }
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "identifier": { "system": BATCH_SYSTEM, "value": batch_id },
        "entry": entries,
    })
}

/// A reader of one Bundle, with the FHIRPath of where it is.
struct Reader<'a> {
    org: &'a str,
    scope: &'a str,
}

fn err(code: &'static str, field: impl Into<String>) -> FhirError {
    FhirError {
        code,
        field: field.into(),
    }
}

/// The members of an object at `path`, or a shape error.
fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, FhirError> {
    value.as_object().ok_or_else(|| err(SHAPE, path))
}

/// The string member `name` of `map` at `path`.
fn text<'v>(map: &'v Map<String, Value>, name: &str, path: &str) -> Result<&'v str, FhirError> {
    map.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| err(SHAPE, format!("{path}.{name}")))
}

/// The array member `name` of `map` at `path` (absent: none).
fn array<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'v [Value], FhirError> {
    match map.get(name) {
        None => Ok(&[]),
        Some(Value::Array(items)) if !items.is_empty() => Ok(items),
        Some(_) => Err(err(SHAPE, format!("{path}.{name}"))),
    }
}

/// Every member of `map` is one of `allowed`, else `code` at the first other.
fn only(
    map: &Map<String, Value>,
    allowed: &[&str],
    code: &'static str,
    path: &str,
) -> Result<(), FhirError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) if key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Err(err(code, format!("{path}.{key}")))
        }
        // A key that is no FHIR name is not echoed.
        Some(_) => Err(err(code, path)),
        None => Ok(()),
    }
}

/// The one tag of the `meta` of the resource at `path`: `meta` holds only
/// `tag`, a list of exactly one tag of only `system` and `code` (any other
/// element refused with `extra`). The tag and its path.
fn single_tag<'v>(
    meta: &'v Value,
    path: &str,
    extra: &'static str,
) -> Result<(&'v Map<String, Value>, String), FhirError> {
    let meta_path = format!("{path}.meta");
    let meta = object(meta, &meta_path)?;
    only(meta, &["tag"], extra, &meta_path)?;
    let [tag] = array(meta, "tag", &meta_path)? else {
        return Err(err(SHAPE, format!("{meta_path}.tag")));
    };
    let tag_path = format!("{meta_path}.tag[0]");
    let tag = object(tag, &tag_path)?;
    only(tag, &["system", "code"], extra, &tag_path)?;
    Ok((tag, tag_path))
}

/// The one coding of `code` at `path`: its system and code.
fn coding<'v>(value: Option<&'v Value>, path: &str) -> Result<(&'v str, &'v str), FhirError> {
    let map = object(value.unwrap_or(&Value::Null), path)?;
    only(map, &["coding"], UNSUPPORTED_ELEMENT, path)?;
    let codings = array(map, "coding", path)?;
    let [one] = codings else {
        return Err(err(SHAPE, format!("{path}.coding")));
    };
    let at = format!("{path}.coding[0]");
    let one = object(one, &at)?;
    only(one, &["system", "code"], UNSUPPORTED_ELEMENT, &at)?;
    Ok((text(one, "system", &at)?, text(one, "code", &at)?))
}

/// Whether `map` (at `path`) is an absent value: a data-absent-reason.
fn absent(map: &Map<String, Value>, path: &str) -> Result<bool, FhirError> {
    match map.get("dataAbsentReason") {
        None => Ok(false),
        Some(reason) => {
            let at = format!("{path}.dataAbsentReason");
            match coding(Some(reason), &at)? {
                (DATA_ABSENT_SYSTEM, DATA_ABSENT_CODE) => Ok(true),
                _ => Err(err(UNSUPPORTED_ELEMENT, at)),
            }
        }
    }
}

/// A string value at `path`: `valueString`, or absent (empty).
fn string_value(map: &Map<String, Value>, path: &str) -> Result<String, FhirError> {
    match (map.get("valueString"), absent(map, path)?) {
        (Some(Value::String(s)), false) if !s.is_empty() => Ok(s.clone()),
        (None, true) => Ok(String::new()),
        _ => Err(err(SHAPE, format!("{path}.valueString"))),
    }
}

impl Reader<'_> {
    /// A Patient at `path` into a submission without data.
    fn patient(&self, resource: &Map<String, Value>, path: &str) -> Result<Submission, FhirError> {
        only(
            resource,
            &["resourceType", "meta", "identifier"],
            IDENTIFYING_ELEMENT,
            path,
        )?;
        let (tag, tag_path) = single_tag(
            resource.get("meta").unwrap_or(&Value::Null),
            path,
            IDENTIFYING_ELEMENT,
        )?;
        if text(tag, "system", &tag_path)? != METHOD_VERSION_SYSTEM {
            return Err(err(SHAPE, format!("{tag_path}.system")));
        }
        let method_version = text(tag, "code", &tag_path)?
            .parse::<u32>()
            .map_err(|_| err(SHAPE, format!("{tag_path}.code")))?;
        let mut submission = Submission {
            recipient_organization: self.org.to_owned(),
            recipient_scope: self.scope.to_owned(),
            method_version,
            record: None,
            blind_factors: None,
            encrypted_blind_factors: None,
            pseudonyms: None,
            reversible: None,
            data: Data::new(),
        };
        let ids_path = format!("{path}.identifier");
        let identifiers = array(resource, "identifier", path)?;
        if identifiers.is_empty() {
            return Err(err(SHAPE, ids_path));
        }
        let record = system(RECORD_KIND, self.org, self.scope);
        let sealed = system(BLIND_FACTORS_KIND, self.org, self.scope);
        let reversible = system(REVERSIBLE_KIND, self.org, self.scope);
        let temporary = typed_system(TEMPORARY_PSEUDONYM_KIND, "", self.org, self.scope);
        let (temporary_head, temporary_tail) = temporary
            .split_once("::")
            .unwrap_or((temporary.as_str(), ""));
        for (j, id) in identifiers.iter().enumerate() {
            let at = format!("{ids_path}[{j}]");
            let id = object(id, &at)?;
            only(id, &["system", "value"], IDENTIFYING_ELEMENT, &at)?;
            let system = text(id, "system", &at)?;
            let value = text(id, "value", &at)?.to_owned();
            let twice = || err(SHAPE, format!("{at}.system"));
            if system == record {
                if submission.record.replace(value).is_some() {
                    return Err(twice());
                }
            } else if system == sealed {
                if submission.encrypted_blind_factors.replace(value).is_some() {
                    return Err(twice());
                }
            } else if system == reversible {
                let mut parts = value.split('.');
                let (Some(kid), Some(enc), Some(ct), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(err(SHAPE, format!("{at}.value")));
                };
                let envelope = ReversibleEnvelope {
                    r#type: REVERSIBLE_TYPE.to_owned(),
                    kid: kid.to_owned(),
                    enc: enc.to_owned(),
                    ct: ct.to_owned(),
                };
                if submission.reversible.replace(envelope).is_some() {
                    return Err(twice());
                }
            } else if let Some(ty) = system
                .strip_prefix(temporary_head)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|rest| rest.strip_suffix(temporary_tail))
                .and_then(|rest| rest.strip_suffix(':'))
                .filter(|ty| !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                submission
                    .pseudonyms
                    .get_or_insert_with(Vec::new)
                    .push(SubmittedPseudonym {
                        pseudonym_type: ty.to_owned(),
                        temporary_pseudonym: value,
                    });
            } else {
                // Any other identifier may be a patient number or a BSN.
                return Err(err(IDENTIFYING_ELEMENT, format!("{at}.system")));
            }
        }
        Ok(submission)
    }

    /// An Observation at `path` of the Patient `subject`: its field and value.
    fn observation(
        &self,
        resource: &Map<String, Value>,
        path: &str,
        subject: &str,
    ) -> Result<(String, DataValue), FhirError> {
        only(
            resource,
            &[
                "resourceType",
                "meta",
                "status",
                "code",
                "subject",
                "valueString",
                "dataAbsentReason",
                "component",
            ],
            UNSUPPORTED_ELEMENT,
            path,
        )?;
        if resource.get("status").and_then(Value::as_str) != Some("final") {
            return Err(err(SHAPE, format!("{path}.status")));
        }
        let field_system = system(FIELD_KIND, self.org, self.scope);
        let code_path = format!("{path}.code");
        let (sys, name) = coding(resource.get("code"), &code_path)?;
        if sys != field_system {
            return Err(err(
                UNSUPPORTED_ELEMENT,
                format!("{code_path}.coding[0].system"),
            ));
        }
        let subject_path = format!("{path}.subject");
        let reference = object(
            resource.get("subject").unwrap_or(&Value::Null),
            &subject_path,
        )?;
        only(
            reference,
            &["reference"],
            UNSUPPORTED_ELEMENT,
            &subject_path,
        )?;
        if text(reference, "reference", &subject_path)? != subject {
            return Err(err(REFERENCE, format!("{subject_path}.reference")));
        }
        let is_list = match resource.get("meta") {
            None => false,
            Some(meta) => {
                let (tag, tag_path) = single_tag(meta, path, UNSUPPORTED_ELEMENT)?;
                if (
                    text(tag, "system", &tag_path)?,
                    text(tag, "code", &tag_path)?,
                ) != (VALUE_KIND_SYSTEM, LIST_CODE)
                {
                    return Err(err(UNSUPPORTED_ELEMENT, tag_path));
                }
                true
            }
        };
        let value = if !is_list {
            if resource.contains_key("component") {
                return Err(err(UNSUPPORTED_ELEMENT, format!("{path}.component")));
            }
            DataValue::Text(string_value(resource, path)?)
        } else if resource.contains_key("component") {
            if resource.contains_key("valueString") || resource.contains_key("dataAbsentReason") {
                return Err(err(SHAPE, format!("{path}.component")));
            }
            let mut items = Vec::new();
            for (k, component) in array(resource, "component", path)?.iter().enumerate() {
                let at = format!("{path}.component[{k}]");
                let component = object(component, &at)?;
                only(
                    component,
                    &["code", "valueString", "dataAbsentReason"],
                    UNSUPPORTED_ELEMENT,
                    &at,
                )?;
                if coding(component.get("code"), &format!("{at}.code"))? != (sys, name) {
                    return Err(err(SHAPE, format!("{at}.code")));
                }
                items.push(string_value(component, &at)?);
            }
            DataValue::List(items)
        } else {
            // An empty list: absent, never a string.
            if !string_value(resource, path)?.is_empty() {
                return Err(err(SHAPE, format!("{path}.valueString")));
            }
            DataValue::List(Vec::new())
        };
        Ok((name.to_owned(), value))
    }
}

/// Reads a delivery Bundle for the registry `org`/`scope` back into its
/// batch: its `batchId` and one submission per Patient with the data of
/// the Observations that follow it. Any element outside the allow-list is
/// refused ([`FhirError`]).
pub fn batch_of(bundle: &Value, org: &str, scope: &str) -> Result<BatchSubmission, FhirError> {
    let reader = Reader { org, scope };
    let root = object(bundle, "Bundle")?;
    only(
        root,
        &["resourceType", "type", "identifier", "entry"],
        UNSUPPORTED_ELEMENT,
        "Bundle",
    )?;
    if root.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(err(SHAPE, "Bundle.resourceType"));
    }
    if root.get("type").and_then(Value::as_str) != Some("transaction") {
        return Err(err(SHAPE, "Bundle.type"));
    }
    let id = object(
        root.get("identifier").unwrap_or(&Value::Null),
        "Bundle.identifier",
    )?;
    only(
        id,
        &["system", "value"],
        UNSUPPORTED_ELEMENT,
        "Bundle.identifier",
    )?;
    if text(id, "system", "Bundle.identifier")? != BATCH_SYSTEM {
        return Err(err(SHAPE, "Bundle.identifier.system"));
    }
    let batch_id = text(id, "value", "Bundle.identifier")?.to_owned();
    if !crate::registry::is_batch_id(&batch_id) {
        return Err(err(SHAPE, "Bundle.identifier.value"));
    }
    let entries = array(root, "entry", "Bundle")?;
    if entries.is_empty() {
        return Err(err(SHAPE, "Bundle.entry"));
    }
    let mut submissions: Vec<Submission> = Vec::new();
    let mut subject: Option<&str> = None;
    let mut seen_urls = std::collections::BTreeSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("Bundle.entry[{i}]");
        let entry = object(entry, &path)?;
        only(
            entry,
            &["fullUrl", "resource", "request"],
            UNSUPPORTED_ELEMENT,
            &path,
        )?;
        let url = text(entry, "fullUrl", &path)?;
        if !url.starts_with("urn:uuid:") || !seen_urls.insert(url) {
            return Err(err(SHAPE, format!("{path}.fullUrl")));
        }
        let request_path = format!("{path}.request");
        let request = object(entry.get("request").unwrap_or(&Value::Null), &request_path)?;
        only(
            request,
            &["method", "url"],
            UNSUPPORTED_ELEMENT,
            &request_path,
        )?;
        if text(request, "method", &request_path)? != "POST" {
            return Err(err(SHAPE, format!("{request_path}.method")));
        }
        let kind = text(request, "url", &request_path)?;
        let resource_path = format!("{path}.resource");
        let resource = object(
            entry.get("resource").unwrap_or(&Value::Null),
            &resource_path,
        )?;
        if resource.get("resourceType").and_then(Value::as_str) != Some(kind) {
            return Err(err(SHAPE, format!("{resource_path}.resourceType")));
        }
        match kind {
            "Patient" => {
                submissions.push(reader.patient(resource, &resource_path)?);
                subject = Some(url);
            }
            "Observation" => {
                let (Some(patient), Some(current)) = (subject, submissions.last_mut()) else {
                    return Err(err(REFERENCE, format!("{resource_path}.subject")));
                };
                let (name, value) = reader.observation(resource, &resource_path, patient)?;
                if current.data.insert(name, value).is_some() {
                    return Err(err(SHAPE, format!("{resource_path}.code")));
                }
            }
            _ => return Err(err(UNSUPPORTED_ELEMENT, format!("{request_path}.url"))),
        }
    }
    Ok(BatchSubmission {
        batch_id,
        submissions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "oin:00000001000000001000";
    const SCOPE: &str = "kwaliteitsregistratie-a";

    /// The vector the workbench's FHIR download is checked against
    /// (crates/browser/tests/js/fhir.test.mjs, byte for byte): `bundle_of`
    /// of its submissions is its `bundle`, and reads back to the same
    /// submissions.
    #[test]
    fn the_bundle_is_the_shared_vector() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/vectors/fhir-bundle.json"
        );
        let vector: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let text = |name: &str| vector[name].as_str().unwrap();
        let submissions: Vec<Submission> =
            serde_json::from_value(vector["submissions"].clone()).unwrap();
        let (org, scope) = (text("recipientOrganization"), text("recipientScope"));
        let bundle = bundle_of(text("batchId"), org, scope, &submissions);
        // The same JSON value: serde_json writes members in insertion order
        // where a dependency (josekit) turns on `preserve_order`, sorted
        // elsewhere; the vector has them sorted, as the workbench writes.
        let expected: Value = serde_json::from_str(text("bundle")).unwrap();
        assert_eq!(bundle, expected);
        let batch = batch_of(&bundle, org, scope).unwrap();
        assert_eq!(batch.batch_id, text("batchId"));
        assert_eq!(batch.submissions, submissions);
    }

    fn submission(data: Data) -> Submission {
        Submission {
            recipient_organization: ORG.into(),
            recipient_scope: SCOPE.into(),
            method_version: 1,
            record: Some("eyJh.a.b.c.d".into()),
            blind_factors: None,
            encrypted_blind_factors: Some("eyJi.e.f.g.h".into()),
            pseudonyms: None,
            reversible: None,
            data,
        }
    }

    fn data() -> Data {
        let mut data = Data::new();
        data.insert("diagnose".into(), DataValue::from("Heupartrose"));
        data.insert(
            "complicaties".into(),
            DataValue::List(vec![
                "wondinfectie".into(),
                String::new(),
                "heroperatie".into(),
            ]),
        );
        data.insert("een".into(), DataValue::List(vec!["x".into()]));
        data.insert("geen".into(), DataValue::List(vec![]));
        data.insert("leeg".into(), DataValue::from(""));
        data
    }

    #[test]
    fn data_round_trips_through_a_bundle() {
        let mut national = submission(Data::new());
        national.record = None;
        national.encrypted_blind_factors = None;
        national.pseudonyms = Some(vec![SubmittedPseudonym {
            pseudonym_type: "NGGV".into(),
            temporary_pseudonym: "cGFja2FnZQ".into(),
        }]);
        let subs = vec![submission(data()), national, submission(Data::new())];
        let bundle = bundle_of("run-1-0", ORG, SCOPE, &subs);
        let back = batch_of(&bundle, ORG, SCOPE).unwrap();
        assert_eq!(back.batch_id, "run-1-0");
        assert_eq!(back.submissions, subs);
        // The same input makes the same Bundle.
        assert_eq!(bundle_of("run-1-0", ORG, SCOPE, &subs), bundle);
        // No empty string anywhere (FHIR forbids them).
        assert!(!bundle.to_string().contains("\"\""));
    }

    #[test]
    fn identifying_and_unknown_elements_are_refused() {
        let bundle = bundle_of("b", ORG, SCOPE, &[submission(data())]);
        let with = |change: &dyn Fn(&mut Value)| {
            let mut b = bundle.clone();
            change(&mut b);
            batch_of(&b, ORG, SCOPE).unwrap_err()
        };
        let patient = "/entry/0/resource";
        for name in [
            "name",
            "birthDate",
            "address",
            "gender",
            "telecom",
            "text",
            "extension",
            "id",
        ] {
            let e = with(&|b| {
                b.pointer_mut(patient).unwrap()[name] = json!("x");
            });
            assert_eq!(
                e,
                err(
                    IDENTIFYING_ELEMENT,
                    format!("Bundle.entry[0].resource.{name}")
                ),
                "{name}"
            );
        }
        let e = with(&|b| {
            b.pointer_mut("/entry/0/resource/identifier/0").unwrap()["system"] =
                json!("http://fhir.nl/fhir/NamingSystem/bsn");
        });
        assert_eq!(
            e,
            err(
                IDENTIFYING_ELEMENT,
                "Bundle.entry[0].resource.identifier[0].system"
            )
        );
        let e = with(&|b| {
            b.pointer_mut("/entry/1/resource").unwrap()["performer"] = json!([]);
        });
        assert_eq!(e.code, UNSUPPORTED_ELEMENT);
        let e = with(&|b| {
            b.pointer_mut("/entry/1/resource/subject").unwrap()["reference"] =
                json!("urn:uuid:00000000-0000-4000-8000-000000000000");
        });
        assert_eq!(e.code, REFERENCE);
        let e = with(&|b| b["type"] = json!("batch"));
        assert_eq!(e, err(SHAPE, "Bundle.type"));
        let e = with(&|b| b["entry"] = json!([]));
        assert_eq!(e, err(SHAPE, "Bundle.entry"));
        // Another registry's systems are not this one's.
        assert!(batch_of(&bundle, ORG, "andere-scope").is_err());
    }
}
