//! Rectified linear unit `max(0, x)`.

use ndarray::{Array2, ArrayView2, Zip};

use crate::linalg::{widest_vectors, zeros_aligned};
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
        let relu = |y: &mut T, &v: &T| *y = if v > T::zero() { v } else { T::zero() };
        match (y.as_slice_mut(), x.as_slice()) {
            // In the widest vectors: ndarray's Zip is compiled for 4-lane SSE.
            (Some(ys), Some(xs)) => widest_vectors(
                #[inline(always)]
                || ys.iter_mut().zip(xs).for_each(|(y, v)| relu(y, v)),
            ),
            _ => Zip::from(&mut y).and(&x).for_each(relu),
        }
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
            let gate = |d: &mut T, &y: &T| *d = if y <= T::zero() { T::zero() } else { *d };
            match (dy.as_slice_mut(), output.as_slice()) {
                (Some(ds), Some(ys)) => widest_vectors(
                    #[inline(always)]
                    || ds.iter_mut().zip(ys).for_each(|(d, y)| gate(d, y)),
                ),
                _ => Zip::from(&mut dy).and(&output).for_each(gate),
            }
            dy
        })
    }
}
