//! The building blocks of a network: [`Linear`], [`BatchNorm`], [`Relu`] and the softmax
//! cross-entropy loss, composable in any order through the [`Layer`] enum; a [`StudentLayer`]
//! puts user functions in the place of a linear or BN layer's arithmetic.
//!
//! Activations are row-major matrices of shape (batch, features). Each layer's `forward` takes
//! its input as a view; in [`Mode::Train`] it keeps what its backward pass needs.

mod batch_norm;
mod linear;
mod loss;
mod relu;
mod student;

use ndarray::{Array2, ArrayView2};

pub use batch_norm::{BatchNorm, BatchStats};
pub use linear::Linear;
pub use loss::{exp_f32, softmax, softmax_cross_entropy, LossSums};
pub use relu::Relu;
pub use student::{BnBackwardFn, BnForwardFn, LinearBackwardFn, LinearForwardFn, StudentLayer};

use crate::Scalar;

/// Training or evaluation: the one argument that decides how batch normalization behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normalise with the statistics of the batch itself and keep what backward needs.
    Train,
    /// Normalise with the layer's stored statistics; nothing is kept.
    Eval,
}

/// What a parameter tensor is; decides whether L2 regularisation applies (weights only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ParamKind {
    /// A weight matrix `W` (regularised).
    Weight,
    /// A bias vector `b`.
    Bias,
    /// A BN scale `gamma`.
    Gamma,
    /// A BN shift `beta`.
    Beta,
}

impl ParamKind {
    /// The symbol used in tensor names: `W`, `b`, `gamma`, `beta`.
    pub fn symbol(self) -> &'static str {
        match self {
            ParamKind::Weight => "W",
            ParamKind::Bias => "b",
            ParamKind::Gamma => "gamma",
            ParamKind::Beta => "beta",
        }
    }
}

/// One parameter tensor with its gradient, both as flat slices.
#[derive(Debug)]
pub struct Param<'a, T> {
    /// What it is.
    pub kind: ParamKind,
    /// Its values (row-major).
    pub value: &'a mut [T],
    /// The gradient from the last backward pass, same layout.
    pub grad: &'a [T],
}

/// A layer of a network.
// A network holds a handful of layers and never moves them in a hot loop: boxing BatchNorm to
// even out the variants' sizes would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Layer<T> {
    /// Fully connected.
    Linear(Linear<T>),
    /// Batch normalization.
    BatchNorm(BatchNorm<T>),
    /// Rectified linear unit.
    Relu(Relu),
    /// A linear or batch-norm layer computed by user functions (a student's).
    Student(StudentLayer<T>),
}

impl<T: Scalar> Layer<T> {
    /// Forward pass.
    ///
    /// # Shapes
    /// `x`: (batch, in) → (batch, out).
    pub fn forward(&mut self, x: ArrayView2<T>, mode: Mode) -> Array2<T> {
        match self {
            Layer::Linear(l) => l.forward(x),
            Layer::BatchNorm(l) => l.forward(x, mode),
            Layer::Relu(l) => l.forward(x),
            Layer::Student(l) => l.forward(x, mode),
        }
    }

    /// Backward pass after a [`Mode::Train`] forward: stores the parameter gradients and,
    /// if `need_dx`, returns the gradient with respect to the input.
    ///
    /// `input` and `output` are this layer's input and output of that forward pass.
    ///
    /// # Shapes
    /// `input`: (batch, in), `output` and `dy`: (batch, out) → (batch, in).
    pub fn backward(
        &mut self,
        input: ArrayView2<T>,
        output: ArrayView2<T>,
        dy: Array2<T>,
        need_dx: bool,
    ) -> Option<Array2<T>> {
        match self {
            Layer::Linear(l) => l.backward(input, dy.view(), need_dx),
            Layer::BatchNorm(l) => l.backward(dy, need_dx),
            Layer::Relu(l) => l.backward(output, dy, need_dx),
            Layer::Student(l) => l.backward(input, dy, need_dx),
        }
    }

    /// The layer's parameter tensors with their gradients.
    pub fn params_mut(&mut self) -> Vec<Param<'_, T>> {
        match self {
            Layer::Linear(l) => l.params_mut(),
            Layer::BatchNorm(l) => l.params_mut(),
            Layer::Relu(_) => Vec::new(),
            Layer::Student(l) => l.params_mut(),
        }
    }

    /// Output features for `input` input features.
    pub fn out_features(&self, input: usize) -> usize {
        self.as_linear().map_or(input, Linear::out_features)
    }

    /// Input features this layer requires, if it fixes them (ReLU takes any).
    pub fn in_features(&self) -> Option<usize> {
        match (self.as_linear(), self.as_batch_norm()) {
            (Some(l), _) => Some(l.in_features()),
            (_, Some(b)) => Some(b.features()),
            _ => None,
        }
    }

    /// The batch-norm layer inside, if this is one (built-in, or a student's holding its
    /// parameters and running statistics).
    pub fn as_batch_norm_mut(&mut self) -> Option<&mut BatchNorm<T>> {
        match self {
            Layer::BatchNorm(bn) => Some(bn),
            Layer::Student(s) => s.as_batch_norm_mut(),
            _ => None,
        }
    }

    /// The batch-norm layer inside, if this is one (see [`Layer::as_batch_norm_mut`]).
    pub fn as_batch_norm(&self) -> Option<&BatchNorm<T>> {
        match self {
            Layer::BatchNorm(bn) => Some(bn),
            Layer::Student(s) => s.as_batch_norm(),
            _ => None,
        }
    }

    /// The linear layer inside, if this is one (built-in, or a student's holding its weights).
    pub fn as_linear(&self) -> Option<&Linear<T>> {
        match self {
            Layer::Linear(l) => Some(l),
            Layer::Student(s) => s.as_linear(),
            _ => None,
        }
    }

    /// The linear layer inside, mutably, if this is one (see [`Layer::as_linear`]).
    pub fn as_linear_mut(&mut self) -> Option<&mut Linear<T>> {
        match self {
            Layer::Linear(l) => Some(l),
            Layer::Student(s) => s.as_linear_mut(),
            _ => None,
        }
    }

    /// A short name: `Linear(3072→50)`, `BatchNorm(50)`, `Relu`.
    pub fn describe(&self) -> String {
        match self {
            Layer::Linear(l) => format!(
                "Linear({}→{}{})",
                l.in_features(),
                l.out_features(),
                if l.b.is_some() { "" } else { ", no bias" }
            ),
            Layer::BatchNorm(b) => format!("BatchNorm({})", b.features()),
            Layer::Relu(_) => "Relu".to_string(),
            Layer::Student(s) => s.describe(),
        }
    }
}
