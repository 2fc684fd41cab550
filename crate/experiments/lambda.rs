//! The lambda search of the report's section 2.3 as one spec, [`LambdaSearch`], that
//! `klayer reproduce lambda` and notebook 04 both use, and [`LambdaGrid`], its runs.
//!
//! The settings are the report's: the 3-layer net with BN and the assignment's defaults
//! (45,000 training images, 2 cycles), the coarse and the fine grid, every lambda on the same
//! seeds; the lambda with the best mean validation accuracy is the result, and the test
//! accuracy of its runs is looked at last (the report kept its best lambda, 0.005, and did not
//! retrain).

use super::report::{self, Metric, Reported};
use super::sweep::Summaries;
use super::{Comparison, Run, Scale, Seeds, Summary};
use crate::net::BnPlacement;
use crate::train::History;
use crate::{Error, Result};

/// What the lambda search trains.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaSearch {
    /// The run every lambda is trained with (its own lambda is replaced).
    pub base: Run,
    /// The coarse grid (the report's Table 1).
    pub coarse: Vec<f64>,
    /// The fine grid (the report's Table 2).
    pub fine: Vec<f64>,
    /// Seeds per lambda.
    pub seeds: Seeds,
}

impl LambdaSearch {
    /// The report's search at `scale`.
    ///
    /// ```
    /// use klayer::experiments::{LambdaSearch, Scale};
    /// let search = LambdaSearch::new(&Scale::full());
    /// assert_eq!(search.coarse, [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
    /// assert_eq!(search.base.train.schedule.total_steps(), 9_000); // 45,000 images, 2 cycles
    /// ```
    pub fn new(scale: &Scale) -> Self {
        LambdaSearch {
            base: Run::three_layer(scale).bn(BnPlacement::Before),
            coarse: report::LAMBDA_COARSE.iter().map(|r| r.0).collect(),
            fine: report::LAMBDA_FINE.iter().map(|r| r.0).collect(),
            seeds: scale.seed_list(),
        }
    }
}

/// The runs of a lambda search, one entry per lambda in the order trained.
#[derive(Debug, Clone, Default)]
pub struct LambdaGrid {
    /// (lambda, its runs over the seeds).
    pub results: Vec<(f64, Vec<History>)>,
}

impl LambdaGrid {
    /// Whether `lambda` has been trained (a lambda in both grids is trained once).
    pub fn has(&self, lambda: f64) -> bool {
        self.results.iter().any(|(l, _)| *l == lambda)
    }

    /// Records the runs of `lambda`.
    pub fn add(&mut self, lambda: f64, runs: Vec<History>) {
        self.results.push((lambda, runs));
    }

    /// The runs of `lambda` (empty if it was not trained).
    pub fn runs(&self, lambda: f64) -> &[History] {
        self.results
            .iter()
            .find(|(l, _)| *l == lambda)
            .map_or(&[], |(_, r)| r.as_slice())
    }

    /// The lambdas trained, smallest first, with their validation accuracies in %.
    pub fn validation(&self) -> Vec<(f64, Vec<f64>)> {
        let mut v: Vec<(f64, Vec<f64>)> = self
            .results
            .iter()
            .map(|(l, runs)| {
                (
                    *l,
                    runs.iter()
                        .filter_map(|h| h.val_acc())
                        .map(|a| 100.0 * a)
                        .collect(),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// The lambda with the best mean validation accuracy; an error if no run finished.
    pub fn best(&self) -> Result<f64> {
        self.results
            .iter()
            .map(|(l, runs)| (*l, Summary::val_acc(runs).mean))
            .filter(|(_, m)| m.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|b| b.0)
            .ok_or_else(|| {
                Error::config(
                    "lambda",
                    "no run of the search finished (every one diverged): try smaller lambdas",
                )
            })
    }

    /// The outcome: the best lambda's validation accuracy against the report's at the lambda
    /// it kept, and then, for the first time, its test accuracy against the report's 3-layer
    /// BN run (trained with that lambda).
    pub fn outcome(&self, scale: &Scale) -> Result<Comparison> {
        let best = self.best()?;
        let runs = self.runs(best);
        Ok(Comparison::new(scale)
            .row(
                format!(
                    "best λ = {best:.0e} (the report kept {:.0e})",
                    report::LAMBDA_KEPT
                ),
                runs,
                report::at(&report::LAMBDA_FINE, report::LAMBDA_KEPT),
            )
            .row(format!("best λ = {best:.0e}"), runs, report::THREE_LAYER_BN))
    }
}

/// Validation accuracy at each of `lambdas` against the report's number there in `table`
/// (e.g. [`report::LAMBDA_COARSE`]), the mean ± std of each lambda taken from `summary`
/// ([`summarize`](super::sweep::summarize) of the search's records); a lambda without runs
/// there gets an empty row.
pub fn lambda_comparison(
    summary: &Summaries,
    lambdas: &[f64],
    table: &[(f64, Reported)],
    scale: &Scale,
) -> Comparison {
    lambdas.iter().fold(Comparison::new(scale), |c, &l| {
        let label = format!("λ = {l:.0e}");
        let reported = report::at(table, l);
        match summary.at_lambda(l) {
            Some(s) => c.row_of(label, s, Metric::Validation, reported),
            None => c.row_of(label, &[][..] as &[f64], Metric::Validation, reported),
        }
    })
}
