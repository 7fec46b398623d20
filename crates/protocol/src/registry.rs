//! What the browser submits to the registry, and what the registry answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One temporary pseudonym of a submission in the national packaging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmittedPseudonym {
    /// Pseudonym type code.
    #[serde(rename = "type")]
    pub pseudonym_type: String,
    /// The temporary pseudonym ([`crate::package::TemporaryPseudonym`], encoded).
    pub temporary_pseudonym: String,
}

/// One clinical value of a submission's `data`: a string, or the strings of
/// a control with several values (a checkbox group, a multi-select), in the
/// form's order; an empty list is a group with nothing chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DataValue {
    /// One value.
    Text(String),
    /// Several values, in order.
    List(Vec<String>),
}

impl DataValue {
    /// The strings of the value: one, or the list's.
    pub fn items(&self) -> &[String] {
        match self {
            DataValue::Text(text) => core::slice::from_ref(text),
            DataValue::List(list) => list,
        }
    }
}

impl From<&str> for DataValue {
    fn from(text: &str) -> Self {
        DataValue::Text(text.to_owned())
    }
}

/// The clinical fields of a record, by name.
pub type Data = BTreeMap<String, DataValue>;

/// `POST /api/submissions` body: one pseudonymised record.
///
/// It carries the pseudonyms in exactly one of two shapes:
/// - `record` + `encryptedBlindFactors`: the record JWE of
///   `POST /v1/evaluate`, once, with the blind factor of each type it
///   evaluates, encrypted to the registry ([`BlindFactorsPlaintext`]; the
///   types made are the keys of its `blindFactors`, and every evaluation of
///   the record has its blind factor). `record` + `blindFactors` in the
///   clear only where a registry's development setting allows it;
/// - `pseudonyms`: one temporary pseudonym per type in the national
///   packaging, each with its own JWE of `POST /oprf/eval`.
///
/// [`Submission::shape`] tells which, or why neither.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submission {
    /// The recipient organisation the pseudonyms were made for.
    pub recipient_organization: String,
    /// The recipient scope.
    pub recipient_scope: String,
    /// The method version the browser used.
    pub method_version: u32,
    /// The compact record JWE of `POST /v1/evaluate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// With `record`, in the clear (development only): the blind factor of
    /// each type, padded base64url, by type code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blind_factors: Option<BTreeMap<String, String>>,
    /// With `record`: the compact JWE to the registry's key of a
    /// [`BlindFactorsPlaintext`] (`alg` [`crate::JWE_ALG_RSA_OAEP_256`],
    /// `enc` [`crate::JWE_ENC_A256GCM`], `kid`, `cty`
    /// [`BLIND_FACTORS_CTY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_blind_factors: Option<String>,
    /// The national packaging: one temporary pseudonym per type, each type
    /// at most once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonyms: Option<Vec<SubmittedPseudonym>>,
    /// With `record` only: the reversible pseudonym (type `R`), an HPKE
    /// ciphertext of the provider-scoped local patient number to the
    /// supplying provider's key. The registry stores it opaque: it cannot
    /// open it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversible: Option<ReversibleEnvelope>,
    /// The clinical fields of the form, by name; never identifying fields.
    pub data: Data,
}

/// The type code of the reversible pseudonym. Not an OPRF type: it is never
/// evaluated by the TTP and is not one of the ten Wkz pseudonym types.
pub use pseudoform_core::reversible::REVERSIBLE_TYPE;

/// Length of the HPKE `enc` of a reversible pseudonym: an uncompressed
/// P-256 point (DHKEM(P-256, HKDF-SHA256), RFC 9180 §7.1).
pub const REVERSIBLE_ENC_BYTES: usize = 65;

/// Shortest HPKE ciphertext of a reversible pseudonym, in bytes (the
/// AES-256-GCM tag).
pub const REVERSIBLE_MIN_CT_BYTES: usize = 16;

/// Longest HPKE ciphertext of a reversible pseudonym, in bytes.
pub const REVERSIBLE_MAX_CT_BYTES: usize = 256;

/// `reversible` of a [`Submission`]: the HPKE (RFC 9180, base mode,
/// `HPKE-P256-SHA256-A256GCM`) ciphertext of the plaintext `provider|mrn` to
/// the supplying provider's current key `kid`, with the associated data
/// `pseudoform-reversible/1|{org}|{scope}|{kid}`. Its [`digest`](Self::digest)
/// is in the record's claims, signed by the TTP: that, not the associated
/// data, binds it to its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversibleEnvelope {
    /// Always [`REVERSIBLE_TYPE`].
    #[serde(rename = "type")]
    pub r#type: String,
    /// The RFC 7638 thumbprint of the provider's public key (43 base64url
    /// characters).
    pub kid: String,
    /// The HPKE encapsulated key: unpadded base64url of
    /// [`REVERSIBLE_ENC_BYTES`] bytes.
    pub enc: String,
    /// The HPKE ciphertext: unpadded base64url of
    /// [`REVERSIBLE_MIN_CT_BYTES`]`..=`[`REVERSIBLE_MAX_CT_BYTES`] bytes.
    pub ct: String,
}

impl ReversibleEnvelope {
    /// Whether the envelope has the shape of a reversible pseudonym: type
    /// `R`, a `kid` of 43 base64url characters (a SHA-256 thumbprint), an
    /// `enc` of an uncompressed P-256 point and a `ct` of a bounded length.
    /// The registry cannot check more: it has no key to open it.
    pub fn is_well_formed(&self) -> bool {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let bytes = |text: &str| Base64UrlUnpadded::decode_vec(text).ok();
        let kid_ok = self.kid.len() == 43 && bytes(&self.kid).is_some_and(|k| k.len() == 32);
        let enc_ok = bytes(&self.enc)
            .is_some_and(|e| e.len() == REVERSIBLE_ENC_BYTES && e.first() == Some(&0x04));
        let ct_ok = bytes(&self.ct).is_some_and(|c| {
            (REVERSIBLE_MIN_CT_BYTES..=REVERSIBLE_MAX_CT_BYTES).contains(&c.len())
        });
        self.r#type == REVERSIBLE_TYPE && kid_ok && enc_ok && ct_ok
    }

    /// The envelope's digest: the unpadded base64url SHA-256 of the ASCII
    /// `{kid}.{enc}.{ct}` (the three members as sent). The browser sends it
    /// with the evaluate call, the TTP signs it into the record's claims
    /// (`reversible`), the registry stores the envelope only when the two
    /// match, and the provider's page opens the envelope only when the
    /// TTP-signed claims carry its digest.
    pub fn digest(&self) -> String {
        reversible_digest(&self.kid, &self.enc, &self.ct)
    }
}

pub use pseudoform_core::reversible::reversible_digest;

/// Whether `text` has the form of a [`reversible_digest`]: 43 unpadded
/// base64url characters of 32 bytes.
pub fn is_reversible_digest(text: &str) -> bool {
    use base64ct::{Base64UrlUnpadded, Encoding};
    text.len() == 43 && Base64UrlUnpadded::decode_vec(text).is_ok_and(|d| d.len() == 32)
}

/// The `cty` of the JWE of `encryptedBlindFactors`.
pub const BLIND_FACTORS_CTY: &str = "application/json";

/// The plaintext of `encryptedBlindFactors`: the blind factors and the
/// record JWE they belong to.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlindFactorsPlaintext {
    /// The blind factor of each type, padded base64url, by type code.
    pub blind_factors: BTreeMap<String, String>,
    /// [`record_digest`] of the submission's `record`.
    pub rec: String,
}

impl std::fmt::Debug for BlindFactorsPlaintext {
    /// Never the blind factors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlindFactorsPlaintext")
            .field("types", &self.blind_factors.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// `rec`: the unpadded base64url of the SHA-256 of a compact record JWE
/// (its ASCII), binding encrypted blind factors to their record.
pub fn record_digest(record: &str) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use sha2::{Digest, Sha256};
    Base64UrlUnpadded::encode_string(&Sha256::digest(record.as_bytes()))
}

/// The blind factors of a record submission, as they came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlindFactors<'a> {
    /// `encryptedBlindFactors`: a compact JWE of a [`BlindFactorsPlaintext`].
    Encrypted(&'a str),
    /// `blindFactors` in the clear, by type code.
    Clear(&'a BTreeMap<String, String>),
}

/// The pseudonyms of a [`Submission`], in the one shape it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape<'a> {
    /// One record JWE and the blind factor of each type.
    Record {
        /// The compact record JWE.
        record: &'a str,
        /// The blind factors, encrypted or (development) in the clear.
        blind_factors: BlindFactors<'a>,
    },
    /// The national packaging.
    Pseudonyms(&'a [SubmittedPseudonym]),
}

/// Why a [`Submission`] has no usable shape: the member that is missing or
/// must not be there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// `record`, `encryptedBlindFactors`, `blindFactors`, `pseudonyms` or
    /// `reversible`.
    pub field: &'static str,
}

impl Submission {
    /// The shape of the pseudonyms: exactly one of `record` (with exactly
    /// one of `encryptedBlindFactors` and `blindFactors`) and `pseudonyms`;
    /// `reversible` only with `record`.
    pub fn shape(&self) -> Result<Shape<'_>, ShapeError> {
        let shape = self.pseudonyms_shape()?;
        if self.reversible.is_some() && matches!(shape, Shape::Pseudonyms(_)) {
            return Err(ShapeError {
                field: "reversible",
            });
        }
        Ok(shape)
    }

    fn pseudonyms_shape(&self) -> Result<Shape<'_>, ShapeError> {
        let err = |field| Err(ShapeError { field });
        match (
            &self.record,
            &self.encrypted_blind_factors,
            &self.blind_factors,
            &self.pseudonyms,
        ) {
            (Some(_), _, _, Some(_)) => err("pseudonyms"),
            (Some(_), Some(_), Some(_), None) => err("blindFactors"),
            (Some(record), Some(encrypted), None, None) => Ok(Shape::Record {
                record,
                blind_factors: BlindFactors::Encrypted(encrypted),
            }),
            (Some(record), None, Some(clear), None) => Ok(Shape::Record {
                record,
                blind_factors: BlindFactors::Clear(clear),
            }),
            (Some(_), None, None, None) => err("encryptedBlindFactors"),
            (None, None, None, Some(pseudonyms)) => Ok(Shape::Pseudonyms(pseudonyms)),
            (None, None, None, None) | (None, Some(_), _, _) | (None, None, Some(_), _) => {
                err("record")
            }
        }
    }
}

/// `POST /api/submissions` answer (201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// The registry's id of the stored record.
    pub record_id: i64,
    /// The stored definitive pseudonyms as labels `TYPE:vN:<base64url>`.
    pub pseudonyms: Vec<String>,
}

/// The `rec` of a submission's submitter proof: the unpadded base64url
/// SHA-256 of its record JWE, or of the national shape's
/// `temporaryPseudonym`s joined by `.`.
pub fn submission_rec(submission: &Submission) -> String {
    match &submission.record {
        Some(record) => record_digest(record),
        None => {
            let packages: Vec<&str> = submission
                .pseudonyms
                .iter()
                .flatten()
                .map(|p| p.temporary_pseudonym.as_str())
                .collect();
            record_digest(&packages.join("."))
        }
    }
}

/// The path of the batch submission endpoint (processors).
pub const BATCH_PATH: &str = "/api/batches";

/// The most submissions in one [`BatchSubmission`].
pub const MAX_SUBMISSIONS_PER_BATCH: usize = 500;

/// The longest `batchId`, in characters.
pub const MAX_BATCH_ID: usize = 128;

/// Whether `id` is a `batchId`: 1 to [`MAX_BATCH_ID`] characters of
/// `A-Z a-z 0-9 . _ : -`.
pub fn is_batch_id(id: &str) -> bool {
    (1..=MAX_BATCH_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// `POST /api/batches` body: up to [`MAX_SUBMISSIONS_PER_BATCH`]
/// submissions of one processor, under an id the client chooses
/// (`{runId}-{chunkIndex}`) that makes a resend idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSubmission {
    /// The client's id of the batch ([`is_batch_id`]).
    pub batch_id: String,
    /// The submissions, each as `POST /api/submissions` takes it.
    pub submissions: Vec<Submission>,
}

/// The `rec` of a batch's one submitter proof: the unpadded base64url
/// SHA-256 of the submissions' [`submission_rec`]s joined by `.` (in order).
pub fn batch_rec(recs: &[&str]) -> String {
    record_digest(&recs.join("."))
}

/// What became of one submission of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BatchItemStatus {
    /// Stored now.
    Stored,
    /// Stored before (the same submission, or the same batch and index
    /// with the same definitive pseudonyms): the first receipt, nothing
    /// stored again.
    AlreadyStored,
    /// Refused; nothing of it stored.
    Refused,
}

/// One submission's result in a [`BatchReceipt`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchItemResult {
    /// The submission's index in the batch (from 0).
    pub index: usize,
    /// What became of it.
    pub status: BatchItemStatus,
    /// With `stored`/`alreadyStored`: the record's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<i64>,
    /// With `stored`/`alreadyStored`: the definitive pseudonyms' labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonyms: Option<Vec<String>>,
    /// With `refused`: the code, as `POST /api/submissions` answers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// With `refused`: the member it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `POST /api/batches` answer (200): one result per submission, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchReceipt {
    /// The batch's id, as sent.
    pub batch_id: String,
    /// One result per submission, in order.
    pub results: Vec<BatchItemResult>,
}

/// The columns of a pseudonymised CSV file (the workbench's download and
/// `pseudoform batch --output`), before the clinical ones: the row of the
/// extract, the registry, the method version, the record JWE, the sealed
/// blind factors and the reversible pseudonym as `kid.enc.ct` (empty
/// without one). Written UTF-8 with a BOM, [`PSEUDONYMISED_CSV_DELIMITER`],
/// CRLF; a list value's items joined by [`PSEUDONYMISED_CSV_LIST_SEPARATOR`].
pub const PSEUDONYMISED_CSV_COLUMNS: [&str; 7] = [
    "row",
    "recipientOrganization",
    "recipientScope",
    "methodVersion",
    "record",
    "encryptedBlindFactors",
    "reversible",
];

/// The delimiter of a pseudonymised CSV file (what a Dutch spreadsheet reads).
pub const PSEUDONYMISED_CSV_DELIMITER: &str = ";";

/// The separator of a list value's items in a pseudonymised CSV file.
pub const PSEUDONYMISED_CSV_LIST_SEPARATOR: &str = "|";

/// A definitive pseudonym as a registry stores it: type and key version
/// readable from the label `TYPE:vN:<base64url of N>`.
pub fn label(pseudonym_type: &str, key_version: u32, element_b64: &str) -> String {
    format!("{pseudonym_type}:v{key_version}:{element_b64}")
}

/// Names of form fields that identify a patient, English and Dutch; a
/// registry refuses a submission whose `data` has any of them (compared
/// without case, `_` and `-`). `postcode`, `bsn` and `mrn` are the same in
/// both languages.
pub const IDENTIFYING_FIELD_NAMES: &[&str] = &[
    "birthName",
    "birthDate",
    "sex",
    "initial",
    "postcode",
    "houseNumber",
    "houseNumberAddition",
    "bsn",
    "mrn",
    // The Dutch names a form would use.
    "geboortenaam",
    "achternaam",
    "naam",
    "voornaam",
    "voorletter",
    "voorletters",
    "geboortedatum",
    "geslacht",
    "huisnummer",
    "toevoeging",
    "huisnummertoevoeging",
    "adres",
    "straat",
    "woonplaats",
    "burgerservicenummer",
    "patientnummer",
    "patiëntnummer",
    "patientid",
    "ziekenhuisnummer",
];

/// The identifying field name `key` is a spelling of, if any: compared
/// without case, `_` and `-` (so `BSN`, `birth_name` and `birth-date` are
/// caught too). The registry refuses such a `data` key; a processor's
/// mapping refuses it before anything is sent.
pub fn identifying_name(key: &str) -> Option<&'static str> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .map(|c| c.to_lowercase().to_string())
            .collect()
    };
    let key = squash(key);
    IDENTIFYING_FIELD_NAMES
        .iter()
        .copied()
        .find(|name| squash(name) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_of_a_reversible_envelope() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let b64 = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
        let mut point = vec![4u8; REVERSIBLE_ENC_BYTES];
        point[1] = 9;
        let good = ReversibleEnvelope {
            r#type: "R".into(),
            kid: b64(&[7; 32]),
            enc: b64(&point),
            ct: b64(&[1; 40]),
        };
        assert!(good.is_well_formed());
        let with = |change: &dyn Fn(&mut ReversibleEnvelope)| {
            let mut e = good.clone();
            change(&mut e);
            e.is_well_formed()
        };
        assert!(!with(&|e| e.r#type = "MRN".into()));
        assert!(!with(&|e| e.kid = b64(&[7; 31])));
        assert!(!with(&|e| e.kid = format!("{}=", b64(&[7; 32]))));
        assert!(!with(&|e| e.enc = b64(&[4; 64])));
        assert!(!with(&|e| e.enc = b64(&[2; 65])));
        assert!(!with(&|e| e.ct = b64(&[1; 15])));
        assert!(with(&|e| e.ct = b64(&[1; 16])));
        assert!(with(&|e| e.ct = b64(&[1; 256])));
        assert!(!with(&|e| e.ct = b64(&[1; 257])));
        assert!(!with(&|e| e.ct = "not base64!".into()));
        let json = serde_json::to_string(&good).unwrap();
        assert!(json.starts_with(r#"{"type":"R","kid":"#), "{json}");
    }

    /// The vector shared with the browser's `reversibleDigest` (contract 15b).
    #[test]
    fn the_digest_of_an_envelope_is_the_shared_vector() {
        let envelope = ReversibleEnvelope {
            r#type: "R".into(),
            kid: "WDP_O6aAP9IXpCq0K9s4P3F-ZA5rR6S3x8iQOaPS2Eo".into(),
            enc: "BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-P0A".into(),
            ct: "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM".into(),
        };
        assert!(envelope.is_well_formed());
        let digest = envelope.digest();
        assert_eq!(digest, "fyh-Az8HJZYx5hsFjtDhqGA-mOhZIp4ZjUo5gdwyAok");
        assert!(is_reversible_digest(&digest));
        // Each member counts (base64url has no `.`, so the join is unambiguous).
        let mut other = envelope.clone();
        other.ct = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoQ".into();
        assert_ne!(other.digest(), digest);
        let mut other = envelope.clone();
        other.kid = "XDP_O6aAP9IXpCq0K9s4P3F-ZA5rR6S3x8iQOaPS2Eo".into();
        assert_ne!(other.digest(), digest);
        assert!(!is_reversible_digest(&format!("{digest}=")));
        assert!(!is_reversible_digest(&digest[..42]));
        assert!(!is_reversible_digest(
            "fyh+Az8HJZYx5hsFjtDhqGA-mOhZIp4ZjUo5gdwyAok"
        ));
    }

    /// The vector shared with the browser's `batchRec` (docs/vectors/batch-rec.json).
    #[test]
    fn the_batch_rec_is_the_shared_vector() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/vectors/batch-rec.json"
        ))
        .unwrap();
        let vector: serde_json::Value = serde_json::from_str(&text).unwrap();
        let records: Vec<String> = vector["submissions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect();
        let recs: Vec<String> = records.iter().map(|r| record_digest(r)).collect();
        let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
        assert_eq!(batch_rec(&recs), vector["rec"].as_str().unwrap());
        // Order counts.
        let mut reversed = recs.clone();
        reversed.reverse();
        assert_ne!(batch_rec(&reversed), batch_rec(&recs));
        // One submission: the SHA-256 of its rec.
        assert_eq!(batch_rec(&[recs[0]]), record_digest(recs[0]));
    }

    #[test]
    fn batch_ids_and_the_batch_shape() {
        for good in ["run-1", "a", "0f3c.7:_-Z", &"x".repeat(MAX_BATCH_ID)] {
            assert!(is_batch_id(good), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(MAX_BATCH_ID + 1)] {
            assert!(!is_batch_id(bad), "{bad}");
        }
        let batch: BatchSubmission = serde_json::from_str(&format!(
            r#"{{"batchId":"r-0","submissions":[{{{ENVELOPE},"pseudonyms":[],"data":{{}}}}]}}"#
        ))
        .unwrap();
        assert_eq!(batch.submissions.len(), 1);
        assert!(serde_json::from_str::<BatchSubmission>(
            r#"{"batchId":"r-0","submissions":[],"x":1}"#
        )
        .is_err());
        let item = BatchItemResult {
            index: 2,
            status: BatchItemStatus::AlreadyStored,
            record_id: Some(12),
            pseudonyms: Some(vec!["NGGV:v1:x".into()]),
            code: None,
            field: None,
        };
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            r#"{"index":2,"status":"alreadyStored","recordId":12,"pseudonyms":["NGGV:v1:x"]}"#
        );
    }

    fn parse(json: &str) -> Result<Submission, serde_json::Error> {
        serde_json::from_str(json)
    }

    const ENVELOPE: &str = r#""recipientOrganization":"oin:00000001000000001000","recipientScope":"s","methodVersion":1"#;

    #[test]
    fn the_record_shape_with_string_and_list_values() {
        let s = parse(&format!(
            r#"{{{ENVELOPE},"record":"a.b.c.d.e","blindFactors":{{"NGGV":"r1","RGG":"r2"}},
               "data":{{"diagnose":"Heupartrose","complicaties":["wondinfectie","heroperatie"],"leeg":[]}}}}"#
        ))
        .unwrap();
        match s.shape().unwrap() {
            Shape::Record {
                record,
                blind_factors: BlindFactors::Clear(blind_factors),
            } => {
                assert_eq!(record, "a.b.c.d.e");
                assert_eq!(blind_factors.keys().collect::<Vec<_>>(), ["NGGV", "RGG"]);
            }
            Shape::Record { .. } => panic!("blind factors in the clear"),
            Shape::Pseudonyms(_) => panic!("a record submission"),
        }
        assert_eq!(s.data["diagnose"], DataValue::from("Heupartrose"));
        assert_eq!(
            s.data["complicaties"].items(),
            ["wondinfectie".to_owned(), "heroperatie".to_owned()]
        );
        assert_eq!(s.data["leeg"], DataValue::List(vec![]));
        // Serialised back, the order of a list is kept and absent shapes are left out.
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""complicaties":["wondinfectie","heroperatie"]"#));
        assert!(!json.contains("pseudonyms"));
    }

    #[test]
    fn the_record_digest_is_unpadded_base64url_of_sha256() {
        // SHA-256("abc") of FIPS 180-2.
        assert_eq!(
            record_digest("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        let plaintext: BlindFactorsPlaintext =
            serde_json::from_str(r#"{"blindFactors":{"NGGV":"secret-r"},"rec":"d"}"#).unwrap();
        assert!(!format!("{plaintext:?}").contains("secret-r"));
        assert!(serde_json::from_str::<BlindFactorsPlaintext>(
            r#"{"blindFactors":{},"rec":"d","x":1}"#
        )
        .is_err());
    }

    #[test]
    fn exactly_one_shape() {
        let with = |members: &str| parse(&format!(r#"{{{ENVELOPE},{members}"data":{{}}}}"#));
        let national = with(r#""pseudonyms":[{"type":"B","temporaryPseudonym":"x"}],"#).unwrap();
        let encrypted = with(r#""record":"x","encryptedBlindFactors":"y","#).unwrap();
        assert_eq!(
            encrypted.shape(),
            Ok(Shape::Record {
                record: "x",
                blind_factors: BlindFactors::Encrypted("y")
            })
        );
        assert!(matches!(national.shape(), Ok(Shape::Pseudonyms(p)) if p.len() == 1));
        for (members, field) in [
            ("", "record"),
            (r#""record":"x","#, "encryptedBlindFactors"),
            (
                r#""record":"x","encryptedBlindFactors":"y","blindFactors":{},"#,
                "blindFactors",
            ),
            (r#""encryptedBlindFactors":"y","#, "record"),
            (
                r#""record":"x","encryptedBlindFactors":"y","pseudonyms":[],"#,
                "pseudonyms",
            ),
            (r#""blindFactors":{},"#, "record"),
            (r#""blindFactors":{},"pseudonyms":[],"#, "record"),
            (
                r#""record":"x","blindFactors":{},"pseudonyms":[],"#,
                "pseudonyms",
            ),
            (r#""record":"x","pseudonyms":[],"#, "pseudonyms"),
            (
                r#""pseudonyms":[],"reversible":{"type":"R","kid":"k","enc":"e","ct":"c"},"#,
                "reversible",
            ),
        ] {
            assert_eq!(
                with(members).unwrap().shape(),
                Err(ShapeError { field }),
                "{members}"
            );
        }
        // A reversible member with unknown members is refused.
        assert!(with(r#""record":"x","encryptedBlindFactors":"y","reversible":{"type":"R","kid":"k","enc":"e","ct":"c","mrn":"1"},"#).is_err());
        // Unknown members and values that are neither a string nor strings are refused.
        assert!(with(r#""bsn":"1","#).is_err());
        assert!(parse(&format!(
            r#"{{{ENVELOPE},"pseudonyms":[],"data":{{"a":1}}}}"#
        ))
        .is_err());
        assert!(parse(&format!(
            r#"{{{ENVELOPE},"pseudonyms":[],"data":{{"a":[1]}}}}"#
        ))
        .is_err());
        assert!(parse(&format!(
            r#"{{{ENVELOPE},"pseudonyms":[],"data":{{"a":[["x"]]}}}}"#
        ))
        .is_err());
    }
}
