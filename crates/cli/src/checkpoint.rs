//! The checkpoint of a run: enough to resume it after a crash, a `kill -9`
//! or a lost connection, and nothing identifying — the file's fingerprint,
//! the run's settings, how many chunks are done, the lengths of the files
//! written so far and the counts.
//!
//! It is rewritten atomically (a temporary file, fsync, rename) after each
//! chunk, in order, once that chunk's output and report lines are on disk
//! and its batch (with `--deliver`) has been answered. A chunk delivered
//! but not yet checkpointed is sent again on resume under the same
//! `batchId` and index, which the registry answers with its first receipts.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::summary::Counts;

/// The checkpoint format's version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// What a resumed run must do exactly as the first did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// SHA-256 of the extract.
    pub input_sha256: String,
    /// Rows per chunk.
    pub chunk_size: usize,
    /// The types asked, in order.
    pub types: Vec<String>,
    /// The registry, `org|scope`.
    pub recipient: String,
    /// Whether the run delivers.
    pub deliver: bool,
    /// The output file and its format, if any.
    pub output: Option<(PathBuf, crate::output::Format)>,
}

/// A checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// The run's id: batch ids are `{runId}-{chunk}`.
    pub run_id: String,
    /// The run's settings.
    pub settings: Settings,
    /// Chunks done.
    pub chunks_done: u64,
    /// Length of the output file after them.
    pub output_bytes: u64,
    /// Length of the report after them.
    pub report_bytes: u64,
    /// The counts after them.
    pub counts: Counts,
}

/// Why a checkpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O.
    #[error("the checkpoint {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Not a checkpoint of this version.
    #[error("the checkpoint {0} is not a checkpoint of this version")]
    Invalid(String),
    /// Of another file or other settings.
    #[error("the checkpoint is of another run: {0} differs (start afresh without --resume, after removing the checkpoint)")]
    Mismatch(&'static str),
    /// A checkpoint exists but `--resume` was not given.
    #[error("a checkpoint of an unfinished run exists at {0}: resume it with --resume, or remove it to start afresh")]
    Exists(String),
}

/// Reads the checkpoint at `path`, if there is one.
pub fn load(path: &Path) -> Result<Option<Checkpoint>, CheckpointError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CheckpointError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        }
    };
    let checkpoint: Checkpoint = serde_json::from_str(&text)
        .map_err(|_| CheckpointError::Invalid(path.display().to_string()))?;
    if checkpoint.version != CHECKPOINT_VERSION {
        return Err(CheckpointError::Invalid(path.display().to_string()));
    }
    Ok(Some(checkpoint))
}

/// Whether `checkpoint` may resume a run of `settings`.
pub fn check(checkpoint: &Checkpoint, settings: &Settings) -> Result<(), CheckpointError> {
    let s = &checkpoint.settings;
    let differs = if s.input_sha256 != settings.input_sha256 {
        Some("the input file")
    } else if s.chunk_size != settings.chunk_size {
        Some("--chunk")
    } else if s.types != settings.types {
        Some("the pseudonym types")
    } else if s.recipient != settings.recipient {
        Some("the registry")
    } else if s.deliver != settings.deliver {
        Some("--deliver")
    } else if s.output != settings.output {
        Some("--output or --format")
    } else {
        None
    };
    differs.map_or(Ok(()), |what| Err(CheckpointError::Mismatch(what)))
}

/// Writes `checkpoint` to `path` atomically.
pub fn save(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let io = |e: std::io::Error| CheckpointError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let json = serde_json::to_vec_pretty(checkpoint)
        .map_err(|e| CheckpointError::Invalid(e.to_string()))?;
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&json).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Removes the checkpoint of a finished run.
pub fn remove(path: &Path) -> Result<(), CheckpointError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CheckpointError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
        _ => Ok(()),
    }
}
