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
        let flat = x.as_slice().expect("a standard-layout array is one slice");
        widest_vectors(
            #[inline(always)]
            || {
                column_sums((flat, flat, None), &mut mean, |v, _, _| v);
                mean.iter_mut().for_each(|m| *m = *m / n);
                column_sums((flat, flat, Some(&mean)), &mut var, |v, _, m| {
                    (v - m) * (v - m)
                });
                var.iter_mut().for_each(|s| *s = *s / n);
            },
        );
        BatchStats {
            count: rows,
            mean: mean.into(),
            var: var.into(),
        }
    }
}

/// The two row-major operands and the per-column values (none: 0 for every column) of
/// [`column_sums`].
type Operands<'a, T> = (&'a [T], &'a [T], Option<&'a [T]>);

/// Columns per vector of sums in [`column_sums`].
const CHUNK: usize = 16;

/// `out[j] = Σ_i term(a[i, j], b[i, j], p[j])` over the rows `i` in order, for every column `j`
/// of `out`, with `a` and `b` row-major (rows of `out.len()` values) and `p` one value per
/// column (0 for every column if `None`).
///
/// Chunks of 16 columns, up to four at once, keep their sums in registers while the rows go by
/// (a last chunk overlaps the one before it, its shared columns summed again in the same order);
/// the four chains of additions then overlap. Adding a row at a time to sums in memory waits
/// on each store before the next add: a BN layer of 50 features took 2.8 µs forward and 2.1
/// backward on a mini-batch of 100 that way, 2.0 and 1.6 this way (timed alone, median of
/// 3,000 calls, on the AMD EPYC of docs/SPEED.md). Each sum is the same either way.
#[inline(always)]
fn column_sums<T: Scalar>(
    (a, b, p): Operands<'_, T>,
    out: &mut [T],
    term: impl Fn(T, T, T) -> T + Copy,
) {
    let width = out.len();
    if width == 0 {
        return;
    }
    assert!(a.len() == b.len() && p.is_none_or(|p| p.len() == width) && a.len() % width == 0);
    if width < CHUNK {
        for (j, o) in out.iter_mut().enumerate() {
            let rows = a.chunks_exact(width).zip(b.chunks_exact(width));
            let pj = p.map_or(T::zero(), |p| p[j]);
            *o = rows.fold(T::zero(), |s, (ra, rb)| s + term(ra[j], rb[j], pj));
        }
        return;
    }
    let mut starts: Vec<usize> = (0..=width - CHUNK).step_by(CHUNK).collect();
    if !width.is_multiple_of(CHUNK) {
        starts.push(width - CHUNK);
    }
    for group in starts.chunks(4) {
        let ops = ((a, b, p), width);
        match *group {
            [c0, c1, c2, c3] => chunk_sums(ops, [c0, c1, c2, c3], out, term),
            [c0, c1, c2] => chunk_sums(ops, [c0, c1, c2], out, term),
            [c0, c1] => chunk_sums(ops, [c0, c1], out, term),
            [c0] => chunk_sums(ops, [c0], out, term),
            _ => unreachable!("groups of one to four chunks"),
        }
    }
}

/// [`column_sums`] of the `N` chunks of 16 columns starting at `starts`.
#[inline(always)]
fn chunk_sums<T: Scalar, const N: usize>(
    ((a, b, p), width): (Operands<'_, T>, usize),
    starts: [usize; N],
    out: &mut [T],
    term: impl Fn(T, T, T) -> T,
) {
    let chunk = |r: &[T], c: usize| -> [T; CHUNK] { r[c..c + CHUNK].try_into().expect("16") };
    let pc = starts.map(|c| p.map_or([T::zero(); CHUNK], |p| chunk(p, c)));
    let mut acc = [[T::zero(); CHUNK]; N];
    for (ra, rb) in a.chunks_exact(width).zip(b.chunks_exact(width)) {
        for g in 0..N {
            let (x, y) = (chunk(ra, starts[g]), chunk(rb, starts[g]));
            for l in 0..CHUNK {
                acc[g][l] += term(x[l], y[l], pc[g][l]);
            }
        }
    }
    for (g, &c) in starts.iter().enumerate() {
        out[c..c + CHUNK].copy_from_slice(&acc[g]);
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
                widest_vectors(
                    #[inline(always)]
                    || {
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
                    },
                );
                self.cache = Some(Cache { xhat, inv_std });
                self.last_batch = Some(stats);
            }
            Mode::Eval => {
                let inv_std = self.running_var.mapv(|v| T::one() / (v + self.eps).sqrt());
                let mean = self.running_mean.as_slice().expect("contiguous");
                let s = inv_std.as_slice().expect("contiguous");
                widest_vectors(
                    #[inline(always)]
                    || {
                        for (yr, xr) in rows_of_mut(&mut y).zip(rows_of(&x)) {
                            let each = mean.iter().zip(s).zip(gamma.iter().zip(beta));
                            for ((y, &v), ((&m, &s), (&g, &b))) in yr.iter_mut().zip(xr).zip(each) {
                                *y = (v - m) * s * g + b;
                            }
                        }
                    },
                );
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
        let d = dy.as_slice().expect("a standard-layout array is one slice");
        let xh = cache
            .xhat
            .as_slice()
            .expect("a standard-layout array is one slice");
        widest_vectors(
            #[inline(always)]
            || {
                column_sums((d, xh, None), &mut dgamma, |d, x, _| d * x);
                column_sums((d, xh, None), &mut dbeta, |d, _, _| d);
            },
        );
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
        widest_vectors(
            #[inline(always)]
            || {
                for (d, xh) in rows_of_mut(&mut dy).zip(rows_of(&cache.xhat)) {
                    let each = s.iter().zip(db).zip(dg);
                    for ((d, &x), ((&s, &b), &g)) in d.iter_mut().zip(xh).zip(each) {
                        *d = s * (n * *d - b - x * g);
                    }
                }
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sums_add_each_column_over_the_rows_in_order_at_every_width() {
        for width in [1, 15, 16, 17, 50, 64, 65, 100, 130] {
            for rows in [0, 1, 7, 100] {
                let a: Vec<f32> = (0..rows * width)
                    .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1.37e-3)
                    .collect();
                let b: Vec<f32> = a.iter().map(|v| v * 0.5 + 1.0).collect();
                let p: Vec<f32> = (0..width).map(|j| j as f32 * 0.25).collect();
                let term = |x: f32, y: f32, q: f32| (x - q) * y;
                let mut got = vec![f32::NAN; width];
                column_sums((&a, &b, Some(&p)), &mut got, term);
                for (j, &g) in got.iter().enumerate() {
                    let mut want = 0.0f32;
                    for i in 0..rows {
                        want += term(a[i * width + j], b[i * width + j], p[j]);
                    }
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "width {width}, rows {rows}, column {j}"
                    );
                }
            }
        }
    }
}
