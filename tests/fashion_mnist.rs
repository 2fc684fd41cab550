//! Fashion-MNIST: the real files (found as the crate finds them: `$KLAYER_DATA`,
//! `data/fashion-mnist`, Debian's `/usr/share/datasets/fashion-mnist`; skipped without them,
//! failing under CI, see [`common::fashion_dir`]), every bad file on small hand-built IDX
//! files, the md5 check of the decompressed contents, and downloads from a local HTTP server.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use klayer::data::{
    download_fashion_files, read_fashion_dir, DataSource, ImageShape, LoadOptions, Split,
    FASHION_DIR_NAME, FASHION_FILES,
};
use klayer::Error;
use md5::{Digest, Md5};

// ---------------------------------------------------------------------------------------------
// Helpers

/// An IDX file of bytes with dimensions `dims` and values `data`.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

fn gz(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// The four files of a small hand-made release (decompressed): `n` training and `m` test
/// images of 28×28, pixel `i` of image `k` = `k + i`, label `k % 10`.
fn small_release(n: usize, m: usize) -> [Vec<u8>; 4] {
    let images = |n: usize| {
        let px: Vec<u8> = (0..n * 784).map(|i| (i / 784 + i % 784) as u8).collect();
        idx(&[n as u32, 28, 28], &px)
    };
    let labels = |n: usize| {
        idx(
            &[n as u32],
            &(0..n).map(|k| (k % 10) as u8).collect::<Vec<_>>(),
        )
    };
    [images(n), labels(n), images(m), labels(m)]
}

/// Writes `files` (decompressed contents, in the order of [`FASHION_FILES`]) gzipped into
/// `dir`.
fn write_release(dir: &Path, files: &[Vec<u8>; 4]) {
    fs::create_dir_all(dir).unwrap();
    for (f, bytes) in FASHION_FILES.iter().zip(files) {
        fs::write(dir.join(format!("{}.gz", f.name)), gz(bytes, 6)).unwrap();
    }
}

/// The error of reading `dir` without the md5 check (hand-made files), which must be a
/// [`Error::BadDataFile`] naming file `name`; returns its message.
fn bad_file(dir: &Path, name: &str) -> String {
    let err = read_fashion_dir(dir, false).unwrap_err();
    match &err {
        Error::BadDataFile { path, .. } => assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(name),
            "{err}"
        ),
        other => panic!("expected BadDataFile for {name}, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("klayer download --dataset fashion-mnist"),
        "{msg}"
    );
    assert_eq!(err.exit_code(), klayer::error::exit_code::DATA);
    msg
}

/// A fresh copy of the small release in `<tmp>/fashion-mnist` with file `k` replaced by
/// `bytes` (decompressed; gzipped on writing).
fn release_with(k: usize, bytes: Vec<u8>) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(FASHION_DIR_NAME);
    let mut files = small_release(20, 10);
    files[k] = bytes;
    write_release(&dir, &files);
    (root, dir)
}

// ---------------------------------------------------------------------------------------------
// The real data

#[test]
fn real_split_is_55000_5000_10000_grey_28_by_28_images() {
    let Some(dir) = common::fashion_dir() else {
        return;
    };
    let opts = LoadOptions::new(DataSource::FashionMnist).path(&dir);
    let d = Split::<f32>::load(&opts).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (55_000, 5_000, 10_000)
    );
    assert_eq!((d.input_dim(), d.shape), (784, ImageShape::FASHION_MNIST));
    for set in [&d.train, &d.val, &d.test] {
        assert_eq!(set.shape, Some(ImageShape::FASHION_MNIST));
        assert_eq!(set.classes, 10);
    }
    let mut counts = [0usize; 10];
    for &l in &d.test.y {
        counts[l] += 1;
    }
    assert_eq!(counts, [1_000; 10], "the test set is balanced");
    // Normalised with the training statistics: each feature has mean 0 over the training
    // images (the corner pixels are nearly constant, so look at the middle one).
    let centre = d.train.x.column(14 * 28 + 14);
    let mean = centre.iter().map(|&v| v as f64).sum::<f64>() / 55_000.0;
    let var = centre
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / 55_000.0;
    assert!(
        mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
        "{mean} {var}"
    );
    assert_eq!(d.class_names()[d.test.y[0]], "ankle boot");
}

#[test]
fn real_pictures_are_grey_28_by_28_tiles_named_by_class() {
    let Some(dir) = common::fashion_dir() else {
        return;
    };
    let opts = LoadOptions::new(DataSource::FashionMnist)
        .path(&dir)
        .n_train(2_000)
        .n_test(100);
    let d = Split::<f32>::load(&opts).unwrap();
    let plot = klayer::plot::pictures::sample_images(&d, 2).unwrap();
    let v: serde_json::Value = serde_json::from_str(&plot.to_json()).unwrap();
    let names: Vec<&str> = v["layout"]["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["text"].as_str().unwrap())
        .collect();
    assert_eq!((names[0], names[19]), ("T-shirt/top", "ankle boot"));
    // Ten rows of tiles 28 + 2 + 12 high, two tiles 28 + 2 wide (and a border) per row.
    let z = v["data"][0]["z"].as_array().unwrap();
    assert_eq!(
        (z.len(), z[0].as_array().unwrap().len()),
        (10 * 42, 2 * 30 + 2)
    );
    // The first T-shirt's pixels, un-normalised, in grey: red = green = blue.
    let first = d.train.y.iter().position(|&l| l == 0).unwrap();
    let p =
        klayer::plot::pictures::pixels(d.train.x.row(first).as_slice().unwrap(), &d.mean, &d.std);
    let j = 14 * 28 + 14;
    assert_eq!(z[12 + 14][2 + 14], serde_json::json!([p[j], p[j], p[j]]));
}

#[test]
fn real_files_hold_the_official_contents_however_they_are_compressed() {
    let Some(dir) = common::fashion_dir() else {
        return;
    };
    // The official md5 of each file's decompressed bytes.
    for f in FASHION_FILES {
        let path = klayer::data::fashion_file(&dir, f.name).unwrap();
        let raw = fs::read(&path).unwrap();
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            gunzip(&raw)
        } else {
            raw
        };
        assert_eq!(
            (bytes.len() as u64, md5_hex(&bytes).as_str()),
            (f.bytes, f.md5),
            "{}",
            f.name
        );
    }
    // A copy with one file recompressed differently (another .gz md5, the same contents), and
    // one decompressed, is still the official data.
    let root = tempfile::tempdir().unwrap();
    let copy = root.path().join(FASHION_DIR_NAME);
    fs::create_dir(&copy).unwrap();
    for (k, f) in FASHION_FILES.iter().enumerate() {
        let src = klayer::data::fashion_file(&dir, f.name).unwrap();
        let raw = fs::read(&src).unwrap();
        let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
            gunzip(&raw)
        } else {
            raw.clone()
        };
        match k {
            3 => {
                let again = gz(&bytes, 1);
                assert_ne!(md5_hex(&again), md5_hex(&raw), "recompressed differently");
                fs::write(copy.join(format!("{}.gz", f.name)), again).unwrap();
            }
            1 => fs::write(copy.join(f.name), &bytes).unwrap(),
            _ => std::os::unix::fs::symlink(&src, copy.join(src.file_name().unwrap())).unwrap(),
        }
    }
    let (train, test) = read_fashion_dir(&copy, true).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    // One label changed (still a valid class): the contents are no longer the official ones.
    let labels = copy.join(format!("{}.gz", FASHION_FILES[3].name));
    let mut bytes = gunzip(&fs::read(&labels).unwrap());
    bytes[8] = (bytes[8] + 1) % 10;
    fs::write(&labels, gz(&bytes, 6)).unwrap();
    let err = read_fashion_dir(&copy, true).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::BadDataFile { .. }), "{err:?}");
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz") && msg.contains(FASHION_FILES[3].md5),
        "{msg}"
    );
    assert!(msg.contains("not the official Fashion-MNIST file"), "{msg}");
    assert!(
        msg.contains("klayer download --dataset fashion-mnist --force"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Every bad file

#[test]
fn a_small_release_reads_in_file_order() {
    let (_root, dir) = release_with(0, small_release(20, 10)[0].clone());
    let (train, test) = read_fashion_dir(&dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (20, 10));
    assert_eq!(train.shape, ImageShape::FASHION_MNIST);
    assert_eq!(train.image(3)[5], 8);
    assert_eq!(test.labels[9], 9);
}

#[test]
fn a_truncated_file_is_named_with_what_to_do() {
    let mut images = small_release(20, 10)[0].clone();
    images.truncate(images.len() - 100);
    let (_root, dir) = release_with(0, images);
    let msg = bad_file(&dir, "train-images-idx3-ubyte");
    assert!(msg.contains("truncated"), "{msg}");
    // A .gz cut short does not decompress.
    fs::write(
        dir.join("t10k-labels-idx1-ubyte.gz"),
        &gz(&[0; 100], 6)[..20],
    )
    .unwrap();
    fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        gz(&small_release(20, 10)[0], 6),
    )
    .unwrap();
    let msg = bad_file(&dir, "t10k-labels-idx1-ubyte");
    assert!(msg.contains("does not decompress"), "{msg}");
}

#[test]
fn a_wrong_magic_number_is_not_an_idx_file() {
    let mut labels = small_release(20, 10)[1].clone();
    labels[2] = 0x0d; // floats
    let (_root, dir) = release_with(1, labels);
    let msg = bad_file(&dir, "train-labels-idx1-ubyte");
    assert!(msg.contains("magic number 0x00000d01"), "{msg}");
    // A file that is not IDX at all (a web page saved under the name).
    let (_root, dir) = release_with(2, b"<html>not found</html>".to_vec());
    let msg = bad_file(&dir, "t10k-images-idx3-ubyte");
    assert!(msg.contains("magic number"), "{msg}");
}

#[test]
fn wrong_dimensions_are_reported() {
    // CIFAR-sized images under Fashion-MNIST's name.
    let (_root, dir) = release_with(0, idx(&[20, 32, 32], &[0; 20 * 1024]));
    let msg = bad_file(&dir, "train-images-idx3-ubyte");
    assert!(
        msg.contains("[20, 32, 32]") && msg.contains("28×28×1"),
        "{msg}"
    );
    // Labels as a matrix.
    let (_root, dir) = release_with(3, idx(&[5, 2], &[0; 10]));
    let msg = bad_file(&dir, "t10k-labels-idx1-ubyte");
    assert!(msg.contains("not a file of labels"), "{msg}");
}

#[test]
fn a_label_out_of_range_names_its_position() {
    let mut labels = small_release(20, 10)[3].clone();
    labels[8 + 7] = 10;
    let (_root, dir) = release_with(3, labels);
    let msg = bad_file(&dir, "t10k-labels-idx1-ubyte");
    assert!(msg.contains("label 10 at position 7"), "{msg}");
}

#[test]
fn image_and_label_counts_must_agree() {
    let (_root, dir) = release_with(1, small_release(19, 10)[1].clone());
    let msg = bad_file(&dir, "train-labels-idx1-ubyte");
    assert!(
        msg.contains("19 labels") && msg.contains("holds 20 images"),
        "{msg}"
    );
}

#[test]
fn a_missing_file_lists_the_four_files() {
    let (_root, dir) = release_with(0, small_release(20, 10)[0].clone());
    fs::remove_file(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let msg = bad_file(&dir, "t10k-images-idx3-ubyte");
    assert!(
        msg.contains("file missing") && msg.contains("train-labels-idx1-ubyte"),
        "{msg}"
    );
    // Loading through the options names the same file.
    let opts = LoadOptions::new(DataSource::FashionMnist)
        .path(&dir)
        .verify_md5(false);
    let err = Split::<f32>::load(&opts).unwrap_err();
    assert!(
        err.to_string().contains("t10k-images-idx3-ubyte.gz"),
        "{err}"
    );
}

#[test]
fn hand_made_files_fail_the_official_md5_unless_told() {
    let (_root, dir) = release_with(0, small_release(20, 10)[0].clone());
    let err = read_fashion_dir(&dir, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("not the official Fashion-MNIST file"),
        "{err}"
    );
    let opts = LoadOptions::new(DataSource::FashionMnist)
        .path(&dir)
        .n_val(5)
        .verify_md5(false);
    let d = Split::<f64>::load(&opts).unwrap();
    assert_eq!((d.train.len(), d.val.len(), d.test.len()), (15, 5, 10));
}

// ---------------------------------------------------------------------------------------------
// Where the data is found

#[test]
fn nothing_found_and_no_download_says_what_to_run() {
    let root = tempfile::tempdir().unwrap();
    let cifar_like = root.path().join("cifar");
    fs::create_dir(&cifar_like).unwrap();
    let opts = LoadOptions::new(DataSource::FashionMnist)
        .data_root(root.path().join("data"))
        .system_dir(None)
        .download(false);
    // KLAYER_DATA naming another data set is passed over, not an error.
    let err = opts.data_dir_in(Some(cifar_like.as_os_str())).unwrap_err();
    assert!(matches!(err, Error::DatasetNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("klayer download --dataset fashion-mnist"),
        "{msg}"
    );
    assert!(msg.contains("downloading is off"), "{msg}");
    // With a system copy, it is found there.
    let system = root.path().join("system");
    write_release(&system, &small_release(2, 2));
    let found = opts
        .clone()
        .system_dir(Some(system.clone()))
        .data_dir_in(Some(OsStr::new("")))
        .unwrap();
    assert_eq!(found, system);
    // Through KLAYER_DATA it wins over the system copy.
    let env = root.path().join("env");
    write_release(&env, &small_release(2, 2));
    let found = opts
        .system_dir(Some(system))
        .data_dir_in(Some(env.as_os_str()))
        .unwrap();
    assert_eq!(found, env);
}

// ---------------------------------------------------------------------------------------------
// Downloads from a local server

/// Serves the four gzipped files of `files` at `/fm/NAME.gz` (file `broken`, if any, with
/// status 404) for up to `requests` requests; returns the base URL, the md5s of the .gz files
/// and the server thread.
fn serve_release(
    files: &[Vec<u8>; 4],
    broken: Option<usize>,
    requests: usize,
) -> (String, [String; 4], std::thread::JoinHandle<usize>) {
    let packed: Vec<Vec<u8>> = files.iter().map(|b| gz(b, 9)).collect();
    let md5s = [0, 1, 2, 3].map(|k| md5_hex(&packed[k]));
    let routes = FASHION_FILES
        .iter()
        .zip(packed)
        .enumerate()
        .map(|(k, (f, body))| {
            let status = if broken == Some(k) { 404 } else { 200 };
            (format!("/fm/{}.gz", f.name), status, body)
        })
        .collect();
    let (base, server) = common::serve_routes(routes, requests);
    (format!("{base}/fm/"), md5s, server)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn download_fetches_checks_and_moves_the_four_files_into_place() {
    let files = small_release(30, 10);
    let (url, md5s, server) = serve_release(&files, None, 4);
    let root = tempfile::tempdir().unwrap();
    let md5: [&str; 4] = [0, 1, 2, 3].map(|k| md5s[k].as_str());
    let dir = download_fashion_files(&url, md5, root.path(), false).unwrap();
    assert_eq!(server.join().unwrap(), 4);
    assert_eq!(dir, root.path().join(FASHION_DIR_NAME));
    assert_eq!(
        names(root.path()),
        vec![FASHION_DIR_NAME.to_string()],
        "no temporary files"
    );
    let (train, test) = read_fashion_dir(&dir, false).unwrap();
    assert_eq!((train.len(), test.len()), (30, 10));
    // A second download does not overwrite it, and says how to replace it.
    let err = download_fashion_files(&url, md5, root.path(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("klayer download --dataset fashion-mnist --force"),
        "{err}"
    );
    // Replacing it fetches a new copy and swaps it in.
    let newer = small_release(40, 10);
    let (url, md5s, server) = serve_release(&newer, None, 4);
    let md5: [&str; 4] = [0, 1, 2, 3].map(|k| md5s[k].as_str());
    download_fashion_files(&url, md5, root.path(), true).unwrap();
    assert_eq!(server.join().unwrap(), 4);
    assert_eq!(read_fashion_dir(&dir, false).unwrap().0.len(), 40);
    assert_eq!(names(root.path()), vec![FASHION_DIR_NAME.to_string()]);
}

#[test]
fn a_bad_md5_or_a_missing_file_leaves_nothing_behind() {
    let files = small_release(10, 10);
    // The third file's md5 is not the expected one.
    let (url, md5s, server) = serve_release(&files, None, 3);
    let root = tempfile::tempdir().unwrap();
    let wrong = "0123456789abcdef0123456789abcdef";
    let md5 = [md5s[0].as_str(), md5s[1].as_str(), wrong, md5s[3].as_str()];
    let err = download_fashion_files(&url, md5, root.path(), false).unwrap_err();
    assert_eq!(server.join().unwrap(), 3);
    match &err {
        Error::Md5Mismatch { url, expected, .. } => {
            assert!(url.ends_with("t10k-images-idx3-ubyte.gz"), "{url}");
            assert_eq!(expected, wrong);
        }
        other => panic!("expected Md5Mismatch, got {other:?}"),
    }
    assert!(
        names(root.path()).is_empty(),
        "left behind: {:?}",
        names(root.path())
    );
    // The server has no second file.
    let (url, md5s, server) = serve_release(&files, Some(1), 2);
    let md5: [&str; 4] = [0, 1, 2, 3].map(|k| md5s[k].as_str());
    let err = download_fashion_files(&url, md5, root.path(), false).unwrap_err();
    assert_eq!(server.join().unwrap(), 2);
    assert!(matches!(err, Error::Download { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert!(
        names(root.path()).is_empty(),
        "left behind: {:?}",
        names(root.path())
    );
    // Files that arrive intact but are not Fashion-MNIST (labels that do not fit).
    let mut odd = small_release(10, 10);
    odd[1] = small_release(9, 10)[1].clone();
    let (url, md5s, server) = serve_release(&odd, None, 4);
    let md5: [&str; 4] = [0, 1, 2, 3].map(|k| md5s[k].as_str());
    let err = download_fashion_files(&url, md5, root.path(), false).unwrap_err();
    assert_eq!(server.join().unwrap(), 4);
    assert!(err.to_string().contains("not Fashion-MNIST"), "{err}");
    assert!(
        names(root.path()).is_empty(),
        "left behind: {:?}",
        names(root.path())
    );
}

#[test]
fn loading_with_nothing_found_downloads_and_checks_the_official_md5s() {
    // Hand-made files served where the options say: the official .gz md5 refuses them.
    let (url, _, server) = serve_release(&small_release(10, 10), None, 1);
    let root = tempfile::tempdir().unwrap();
    let opts = LoadOptions::new(DataSource::FashionMnist)
        .data_root(root.path())
        .system_dir(None)
        .url(&url);
    let err = opts.data_dir_in(None).unwrap_err();
    assert_eq!(server.join().unwrap(), 1);
    match &err {
        Error::Md5Mismatch { expected, .. } => assert_eq!(expected, FASHION_FILES[0].gz_md5),
        other => panic!("expected Md5Mismatch, got {other:?}"),
    }
    assert!(
        names(root.path()).is_empty(),
        "left behind: {:?}",
        names(root.path())
    );
    // An md5 cannot be given for Fashion-MNIST.
    let err = opts.md5(FASHION_FILES[0].gz_md5).check().unwrap_err();
    assert!(
        matches!(err, Error::InvalidConfig { name: "md5", .. }),
        "{err:?}"
    );
}
