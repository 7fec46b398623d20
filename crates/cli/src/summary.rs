//! The counts of a run and the machine-readable summary it prints at the
//! end (JSON, docs/processors.md): numbers, names and paths, never a value
//! of the extract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The counts of a run, carried across resumes in the checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Counts {
    /// Data rows read.
    pub rows: u64,
    /// Rows valid by the method (with `--check`: would be pseudonymised).
    pub valid: u64,
    /// Rows pseudonymised (written and/or delivered).
    pub pseudonymised: u64,
    /// Rows of objecting patients: never sent anywhere.
    pub opted_out: u64,
    /// Rows refused before anything was sent (the report says why).
    pub refused: u64,
    /// Rows the registry refused (the report says why).
    pub refused_by_registry: u64,
    /// Records the registry stored now.
    pub stored: u64,
    /// Records the registry had stored before (a resent batch).
    pub already_stored: u64,
    /// Per type: records without it because a field it needs is not given.
    pub skipped_types: BTreeMap<String, u64>,
}

impl Counts {
    /// Rows refused anywhere.
    pub fn all_refused(&self) -> u64 {
        self.refused + self.refused_by_registry
    }
}

/// The summary of a run.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// `check`, `pseudonymise`.
    pub mode: &'static str,
    /// The input file's SHA-256.
    pub input_sha256: String,
    /// Its encoding, as read.
    pub encoding: String,
    /// Its delimiter.
    pub delimiter: String,
    /// The types asked.
    pub types: Vec<String>,
    /// The counts (of the whole file, across resumes).
    #[serde(flatten)]
    pub counts: Counts,
    /// The output file, if any.
    pub output: Option<String>,
    /// The report file.
    pub report: Option<String>,
    /// Whether this run resumed a checkpoint.
    pub resumed: bool,
    /// Seconds this process ran.
    pub seconds: f64,
    /// Rows per second of this process.
    pub rows_per_second: f64,
    /// The process's peak resident memory, bytes (Linux; 0 elsewhere).
    pub peak_rss_bytes: u64,
    /// The exit code.
    pub exit_code: i32,
}

/// The process's peak resident set size (`VmHWM`), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_and_the_summary_is_flat() {
        assert!(peak_rss_bytes() > 1 << 20, "a process uses more than 1 MiB");
        let summary = Summary {
            mode: "check",
            input_sha256: "00".into(),
            encoding: "UTF-8".into(),
            delimiter: ";".into(),
            types: vec![],
            counts: Counts {
                rows: 3,
                refused: 1,
                ..Counts::default()
            },
            output: None,
            report: None,
            resumed: false,
            seconds: 0.5,
            rows_per_second: 6.0,
            peak_rss_bytes: 1,
            exit_code: 1,
        };
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["rows"], 3);
        assert_eq!(json["refusedByRegistry"], 0);
        assert_eq!(json["exitCode"], 1);
    }
}
