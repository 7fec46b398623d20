//! The files a run writes, each appended chunk by chunk and flushed before
//! the checkpoint records its length (so a resumed run cuts it back to that
//! length and goes on, without a duplicate or a half line):
//!
//! - the pseudonymised file, [`Format::Csv`]: one line per record in the
//!   one shape the workbench's download has too ([`CSV_COLUMNS`], then the
//!   clinical columns; `;`, a BOM, CRLF) — nothing identifying; or [`Format::Fhir`]:
//!   NDJSON, one delivery Bundle (docs/fhir.md) per chunk, each of which
//!   the registry's `POST /fhir` takes as is;
//! - the report of refused rows: row, field, code — never a value.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pseudoform_protocol::fhir::bundle_of;
use pseudoform_protocol::registry::{DataValue, Submission};
use serde::{Deserialize, Serialize};

use crate::rows::Problem;

/// The format of the pseudonymised file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// CSV: one line per record.
    Csv,
    /// NDJSON of FHIR R4 transaction Bundles, one per chunk.
    Fhir,
}

pub use pseudoform_protocol::registry::PSEUDONYMISED_CSV_COLUMNS as CSV_COLUMNS;
use pseudoform_protocol::registry::{
    PSEUDONYMISED_CSV_DELIMITER, PSEUDONYMISED_CSV_LIST_SEPARATOR,
};

/// The header of the report.
pub const REPORT_COLUMNS: [&str; 3] = ["row", "field", "code"];

/// An append-only file whose length is known after every flush.
#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    out: BufWriter<File>,
    length: u64,
}

impl AppendFile {
    /// Creates `path` (truncating it), or on a resume opens it cut back to
    /// `resume_at` bytes.
    pub fn open(path: &Path, resume_at: Option<u64>) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(resume_at.is_none())
            .open(path)?;
        let length = resume_at.unwrap_or(0);
        if let Some(at) = resume_at {
            if file.metadata()?.len() < at {
                return Err(std::io::Error::other(format!(
                    "{} is shorter than the checkpoint says",
                    path.display()
                )));
            }
            file.set_len(at)?;
            file.seek(SeekFrom::Start(at))?;
        }
        Ok(AppendFile {
            path: path.to_owned(),
            out: BufWriter::new(file),
            length,
        })
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.length += bytes.len() as u64;
        Ok(())
    }

    /// Flushes to the disk and returns the length.
    pub fn sync(&mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(self.length)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One CSV line of `fields`, delimited by `delimiter`.
fn line_of<'a>(
    fields: impl IntoIterator<Item = &'a str>,
    delimiter: u8,
) -> std::io::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record(fields).map_err(std::io::Error::other)?;
    writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// One line of the report (`,`).
fn csv_line<'a>(fields: impl IntoIterator<Item = &'a str>) -> std::io::Result<Vec<u8>> {
    line_of(fields, b',')
}

/// One line of the pseudonymised CSV file.
fn output_line<'a>(fields: impl IntoIterator<Item = &'a str>) -> std::io::Result<Vec<u8>> {
    let delimiter = PSEUDONYMISED_CSV_DELIMITER.bytes().next().unwrap_or(b';');
    line_of(fields, delimiter)
}

/// The pseudonymised file.
#[derive(Debug)]
pub struct Output {
    file: AppendFile,
    format: Format,
    data_names: Vec<String>,
}

impl Output {
    /// Opens the output (writing the CSV header on a fresh start).
    pub fn open(
        path: &Path,
        format: Format,
        data_names: Vec<String>,
        resume_at: Option<u64>,
    ) -> std::io::Result<Self> {
        let mut file = AppendFile::open(path, resume_at)?;
        if resume_at.is_none() && format == Format::Csv {
            let header = CSV_COLUMNS
                .iter()
                .copied()
                .chain(data_names.iter().map(String::as_str));
            file.write("\u{feff}".as_bytes())?;
            file.write(&output_line(header)?)?;
        }
        Ok(Output {
            file,
            format,
            data_names,
        })
    }

    /// Appends a chunk's submissions (batch `batch_id`), each with its row.
    pub fn append(
        &mut self,
        batch_id: &str,
        rows: &[u64],
        submissions: &[Submission],
    ) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {
                for (row, s) in rows.iter().zip(submissions) {
                    let row = row.to_string();
                    let version = s.method_version.to_string();
                    let reversible = s
                        .reversible
                        .as_ref()
                        .map(|r| format!("{}.{}.{}", r.kid, r.enc, r.ct))
                        .unwrap_or_default();
                    let data: Vec<String> = self
                        .data_names
                        .iter()
                        .map(|name| match s.data.get(name) {
                            Some(DataValue::Text(t)) => t.clone(),
                            Some(DataValue::List(items)) => {
                                items.join(PSEUDONYMISED_CSV_LIST_SEPARATOR)
                            }
                            None => String::new(),
                        })
                        .collect();
                    let fields = [
                        row.as_str(),
                        &s.recipient_organization,
                        &s.recipient_scope,
                        &version,
                        s.record.as_deref().unwrap_or(""),
                        s.encrypted_blind_factors.as_deref().unwrap_or(""),
                        &reversible,
                    ]
                    .into_iter()
                    .chain(data.iter().map(String::as_str));
                    self.file.write(&output_line(fields)?)?;
                }
            }
            Format::Fhir => {
                let Some(first) = submissions.first() else {
                    return Ok(());
                };
                let bundle = bundle_of(
                    batch_id,
                    &first.recipient_organization,
                    &first.recipient_scope,
                    submissions,
                );
                let mut line = serde_json::to_vec(&bundle).map_err(std::io::Error::other)?;
                line.push(b'\n');
                self.file.write(&line)?;
            }
        }
        Ok(())
    }

    /// Flushes and returns the length.
    pub fn sync(&mut self) -> std::io::Result<u64> {
        self.file.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// The report of refused rows.
#[derive(Debug)]
pub struct Report {
    file: AppendFile,
}

impl Report {
    /// Opens the report (its header on a fresh start).
    pub fn open(path: &Path, resume_at: Option<u64>) -> std::io::Result<Self> {
        let mut file = AppendFile::open(path, resume_at)?;
        if resume_at.is_none() {
            file.write(&csv_line(REPORT_COLUMNS)?)?;
        }
        Ok(Report { file })
    }

    /// One line per problem of `row`.
    pub fn refused(&mut self, row: u64, problems: &[Problem]) -> std::io::Result<()> {
        let row = row.to_string();
        for p in problems {
            self.file.write(&csv_line([
                row.as_str(),
                p.field.as_deref().unwrap_or(""),
                &p.code,
            ])?)?;
        }
        Ok(())
    }

    /// Flushes and returns the length.
    pub fn sync(&mut self) -> std::io::Result<u64> {
        self.file.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_file_resumes_at_its_checkpointed_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        let mut report = Report::open(&path, None).unwrap();
        report
            .refused(
                2,
                &[Problem {
                    field: Some("bsn".into()),
                    code: "bsn.checksum".into(),
                }],
            )
            .unwrap();
        let at = report.sync().unwrap();
        report
            .refused(
                3,
                &[Problem {
                    field: None,
                    code: "pseudonyms.none".into(),
                }],
            )
            .unwrap();
        report.sync().unwrap();
        drop(report);
        let mut resumed = Report::open(&path, Some(at)).unwrap();
        resumed
            .refused(
                4,
                &[Problem {
                    field: Some("optOut".into()),
                    code: "optOut.unknownValue".into(),
                }],
            )
            .unwrap();
        resumed.sync().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "row,field,code\r\n2,bsn,bsn.checksum\r\n4,optOut,optOut.unknownValue\r\n"
        );
        assert!(
            Report::open(&path, Some(10_000)).is_err(),
            "a file shorter than its checkpoint"
        );
    }
}
