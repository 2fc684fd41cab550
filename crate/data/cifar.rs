//! The CIFAR-10 binary format: its constants, reading one batch file, and reading the whole
//! `cifar-10-batches-bin` directory; [`RawImages`], the bytes of any data set's images.
//!
//! A batch file is a sequence of 3,073-byte records: one label byte (`0..=9`) followed by the
//! 3,072 pixel bytes of a 32x32 colour image, channel by channel (1,024 red, 1,024 green,
//! 1,024 blue bytes), each channel row-major. The official files hold 10,000 records each.
//!
//! Reading never panics on bad input: a missing file is [`Error::FileMissing`], a file of the
//! wrong size (wrong file, truncated download) is [`Error::BadFileSize`], a label byte above 9
//! is [`Error::BadLabel`].

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use rayon::prelude::*;

use super::ImageShape;
use crate::{Error, Result};

/// Width and height of an image, in pixels.
pub const IMAGE_SIDE: usize = ImageShape::CIFAR10.width;
/// Colour channels per image (red, green, blue).
pub const CHANNELS: usize = ImageShape::CIFAR10.channels;
/// Pixels of one channel: `IMAGE_SIDE * IMAGE_SIDE` = 1,024.
pub const CHANNEL_DIM: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Bytes (features) per image: `CHANNELS * IMAGE_SIDE * IMAGE_SIDE` = 3,072.
pub const IMAGE_DIM: usize = CHANNELS * CHANNEL_DIM;
/// Bytes per record in a batch file: one label byte, then the image = 3,073.
pub const RECORD_BYTES: usize = 1 + IMAGE_DIM;
/// Records in each official batch file.
pub const RECORDS_PER_FILE: usize = 10_000;
/// Size in bytes of each official batch file: 30,730,000.
pub const FILE_BYTES: u64 = (RECORD_BYTES * RECORDS_PER_FILE) as u64;
/// Number of classes.
pub const NUM_CLASSES: usize = 10;
/// Class names, indexed by label.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The five training batch files, in the order their images are concatenated.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const TEST_FILE: &str = "test_batch.bin";
/// All six batch files a `cifar-10-batches-bin` directory must hold: the training files, then
/// the test file.
pub const BATCH_FILES: [&str; 6] = [
    TRAIN_FILES[0],
    TRAIN_FILES[1],
    TRAIN_FILES[2],
    TRAIN_FILES[3],
    TRAIN_FILES[4],
    TEST_FILE,
];
/// Training images in the official release (5 files of 10,000).
pub const TRAIN_IMAGES: usize = TRAIN_FILES.len() * RECORDS_PER_FILE;
/// Test images in the official release.
pub const TEST_IMAGES: usize = RECORDS_PER_FILE;

/// The published md5 of each official batch file, in the order of [`BATCH_FILES`] (the files
/// of the binary archive at [`CIFAR10_URL`](super::CIFAR10_URL)).
pub const BATCH_MD5: [&str; 6] = [
    "5dd7e06a14cb22eb9f671a540d1b7c25",
    "5ea93a67294ea407fff1d09f752e9692",
    "942cd6a4bcdd0dd3c604fbe906cb4421",
    "ae636b3ba5c66a11e91e8cb52e771fcb",
    "53f37980c15c3d472c316c40844f3f0d",
    "803d5f7f4d78ea53de84dbe85f74fb6d",
];
/// Name of the file, next to the batch files, that remembers which of them already had their
/// md5 checked (by size, modification and change time, and inode), so that the check runs
/// once per file rather than at every load.
pub const VERIFIED_STAMP: &str = ".klayer-verified.json";

/// Images as raw bytes, exactly as stored in the data set's files.
///
/// Image `i` is `pixels[i * d..(i + 1) * d]` with `d = shape.dim()`, in channel-major (CHW)
/// order: byte `c * h * w + y * w + x` is channel `c` of the pixel in row `y`, column `x`
/// (for CIFAR-10 `c * 1024 + y * 32 + x`).
///
/// # Example
/// ```
/// use klayer::data::{ImageShape, RawImages, IMAGE_DIM};
/// let shape = ImageShape::CIFAR10;
/// let raw = RawImages { pixels: vec![7; 2 * IMAGE_DIM], labels: vec![3, 9], shape };
/// assert_eq!(raw.len(), 2);
/// assert_eq!(raw.image(1)[0], 7);
/// assert_eq!(raw.slice(1, 2).labels, vec![9]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawImages {
    /// `n * shape.dim()` pixel bytes, one image after the other.
    pub pixels: Vec<u8>,
    /// `n` labels, each in `0..NUM_CLASSES`.
    pub labels: Vec<u8>,
    /// The shape of each image.
    pub shape: ImageShape,
}

impl RawImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixel bytes of image `i`.
    ///
    /// **Panics** if `i` is out of range.
    pub fn image(&self, i: usize) -> &[u8] {
        let d = self.shape.dim();
        &self.pixels[i * d..(i + 1) * d]
    }

    /// A copy of the images `start..end`.
    ///
    /// **Panics** if the range is out of bounds.
    pub fn slice(&self, start: usize, end: usize) -> RawImages {
        let d = self.shape.dim();
        RawImages {
            pixels: self.pixels[start * d..end * d].to_vec(),
            labels: self.labels[start..end].to_vec(),
            shape: self.shape,
        }
    }

    /// Number of images of each class.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }
}

/// Reads one official batch file (10,000 records).
///
/// Errors: [`Error::FileMissing`] if the file does not exist, [`Error::BadFileSize`] if it is
/// not exactly 30,730,000 bytes, [`Error::BadLabel`] if a label byte is above 9,
/// [`Error::Io`] for other read failures.
pub fn read_batch(path: impl AsRef<Path>) -> Result<RawImages> {
    read_batch_records(path, RECORDS_PER_FILE)
}

/// Reads a batch file that must hold exactly `records` records.
///
/// [`read_batch`] is this with the official 10,000; other counts serve tests and hand-made
/// subsets. Same errors as [`read_batch`].
///
/// # Example
/// ```
/// use klayer::data::{read_batch_records, RECORD_BYTES};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tiny.bin");
/// let mut bytes = vec![0u8; 2 * RECORD_BYTES];
/// bytes[RECORD_BYTES] = 4; // label of the second record
/// std::fs::write(&path, &bytes).unwrap();
/// let raw = read_batch_records(&path, 2).unwrap();
/// assert_eq!(raw.labels, vec![0, 4]);
/// assert!(read_batch_records(&path, 3).is_err()); // wrong size
/// ```
pub fn read_batch_records(path: impl AsRef<Path>, records: usize) -> Result<RawImages> {
    let mut raw = RawImages {
        pixels: vec![0; records * IMAGE_DIM],
        labels: vec![0; records],
        shape: ImageShape::CIFAR10,
    };
    read_batch_into(path.as_ref(), &mut raw.pixels, &mut raw.labels, None)?;
    Ok(raw)
}

/// Reads the batch file at `path` into `pixels` and `labels`, whose lengths (`n * IMAGE_DIM`
/// and `n`) fix the number of records the file must hold. If `md5` is given, the file's bytes
/// must have that md5 ([`Error::BadChecksum`] otherwise). Returns the file's metadata as read.
fn read_batch_into(
    path: &Path,
    pixels: &mut [u8],
    labels: &mut [u8],
    md5: Option<&str>,
) -> Result<fs::Metadata> {
    let records = labels.len();
    debug_assert_eq!(pixels.len(), records * IMAGE_DIM);
    let expected = (records * RECORD_BYTES) as u64;
    // Check the size first so that a huge wrong file is not read into memory.
    let meta = fs::metadata(path).map_err(|e| missing_or_io(path, e))?;
    if !meta.is_file() {
        return Err(Error::FileMissing {
            path: path.to_path_buf(),
        });
    }
    if meta.len() != expected {
        return Err(bad_size(path, meta.len(), expected));
    }
    // Read in blocks of records through one small buffer (it stays in cache), hashing as we
    // go: no copy of the whole file is made.
    const BLOCK_RECORDS: usize = 64;
    let mut file = fs::File::open(path).map_err(|e| missing_or_io(path, e))?;
    let mut hasher = md5.map(|_| Md5::new());
    let mut buf = vec![0u8; BLOCK_RECORDS.min(records) * RECORD_BYTES];
    // The file changed size since it was checked: its size now (at least `read` bytes if the
    // file system no longer tells).
    let changed = |file: &fs::File, read: u64| {
        bad_size(path, file.metadata().map_or(read, |m| m.len()), expected)
    };
    let mut record = 0;
    // Reported after the md5: a file with the wrong md5 is the wrong file, whatever it holds.
    let mut bad_label = None;
    for (px, labs) in pixels
        .chunks_mut(BLOCK_RECORDS * IMAGE_DIM)
        .zip(labels.chunks_mut(BLOCK_RECORDS))
    {
        let block = &mut buf[..labs.len() * RECORD_BYTES];
        file.read_exact(block).map_err(|e| match e.kind() {
            // The file shrank since its size was checked.
            io::ErrorKind::UnexpectedEof => changed(&file, (record * RECORD_BYTES) as u64),
            _ => missing_or_io(path, e),
        })?;
        if let Some(h) = hasher.as_mut() {
            h.update(&*block);
        }
        for ((rec, img), lab) in block
            .chunks_exact(RECORD_BYTES)
            .zip(px.chunks_exact_mut(IMAGE_DIM))
            .zip(labs.iter_mut())
        {
            let label = rec[0];
            if label as usize >= NUM_CLASSES && bad_label.is_none() {
                bad_label = Some(Error::BadLabel {
                    path: path.to_path_buf(),
                    record,
                    label,
                });
            }
            *lab = label;
            img.copy_from_slice(&rec[1..]);
            record += 1;
        }
    }
    // The file grew since its size was checked.
    let mut extra = [0u8; 1];
    if file.read(&mut extra).map_err(|e| missing_or_io(path, e))? != 0 {
        return Err(changed(&file, expected + 1));
    }
    if let (Some(h), Some(want)) = (hasher, md5) {
        let actual = format!("{:x}", h.finalize());
        if actual != want {
            return Err(Error::BadChecksum {
                path: path.to_path_buf(),
                actual,
                expected: want.to_string(),
            });
        }
    }
    if let Some(e) = bad_label {
        return Err(e);
    }
    Ok(meta)
}

fn bad_size(path: &Path, actual: u64, expected: u64) -> Error {
    Error::BadFileSize {
        path: path.to_path_buf(),
        actual,
        expected,
    }
}

fn missing_or_io(path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::FileMissing {
            path: path.to_path_buf(),
        }
    } else {
        Error::DataUnreadable {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Reads a whole official `cifar-10-batches-bin` directory: the 50,000 training images
/// (`data_batch_1.bin` to `data_batch_5.bin`, in that order) and the 10,000 test images.
///
/// Each file's md5 must be the published one ([`BATCH_MD5`]), so that a file under the wrong
/// name (say `data_batch_1.bin` copied over `test_batch.bin`) is refused with
/// [`Error::BadChecksum`]. The check runs once per file: files that passed are remembered in
/// [`VERIFIED_STAMP`] next to them (written atomically; for a read-only directory, in the
/// user's cache directory: see [`stamp_path`]), keyed by size, modification and change time
/// and inode, so a later load skips the hashing until a file changes. If no stamp can be
/// written, the check simply runs again next time.
///
/// The six files are read in parallel. On failure the error of the first bad file (in the order
/// of [`BATCH_FILES`]) is returned; see [`read_batch`] for the other kinds.
pub fn read_dir(dir: impl AsRef<Path>) -> Result<(RawImages, RawImages)> {
    let dir = dir.as_ref();
    let mut stamp = Stamp::load(dir);
    let md5: Vec<Option<&str>> = BATCH_FILES
        .iter()
        .zip(BATCH_MD5)
        .map(|(name, want)| (!stamp.verified(dir, name, want)).then_some(want))
        .collect();
    let (train, test, metas) = read_all(dir, RECORDS_PER_FILE, &md5)?;
    let mut changed = false;
    for ((name, want), (meta, checked)) in BATCH_FILES
        .iter()
        .zip(BATCH_MD5)
        .zip(metas.iter().zip(&md5))
    {
        if checked.is_some() {
            changed |= stamp.remember(name, want, meta);
        }
    }
    if changed {
        stamp.save(dir);
    }
    Ok((train, test))
}

/// Like [`read_dir`], for batch files of `records_per_file` records each (tests, subsets);
/// the files' md5 sums are not checked.
///
/// `records_per_file` must be at least 1 ([`Error::InvalidConfig`] otherwise).
pub fn read_dir_records(
    dir: impl AsRef<Path>,
    records_per_file: usize,
) -> Result<(RawImages, RawImages)> {
    let (train, test, _) = read_all(dir.as_ref(), records_per_file, &[None; 6])?;
    Ok((train, test))
}

/// Reads the six batch files of `dir`, checking file `i` against `md5[i]` if given; returns
/// the images and each file's metadata.
fn read_all(
    dir: &Path,
    records_per_file: usize,
    md5: &[Option<&str>],
) -> Result<(RawImages, RawImages, Vec<fs::Metadata>)> {
    if records_per_file == 0 {
        return Err(Error::config(
            "records_per_file",
            "must be at least 1".to_string(),
        ));
    }
    let n_train = TRAIN_FILES.len() * records_per_file;
    let mut train = RawImages {
        pixels: vec![0; n_train * IMAGE_DIM],
        labels: vec![0; n_train],
        shape: ImageShape::CIFAR10,
    };
    let mut test = RawImages {
        pixels: vec![0; records_per_file * IMAGE_DIM],
        labels: vec![0; records_per_file],
        shape: ImageShape::CIFAR10,
    };
    // One (file, pixel chunk, label chunk) job per batch file, all reading in parallel.
    let mut jobs: Vec<(PathBuf, &mut [u8], &mut [u8])> = Vec::with_capacity(BATCH_FILES.len());
    let train_chunks = train
        .pixels
        .chunks_mut(records_per_file * IMAGE_DIM)
        .zip(train.labels.chunks_mut(records_per_file));
    for (name, (p, l)) in TRAIN_FILES.iter().zip(train_chunks) {
        jobs.push((dir.join(name), p, l));
    }
    jobs.push((dir.join(TEST_FILE), &mut test.pixels, &mut test.labels));
    let results: Vec<Result<fs::Metadata>> = jobs
        .into_par_iter()
        .zip(md5.par_iter())
        .map(|((path, p, l), want)| read_batch_into(&path, p, l, *want))
        .collect();
    let metas = results.into_iter().collect::<Result<Vec<_>>>()?;
    Ok((train, test, metas))
}

/// The identity of a file's current contents as far as the file system tells: size,
/// modification time, and (on Unix) change time and inode, which no copy can preserve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct FileKey {
    size: u64,
    mtime_ns: Option<u64>,
    ctime_ns: Option<i64>,
    inode: Option<u64>,
}

impl FileKey {
    /// `None` if the file system gives no modification time (then nothing is remembered).
    fn of(meta: &fs::Metadata) -> Option<Self> {
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos()
            .try_into()
            .ok()?;
        #[cfg(unix)]
        let (ctime_ns, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                meta.ctime()
                    .checked_mul(1_000_000_000)
                    .and_then(|s| s.checked_add(meta.ctime_nsec())),
                Some(meta.ino()),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode) = (None, None);
        Some(FileKey {
            size: meta.len(),
            mtime_ns: Some(mtime_ns),
            ctime_ns,
            inode,
        })
    }
}

/// The contents of [`VERIFIED_STAMP`]: per file name, the key of the file whose md5 was found
/// to be the published one.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stamp {
    files: std::collections::BTreeMap<String, (FileKey, String)>,
}

impl Stamp {
    /// The stamp of `dir` from [`stamp_path`], else (a directory made read-only after it was
    /// checked) from [`VERIFIED_STAMP`] in `dir`; empty if there is none that can be read and
    /// parsed.
    fn load(dir: &Path) -> Self {
        let parse = |p: PathBuf| {
            fs::read(p)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
        };
        let local = dir.join(VERIFIED_STAMP);
        match stamp_path(dir) {
            Some(path) if path != local => parse(path).or_else(|| parse(local)),
            _ => parse(local),
        }
        .unwrap_or_default()
    }

    /// True if `dir/name` is, by its key, the file that was found to have md5 `want`.
    fn verified(&self, dir: &Path, name: &str, want: &str) -> bool {
        let Some((key, md5)) = self.files.get(name) else {
            return false;
        };
        md5 == want
            && fs::metadata(dir.join(name))
                .ok()
                .and_then(|m| FileKey::of(&m))
                .is_some_and(|k| &k == key)
    }

    /// Records that the file with metadata `meta` has md5 `md5`; true if that is news.
    fn remember(&mut self, name: &str, md5: &str, meta: &fs::Metadata) -> bool {
        let Some(key) = FileKey::of(meta) else {
            return false;
        };
        let entry = (key, md5.to_string());
        if self.files.get(name) == Some(&entry) {
            return false;
        }
        self.files.insert(name.to_string(), entry);
        true
    }

    /// Writes the stamp to [`stamp_path`] atomically. A stamp that cannot be written is
    /// left out: the check then runs again next time, which costs time but is never wrong.
    fn save(&self, dir: &Path) {
        let Some(path) = stamp_path(dir) else {
            return;
        };
        if let Some(parent) = path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        if let Ok(bytes) = serde_json::to_vec_pretty(self) {
            let _ = crate::output::write_atomic(&path, &bytes);
        }
    }
}

/// Where the record of which batch files in `dir` passed their md5 check is kept:
/// [`VERIFIED_STAMP`] in `dir` itself if `dir` can be written (by its permission bits);
/// otherwise, for a read-only copy shared by a class, a file in the user's cache directory
/// (`$XDG_CACHE_HOME/klayer/verified/` or `~/.cache/klayer/verified/` on Linux), named after
/// the directory's canonical path, so each user checks a shared copy once. `None` if `dir`
/// does not exist or is read-only and there is no cache directory.
///
/// Either way the files are remembered by size, modification and change time and inode, so
/// a file replaced since is checked again.
///
/// # Example
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let stamp = klayer::data::stamp_path(dir.path()).unwrap();
/// assert_eq!(stamp, dir.path().join(klayer::data::VERIFIED_STAMP));
/// ```
pub fn stamp_path(dir: &Path) -> Option<PathBuf> {
    let meta = fs::metadata(dir).ok()?;
    if !meta.permissions().readonly() {
        return Some(dir.join(VERIFIED_STAMP));
    }
    let canonical = fs::canonicalize(dir).ok()?;
    let name = format!(
        "{:x}.json",
        Md5::digest(canonical.as_os_str().as_encoded_bytes())
    );
    Some(
        dirs::cache_dir()?
            .join("klayer")
            .join("verified")
            .join(name),
    )
}

/// Checks, without reading them, that `dir` holds the six batch files with the size of
/// `records_per_file` records each.
///
/// Errors: [`Error::FileMissing`] for the first missing file, [`Error::BadFileSize`] for the
/// first file of the wrong size.
pub fn check_dir(dir: impl AsRef<Path>, records_per_file: usize) -> Result<()> {
    let dir = dir.as_ref();
    let expected = (records_per_file * RECORD_BYTES) as u64;
    for name in BATCH_FILES {
        let path = dir.join(name);
        let meta = fs::metadata(&path).map_err(|e| missing_or_io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::FileMissing { path });
        }
        if meta.len() != expected {
            return Err(bad_size(&path, meta.len(), expected));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: u8, fill: u8) -> Vec<u8> {
        let mut r = vec![fill; RECORD_BYTES];
        r[0] = label;
        r
    }

    #[test]
    fn constants_fit_the_format() {
        assert_eq!(IMAGE_DIM, 3072);
        assert_eq!(RECORD_BYTES, 3073);
        assert_eq!(FILE_BYTES, 30_730_000);
        assert_eq!(TRAIN_IMAGES, 50_000);
        assert_eq!(BATCH_FILES[5], "test_batch.bin");
    }

    #[test]
    fn reads_records_and_checks_labels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bin");
        let bytes: Vec<u8> = [record(1, 10), record(9, 20), record(0, 30)].concat();
        fs::write(&path, &bytes).unwrap();
        let raw = read_batch_records(&path, 3).unwrap();
        assert_eq!(raw.labels, vec![1, 9, 0]);
        assert!(raw.image(1).iter().all(|&p| p == 20));
        assert_eq!(raw.class_counts()[9], 1);

        let bad: Vec<u8> = [record(1, 10), record(10, 20)].concat();
        fs::write(&path, &bad).unwrap();
        match read_batch_records(&path, 2) {
            Err(Error::BadLabel { record, label, .. }) => assert_eq!((record, label), (1, 10)),
            other => panic!("expected BadLabel, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_directory_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in BATCH_FILES.iter().enumerate() {
            let bytes: Vec<u8> = [record(i as u8, i as u8), record(9, 100 + i as u8)].concat();
            fs::write(dir.path().join(name), bytes).unwrap();
        }
        check_dir(dir.path(), 2).unwrap();
        let (train, test) = read_dir_records(dir.path(), 2).unwrap();
        assert_eq!(train.labels, vec![0, 9, 1, 9, 2, 9, 3, 9, 4, 9]);
        assert_eq!(train.image(4)[0], 2);
        assert_eq!(train.image(5)[3071], 102);
        assert_eq!(test.labels, vec![5, 9]);
        assert!(matches!(
            check_dir(dir.path(), 3),
            Err(Error::BadFileSize { .. })
        ));
        fs::remove_file(dir.path().join(TRAIN_FILES[2])).unwrap();
        match read_dir_records(dir.path(), 2) {
            Err(Error::FileMissing { path }) => assert!(path.ends_with("data_batch_3.bin")),
            other => panic!("expected FileMissing, got {other:?}"),
        }
    }
}
