//! [`Dataset`]: images as rows of a matrix, with their labels.

use ndarray::{s, Array2, ArrayView2};

use crate::{Error, Result, Scalar};

/// Images stored as rows (one image = one contiguous row of `dim` features), with labels.
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
}

impl<T: Scalar> Dataset<T> {
    /// A data set from rows `x` and labels `y`.
    ///
    /// Fails if the number of rows and labels differ or a label is not below `classes`.
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
        Ok(Dataset { x, y, classes })
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
        }
    }

    /// The features as a view.
    pub fn features(&self) -> ArrayView2<'_, T> {
        self.x.view()
    }
}
