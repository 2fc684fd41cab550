//! Integration tests of the data layer: the real CIFAR-10 files (at `$KLAYER_DATA`, else
//! `data/cifar-10-batches-bin`; skipped without them, see [`common::cifar10_dir`]), every error
//! path on small hand-built files, and downloads from a local HTTP server.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use klayer::data::{
    download, download_archive, locate_in, read_batch, read_batch_records, read_dir,
    read_dir_records, LoadOptions, Split, BATCH_FILES, DATA_DIR_NAME, FILE_BYTES, IMAGE_DIM,
    NUM_CLASSES, RECORDS_PER_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES,
};
use klayer::Error;
use md5::{Digest, Md5};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The real data's folder ([`common::cifar10_dir`]); `None` skips the test.
fn real_dir() -> Option<PathBuf> {
    common::cifar10_dir()
}

/// The real data set, loaded once for all tests that need it; `None` skips the test.
fn real() -> Option<&'static Split<f32>> {
    static DATA: OnceLock<Split<f32>> = OnceLock::new();
    let dir = real_dir()?;
    Some(DATA.get_or_init(|| {
        let opts = LoadOptions::default().path(dir).download(false);
        Split::<f32>::load(&opts).expect("loading the real CIFAR-10")
    }))
}

/// One record: label byte then `IMAGE_DIM` pixel bytes, all equal to `fill`.
fn record(label: u8, fill: u8) -> Vec<u8> {
    let mut r = vec![fill; RECORD_BYTES];
    r[0] = label;
    r
}

/// The bytes of a batch file of `n` records with labels `(file + i) % 10` and distinct fills.
fn batch_bytes(file: usize, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| record(((file + i) % 10) as u8, (file * 16 + i) as u8))
        .collect()
}

/// Writes the six batch files of `n` records each into `dir`.
fn write_batches(dir: &Path, n: usize) {
    fs::create_dir_all(dir).unwrap();
    for (f, name) in BATCH_FILES.iter().enumerate() {
        fs::write(dir.join(name), batch_bytes(f, n)).unwrap();
    }
}

/// A `.tar.gz` holding `cifar-10-batches-bin/` with the given files.
fn targz(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    dir.set_cksum();
    tar.append_data(&mut dir, format!("{DATA_DIR_NAME}/"), std::io::empty())
        .unwrap();
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        tar.append_data(&mut h, format!("{DATA_DIR_NAME}/{name}"), &bytes[..])
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// An archive of the six batch files with `n` records each (plus a meta file, as the official
/// archive has one).
fn cifar_targz(n: usize) -> Vec<u8> {
    let mut files: Vec<(&str, Vec<u8>)> = BATCH_FILES
        .iter()
        .enumerate()
        .map(|(f, name)| (*name, batch_bytes(f, n)))
        .collect();
    files.push(("batches.meta.txt", b"airplane\n".to_vec()));
    targz(&files)
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// Serves `requests` requests on 127.0.0.1 ([`common::serve_routes`]), answering each with
/// `status` and `body`; returns the archive's URL and the server thread.
fn serve(status: u16, body: Vec<u8>, requests: usize) -> (String, JoinHandle<usize>) {
    const PATH: &str = "/cifar-10-binary.tar.gz";
    let (base, handle) = common::serve_routes(vec![(PATH.to_string(), status, body)], requests);
    (format!("{base}{PATH}"), handle)
}

/// Names of everything in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Asserts that a failed download left nothing behind: no partial archive, no temporary
/// directory, no half-unpacked data.
fn assert_nothing_left(dir: &Path) {
    let left = entries(dir);
    assert!(left.is_empty(), "left behind: {left:?}");
}

// ---------------------------------------------------------------------------------------------
// The real data

#[test]
fn real_split_is_45000_5000_10000() {
    let Some(d) = real() else { return };
    assert_eq!(d.train.len(), 45_000);
    assert_eq!(d.val.len(), 5_000);
    assert_eq!(d.test.len(), 10_000);
    for set in [&d.train, &d.val, &d.test] {
        assert_eq!(set.dim(), IMAGE_DIM);
        assert_eq!(set.classes, NUM_CLASSES);
    }
    assert_eq!(d.mean.len(), IMAGE_DIM);
    assert_eq!(d.std.len(), IMAGE_DIM);
}

#[test]
fn real_test_labels_are_1000_per_class() {
    let Some(d) = real() else { return };
    let dir = real_dir().expect("found by real()");
    let mut counts = [0usize; NUM_CLASSES];
    for &l in &d.test.y {
        counts[l] += 1;
    }
    assert_eq!(counts, [1000; NUM_CLASSES]);
    // And in the raw file.
    let raw = read_batch(dir.join(TEST_FILE)).unwrap();
    assert_eq!(raw.class_counts(), [1000; NUM_CLASSES]);
}

#[test]
fn real_training_labels_are_5000_per_class_before_the_split() {
    let Some(d) = real() else { return };
    let mut counts = [0usize; NUM_CLASSES];
    for &l in d.train.y.iter().chain(&d.val.y) {
        counts[l] += 1;
    }
    assert_eq!(counts, [5000; NUM_CLASSES]);
}

#[test]
fn real_validation_is_the_last_5000_training_images() {
    let Some(d) = real() else { return };
    let dir = real_dir().expect("found by real()");
    let last = read_batch(dir.join(TRAIN_FILES[4])).unwrap();
    let want: Vec<usize> = last.labels[5_000..].iter().map(|&l| l as usize).collect();
    assert_eq!(d.val.y, want);
    // Pixel check on one image, through the transform.
    let img = last.image(5_000 + 123);
    for j in [0, 1500, 3071] {
        let expect = (img[j] as f64 / 255.0 - d.mean[j]) / d.std[j];
        assert!((d.val.x[[123, j]] as f64 - expect).abs() < 1e-5);
    }
    let first = read_batch(dir.join(TRAIN_FILES[0])).unwrap();
    let want: Vec<usize> = first.labels[..100].iter().map(|&l| l as usize).collect();
    assert_eq!(&d.train.y[..100], &want[..]);
}

#[test]
fn real_training_features_have_mean_0_and_std_1() {
    let Some(d) = real() else { return };
    let x = &d.train.x;
    let n = x.nrows() as f64;
    let mut sum = vec![0f64; IMAGE_DIM];
    let mut sumsq = vec![0f64; IMAGE_DIM];
    for row in x.rows() {
        for ((s, q), &v) in sum.iter_mut().zip(sumsq.iter_mut()).zip(row) {
            let v = v as f64;
            *s += v;
            *q += v * v;
        }
    }
    for j in 0..IMAGE_DIM {
        let mean = sum[j] / n;
        let std = (sumsq[j] / n - mean * mean).sqrt();
        assert!(mean.abs() < 1e-5, "feature {j}: mean {mean}");
        assert!((std - 1.0).abs() < 1e-4, "feature {j}: std {std}");
    }
    // The statistics are on the [0, 1] scale: CIFAR-10 means are about 0.4 to 0.5.
    let m = d.mean.iter().sum::<f64>() / IMAGE_DIM as f64;
    assert!((0.4..0.5).contains(&m), "{m}");
    // Validation and test are not standardised on their own, but are close.
    let val_mean = d.val.x.mean().unwrap();
    assert!(val_mean.abs() < 0.05, "{val_mean}");
}

#[test]
fn real_subset_uses_the_statistics_of_the_images_used() {
    let Some(all) = real() else { return };
    let dir = real_dir().expect("found by real()");
    let opts = LoadOptions::default()
        .path(dir)
        .download(false)
        .n_train(1_000)
        .n_test(500)
        .n_val(2_000);
    let d = Split::<f64>::load(&opts).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (1_000, 2_000, 500)
    );
    let col = d.train.x.column(7);
    let mean = col.sum() / 1_000.0;
    let std = (col.mapv(|v| (v - mean) * (v - mean)).sum() / 1_000.0).sqrt();
    assert!(
        mean.abs() < 1e-12 && (std - 1.0).abs() < 1e-12,
        "{mean} {std}"
    );
    assert_eq!(&d.test.y[..], &all.test.y[..500]);
}

#[test]
fn real_directory_reads_whole() {
    let Some(dir) = real_dir() else { return };
    let (train, test) = read_dir(dir).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.pixels.len(), 50_000 * IMAGE_DIM);
    assert_eq!(train.class_counts(), [5000; NUM_CLASSES]);
}

// ---------------------------------------------------------------------------------------------
// Error paths on small hand-built files

#[test]
fn missing_directory_says_to_run_klayer_download() {
    let root = tempfile::tempdir().unwrap();
    // Nothing given, nothing in the data root, downloading off.
    let opts = LoadOptions::default()
        .data_root(root.path())
        .download(false);
    let err = opts.data_dir_in(None).unwrap_err();
    assert!(matches!(err, Error::DataNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("klayer download"), "{msg}");
    assert!(msg.contains("KLAYER_DATA"), "{msg}");
    assert!(msg.contains(DATA_DIR_NAME), "{msg}");
    let err = locate_in(None, None, root.path()).unwrap_err();
    assert!(err.to_string().contains("klayer download"));
    // An explicit path that does not exist is named, and nothing is downloaded.
    let missing = root.path().join("no-such-dir");
    let err = Split::<f32>::load(&LoadOptions::default().path(&missing)).unwrap_err();
    assert!(matches!(err, Error::DataNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    assert!(err.to_string().contains("klayer download"), "{err}");
    assert_nothing_left(root.path());
}

#[test]
fn missing_env_directory_is_named_and_not_skipped() {
    let root = tempfile::tempdir().unwrap();
    write_batches(&root.path().join(DATA_DIR_NAME), 1);
    let missing = root.path().join("env-dir");
    let err = locate_in(None, Some(missing.as_os_str()), root.path()).unwrap_err();
    assert!(matches!(err, Error::DataNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("env-dir"), "{err}");
    assert!(err.to_string().contains("KLAYER_DATA"), "{err}");
    // The same through the loader's search, with downloading on: no download either.
    let opts = LoadOptions::default().data_root(root.path());
    assert!(opts.data_dir_in(Some(missing.as_os_str())).is_err());
    // Empty means unset.
    assert_eq!(
        opts.data_dir_in(Some(OsStr::new(""))).unwrap(),
        root.path().join(DATA_DIR_NAME)
    );
}

#[test]
fn missing_file_is_named() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(DATA_DIR_NAME);
    write_batches(&dir, 2);
    fs::remove_file(dir.join("data_batch_4.bin")).unwrap();
    match read_dir_records(&dir, 2) {
        Err(Error::FileMissing { path }) => assert_eq!(path, dir.join("data_batch_4.bin")),
        other => panic!("expected FileMissing, got {other:?}"),
    }
    let err = Split::<f32>::load(&LoadOptions::default().path(&dir)).unwrap_err();
    assert!(matches!(err, Error::FileMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
    let err = read_batch(dir.join("data_batch_4.bin")).unwrap_err();
    assert!(matches!(err, Error::FileMissing { .. }), "{err:?}");
}

#[test]
fn wrong_file_size_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data_batch_1.bin");
    fs::write(&path, vec![0u8; 1000]).unwrap();
    match read_batch(&path) {
        Err(Error::BadFileSize {
            path: p,
            actual,
            expected,
        }) => {
            assert_eq!(p, path);
            assert_eq!((actual, expected), (1000, FILE_BYTES));
        }
        other => panic!("expected BadFileSize, got {other:?}"),
    }
    let msg = read_batch(&path).unwrap_err().to_string();
    assert!(
        msg.contains("30730000") && msg.contains("10000 records"),
        "{msg}"
    );
    // The real loader insists on 10,000 records per file: a complete set of small files is
    // rejected.
    let dir = root.path().join(DATA_DIR_NAME);
    write_batches(&dir, 3);
    let err = Split::<f32>::load(&LoadOptions::default().path(&dir)).unwrap_err();
    assert!(matches!(err, Error::BadFileSize { .. }), "{err:?}");
}

#[test]
fn truncated_file_is_reported() {
    let root = tempfile::tempdir().unwrap();
    // A full-size batch file cut off in the middle of its last record.
    let path = root.path().join("test_batch.bin");
    let mut bytes = batch_bytes(0, RECORDS_PER_FILE);
    bytes.truncate(bytes.len() - 1_000);
    fs::write(&path, &bytes).unwrap();
    match read_batch(&path) {
        Err(Error::BadFileSize {
            actual, expected, ..
        }) => assert_eq!((actual, expected), (FILE_BYTES - 1_000, FILE_BYTES)),
        other => panic!("expected BadFileSize, got {other:?}"),
    }
    // A small file missing whole records.
    let small = root.path().join("small.bin");
    fs::write(&small, batch_bytes(0, 3)).unwrap();
    assert!(matches!(
        read_batch_records(&small, 4),
        Err(Error::BadFileSize { actual, .. }) if actual == 3 * RECORD_BYTES as u64
    ));
}

#[test]
fn label_out_of_range_names_the_record() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("bad.bin");
    let bytes = [record(3, 1), record(9, 2), record(10, 3), record(255, 4)].concat();
    fs::write(&path, &bytes).unwrap();
    match read_batch_records(&path, 4) {
        Err(Error::BadLabel {
            path: p,
            record,
            label,
        }) => {
            assert_eq!(p, path);
            assert_eq!((record, label), (2, 10));
        }
        other => panic!("expected BadLabel, got {other:?}"),
    }
    let msg = read_batch_records(&path, 4).unwrap_err().to_string();
    assert!(
        msg.contains("record 2") && msg.contains("label 10"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Downloads from a local server

#[test]
fn download_small_archive_succeeds_and_leaves_no_temporary_files() {
    let archive = cifar_targz(2);
    let md5 = md5_hex(&archive);
    let (url, server) = serve(200, archive, 1);
    let root = tempfile::tempdir().unwrap();
    let data_root = root.path().join("data"); // created by the download
    let dir = download_archive(&url, &md5, &data_root, 2).unwrap();
    assert_eq!(dir, data_root.join(DATA_DIR_NAME));
    assert_eq!(entries(&data_root), vec![DATA_DIR_NAME.to_string()]);
    let mut files = entries(&dir);
    files.retain(|f| f.ends_with(".bin"));
    let mut want: Vec<String> = BATCH_FILES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(files, want);
    let (train, test) = read_dir_records(&dir, 2).unwrap();
    assert_eq!(train.labels, vec![0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
    assert_eq!(test.labels, vec![5, 6]);
    assert_eq!(test.image(1)[0], 5 * 16 + 1);
    // Now the default search finds it.
    assert_eq!(locate_in(None, None, &data_root).unwrap(), dir);
    assert_eq!(server.join().unwrap(), 1);
    // A second download refuses to overwrite it, before contacting anybody.
    let err = download_archive(&url, &md5, &data_root, 2).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn download_md5_mismatch_leaves_nothing() {
    let archive = cifar_targz(2);
    let actual = md5_hex(&archive);
    let (url, server) = serve(200, archive, 1);
    let root = tempfile::tempdir().unwrap();
    let wrong = "0123456789abcdef0123456789abcdef";
    match download_archive(&url, wrong, root.path(), 2) {
        Err(Error::Md5Mismatch {
            url: u,
            actual: a,
            expected,
        }) => {
            assert_eq!(u, url);
            assert_eq!(a, actual);
            assert_eq!(expected, wrong);
        }
        other => panic!("expected Md5Mismatch, got {other:?}"),
    }
    assert_nothing_left(root.path());
    assert_eq!(server.join().unwrap(), 1);
}

#[test]
fn download_host_unreachable_is_a_download_error() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let root = tempfile::tempdir().unwrap();
    let err = download(&url, klayer::data::CIFAR10_MD5, root.path()).unwrap_err();
    match &err {
        Error::Download { url: u, reason } => {
            assert_eq!(u, &url);
            assert!(!reason.is_empty());
        }
        other => panic!("expected Download, got {other:?}"),
    }
    assert!(err.to_string().contains(&url), "{err}");
    assert_nothing_left(root.path());
}

#[test]
fn download_http_404_is_a_download_error() {
    let (url, server) = serve(404, b"not here".to_vec(), 1);
    let root = tempfile::tempdir().unwrap();
    let err = download(&url, klayer::data::CIFAR10_MD5, root.path()).unwrap_err();
    match &err {
        Error::Download { reason, .. } => assert!(reason.contains("404"), "{reason}"),
        other => panic!("expected Download, got {other:?}"),
    }
    assert_nothing_left(root.path());
    assert_eq!(server.join().unwrap(), 1);
}

#[test]
fn download_interrupted_leaves_nothing() {
    // A server that announces 100,000 bytes, sends 1,000 and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: 100000\r\n\r\n",
        )
        .unwrap();
        s.write_all(&[7u8; 1000]).unwrap();
        s.flush().unwrap();
        // Dropping the stream closes the connection mid-body.
    });
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let root = tempfile::tempdir().unwrap();
    let err = download(&url, klayer::data::CIFAR10_MD5, root.path()).unwrap_err();
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert_nothing_left(root.path());
    server.join().unwrap();
}

#[test]
fn download_of_an_archive_without_the_batches_leaves_nothing() {
    // Right md5, but the test batch is missing from the archive.
    let files: Vec<(&str, Vec<u8>)> = TRAIN_FILES
        .iter()
        .enumerate()
        .map(|(f, name)| (*name, batch_bytes(f, 2)))
        .collect();
    let archive = targz(&files);
    let md5 = md5_hex(&archive);
    let (url, server) = serve(200, archive, 1);
    let root = tempfile::tempdir().unwrap();
    let err = download_archive(&url, &md5, root.path(), 2).unwrap_err();
    match &err {
        Error::Download { reason, .. } => assert!(reason.contains("test_batch.bin"), "{reason}"),
        other => panic!("expected Download, got {other:?}"),
    }
    assert_nothing_left(root.path());
    assert_eq!(server.join().unwrap(), 1);

    // Not a gzip file at all, with its md5.
    let junk = b"this is not an archive".to_vec();
    let md5 = md5_hex(&junk);
    let (url, server) = serve(200, junk, 1);
    let err = download_archive(&url, &md5, root.path(), 2).unwrap_err();
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert_nothing_left(root.path());
    assert_eq!(server.join().unwrap(), 1);
}

#[test]
fn load_downloads_a_full_size_archive_when_nothing_is_found() {
    // Six full-size files (10,000 records each) of a single grey level: they compress to a
    // few hundred kB, and the real loader's 10,000-record check applies.
    let files: Vec<(&str, Vec<u8>)> = BATCH_FILES
        .iter()
        .map(|name| (*name, record(4, 128).repeat(RECORDS_PER_FILE)))
        .collect();
    let archive = targz(&files);
    let md5 = md5_hex(&archive);
    let (url, server) = serve(200, archive, 1);
    let root = tempfile::tempdir().unwrap();
    let opts = LoadOptions::default()
        .data_root(root.path())
        .url(&url)
        .md5(&md5);
    // No explicit path, KLAYER_DATA unset: the data is downloaded into the data root.
    let dir = opts.data_dir_in(None).unwrap();
    assert_eq!(dir, root.path().join(DATA_DIR_NAME));
    assert_eq!(entries(root.path()), vec![DATA_DIR_NAME.to_string()]);
    assert_eq!(server.join().unwrap(), 1);
    // Hand-made files of the official size are not the official ones: no md5 check.
    let d = Split::<f32>::load(&opts.path(&dir).verify_md5(false)).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (45_000, 5_000, 10_000)
    );
    assert!(d.test.y.iter().all(|&l| l == 4));
    // Constant features: mean 128/255, std set to 1, all features normalise to 0.
    assert!((d.mean[0] - 128.0 / 255.0).abs() < 1e-15);
    assert_eq!(d.std[0], 1.0);
    assert!(d.train.x.iter().all(|&v| v == 0.0));
}

// ---------------------------------------------------------------------------------------------
// Verification by md5, once; messages that name the right thing; replacing a corrupt copy

/// A directory of symbolic links to the real batch files, with `test_batch.bin` pointing at
/// `test_target` instead.
#[cfg(unix)]
fn linked_copy(root: &Path, test_target: &str) -> Option<PathBuf> {
    let real = fs::canonicalize(real_dir()?).unwrap();
    let dir = root.join(DATA_DIR_NAME);
    fs::create_dir_all(&dir).unwrap();
    for name in TRAIN_FILES {
        std::os::unix::fs::symlink(real.join(name), dir.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(real.join(test_target), dir.join(TEST_FILE)).unwrap();
    Some(dir)
}

#[test]
#[cfg(unix)]
fn a_batch_file_under_another_name_is_refused_by_its_md5() {
    let root = tempfile::tempdir().unwrap();
    let Some(dir) = linked_copy(root.path(), TRAIN_FILES[0]) else {
        return;
    };
    // Same size, valid labels: only the md5 tells it is not the test batch.
    let err = read_dir(&dir).unwrap_err();
    match &err {
        Error::BadChecksum { path, expected, .. } => {
            assert!(path.ends_with(TEST_FILE));
            assert_eq!(expected, klayer::data::BATCH_MD5[5]);
        }
        other => panic!("expected BadChecksum, got {other:?}"),
    }
    assert!(
        err.to_string().contains("klayer download --force --dir"),
        "{err}"
    );
    // Remembering the good files does not let the bad one through the next time.
    assert!(read_dir(&dir).is_err());
    // Without the check (hand-made files), it is read.
    assert!(read_dir_records(&dir, RECORDS_PER_FILE).is_ok());
}

/// Fails unless the stamp at `stamp` names every batch file.
#[cfg(unix)]
fn assert_stamp_lists_every_file(stamp: &Path) {
    let text = fs::read_to_string(stamp).expect("a stamp after the first check");
    for name in BATCH_FILES {
        assert!(text.contains(name), "{name} not remembered: {text}");
    }
}

/// Replaces the test batch of a [`linked_copy`] by a training batch of the same size.
#[cfg(unix)]
fn swap_test_batch_for_a_training_batch(dir: &Path) {
    fs::remove_file(dir.join(TEST_FILE)).unwrap();
    let real = fs::canonicalize(real_dir().expect("found by linked_copy")).unwrap();
    std::os::unix::fs::symlink(real.join(TRAIN_FILES[1]), dir.join(TEST_FILE)).unwrap();
}

#[test]
#[cfg(unix)]
fn verified_files_are_remembered_by_a_stamp_until_they_change() {
    let root = tempfile::tempdir().unwrap();
    let Some(dir) = linked_copy(root.path(), TEST_FILE) else {
        return;
    };
    read_dir(&dir).unwrap();
    let stamp = dir.join(klayer::data::VERIFIED_STAMP);
    assert_stamp_lists_every_file(&stamp);
    // The stamp is keyed by the file: swapping the test batch for another file with the same
    // size is noticed (new inode and change time), even though the stamp still lists it.
    swap_test_batch_for_a_training_batch(&dir);
    assert!(matches!(read_dir(&dir), Err(Error::BadChecksum { .. })));
}

#[test]
#[cfg(unix)]
fn a_read_only_data_directory_is_remembered_in_the_user_cache_and_a_swapped_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let Some(dir) = linked_copy(root.path(), TEST_FILE) else {
        return;
    };
    let set_mode = |mode| fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
    set_mode(0o555);
    let stamp = klayer::data::stamp_path(&dir);
    let loaded = read_dir(&dir);
    set_mode(0o755);
    assert!(loaded.is_ok(), "{:?}", loaded.err());
    assert!(!dir.join(klayer::data::VERIFIED_STAMP).exists());
    // Without a cache directory (no HOME) nothing is remembered and every load checks.
    let Some(stamp) = stamp else {
        return;
    };
    assert!(!stamp.starts_with(&dir), "{}", stamp.display());
    assert_stamp_lists_every_file(&stamp);
    // The test batch swapped for a training batch of the same size: found out, though the
    // directory is read-only again and its stamp lists the test batch.
    swap_test_batch_for_a_training_batch(&dir);
    set_mode(0o555);
    let swapped = read_dir(&dir);
    set_mode(0o755);
    let _ = fs::remove_file(&stamp);
    assert!(
        matches!(swapped, Err(Error::BadChecksum { .. })),
        "{swapped:?}"
    );
}

#[test]
fn a_data_path_that_is_a_file_is_not_called_a_missing_directory() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("cifar.tar.gz");
    fs::write(&file, b"x").unwrap();
    let err = locate_in(Some(&file), None, root.path()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("is a file, not a directory"), "{msg}");
    assert!(!msg.contains("no such directory"), "{msg}");
}

#[test]
#[cfg(unix)]
fn an_unreadable_batch_file_is_not_called_missing() {
    // A symbolic link loop cannot be examined, whoever runs the test (root included).
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(DATA_DIR_NAME);
    write_batches(&dir, 2);
    let looped = dir.join(TRAIN_FILES[1]);
    fs::remove_file(&looped).unwrap();
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let err = locate_in(Some(&dir), None, root.path()).unwrap_err();
    assert!(matches!(err, Error::DataUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot be read"), "{err}");
    let err = read_dir_records(&dir, 2).unwrap_err();
    assert!(matches!(err, Error::DataUnreadable { .. }), "{err:?}");
}

#[test]
#[cfg(unix)]
fn a_directory_without_read_permission_is_not_called_missing() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(DATA_DIR_NAME);
    write_batches(&dir, 2);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
    let privileged = fs::read_dir(&dir).is_ok();
    let result = locate_in(Some(&dir), None, root.path());
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        // Root (CAP_DAC_OVERRIDE) reads it anyway: there is no permission error to report.
        eprintln!("skipped: this user reads directories without read permission (root)");
        return;
    }
    let err = result.unwrap_err();
    assert!(matches!(err, Error::DataUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("permission"), "{err}");
}

#[test]
fn redownload_replaces_a_corrupt_copy_and_download_keeps_refusing() {
    let files: Vec<(&str, Vec<u8>)> = BATCH_FILES
        .iter()
        .map(|name| (*name, record(4, 128).repeat(RECORDS_PER_FILE)))
        .collect();
    let archive = targz(&files);
    let md5 = md5_hex(&archive);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(DATA_DIR_NAME);
    write_batches(&dir, 2); // a corrupt (too small) copy
    let err = download("http://127.0.0.1:9/x.tar.gz", &md5, root.path()).unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    let (url, server) = serve(200, archive, 1);
    let got = klayer::data::redownload(&url, &md5, root.path()).unwrap();
    assert_eq!(got, dir);
    assert_eq!(server.join().unwrap(), 1);
    assert_eq!(
        fs::metadata(dir.join(TEST_FILE)).unwrap().len(),
        FILE_BYTES,
        "the new copy is in place"
    );
    assert_eq!(entries(root.path()), vec![DATA_DIR_NAME.to_string()]);
}
