//! Downloading and unpacking the official CIFAR-10 binary archive, and downloading the four
//! Fashion-MNIST files ([`download_fashion_mnist`]).
//!
//! [`download`] streams the `.tar.gz` to a temporary file inside the data root while computing
//! its md5, verifies the md5, unpacks the archive into a temporary directory (also inside the
//! data root), checks the six batch files and their sizes, and only then renames the unpacked
//! `cifar-10-batches-bin` directory to `<data root>/cifar-10-batches-bin`. The rename is atomic
//! (same file system), so the final directory is either complete or absent; on every error path
//! the temporary file and directory are removed. What a killed download could not remove (its
//! `.klayer-download-*.tar.gz.part` file, an unpack directory) is removed by the next download
//! into the same data root once nothing has written to it for [`READ_TIMEOUT`].

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::cifar::{check_dir, RECORDS_PER_FILE};
#[cfg(doc)]
use super::fashion::FASHION_MNIST_URL;
use super::fashion::{read_fashion_dir, FASHION_DIR_NAME, FASHION_FILES};
use super::locate::DATA_DIR_NAME;
use crate::{Error, Result};

/// The official URL of the CIFAR-10 binary archive.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// The published md5 of the archive at [`CIFAR10_URL`].
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Size in bytes of the archive at [`CIFAR10_URL`].
pub const CIFAR10_BYTES: u64 = 170_052_171;

/// Time allowed to establish the connection (including the TLS handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence allowed while receiving: a stalled transfer fails after this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for the whole transfer (170 MB at about 50 kB/s).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Downloads the CIFAR-10 binary archive from `url`, checks that its md5 is `md5_hex`, and
/// unpacks it to `<data_root>/cifar-10-batches-bin`, which is returned.
///
/// `data_root` is created if needed. Progress lines go to stderr about every 10 %.
///
/// Errors (nothing is left behind in `data_root` in any of these cases, other than the
/// directory itself if it had to be created):
/// - [`Error::InvalidConfig`] if `md5_hex` is not 32 hexadecimal digits;
/// - [`Error::Io`] if `<data_root>/cifar-10-batches-bin` already exists (it is not
///   overwritten; [`redownload`] replaces it) or a local file operation fails;
/// - [`Error::Download`] if the host cannot be reached, the server answers with an HTTP error
///   status, the connection drops or times out, or the archive is not a `.tar.gz` holding the
///   six batch files of 10,000 records;
/// - [`Error::Md5Mismatch`] if what arrived does not have the expected md5.
///
/// Typical use: `download(CIFAR10_URL, CIFAR10_MD5, Path::new("data"))`.
pub fn download(url: &str, md5_hex: &str, data_root: &Path) -> Result<PathBuf> {
    download_archive(url, md5_hex, data_root, RECORDS_PER_FILE)
}

/// Like [`download`], but an existing `<data_root>/cifar-10-batches-bin` (a corrupt or
/// incomplete copy) is replaced: the new copy is downloaded, verified and unpacked first, then
/// swapped in by two renames, and only then is the old one deleted. If anything fails before
/// the swap, the old directory is left as it was. This is `klayer download --force`.
pub fn redownload(url: &str, md5_hex: &str, data_root: &Path) -> Result<PathBuf> {
    fetch_and_unpack(url, md5_hex, data_root, RECORDS_PER_FILE, true)
}

/// Like [`download`], but the batch files in the archive must hold `records_per_file` records
/// each instead of the official 10,000 (for tests with small archives).
pub fn download_archive(
    url: &str,
    md5_hex: &str,
    data_root: &Path,
    records_per_file: usize,
) -> Result<PathBuf> {
    fetch_and_unpack(url, md5_hex, data_root, records_per_file, false)
}

/// Temporary files and directories of a download: `<prefix>*<suffix>` in the data root.
const PART_FILE: (&str, &str) = (".klayer-download-", ".tar.gz.part");
const UNPACK_DIR: (&str, &str) = (".klayer-unpack-", "");
const OLD_DIR: (&str, &str) = (".klayer-old-", "");

/// Removes what an interrupted download (killed, power cut: no destructor ran) left in
/// `data_root`: partial archives and unpack or swap directories that nobody has written to
/// for longer than [`READ_TIMEOUT`] (a live download writes more often than that, or times
/// out). Returns the number of entries removed.
fn remove_stale_parts(data_root: &Path) -> usize {
    let Ok(entries) = fs::read_dir(data_root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = [PART_FILE, UNPACK_DIR, OLD_DIR]
            .iter()
            .any(|(pre, suf)| name.starts_with(pre) && name.ends_with(suf));
        let Ok(meta) = entry.metadata() else { continue };
        let idle = meta
            .modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|d| d > READ_TIMEOUT);
        if !(ours && idle) {
            continue;
        }
        let path = entry.path();
        let gone = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        if gone.is_ok() {
            eprintln!(
                "removed {} (left by an interrupted download)",
                path.display()
            );
            removed += 1;
        }
    }
    removed
}

fn fetch_and_unpack(
    url: &str,
    md5_hex: &str,
    data_root: &Path,
    records_per_file: usize,
    replace: bool,
) -> Result<PathBuf> {
    let expected_md5 = md5_hex.trim().to_ascii_lowercase();
    if expected_md5.len() != 32 || !expected_md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::config(
            "md5",
            format!("`{md5_hex}` is not an md5 sum (32 hexadecimal digits)"),
        ));
    }
    if records_per_file == 0 {
        return Err(Error::config("records_per_file", "must be at least 1"));
    }
    remove_stale_parts(data_root);
    let target = data_root.join(DATA_DIR_NAME);
    if !replace && fs::symlink_metadata(&target).is_ok() {
        return Err(already_exists(&target));
    }
    fs::create_dir_all(data_root).map_err(|e| Error::io(data_root, e))?;

    // 1. Stream the archive into a temporary file, hashing it on the way.
    let mut archive = tempfile::Builder::new()
        .prefix(PART_FILE.0)
        .suffix(PART_FILE.1)
        .tempfile_in(data_root)
        .map_err(|e| Error::io(data_root, e))?;
    let part_path = archive.path().to_path_buf();
    let actual_md5 = fetch(url, archive.as_file_mut(), &part_path)?;
    if actual_md5 != expected_md5 {
        // `archive` is deleted when dropped.
        return Err(Error::Md5Mismatch {
            url: url.to_string(),
            actual: actual_md5,
            expected: expected_md5,
        });
    }
    eprintln!("md5 verified; unpacking into {}", data_root.display());

    // 2. Unpack into a temporary directory next to the target.
    let unpack_dir = tempfile::Builder::new()
        .prefix(UNPACK_DIR.0)
        .tempdir_in(data_root)
        .map_err(|e| Error::io(data_root, e))?;
    archive
        .as_file_mut()
        .seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(&part_path, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(
        archive.as_file(),
    )));
    tar.set_preserve_permissions(false);
    tar.set_overwrite(false);
    tar.unpack(unpack_dir.path()).map_err(|e| Error::Download {
        url: url.to_string(),
        reason: format!("the archive could not be unpacked ({e}); it is not a valid .tar.gz"),
    })?;
    drop(archive);

    // 3. Check it is the CIFAR-10 binary release, then move it into place.
    let unpacked = unpack_dir.path().join(DATA_DIR_NAME);
    if !unpacked.is_dir() {
        return Err(Error::Download {
            url: url.to_string(),
            reason: format!("the archive has no `{DATA_DIR_NAME}` directory"),
        });
    }
    check_dir(&unpacked, records_per_file).map_err(|e| Error::Download {
        url: url.to_string(),
        reason: format!("the archive is not the CIFAR-10 binary release: {e}"),
    })?;
    install(&unpacked, &target, unpack_dir, replace, "")
}

/// Moves the verified directory `unpacked` (inside `unpack_dir`) to `target`. An existing
/// `target` is an error unless `replace`; then it is moved aside, the new copy put in place
/// (the old one put back if that fails), and only then deleted with `unpack_dir`.
/// `dataset_flag` is the `--dataset …` part of the command named in the error.
fn install(
    unpacked: &Path,
    target: &Path,
    unpack_dir: tempfile::TempDir,
    replace: bool,
    dataset_flag: &str,
) -> Result<PathBuf> {
    if fs::symlink_metadata(target).is_ok() {
        if !replace {
            return Err(already_exists_for(target, dataset_flag));
        }
        // Move the old copy aside (inside the unpack directory, so that it is removed with
        // it), put the new one in place, and put the old one back if that fails.
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let old = unpack_dir.path().join(format!("{}{name}", OLD_DIR.0));
        fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        if let Err(e) = fs::rename(unpacked, target) {
            let _ = fs::rename(&old, target);
            return Err(Error::io(target, e));
        }
        eprintln!("replaced the old {}", target.display());
    } else {
        fs::rename(unpacked, target).map_err(|e| Error::io(target, e))?;
    }
    let root = unpack_dir.path().parent().map(Path::to_path_buf);
    unpack_dir
        .close()
        .map_err(|e| Error::io(root.as_deref().unwrap_or(target), e))?;
    Ok(target.to_path_buf())
}

/// Downloads the four official Fashion-MNIST `.gz` files from `base_url` (the directory URL;
/// [`FASHION_MNIST_URL`] for the official one), checks each against its official md5
/// ([`FashionFile::gz_md5`](super::FashionFile)) and that they are IDX files of 28×28 images
/// and matching labels, and only then moves them, as a directory, to
/// `<data_root>/fashion-mnist`, which is returned. As for [`download`], nothing is left
/// behind on failure, and an existing `<data_root>/fashion-mnist` is not overwritten
/// ([`redownload_fashion_mnist`] replaces it).
///
/// Errors: those of [`download`] (for each file, [`Error::Md5Mismatch`] names its URL).
pub fn download_fashion_mnist(base_url: &str, data_root: &Path) -> Result<PathBuf> {
    download_fashion_files(base_url, FASHION_FILES.map(|f| f.gz_md5), data_root, false)
}

/// Like [`download_fashion_mnist`], but an existing `<data_root>/fashion-mnist` is replaced
/// once the new copy is complete and verified (`klayer download --dataset fashion-mnist
/// --force`).
pub fn redownload_fashion_mnist(base_url: &str, data_root: &Path) -> Result<PathBuf> {
    download_fashion_files(base_url, FASHION_FILES.map(|f| f.gz_md5), data_root, true)
}

/// [`download_fashion_mnist`] with the md5 each `.gz` file must have given (in the order of
/// [`FASHION_FILES`]) and a choice to `replace` an existing copy: for mirrors and tests with
/// small files. The files must still be IDX files of 28×28 images and matching labels (of
/// any number).
pub fn download_fashion_files(
    base_url: &str,
    gz_md5: [&str; 4],
    data_root: &Path,
    replace: bool,
) -> Result<PathBuf> {
    let md5s = gz_md5.map(|m| m.trim().to_ascii_lowercase());
    if let Some(bad) = md5s
        .iter()
        .find(|m| m.len() != 32 || !m.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Error::config(
            "md5",
            format!("`{bad}` is not an md5 sum (32 hexadecimal digits)"),
        ));
    }
    remove_stale_parts(data_root);
    let target = data_root.join(FASHION_DIR_NAME);
    if !replace && fs::symlink_metadata(&target).is_ok() {
        return Err(already_exists_for(&target, FASHION_FLAG));
    }
    fs::create_dir_all(data_root).map_err(|e| Error::io(data_root, e))?;
    // Everything arrives inside a temporary directory, removed with it on any error.
    let unpack_dir = tempfile::Builder::new()
        .prefix(UNPACK_DIR.0)
        .tempdir_in(data_root)
        .map_err(|e| Error::io(data_root, e))?;
    let staging = unpack_dir.path().join(FASHION_DIR_NAME);
    fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    for (f, want) in FASHION_FILES.iter().zip(&md5s) {
        let url = format!("{}/{}.gz", base_url.trim_end_matches('/'), f.name);
        let path = staging.join(format!("{}.gz", f.name));
        let mut out = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let actual = fetch(&url, &mut out, &path)?;
        if &actual != want {
            return Err(Error::Md5Mismatch {
                url,
                actual,
                expected: want.clone(),
            });
        }
    }
    eprintln!("md5 verified; checking the files");
    read_fashion_dir(&staging, false).map_err(|e| Error::Download {
        url: base_url.to_string(),
        reason: format!("the files are not Fashion-MNIST: {e}"),
    })?;
    install(&staging, &target, unpack_dir, replace, FASHION_FLAG)
}

/// The `--dataset` flag of `klayer download` for Fashion-MNIST, for messages.
const FASHION_FLAG: &str = " --dataset fashion-mnist";

fn already_exists(target: &Path) -> Error {
    already_exists_for(target, "")
}

fn already_exists_for(target: &Path, dataset_flag: &str) -> Error {
    let root = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Error::io(
        target,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "already exists and is not overwritten: use it (set KLAYER_DATA to it), or \
                 replace it with a fresh verified copy: `klayer download{dataset_flag} --force \
                 --dir {}`",
                root.display()
            ),
        ),
    )
}

/// Downloads `url` into `out`, returning the md5 (lower-case hex) of the bytes received.
fn fetch(url: &str, out: &mut fs::File, out_path: &Path) -> Result<String> {
    let download_err = |reason: String| Error::Download {
        url: url.to_string(),
        reason,
    };
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .timeout_global(Some(TOTAL_TIMEOUT))
        // The archive must arrive byte for byte as published: no transfer compression.
        .accept_encoding("identity")
        .http_status_as_error(true);
    if is_loopback(url) {
        // A local server (tests, a mirror on this machine) is never reached through a proxy.
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    eprintln!("downloading {url}");
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| download_err(describe(&e)))?;
    let total = response.body().content_length();
    let mut reader = response.body_mut().as_reader();

    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received: u64 = 0;
    let mut next_report: u64 = 1;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(download_err(format!(
                    "the transfer broke off after {received} bytes: {}",
                    describe_io(&e)
                )))
            }
        };
        md5.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Error::io(out_path, e))?;
        received += n as u64;
        // Progress: every 10 % if the size is known, else every 10 MB.
        match total {
            Some(t) if t > 0 => {
                let tenths = received * 10 / t;
                if tenths >= next_report {
                    eprintln!(
                        "  {:>3} %  ({:.1} of {:.1} MB)",
                        tenths.min(10) * 10,
                        received as f64 / 1e6,
                        t as f64 / 1e6
                    );
                    next_report = tenths + 1;
                }
            }
            _ => {
                if received >= next_report * 10_000_000 {
                    eprintln!("  {:.1} MB", received as f64 / 1e6);
                    next_report = received / 10_000_000 + 1;
                }
            }
        }
    }
    if let Some(t) = total {
        if received != t {
            return Err(download_err(format!(
                "the connection closed after {received} of {t} bytes"
            )));
        }
    }
    out.flush().map_err(|e| Error::io(out_path, e))?;
    Ok(format!("{:x}", md5.finalize()))
}

/// True if `url` names this machine (`localhost`, `127.x.x.x` or `[::1]`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A reason for the user, from a ureq error.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::HostNotFound => "the host name could not be resolved".to_string(),
        ureq::Error::ConnectionFailed => "the host could not be reached".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(io) => describe_io(io),
        other => other.to_string(),
    }
}

fn describe_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => format!("the host refused the connection ({e})"),
        io::ErrorKind::TimedOut => format!("timed out ({e})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/x.tar.gz"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:99/x"));
        assert!(is_loopback("http://user@127.0.0.2/x"));
        assert!(!is_loopback(CIFAR10_URL));
    }

    #[test]
    fn stale_part_files_of_an_interrupted_download_are_removed_and_fresh_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let stale = root.path().join(".klayer-download-abc123.tar.gz.part");
        let fresh = root.path().join(".klayer-download-def456.tar.gz.part");
        let stale_dir = root.path().join(".klayer-unpack-xyz");
        let unrelated = root.path().join("notes.tar.gz.part");
        for f in [&stale, &fresh, &unrelated] {
            fs::write(f, b"partial").unwrap();
        }
        fs::create_dir(&stale_dir).unwrap();
        let old = std::time::SystemTime::now() - 2 * READ_TIMEOUT;
        for p in [&stale, &unrelated] {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        fs::File::open(&stale_dir)
            .unwrap()
            .set_modified(old)
            .unwrap();
        // The next download (here failing at once: nothing listens on port 9) cleans up.
        let err = download("http://127.0.0.1:9/x.tar.gz", CIFAR10_MD5, root.path()).unwrap_err();
        assert!(matches!(err, Error::Download { .. }), "{err:?}");
        assert!(!stale.exists() && !stale_dir.exists());
        assert!(
            fresh.exists(),
            "a part file being written right now is left alone"
        );
        assert!(unrelated.exists(), "files that are not ours are left alone");
    }

    #[test]
    fn rejects_bad_md5_and_existing_target_before_connecting() {
        let root = tempfile::tempdir().unwrap();
        let err = download("http://127.0.0.1:9/x", "abc", root.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidConfig { name: "md5", .. }));
        fs::create_dir(root.path().join(DATA_DIR_NAME)).unwrap();
        let err = download("http://127.0.0.1:9/x", CIFAR10_MD5, root.path()).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(err.to_string().contains("klayer download --force"), "{err}");
    }
}
