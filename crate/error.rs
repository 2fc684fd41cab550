//! The crate's error type: every failure a user can cause ends here, with a message that says
//! what was wrong and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong in klayer.
///
/// Messages are written for the person at the keyboard: each one names the offending file,
/// value or flag and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No CIFAR-10 directory could be found and none was to be downloaded.
    #[error(
        "CIFAR-10 not found in {searched}: run `klayer download`, set KLAYER_DATA to the \
         cifar-10-batches-bin directory, or pass its path explicitly"
    )]
    DataNotFound {
        /// The places that were searched, for the message.
        searched: String,
    },
    /// The data directory exists but one of the six batch files is missing.
    #[error("{}: file missing; the directory must hold data_batch_1..5.bin and test_batch.bin (re-run `klayer download`)", path.display())]
    FileMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// A batch file has the wrong size (truncated download, wrong file).
    #[error("{}: {actual} bytes, expected {expected} ({} records of 3,073 bytes); the file is truncated or not a CIFAR-10 binary batch: delete it and re-run `klayer download`", path.display(), expected / 3073)]
    BadFileSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        actual: u64,
        /// The size a batch file must have.
        expected: u64,
    },
    /// A record's label byte is not in 0..=9.
    #[error("{}: record {record} has label {label}, expected 0..=9; the file is corrupt: delete it and re-run `klayer download`", path.display())]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Index of the record in the file.
        record: usize,
        /// The label byte found.
        label: u8,
    },
    /// A downloaded archive does not have the published md5.
    #[error("download from {url}: md5 {actual}, expected {expected}; the file was discarded, try again or fetch it by hand")]
    Md5Mismatch {
        /// Where it came from.
        url: String,
        /// The md5 of what arrived.
        actual: String,
        /// The published md5.
        expected: String,
    },
    /// The download failed (host unreachable, HTTP error, connection dropped).
    #[error("download from {url} failed: {reason}; check the network or download the archive by hand and set KLAYER_DATA")]
    Download {
        /// Where it was to come from.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting is out of range or inconsistent.
    #[error("invalid setting `{name}`: {reason}")]
    InvalidConfig {
        /// The setting's name, as in the CLI flag or config field.
        name: &'static str,
        /// What is wrong with it and what is allowed.
        reason: String,
    },
    /// A file given as a checkpoint that is not a complete klayer checkpoint.
    #[error("{}: not a usable klayer checkpoint: {reason}; save the network again with `klayer train --save FILE` (or `klayer::checkpoint::save`)", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// An I/O error with the path it happened on.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidConfig`] for setting `name`.
    pub fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            name,
            reason: reason.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
