//! Loading CIFAR-10 ready for training: the train / validation / test split and the
//! normalisation of the report.
//!
//! [`Cifar10::load`] finds the data (see [`locate`](super::locate())), downloading it if allowed
//! and nowhere to be found, reads the six batch files and returns three [`Dataset`]s:
//! - validation: the last `n_val` (default 5,000) of the 50,000 training images;
//! - training: the remaining 45,000 images, or only the first `n_train` of them;
//! - test: the 10,000 test images, or only the first `n_test`.
//!
//! Every image is scaled to `[0, 1]` (divided by 255), then each of its 3,072 features has the
//! training mean of that feature subtracted and is divided by the training standard deviation
//! of that feature (population std, dividing by n). The statistics are those of the training
//! images actually used, and the same transform is applied to the validation and test images.

use std::ffi::OsStr;
use std::path::PathBuf;

use ndarray::Array2;
use rayon::prelude::*;

use super::cifar::{
    read_dir, read_dir_records, RawImages, IMAGE_DIM, NUM_CLASSES, RECORDS_PER_FILE, TEST_IMAGES,
    TRAIN_IMAGES,
};
use super::download::{download, CIFAR10_MD5, CIFAR10_URL};
use super::locate::{search_in, DATA_DIR_NAME, DEFAULT_DATA_ROOT, ENV_VAR};
use super::Dataset;
use crate::{Error, Result, Scalar};

/// Where to find CIFAR-10 and how to split it. Build it from [`Default`] and the setter
/// methods.
///
/// # Example
/// ```
/// use klayer::data::LoadOptions;
/// let opts = LoadOptions::default().n_train(1_000).n_test(500).download(false);
/// assert_eq!(opts.n_val, 5_000);
/// assert!(opts.check().is_ok());
/// assert!(LoadOptions::default().n_val(50_000).check().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// The `cifar-10-batches-bin` directory (or its parent), if given explicitly; it then must
    /// exist. Default `None`: use `$KLAYER_DATA`, else `<data_root>/cifar-10-batches-bin`.
    pub path: Option<PathBuf>,
    /// The directory that holds (or will hold, after a download) `cifar-10-batches-bin`.
    /// Default `data`, relative to the working directory.
    pub data_root: PathBuf,
    /// Number of validation images, taken from the end of the 50,000 training images.
    /// Default 5,000. May be 0 (an empty validation set); must be below 50,000.
    pub n_val: usize,
    /// Use only the first `n_train` of the remaining training images (quick runs). Default
    /// `None`: all of them (45,000 with the default `n_val`).
    pub n_train: Option<usize>,
    /// Use only the first `n_test` test images. Default `None`: all 10,000.
    pub n_test: Option<usize>,
    /// Download the data into `data_root` if no explicit path nor `KLAYER_DATA` is given and
    /// `<data_root>/cifar-10-batches-bin` does not exist. Default `true`.
    pub download: bool,
    /// Where to download from. Default [`CIFAR10_URL`], the official archive.
    pub url: String,
    /// The md5 the downloaded archive must have. Default [`CIFAR10_MD5`], the official one.
    pub md5: String,
    /// Check that each batch file has its published md5 (once per file, see
    /// [`read_dir`](super::read_dir())). Default `true`; turn it off only for hand-made
    /// files of the official size.
    pub verify_md5: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            path: None,
            data_root: PathBuf::from(DEFAULT_DATA_ROOT),
            n_val: 5_000,
            n_train: None,
            n_test: None,
            download: true,
            url: CIFAR10_URL.to_string(),
            md5: CIFAR10_MD5.to_string(),
            verify_md5: true,
        }
    }
}

impl LoadOptions {
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
        self.url = url.into();
        self
    }

    /// Sets [`md5`](Self::md5).
    pub fn md5(mut self, md5_hex: impl Into<String>) -> Self {
        self.md5 = md5_hex.into();
        self
    }

    /// Sets [`verify_md5`](Self::verify_md5).
    pub fn verify_md5(mut self, yes: bool) -> Self {
        self.verify_md5 = yes;
        self
    }

    /// Checks the settings against the official sizes (50,000 training and 10,000 test
    /// images): `n_val` below 50,000; `n_train`, if given, between 1 and `50,000 - n_val`;
    /// `n_test`, if given, between 1 and 10,000; if downloading is allowed, a non-empty URL
    /// and an md5 of 32 hexadecimal digits. Errors are [`Error::InvalidConfig`].
    pub fn check(&self) -> Result<()> {
        self.check_sizes(TRAIN_IMAGES, TEST_IMAGES)?;
        if self.download {
            if self.url.trim().is_empty() {
                return Err(Error::config("url", "the download URL is empty"));
            }
            let md5 = self.md5.trim();
            if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::config(
                    "md5",
                    format!("`{}` is not an md5 sum (32 hexadecimal digits)", self.md5),
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

    /// The CIFAR-10 directory these options point to: the explicit [`path`](Self::path), else
    /// `$KLAYER_DATA`, else `<data_root>/cifar-10-batches-bin`; if none of those is given or
    /// exists and [`download`](Self::download) is true, the data is downloaded into
    /// `data_root` first.
    ///
    /// Errors: as [`locate_in`](super::locate_in) (an explicit path or `KLAYER_DATA` that does
    /// not exist is an error, never a reason to download); [`Error::DataNotFound`], whose
    /// message says to run `klayer download` or set `KLAYER_DATA`, if nothing is found and
    /// downloading is off; the errors of [`download`](super::download()) otherwise.
    pub fn data_dir(&self) -> Result<PathBuf> {
        self.data_dir_in(std::env::var_os(ENV_VAR).as_deref())
    }

    /// [`data_dir`](Self::data_dir) with `env_value` standing for the value of `KLAYER_DATA`
    /// (`None` or empty: unset), so that the search can be tested whatever the environment.
    pub fn data_dir_in(&self, env_value: Option<&OsStr>) -> Result<PathBuf> {
        match search_in(self.path.as_deref(), env_value, &self.data_root)? {
            Some(dir) => Ok(dir),
            None if self.download => {
                eprintln!(
                    "CIFAR-10 not found in {} ({ENV_VAR} is not set); downloading it",
                    self.data_root.join(DATA_DIR_NAME).display()
                );
                download(&self.url, &self.md5, &self.data_root)
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

/// CIFAR-10, split and normalised, in floats of type `T`.
///
/// - validation: the last `n_val` (default 5,000) of the 50,000 training images;
/// - training: the remaining 45,000 images, or only the first `n_train` of them;
/// - test: the 10,000 test images, or only the first `n_test`.
///
/// Every image is scaled to `[0, 1]` (divided by 255), then each of its 3,072 features has the
/// training mean of that feature subtracted and is divided by the training standard deviation
/// of that feature (population std, dividing by n), in `f64`, then rounded to `T`. The
/// statistics ([`mean`](Self::mean), [`std`](Self::std)) are those of the training images
/// actually used; the same transform is applied to the validation and test images.
///
/// # Example
/// ```no_run
/// use klayer::data::{Cifar10, LoadOptions};
/// let data = Cifar10::<f32>::load(&LoadOptions::default())?;
/// assert_eq!((data.train.len(), data.val.len(), data.test.len()), (45_000, 5_000, 10_000));
/// # Ok::<(), klayer::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Cifar10<T> {
    /// Training images (45,000 by default).
    pub train: Dataset<T>,
    /// Validation images (the last 5,000 of the official training set by default).
    pub val: Dataset<T>,
    /// Test images (10,000 by default).
    pub test: Dataset<T>,
    /// Per-feature mean of the training images on the `[0, 1]` scale (3,072 values).
    pub mean: Vec<f64>,
    /// Per-feature population standard deviation of the training images on the `[0, 1]`
    /// scale (3,072 values; a feature that is constant over the training images gets 1).
    pub std: Vec<f64>,
}

impl<T: Scalar> Cifar10<T> {
    /// Finds (or downloads, see [`LoadOptions::data_dir`]) and reads CIFAR-10, then splits and
    /// normalises it as described under [`Cifar10`].
    ///
    /// Errors: [`Error::InvalidConfig`] for bad options ([`LoadOptions::check`]), the errors of
    /// [`LoadOptions::data_dir`] and those of reading the batch files
    /// ([`read_dir`](super::read_dir())).
    pub fn load(opts: &LoadOptions) -> Result<Self> {
        opts.check()?;
        let dir = opts.data_dir()?;
        let (train, test) = if opts.verify_md5 {
            read_dir(&dir)?
        } else {
            read_dir_records(&dir, RECORDS_PER_FILE)?
        };
        Self::from_raw(&train, &test, opts)
    }

    /// Splits and normalises images already read: validation = the last `opts.n_val` of
    /// `train`, training = the first `opts.n_train` of the rest (all by default), test = the
    /// first `opts.n_test` of `test` (all by default). The location and download fields of
    /// `opts` are not used.
    ///
    /// Errors: [`Error::InvalidConfig`] if the sizes in `opts` do not fit the given images,
    /// [`Error::Shape`] if `pixels` and `labels` of an input disagree.
    ///
    /// # Example
    /// ```
    /// use klayer::data::{Cifar10, LoadOptions, RawImages, IMAGE_DIM};
    /// let raw = |n: usize| RawImages {
    ///     pixels: (0..n * IMAGE_DIM).map(|i| (i % 251) as u8).collect(),
    ///     labels: (0..n).map(|i| (i % 10) as u8).collect(),
    /// };
    /// let opts = LoadOptions::default().n_val(2);
    /// let data = Cifar10::<f64>::from_raw(&raw(10), &raw(3), &opts).unwrap();
    /// assert_eq!((data.train.len(), data.val.len(), data.test.len()), (8, 2, 3));
    /// let col0_mean = data.train.x.column(0).sum() / 8.0;
    /// assert!(col0_mean.abs() < 1e-12);
    /// ```
    pub fn from_raw(train: &RawImages, test: &RawImages, opts: &LoadOptions) -> Result<Self> {
        check_raw(train, "train")?;
        check_raw(test, "test")?;
        opts.check_sizes(train.len(), test.len())?;
        let n_all = train.len();
        let val_start = n_all - opts.n_val;
        let n_train = opts.n_train.unwrap_or(val_start);
        let n_test = opts.n_test.unwrap_or(test.len());

        let train_px = &train.pixels[..n_train * IMAGE_DIM];
        let (mean, std) = feature_stats(train_px);
        let train_set = normalise(train_px, &train.labels[..n_train], &mean, &std)?;
        let val = normalise(
            &train.pixels[val_start * IMAGE_DIM..],
            &train.labels[val_start..],
            &mean,
            &std,
        )?;
        let test_set = normalise(
            &test.pixels[..n_test * IMAGE_DIM],
            &test.labels[..n_test],
            &mean,
            &std,
        )?;
        Ok(Cifar10 {
            train: train_set,
            val,
            test: test_set,
            mean,
            std,
        })
    }
}

fn check_raw(raw: &RawImages, which: &str) -> Result<()> {
    if raw.pixels.len() != raw.labels.len() * IMAGE_DIM {
        return Err(Error::Shape(format!(
            "{which} images: {} pixel bytes for {} labels, expected {} per image",
            raw.pixels.len(),
            raw.labels.len(),
            IMAGE_DIM
        )));
    }
    Ok(())
}

/// Images per parallel work item.
const CHUNK_IMAGES: usize = 256;

/// Per-feature mean and population standard deviation of images given as raw bytes
/// (`n * IMAGE_DIM` of them), on the `[0, 1]` scale (bytes / 255).
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
/// let (mean, std) = feature_stats(&px);
/// assert_eq!((mean[0], std[0]), (0.5, 0.5));
/// assert_eq!((mean[1], std[1]), (0.0, 1.0));
/// ```
///
/// **Panics** if `pixels.len()` is not a multiple of [`IMAGE_DIM`].
pub fn feature_stats(pixels: &[u8]) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(pixels.len() % IMAGE_DIM, 0, "pixels of whole images");
    let n = pixels.len() / IMAGE_DIM;
    // Per chunk (at most 256 images), u32 sums cannot overflow: 256 * 255^2 < 2^32.
    let (sum, sumsq) = pixels
        .par_chunks(CHUNK_IMAGES * IMAGE_DIM)
        .map(|chunk| {
            let mut s = vec![0u32; IMAGE_DIM];
            let mut q = vec![0u32; IMAGE_DIM];
            for img in chunk.chunks_exact(IMAGE_DIM) {
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
            || (vec![0u64; IMAGE_DIM], vec![0u64; IMAGE_DIM]),
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
/// `(byte / 255 - mean[j]) / std[j]`, computed in `f64` (as `byte * (1 / (255 std[j])) -
/// mean[j] / std[j]`, equal up to f64 rounding) and rounded to `T`.
///
/// Errors: [`Error::Shape`] if `pixels` is not `labels.len() * IMAGE_DIM` bytes or `mean` and
/// `std` are not [`IMAGE_DIM`] long; [`Error::Shape`] from [`Dataset::new`] if a label is not
/// below 10.
pub fn normalise<T: Scalar>(
    pixels: &[u8],
    labels: &[u8],
    mean: &[f64],
    std: &[f64],
) -> Result<Dataset<T>> {
    let n = labels.len();
    if pixels.len() != n * IMAGE_DIM || mean.len() != IMAGE_DIM || std.len() != IMAGE_DIM {
        return Err(Error::Shape(format!(
            "normalise: {} pixel bytes, {n} labels, {} means and {} stds; expected {} bytes \
             and {IMAGE_DIM} of each statistic",
            pixels.len(),
            mean.len(),
            std.len(),
            n * IMAGE_DIM
        )));
    }
    // (p / 255 - m) / s = p * scale + shift, with one multiply-add per value instead of a
    // division; the two agree to within a few f64 rounding errors.
    let scale: Vec<f64> = std.iter().map(|&s| 1.0 / (255.0 * s)).collect();
    let shift: Vec<f64> = mean.iter().zip(std).map(|(&m, &s)| -m / s).collect();
    let mut x = Array2::<T>::zeros((n, IMAGE_DIM));
    if let Some(out) = x.as_slice_mut() {
        out.par_chunks_mut(CHUNK_IMAGES * IMAGE_DIM)
            .zip(pixels.par_chunks(CHUNK_IMAGES * IMAGE_DIM))
            .for_each(|(out, px)| {
                for (o_img, p_img) in out
                    .chunks_exact_mut(IMAGE_DIM)
                    .zip(px.chunks_exact(IMAGE_DIM))
                {
                    for (((o, &p), &a), &b) in o_img.iter_mut().zip(p_img).zip(&scale).zip(&shift) {
                        *o = T::of(p as f64 * a + b);
                    }
                }
            });
    }
    let y = labels.iter().map(|&l| l as usize).collect();
    Dataset::new(x, y, NUM_CLASSES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(n: usize, seed: usize) -> RawImages {
        RawImages {
            pixels: (0..n * IMAGE_DIM)
                .map(|i| ((i * 2_654_435_761 + seed) >> 7) as u8)
                .collect(),
            labels: (0..n).map(|i| ((i + seed) % 10) as u8).collect(),
        }
    }

    #[test]
    fn stats_match_a_direct_two_pass_computation() {
        let r = raw(700, 3);
        let (mean, std) = feature_stats(&r.pixels);
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
        let d = Cifar10::<f32>::from_raw(&train, &test, &opts).unwrap();
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
        let (mean, std) = feature_stats(&train.pixels[..5 * IMAGE_DIM]);
        assert_eq!((d.mean.clone(), d.std.clone()), (mean, std));
        let j = 100;
        let want = (train.image(25)[j] as f64 / 255.0 - d.mean[j]) / d.std[j];
        assert!((d.val.x[[5, j]] as f64 - want).abs() < 1e-6);
    }

    #[test]
    fn sizes_are_checked_against_the_images() {
        let train = raw(30, 1);
        let test = raw(7, 2);
        let err = |o: LoadOptions| Cifar10::<f64>::from_raw(&train, &test, &o).unwrap_err();
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
