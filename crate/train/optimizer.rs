//! Update rules: plain mini-batch SGD and Adam (Kingma & Ba, 2015,
//! <https://arxiv.org/abs/1412.6980>).

use crate::net::Network;
use crate::Scalar;

/// Which update rule to use.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Optimizer {
    /// `θ ← θ − η g`.
    #[default]
    Sgd,
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `θ ← θ − η m̂ / (sqrt(v̂) + ε)` with the
    /// bias-corrected `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`.
    Adam {
        /// β₁, 0.9 by default.
        beta1: f64,
        /// β₂, 0.999 by default.
        beta2: f64,
        /// ε, 1e-8 by default.
        eps: f64,
    },
}

impl Optimizer {
    /// Adam with Kingma & Ba's defaults.
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
}

/// An optimizer with its state (Adam's moments), bound to one network's parameter layout.
#[derive(Debug, Clone)]
pub struct OptimizerState<T> {
    kind: Optimizer,
    t: i32,
    m: Vec<Vec<T>>,
    v: Vec<Vec<T>>,
}

impl<T: Scalar> OptimizerState<T> {
    /// Fresh state for `net`.
    pub fn new(kind: Optimizer, net: &mut Network<T>) -> Self {
        let sizes: Vec<usize> = net
            .params_mut()
            .iter()
            .map(|p| p.param.value.len())
            .collect();
        let zeros = || sizes.iter().map(|&n| vec![T::zero(); n]).collect();
        let adam = matches!(kind, Optimizer::Adam { .. });
        OptimizerState {
            kind,
            t: 0,
            m: if adam { zeros() } else { Vec::new() },
            v: if adam { zeros() } else { Vec::new() },
        }
    }

    /// One update of every parameter from the gradients of the last backward pass.
    pub fn step(&mut self, net: &mut Network<T>, lr: f64) {
        self.t += 1;
        let eta = T::of(lr);
        match self.kind {
            Optimizer::Sgd => {
                for p in net.params_mut() {
                    for (w, &g) in p.param.value.iter_mut().zip(p.param.grad) {
                        *w -= eta * g;
                    }
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                let (b1, b2, eps) = (T::of(beta1), T::of(beta2), T::of(eps));
                let c1 = T::of(1.0 / (1.0 - beta1.powi(self.t)));
                let c2 = T::of(1.0 / (1.0 - beta2.powi(self.t)));
                let one = T::one();
                for (i, p) in net.params_mut().into_iter().enumerate() {
                    let (m, v) = (&mut self.m[i], &mut self.v[i]);
                    for (((w, &g), m), v) in
                        p.param.value.iter_mut().zip(p.param.grad).zip(m).zip(v)
                    {
                        *m = b1 * *m + (one - b1) * g;
                        *v = b2 * *v + (one - b2) * g * g;
                        *w -= eta * (*m * c1) / ((*v * c2).sqrt() + eps);
                    }
                }
            }
        }
    }
}
