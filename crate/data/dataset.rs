//! [`Dataset`]: images as rows of a matrix, with their labels; [`ImageShape`]: how a row is
//! laid out as an image.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ndarray::{s, Array2, ArrayView2};

use crate::{Error, Result, Scalar};

/// The bytes a data set's features were normalised from, with the normalisation: feature `j`
/// of a row is `byte * scale[j] + shift[j]` in `T` ([`decode_bytes`]). A mini-batch is four
/// (f32) or eight (f64) times cheaper to gather from the bytes than from the features, and
/// gathering is bound by memory traffic.
#[derive(Clone)]
struct Bytes<T> {
    pixels: Arc<Vec<u8>>,
    scale: Arc<[T]>,
    shift: Arc<[T]>,
}

impl<T> std::fmt::Debug for Bytes<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.pixels.len())
    }
}

/// Rows per block of a gathered mini-batch (about 100 KB of CIFAR-10 images in f32): the unit
/// of [`Dataset::gather`]'s parallel work and of a shared [`crate::train::Gather`]
/// ([`Dataset::batch_blocks`]).
const GATHER_BLOCK_ROWS: usize = 8;

/// `out[j] = px[j] * scale[j] + shift[j]`, in `T`: one normalised image from its bytes (the one
/// definition [`crate::data::normalise`] and mini-batch gathering share).
pub(crate) fn decode_bytes<T: Scalar>(px: &[u8], scale: &[T], shift: &[T], out: &mut [T]) {
    // In the widest vectors (no FMA: each value is rounded as in the plain loop). In `T` rather
    // than in f64 then rounded: twice the lanes, and half the bytes of scales and shifts. The
    // next batch's gathering took 0.026–0.027 ms per step instead of 0.035–0.036 in f64
    // (`klayer bench`, in turn).
    crate::linalg::widest_vectors(
        #[inline(always)]
        || {
            for (((o, &p), &a), &b) in out.iter_mut().zip(px).zip(scale).zip(shift) {
                *o = T::of(f64::from(p)) * a + b;
            }
        },
    );
}

/// Asks the CPU to start loading `bytes` into cache (a strip of a row decoded next, from a
/// random place in a data set too large for the caches), so the loads overlap the decoding
/// before it. Asking for the next row's bytes while a row was decoded took the gathering of a
/// mini-batch from 0.073 to 0.059 ms per step, and the step to 0.94 (0.92–0.96) of its time
/// (`klayer bench` on a 2-core AMD EPYC with AVX-512, 4 runs each, in turn).
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is only a hint; the address is that of a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
}

/// The layout of an image stored as one row of features: `channels` planes of `height` rows of
/// `width` pixels, channel-major, each plane row-major (feature `c * height * width + y *
/// width + x` is channel `c` at row `y`, column `x`).
///
/// # Example
/// ```
/// use klayer::data::ImageShape;
/// assert_eq!(ImageShape::CIFAR10.dim(), 3072);
/// assert_eq!(ImageShape::FASHION_MNIST.dim(), 784);
/// assert_eq!(ImageShape::FASHION_MNIST.to_string(), "28×28×1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageShape {
    /// Rows of pixels.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
    /// Colour channels (3 for RGB, 1 for grey).
    pub channels: usize,
}

impl ImageShape {
    /// CIFAR-10: 32×32 pixels, 3 channels (red, green, blue).
    pub const CIFAR10: ImageShape = ImageShape {
        height: 32,
        width: 32,
        channels: 3,
    };
    /// Fashion-MNIST: 28×28 pixels, 1 channel (grey).
    pub const FASHION_MNIST: ImageShape = ImageShape {
        height: 28,
        width: 28,
        channels: 1,
    };

    /// Pixels of one channel: `height * width`.
    pub const fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Features per image: `channels * height * width`.
    pub const fn dim(&self) -> usize {
        self.channels * self.plane()
    }
}

impl std::fmt::Display for ImageShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.height, self.width, self.channels)
    }
}

/// Images stored as rows (one image = one contiguous row of `dim` features), with labels and,
/// for images, their [`ImageShape`] (which augmentation needs).
///
/// Rows make a mini-batch a contiguous gather of whole rows, which is what keeps a training
/// step cheap.
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::data::Dataset;
/// let d = Dataset::new(array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]], vec![0, 2, 1], 3).unwrap();
/// let (x, y) = d.batch(&[2, 0]);
/// assert_eq!(x, array![[5.0, 6.0], [1.0, 2.0]]);
/// assert_eq!(y, vec![1, 0]);
/// ```
#[derive(Debug, Clone)]
pub struct Dataset<T> {
    /// Features, shape (n, dim).
    pub x: Array2<T>,
    /// Class labels, each in `0..classes`.
    pub y: Vec<usize>,
    /// Number of classes.
    pub classes: usize,
    /// How a row is laid out as an image; `None` for features that are not images (then
    /// augmentation is refused). Set by [`Dataset::with_shape`]; the loaders set it.
    pub shape: Option<ImageShape>,
    /// The bytes `x` was normalised from, if it was ([`crate::data::normalise`]).
    bytes: Option<Bytes<T>>,
}

/// Two data sets are equal when their features, labels, classes and shapes are (whether the
/// bytes they were normalised from are kept is not part of what they are).
impl<T: PartialEq> PartialEq for Dataset<T> {
    fn eq(&self, other: &Self) -> bool {
        self.x == other.x
            && self.y == other.y
            && self.classes == other.classes
            && self.shape == other.shape
    }
}

impl<T: Scalar> Dataset<T> {
    /// A data set from rows `x` and labels `y`.
    ///
    /// Fails if the number of rows and labels differ or a label is not below `classes`. The
    /// rows have no image shape; [`Dataset::with_shape`] gives them one.
    pub fn new(x: Array2<T>, y: Vec<usize>, classes: usize) -> Result<Self> {
        if x.nrows() != y.len() {
            return Err(Error::Shape(format!(
                "{} rows of features but {} labels",
                x.nrows(),
                y.len()
            )));
        }
        if let Some((i, &l)) = y.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(Error::Shape(format!(
                "label {l} of row {i} is not below the number of classes {classes}"
            )));
        }
        Ok(Dataset {
            x,
            y,
            classes,
            shape: None,
            bytes: None,
        })
    }

    /// The same rows, laid out as images of `shape`.
    ///
    /// Fails with [`Error::Shape`] if a row does not have `shape.dim()` features.
    ///
    /// ```
    /// use klayer::data::{Dataset, ImageShape};
    /// let d = Dataset::new(ndarray::Array2::<f32>::zeros((2, 784)), vec![0, 1], 10).unwrap();
    /// assert_eq!(d.clone().with_shape(ImageShape::FASHION_MNIST).unwrap().shape, Some(ImageShape::FASHION_MNIST));
    /// assert!(d.with_shape(ImageShape::CIFAR10).is_err());
    /// ```
    pub fn with_shape(mut self, shape: ImageShape) -> Result<Self> {
        if self.dim() != shape.dim() {
            return Err(Error::Shape(format!(
                "rows of {} features cannot be {shape} images ({} features)",
                self.dim(),
                shape.dim()
            )));
        }
        self.shape = Some(shape);
        Ok(self)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True if there are no images.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Features per image.
    pub fn dim(&self) -> usize {
        self.x.ncols()
    }

    /// The rows `idx` (features and labels) as a new mini-batch.
    ///
    /// **Panics** if an index is out of range.
    pub fn batch(&self, idx: &[usize]) -> (Array2<T>, Vec<usize>) {
        let mut x = crate::linalg::zeros_aligned((idx.len(), self.dim()));
        let mut y = Vec::with_capacity(idx.len());
        self.batch_into(idx, &mut x, &mut y);
        (x, y)
    }

    /// Like [`Dataset::batch`], writing into buffers that are reused from step to step.
    /// `x` is replaced if its shape does not fit or its rows are not contiguous.
    ///
    /// A large batch is copied by all rayon threads in blocks of rows: copying rows from a data
    /// set that does not fit in cache is bound by memory latency, which several cores hide
    /// better than one.
    ///
    /// **Panics** if an index is out of range.
    pub fn batch_into(&self, idx: &[usize], x: &mut Array2<T>, y: &mut Vec<usize>) {
        self.gather(idx, x, y, None);
    }

    /// One flag per row, for [`Dataset::gather`]: all unset, or `None` if the data set keeps
    /// no bytes to decode.
    pub(crate) fn decode_flags(&self) -> Option<Vec<AtomicBool>> {
        self.bytes
            .as_ref()
            .map(|_| (0..self.len()).map(|_| AtomicBool::new(false)).collect())
    }

    /// [`Dataset::batch_into`]; with `decoded` (from [`Dataset::decode_flags`]), a row is
    /// decoded from the bytes the features were normalised from instead of copied. The first
    /// time a row is decoded it is compared with its features bit for bit and its flag set if
    /// they agree; a row that does not (its features were changed since) is copied. Either
    /// way the batch holds exactly the rows' features.
    pub(crate) fn gather(
        &self,
        idx: &[usize],
        x: &mut Array2<T>,
        y: &mut Vec<usize>,
        decoded: Option<&[AtomicBool]>,
    ) {
        use rayon::prelude::*;
        let small = idx.len() * self.dim() * std::mem::size_of::<T>() < (1 << 18);
        let blocks = self.batch_blocks(idx, x, y);
        if small {
            for (out, rows) in blocks {
                self.gather_rows(rows, out, decoded);
            }
        } else {
            blocks
                .into_par_iter()
                .for_each(|(out, rows)| self.gather_rows(rows, out, decoded));
        }
    }

    /// Makes `x` a standard-layout buffer of `idx.len()` rows (keeping it if it is one) and
    /// `y` the labels of the rows `idx`, and cuts `x` into the blocks of [`GATHER_BLOCK_ROWS`]
    /// rows that [`Dataset::gather_rows`] fills in, each with its rows of `idx`.
    pub(crate) fn batch_blocks<'b>(
        &self,
        idx: &'b [usize],
        x: &'b mut Array2<T>,
        y: &mut Vec<usize>,
    ) -> Vec<(&'b mut [T], &'b [usize])> {
        if x.dim() != (idx.len(), self.dim()) || !x.is_standard_layout() {
            *x = crate::linalg::zeros_aligned((idx.len(), self.dim()));
        }
        y.clear();
        y.extend(idx.iter().map(|&i| self.y[i]));
        let flat = x
            .as_slice_mut()
            .expect("a standard-layout array is one slice");
        flat.chunks_mut((GATHER_BLOCK_ROWS * self.dim()).max(1))
            .zip(idx.chunks(GATHER_BLOCK_ROWS))
            .collect()
    }

    /// The features of the rows `rows` into `out` (`rows.len()` rows of [`Dataset::dim`]
    /// values): copied, or, with `decoded` (see [`Dataset::gather`]), decoded from their bytes
    /// a strip of columns at a time, so that the strip's scales and shifts stay in L1 for all
    /// the rows (a whole row's are 24 KB in f32 at 3,072 columns: per row, they would come from
    /// L2), and the strip's bytes of every row are asked for one strip ahead.
    pub(crate) fn gather_rows(
        &self,
        rows: &[usize],
        out: &mut [T],
        decoded: Option<&[AtomicBool]>,
    ) {
        /// Columns per strip of rows decoded from bytes: 4 KB of f32 scales and shifts.
        const DECODE_STRIP: usize = 512;
        let dim = self.dim();
        if dim == 0 {
            return;
        }
        let copy_row = |dst: &mut [T], i: usize| match self.x.row(i).to_slice() {
            // A plain memcpy: several times faster than an element-wise assign.
            Some(src) => dst.copy_from_slice(src),
            None => dst.iter_mut().zip(self.x.row(i)).for_each(|(d, &s)| *d = s),
        };
        let Some((b, flags)) = self.bytes.as_ref().zip(decoded) else {
            for (dst, &i) in out.chunks_exact_mut(dim).zip(rows) {
                copy_row(dst, i);
            }
            return;
        };
        let strip = |s: usize| s..(s + DECODE_STRIP).min(dim);
        for &i in rows {
            prefetch(&b.pixels[i * dim..][strip(0)]);
        }
        for s in (0..dim).step_by(DECODE_STRIP) {
            let (cols, ahead) = (strip(s), s + DECODE_STRIP);
            for (dst, &i) in out.chunks_exact_mut(dim).zip(rows) {
                let px = &b.pixels[i * dim..(i + 1) * dim];
                if ahead < dim {
                    prefetch(&px[strip(ahead)]);
                }
                let (scale, shift) = (&b.scale[cols.clone()], &b.shift[cols.clone()]);
                decode_bytes(&px[cols.clone()], scale, shift, &mut dst[cols.clone()]);
            }
        }
        for (dst, &i) in out.chunks_exact_mut(dim).zip(rows) {
            if !flags[i].load(Ordering::Relaxed) {
                let same = dst
                    .iter()
                    .zip(self.x.row(i))
                    .all(|(d, s)| d.as_f64().to_bits() == s.as_f64().to_bits());
                if same {
                    flags[i].store(true, Ordering::Relaxed);
                } else {
                    copy_row(dst, i);
                }
            }
        }
    }

    /// Keeps `pixels`, whose first `len() * dim()` bytes are those the features were
    /// normalised from as `byte * scale[j] + shift[j]` ([`decode_bytes`]), so that mini-batches
    /// can be gathered from them (shared, not copied: bytes after the data set's rows, such as the
    /// validation images of the same file, are simply never read).
    pub(crate) fn keep_bytes(mut self, pixels: Arc<Vec<u8>>, scale: Vec<T>, shift: Vec<T>) -> Self {
        let dim = self.dim();
        if pixels.len() >= self.len() * dim && scale.len() == dim && shift.len() == dim {
            self.bytes = Some(Bytes {
                pixels,
                scale: scale.into(),
                shift: shift.into(),
            });
        }
        self
    }

    /// A copy of the images `start..end`.
    ///
    /// **Panics** if the range is out of bounds.
    pub fn slice(&self, start: usize, end: usize) -> Dataset<T> {
        Dataset {
            x: self.x.slice(s![start..end, ..]).to_owned(),
            y: self.y[start..end].to_vec(),
            classes: self.classes,
            shape: self.shape,
            bytes: None,
        }
    }

    /// The features as a view.
    pub fn features(&self) -> ArrayView2<'_, T> {
        self.x.view()
    }
}
