//! Batch normalization (Ioffe & Szegedy, 2015, <https://arxiv.org/abs/1502.03167>).
//!
//! In training mode each feature is normalised with the mean and the biased variance (divide by
//! n) of the batch, `x̂ = (x - μ_B) / sqrt(σ²_B + ε)`, then scaled and shifted,
//! `y = γ x̂ + β`. In evaluation mode the stored statistics `running_mean`/`running_var` take
//! the place of the batch's; how they are obtained (EMA, PreciseBN, Adaptive BN) is the
//! business of [`crate::bn_stats`].

use ndarray::{Array1, Array2, ArrayView2, Zip};

use super::{Mode, Param, ParamKind};
use crate::linalg::{widest_vectors, zeros_aligned};
use crate::Scalar;

/// Mean and biased variance per feature of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats<T> {
    /// Number of rows the statistics were computed on.
    pub count: usize,
    /// Mean per feature.
    pub mean: Array1<T>,
    /// Biased variance per feature (divided by `count`).
    pub var: Array1<T>,
}

impl<T: Scalar> BatchStats<T> {
    /// Mean and biased variance over the rows of `x`, by two passes (stable for any offset).
    ///
    /// # Shapes
    /// `x`: (batch, n) → `mean`, `var`: (n).
    pub fn of(x: ArrayView2<T>) -> Self {
        let x = x.as_standard_layout();
        let (rows, features) = x.dim();
        let n = T::of_usize(rows);
        let mut mean = vec![T::zero(); features];
        let mut var = vec![T::zero(); features];
        // Each feature's sums run over the rows in order, as `sum_axis` adds them.
        widest_vectors(|| {
            for row in rows_of(&x) {
                mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v);
            }
            mean.iter_mut().for_each(|m| *m = *m / n);
            for row in rows_of(&x) {
                for ((s, &v), &m) in var.iter_mut().zip(row).zip(&mean) {
                    *s += (v - m) * (v - m);
                }
            }
            var.iter_mut().for_each(|s| *s = *s / n);
        });
        BatchStats {
            count: rows,
            mean: mean.into(),
            var: var.into(),
        }
    }
}

/// The rows of a standard-layout array as slices (none if it has no columns).
///
/// BN works on a mini-batch of a few features (100 × 50 by default): row by row over plain
/// slices, in the widest vectors ([`widest_vectors`]), the default net's two BN layers took
/// 12 µs per training step forward and backward instead of 19 through `ndarray::Zip` (each
/// layer timed inside `klayer bench` on the AVX-512 EPYC of docs/SPEED.md).
fn rows_of<'a, T, S: ndarray::Data<Elem = T>>(
    x: &'a ndarray::ArrayBase<S, ndarray::Ix2>,
) -> std::slice::ChunksExact<'a, T> {
    let flat = x.as_slice().expect("a standard-layout array is one slice");
    flat.chunks_exact(x.ncols().max(1))
}

/// The rows of a standard-layout array as mutable slices (none if it has no columns).
fn rows_of_mut<T, S: ndarray::DataMut<Elem = T>>(
    x: &mut ndarray::ArrayBase<S, ndarray::Ix2>,
) -> std::slice::ChunksExactMut<'_, T> {
    let width = x.ncols().max(1);
    let flat = x
        .as_slice_mut()
        .expect("a standard-layout array is one slice");
    flat.chunks_exact_mut(width)
}

#[derive(Debug, Clone, PartialEq)]
struct Cache<T> {
    xhat: Array2<T>,
    inv_std: Array1<T>,
}

/// A batch-normalization layer over `features` features.
///
/// Its running statistics and the statistics of its last training batch are private: they
/// change only through [`BatchNorm::forward`] (which records the batch's) and
/// [`BatchNorm::set_running`].
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::layers::{BatchNorm, Mode};
/// let mut bn = BatchNorm::<f64>::new(1, 0.0);
/// let y = bn.forward(array![[1.0], [3.0]].view(), Mode::Train);
/// assert_eq!(y, array![[-1.0], [1.0]]); // mean 2, biased variance 1
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm<T> {
    /// Scale γ, initialised to 1.
    pub gamma: Array1<T>,
    /// Shift β, initialised to 0.
    pub beta: Array1<T>,
    running_mean: Array1<T>,
    running_var: Array1<T>,
    has_stats: bool,
    /// ε added to the variance before the square root.
    pub eps: T,
    /// Gradient with respect to γ from the last backward pass.
    pub dgamma: Array1<T>,
    /// Gradient with respect to β.
    pub dbeta: Array1<T>,
    last_batch: Option<BatchStats<T>>,
    cache: Option<Cache<T>>,
}

impl<T: Scalar> BatchNorm<T> {
    /// A layer with γ = 1, β = 0, running statistics 0 and 1 (not yet set), and the given ε.
    pub fn new(features: usize, eps: f64) -> Self {
        BatchNorm {
            gamma: Array1::ones(features),
            beta: Array1::zeros(features),
            running_mean: Array1::zeros(features),
            running_var: Array1::ones(features),
            has_stats: false,
            eps: T::of(eps),
            dgamma: Array1::zeros(features),
            dbeta: Array1::zeros(features),
            last_batch: None,
            cache: None,
        }
    }

    /// Number of features.
    pub fn features(&self) -> usize {
        self.gamma.len()
    }

    /// Normalises, scales and shifts. [`Mode::Train`] uses the batch's own statistics, stores
    /// them in [`BatchNorm::last_batch`] and keeps what backward needs; [`Mode::Eval`] uses the
    /// running statistics. Neither mode changes the running statistics.
    ///
    /// # Shapes
    /// `x`: (batch, features) → (batch, features).
    pub fn forward(&mut self, x: ArrayView2<T>, mode: Mode) -> Array2<T> {
        let x = x.as_standard_layout();
        let mut y = zeros_aligned(x.dim());
        let (gamma, beta) = (self.gamma.as_slice(), self.beta.as_slice());
        let (gamma, beta) = (gamma.expect("contiguous"), beta.expect("contiguous"));
        match mode {
            Mode::Train => {
                let stats = BatchStats::of(x.view());
                let inv_std = stats.var.mapv(|v| T::one() / (v + self.eps).sqrt());
                let (mean, s) = (stats.mean.as_slice(), inv_std.as_slice());
                let (mean, s) = (mean.expect("contiguous"), s.expect("contiguous"));
                // Row by row, x̂ and then y while the row is in L1; y on a cache line, as the
                // next layer's product reads it (see `zeros_aligned`).
                let mut xhat = Array2::zeros(x.dim());
                widest_vectors(|| {
                    let rows = rows_of_mut(&mut xhat).zip(rows_of_mut(&mut y));
                    for ((xh, yr), xr) in rows.zip(rows_of(&x)) {
                        let stats = mean.iter().zip(s);
                        for ((h, &v), (&m, &s)) in xh.iter_mut().zip(xr).zip(stats) {
                            *h = (v - m) * s;
                        }
                        let affine = gamma.iter().zip(beta);
                        for ((y, &h), (&g, &b)) in yr.iter_mut().zip(&*xh).zip(affine) {
                            *y = h * g + b;
                        }
                    }
                });
                self.cache = Some(Cache { xhat, inv_std });
                self.last_batch = Some(stats);
            }
            Mode::Eval => {
                let inv_std = self.running_var.mapv(|v| T::one() / (v + self.eps).sqrt());
                let mean = self.running_mean.as_slice().expect("contiguous");
                let s = inv_std.as_slice().expect("contiguous");
                widest_vectors(|| {
                    for (yr, xr) in rows_of_mut(&mut y).zip(rows_of(&x)) {
                        let each = mean.iter().zip(s).zip(gamma.iter().zip(beta));
                        for ((y, &v), ((&m, &s), (&g, &b))) in yr.iter_mut().zip(xr).zip(each) {
                            *y = (v - m) * s * g + b;
                        }
                    }
                });
            }
        }
        y
    }

    /// Stores `dγ = Σ dy·x̂`, `dβ = Σ dy` and returns
    /// `dx = γ/(n·sqrt(σ²+ε)) · (n·dy − dβ − x̂·dγ)` if asked.
    ///
    /// **Panics** if no [`Mode::Train`] forward pass came before.
    ///
    /// # Shapes
    /// `dy`: (batch, features) → (batch, features).
    pub fn backward(&mut self, mut dy: Array2<T>, need_dx: bool) -> Option<Array2<T>> {
        let cache = self
            .cache
            .as_ref()
            .expect("BatchNorm::backward needs a Mode::Train forward first");
        if !dy.is_standard_layout() {
            dy = dy.as_standard_layout().into_owned();
        }
        let n = T::of_usize(dy.nrows());
        let features = self.features();
        let mut dbeta = vec![T::zero(); features];
        let mut dgamma = vec![T::zero(); features];
        // Each feature's sums run over the rows in order, as `sum_axis` adds them.
        widest_vectors(|| {
            for (d, xh) in rows_of(&dy).zip(rows_of(&cache.xhat)) {
                dbeta.iter_mut().zip(d).for_each(|(b, &d)| *b += d);
                for ((g, &d), &x) in dgamma.iter_mut().zip(d).zip(xh) {
                    *g += d * x;
                }
            }
        });
        self.dbeta = dbeta.into();
        self.dgamma = dgamma.into();
        if !need_dx {
            return None;
        }
        let scale = Zip::from(&self.gamma)
            .and(&cache.inv_std)
            .map_collect(|&g, &s| g * s / n);
        let s = scale.as_slice().expect("contiguous");
        let db = self.dbeta.as_slice().expect("contiguous");
        let dg = self.dgamma.as_slice().expect("contiguous");
        widest_vectors(|| {
            for (d, xh) in rows_of_mut(&mut dy).zip(rows_of(&cache.xhat)) {
                let each = s.iter().zip(db).zip(dg);
                for ((d, &x), ((&s, &b), &g)) in d.iter_mut().zip(xh).zip(each) {
                    *d = s * (n * *d - b - x * g);
                }
            }
        });
        Some(dy)
    }

    /// γ and β with their gradients.
    pub fn params_mut(&mut self) -> Vec<Param<'_, T>> {
        vec![
            Param {
                kind: ParamKind::Gamma,
                value: self.gamma.as_slice_mut().expect("contiguous"),
                grad: self.dgamma.as_slice().expect("contiguous"),
            },
            Param {
                kind: ParamKind::Beta,
                value: self.beta.as_slice_mut().expect("contiguous"),
                grad: self.dbeta.as_slice().expect("contiguous"),
            },
        ]
    }

    /// The mean used in [`Mode::Eval`] (0 until statistics are set).
    pub fn running_mean(&self) -> &Array1<T> {
        &self.running_mean
    }

    /// The variance used in [`Mode::Eval`] (1 until statistics are set).
    pub fn running_var(&self) -> &Array1<T> {
        &self.running_var
    }

    /// Whether the running statistics have been set (by [`BatchNorm::set_running`]; what sets
    /// them during training is the business of [`crate::bn_stats`]).
    pub fn has_stats(&self) -> bool {
        self.has_stats
    }

    /// Sets the running statistics (and marks them as set).
    ///
    /// **Panics** if `mean` or `var` does not have one entry per feature.
    pub fn set_running(&mut self, mean: Array1<T>, var: Array1<T>) {
        assert!(
            mean.len() == self.features() && var.len() == self.features(),
            "BatchNorm::set_running: {} means and {} variances for {} features",
            mean.len(),
            var.len(),
            self.features()
        );
        self.running_mean = mean;
        self.running_var = var;
        self.has_stats = true;
    }

    /// Statistics of the last [`Mode::Train`] batch, until they are taken.
    pub fn last_batch(&self) -> Option<&BatchStats<T>> {
        self.last_batch.as_ref()
    }

    /// Takes the statistics of the last [`Mode::Train`] batch, leaving none: each batch's
    /// statistics are used once.
    pub fn take_last_batch(&mut self) -> Option<BatchStats<T>> {
        self.last_batch.take()
    }

    /// Puts back statistics taken by [`BatchNorm::take_last_batch`] (the gradient check
    /// restores the layer as it found it).
    pub(crate) fn restore_last_batch(&mut self, batch: Option<BatchStats<T>>) {
        self.last_batch = batch;
    }
}
