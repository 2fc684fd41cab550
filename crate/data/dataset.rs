//! [`Dataset`]: images as rows of a matrix, with their labels; [`ImageShape`]: how a row is
//! laid out as an image.

use ndarray::{s, Array2, ArrayView2};

use crate::{Error, Result, Scalar};

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
#[derive(Debug, Clone, PartialEq)]
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
        let mut x = Array2::zeros((idx.len(), self.dim()));
        let mut y = Vec::with_capacity(idx.len());
        self.batch_into(idx, &mut x, &mut y);
        (x, y)
    }

    /// Like [`Dataset::batch`], writing into buffers that are reused from step to step.
    /// `x` is resized if its shape does not fit.
    pub fn batch_into(&self, idx: &[usize], x: &mut Array2<T>, y: &mut Vec<usize>) {
        if x.dim() != (idx.len(), self.dim()) {
            *x = Array2::zeros((idx.len(), self.dim()));
        }
        y.clear();
        for (mut row, &i) in x.rows_mut().into_iter().zip(idx) {
            let src = self.x.row(i);
            match (row.as_slice_mut(), src.as_slice()) {
                // A plain memcpy: several times faster than an element-wise assign.
                (Some(dst), Some(src)) => dst.copy_from_slice(src),
                _ => row.assign(&src),
            }
            y.push(self.y[i]);
        }
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
        }
    }

    /// The features as a view.
    pub fn features(&self) -> ArrayView2<'_, T> {
        self.x.view()
    }
}
