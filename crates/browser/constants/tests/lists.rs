//! The core's lists (pseudonym type codes, field names) are written down once,
//! in `pseudoform-core`. These native tests check the places that cannot
//! take them from there: the OpenAPI documents and the registry's list of
//! identifying form-field names; and that the browser module's JS and
//! TypeScript hold no hand copy (they import the generated constants).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use pseudoform_core::reversible::REVERSIBLE_TYPE;
use pseudoform_core::{Field, PseudonymType};
use pseudoform_protocol::registry::IDENTIFYING_FIELD_NAMES;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn read(path: &str) -> String {
    fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn type_codes() -> Vec<&'static str> {
    PseudonymType::ALL
        .into_iter()
        .map(PseudonymType::code)
        .collect()
}

/// The items of the `enum: [...]` of the schema `name` in an OpenAPI file.
fn schema_enum(yaml: &str, name: &str) -> Vec<String> {
    let header = format!("\n    {name}:\n");
    let start = yaml
        .find(&header)
        .unwrap_or_else(|| panic!("no schema {name}"));
    let schema = &yaml[start + header.len()..];
    // The schema's own lines are indented deeper than its name.
    let body: String = schema
        .lines()
        .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let line = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("enum:"))
        .unwrap_or_else(|| panic!("schema {name} has no enum"));
    line.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|item| item.trim().trim_matches(['"', '\'']).to_string())
        .collect()
}

#[test]
fn openapi_pseudonym_types_are_the_cores() {
    for file in ["docs/openapi-ttp.yaml", "docs/openapi-registry.yaml"] {
        assert_eq!(
            schema_enum(&read(file), "PseudonymType"),
            type_codes(),
            "{file}: the PseudonymType enum differs from PseudonymType::ALL"
        );
    }
}

#[test]
fn openapi_policy_types_are_the_cores_and_r() {
    let mut codes = type_codes();
    codes.push(REVERSIBLE_TYPE);
    assert_eq!(
        schema_enum(&read("docs/openapi-ttp.yaml"), "PolicyType"),
        codes,
        "docs/openapi-ttp.yaml: PolicyType differs from PseudonymType::ALL and R"
    );
}

#[test]
fn every_enum_that_lists_a_type_code_is_the_whole_list() {
    // An enum elsewhere in the documents that names types must name them all.
    let codes = type_codes();
    for file in ["docs/openapi-ttp.yaml", "docs/openapi-registry.yaml"] {
        for line in read(file).lines() {
            let Some(list) = line.trim().strip_prefix("enum:") else {
                continue;
            };
            let items: Vec<&str> = list
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|i| i.trim().trim_matches(['"', '\'']))
                .collect();
            if items.iter().any(|i| codes.contains(i) && i.len() > 1) {
                // The Wkz types, or (what a policy may list) them and then R.
                let with_r: Vec<&str> = codes.iter().copied().chain([REVERSIBLE_TYPE]).collect();
                assert!(items == codes || items == with_r, "{file}: {line}");
            }
        }
    }
}

#[test]
fn the_registry_refuses_every_identifying_core_field_by_name() {
    // Every field of the method but the supplying provider identifies the
    // patient: a form field of that name in `data` must be refused.
    for field in Field::ALL {
        if field == Field::Provider {
            continue;
        }
        assert!(
            IDENTIFYING_FIELD_NAMES.contains(&field.name()),
            "IDENTIFYING_FIELD_NAMES lacks the core field {}",
            field.name()
        );
    }
}

/// The files of the browser package and the demo pages written by hand.
fn shipped_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates/browser/js", "www"] {
        for entry in fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".js") || name.ends_with(".ts") {
                files.push(path);
            }
        }
    }
    // The TypeScript section of the wasm glue's declarations.
    files.push(root().join("crates/browser/src/lib.rs"));
    assert!(files.len() > 5, "found the sources: {files:?}");
    files
}

/// Two of `names`, quoted, next to each other in a list or a union
/// (`"NGGV", "sNGGV"` or `"bsn" | "mrn"`): a copy of a core list.
fn adjacent_pair(text: &str, names: &[&str]) -> Option<String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for a in names {
        for b in names {
            for quote in ['"', '\''] {
                for separator in [',', '|'] {
                    let pair = format!("{quote}{a}{quote}{separator}{quote}{b}{quote}");
                    if compact.contains(&pair) {
                        return Some(pair);
                    }
                }
            }
        }
    }
    None
}

#[test]
fn the_js_layer_holds_no_copy_of_a_core_list() {
    let codes = type_codes();
    let fields: Vec<&str> = Field::ALL.into_iter().map(Field::name).collect();
    for file in shipped_sources() {
        let text = fs::read_to_string(&file).unwrap();
        for (what, names) in [("pseudonym types", &codes), ("field names", &fields)] {
            if let Some(pair) = adjacent_pair(&text, names) {
                panic!(
                    "{} lists {what} by hand ({pair}); import them from constants.js",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn the_copy_finder_finds_copies() {
    // The check above must be able to fail: it finds the lists as they were
    // written before they were generated.
    let codes = type_codes();
    assert!(adjacent_pair(r#"const T = ["B", "NGGV", "sNGGV"];"#, &codes).is_some());
    assert!(adjacent_pair("  | \"B\" | \"NGGV\" | \"sNGGV\"", &codes).is_some());
    assert!(adjacent_pair(
        r#"import { PSEUDONYM_TYPES } from "./constants.js";"#,
        &codes
    )
    .is_none());
}

/// The FHIR system URIs are written once, in `pseudoform_protocol::fhir`:
/// the JS takes them from the generated `FHIR` constant, never a literal.
#[test]
fn the_js_layer_holds_no_fhir_system_literal() {
    let prefix = pseudoform_protocol::fhir::SYSTEM_PREFIX;
    assert_eq!(prefix, "urn:pseudoform:");
    let mut dirs = vec![root().join("crates/browser/js")];
    let workbench = root().join("crates/browser/js/workbench");
    if workbench.is_dir() {
        dirs.push(workbench);
    }
    for dir in dirs {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "js" || e == "ts") {
                let text = fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains(prefix),
                    "{} writes a FHIR system by hand; use FHIR of constants.js",
                    path.display()
                );
            }
        }
    }
}
