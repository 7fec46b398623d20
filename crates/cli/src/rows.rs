//! One row of the extract as the method sees it: the identity (the mapped
//! identifying columns, plus the provider the processor acts for), the
//! clinical data, and whether the patient objects.
//!
//! [`read_row`] decides what becomes of a row before anything leaves the
//! machine: objecting rows and rows with an unreadable opt-out value are
//! never prepared; invalid rows are refused with every rule they break.

use pseudoform_core::preparation::validate;
use pseudoform_core::{CalendarDate, Field, FieldError, Identity, PseudonymType};
use pseudoform_protocol::registry::{Data, DataValue};

use crate::mapping::Columns;

/// The code of a row whose opt-out cell is not a yes or a no.
pub const OPT_OUT_UNKNOWN: &str = "optOut.unknownValue";

/// The field name of the opt-out column in a report.
pub const OPT_OUT_FIELD: &str = "optOut";

/// Opt-out values meaning "the patient objects" (compared without case).
pub const OBJECTS: &[&str] = &[
    "ja", "j", "yes", "y", "1", "true", "x", "bezwaar", "objects",
];

/// Opt-out values meaning "no objection" (compared without case; empty too).
pub const NO_OBJECTION: &[&str] = &["", "nee", "n", "no", "0", "false", "geen bezwaar"];

/// One broken rule of a row, as a report line names it: never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field (`birthDate`, `optOut`, …), if the problem is about one.
    pub field: Option<String>,
    /// The code (`birthDate.future`, `optOut.unknownValue`, …).
    pub code: String,
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        Problem {
            field: Some(e.field.name().to_owned()),
            code: e.code(),
        }
    }
}

/// What a row is.
#[derive(Debug)]
pub enum Row {
    /// To be pseudonymised.
    Valid {
        /// The identity (wiped on drop; boxed: it is large).
        identity: Box<Identity>,
        /// The clinical data.
        data: Data,
    },
    /// The patient objects: nothing of it is sent anywhere.
    OptedOut,
    /// Refused, with every problem found.
    Refused(Vec<Problem>),
}

/// Reads one record by `columns`: `provider` is the provider the processor
/// acts for, `required` the types every record must have.
pub fn read_row(
    record: &csv::StringRecord,
    columns: &Columns,
    provider: &str,
    required: &[PseudonymType],
    today: CalendarDate,
) -> Row {
    if let Some(i) = columns.opt_out {
        let value = record.get(i).unwrap_or("").trim().to_lowercase();
        if OBJECTS.contains(&value.as_str()) {
            return Row::OptedOut;
        }
        if !NO_OBJECTION.contains(&value.as_str()) {
            return Row::Refused(vec![Problem {
                field: Some(OPT_OUT_FIELD.to_owned()),
                code: OPT_OUT_UNKNOWN.to_owned(),
            }]);
        }
    }
    let mut identity = Identity::new();
    for (field, i) in &columns.identity {
        let value = record.get(*i).unwrap_or("").trim();
        if !value.is_empty() {
            identity.set(*field, value);
        }
    }
    identity.set(Field::Provider, provider);
    let mut problems: Vec<Problem> = validate(&identity, today)
        .into_iter()
        .map(Problem::from)
        .collect();
    if problems.is_empty() {
        for ty in required {
            if let Err(reason) = ty.canonical_input(&identity, today) {
                let problem = Problem::from(reason);
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Row::Refused(problems);
    }
    let data = columns
        .data
        .iter()
        .map(|(name, i)| {
            let value = record.get(*i).unwrap_or("").trim();
            (name.clone(), DataValue::Text(value.to_owned()))
        })
        .collect();
    Row::Valid {
        identity: Box::new(identity),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Mapping;

    fn columns() -> Columns {
        Mapping::from_toml(
            "opt_out = \"Bezwaar\"\n[identity]\nbirthName = \"Naam\"\nbirthDate = \"Geboren\"\nsex = \"G\"\npostcode = \"PC\"\nmrn = \"Nr\"\n[data]\ndiagnose = \"D\"",
        )
        .unwrap()
        .resolve(&["Naam", "Geboren", "G", "PC", "Nr", "D", "Bezwaar"].map(String::from))
        .unwrap()
    }

    fn row(values: [&str; 7], required: &[PseudonymType]) -> Row {
        let record = csv::StringRecord::from(values.to_vec());
        let today = CalendarDate::new(2026, 12, 3).unwrap();
        read_row(&record, &columns(), "ura:00000001", required, today)
    }

    const NGGV: &[PseudonymType] = &[PseudonymType::Nggv];

    #[test]
    fn a_valid_row_carries_its_data_and_the_acting_provider() {
        let read = row(
            ["Jansen", "01-02-1980", "V", "1234 AB", "77", " I21 ", "nee"],
            &[PseudonymType::Rgg],
        );
        let Row::Valid { identity, data } = read else {
            panic!("valid: {read:?}");
        };
        assert_eq!(identity.get(Field::Provider), Some("ura:00000001"));
        assert_eq!(identity.get(Field::Mrn), Some("77"));
        assert_eq!(data.get("diagnose"), Some(&DataValue::Text("I21".into())));
    }

    #[test]
    fn objecting_rows_are_never_read_and_unclear_ones_refused() {
        for yes in ["ja", "JA", " x ", "1", "Bezwaar"] {
            let r = row(["", "not a date", "", "", "", "", yes], NGGV);
            assert!(matches!(r, Row::OptedOut), "{yes}");
        }
        let Row::Refused(p) = row(["Jansen", "01-02-1980", "V", "", "", "", "misschien"], &[])
        else {
            panic!("refused");
        };
        assert_eq!(
            p,
            vec![Problem {
                field: Some("optOut".into()),
                code: OPT_OUT_UNKNOWN.into()
            }]
        );
    }

    #[test]
    fn every_broken_rule_and_missing_required_field_is_reported() {
        let Row::Refused(p) = row(["J4nsen", "31-02-1980", "V", "1234 AB", "", "", ""], NGGV)
        else {
            panic!("refused");
        };
        let codes: Vec<&str> = p.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["birthName.characters", "birthDate.calendar"]);
        let Row::Refused(p) = row(["Jansen", "", "V", "1234 AB", "", "", ""], NGGV) else {
            panic!("refused");
        };
        assert_eq!(p[0].code, "birthDate.required");
        assert!(matches!(
            row(["Jansen", "", "V", "1234 AB", "", "", ""], &[]),
            Row::Valid { .. }
        ));
    }
}
