//! Rectified linear unit `max(0, x)`.

use ndarray::{Array2, ArrayView2, Zip};

use crate::linalg::zeros_aligned;
use crate::Scalar;

/// `y = max(0, x)`, elementwise. No parameters.
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::layers::Relu;
/// assert_eq!(Relu.forward(array![[-1.0f32, 2.0]].view()), array![[0.0, 2.0]]);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relu;

impl Relu {
    /// `max(0, x)`.
    ///
    /// # Shapes
    /// `x`: (batch, n) → (batch, n).
    pub fn forward<T: Scalar>(&self, x: ArrayView2<T>) -> Array2<T> {
        // On a cache line, as the next layer's product reads it (see `zeros_aligned`).
        let mut y = zeros_aligned(x.dim());
        Zip::from(&mut y)
            .and(&x)
            .for_each(|y, &v| *y = if v > T::zero() { v } else { T::zero() });
        y
    }

    /// `dx = dy` where the output was positive, 0 elsewhere (computed in place in `dy`).
    ///
    /// # Shapes
    /// `output`, `dy`: (batch, n) → (batch, n).
    pub fn backward<T: Scalar>(
        &self,
        output: ArrayView2<T>,
        mut dy: Array2<T>,
        need_dx: bool,
    ) -> Option<Array2<T>> {
        need_dx.then(|| {
            // A select rather than a conditional store, so that it vectorises (a NaN output
            // keeps its gradient, as `y <= 0` is false for it).
            Zip::from(&mut dy).and(&output).for_each(|d, &y| {
                *d = if y <= T::zero() { T::zero() } else { *d };
            });
            dy
        })
    }
}
