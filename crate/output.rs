//! Writing output files safely: a regular file is replaced atomically (a temporary file in the
//! same directory, synced, then renamed over it, keeping the old file's permissions and
//! owner), so a crash never leaves a half-written file; anything that is not a regular file
//! (`/dev/null`, `/dev/stdout`, a FIFO) is written through, never replaced; a symbolic link is
//! followed, so the link stays and its target gets the new contents.
//!
//! [`OutputPath::check`] does every check that can fail before the work whose result is to be
//! written starts (the directory exists and is writable, the path is not a directory), so a
//! long run does not end with "cannot write".
//!
//! # Example
//! ```
//! use klayer::output::OutputPath;
//! let dir = tempfile::tempdir().unwrap();
//! let out = OutputPath::check(dir.path().join("history.json")).unwrap();
//! out.write(b"{}").unwrap();
//! assert_eq!(std::fs::read(dir.path().join("history.json")).unwrap(), b"{}");
//! assert!(OutputPath::check(dir.path()).is_err()); // a directory
//! ```

use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Symbolic links followed at most when resolving an output path (as Linux's `ELOOP` limit).
const MAX_LINKS: usize = 40;

/// An output path that was checked to be writable, and how it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPath {
    /// The path as given.
    pub given: PathBuf,
    /// Where the bytes go: the path itself, or the end of its chain of symbolic links.
    pub target: PathBuf,
    /// How the target is written.
    pub kind: OutputKind,
}

/// How an [`OutputPath`] is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// A new file, created atomically (temporary file, then rename) with the default mode.
    New,
    /// An existing regular file, replaced atomically; it keeps its permissions.
    Replace(Permissions),
    /// Not a regular file (a device such as `/dev/null`, a FIFO, a socket), or a regular file
    /// reached through a file descriptor (`/dev/stdout` redirected to a file): opened and
    /// written in place, never replaced.
    WriteThrough,
    /// A writable regular file in a directory that does not accept new files: truncated and
    /// written in place (not atomic: there is no other way).
    Overwrite,
}

impl OutputPath {
    /// Resolves `path` (following symbolic links) and checks that it can be written: its
    /// directory must exist and accept new files (an atomic replacement needs that), an
    /// existing regular file must be openable for writing, and it must not be a directory.
    ///
    /// Errors: [`Error::Io`] naming the path and saying what is wrong.
    pub fn check(path: impl Into<PathBuf>) -> Result<Self> {
        let given: PathBuf = path.into();
        if given.as_os_str().is_empty() {
            return Err(Error::io(
                &given,
                io::Error::new(io::ErrorKind::InvalidInput, "an empty path"),
            ));
        }
        // `metadata` follows every link: it tells what the bytes would land in.
        let (target, kind) = match fs::metadata(&given) {
            Ok(m) if m.is_dir() => {
                return Err(Error::io(
                    &given,
                    io::Error::new(
                        io::ErrorKind::IsADirectory,
                        "is a directory; name a file to write to",
                    ),
                ))
            }
            Ok(m) if m.is_file() => {
                let (target, via_fd) = resolve_links(&given)?;
                // Opening without truncating changes nothing and fails on a read-only file.
                OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(|e| Error::io(&target, e))?;
                if via_fd {
                    // `/dev/stdout` redirected to a file: replacing the file would cut it off
                    // from the descriptor that still writes to it.
                    (given.clone(), OutputKind::WriteThrough)
                } else if check_dir_writable(&target).is_ok() {
                    (target, OutputKind::Replace(m.permissions()))
                } else {
                    // The file may be written but its directory takes no new files: the
                    // only way left is in place.
                    (target, OutputKind::Overwrite)
                }
            }
            Ok(_) => (given.clone(), OutputKind::WriteThrough),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A new file, possibly at the end of a dangling symbolic link.
                let (target, _) = resolve_links(&given)?;
                check_dir_writable(&target)?;
                (target, OutputKind::New)
            }
            Err(e) => return Err(Error::io(&given, e)),
        };
        Ok(OutputPath {
            given,
            target,
            kind,
        })
    }

    /// Writes `bytes` as [`OutputKind`] says.
    ///
    /// Errors: [`Error::Io`] naming the path (a full disk, a device that refuses the write,
    /// the directory gone since [`check`](Self::check)).
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        match &self.kind {
            OutputKind::WriteThrough => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&self.target)
                    .map_err(|e| Error::io(&self.target, e))?;
                f.write_all(bytes)
                    .and_then(|()| f.flush())
                    .map_err(|e| Error::io(&self.target, e))
            }
            OutputKind::Overwrite => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&self.target)
                    .map_err(|e| Error::io(&self.target, e))?;
                f.write_all(bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(|e| Error::io(&self.target, e))
            }
            OutputKind::New => replace(&self.target, bytes, None),
            OutputKind::Replace(perm) => replace(&self.target, bytes, Some(perm.clone())),
        }
    }
}

/// Writes `bytes` to `path` as [`OutputPath`] does: checks it, then writes it.
///
/// # Example
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("a.txt");
/// klayer::output::write_atomic(&p, b"one").unwrap();
/// klayer::output::write_atomic(&p, b"two").unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"two");
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    OutputPath::check(path)?.write(bytes)
}

/// Follows `path`'s chain of symbolic links to the path that is finally written (which need
/// not exist yet); also says whether the chain went through `/proc` (a file descriptor, as
/// `/dev/stdout` is).
fn resolve_links(path: &Path) -> Result<(PathBuf, bool)> {
    let mut p = path.to_path_buf();
    let mut via_fd = false;
    for _ in 0..MAX_LINKS {
        via_fd |= p.starts_with("/proc");
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = if link.is_absolute() {
                    link
                } else {
                    parent_of(&p).join(link)
                };
            }
            Ok(_) => return Ok((p, via_fd)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((p, via_fd)),
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Err(Error::io(
        path,
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("more than {MAX_LINKS} symbolic links to follow"),
        ),
    ))
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Checks that a file can be created next to `path`, by creating (and removing) one.
fn check_dir_writable(path: &Path) -> Result<()> {
    let dir = parent_of(path);
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::io(
                dir,
                io::Error::new(io::ErrorKind::NotADirectory, "is not a directory"),
            ))
        }
        Err(e) => {
            return Err(Error::io(
                dir,
                io::Error::new(
                    e.kind(),
                    format!("{e}: the directory to write {} in", path.display()),
                ),
            ))
        }
    }
    temp_in(dir)?;
    Ok(())
}

/// A new temporary file in `dir`, readable and writable as the umask allows for new files.
fn temp_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".klayer-out-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(Permissions::from_mode(0o666));
    }
    b.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to a temporary file next to `path`, syncs it, gives it `perm` (if any) and
/// renames it over `path`.
fn replace(path: &Path, bytes: &[u8], perm: Option<Permissions>) -> Result<()> {
    let mut tmp = temp_in(parent_of(path))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io(path, e))?;
    if let Some(perm) = perm {
        fs::set_permissions(tmp.path(), perm).map_err(|e| Error::io(path, e))?;
        // Keep the owner too where this user may (root writing someone else's file).
        #[cfg(unix)]
        if let Ok(m) = fs::metadata(path) {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::chown(tmp.path(), Some(m.uid()), Some(m.gid()));
        }
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[test]
    #[cfg(unix)]
    fn a_replaced_regular_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.json");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
    }

    #[test]
    #[cfg(unix)]
    fn a_new_file_is_not_private_to_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.json");
        write_atomic(&p, b"x").unwrap();
        // 0o666 minus the umask: at least the owner can read and write, and it is not the
        // temporary file's 0o600 unless the umask says so.
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
    }

    #[test]
    #[cfg(unix)]
    fn a_symlink_stays_and_its_target_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.json");
        fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        // A dangling link creates its target.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("created.json", &dangling).unwrap();
        write_atomic(&dangling, b"c").unwrap();
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(dir.path().join("created.json")).unwrap(), b"c");
    }

    /// A character device like `/dev/null` (1, 3) or `/dev/full` (1, 7), made in `dir` so that
    /// a regression replaces the copy, not the machine's device; `None` where this user may
    /// not make device nodes.
    #[cfg(unix)]
    fn device(dir: &Path, name: &str, minor: u32) -> Option<PathBuf> {
        let p = dir.join(name);
        let made = std::process::Command::new("mknod")
            .arg(&p)
            .args(["c", "1", &minor.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        if made.is_ok_and(|s| s.success()) {
            Some(p)
        } else {
            eprintln!("skipped: this user cannot make device nodes (mknod)");
            None
        }
    }

    #[test]
    #[cfg(unix)]
    fn a_device_is_written_through_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let Some(null) = device(dir.path(), "null", 3) else {
            return;
        };
        let out = OutputPath::check(&null).unwrap();
        assert_eq!(out.kind, OutputKind::WriteThrough);
        out.write(b"discarded").unwrap();
        assert!(fs::metadata(&null).unwrap().file_type().is_char_device());
        let full = device(dir.path(), "full", 7).unwrap();
        let err = write_atomic(&full, b"x").unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        assert!(fs::metadata(&full).unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_missing_directory_or_a_directory_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputPath::check(dir.path().join("no/such/dir/h.json")).unwrap_err();
        assert!(err.to_string().contains("no/such/dir"), "{err}");
        let err = OutputPath::check(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        // Nothing was left behind by the checks.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
