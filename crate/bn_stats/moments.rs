//! [`Moments`]: mean and variance per feature accumulated over many batches, stably.

use ndarray::{Array1, ArrayView2, Axis};

use crate::layers::BatchStats;
use crate::Scalar;

/// Count, mean and sum of squared deviations (`M2`) per feature, in f64.
///
/// Batches are merged with Chan et al.'s parallel update (the batch form of Welford's
/// algorithm): for a batch of `n_b` rows with mean `μ_b` and biased variance `σ²_b`,
/// `δ = μ_b − μ`, `μ ← μ + δ n_b / (n + n_b)`, `M2 ← M2 + n_b σ²_b + δ² n n_b / (n + n_b)`.
/// The result is the variance of all rows together, equal to
/// `mean(σ²_b + μ_b²) − μ²` for equal batches, without that formula's cancellation.
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::bn_stats::Moments;
/// let mut m = Moments::new(1);
/// m.add_rows(array![[1.0f64], [2.0]].view());
/// m.add_rows(array![[3.0f64], [4.0]].view());
/// assert_eq!(m.mean()[0], 2.5);
/// assert_eq!(m.var()[0], 1.25); // biased variance of 1, 2, 3, 4
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Moments {
    count: usize,
    mean: Array1<f64>,
    m2: Array1<f64>,
}

impl Moments {
    /// Empty moments over `features` features.
    pub fn new(features: usize) -> Self {
        Moments {
            count: 0,
            mean: Array1::zeros(features),
            m2: Array1::zeros(features),
        }
    }

    /// Rows seen so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Merges a batch given by its statistics.
    pub fn add_batch<T: Scalar>(&mut self, batch: &BatchStats<T>) {
        let mean = batch.mean.mapv(|v| v.as_f64());
        let var = batch.var.mapv(|v| v.as_f64());
        self.merge(batch.count, &mean, &var);
    }

    /// Merges rows (two-pass statistics of `x` in f64, then the parallel update).
    ///
    /// # Shapes
    /// `x`: (rows, features).
    pub fn add_rows<T: Scalar>(&mut self, x: ArrayView2<T>) {
        const CHUNK: usize = 4096;
        for chunk in x.axis_chunks_iter(Axis(0), CHUNK) {
            let n = chunk.nrows() as f64;
            let mut mean = Array1::<f64>::zeros(chunk.ncols());
            for row in chunk.rows() {
                mean.zip_mut_with(&row, |m, &v| *m += v.as_f64());
            }
            mean /= n;
            let mut var = Array1::<f64>::zeros(chunk.ncols());
            for row in chunk.rows() {
                ndarray::Zip::from(&mut var)
                    .and(&row)
                    .and(&mean)
                    .for_each(|s, &v, &m| *s += (v.as_f64() - m).powi(2));
            }
            var /= n;
            self.merge(chunk.nrows(), &mean, &var);
        }
    }

    fn merge(&mut self, n_b: usize, mean_b: &Array1<f64>, var_b: &Array1<f64>) {
        if n_b == 0 {
            return;
        }
        let (n_a, nb) = (self.count as f64, n_b as f64);
        let total = n_a + nb;
        ndarray::Zip::from(&mut self.mean)
            .and(&mut self.m2)
            .and(mean_b)
            .and(var_b)
            .for_each(|m, m2, &mb, &vb| {
                let delta = mb - *m;
                *m += delta * nb / total;
                *m2 += vb * nb + delta * delta * n_a * nb / total;
            });
        self.count += n_b;
    }

    /// Mean per feature.
    pub fn mean(&self) -> Array1<f64> {
        self.mean.clone()
    }

    /// Biased variance per feature (`M2 / count`); zeros before any row.
    pub fn var(&self) -> Array1<f64> {
        if self.count == 0 {
            return self.m2.clone();
        }
        &self.m2 / self.count as f64
    }

    /// [`Moments::mean`] in the network's float type.
    pub fn mean_as<T: Scalar>(&self) -> Array1<T> {
        self.mean.mapv(T::of)
    }

    /// [`Moments::var`] in the network's float type.
    pub fn var_as<T: Scalar>(&self) -> Array1<T> {
        self.var().mapv(T::of)
    }
}
