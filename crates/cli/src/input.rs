//! The extract: a CSV file with a header row, read as a stream (memory
//! bounded by one record, whatever the file's size).
//!
//! [`Extract::open`] reads the file once first to fingerprint it (SHA-256:
//! a checkpoint resumes only the file it was made of) and to tell its text
//! encoding: UTF-8 (with or without BOM) when every byte sequence is valid
//! UTF-8, else Windows-1252, the encoding of spreadsheet exports on Dutch
//! Windows machines. The delimiter (`;`, `,`, tab or `|`) is the one that
//! occurs most often, outside quotes, in the header row.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A text encoding of an extract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// UTF-8 if the whole file is valid UTF-8, else Windows-1252.
    Auto,
    /// UTF-8 (a BOM is skipped).
    #[serde(rename = "utf-8")]
    Utf8,
    /// Windows-1252.
    #[serde(rename = "windows-1252")]
    Windows1252,
}

impl TextEncoding {
    fn encoding(self) -> &'static Encoding {
        match self {
            TextEncoding::Windows1252 => WINDOWS_1252,
            TextEncoding::Utf8 | TextEncoding::Auto => UTF_8,
        }
    }
}

/// Why the extract cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// An I/O error.
    #[error("the file {path} cannot be read: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Not CSV where the parser expected it (never a cell's content).
    #[error("the file is not valid CSV at row {row}: {message}")]
    Csv {
        /// The row (the header is row 1).
        row: u64,
        /// The parser's reason.
        message: String,
    },
    /// No header row.
    #[error("the file is empty: a header row is needed")]
    Empty,
    /// UTF-8 asked for, but the file is not.
    #[error(
        "the file is not valid UTF-8 (set encoding = \"windows-1252\" or \"auto\" in the mapping)"
    )]
    NotUtf8,
}

/// What the first pass over the file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Whether every byte sequence is valid UTF-8.
    pub utf8: bool,
    /// Its line feeds: an estimate of its rows for a progress bar.
    pub lines: u64,
    /// The bytes of its first line, the header (at most [`HEADER_BYTES`]):
    /// what the delimiter is detected from.
    pub header: Vec<u8>,
}

/// The most bytes of the header line kept to detect the delimiter.
pub const HEADER_BYTES: usize = 64 * 1024;

/// Reads `path` once: its SHA-256, size and whether it is UTF-8.
pub fn fingerprint(path: &Path) -> Result<Fingerprint, InputError> {
    let io = |e: std::io::Error| InputError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    // Bytes of an unfinished UTF-8 sequence carried into the next read.
    let mut carry: Vec<u8> = Vec::with_capacity(4);
    let (mut bytes, mut utf8, mut lines) = (0u64, true, 0u64);
    let mut header = Vec::new();
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            break;
        }
        let chunk = buffer.get(..n).unwrap_or_default();
        hash.update(chunk);
        if lines == 0 && header.len() < HEADER_BYTES {
            let end = chunk
                .iter()
                .position(|b| *b == b'\n')
                .unwrap_or(chunk.len());
            let room = HEADER_BYTES - header.len();
            header.extend_from_slice(chunk.get(..end.min(room)).unwrap_or_default());
        }
        bytes += n as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if utf8 {
            carry.extend_from_slice(chunk);
            match std::str::from_utf8(&carry) {
                Ok(_) => carry.clear(),
                Err(e) if e.error_len().is_none() => {
                    let rest = carry.split_off(e.valid_up_to());
                    carry = rest;
                }
                Err(_) => utf8 = false,
            }
        }
    }
    let sha256 = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Fingerprint {
        sha256,
        bytes,
        utf8: utf8 && carry.is_empty(),
        lines,
        header,
    })
}

/// An open extract: its header and a stream of records.
pub struct Extract {
    /// The header row, decoded.
    pub header: Vec<String>,
    /// The encoding used.
    pub encoding: &'static Encoding,
    /// The delimiter used.
    pub delimiter: u8,
    /// The fingerprint of the file.
    pub fingerprint: Fingerprint,
    reader: csv::Reader<DecodeReaderBytes<File, Vec<u8>>>,
}

impl std::fmt::Debug for Extract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extract")
            .field("columns", &self.header.len())
            .field("encoding", &self.encoding.name())
            .field("delimiter", &(self.delimiter as char))
            .finish_non_exhaustive()
    }
}

/// The delimiter that occurs most often outside quotes in `line`; `;` on a tie
/// or when none does (a one-column file).
pub fn detect_delimiter(line: &str) -> u8 {
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0), (b'|', 0)];
    let mut quoted = false;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in counts.iter_mut() {
                if *d == b {
                    *n += 1;
                }
            }
        }
    }
    counts
        .iter()
        .fold(
            (b';', 0),
            |best, &(d, n)| if n > best.1 { (d, n) } else { best },
        )
        .0
}

fn decoder(file: File, encoding: &'static Encoding) -> DecodeReaderBytes<File, Vec<u8>> {
    DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding))
        .bom_override(true)
        .build(file)
}

impl Extract {
    /// Opens `path` with `encoding` (or detects it) and `delimiter` (or
    /// detects it), and reads the header row.
    pub fn open(
        path: &Path,
        encoding: Option<TextEncoding>,
        delimiter: Option<u8>,
    ) -> Result<Self, InputError> {
        let io = |e: std::io::Error| InputError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let fingerprint = fingerprint(path)?;
        let encoding = match encoding.unwrap_or(TextEncoding::Auto) {
            TextEncoding::Auto if fingerprint.utf8 => UTF_8,
            TextEncoding::Auto => WINDOWS_1252,
            TextEncoding::Utf8 if !fingerprint.utf8 => return Err(InputError::NotUtf8),
            chosen => chosen.encoding(),
        };
        let delimiter =
            delimiter.unwrap_or_else(|| detect_delimiter(&encoding.decode(&fingerprint.header).0));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .from_reader(decoder(File::open(path).map_err(io)?, encoding));
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(&e, 1))?
            .iter()
            .map(|h| h.trim().to_owned())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(InputError::Empty);
        }
        Ok(Extract {
            header,
            encoding,
            delimiter,
            fingerprint,
            reader,
        })
    }

    /// The records after the header, each with its row number: the header
    /// is row 1, each record the next; blank lines and rows of empty cells
    /// are no rows (a quoted cell may span lines).
    pub fn records(self) -> Records {
        Records {
            inner: self.reader.into_records(),
            row: 1,
        }
    }
}

/// The parser's error without the record's content.
fn csv_error(error: &csv::Error, row: u64) -> InputError {
    let message = match error.kind() {
        csv::ErrorKind::Io(e) => e.to_string(),
        csv::ErrorKind::Utf8 { .. } => "a value is not valid text".into(),
        csv::ErrorKind::UnequalLengths { .. } => "a row has another number of values".into(),
        _ => "the row cannot be parsed".into(),
    };
    InputError::Csv { row, message }
}

/// The stream of records of an [`Extract`].
pub struct Records {
    inner: csv::StringRecordsIntoIter<DecodeReaderBytes<File, Vec<u8>>>,
    row: u64,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("row", &self.row).finish()
    }
}

impl Iterator for Records {
    type Item = Result<(u64, csv::StringRecord), InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let record = self.inner.next()?;
            self.row += 1;
            match record {
                // A row of empty cells is no row.
                Ok(r) if r.iter().all(|v| v.trim().is_empty()) => self.row -= 1,
                Ok(r) => return Some(Ok((self.row, r))),
                Err(e) => return Some(Err(csv_error(&e, self.row))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn rows(extract: Extract) -> Vec<(u64, Vec<String>)> {
        extract
            .records()
            .map(|r| {
                let (row, record) = r.unwrap();
                (row, record.iter().map(str::to_owned).collect())
            })
            .collect()
    }

    #[test]
    fn windows_1252_semicolons_and_quotes() {
        // "Geboortenaam;Opmerking\r\nBrontë;\"a;b \"\"c\"\"\"\r\n" in Windows-1252 (ë = 0xEB).
        let f = file(b"Geboortenaam;Opmerking\r\nBront\xeb;\"a;b \"\"c\"\"\"\r\n\r\nDe Vries;\"twee\nregels\"\r\n");
        let extract = Extract::open(f.path(), None, None).unwrap();
        assert_eq!(extract.encoding, WINDOWS_1252);
        assert_eq!(extract.delimiter, b';');
        assert!(!extract.fingerprint.utf8);
        assert_eq!(extract.header, ["Geboortenaam", "Opmerking"]);
        assert_eq!(
            rows(extract),
            vec![
                (2, vec!["Brontë".to_owned(), "a;b \"c\"".to_owned()]),
                (3, vec!["De Vries".to_owned(), "twee\nregels".to_owned()]),
            ]
        );
    }

    #[test]
    fn utf8_with_bom_and_commas() {
        let f = file("\u{feff}naam,\"plaats, land\"\nBrontë,x\n".as_bytes());
        let extract = Extract::open(f.path(), None, None).unwrap();
        assert_eq!((extract.encoding, extract.delimiter), (UTF_8, b','));
        assert_eq!(extract.header, ["naam", "plaats, land"]);
        assert_eq!(rows(extract), vec![(2, vec!["Brontë".into(), "x".into()])]);
    }

    #[test]
    fn the_fingerprint_reads_utf8_across_buffer_boundaries() {
        // 'ë' (2 bytes) straddling the 64 KiB read boundary stays UTF-8.
        let mut bytes = vec![b'a'; (1 << 16) - 1];
        bytes.extend_from_slice("ë\n".as_bytes());
        let f = file(&bytes);
        let print = fingerprint(f.path()).unwrap();
        assert!(print.utf8);
        assert_eq!(print.bytes, bytes.len() as u64);
        assert_eq!(print.sha256.len(), 64);
        let cut = file(&bytes[..bytes.len() - 2]);
        assert!(
            !fingerprint(cut.path()).unwrap().utf8,
            "a cut sequence is not UTF-8"
        );
        assert!(matches!(
            Extract::open(file(b"a\n\xeb\n").path(), Some(TextEncoding::Utf8), None),
            Err(InputError::NotUtf8)
        ));
    }

    #[test]
    fn delimiters() {
        assert_eq!(detect_delimiter("a;b;c"), b';');
        assert_eq!(detect_delimiter("a,b;c,d"), b',');
        assert_eq!(detect_delimiter("\"a;b\",c"), b',');
        assert_eq!(detect_delimiter("a\tb"), b'\t');
        assert_eq!(detect_delimiter("alleen"), b';');
    }
}
