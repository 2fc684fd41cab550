//! Fully connected layer `y = x Wᵀ + b`.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::{Param, ParamKind};
use crate::linalg::{aligned, matmul_nn, matmul_nt, matmul_tn, sgd_step_tn, zeros_aligned};
use crate::train::SgdRule;
use crate::Scalar;

/// A fully connected layer, `y = x Wᵀ + b`, with `W` of shape (out, in) as in the report.
///
/// The bias is optional: a linear layer followed directly by batch normalization has none,
/// because BN's `beta` plays its role (its gradient would be exactly zero).
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::layers::Linear;
/// let mut l = Linear::from_weights(array![[1.0f64, 2.0], [0.0, -1.0]], Some(array![0.5, 0.0]));
/// let y = l.forward(array![[1.0, 1.0]].view());
/// assert_eq!(y, array![[3.5, -1.0]]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Linear<T> {
    /// Weights, shape (out, in).
    pub w: Array2<T>,
    /// Bias, shape (out), if any.
    pub b: Option<Array1<T>>,
    /// Gradient of the cost with respect to `w` from the last backward pass.
    pub dw: Array2<T>,
    /// Gradient with respect to `b`.
    pub db: Option<Array1<T>>,
}

impl<T: Scalar> Linear<T> {
    /// A layer with the given weights (out, in) and optional bias (out); gradients start at zero.
    /// The weights and their gradient are stored cache-line aligned
    /// ([`crate::linalg::aligned`]), which the products are faster with.
    ///
    /// **Panics** if the bias length differs from the number of weight rows.
    pub fn from_weights(w: Array2<T>, b: Option<Array1<T>>) -> Self {
        if let Some(b) = &b {
            assert_eq!(b.len(), w.nrows(), "bias length must equal output features");
        }
        Linear {
            dw: zeros_aligned(w.dim()),
            db: b.as_ref().map(|b| Array1::zeros(b.len())),
            w: aligned(w),
            b,
        }
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.w.ncols()
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.w.nrows()
    }

    /// `x Wᵀ + b`.
    ///
    /// # Shapes
    /// `x`: (batch, in) → (batch, out).
    pub fn forward(&mut self, x: ArrayView2<T>) -> Array2<T> {
        // On a cache line, as the next layer's product reads it (see `zeros_aligned`).
        let mut y = zeros_aligned((x.nrows(), self.out_features()));
        if let Some(b) = &self.b {
            y.assign(b);
        }
        matmul_nt(x, self.w.view(), y.view_mut(), self.b.is_some());
        y
    }

    /// Stores `dW = dyᵀ x` and `db = Σ dy`; returns `dx = dy W` if asked.
    ///
    /// # Shapes
    /// `x`: (batch, in), `dy`: (batch, out) → (batch, in).
    pub fn backward(
        &mut self,
        x: ArrayView2<T>,
        dy: ArrayView2<T>,
        need_dx: bool,
    ) -> Option<Array2<T>> {
        matmul_tn(dy, x, self.dw.view_mut());
        self.store_db(dy);
        need_dx.then(|| {
            let mut dx = zeros_aligned((dy.nrows(), self.in_features()));
            matmul_nn(dy, self.w.view(), dx.view_mut());
            dx
        })
    }

    /// The backward pass of a first layer (no `dx`) with the SGD step of `W` done on the way
    /// ([`sgd_step_tn`]): true if so, `dW` then left as it was; false if that kernel does not
    /// apply, `dW` then stored as by [`Linear::backward`] and `W` untouched. `db` is stored
    /// either way.
    pub(crate) fn backward_sgd(
        &mut self,
        x: ArrayView2<T>,
        dy: ArrayView2<T>,
        rule: &SgdRule<T>,
    ) -> bool {
        if !sgd_step_tn(dy, x, self.w.view_mut(), rule.eta, rule.decay) {
            self.backward(x, dy, false);
            return false;
        }
        self.store_db(dy);
        true
    }

    /// Stores `db = Σ dy`, if the layer has a bias.
    fn store_db(&mut self, dy: ArrayView2<T>) {
        if let Some(db) = &mut self.db {
            *db = dy.sum_axis(Axis(0));
        }
    }

    /// `W` and, if present, `b`, with their gradients.
    pub fn params_mut(&mut self) -> Vec<Param<'_, T>> {
        let mut out = vec![Param {
            kind: ParamKind::Weight,
            value: self.w.as_slice_mut().expect("weights are contiguous"),
            grad: self.dw.as_slice().expect("gradients are contiguous"),
        }];
        if let (Some(b), Some(db)) = (&mut self.b, &self.db) {
            out.push(Param {
                kind: ParamKind::Bias,
                value: b.as_slice_mut().expect("bias is contiguous"),
                grad: db.as_slice().expect("gradients are contiguous"),
            });
        }
        out
    }
}
