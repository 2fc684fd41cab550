//! [`StudentLayer`]: a linear or batch-norm layer whose arithmetic is done by plain `f64` ndarray
//! functions (a student's, written in a notebook cell), with klayer's layer holding its
//! parameters, gradients and (for BN) running statistics.
//!
//! The functions take and return the crate's row convention: `x` is (n, d), one example per row,
//! `W` is (m, d), scores `x Wᵀ + b` are (n, m). In a `Network<f32>` the values are converted to
//! `f64` for the call and back.

use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayView2, Dimension};

use super::{BatchNorm, BatchStats, Layer, Linear, Mode, Param};
use crate::Scalar;

/// A linear layer's forward pass: `(x, W, b) ↦ x Wᵀ + b`, shapes (n, d), (m, d), (m) → (n, m).
pub type LinearForwardFn =
    Arc<dyn Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>) -> Array2<f64> + Send + Sync>;

/// A linear layer's backward pass: `(x, W, dy) ↦ (dx, dW, db)` with `dy = ∂J/∂scores` of shape
/// (n, m): `dx` (n, d), `dW` (m, d), `db` (m).
pub type LinearBackwardFn = Arc<
    dyn Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>) -> (Array2<f64>, Array2<f64>, Array1<f64>)
        + Send
        + Sync,
>;

/// BN's forward pass in training mode: `(x, γ, β, ε) ↦ (y, μ, σ²)` with the batch mean `μ` and
/// biased variance `σ²` per feature; shapes (n, d), (d), (d) → (n, d), (d), (d).
pub type BnForwardFn = Arc<
    dyn Fn(&Array2<f64>, &Array1<f64>, &Array1<f64>, f64) -> (Array2<f64>, Array1<f64>, Array1<f64>)
        + Send
        + Sync,
>;

/// BN's backward pass in training mode: `(dy, x, γ, ε) ↦ (dx, dγ, dβ)`, where `x` is the input
/// of the forward pass; shapes (n, d), (n, d), (d) → (n, d), (d), (d).
pub type BnBackwardFn = Arc<
    dyn Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>, f64) -> (Array2<f64>, Array1<f64>, Array1<f64>)
        + Send
        + Sync,
>;

/// What a [`StudentLayer`] is, with the functions that compute it.
// Never moved in a hot loop, like `Layer` itself.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Kind<T> {
    Linear {
        layer: Linear<T>,
        forward: LinearForwardFn,
        backward: LinearBackwardFn,
    },
    BatchNorm {
        layer: BatchNorm<T>,
        forward: BnForwardFn,
        backward: BnBackwardFn,
        /// The input of the last training-mode forward pass, for the backward pass.
        input: Option<Array2<f64>>,
    },
}

/// A linear or batch-norm layer computed by user functions (see the module docs). It holds a
/// klayer [`Linear`] or [`BatchNorm`] for the parameters, their gradients and BN's running
/// statistics, so the optimizers, the BN statistics (EMA, PreciseBN, Adaptive BN), the L2 term
/// and the gradient check treat it like the built-in layer. In [`Mode::Eval`] a BN layer
/// normalises with the running statistics by klayer's formula.
///
/// A function that returns an output of the wrong shape stops the pass with a panic whose
/// message names the function and both shapes; [`crate::net::Student`] checks every function
/// once when it is plugged in, so that this does not happen in the middle of training.
#[derive(Clone)]
pub struct StudentLayer<T> {
    kind: Kind<T>,
}

fn to_f64<T: Scalar, D: Dimension>(
    a: &ndarray::ArrayBase<impl ndarray::Data<Elem = T>, D>,
) -> ndarray::Array<f64, D> {
    a.mapv(|v| v.as_f64())
}

fn from_f64<T: Scalar, D: Dimension>(a: ndarray::Array<f64, D>) -> ndarray::Array<T, D> {
    a.mapv(T::of)
}

/// Panics with a message naming `what` if `got` is not `want` (see [`StudentLayer`]).
fn expect_shape(what: &str, got: &[usize], want: &[usize]) {
    assert!(
        got == want,
        "{what} returned shape {got:?}, expected {want:?} (run its checker in klayer::exercise)"
    );
}

impl<T: Scalar> StudentLayer<T> {
    /// A linear layer computed by `forward` and `backward`, starting from `layer`'s weights.
    /// A layer without bias passes zeros as `b` and ignores the returned `db`.
    pub fn linear(layer: Linear<T>, forward: LinearForwardFn, backward: LinearBackwardFn) -> Self {
        StudentLayer {
            kind: Kind::Linear {
                layer,
                forward,
                backward,
            },
        }
    }

    /// A batch-norm layer computed by `forward` and `backward` in training mode, starting from
    /// `layer`'s γ, β, ε and running statistics.
    pub fn batch_norm(layer: BatchNorm<T>, forward: BnForwardFn, backward: BnBackwardFn) -> Self {
        StudentLayer {
            kind: Kind::BatchNorm {
                layer,
                forward,
                backward,
                input: None,
            },
        }
    }

    /// The built-in layer inside, with the current parameters (and running statistics), as a
    /// [`Layer`].
    pub fn builtin(&self) -> Layer<T> {
        match &self.kind {
            Kind::Linear { layer, .. } => Layer::Linear(layer.clone()),
            Kind::BatchNorm { layer, .. } => Layer::BatchNorm(layer.clone()),
        }
    }

    /// The same functions around another built-in layer of the same kind (used by
    /// [`crate::net::Network::cast`]). Returns `None` if `layer` is of another kind.
    pub fn with_builtin<U: Scalar>(&self, layer: Layer<U>) -> Option<StudentLayer<U>> {
        match (&self.kind, layer) {
            (
                Kind::Linear {
                    forward, backward, ..
                },
                Layer::Linear(l),
            ) => Some(StudentLayer::linear(l, forward.clone(), backward.clone())),
            (
                Kind::BatchNorm {
                    forward, backward, ..
                },
                Layer::BatchNorm(b),
            ) => Some(StudentLayer::batch_norm(
                b,
                forward.clone(),
                backward.clone(),
            )),
            _ => None,
        }
    }

    /// The linear layer inside, if this is one.
    pub fn as_linear(&self) -> Option<&Linear<T>> {
        match &self.kind {
            Kind::Linear { layer, .. } => Some(layer),
            Kind::BatchNorm { .. } => None,
        }
    }

    /// The linear layer inside, mutably, if this is one.
    pub fn as_linear_mut(&mut self) -> Option<&mut Linear<T>> {
        match &mut self.kind {
            Kind::Linear { layer, .. } => Some(layer),
            Kind::BatchNorm { .. } => None,
        }
    }

    /// The batch-norm layer inside, if this is one.
    pub fn as_batch_norm(&self) -> Option<&BatchNorm<T>> {
        match &self.kind {
            Kind::BatchNorm { layer, .. } => Some(layer),
            Kind::Linear { .. } => None,
        }
    }

    /// The batch-norm layer inside, mutably, if this is one (its running statistics are what
    /// [`crate::bn_stats`] updates).
    pub fn as_batch_norm_mut(&mut self) -> Option<&mut BatchNorm<T>> {
        match &mut self.kind {
            Kind::BatchNorm { layer, .. } => Some(layer),
            Kind::Linear { .. } => None,
        }
    }

    /// Forward pass through the user's function ([`Mode::Train`], or always for a linear
    /// layer); a BN layer in [`Mode::Eval`] uses its running statistics. In [`Mode::Train`] a BN
    /// layer records the returned mean and variance as the batch statistics for the running
    /// averages.
    ///
    /// # Shapes
    /// `x`: (batch, in) → (batch, out).
    pub fn forward(&mut self, x: ArrayView2<T>, mode: Mode) -> Array2<T> {
        match &mut self.kind {
            Kind::Linear { layer, forward, .. } => {
                let b = layer
                    .b
                    .as_ref()
                    .map_or_else(|| Array1::zeros(layer.out_features()), to_f64);
                let y = forward(&to_f64(&x), &to_f64(&layer.w), &b);
                expect_shape(
                    "your linear forward",
                    y.shape(),
                    &[x.nrows(), layer.out_features()],
                );
                from_f64(y)
            }
            Kind::BatchNorm {
                layer,
                forward,
                input,
                ..
            } => match mode {
                Mode::Eval => layer.forward(x, Mode::Eval),
                Mode::Train => {
                    let x64 = to_f64(&x);
                    let d = layer.features();
                    let (y, mean, var) = forward(
                        &x64,
                        &to_f64(&layer.gamma),
                        &to_f64(&layer.beta),
                        layer.eps.as_f64(),
                    );
                    expect_shape("your BN forward (y)", y.shape(), x.shape());
                    expect_shape("your BN forward (mean)", mean.shape(), &[d]);
                    expect_shape("your BN forward (variance)", var.shape(), &[d]);
                    layer.last_batch = Some(BatchStats {
                        count: x.nrows(),
                        mean: from_f64(mean),
                        var: from_f64(var),
                    });
                    *input = Some(x64);
                    from_f64(y)
                }
            },
        }
    }

    /// Backward pass through the user's function after a [`Mode::Train`] forward: stores the
    /// parameter gradients, returns `dx` if `need_dx`.
    ///
    /// **Panics** if a BN layer had no [`Mode::Train`] forward pass before.
    ///
    /// # Shapes
    /// `input`: (batch, in), `dy`: (batch, out) → (batch, in).
    pub fn backward(
        &mut self,
        input: ArrayView2<T>,
        dy: Array2<T>,
        need_dx: bool,
    ) -> Option<Array2<T>> {
        match &mut self.kind {
            Kind::Linear {
                layer, backward, ..
            } => {
                let (dx, dw, db) = backward(&to_f64(&input), &to_f64(&layer.w), &to_f64(&dy));
                expect_shape("your linear backward (dW)", dw.shape(), layer.w.shape());
                layer.dw = from_f64(dw);
                if let Some(grad) = &mut layer.db {
                    expect_shape("your linear backward (db)", db.shape(), grad.shape());
                    *grad = from_f64(db);
                }
                need_dx.then(|| {
                    expect_shape("your linear backward (dx)", dx.shape(), input.shape());
                    from_f64(dx)
                })
            }
            Kind::BatchNorm {
                layer,
                backward,
                input: saved,
                ..
            } => {
                let x = saved
                    .as_ref()
                    .expect("a BN backward pass needs a Mode::Train forward first");
                let (dx, dgamma, dbeta) =
                    backward(&to_f64(&dy), x, &to_f64(&layer.gamma), layer.eps.as_f64());
                let d = layer.features();
                expect_shape("your BN backward (dgamma)", dgamma.shape(), &[d]);
                expect_shape("your BN backward (dbeta)", dbeta.shape(), &[d]);
                layer.dgamma = from_f64(dgamma);
                layer.dbeta = from_f64(dbeta);
                need_dx.then(|| {
                    expect_shape("your BN backward (dx)", dx.shape(), dy.shape());
                    from_f64(dx)
                })
            }
        }
    }

    /// The parameters with their gradients, as the built-in layer gives them.
    pub fn params_mut(&mut self) -> Vec<Param<'_, T>> {
        match &mut self.kind {
            Kind::Linear { layer, .. } => layer.params_mut(),
            Kind::BatchNorm { layer, .. } => layer.params_mut(),
        }
    }

    /// `Yours: Linear(3072→50)`, `Yours: BatchNorm(50)`.
    pub fn describe(&self) -> String {
        format!("Yours: {}", self.builtin().describe())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for StudentLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Linear { layer, .. } => f.debug_tuple("StudentLayer").field(layer).finish(),
            Kind::BatchNorm { layer, .. } => f.debug_tuple("StudentLayer").field(layer).finish(),
        }
    }
}

/// Equal when the built-in layers are equal and the functions are the same ones.
impl<T: PartialEq> PartialEq for StudentLayer<T> {
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (
                Kind::Linear {
                    layer: a,
                    forward: fa,
                    backward: ba,
                },
                Kind::Linear {
                    layer: b,
                    forward: fb,
                    backward: bb,
                },
            ) => a == b && Arc::ptr_eq(fa, fb) && Arc::ptr_eq(ba, bb),
            (
                Kind::BatchNorm {
                    layer: a,
                    forward: fa,
                    backward: ba,
                    input: ia,
                },
                Kind::BatchNorm {
                    layer: b,
                    forward: fb,
                    backward: bb,
                    input: ib,
                },
            ) => a == b && Arc::ptr_eq(fa, fb) && Arc::ptr_eq(ba, bb) && ia == ib,
            _ => false,
        }
    }
}
