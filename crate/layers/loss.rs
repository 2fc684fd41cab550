//! Softmax and the mean cross-entropy loss.

use ndarray::{Array2, ArrayView2, Axis};

use crate::Scalar;

/// Row-wise softmax, computed stably (the row maximum is subtracted first).
///
/// # Shapes
/// `logits`: (batch, classes) → (batch, classes).
pub fn softmax<T: Scalar>(logits: ArrayView2<T>) -> Array2<T> {
    let mut p = logits.to_owned();
    for mut row in p.axis_iter_mut(Axis(0)) {
        let max = row.fold(T::neg_infinity(), |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    p
}

/// Mean cross-entropy of `softmax(logits)` against labels `y`, and its gradient with respect
/// to the logits, `(P - Y) / batch`.
///
/// # Shapes
/// `logits`: (batch, classes), `y`: batch labels → (loss, (batch, classes)).
///
/// # Example
/// ```
/// use ndarray::array;
/// use klayer::layers::softmax_cross_entropy;
/// let (loss, grad) = softmax_cross_entropy(array![[0.0f64, 0.0]].view(), &[1]);
/// assert!((loss - 2f64.ln()).abs() < 1e-12);
/// assert_eq!(grad, array![[0.5, -0.5]]);
/// ```
pub fn softmax_cross_entropy<T: Scalar>(logits: ArrayView2<T>, y: &[usize]) -> (f64, Array2<T>) {
    let n = logits.nrows();
    let mut p = softmax(logits);
    let mut loss = 0.0;
    let inv_n = T::one() / T::of_usize(n);
    for (mut row, &label) in p.axis_iter_mut(Axis(0)).zip(y) {
        loss -= row[label].as_f64().max(f64::MIN_POSITIVE).ln();
        row[label] -= T::one();
        row.mapv_inplace(|v| v * inv_n);
    }
    (loss / n as f64, p)
}

/// Sums over a set of examples: total cross-entropy and number classified correctly.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossSums {
    /// Sum of the per-example cross-entropies.
    pub loss: f64,
    /// Number of examples whose largest logit is the true class.
    pub correct: usize,
    /// Number of examples.
    pub count: usize,
}

impl LossSums {
    /// Sums for one batch of logits. The cross-entropy is computed from the log-sum-exp, so it
    /// stays finite for large logits; a non-finite logit gives a non-finite loss.
    ///
    /// # Shapes
    /// `logits`: (batch, classes), `y`: batch labels.
    pub fn of_batch<T: Scalar>(logits: ArrayView2<T>, y: &[usize]) -> Self {
        let mut sums = LossSums {
            count: y.len(),
            ..Default::default()
        };
        for (row, &label) in logits.axis_iter(Axis(0)).zip(y) {
            let (mut argmax, mut max) = (0, f64::NEG_INFINITY);
            for (j, &v) in row.iter().enumerate() {
                let v = v.as_f64();
                if v > max {
                    (argmax, max) = (j, v);
                }
            }
            let lse = max
                + row
                    .iter()
                    .map(|&v| (v.as_f64() - max).exp())
                    .sum::<f64>()
                    .ln();
            sums.loss += lse - row[label].as_f64();
            sums.correct += usize::from(argmax == label);
        }
        sums
    }

    /// Adds another set's sums.
    pub fn merge(&mut self, other: LossSums) {
        self.loss += other.loss;
        self.correct += other.correct;
        self.count += other.count;
    }

    /// Mean cross-entropy.
    pub fn mean_loss(&self) -> f64 {
        self.loss / self.count as f64
    }

    /// Fraction classified correctly, in [0, 1].
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count as f64
    }
}
