//! Finding the `cifar-10-batches-bin` directory ([`locate`]) and the Fashion-MNIST directory
//! ([`locate_fashion_in`]).
//!
//! The search order for CIFAR-10 is:
//! 1. a path given explicitly (CLI flag, [`LoadOptions::path`](crate::data::LoadOptions::path));
//! 2. the environment variable [`ENV_VAR`] (`KLAYER_DATA`);
//! 3. `<data root>/cifar-10-batches-bin`, where the data root is `./data` unless told otherwise
//!    (it is where `klayer download` puts the data).
//!
//! An explicit path or a set `KLAYER_DATA` that does not exist is an error naming it: the
//! search does not quietly fall through to the next place, since that would load data from
//! somewhere the user did not ask for. Either may name the `cifar-10-batches-bin` directory
//! itself or the directory containing it.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::cifar::{BATCH_FILES, TRAIN_FILES};
#[cfg(doc)]
use super::fashion::FASHION_SYSTEM_DIR;
use super::fashion::{has_fashion_files, FASHION_DIR_NAME};
use crate::{Error, Result};

/// Environment variable naming the data directory.
pub const ENV_VAR: &str = "KLAYER_DATA";
/// Name of the directory in the official archive that holds the batch files.
pub const DATA_DIR_NAME: &str = "cifar-10-batches-bin";
/// The default data root, relative to the working directory: `data`.
pub const DEFAULT_DATA_ROOT: &str = "data";

/// Finds the CIFAR-10 directory: `explicit`, then `$KLAYER_DATA`, then
/// `./data/cifar-10-batches-bin`.
///
/// An explicit path or a set `KLAYER_DATA` that does not exist is an error naming it; the
/// search does not fall through to the next place. Either may name the
/// `cifar-10-batches-bin` directory itself or the directory containing it.
///
/// This is [`locate_in`] with the real environment and data root `./data`; see it for the
/// errors.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os(ENV_VAR);
    locate_in(explicit, env.as_deref(), Path::new(DEFAULT_DATA_ROOT))
}

/// Finds the CIFAR-10 directory from an explicit path, the value of `KLAYER_DATA` (`None` or
/// empty if unset) and the data root (the directory that holds `cifar-10-batches-bin`).
///
/// Returns the directory holding the six batch files. Only their presence is checked here;
/// sizes and contents are checked when they are read.
///
/// Errors:
/// - [`Error::DataNotFound`] if `explicit` is given but does not exist or is a file (the
///   message says which), or if
///   `KLAYER_DATA` is set but is not a directory (each named in the message), or if neither is
///   given and `<data_root>/cifar-10-batches-bin` does not exist; the message says to run
///   `klayer download` or set `KLAYER_DATA`;
/// - [`Error::FileMissing`] if the chosen directory lacks one of the six batch files;
/// - [`Error::DataUnreadable`] if the directory or a file in it cannot be examined (no
///   permission, a symlink loop).
///
/// # Example
/// ```
/// use std::path::Path;
/// use klayer::{data::locate_in, Error};
/// let root = tempfile::tempdir().unwrap();
/// let err = locate_in(None, None, root.path()).unwrap_err();
/// assert!(matches!(err, Error::DataNotFound { .. }));
/// assert!(err.to_string().contains("klayer download"));
/// let err = locate_in(Some(Path::new("/no/such/dir")), None, root.path()).unwrap_err();
/// assert!(err.to_string().contains("/no/such/dir"));
/// ```
pub fn locate_in(
    explicit: Option<&Path>,
    env_value: Option<&OsStr>,
    data_root: &Path,
) -> Result<PathBuf> {
    search_in(explicit, env_value, data_root)?.ok_or_else(|| Error::DataNotFound {
        searched: format!(
            "{} ({ENV_VAR} is not set)",
            data_root.join(DATA_DIR_NAME).display()
        ),
    })
}

/// The search of [`locate_in`], returning `Ok(None)` only when neither an explicit path nor
/// `KLAYER_DATA` was given and the default directory does not exist: the one case in which a
/// download may be started.
pub(crate) fn search_in(
    explicit: Option<&Path>,
    env_value: Option<&OsStr>,
    data_root: &Path,
) -> Result<Option<PathBuf>> {
    if let Some(p) = explicit {
        return given(p, "given explicitly").map(Some);
    }
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        return given(Path::new(v), &format!("from {ENV_VAR}")).map(Some);
    }
    let dir = data_root.join(DATA_DIR_NAME);
    if !dir.is_dir() {
        return Ok(None);
    }
    require_files(&dir)?;
    Ok(Some(dir))
}

/// Finds the Fashion-MNIST directory (see [`locate_fashion_in`]); `Ok(None)` when nothing
/// was named and no copy was found: the one case in which a download may be started.
pub(crate) fn search_fashion_in(
    explicit: Option<&Path>,
    env_value: Option<&OsStr>,
    data_root: &Path,
    system_dir: Option<&Path>,
) -> Result<Option<PathBuf>> {
    // A directory holding the four files, itself or in its `fashion-mnist` subdirectory.
    let holding = |p: &Path| {
        [p.join(FASHION_DIR_NAME), p.to_path_buf()]
            .into_iter()
            .find(|d| has_fashion_files(d))
    };
    if let Some(p) = explicit {
        if !p.is_dir() {
            return Err(Error::DatasetNotFound {
                dataset: "Fashion-MNIST",
                id: "fashion-mnist",
                searched: format!("{} (given explicitly; no such directory)", p.display()),
            });
        }
        // Reading the directory names the file that is missing.
        return Ok(Some(holding(p).unwrap_or_else(|| p.to_path_buf())));
    }
    if let Some(dir) = env_value
        .filter(|v| !v.is_empty())
        .and_then(|v| holding(Path::new(v)))
    {
        return Ok(Some(dir));
    }
    let dir = data_root.join(FASHION_DIR_NAME);
    if dir.is_dir() {
        return Ok(Some(dir));
    }
    Ok(system_dir
        .filter(|d| has_fashion_files(d))
        .map(Path::to_path_buf))
}

/// Finds the Fashion-MNIST directory, in this order:
/// 1. `explicit`, which must be a directory (the four files in it or in its `fashion-mnist`
///    subdirectory);
/// 2. `$KLAYER_DATA` (`env_value`), if it holds the four files (itself or its
///    `fashion-mnist` subdirectory); otherwise it is passed over, since it may name CIFAR-10;
/// 3. `<data_root>/fashion-mnist`, if it exists (where `klayer download --dataset
///    fashion-mnist` puts the files);
/// 4. `system_dir` (normally [`FASHION_SYSTEM_DIR`], where Debian's `dataset-fashion-mnist`
///    installs them), if it holds the four files.
///
/// Only the presence of the files is checked here; a missing file in an explicit directory
/// or the data root's is reported when it is read.
///
/// Errors: [`Error::DatasetNotFound`] if `explicit` is not a directory or nothing is found;
/// the message says to run `klayer download --dataset fashion-mnist` or set `KLAYER_DATA`.
///
/// # Example
/// ```
/// use klayer::data::locate_fashion_in;
/// let root = tempfile::tempdir().unwrap();
/// let err = locate_fashion_in(None, None, root.path(), None).unwrap_err();
/// assert!(err.to_string().contains("klayer download --dataset fashion-mnist"));
/// ```
pub fn locate_fashion_in(
    explicit: Option<&Path>,
    env_value: Option<&OsStr>,
    data_root: &Path,
    system_dir: Option<&Path>,
) -> Result<PathBuf> {
    search_fashion_in(explicit, env_value, data_root, system_dir)?.ok_or_else(|| {
        Error::DatasetNotFound {
            dataset: "Fashion-MNIST",
            id: "fashion-mnist",
            searched: searched_fashion(data_root, system_dir),
        }
    })
}

/// The places [`search_fashion_in`] looked at when nothing was named, for messages.
pub(crate) fn searched_fashion(data_root: &Path, system_dir: Option<&Path>) -> String {
    let mut s = format!(
        "{} ({ENV_VAR} does not hold it)",
        data_root.join(FASHION_DIR_NAME).display()
    );
    if let Some(d) = system_dir {
        s += &format!(" or {}", d.display());
    }
    s
}

/// A directory the user named: it must exist; it may be the batch directory or its parent.
fn given(p: &Path, origin: &str) -> Result<PathBuf> {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::DataNotFound {
                searched: format!(
                    "{} ({origin}; it is a file, not a directory: name the {DATA_DIR_NAME} \
                     directory that holds the six batch files)",
                    p.display()
                ),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::DataNotFound {
                searched: format!("{} ({origin}; no such directory)", p.display()),
            })
        }
        Err(source) => {
            return Err(Error::DataUnreadable {
                path: p.to_path_buf(),
                source,
            })
        }
    }
    let nested = p.join(DATA_DIR_NAME);
    let dir = if !exists(&p.join(TRAIN_FILES[0]))? && exists(&nested)? && nested.is_dir() {
        nested
    } else {
        p.to_path_buf()
    };
    require_files(&dir)?;
    Ok(dir)
}

/// Whether `path` exists; errors other than "not found" (no permission to look, a symlink
/// loop) are [`Error::DataUnreadable`] rather than a silent "no".
fn exists(path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::DataUnreadable {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn require_files(dir: &Path) -> Result<()> {
    // A directory that cannot be listed is reported as such, not as six missing files.
    fs::read_dir(dir).map_err(|source| Error::DataUnreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    for name in BATCH_FILES {
        let path = dir.join(name);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(Error::FileMissing { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::FileMissing { path })
            }
            Err(source) => return Err(Error::DataUnreadable { path, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for name in BATCH_FILES {
            fs::write(dir.join(name), b"").unwrap();
        }
    }

    #[test]
    fn order_is_explicit_env_default() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        let b = root.path().join("b");
        let default = root.path().join(DATA_DIR_NAME);
        fill(&a);
        fill(&b);
        fill(&default);
        let env = Some(b.as_os_str());
        assert_eq!(locate_in(Some(&a), env, root.path()).unwrap(), a);
        assert_eq!(locate_in(None, env, root.path()).unwrap(), b);
        assert_eq!(locate_in(None, None, root.path()).unwrap(), default);
        assert_eq!(
            locate_in(None, Some(OsStr::new("")), root.path()).unwrap(),
            default
        );
        // The parent of the batch directory is accepted too.
        assert_eq!(
            locate_in(Some(root.path()), None, root.path()).unwrap(),
            default
        );
    }

    #[test]
    fn named_but_missing_does_not_fall_through() {
        let root = tempfile::tempdir().unwrap();
        fill(&root.path().join(DATA_DIR_NAME));
        let missing = root.path().join("missing");
        let err = locate_in(Some(&missing), None, root.path()).unwrap_err();
        assert!(matches!(err, Error::DataNotFound { .. }));
        assert!(err.to_string().contains("missing"));
        let err = locate_in(None, Some(missing.as_os_str()), root.path()).unwrap_err();
        assert!(err.to_string().contains("KLAYER_DATA"), "{err}");
        assert!(search_in(None, None, &missing).unwrap().is_none());
    }

    #[test]
    fn incomplete_directory_names_the_missing_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(DATA_DIR_NAME);
        fill(&dir);
        fs::remove_file(dir.join("test_batch.bin")).unwrap();
        match locate_in(None, None, root.path()) {
            Err(Error::FileMissing { path }) => assert!(path.ends_with("test_batch.bin")),
            other => panic!("expected FileMissing, got {other:?}"),
        }
    }

    fn fashion(dir: &Path) {
        fs::create_dir_all(dir).unwrap();
        for f in crate::data::FASHION_FILES {
            fs::write(dir.join(format!("{}.gz", f.name)), b"").unwrap();
        }
    }

    #[test]
    fn fashion_order_is_explicit_env_data_root_system() {
        let root = tempfile::tempdir().unwrap();
        let (a, env, system) = (
            root.path().join("a"),
            root.path().join("env"),
            root.path().join("system"),
        );
        let data_root = root.path().join("data");
        let default = data_root.join(FASHION_DIR_NAME);
        for d in [&a, &env, &default, &system] {
            fashion(d);
        }
        let find = |explicit: Option<&Path>, env: Option<&Path>| {
            locate_fashion_in(
                explicit,
                env.map(Path::as_os_str),
                &data_root,
                Some(&system),
            )
            .unwrap()
        };
        assert_eq!(find(Some(&a), Some(&env)), a);
        assert_eq!(find(None, Some(&env)), env);
        assert_eq!(find(None, None), default);
        // KLAYER_DATA naming CIFAR-10 (no Fashion-MNIST files) is passed over.
        let cifar = root.path().join(DATA_DIR_NAME);
        fill(&cifar);
        assert_eq!(find(None, Some(&cifar)), default);
        // A parent of `fashion-mnist` is accepted, explicitly or from KLAYER_DATA.
        assert_eq!(find(Some(&data_root), None), default);
        assert_eq!(find(None, Some(&data_root)), default);
        fs::remove_dir_all(&default).unwrap();
        assert_eq!(find(None, Some(&cifar)), system);
        // An incomplete system copy is not used.
        fs::remove_file(system.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        let err = locate_fashion_in(None, None, &data_root, Some(&system)).unwrap_err();
        assert!(matches!(err, Error::DatasetNotFound { .. }), "{err:?}");
        // Decompressed files count as well as gzipped ones.
        fs::write(system.join("t10k-labels-idx1-ubyte"), b"").unwrap();
        assert_eq!(find(None, None), system);
        // An explicit path that does not exist is an error, not a reason to look elsewhere.
        let err = locate_fashion_in(
            Some(&root.path().join("nope")),
            None,
            &data_root,
            Some(&system),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
