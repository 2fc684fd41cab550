//! Fashion-MNIST: its four files, their official checksums, and reading a directory of them.
//!
//! The release is four IDX files ([`idx`](super::parse_idx)), each distributed gzipped:
//! 60,000 training images and their labels, 10,000 test images and their labels, 28×28 grey
//! pixels, labels `0..=9` ([`FASHION_CLASS_NAMES`]). A directory may hold each file gzipped
//! (`NAME.gz`, as published and as Debian's `dataset-fashion-mnist` installs them) or
//! decompressed (`NAME`).
//!
//! The contents are verified by the md5 of the *decompressed* bytes ([`FashionFile::md5`]):
//! recompressing a file (Debian's copies are recompressed) changes the md5 of the `.gz` but
//! not of what it holds. A download is checked against the md5 of the official `.gz` files
//! ([`FashionFile::gz_md5`]) as it arrives.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::idx::{check_images, check_labels, parse_idx, read_maybe_gz};
use super::{ImageShape, RawImages};
use crate::{Error, Result};

/// Name of the directory, under the data root, that `klayer download --dataset
/// fashion-mnist` fills.
pub const FASHION_DIR_NAME: &str = "fashion-mnist";
/// Where Debian's package `dataset-fashion-mnist` installs the four `.gz` files.
pub const FASHION_SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";
/// The official download location of the four `.gz` files (the file names are appended).
pub const FASHION_MNIST_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";
/// Training images of the release.
pub const FASHION_TRAIN_IMAGES: usize = 60_000;
/// Test images of the release.
pub const FASHION_TEST_IMAGES: usize = 10_000;
/// Class names, indexed by label.
pub const FASHION_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
];

/// One file of the release and its official checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FashionFile {
    /// File name without `.gz`.
    pub name: &'static str,
    /// Size in bytes, decompressed.
    pub bytes: u64,
    /// md5 of the decompressed bytes.
    pub md5: &'static str,
    /// md5 of the official `.gz` file at [`FASHION_MNIST_URL`].
    pub gz_md5: &'static str,
}

/// The four files: training images, training labels, test images, test labels.
pub const FASHION_FILES: [FashionFile; 4] = [
    FashionFile {
        name: "train-images-idx3-ubyte",
        bytes: 47_040_016,
        md5: "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        gz_md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    },
    FashionFile {
        name: "train-labels-idx1-ubyte",
        bytes: 60_008,
        md5: "9018921c3c673c538a1fc5bad174d6f9",
        gz_md5: "25c81989df183df01b3e8a0aad5dffbe",
    },
    FashionFile {
        name: "t10k-images-idx3-ubyte",
        bytes: 7_840_016,
        md5: "8181f5470baa50b63fa0f6fddb340f0a",
        gz_md5: "bef4ecab320f06d8554ea6380940ec79",
    },
    FashionFile {
        name: "t10k-labels-idx1-ubyte",
        bytes: 10_008,
        md5: "15d484375f8d13e6eb1aabb0c3f46965",
        gz_md5: "bb300cfdad3c16e7a12a480ee83cd310",
    },
];

/// The path of file `name` in `dir`: `NAME.gz` if it exists, else `NAME` if that exists.
pub fn fashion_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// True if `dir` holds all four files (gzipped or not); their contents are not examined.
pub fn has_fashion_files(dir: &Path) -> bool {
    FASHION_FILES
        .iter()
        .all(|f| fashion_file(dir, f.name).is_some())
}

/// Reads a Fashion-MNIST directory: the training images (all 60,000, in file order) and the
/// test images, as [`RawImages`] of shape 28×28×1.
///
/// With `verify_md5`, each file's decompressed bytes must have the official md5
/// ([`FASHION_FILES`]); turn it off only for hand-made files (tests, subsets), which may
/// then hold any number of images.
///
/// Errors: [`Error::BadDataFile`] naming the file for a missing file, one that does not
/// decompress, is not an IDX file or is truncated, holds images that are not 28×28 or labels
/// outside `0..=9`, differs from the official file (md5), or when the numbers of images and
/// labels differ; [`Error::DataUnreadable`] if a file cannot be read.
pub fn read_fashion_dir(dir: impl AsRef<Path>, verify_md5: bool) -> Result<(RawImages, RawImages)> {
    let dir = dir.as_ref();
    let read = |k: usize| read_checked(dir, &FASHION_FILES[k], verify_md5);
    let ((train_x, train_y), (test_x, test_y)) = rayon::join(
        || rayon::join(|| read(0), || read(1)),
        || rayon::join(|| read(2), || read(3)),
    );
    let train = pair(train_x?, train_y?)?;
    let test = pair(test_x?, test_y?)?;
    Ok((train, test))
}

/// One file, read, decompressed, md5-checked if asked and parsed: its path and contents.
fn read_checked(dir: &Path, f: &FashionFile, verify_md5: bool) -> Result<(PathBuf, super::Idx)> {
    let path = fashion_file(dir, f.name).ok_or_else(|| Error::BadDataFile {
        path: dir.join(format!("{}.gz", f.name)),
        reason: format!(
            "file missing: a Fashion-MNIST directory holds {}, each gzipped (NAME.gz) or not",
            FASHION_FILES.map(|f| f.name).join(", ")
        ),
    })?;
    let bytes = read_maybe_gz(&path)?;
    let bad = |reason: String| Error::BadDataFile {
        path: path.clone(),
        reason,
    };
    if verify_md5 {
        let actual = format!("{:x}", Md5::digest(&bytes));
        if actual != f.md5 {
            return Err(bad(format!(
                "its contents ({} bytes) have md5 {actual}, but the official {} ({} bytes) \
                 has md5 {}: it is not the official Fashion-MNIST file (another file under \
                 its name, or damaged)",
                bytes.len(),
                f.name,
                f.bytes,
                f.md5
            )));
        }
    }
    let idx = parse_idx(&bytes).map_err(&bad)?;
    Ok((path, idx))
}

/// Images and labels read from their two files, checked against each other.
fn pair(images: (PathBuf, super::Idx), labels: (PathBuf, super::Idx)) -> Result<RawImages> {
    let shape = ImageShape::FASHION_MNIST;
    let (img_path, img) = images;
    let (lab_path, lab) = labels;
    let n = check_images(&img, shape).map_err(|reason| Error::BadDataFile {
        path: img_path.clone(),
        reason,
    })?;
    let m = check_labels(&lab, FASHION_CLASS_NAMES.len()).map_err(|reason| Error::BadDataFile {
        path: lab_path.clone(),
        reason,
    })?;
    if n != m {
        return Err(Error::BadDataFile {
            path: lab_path,
            reason: format!(
                "{m} labels, but {} holds {n} images: the two files do not belong together",
                img_path.display()
            ),
        });
    }
    Ok(RawImages {
        pixels: img.data,
        labels: lab.data,
        shape,
    })
}
