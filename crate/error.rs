//! The crate's error type: every failure a user can cause ends here, with a message that says
//! what was wrong and what to do about it.

use std::path::{Path, PathBuf};

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
    #[error("{}: file missing; the directory must hold data_batch_1..5.bin and test_batch.bin: {}", path.display(), redownload_advice(path))]
    FileMissing {
        /// The missing file.
        path: PathBuf,
    },
    /// A batch file has the wrong size (truncated download, wrong file).
    #[error("{}: {actual} bytes, expected {expected} ({} records of 3,073 bytes); the file is truncated or not a CIFAR-10 binary batch: {}", path.display(), expected / 3073, redownload_advice(path))]
    BadFileSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        actual: u64,
        /// The size a batch file must have.
        expected: u64,
    },
    /// A record's label byte is not in 0..=9.
    #[error("{}: record {record} has label {label}, expected 0..=9; the file is corrupt: {}", path.display(), redownload_advice(path))]
    BadLabel {
        /// The file.
        path: PathBuf,
        /// Index of the record in the file.
        record: usize,
        /// The label byte found.
        label: u8,
    },
    /// An official batch file does not have its published md5: another file under its name
    /// (e.g. `data_batch_1.bin` copied over `test_batch.bin`) or silently corrupted bytes.
    #[error("{}: md5 {actual}, but the official {} has md5 {expected}; it is not the official CIFAR-10 file (another batch under its name, or corrupted): {}", path.display(), path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()), redownload_advice(path))]
    BadChecksum {
        /// The file.
        path: PathBuf,
        /// Its md5.
        actual: String,
        /// The published md5 of the official file of that name.
        expected: String,
    },
    /// No copy of a data set other than CIFAR-10 (see [`Error::DataNotFound`]) could be found
    /// and none was to be downloaded.
    #[error(
        "{dataset} not found in {searched}: run `klayer download --dataset {id}`, set \
         KLAYER_DATA to the directory that holds its files, or pass it with --data DIR"
    )]
    DatasetNotFound {
        /// The data set's name (`Fashion-MNIST`).
        dataset: &'static str,
        /// Its `--dataset` value (`fashion-mnist`).
        id: &'static str,
        /// The places that were searched, for the message.
        searched: String,
    },
    /// A Fashion-MNIST (IDX) file that is missing, truncated, not an IDX file, wrongly
    /// shaped, holds a label outside the classes, does not match its partner file, or differs
    /// from the official file.
    #[error("{}: {reason}; {}", path.display(), fashion_advice(path))]
    BadDataFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data directory or a batch file exists but cannot be read (no permission, a symlink
    /// loop, an I/O error).
    #[error("{}: cannot be read: {source}; check its permissions (it must be readable by this user) or point KLAYER_DATA elsewhere", path.display())]
    DataUnreadable {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
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

/// What to do about a bad or missing batch file at `file`: the exact command that replaces its
/// directory with a fresh, verified copy.
fn redownload_advice(file: &Path) -> String {
    let dir = file.parent().unwrap_or(Path::new("."));
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(root)) if name == crate::data::DATA_DIR_NAME => {
            let root = if root.as_os_str().is_empty() {
                Path::new(".")
            } else {
                root
            };
            format!(
                "replace the directory with a fresh copy: `klayer download --force --dir {}`",
                root.display()
            )
        }
        _ => format!(
            "get a fresh copy with `klayer download --dir DIR` and use DIR/{} instead of {}",
            crate::data::DATA_DIR_NAME,
            dir.display()
        ),
    }
}

/// What to do about a bad or missing Fashion-MNIST file at `file`: reinstall Debian's copy,
/// re-download the directory `klayer download` made, or get a fresh copy elsewhere.
fn fashion_advice(file: &Path) -> String {
    use crate::data::{FASHION_DIR_NAME, FASHION_SYSTEM_DIR};
    let dir = file.parent().unwrap_or(Path::new("."));
    if dir == Path::new(FASHION_SYSTEM_DIR) {
        return "reinstall Debian's copy: `apt-get install --reinstall dataset-fashion-mnist`"
            .into();
    }
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(root)) if name == FASHION_DIR_NAME => {
            let root = if root.as_os_str().is_empty() {
                Path::new(".")
            } else {
                root
            };
            format!(
                "replace the directory with a fresh copy: `klayer download --dataset \
                 fashion-mnist --force --dir {}`",
                root.display()
            )
        }
        _ => format!(
            "get a fresh copy with `klayer download --dataset fashion-mnist --dir DIR` and use \
             DIR/{FASHION_DIR_NAME} instead of {}",
            dir.display()
        ),
    }
}

/// Process exit codes of the `klayer` command line, one per kind of failure (documented in
/// `klayer --help` and the README).
pub mod exit_code {
    /// The run finished (a gradient check: every error within `--tol`).
    pub const SUCCESS: u8 = 0;
    /// A flag or value was wrong (unknown flag, value out of range, settings that do not fit
    /// together or exceed a size limit). Nothing was computed.
    pub const USAGE: u8 = 2;
    /// The data could not be found, read, verified or downloaded.
    pub const DATA: u8 = 3;
    /// Something failed while running: a file could not be written, shapes did not fit, or a
    /// gradient check found an error above `--tol`.
    pub const RUNTIME: u8 = 4;
    /// Training diverged (a non-finite or exploding mini-batch loss); the run stopped there.
    pub const DIVERGED: u8 = 5;
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

    /// The [`exit_code`] the command line ends with for this error: [`exit_code::USAGE`] for
    /// settings, [`exit_code::DATA`] for data that is missing, corrupt or cannot be downloaded,
    /// [`exit_code::RUNTIME`] for the rest.
    ///
    /// # Example
    /// ```
    /// use klayer::{error::exit_code, Error};
    /// assert_eq!(Error::config("batch", "must be at least 1").exit_code(), exit_code::USAGE);
    /// ```
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::InvalidConfig { .. } => exit_code::USAGE,
            Error::DataNotFound { .. }
            | Error::DatasetNotFound { .. }
            | Error::BadDataFile { .. }
            | Error::FileMissing { .. }
            | Error::BadFileSize { .. }
            | Error::BadLabel { .. }
            | Error::BadChecksum { .. }
            | Error::DataUnreadable { .. }
            | Error::Md5Mismatch { .. }
            | Error::Download { .. }
            | Error::Checkpoint { .. } => exit_code::DATA,
            Error::Shape(_) | Error::Io { .. } => exit_code::RUNTIME,
        }
    }

    /// The same error with an [`Error::InvalidConfig`]'s setting name replaced by `rename`'s
    /// answer for it (for example a field name by the command-line flag that sets it); other
    /// errors are returned unchanged.
    pub fn rename_setting(self, rename: impl Fn(&'static str) -> &'static str) -> Self {
        match self {
            Error::InvalidConfig { name, reason } => Error::InvalidConfig {
                name: rename(name),
                reason,
            },
            other => other,
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
