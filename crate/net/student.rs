//! [`Student`]: a student's layer functions, plugged into a [`Network`] in place of klayer's
//! linear or batch-norm arithmetic, so that the network trains with the student's code.

use std::sync::Arc;

use ndarray::{Array1, Array2};

use super::Network;
use crate::exercise::guard;
use crate::layers::{BnBackwardFn, BnForwardFn, LinearBackwardFn, LinearForwardFn};
use crate::layers::{Layer, Mode, StudentLayer};
use crate::{Error, Result, Scalar};

/// A student's functions for a linear layer and/or a BN layer, in the signatures of
/// [`crate::exercise`]'s checkers (plain `f64` ndarrays, one example per row).
///
/// [`Network::with_student`] puts them into a network, which then trains with
/// [`crate::train::train`] as usual: the optimizer, the L2 term, the BN statistics (the EMA
/// and PreciseBN use the mean and variance the student's BN forward returns; Adaptive BN
/// recomputes them) and the gradient check all work on it. A `Network<f32>` works too (values
/// are converted to `f64` for each call); with the reference solutions, a training run gives the
/// built-in layers' history to round-off.
///
/// # Example
/// ```
/// use ndarray::{Array1, Array2, Axis};
/// use klayer::net::{NetConfig, Student};
/// fn forward(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> Array2<f64> {
///     x.dot(&w.t()) + b
/// }
/// fn backward(x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>) -> (Array2<f64>, Array2<f64>, Array1<f64>) {
///     (dy.dot(w), dy.t().dot(x), dy.sum_axis(Axis(0)))
/// }
/// let net = NetConfig::new(&[8]).input(5).classes(3).build::<f64>().unwrap();
/// let mine = net.with_student(&Student::new().linear(forward, backward)).unwrap();
/// assert_eq!(mine.describe(), "Yours: Linear(5→8, no bias) → BatchNorm(8) → Relu → Yours: Linear(8→3)");
/// ```
#[derive(Clone, Default)]
pub struct Student {
    linear: Option<(LinearForwardFn, LinearBackwardFn)>,
    batch_norm: Option<(BnForwardFn, BnBackwardFn)>,
}

impl std::fmt::Debug for Student {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Student")
            .field("linear", &self.linear.is_some())
            .field("batch_norm", &self.batch_norm.is_some())
            .finish()
    }
}

impl Student {
    /// No functions yet: plugging it in changes nothing.
    pub fn new() -> Self {
        Student::default()
    }

    /// Uses `forward(x, W, b) → x Wᵀ + b` and `backward(x, W, dy) → (dx, dW, db)` for every
    /// linear layer.
    pub fn linear<F, B>(mut self, forward: F, backward: B) -> Self
    where
        F: Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>) -> Array2<f64> + Send + Sync + 'static,
        B: Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>) -> (Array2<f64>, Array2<f64>, Array1<f64>)
            + Send
            + Sync
            + 'static,
    {
        self.linear = Some((Arc::new(forward), Arc::new(backward)));
        self
    }

    /// Uses `forward(x, γ, β, ε) → (y, μ, σ²)` and `backward(dy, x, γ, ε) → (dx, dγ, dβ)` for
    /// every batch-norm layer in training mode.
    pub fn batch_norm<F, B>(mut self, forward: F, backward: B) -> Self
    where
        F: Fn(
                &Array2<f64>,
                &Array1<f64>,
                &Array1<f64>,
                f64,
            ) -> (Array2<f64>, Array1<f64>, Array1<f64>)
            + Send
            + Sync
            + 'static,
        B: Fn(
                &Array2<f64>,
                &Array2<f64>,
                &Array1<f64>,
                f64,
            ) -> (Array2<f64>, Array1<f64>, Array1<f64>)
            + Send
            + Sync
            + 'static,
    {
        self.batch_norm = Some((Arc::new(forward), Arc::new(backward)));
        self
    }

    /// The layer that replaces `layer`, if the student has functions for its kind.
    fn replace<T: Scalar>(&self, layer: &Layer<T>) -> Option<StudentLayer<T>> {
        match (layer, &self.linear, &self.batch_norm) {
            (Layer::Linear(l), Some((f, b)), _) => {
                Some(StudentLayer::linear(l.clone(), f.clone(), b.clone()))
            }
            (Layer::BatchNorm(bn), _, Some((f, b))) => {
                Some(StudentLayer::batch_norm(bn.clone(), f.clone(), b.clone()))
            }
            (Layer::Student(s), ..) => self.replace(&s.builtin()),
            _ => None,
        }
    }
}

/// Rows of the trial batch each student function is run on when it is plugged in.
const TRIAL_ROWS: usize = 4;

impl<T: Scalar> Network<T> {
    /// A copy of the network with the student's functions in place of the arithmetic of every
    /// linear layer (if [`Student::linear`] was given) and every BN layer (if
    /// [`Student::batch_norm`] was given); parameters, running statistics and the rest stay.
    ///
    /// Each replaced layer is first run forward and backward on a small batch: a function that
    /// panics (for example because it still holds `todo!()`), returns a wrong shape or NaN is
    /// refused here with a message, instead of failing in the middle of training.
    pub fn with_student(&self, student: &Student) -> Result<Network<T>> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            match student.replace(layer) {
                Some(s) => {
                    trial(&s, i)?;
                    layers.push(Layer::Student(s));
                }
                None => layers.push(layer.clone()),
            }
        }
        Network::new(layers, self.input_features())
    }

    /// A copy with every student layer replaced by klayer's built-in layer with the same
    /// parameters and running statistics: the reference a student's network is compared with.
    pub fn builtin(&self) -> Network<T> {
        let layers = self
            .layers
            .iter()
            .map(|l| match l {
                Layer::Student(s) => s.builtin(),
                other => other.clone(),
            })
            .collect();
        Network::new(layers, self.input_features()).expect("same shapes as before")
    }

    /// True if some layer is a student's.
    pub fn has_student_layers(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, Layer::Student(_)))
    }
}

/// Runs a copy of `layer` forward (train mode) and backward on a small deterministic batch.
fn trial<T: Scalar>(layer: &StudentLayer<T>, index: usize) -> Result<()> {
    let builtin = layer.builtin();
    let Some(width) = builtin.in_features() else {
        return Ok(());
    };
    let out = builtin.out_features(width);
    let x = Array2::from_shape_fn((TRIAL_ROWS, width), |(i, j)| {
        T::of(((i * 31 + j * 17) % 23) as f64 / 11.0 - 1.0)
    });
    let dy = Array2::from_shape_fn((TRIAL_ROWS, out), |(i, j)| {
        T::of(((i * 7 + j * 13) % 19) as f64 / 9.0 - 1.0)
    });
    let mut copy = layer.clone();
    let what = format!("layer {} ({})", index + 1, layer.describe());
    let (y, dx) = guard::call(|| {
        let y = copy.forward(x.view(), Mode::Train);
        let dx = copy.backward(x.view(), dy.clone(), true);
        (y, dx)
    })
    .map_err(|e| Error::config("student", format!("{what}: {e}")))?;
    let finite = |a: &Array2<T>| a.iter().all(|v| v.is_finite());
    if !finite(&y) || !dx.as_ref().is_none_or(finite) {
        return Err(Error::config(
            "student",
            format!("{what}: your function returned NaN or infinite values on a small test batch; run its checker in klayer::exercise"),
        ));
    }
    Ok(())
}
