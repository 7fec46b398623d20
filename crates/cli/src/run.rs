//! A run of `pseudoform batch`: the extract read as a stream of chunks,
//! each chunk prepared on the blocking pool, evaluated by the TTP, sealed
//! and (with `--deliver`) delivered in a task of its own — at most
//! `parallel` chunks in flight, so memory stays bounded by
//! `parallel × chunk` rows whatever the file's size — and then, in file
//! order, written, reported and checkpointed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use pseudoform_core::{CalendarDate, PseudonymType};
use pseudoform_protocol::registry::{BatchItemStatus, BatchSubmission, MAX_SUBMISSIONS_PER_BATCH};
use pseudoform_protocol::ttp::{BatchRequest, MAX_RECORDS_PER_REQUEST};

use crate::checkpoint::{self, Checkpoint, CheckpointError, Settings, CHECKPOINT_VERSION};
use crate::connection::{Connection, ConnectionConfig, ConnectionError};
use crate::input::{Extract, InputError};
use crate::mapping::{Columns, Mapping, MappingError};
use crate::output::{Format, Output, Report};
use crate::progress::Progress;
use crate::pseudonymise::{prepare_rows, submissions_of, Local, SealError};
use crate::remote::{deliver, evaluate, Delivery, RemoteError};
use crate::rows::{read_row, Problem, Row};
use crate::summary::{peak_rss_bytes, Counts, Summary};

/// Exit code: every row done (objecting rows are not failures).
pub const EXIT_OK: i32 = 0;
/// Exit code: the run finished, but rows were refused (see the report).
pub const EXIT_REFUSED_ROWS: i32 = 1;
/// Exit code: the command, mapping, file, connection file or checkpoint is wrong.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the TTP or the registry failed or refused the run; the
/// checkpoint keeps what is done (`--resume`).
pub const EXIT_REMOTE: i32 = 3;

/// Default rows per chunk: one TTP request and one registry batch.
pub const DEFAULT_CHUNK: usize = 500;
/// Default chunks in flight.
pub const DEFAULT_PARALLEL: usize = 4;

/// What to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// The extract.
    pub input: PathBuf,
    /// The mapping file.
    pub mapping: PathBuf,
    /// The connection file (not needed with `check`).
    pub connection: Option<PathBuf>,
    /// Only validate; nothing leaves the machine.
    pub check: bool,
    /// Write the pseudonymised file here.
    pub output: Option<PathBuf>,
    /// Its format.
    pub format: Format,
    /// Deliver to the registry.
    pub deliver: bool,
    /// The report of refused rows (default `{input}.report.csv`).
    pub report: Option<PathBuf>,
    /// The checkpoint (default `{input}.checkpoint.json`).
    pub checkpoint: Option<PathBuf>,
    /// Resume from the checkpoint.
    pub resume: bool,
    /// Exit 0 although rows were refused.
    pub allow_refused: bool,
    /// Rows per chunk.
    pub chunk_size: usize,
    /// Chunks in flight.
    pub parallel: usize,
    /// Retries of a TTP or registry call that was not answered or was busy.
    pub retries: u32,
    /// The types to ask (empty: every type the registry allows).
    pub types: Vec<PseudonymType>,
    /// Types every row must have, beyond the registry's required ones.
    pub require: Vec<PseudonymType>,
    /// Draw a progress bar on a terminal.
    pub progress: bool,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command line is not a run.
    #[error("{0}")]
    Usage(String),
    /// The mapping.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The extract.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The connection.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The TTP or the registry.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Sealing.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Writing a file.
    #[error("writing {path}: {message}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl RunError {
    /// The exit code of this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Connection(ConnectionError::Ttp(_) | ConnectionError::Policy(_))
            | RunError::Remote(_)
            | RunError::Seal(_)
            | RunError::Write { .. } => EXIT_REMOTE,
            _ => EXIT_USAGE,
        }
    }
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |e| RunError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `{path}{suffix}`.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn today() -> Result<CalendarDate, RunError> {
    CalendarDate::today_utc().ok_or_else(|| RunError::Usage("the system clock is not set".into()))
}

/// What every chunk's task needs.
#[derive(Debug)]
struct Shared {
    connection: Connection,
    types: Vec<PseudonymType>,
    delivery: Option<Delivery>,
    run_id: String,
    retries: u32,
    today: CalendarDate,
}

/// What the consumer gets of a chunk, in file order.
#[derive(Debug)]
struct ChunkDone {
    /// Rows read.
    rows: u64,
    /// Rows valid by the method.
    valid: u64,
    /// Refused rows with their problems (local and the registry's), by row.
    refused: Vec<(u64, Vec<Problem>)>,
    /// Rows refused by the registry (part of `refused`).
    registry_refused: u64,
    opted_out: u64,
    /// The submissions, for the output.
    submissions: Vec<pseudoform_protocol::registry::Submission>,
    /// The row of each submission.
    rows_of: Vec<u64>,
    skipped: Vec<PseudonymType>,
    stored: u64,
    already_stored: u64,
    batch_id: String,
}

/// Reads the next `size` rows.
fn next_chunk(
    records: &mut crate::input::Records,
    size: usize,
    read: &dyn Fn(&csv::StringRecord) -> Row,
) -> Result<Vec<(u64, Row)>, InputError> {
    let mut rows = Vec::with_capacity(size);
    for record in records.by_ref().take(size) {
        let (row, record) = record?;
        rows.push((row, read(&record)));
    }
    Ok(rows)
}

/// Runs `options`; the summary, or why the run stopped.
pub async fn run(options: Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mapping = Mapping::from_file(&options.mapping)?;
    let extract = Extract::open(&options.input, mapping.encoding, mapping.delimiter_byte()?)?;
    let columns = mapping.resolve(&extract.header)?;
    let report_path = options
        .report
        .clone()
        .unwrap_or_else(|| beside(&options.input, ".report.csv"));
    if options.check {
        return check(options, extract, columns, report_path, started);
    }
    if options.output.is_none() && !options.deliver {
        return Err(RunError::Usage("say where the pseudonyms go: --output FILE and/or --deliver (or --check to only validate)".into()));
    }
    if !(1..=MAX_SUBMISSIONS_PER_BATCH.min(MAX_RECORDS_PER_REQUEST)).contains(&options.chunk_size) {
        return Err(RunError::Usage(format!(
            "--chunk must be 1 to {MAX_SUBMISSIONS_PER_BATCH}"
        )));
    }
    let parallel = options.parallel.max(1);
    let connection_path = options
        .connection
        .clone()
        .ok_or_else(|| RunError::Usage("--connection FILE is needed to reach the TTP".into()))?;
    let config = ConnectionConfig::from_file(&connection_path)?;
    let delivery = match (&config.registry.url, options.deliver) {
        (Some(url), true) => Some(Delivery {
            url: url.clone(),
            public_url: config
                .registry
                .public_url
                .clone()
                .unwrap_or_else(|| url.clone()),
            retries: options.retries,
        }),
        (None, true) => {
            return Err(RunError::Usage(
                "--deliver needs [registry] url in the connection file".into(),
            ))
        }
        (_, false) => None,
    };
    let connection = Connection::open(config).await?;
    let (types, mut required) = connection.types(&options.types)?;
    for ty in &options.require {
        if !required.contains(ty) {
            required.push(*ty);
        }
    }
    let chunk_size = options
        .chunk_size
        .min(connection.policy.max_records_per_request.max(1));
    let settings = Settings {
        input_sha256: extract.fingerprint.sha256.clone(),
        chunk_size,
        types: types.iter().map(|t| t.code().to_owned()).collect(),
        recipient: format!(
            "{}|{}",
            connection.recipient.organization(),
            connection.recipient.scope()
        ),
        deliver: options.deliver,
        output: options.output.clone().map(|p| (p, options.format)),
    };
    let checkpoint_path = options
        .checkpoint
        .clone()
        .unwrap_or_else(|| beside(&options.input, ".checkpoint.json"));
    let resumed = match checkpoint::load(&checkpoint_path)? {
        Some(c) if options.resume => {
            checkpoint::check(&c, &settings)?;
            Some(c)
        }
        Some(_) => {
            return Err(CheckpointError::Exists(checkpoint_path.display().to_string()).into())
        }
        None => None,
    };
    if resumed.is_none() {
        if let Some(out) = &options.output {
            if out.exists() {
                return Err(RunError::Usage(format!(
                    "{} exists: remove it or choose another --output",
                    out.display()
                )));
            }
        }
    }
    let mut state = resumed.clone().unwrap_or(Checkpoint {
        version: CHECKPOINT_VERSION,
        run_id: pseudoform_protocol::client::random_jti()
            .map_err(|e| RunError::Usage(e.to_string()))?
            .get(..16)
            .unwrap_or_default()
            .to_owned(),
        settings: settings.clone(),
        chunks_done: 0,
        output_bytes: 0,
        report_bytes: 0,
        counts: Counts::default(),
    });
    let at = |bytes: u64| resumed.as_ref().map(|_| bytes);
    let data_names: Vec<String> = columns.data.iter().map(|(n, _)| n.clone()).collect();
    let mut output = match &options.output {
        Some(path) => Some(
            Output::open(path, options.format, data_names, at(state.output_bytes))
                .map_err(write_error(path))?,
        ),
        None => None,
    };
    let mut report =
        Report::open(&report_path, at(state.report_bytes)).map_err(write_error(&report_path))?;

    let progress = Progress::new(
        options.progress,
        extract.fingerprint.lines.saturating_sub(1),
        state.counts.rows,
    );
    let encoding = extract.encoding.name().to_owned();
    let delimiter = (extract.delimiter as char).to_string();
    let input_sha256 = extract.fingerprint.sha256.clone();
    let mut records = extract.records();
    let skip = state.chunks_done.saturating_mul(chunk_size as u64);
    for _ in 0..skip {
        match records.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => break,
        }
    }

    let today = today()?;
    let provider = connection.config.provider.clone();
    let first_chunk = state.chunks_done;
    let shared = Arc::new(Shared {
        connection,
        types,
        delivery,
        run_id: state.run_id.clone(),
        retries: options.retries,
        today,
    });
    let mut index = first_chunk;
    let chunks = stream::iter(std::iter::from_fn(move || {
        let read =
            |record: &csv::StringRecord| read_row(record, &columns, &provider, &required, today);
        let rows = match next_chunk(&mut records, chunk_size, &read) {
            Ok(rows) if rows.is_empty() => return None,
            Ok(rows) => rows,
            Err(e) => return Some(Err(e)),
        };
        index += 1;
        Some(Ok((index - 1, rows)))
    }));
    let mut done = chunks
        .map(|chunk| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let (k, rows) = chunk?;
                process(k, rows, shared).await
            })
        })
        .buffered(parallel);

    while let Some(joined) = done.next().await {
        let chunk =
            joined.map_err(|e| RunError::Usage(format!("a chunk's task failed: {e}")))??;
        if let Some(out) = output.as_mut() {
            let written = out
                .append(&chunk.batch_id, &chunk.rows_of, &chunk.submissions)
                .and_then(|()| out.sync());
            state.output_bytes = written.map_err(write_error(out.path()))?;
        }
        for (row, problems) in &chunk.refused {
            report
                .refused(*row, problems)
                .map_err(write_error(&report_path))?;
        }
        state.report_bytes = report.sync().map_err(write_error(&report_path))?;
        let c = &mut state.counts;
        c.rows += chunk.rows;
        c.valid += chunk.valid;
        c.opted_out += chunk.opted_out;
        c.refused += chunk.refused.len() as u64 - chunk.registry_refused;
        c.refused_by_registry += chunk.registry_refused;
        c.pseudonymised += chunk.submissions.len() as u64 - chunk.registry_refused;
        c.stored += chunk.stored;
        c.already_stored += chunk.already_stored;
        for ty in chunk.skipped {
            *c.skipped_types.entry(ty.code().to_owned()).or_default() += 1;
        }
        state.chunks_done += 1;
        checkpoint::save(&checkpoint_path, &state)?;
        progress.set(state.counts.rows);
    }
    progress.finish();
    checkpoint::remove(&checkpoint_path)?;
    let exit_code = exit_for(&state.counts, options.allow_refused);
    let seconds = started.elapsed().as_secs_f64();
    let this_run = state.counts.rows - resumed.as_ref().map_or(0, |c| c.counts.rows);
    Ok(Summary {
        mode: "pseudonymise",
        input_sha256,
        encoding,
        delimiter,
        types: settings.types,
        counts: state.counts,
        output: options.output.map(|p| p.display().to_string()),
        report: Some(report.path().display().to_string()),
        resumed: resumed.is_some(),
        seconds,
        rows_per_second: this_run as f64 / seconds.max(1e-9),
        peak_rss_bytes: peak_rss_bytes(),
        exit_code,
    })
}

fn exit_for(counts: &Counts, allow_refused: bool) -> i32 {
    if counts.all_refused() > 0 && !allow_refused {
        EXIT_REFUSED_ROWS
    } else {
        EXIT_OK
    }
}

/// One chunk: prepare, evaluate, seal, deliver.
async fn process(
    k: u64,
    rows: Vec<(u64, Row)>,
    shared: Arc<Shared>,
) -> Result<ChunkDone, RunError> {
    let n = rows.len() as u64;
    let preparing = shared.clone();
    let locals = tokio::task::spawn_blocking(move || {
        let s = &preparing;
        prepare_rows(rows, &s.connection.recipient, &s.types, s.today)
    })
    .await
    .map_err(|e| RunError::Usage(format!("preparing failed: {e}")))?;
    let mut refused = Vec::new();
    let mut prepared = Vec::new();
    let mut opted_out = 0;
    for local in locals {
        match local {
            Local::Prepared(p) => prepared.push(p),
            Local::OptedOut(_) => opted_out += 1,
            Local::Refused(row, problems) => refused.push((row, problems)),
        }
    }
    let connection = &shared.connection;
    let batch_id = format!("{}-{k}", shared.run_id);
    let mut done = ChunkDone {
        rows: n,
        valid: prepared.len() as u64,
        refused,
        registry_refused: 0,
        opted_out,
        submissions: Vec::new(),
        rows_of: Vec::new(),
        skipped: Vec::new(),
        stored: 0,
        already_stored: 0,
        batch_id,
    };
    if prepared.is_empty() {
        return Ok(done);
    }
    let request = BatchRequest {
        recipient_organization: connection.recipient.organization().to_owned(),
        recipient_scope: connection.recipient.scope().to_owned(),
        records: prepared.iter().map(|p| p.request.clone()).collect(),
    };
    let records = evaluate(&connection.ttp, &request, shared.retries).await?;
    drop(request);
    let sealing = shared.clone();
    let sealed = tokio::task::spawn_blocking(move || {
        let c = &sealing.connection;
        submissions_of(prepared, records, &c.recipient_key, &c.recipient)
    })
    .await
    .map_err(|e| RunError::Usage(format!("sealing failed: {e}")))??;
    for (row, submission, skipped) in sealed {
        done.rows_of.push(row);
        done.submissions.push(submission);
        done.skipped.extend(skipped);
    }
    if let Some(delivery) = &shared.delivery {
        let batch = BatchSubmission {
            batch_id: done.batch_id.clone(),
            submissions: std::mem::take(&mut done.submissions),
        };
        let receipt = deliver(&connection.http, &connection.ttp, delivery, &batch).await?;
        done.submissions = batch.submissions;
        for (result, row) in receipt.results.iter().zip(&done.rows_of) {
            match result.status {
                BatchItemStatus::Stored => done.stored += 1,
                BatchItemStatus::AlreadyStored => done.already_stored += 1,
                BatchItemStatus::Refused => {
                    done.registry_refused += 1;
                    done.refused.push((
                        *row,
                        vec![Problem {
                            field: result.field.clone(),
                            code: result
                                .code
                                .clone()
                                .unwrap_or_else(|| "registry.refused".into()),
                        }],
                    ));
                }
            }
        }
        done.refused.sort_by_key(|(row, _)| *row);
    }
    Ok(done)
}

/// `--check`: every row validated and counted; nothing leaves the machine.
fn check(
    options: Options,
    extract: Extract,
    columns: Columns,
    report_path: PathBuf,
    started: Instant,
) -> Result<Summary, RunError> {
    let today = today()?;
    let mut report = Report::open(&report_path, None).map_err(write_error(&report_path))?;
    let progress = Progress::new(
        options.progress,
        extract.fingerprint.lines.saturating_sub(1),
        0,
    );
    let encoding = extract.encoding.name().to_owned();
    let delimiter = (extract.delimiter as char).to_string();
    let input_sha256 = extract.fingerprint.sha256.clone();
    let mut counts = Counts::default();
    // The provider does not change what is valid; any well-formed one will do.
    let provider = "ura:00000000";
    for record in extract.records() {
        let (row, record) = record?;
        counts.rows += 1;
        match read_row(&record, &columns, provider, &options.require, today) {
            Row::Valid { .. } => counts.valid += 1,
            Row::OptedOut => counts.opted_out += 1,
            Row::Refused(problems) => {
                counts.refused += 1;
                report
                    .refused(row, &problems)
                    .map_err(write_error(&report_path))?;
            }
        }
        if counts.rows % 4096 == 0 {
            progress.set(counts.rows);
        }
    }
    report.sync().map_err(write_error(&report_path))?;
    progress.finish();
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        mode: "check",
        input_sha256,
        encoding,
        delimiter,
        types: options
            .require
            .iter()
            .map(|t| t.code().to_owned())
            .collect(),
        exit_code: exit_for(&counts, options.allow_refused),
        rows_per_second: counts.rows as f64 / seconds.max(1e-9),
        counts,
        output: None,
        report: Some(report_path.display().to_string()),
        resumed: false,
        seconds,
        peak_rss_bytes: peak_rss_bytes(),
    })
}
