//! Loading a data set ready for training: the train / validation / test split and the
//! normalisation of the report.
//!
//! [`Split::load`] finds the data set [`LoadOptions::source`] names (see
//! [`locate`](super::locate()) and [`locate_fashion_in`](super::locate_fashion_in)),
//! downloading it if allowed and nowhere to be found, reads its files and returns three
//! [`Dataset`]s:
//! - validation: the last `n_val` (default 5,000) of the official training images (50,000 of
//!   CIFAR-10, 60,000 of Fashion-MNIST);
//! - training: the remaining 45,000 (CIFAR-10) or 55,000 (Fashion-MNIST) images, or only the
//!   first `n_train` of them;
//! - test: the 10,000 test images, or only the first `n_test`.
//!
//! Every image is scaled to `[0, 1]` (divided by 255), then each of its features (3,072 for
//! CIFAR-10, 784 for Fashion-MNIST) has the training mean of that feature subtracted and is
//! divided by the training standard deviation of that feature (population std, dividing by
//! n). The statistics are those of the training images actually used, and the same transform
//! is applied to the validation and test images.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;

use super::cifar::{read_dir, read_dir_records, RawImages, NUM_CLASSES, RECORDS_PER_FILE};
use super::dataset::decode_bytes;
use super::download::{download, download_fashion_mnist, CIFAR10_MD5, CIFAR10_URL};
use super::fashion::{read_fashion_dir, FASHION_MNIST_URL, FASHION_SYSTEM_DIR};
use super::locate::{
    search_fashion_in, search_in, searched_fashion, DATA_DIR_NAME, DEFAULT_DATA_ROOT, ENV_VAR,
};
use super::{DataSource, Dataset, ImageShape};
use crate::{Error, Result, Scalar};

/// Which data set to load, where to find it and how to split it. Build it from [`Default`]
/// (CIFAR-10) or [`LoadOptions::new`] and the setter methods.
///
/// # Example
/// ```
/// use klayer::data::{DataSource, LoadOptions};
/// let opts = LoadOptions::default().n_train(1_000).n_test(500).download(false);
/// assert_eq!(opts.n_val, 5_000);
/// assert!(opts.check().is_ok());
/// assert!(LoadOptions::default().n_val(50_000).check().is_err());
/// // Fashion-MNIST has 60,000 training images: 55,000 remain after validation.
/// assert!(LoadOptions::new(DataSource::FashionMnist).n_train(55_000).check().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// The data set. Default [`DataSource::Cifar10`].
    pub source: DataSource,
    /// The data set's directory (or its parent), if given explicitly; it then must exist.
    /// Default `None`: search as [`data_dir`](Self::data_dir) says.
    pub path: Option<PathBuf>,
    /// The directory that holds (or will hold, after a download) `cifar-10-batches-bin` or
    /// `fashion-mnist`. Default `data`, relative to the working directory.
    pub data_root: PathBuf,
    /// Where a system-wide copy of Fashion-MNIST is looked for after `data_root`. Default
    /// [`FASHION_SYSTEM_DIR`] (Debian's `dataset-fashion-mnist`); `None` skips it. Not used
    /// for CIFAR-10.
    pub system_dir: Option<PathBuf>,
    /// Number of validation images, taken from the end of the official training images.
    /// Default 5,000. May be 0 (an empty validation set); must be below the number of
    /// training images (50,000 for CIFAR-10, 60,000 for Fashion-MNIST).
    pub n_val: usize,
    /// Use only the first `n_train` of the remaining training images (quick runs). Default
    /// `None`: all of them (45,000 of CIFAR-10 or 55,000 of Fashion-MNIST with the default
    /// `n_val`).
    pub n_train: Option<usize>,
    /// Use only the first `n_test` test images. Default `None`: all 10,000.
    pub n_test: Option<usize>,
    /// Download the data into `data_root` if nothing was named explicitly and no copy is
    /// found. Default `true`.
    pub download: bool,
    /// Where to download from. Default `None`: the official place ([`CIFAR10_URL`], the
    /// archive; [`FASHION_MNIST_URL`], the directory of the four files).
    pub url: Option<String>,
    /// The md5 the downloaded CIFAR-10 archive must have. Default `None`: the official
    /// [`CIFAR10_MD5`]. Fashion-MNIST's four files are always checked against their official
    /// md5s, so it may not be set for Fashion-MNIST.
    pub md5: Option<String>,
    /// Check that each file has its published md5 (CIFAR-10: once per file, see
    /// [`read_dir`](super::read_dir()); Fashion-MNIST: the md5 of the decompressed contents,
    /// at every load). Default `true`; turn it off only for hand-made files.
    pub verify_md5: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions::new(DataSource::Cifar10)
    }
}

impl LoadOptions {
    /// The defaults for data set `source`.
    pub fn new(source: DataSource) -> Self {
        LoadOptions {
            source,
            path: None,
            data_root: PathBuf::from(DEFAULT_DATA_ROOT),
            system_dir: Some(PathBuf::from(FASHION_SYSTEM_DIR)),
            n_val: 5_000,
            n_train: None,
            n_test: None,
            download: true,
            url: None,
            md5: None,
            verify_md5: true,
        }
    }

    /// Sets [`source`](Self::source).
    pub fn source(mut self, source: DataSource) -> Self {
        self.source = source;
        self
    }

    /// Sets [`system_dir`](Self::system_dir).
    pub fn system_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.system_dir = dir;
        self
    }

    /// The download URL: [`url`](Self::url) or the official one of the data set.
    pub fn download_url(&self) -> &str {
        self.url.as_deref().unwrap_or(match self.source {
            DataSource::Cifar10 => CIFAR10_URL,
            DataSource::FashionMnist => FASHION_MNIST_URL,
        })
    }

    /// Sets [`path`](Self::path).
    pub fn path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.path = Some(dir.into());
        self
    }

    /// Sets [`data_root`](Self::data_root).
    pub fn data_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_root = dir.into();
        self
    }

    /// Sets [`n_val`](Self::n_val).
    pub fn n_val(mut self, n: usize) -> Self {
        self.n_val = n;
        self
    }

    /// Sets [`n_train`](Self::n_train) to `Some(n)`.
    pub fn n_train(mut self, n: usize) -> Self {
        self.n_train = Some(n);
        self
    }

    /// Sets [`n_test`](Self::n_test) to `Some(n)`.
    pub fn n_test(mut self, n: usize) -> Self {
        self.n_test = Some(n);
        self
    }

    /// Sets [`download`](Self::download).
    pub fn download(mut self, yes: bool) -> Self {
        self.download = yes;
        self
    }

    /// Sets [`url`](Self::url).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Sets [`md5`](Self::md5).
    pub fn md5(mut self, md5_hex: impl Into<String>) -> Self {
        self.md5 = Some(md5_hex.into());
        self
    }

    /// Sets [`verify_md5`](Self::verify_md5).
    pub fn verify_md5(mut self, yes: bool) -> Self {
        self.verify_md5 = yes;
        self
    }

    /// Checks the settings against the data set's official sizes (CIFAR-10: 50,000 training
    /// and 10,000 test images; Fashion-MNIST: 60,000 and 10,000): `n_val` below the training
    /// images; `n_train`, if given, between 1 and what remains after `n_val`; `n_test`, if
    /// given, between 1 and 10,000; if downloading is allowed, a non-empty URL and (CIFAR-10)
    /// an md5 of 32 hexadecimal digits; no md5 for Fashion-MNIST. Errors are
    /// [`Error::InvalidConfig`].
    pub fn check(&self) -> Result<()> {
        self.check_sizes(self.source.train_images(), self.source.test_images())?;
        if self.source == DataSource::FashionMnist && self.md5.is_some() {
            return Err(Error::config(
                "md5",
                "Fashion-MNIST's four files are checked against their official md5s; an md5 \
                 can be given only for the CIFAR-10 archive",
            ));
        }
        if self.download {
            if self.download_url().trim().is_empty() {
                return Err(Error::config("url", "the download URL is empty"));
            }
            let md5 = self.md5.as_deref().unwrap_or(CIFAR10_MD5).trim();
            if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::config(
                    "md5",
                    format!("`{md5}` is not an md5 sum (32 hexadecimal digits)"),
                ));
            }
        }
        Ok(())
    }

    fn check_sizes(&self, n_train_all: usize, n_test_all: usize) -> Result<()> {
        if self.n_val >= n_train_all {
            return Err(Error::config(
                "n_val",
                format!(
                    "{} validation images leave none of the {n_train_all} training images for \
                     training; it must be below {n_train_all}",
                    self.n_val
                ),
            ));
        }
        let left = n_train_all - self.n_val;
        match self.n_train {
            Some(0) => return Err(Error::config("n_train", "must be at least 1")),
            Some(n) if n > left => {
                return Err(Error::config(
                    "n_train",
                    format!(
                        "{n}, but only {left} training images remain after the {} validation \
                         images; it must be at most {left}",
                        self.n_val
                    ),
                ))
            }
            _ => {}
        }
        match self.n_test {
            Some(0) => return Err(Error::config("n_test", "must be at least 1")),
            Some(n) if n > n_test_all => {
                return Err(Error::config(
                    "n_test",
                    format!("{n}, but there are only {n_test_all} test images"),
                ))
            }
            _ => {}
        }
        Ok(())
    }

    /// The data directory these options point to. CIFAR-10: the explicit
    /// [`path`](Self::path), else `$KLAYER_DATA`, else `<data_root>/cifar-10-batches-bin`.
    /// Fashion-MNIST: the explicit path, else `$KLAYER_DATA` if it holds the files, else
    /// `<data_root>/fashion-mnist`, else [`system_dir`](Self::system_dir) (see
    /// [`locate_fashion_in`](super::locate_fashion_in)). If nothing is named or found and
    /// [`download`](Self::download) is true, the data is downloaded into `data_root` first.
    ///
    /// Errors: as [`locate_in`](super::locate_in) and
    /// [`locate_fashion_in`](super::locate_fashion_in) (a path named explicitly that does not
    /// exist is an error, never a reason to download); [`Error::DataNotFound`] or
    /// [`Error::DatasetNotFound`], whose message says to run `klayer download` or set
    /// `KLAYER_DATA`, if nothing is found and downloading is off; the errors of
    /// [`download`](super::download()) and
    /// [`download_fashion_mnist`](super::download_fashion_mnist) otherwise.
    pub fn data_dir(&self) -> Result<PathBuf> {
        self.data_dir_in(std::env::var_os(ENV_VAR).as_deref())
    }

    /// [`data_dir`](Self::data_dir) with `env_value` standing for the value of `KLAYER_DATA`
    /// (`None` or empty: unset), so that the search can be tested whatever the environment.
    pub fn data_dir_in(&self, env_value: Option<&OsStr>) -> Result<PathBuf> {
        if self.source == DataSource::FashionMnist {
            let system = self.system_dir.as_deref();
            let found =
                search_fashion_in(self.path.as_deref(), env_value, &self.data_root, system)?;
            return match found {
                Some(dir) => Ok(dir),
                None if self.download => {
                    eprintln!(
                        "Fashion-MNIST not found in {}; downloading it",
                        searched_fashion(&self.data_root, system)
                    );
                    download_fashion_mnist(self.download_url(), &self.data_root)
                }
                None => Err(Error::DatasetNotFound {
                    dataset: "Fashion-MNIST",
                    id: "fashion-mnist",
                    searched: format!(
                        "{}; downloading is off",
                        searched_fashion(&self.data_root, system)
                    ),
                }),
            };
        }
        match search_in(self.path.as_deref(), env_value, &self.data_root)? {
            Some(dir) => Ok(dir),
            None if self.download => {
                eprintln!(
                    "CIFAR-10 not found in {} ({ENV_VAR} is not set); downloading it",
                    self.data_root.join(DATA_DIR_NAME).display()
                );
                let md5 = self.md5.as_deref().unwrap_or(CIFAR10_MD5);
                download(self.download_url(), md5, &self.data_root)
            }
            None => Err(Error::DataNotFound {
                searched: format!(
                    "{} ({ENV_VAR} is not set; downloading is off)",
                    self.data_root.join(DATA_DIR_NAME).display()
                ),
            }),
        }
    }
}

/// A data set split into training, validation and test images and normalised, in floats of
/// type `T`, with the [`ImageShape`] of its images.
///
/// - validation: the last `n_val` (default 5,000) of the official training images (50,000 of
///   CIFAR-10, 60,000 of Fashion-MNIST);
/// - training: the remaining 45,000 (CIFAR-10) or 55,000 (Fashion-MNIST) images, or only the
///   first `n_train` of them;
/// - test: the 10,000 test images, or only the first `n_test`.
///
/// Every image is scaled to `[0, 1]` (divided by 255), then each of its features has the
/// training mean of that feature subtracted and is divided by the training standard deviation
/// of that feature (population std, dividing by n), computed in `T` from the byte
/// ([`normalise`]). The statistics ([`mean`](Self::mean), [`std`](Self::std)) are those of the
/// training images actually used; the same transform is applied to the validation and test
/// images.
///
/// # Example
/// ```no_run
/// use klayer::data::{LoadOptions, Split};
/// let data = Split::<f32>::load(&LoadOptions::default())?;
/// assert_eq!((data.train.len(), data.val.len(), data.test.len()), (45_000, 5_000, 10_000));
/// assert_eq!(data.input_dim(), 3072);
/// # Ok::<(), klayer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Split<T> {
    /// Training images (45,000 of CIFAR-10 by default).
    pub train: Dataset<T>,
    /// Validation images (the last 5,000 of the official training set by default).
    pub val: Dataset<T>,
    /// Test images (10,000 by default).
    pub test: Dataset<T>,
    /// Per-feature mean of the training images on the `[0, 1]` scale (one per feature).
    pub mean: Vec<f64>,
    /// Per-feature population standard deviation of the training images on the `[0, 1]`
    /// scale (one per feature; a feature that is constant over the training images gets 1).
    pub std: Vec<f64>,
    /// The data set the images come from.
    pub source: DataSource,
    /// The shape of every image (also in each set's [`Dataset::shape`]).
    pub shape: ImageShape,
}

impl<T: Scalar> Split<T> {
    /// Finds (or downloads, see [`LoadOptions::data_dir`]) and reads the data set
    /// [`LoadOptions::source`] names, then splits and normalises it as described under
    /// [`Split`].
    ///
    /// Errors: [`Error::InvalidConfig`] for bad options ([`LoadOptions::check`]), the errors of
    /// [`LoadOptions::data_dir`] and those of reading the files
    /// ([`read_dir`](super::read_dir()), [`read_fashion_dir`](super::read_fashion_dir)).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        opts.check()?;
        let dir = opts.data_dir()?;
        let (train, test) = match opts.source {
            DataSource::Cifar10 if opts.verify_md5 => read_dir(&dir)?,
            DataSource::Cifar10 => read_dir_records(&dir, RECORDS_PER_FILE)?,
            DataSource::FashionMnist => read_fashion_dir(&dir, opts.verify_md5)?,
        };
        Self::from_owned(train, &test, opts)
    }

    /// Splits and normalises images already read: validation = the last `opts.n_val` of
    /// `train`, training = the first `opts.n_train` of the rest (all by default), test = the
    /// first `opts.n_test` of `test` (all by default). The images keep their shape; the
    /// location and download fields of `opts` are not used, its `source` only for the
    /// [`source`](Self::source) field.
    ///
    /// Errors: [`Error::InvalidConfig`] if the sizes in `opts` do not fit the given images,
    /// [`Error::Shape`] if `pixels` and `labels` of an input disagree or the two inputs'
    /// shapes differ.
    ///
    /// # Example
    /// ```
    /// use klayer::data::{ImageShape, LoadOptions, RawImages, Split};
    /// let shape = ImageShape::FASHION_MNIST;
    /// let raw = |n: usize| RawImages {
    ///     pixels: (0..n * shape.dim()).map(|i| (i % 251) as u8).collect(),
    ///     labels: (0..n).map(|i| (i % 10) as u8).collect(),
    ///     shape,
    /// };
    /// let opts = LoadOptions::default().n_val(2);
    /// let data = Split::<f64>::from_raw(&raw(10), &raw(3), &opts).unwrap();
    /// assert_eq!((data.train.len(), data.val.len(), data.test.len()), (8, 2, 3));
    /// assert_eq!((data.input_dim(), data.test.shape), (784, Some(shape)));
    /// let col0_mean = data.train.x.column(0).sum() / 8.0;
    /// assert!(col0_mean.abs() < 1e-12);
    /// ```
    pub fn from_raw(train: &RawImages, test: &RawImages, opts: &LoadOptions) -> Result<Self> {
        Self::from_owned(train.clone(), test, opts)
    }

    /// [`Split::from_raw`], keeping `train`'s bytes for the training set's mini-batches
    /// without copying them.
    fn from_owned(train: RawImages, test: &RawImages, opts: &LoadOptions) -> Result<Self> {
        check_raw(&train, "train")?;
        check_raw(test, "test")?;
        let shape = train.shape;
        if test.shape != shape {
            return Err(Error::Shape(format!(
                "training images are {shape}, test images {}",
                test.shape
            )));
        }
        let dim = shape.dim();
        opts.check_sizes(train.len(), test.len())?;
        let n_all = train.len();
        let val_start = n_all - opts.n_val;
        let n_train = opts.n_train.unwrap_or(val_start);
        let n_test = opts.n_test.unwrap_or(test.len());

        let pixels = Arc::new(train.pixels);
        let train_px = &pixels[..n_train * dim];
        let (mean, std) = feature_stats(train_px, dim);
        // Only the training set keeps its bytes: mini-batches are drawn from it alone.
        let set = |px: &[u8], labels: &[u8], keep| -> Result<Dataset<T>> {
            normalise_keeping(px, labels, &mean, &std, keep)?.with_shape(shape)
        };
        let train_set = set(train_px, &train.labels[..n_train], Some(pixels.clone()))?;
        let val = set(&pixels[val_start * dim..], &train.labels[val_start..], None)?;
        let test_set = set(&test.pixels[..n_test * dim], &test.labels[..n_test], None)?;
        Ok(Split {
            train: train_set,
            val,
            test: test_set,
            mean,
            std,
            source: opts.source,
            shape,
        })
    }

    /// Features per image, the input size of a network for this data: `shape.dim()`.
    pub fn input_dim(&self) -> usize {
        self.shape.dim()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train.classes
    }

    /// Class names, indexed by label.
    pub fn class_names(&self) -> &'static [&'static str; 10] {
        self.source.class_names()
    }
}

fn check_raw(raw: &RawImages, which: &str) -> Result<()> {
    let dim = raw.shape.dim();
    if raw.pixels.len() != raw.labels.len() * dim {
        return Err(Error::Shape(format!(
            "{which} images: {} pixel bytes for {} labels, expected {dim} per image",
            raw.pixels.len(),
            raw.labels.len(),
        )));
    }
    Ok(())
}

/// Images per parallel work item.
const CHUNK_IMAGES: usize = 256;

/// Per-feature mean and population standard deviation of images of `dim` features given as
/// raw bytes (`n * dim` of them), on the `[0, 1]` scale (bytes / 255).
///
/// The sums are exact integers, so the result does not depend on the number of threads. A
/// feature with zero variance (or no images at all) gets std 1, so that normalising never
/// divides by zero.
///
/// # Example
/// ```
/// use klayer::data::{feature_stats, IMAGE_DIM};
/// let mut px = vec![0u8; 2 * IMAGE_DIM];
/// px[IMAGE_DIM] = 255; // feature 0: values 0 and 1
/// let (mean, std) = feature_stats(&px, IMAGE_DIM);
/// assert_eq!((mean[0], std[0]), (0.5, 0.5));
/// assert_eq!((mean[1], std[1]), (0.0, 1.0));
/// ```
///
/// **Panics** if `dim` is 0 or `pixels.len()` is not a multiple of `dim`.
pub fn feature_stats(pixels: &[u8], dim: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(
        dim > 0 && pixels.len().is_multiple_of(dim),
        "pixels of whole images"
    );
    let n = pixels.len() / dim;
    // Per chunk (at most 256 images), u32 sums cannot overflow: 256 * 255^2 < 2^32.
    let (sum, sumsq) = pixels
        .par_chunks(CHUNK_IMAGES * dim)
        .map(|chunk| {
            let mut s = vec![0u32; dim];
            let mut q = vec![0u32; dim];
            for img in chunk.chunks_exact(dim) {
                for ((s, q), &p) in s.iter_mut().zip(q.iter_mut()).zip(img) {
                    let p = p as u32;
                    *s += p;
                    *q += p * p;
                }
            }
            let widen = |v: Vec<u32>| v.into_iter().map(u64::from).collect::<Vec<u64>>();
            (widen(s), widen(q))
        })
        .reduce(
            || (vec![0u64; dim], vec![0u64; dim]),
            |(mut s1, mut q1), (s2, q2)| {
                for (a, b) in s1.iter_mut().zip(&s2) {
                    *a += b;
                }
                for (a, b) in q1.iter_mut().zip(&q2) {
                    *a += b;
                }
                (s1, q1)
            },
        );
    let nf = n as f64;
    let mean = sum
        .iter()
        .map(|&s| if n == 0 { 0.0 } else { s as f64 / (255.0 * nf) })
        .collect();
    let std = sum
        .iter()
        .zip(&sumsq)
        .map(|(&s, &q)| {
            // n^2 var (on the byte scale) = n * sum(p^2) - (sum p)^2, exactly.
            let num = n as u128 * q as u128 - s as u128 * s as u128;
            if num == 0 {
                1.0
            } else {
                (num as f64).sqrt() / (255.0 * nf)
            }
        })
        .collect();
    (mean, std)
}

/// Normalises images given as raw bytes: feature `j` of every image becomes
/// `(byte / 255 - mean[j]) / std[j]`, computed as `byte * scale[j] + shift[j]` in `T`, with
/// `scale[j] = 1 / (255 std[j])` and `shift[j] = -mean[j] / std[j]` computed in `f64` and
/// rounded to `T` (in f32, within a few units in the last place of the exact value).
///
/// The number of features per image is `mean.len()`; the result has no image shape (give it
/// one with [`Dataset::with_shape`]). It keeps a copy of the bytes: training gathers its
/// mini-batches from them, decoding each to exactly its features (a quarter of the memory
/// traffic of copying f32 rows).
///
/// Errors: [`Error::Shape`] if `mean` is empty, `std` is not as long as `mean`, or `pixels`
/// is not `labels.len() * mean.len()` bytes; [`Error::Shape`] from [`Dataset::new`] if a label is not
/// below 10.
pub fn normalise<T: Scalar>(
    pixels: &[u8],
    labels: &[u8],
    mean: &[f64],
    std: &[f64],
) -> Result<Dataset<T>> {
    normalise_keeping(pixels, labels, mean, std, Some(Arc::new(pixels.to_vec())))
}

/// [`normalise`], keeping `keep` (whose first bytes are `pixels`; see
/// [`Dataset::keep_bytes`]) as the bytes mini-batches are gathered from, if given.
fn normalise_keeping<T: Scalar>(
    pixels: &[u8],
    labels: &[u8],
    mean: &[f64],
    std: &[f64],
    keep: Option<Arc<Vec<u8>>>,
) -> Result<Dataset<T>> {
    debug_assert!(keep.as_ref().is_none_or(|k| k.starts_with(pixels)));
    let n = labels.len();
    let dim = mean.len();
    if dim == 0 || pixels.len() != n * dim || std.len() != dim {
        return Err(Error::Shape(format!(
            "normalise: {} pixel bytes, {n} labels, {} means and {} stds; expected {} bytes \
             and as many stds as means, at least one",
            pixels.len(),
            mean.len(),
            std.len(),
            n * dim
        )));
    }
    // (p / 255 - m) / s = p * scale + shift, with a multiply and an add per value in `T`
    // instead of a division: mini-batches are decoded this way at every step (see
    // `decode_bytes`).
    let scale: Vec<T> = std.iter().map(|&s| T::of(1.0 / (255.0 * s))).collect();
    let shift: Vec<T> = mean.iter().zip(std).map(|(&m, &s)| T::of(-m / s)).collect();
    // Aligned: evaluation multiplies the rows of a set in place.
    let mut x = crate::linalg::zeros_aligned::<T>((n, dim));
    if let Some(out) = x.as_slice_mut() {
        out.par_chunks_mut(CHUNK_IMAGES * dim)
            .zip(pixels.par_chunks(CHUNK_IMAGES * dim))
            .for_each(|(out, px)| {
                for (o_img, p_img) in out.chunks_exact_mut(dim).zip(px.chunks_exact(dim)) {
                    decode_bytes(p_img, &scale, &shift, o_img);
                }
            });
    }
    let y = labels.iter().map(|&l| l as usize).collect();
    // The bytes stay with the features: mini-batches are gathered from them (see
    // `Dataset::gather`).
    let set = Dataset::new(x, y, NUM_CLASSES)?;
    Ok(match keep {
        Some(bytes) => set.keep_bytes(bytes, scale, shift),
        None => set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::IMAGE_DIM;

    fn raw(n: usize, seed: usize) -> RawImages {
        RawImages {
            pixels: (0..n * IMAGE_DIM)
                .map(|i| ((i * 2_654_435_761 + seed) >> 7) as u8)
                .collect(),
            labels: (0..n).map(|i| ((i + seed) % 10) as u8).collect(),
            shape: ImageShape::CIFAR10,
        }
    }

    #[test]
    fn stats_match_a_direct_two_pass_computation() {
        let r = raw(700, 3);
        let (mean, std) = feature_stats(&r.pixels, IMAGE_DIM);
        for j in [0, 1, 1023, 2047, 3071] {
            let v: Vec<f64> = (0..700).map(|i| r.image(i)[j] as f64 / 255.0).collect();
            let m = v.iter().sum::<f64>() / 700.0;
            let s = (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 700.0).sqrt();
            assert!((mean[j] - m).abs() < 1e-14, "{} {m}", mean[j]);
            assert!((std[j] - s).abs() < 1e-14, "{} {s}", std[j]);
        }
    }

    #[test]
    fn split_takes_validation_from_the_end() {
        let train = raw(30, 1);
        let test = raw(7, 2);
        let opts = LoadOptions::default().n_val(10).n_train(5).n_test(4);
        let d = Split::<f32>::from_raw(&train, &test, &opts).unwrap();
        assert_eq!((d.train.len(), d.val.len(), d.test.len()), (5, 10, 4));
        let lab = |r: &RawImages, a: usize, b: usize| {
            r.labels[a..b]
                .iter()
                .map(|&l| l as usize)
                .collect::<Vec<_>>()
        };
        assert_eq!(d.train.y, lab(&train, 0, 5));
        assert_eq!(d.val.y, lab(&train, 20, 30));
        assert_eq!(d.test.y, lab(&test, 0, 4));
        // The statistics are those of the 5 training images used.
        let (mean, std) = feature_stats(&train.pixels[..5 * IMAGE_DIM], IMAGE_DIM);
        assert_eq!((d.mean.clone(), d.std.clone()), (mean, std));
        let j = 100;
        let want = (train.image(25)[j] as f64 / 255.0 - d.mean[j]) / d.std[j];
        assert!((d.val.x[[5, j]] as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn sizes_are_checked_against_the_images() {
        let train = raw(30, 1);
        let test = raw(7, 2);
        let err = |o: LoadOptions| Split::<f64>::from_raw(&train, &test, &o).unwrap_err();
        assert!(matches!(
            err(LoadOptions::default().n_val(30)),
            Error::InvalidConfig { name: "n_val", .. }
        ));
        assert!(matches!(
            err(LoadOptions::default().n_val(10).n_train(21)),
            Error::InvalidConfig {
                name: "n_train",
                ..
            }
        ));
        assert!(matches!(
            err(LoadOptions::default().n_val(10).n_test(8)),
            Error::InvalidConfig { name: "n_test", .. }
        ));
        assert!(LoadOptions::default().n_train(0).check().is_err());
        assert!(LoadOptions::default().n_test(0).check().is_err());
        assert!(LoadOptions::default().n_test(10_001).check().is_err());
        assert!(LoadOptions::default().n_train(45_001).check().is_err());
        assert!(LoadOptions::default().n_train(45_000).check().is_ok());
        assert!(LoadOptions::default().md5("xyz").check().is_err());
        assert!(LoadOptions::default()
            .md5("xyz")
            .download(false)
            .check()
            .is_ok());
        assert!(LoadOptions::default().n_val(0).check().is_ok());
    }
}
