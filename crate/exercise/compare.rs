//! Comparing a student's output with an expected one, and recognising common mistakes.

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use super::report::{Against, Hint, Row, Worst};

/// Floor of the relative error's denominator.
const FLOOR: f64 = 1e-8;
/// How close a wrong answer must be to a mistake's answer for the hint to be given.
const MISTAKE_TOL: f64 = 1e-6;

/// An output to check: the expected values, and what common mistakes would give.
pub(crate) struct Expect {
    pub output: String,
    pub against: Against,
    pub expected: ArrayD<f64>,
    pub tolerance: f64,
    /// Answers that the named mistakes give, tried in order when the output fails.
    pub mistakes: Vec<(Hint, ArrayD<f64>)>,
    /// Factors `c` with a meaning: a wrong answer equal to `c · expected` gets the hint.
    pub factors: Vec<(Hint, f64)>,
}

impl Expect {
    pub fn new(
        output: impl Into<String>,
        against: Against,
        expected: ArrayD<f64>,
        tolerance: f64,
    ) -> Self {
        Expect {
            output: output.into(),
            against,
            expected,
            tolerance,
            mistakes: Vec::new(),
            factors: Vec::new(),
        }
    }

    pub fn mistake(mut self, hint: Hint, answer: ArrayD<f64>) -> Self {
        self.mistakes.push((hint, answer));
        self
    }

    pub fn factor(mut self, hint: Hint, c: f64) -> Self {
        self.factors.push((hint, c));
        self
    }

    /// The usual factors for a quantity that involves a mean over `n` rows: −1, n and 1/n.
    pub fn batch_factors(self, n: usize) -> Self {
        let n = n as f64;
        self.factor(Hint::SignError, -1.0)
            .factor(Hint::MissingOneOverN, n)
            .factor(Hint::ExtraOneOverN, 1.0 / n)
    }
}

pub(crate) fn rel_error(got: f64, expected: f64) -> f64 {
    if got == expected {
        return 0.0;
    }
    (got - expected).abs() / (got.abs() + expected.abs()).max(FLOOR)
}

/// Largest relative error and the flat index where it is (arrays of equal shape).
fn worst(got: &ArrayViewD<f64>, expected: &ArrayViewD<f64>) -> (f64, usize) {
    got.iter()
        .zip(expected.iter())
        .map(|(&g, &e)| rel_error(g, e))
        .enumerate()
        .fold(
            (0.0, 0),
            |(m, mi), (i, r)| if r > m { (r, i) } else { (m, mi) },
        )
}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (k, &s) in shape.iter().enumerate().rev() {
        if s > 0 {
            index[k] = flat % s;
            flat /= s;
        }
    }
    index
}

fn max_rel(got: &ArrayViewD<f64>, expected: &ArrayViewD<f64>) -> f64 {
    if got.shape() != expected.shape() {
        return f64::INFINITY;
    }
    worst(got, expected).0
}

/// Compares `got` with `e`, naming the problem and the mistake if it fails.
pub(crate) fn compare(e: &Expect, got: ArrayViewD<f64>) -> Row {
    let mut row = Row {
        output: e.output.clone(),
        against: e.against,
        passed: false,
        max_rel_error: None,
        tolerance: e.tolerance,
        worst: None,
        problem: None,
        hint: None,
    };
    let expected = e.expected.view();
    if got.shape() != expected.shape() {
        row.problem = Some(format!(
            "{} has shape {:?}, expected {:?}",
            e.output,
            got.shape(),
            expected.shape()
        ));
        if got.ndim() == 2 && expected.ndim() == 2 {
            let t = got.t();
            if max_rel(&t, &expected) <= MISTAKE_TOL {
                row.hint = Some(Hint::Transposed);
            }
        }
        return row;
    }
    if let Some(i) = got.iter().position(|v| !v.is_finite()) {
        let index = unravel(i, got.shape());
        row.problem = Some(format!(
            "{} holds {} at index {:?}",
            e.output,
            got.iter().nth(i).copied().unwrap_or(f64::NAN),
            index
        ));
        return row;
    }
    let (max, i) = worst(&got, &expected);
    row.max_rel_error = Some(max);
    row.worst = Some(Worst {
        index: unravel(i, got.shape()),
        expected: expected.iter().nth(i).copied().unwrap_or(f64::NAN),
        got: got.iter().nth(i).copied().unwrap_or(f64::NAN),
        rel_error: max,
    });
    row.passed = max <= e.tolerance;
    if !row.passed {
        row.hint = recognise(e, &got);
    }
    row
}

/// The mistake a wrong answer matches, if any.
fn recognise(e: &Expect, got: &ArrayViewD<f64>) -> Option<Hint> {
    for (hint, answer) in &e.mistakes {
        if max_rel(got, &answer.view()) <= MISTAKE_TOL {
            return Some(*hint);
        }
    }
    let ee: f64 = e.expected.iter().map(|v| v * v).sum();
    if ee == 0.0 {
        return None;
    }
    let c = got
        .iter()
        .zip(e.expected.iter())
        .map(|(g, x)| g * x)
        .sum::<f64>()
        / ee;
    for &(hint, f) in &e.factors {
        if rel_error(c, f) <= MISTAKE_TOL {
            let scaled = e.expected.mapv(|v| v * f);
            if max_rel(got, &scaled.view()) <= MISTAKE_TOL {
                return Some(hint);
            }
        }
    }
    None
}

/// A scalar as a 0-dimensional array.
pub(crate) fn scalar(v: f64) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_worst_entry_is_located_by_its_index() {
        let e = Expect::new(
            "dx",
            Against::Reference,
            array![[1.0, 2.0], [3.0, 4.0]].into_dyn(),
            1e-9,
        );
        let row = compare(&e, array![[1.0, 2.0], [3.5, 4.0]].into_dyn().view());
        let w = row.worst.unwrap();
        assert!(!row.passed);
        assert_eq!(w.index, vec![1, 0]);
        assert_eq!((w.expected, w.got), (3.0, 3.5));
    }

    #[test]
    fn a_transposed_answer_is_recognised() {
        let e = Expect::new(
            "dW",
            Against::Reference,
            array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn(),
            1e-9,
        );
        let row = compare(
            &e,
            array![[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]].into_dyn().view(),
        );
        assert_eq!(row.hint, Some(Hint::Transposed));
        assert!(row.problem.unwrap().contains("[3, 2]"));
    }

    #[test]
    fn nan_is_reported_with_its_index() {
        let e = Expect::new("y", Against::Reference, array![1.0, 2.0].into_dyn(), 1e-9);
        let row = compare(&e, array![1.0, f64::NAN].into_dyn().view());
        assert!(!row.passed);
        assert!(row.problem.unwrap().contains("NaN at index [1]"));
    }
}
