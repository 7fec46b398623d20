//! The mapping of an extract's columns: which column holds which
//! identifying field of the method, which hold the registry's clinical
//! fields (by the name the registry knows them), and which one, if any,
//! records a patient's objection (opt-out).
//!
//! A mapping file is TOML (docs/processors.md):
//!
//! ```toml
//! opt_out = "Bezwaar"          # optional
//! delimiter = ";"              # optional: detected from the header row
//! encoding = "windows-1252"    # optional: "utf-8", "windows-1252" or "auto"
//!
//! [identity]                   # method field name = column
//! birthName = "Geboortenaam"
//! birthDate = "Geboortedatum"
//!
//! [data]                       # the registry's field name = column
//! diagnose = "Diagnose"
//! ```
//!
//! [`Mapping::resolve`] checks it against the header row: every column
//! exists once, no column serves two purposes, no clinical name is an
//! identifying one (the registry would refuse every record), and the
//! provider is never a column (it is the one the processor acts for).

use std::collections::BTreeMap;
use std::path::Path;

use pseudoform_core::Field;
use pseudoform_protocol::registry::identifying_name;
use serde::Deserialize;

use crate::input::TextEncoding;

/// A problem with the mapping file: what is wrong, with the names from the
/// file (column and field names, never a cell of the extract).
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file cannot be read.
    #[error("the mapping file {path} cannot be read: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The file is not a mapping.
    #[error("the mapping file is not valid: {0}")]
    Syntax(String),
    /// An `[identity]` key that is no field of the method.
    #[error("mapping: `{0}` is not an identifying field of the method (birthName, birthDate, sex, initial, postcode, houseNumber, houseNumberAddition, bsn, mrn)")]
    UnknownField(String),
    /// `provider` mapped to a column.
    #[error("mapping: `provider` is not a column: it is the provider the processor acts for (`provider` in the connection file)")]
    ProviderColumn,
    /// A clinical field name that identifies a patient.
    #[error("mapping: the clinical field `{0}` has an identifying name; the registry refuses identifying data")]
    IdentifyingData(String),
    /// A column that is not in the header row.
    #[error("mapping: the column `{0}` is not in the file's header row")]
    MissingColumn(String),
    /// A column named twice in the header row.
    #[error("the file's header row has the column `{0}` more than once")]
    DuplicateColumn(String),
    /// A column used for two purposes.
    #[error("mapping: the column `{0}` is mapped more than once")]
    ReusedColumn(String),
    /// Nothing identifying mapped.
    #[error("mapping: no identifying field is mapped")]
    NoIdentity,
    /// A delimiter that is not one ASCII character.
    #[error("mapping: the delimiter must be one character: `;`, `,`, tab or `|`")]
    Delimiter,
}

/// The mapping file as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Method field name → column name.
    #[serde(default)]
    pub identity: BTreeMap<String, String>,
    /// Registry field name → column name.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// The column of the patient's objection, if the extract has one.
    #[serde(default)]
    pub opt_out: Option<String>,
    /// The field delimiter; detected from the header row when absent.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// The text encoding; detected when absent or `auto`.
    #[serde(default)]
    pub encoding: Option<TextEncoding>,
}

/// A mapping checked against a header row: column indices.
#[derive(Clone, Debug)]
pub struct Columns {
    /// (field, column index) of each mapped identifying field.
    pub identity: Vec<(Field, usize)>,
    /// (registry field name, column index) of each clinical field.
    pub data: Vec<(String, usize)>,
    /// The opt-out column.
    pub opt_out: Option<usize>,
}

impl Mapping {
    /// Reads a mapping file.
    pub fn from_file(path: &Path) -> Result<Self, MappingError> {
        let text = std::fs::read_to_string(path).map_err(|e| MappingError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Mapping::from_toml(&text)
    }

    /// Reads a mapping from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, MappingError> {
        let mapping: Mapping =
            toml::from_str(text).map_err(|e| MappingError::Syntax(e.message().to_owned()))?;
        for name in mapping.identity.keys() {
            match Field::from_name(name) {
                Some(Field::Provider) => return Err(MappingError::ProviderColumn),
                Some(_) => {}
                None => return Err(MappingError::UnknownField(name.clone())),
            }
        }
        if mapping.identity.is_empty() {
            return Err(MappingError::NoIdentity);
        }
        if let Some(name) = mapping.data.keys().find(|n| identifying_name(n).is_some()) {
            return Err(MappingError::IdentifyingData(name.clone()));
        }
        mapping.delimiter_byte()?;
        Ok(mapping)
    }

    /// The delimiter as a byte, if one is set.
    pub fn delimiter_byte(&self) -> Result<Option<u8>, MappingError> {
        match self.delimiter.as_deref() {
            None => Ok(None),
            Some("\\t") | Some("\t") => Ok(Some(b'\t')),
            Some(d) => match d.as_bytes() {
                [b @ (b';' | b',' | b'|')] => Ok(Some(*b)),
                _ => Err(MappingError::Delimiter),
            },
        }
    }

    /// Checks the mapping against `header` and returns the column indices.
    pub fn resolve(&self, header: &[String]) -> Result<Columns, MappingError> {
        let mut index = BTreeMap::new();
        for (i, name) in header.iter().enumerate() {
            if index.insert(name.trim(), i).is_some() {
                return Err(MappingError::DuplicateColumn(name.trim().to_owned()));
            }
        }
        let mut used = Vec::new();
        let mut column = |name: &str| -> Result<usize, MappingError> {
            let i = *index
                .get(name.trim())
                .ok_or_else(|| MappingError::MissingColumn(name.to_owned()))?;
            if used.contains(&i) {
                return Err(MappingError::ReusedColumn(name.to_owned()));
            }
            used.push(i);
            Ok(i)
        };
        let mut identity = Vec::new();
        for field in Field::ALL {
            if let Some(name) = self.identity.get(field.name()) {
                identity.push((field, column(name)?));
            }
        }
        let mut data = Vec::new();
        for (name, col) in &self.data {
            data.push((name.clone(), column(col)?));
        }
        let opt_out = self.opt_out.as_deref().map(&mut column).transpose()?;
        Ok(Columns {
            identity,
            data,
            opt_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
opt_out = "Bezwaar"
delimiter = ";"
[identity]
birthName = "Naam"
birthDate = "Geboren"
[data]
diagnose = "Diagnose"
"#;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn resolves_columns_by_name_in_any_order() {
        let mapping = Mapping::from_toml(GOOD).unwrap();
        let columns = mapping
            .resolve(&header(&[
                "Diagnose",
                " Geboren ",
                "Naam",
                "Bezwaar",
                "Extra",
            ]))
            .unwrap();
        assert_eq!(
            columns.identity,
            vec![(Field::BirthName, 2), (Field::BirthDate, 1)]
        );
        assert_eq!(columns.data, vec![("diagnose".to_owned(), 0)]);
        assert_eq!(columns.opt_out, Some(3));
        assert_eq!(mapping.delimiter_byte().unwrap(), Some(b';'));
    }

    #[test]
    fn refuses_what_would_go_wrong_later() {
        let refused = |text: &str| Mapping::from_toml(text).unwrap_err().to_string();
        assert!(refused("[identity]\nname = \"A\"").contains("`name` is not an identifying field"));
        assert!(refused("[identity]\nprovider = \"A\"").contains("acts for"));
        assert!(
            refused("[identity]\nbsn = \"A\"\n[data]\ngeboortedatum = \"B\"")
                .contains("identifying name")
        );
        assert!(refused("[data]\nx = \"A\"").contains("no identifying field"));
        assert!(refused("delimiter = \";;\"\n[identity]\nbsn = \"A\"").contains("one character"));
        assert!(refused("[identity]\nbsn = 1").contains("not valid"));
        assert!(refused("colour = 1\n[identity]\nbsn = \"A\"").contains("not valid"));

        let mapping = Mapping::from_toml(GOOD).unwrap();
        let err = |names: &[&str]| mapping.resolve(&header(names)).unwrap_err().to_string();
        assert!(err(&["Naam", "Diagnose", "Bezwaar"]).contains("`Geboren` is not in"));
        assert!(err(&["Naam", "Naam", "Geboren"]).contains("more than once"));
        let reused =
            Mapping::from_toml("[identity]\nbirthName = \"Naam\"\n[data]\nopmerking = \"Naam\"")
                .unwrap();
        assert!(reused
            .resolve(&header(&["Naam"]))
            .unwrap_err()
            .to_string()
            .contains("mapped more than once"));
    }
}
