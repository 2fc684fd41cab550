//! Update rules: plain mini-batch SGD and Adam (Kingma & Ba, 2015,
//! <https://arxiv.org/abs/1412.6980>).

use std::time::{Duration, Instant};

use ndarray::ArrayView2;

use crate::layers::ParamKind;
use crate::net::{Network, StepPhases};
use crate::{Result, Scalar};

/// Applies `f` to matching blocks of `value`, `grad` and the optimizer's `state` for each
/// element (Adam's two moments; `()` for SGD), on all rayon threads when the tensor is large
/// (the first layer's weights), else in one call; either way in the widest vectors the CPU
/// has ([`crate::linalg::widest_vectors`]: Adam's update of the default net took 0.039 ms per
/// step instead of 0.080 in 4-lane SSE on one thread).
fn for_each_block<T: Scalar, S: Send>(
    value: &mut [T],
    grad: &[T],
    state: &mut [S],
    f: impl Fn(&mut [T], &[T], &mut [S]) + Sync,
) {
    use rayon::prelude::*;
    /// Elements per block: 64 KB of f32.
    const BLOCK: usize = 1 << 14;
    let f = |v: &mut [T], g: &[T], s: &mut [S]| {
        crate::linalg::widest_vectors(
            #[inline(always)]
            || f(v, g, s),
        )
    };
    if value.len() < 4 * BLOCK {
        f(value, grad, state);
    } else {
        value
            .par_chunks_mut(BLOCK)
            .zip(grad.par_chunks(BLOCK))
            .zip(state.par_chunks_mut(BLOCK))
            .for_each(|((v, g), s)| f(v, g, s));
    }
}

/// The SGD rule for one tensor: `w ← w − eta (g + decay · w)`, or `w ← w − eta g` without
/// the L2 term. The one definition of its rounding, which the fused kernel
/// ([`crate::linalg::sgd_step_tn`]) repeats operation by operation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdRule<T> {
    /// The learning rate.
    pub eta: T,
    /// `2λ` for a weight matrix under the L2 term.
    pub decay: Option<T>,
}

impl<T: Scalar> SgdRule<T> {
    /// Applies the rule to `w` with the gradient `g`.
    pub(crate) fn apply(&self, w: &mut [T], g: &[T]) {
        let eta = self.eta;
        match self.decay {
            Some(d) => w
                .iter_mut()
                .zip(g)
                .for_each(|(w, &g)| *w -= eta * (g + d * *w)),
            None => w.iter_mut().zip(g).for_each(|(w, &g)| *w -= eta * g),
        }
    }
}

/// What [`OptimizerState::train_step`] did.
#[derive(Debug, Clone, Copy)]
pub struct TrainStep {
    /// The mini-batch's mean cross-entropy before the update.
    pub loss: f64,
    /// False if `go_on` stopped the update (the parameters are then as before the step).
    pub updated: bool,
    /// How long the gradients' parts took.
    pub phases: StepPhases,
    /// How long the update of the parameters not updated during the backward pass took.
    pub update: Duration,
}

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
    /// Per parameter tensor, each element's state: Adam's first and second moments, nothing
    /// for SGD (a `Vec` of `()` holds no memory).
    state: Vec<Vec<Moments<T>>>,
}

/// Adam's moment estimates of one parameter: (first, second); `()` stands in for SGD.
type Moments<T> = (T, T);

impl<T: Scalar> OptimizerState<T> {
    /// Fresh state for `net`.
    pub fn new(kind: Optimizer, net: &mut Network<T>) -> Self {
        let sizes: Vec<usize> = net
            .params_mut()
            .iter()
            .map(|p| p.param.value.len())
            .collect();
        let adam = matches!(kind, Optimizer::Adam { .. });
        let state = sizes
            .iter()
            .map(|&n| vec![(T::zero(), T::zero()); if adam { n } else { 0 }])
            .collect();
        OptimizerState { kind, t: 0, state }
    }

    /// One update of every parameter from the gradients of the last backward pass.
    pub fn step(&mut self, net: &mut Network<T>, lr: f64) {
        self.step_with_l2(net, lr, 0.0);
    }

    /// One update with the L2 term's gradient added on the way: for a weight matrix the
    /// gradient used is `g + 2λW`, rounded exactly as [`Network::grads`] adds it, so
    /// `grads(x, y, 0.0)` followed by `step_with_l2(net, lr, λ)` updates the parameters to the
    /// same bits as `grads(x, y, λ)` followed by [`OptimizerState::step`], in one pass over the
    /// weights instead of two. Large tensors are updated by all rayon threads.
    ///
    /// # Example
    /// ```
    /// use ndarray::Array2;
    /// use klayer::net::{NetConfig, Network};
    /// use klayer::train::{Optimizer, OptimizerState};
    /// let values = |n: &mut Network<f32>| {
    ///     n.params_mut().into_iter().map(|p| p.param.value.to_vec()).collect::<Vec<_>>()
    /// };
    /// let mut a = NetConfig::new(&[8]).input(4).classes(3).build::<f32>().unwrap();
    /// let mut b = a.clone();
    /// let mut oa = OptimizerState::new(Optimizer::ADAM, &mut a);
    /// let mut ob = OptimizerState::new(Optimizer::ADAM, &mut b);
    /// let x = Array2::from_shape_fn((5, 4), |(i, j)| (i * j) as f32 / 7.0);
    /// let y = [0, 1, 2, 1, 0];
    /// for _ in 0..3 {
    ///     a.grads(x.view(), &y, 0.01).unwrap();
    ///     oa.step(&mut a, 0.1);
    ///     b.grads(x.view(), &y, 0.0).unwrap();
    ///     ob.step_with_l2(&mut b, 0.1, 0.01);
    /// }
    /// assert_eq!(values(&mut a), values(&mut b));
    /// ```
    pub fn step_with_l2(&mut self, net: &mut Network<T>, lr: f64, lambda: f64) {
        self.update(net, lr, lambda, 0);
    }

    /// One training step on the mini-batch `x`, `y`: the gradients, with `job` run beside the
    /// layers after the first ([`Network::grads_alongside`]), then, if `go_on(loss)` says so,
    /// the update with the L2 term ([`OptimizerState::step_with_l2`]). The parameters end as
    /// those two calls would leave them, to the bit; [`crate::train::train`] and `klayer bench`
    /// take their steps here.
    ///
    /// With SGD (in f32, on a CPU with AVX-512, up to
    /// [`crate::linalg::FUSED_STEP_MAX_WEIGHTS`] weights), the first layer's weights are
    /// updated inside its backward pass, where their gradient comes out of the product block by
    /// block ([`crate::linalg::sgd_step_tn`]): the gradient is then never stored, and the
    /// weights are read and written once instead of again in a pass of their own. Their
    /// gradient buffer is then stale.
    ///
    /// # Errors
    /// As [`Network::grads`].
    ///
    /// # Example
    /// ```
    /// use ndarray::Array2;
    /// use klayer::net::{NetConfig, Network};
    /// use klayer::train::{Optimizer, OptimizerState};
    /// let values = |n: &mut Network<f32>| {
    ///     n.params_mut().into_iter().map(|p| p.param.value.to_vec()).collect::<Vec<_>>()
    /// };
    /// let x = Array2::from_shape_fn((5, 64), |(i, j)| ((i * j) % 7) as f32 / 7.0);
    /// let y = [0, 1, 2, 1, 0];
    /// for kind in [Optimizer::Sgd, Optimizer::ADAM] {
    ///     let mut a = NetConfig::new(&[8]).input(64).classes(3).build::<f32>().unwrap();
    ///     let mut b = a.clone();
    ///     let mut oa = OptimizerState::new(kind, &mut a);
    ///     let mut ob = OptimizerState::new(kind, &mut b);
    ///     for _ in 0..3 {
    ///         let step = oa.train_step(&mut a, x.view(), &y, 0.1, 0.01, || (), |_| true).unwrap();
    ///         assert!(step.updated);
    ///         b.grads(x.view(), &y, 0.0).unwrap();
    ///         ob.step_with_l2(&mut b, 0.1, 0.01);
    ///         assert_eq!(values(&mut a), values(&mut b));
    ///     }
    ///     // Told to stop, it leaves the parameters alone.
    ///     let before = values(&mut a);
    ///     let step = oa.train_step(&mut a, x.view(), &y, 0.1, 0.01, || (), |_| false).unwrap();
    ///     assert!(!step.updated);
    ///     assert_eq!(values(&mut a), before);
    /// }
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn train_step(
        &mut self,
        net: &mut Network<T>,
        x: ArrayView2<T>,
        y: &[usize],
        lr: f64,
        lambda: f64,
        job: impl Fn() + Sync,
        go_on: impl FnOnce(f64) -> bool,
    ) -> Result<TrainStep> {
        let sgd = self.kind == Optimizer::Sgd;
        let mut updating = false;
        let first_step = |loss: f64| {
            updating = go_on(loss);
            (updating && sgd).then(|| sgd_rule(lr, lambda, ParamKind::Weight))
        };
        // The L2 term's gradient is added by the update, in the same pass.
        let (loss, phases, fused) = net.grads_then_first_sgd(x, y, 0.0, job, first_step)?;
        let started = Instant::now();
        if updating {
            self.update(net, lr, lambda, usize::from(fused));
        }
        Ok(TrainStep {
            loss,
            updated: updating,
            phases,
            update: started.elapsed(),
        })
    }

    /// [`OptimizerState::step_with_l2`] of all but the first `skip` parameter tensors (in the
    /// order of [`Network::params_mut`]).
    fn update(&mut self, net: &mut Network<T>, lr: f64, lambda: f64, skip: usize) {
        self.t += 1;
        match self.kind {
            Optimizer::Sgd => {
                for p in net.params_mut().into_iter().skip(skip) {
                    let rule = sgd_rule(lr, lambda, p.param.kind);
                    let none = &mut vec![(); p.param.value.len()];
                    for_each_block(
                        p.param.value,
                        p.param.grad,
                        none,
                        #[inline(always)]
                        |w, g, _| rule.apply(w, g),
                    );
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                let (eta, b1, b2, eps) = (T::of(lr), T::of(beta1), T::of(beta2), T::of(eps));
                let c1 = T::of(1.0 / (1.0 - beta1.powi(self.t)));
                let c2 = T::of(1.0 / (1.0 - beta2.powi(self.t)));
                let one = T::one();
                let params = net.params_mut().into_iter().zip(&mut self.state);
                for (p, state) in params.skip(skip) {
                    let decay: Option<T> = l2_decay(lambda, p.param.kind);
                    for_each_block(
                        p.param.value,
                        p.param.grad,
                        state,
                        #[inline(always)]
                        |w, g, s| {
                            for ((w, &g), (m, v)) in w.iter_mut().zip(g).zip(s) {
                                let g = match decay {
                                    Some(d) => g + d * *w,
                                    None => g,
                                };
                                *m = b1 * *m + (one - b1) * g;
                                *v = b2 * *v + (one - b2) * g * g;
                                *w -= eta * (*m * c1) / ((*v * c2).sqrt() + eps);
                            }
                        },
                    );
                }
            }
        }
    }
}

/// `2λ` for a weight matrix when `lambda` is not 0: the L2 term's gradient is `2λW`.
fn l2_decay<T: Scalar>(lambda: f64, kind: ParamKind) -> Option<T> {
    (lambda != 0.0 && kind == ParamKind::Weight).then(|| T::of(2.0 * lambda))
}

/// SGD's rule for a tensor of `kind` at the rate `lr`.
fn sgd_rule<T: Scalar>(lr: f64, lambda: f64, kind: ParamKind) -> SgdRule<T> {
    SgdRule {
        eta: T::of(lr),
        decay: l2_decay(lambda, kind),
    }
}
