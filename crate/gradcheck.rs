//! Gradient check: analytic gradients against centred differences, entry by entry
//! (report section 2, figures 1 and 2).
//!
//! For every entry θ of every parameter tensor, `g_n = (J(θ + h) − J(θ − h)) / 2h` (or its
//! Richardson-extrapolated five-point form, the default, see [`Stencil`]) where `J` is the cost (mean cross-entropy + `lambda · Σ ‖W‖²`) of one train-mode pass over the batch;
//! the relative error is `|g_a − g_n| / max(eps, |g_a| + |g_n|)`.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::layers::{Layer, LossSums, Mode, ParamKind};
use crate::net::Network;
use crate::{Error, Result};

/// Settings of a gradient check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradCheckConfig {
    /// Step of the centred difference. Defaults to 1e-4 with the five-point stencil: its
    /// truncation error (O(h⁴)) is then far below f64 round-off in the cost, which leaves the
    /// numerical gradient about 1e-12 from the true one (about 1e-11 for the three-point
    /// formula at 1e-5). Cut tenfold where a ReLU kink is crossed.
    pub h: f64,
    /// Floor of the relative error's denominator, so that entries whose gradients are both
    /// (numerically) zero count as agreeing. Defaults to 1e-6.
    pub eps: f64,
    /// L2 factor of the cost. Defaults to 0.
    pub lambda: f64,
    /// Difference formula. Defaults to [`Stencil::Five`].
    pub stencil: Stencil,
}

/// The centred-difference formula.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stencil {
    /// `(J(θ+h) − J(θ−h)) / 2h`: error O(h²).
    Three,
    /// Richardson extrapolation of the three-point formula at `h` and `2h`,
    /// `(8(J(θ+h) − J(θ−h)) − (J(θ+2h) − J(θ−2h))) / 12h`: error O(h⁴), so a larger `h` keeps
    /// round-off small while truncation stays below it.
    Five,
}

/// Largest step [`GradCheckConfig::h`] may have: 0.1. A centred difference estimates a
/// derivative only for small steps; at `h = 1e300` the perturbed costs are infinite and the
/// "error" means nothing.
pub const MAX_H: f64 = 0.1;

impl GradCheckConfig {
    /// Checks the settings: `h` in (0, [`MAX_H`]], `eps` positive and finite, `lambda`
    /// finite and ≥ 0. Errors are [`Error::InvalidConfig`] naming the setting.
    ///
    /// # Example
    /// ```
    /// use klayer::gradcheck::GradCheckConfig;
    /// assert!(GradCheckConfig::default().check().is_ok());
    /// assert!(GradCheckConfig { h: 1e300, ..GradCheckConfig::default() }.check().is_err());
    /// ```
    pub fn check(&self) -> Result<()> {
        if !(self.h > 0.0 && self.h <= MAX_H) {
            return Err(Error::config(
                "h",
                format!(
                    "{:e}: the difference step must be in (0, {MAX_H}] (1e-4 is the default; a \
                     large step does not estimate a derivative)",
                    self.h
                ),
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::config(
                "eps",
                format!("{}: must be positive and finite", self.eps),
            ));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(Error::config(
                "lambda",
                format!("{}: must be finite and ≥ 0", self.lambda),
            ));
        }
        Ok(())
    }
}

/// The largest of `values`, NaN if any is NaN (a NaN error is a failed check, never 0).
fn max_or_nan(values: impl IntoIterator<Item = f64>) -> f64 {
    values.into_iter().fold(0.0, |m, v| {
        if v.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(v)
        }
    })
}

impl Default for GradCheckConfig {
    fn default() -> Self {
        GradCheckConfig {
            h: 1e-4,
            eps: 1e-6,
            lambda: 0.0,
            stencil: Stencil::Five,
        }
    }
}

/// The check of one parameter tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorCheck {
    /// `W1`, `b1`, `gamma1`, `beta1`, …
    pub name: String,
    /// What the tensor is.
    pub kind: ParamKind,
    /// Analytic gradient, entry by entry.
    pub analytic: Vec<f64>,
    /// Numerical gradient.
    pub numerical: Vec<f64>,
    /// Relative error of every entry.
    pub rel_errors: Vec<f64>,
    /// Entries whose every step size moved some ReLU input across zero (the cost is not
    /// differentiable there, so their numerical gradient is unreliable).
    pub kinks: usize,
}

impl TensorCheck {
    /// Largest relative error of the tensor (NaN if any error is NaN).
    pub fn max_rel_error(&self) -> f64 {
        max_or_nan(self.rel_errors.iter().copied())
    }

    /// Largest absolute difference `|g_a − g_n|` of the tensor (NaN if any is NaN).
    pub fn max_abs_error(&self) -> f64 {
        max_or_nan(
            self.analytic
                .iter()
                .zip(&self.numerical)
                .map(|(a, n)| (a - n).abs()),
        )
    }
}

/// The result of a gradient check: one [`TensorCheck`] per parameter tensor, in layer order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradCheck {
    /// Per tensor.
    pub tensors: Vec<TensorCheck>,
}

impl GradCheck {
    /// Largest absolute error over all tensors (NaN if any is NaN).
    pub fn max_abs_error(&self) -> f64 {
        max_or_nan(self.tensors.iter().map(TensorCheck::max_abs_error))
    }

    /// Largest relative error over all tensors (NaN if any is NaN).
    pub fn max_rel_error(&self) -> f64 {
        max_or_nan(self.tensors.iter().map(TensorCheck::max_rel_error))
    }

    /// True if every relative error is at most `tol` (a NaN error never passes).
    ///
    /// # Example
    /// ```
    /// use klayer::gradcheck::GradCheck;
    /// assert!(GradCheck { tensors: vec![] }.passes(1e-6));
    /// ```
    pub fn passes(&self, tol: f64) -> bool {
        self.max_rel_error() <= tol
    }
}

/// Step sizes tried per entry, each a tenth of the one before, while a perturbation crosses a
/// ReLU kink.
const KINK_RETRIES: i32 = 3;

/// The cost of one train-mode pass, and the sign pattern of every ReLU input on the way.
fn probe(
    net: &mut Network<f64>,
    x: ArrayView2<f64>,
    y: &[usize],
    lambda: f64,
) -> Result<(f64, Vec<bool>)> {
    let mut pattern = Vec::new();
    let mut h = x.to_owned();
    for layer in &mut net.layers {
        if matches!(layer, Layer::Relu(_)) {
            pattern.extend(h.iter().map(|&v| v > 0.0));
        }
        h = layer.forward(h.view(), Mode::Train);
    }
    if h.ncols() != net.classes() || y.len() != h.nrows() {
        return Err(Error::Shape("labels do not fit the batch".into()));
    }
    let cost = LossSums::of_batch(h.view(), y).mean_loss() + lambda * net.l2();
    Ok((cost, pattern))
}

/// Checks every gradient of `net` on the batch `x`, `y`, in f64.
///
/// Each numerical derivative first uses step `cfg.h`; if any perturbation moves a ReLU input
/// across zero (a kink, where the cost has no derivative), the step is cut tenfold, up to
/// twice; entries still crossing are counted in [`TensorCheck::kinks`].
///
/// The network is left as it was (every perturbed entry is restored; running statistics are
/// not touched).
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use klayer::{gradcheck::{gradcheck, GradCheckConfig}, net::NetConfig};
/// let mut net = NetConfig::new(&[6, 5]).input(10).seed(3).build::<f64>().unwrap();
/// let x = Array2::from_shape_fn((4, 10), |(i, j)| ((i * 10 + j) as f64 * 0.37).sin());
/// let check = gradcheck(&mut net, x.view(), &[0, 3, 9, 3], &GradCheckConfig::default()).unwrap();
/// assert_eq!(check.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
///            ["W1", "gamma1", "beta1", "W2", "gamma2", "beta2", "W3", "b3"]);
/// assert!(check.max_rel_error() < 1e-7);
/// ```
pub fn gradcheck(
    net: &mut Network<f64>,
    x: ArrayView2<f64>,
    y: &[usize],
    cfg: &GradCheckConfig,
) -> Result<GradCheck> {
    cfg.check()?;
    let saved: Vec<_> = net
        .batch_norms_mut()
        .map(|b| b.last_batch().cloned())
        .collect();
    net.grads(x, y, cfg.lambda)?;
    let analytic: Vec<Vec<f64>> = net
        .params_mut()
        .iter()
        .map(|p| p.param.grad.to_vec())
        .collect();
    let (_, base_pattern) = probe(net, x, y, cfg.lambda)?;
    let shapes = net.param_shapes();
    let mut tensors = Vec::with_capacity(shapes.len());
    for (t, (name, kind, len)) in shapes.into_iter().enumerate() {
        let mut numerical = Vec::with_capacity(len);
        let mut kinks = 0;
        for i in 0..len {
            let original = net.params_mut()[t].param.value[i];
            let mut estimate = None;
            for shrink in 0..KINK_RETRIES {
                let h = cfg.h / 10f64.powi(shrink);
                let offsets: &[f64] = match cfg.stencil {
                    Stencil::Three => &[h, -h],
                    Stencil::Five => &[h, -h, 2.0 * h, -2.0 * h],
                };
                let mut costs = [0.0; 4];
                let mut smooth = true;
                for (c, &offset) in costs.iter_mut().zip(offsets) {
                    net.params_mut()[t].param.value[i] = original + offset;
                    let (cost, pattern) = probe(net, x, y, cfg.lambda)?;
                    *c = cost;
                    smooth &= pattern == base_pattern;
                }
                let d1 = (costs[0] - costs[1]) / (2.0 * h);
                let g = match cfg.stencil {
                    Stencil::Three => d1,
                    Stencil::Five => (4.0 * d1 - (costs[2] - costs[3]) / (4.0 * h)) / 3.0,
                };
                estimate = Some(g);
                if smooth {
                    break;
                }
                if shrink + 1 == KINK_RETRIES {
                    kinks += 1;
                }
            }
            net.params_mut()[t].param.value[i] = original;
            numerical.push(estimate.expect("at least one step size is tried"));
        }
        let rel_errors = analytic[t]
            .iter()
            .zip(&numerical)
            .map(|(&a, &n)| (a - n).abs() / cfg.eps.max(a.abs() + n.abs()))
            .collect();
        tensors.push(TensorCheck {
            name,
            kind,
            analytic: analytic[t].clone(),
            numerical,
            rel_errors,
            kinks,
        });
    }
    for (bn, last) in net.batch_norms_mut().zip(saved) {
        bn.restore_last_batch(last);
    }
    Ok(GradCheck { tensors })
}
