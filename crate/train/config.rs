//! [`TrainConfig`]: every setting of a training run, with the assignment's defaults.

use super::{LrSchedule, Optimizer};
use crate::bn_stats::BnStats;
use crate::data::Augment;
use crate::{Error, Result};

/// Settings of a training run. `Default` gives the assignment's: batch 100, lambda 0.005,
/// cyclic rate 1e-5..1e-1 with `n_s = 2250` for 2 cycles, SGD, EMA statistics, no augmentation.
///
/// # Example
/// ```
/// use klayer::train::TrainConfig;
/// let cfg = TrainConfig { lambda: 0.01, ..TrainConfig::default() };
/// assert_eq!(cfg.schedule.total_steps(), 9000);
/// assert!(cfg.check(45_000).is_ok());
/// assert!(TrainConfig { batch: 0, ..cfg }.check(45_000).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Images per mini-batch. Defaults to 100.
    pub batch: usize,
    /// L2 factor on the weights. Defaults to 0.005.
    pub lambda: f64,
    /// Learning-rate schedule; its length is the run's length. Defaults to
    /// [`LrSchedule::assignment`]`(45_000, 100, 2)`.
    pub schedule: LrSchedule,
    /// Update rule. Defaults to [`Optimizer::Sgd`].
    pub optimizer: Optimizer,
    /// BN statistics for evaluation. Defaults to EMA with α = 0.9.
    pub bn_stats: BnStats,
    /// Training-time augmentation. Defaults to none.
    pub augment: Option<Augment>,
    /// Learning-curve points per cycle. Defaults to 10.
    pub evals_per_cycle: usize,
    /// Evaluate the training curves on the first N training images only (`None`: all of them).
    /// Defaults to `None`.
    pub train_eval_limit: Option<usize>,
    /// Seed for shuffling, augmentation and PreciseBN batches. Defaults to 0.
    pub seed: u64,
    /// A mini-batch loss above this (or non-finite) ends the run as diverged. Defaults to 100
    /// (chance level is ln 10 ≈ 2.3).
    pub divergence_loss: f64,
    /// Print a progress line to stderr at every evaluation. Defaults to false.
    pub progress: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch: 100,
            lambda: 0.005,
            schedule: LrSchedule::assignment(45_000, 100, 2),
            optimizer: Optimizer::Sgd,
            bn_stats: BnStats::default(),
            augment: None,
            evals_per_cycle: 10,
            train_eval_limit: None,
            seed: 0,
            divergence_loss: 100.0,
            progress: false,
        }
    }
}

impl TrainConfig {
    /// Checks every setting against a training set of `n_train` images.
    pub fn check(&self, n_train: usize) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::config("batch", "must be at least 1"));
        }
        if self.batch > n_train {
            return Err(Error::config(
                "batch",
                format!(
                    "{} is larger than the {n_train} training images; use a smaller batch",
                    self.batch
                ),
            ));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(Error::config(
                "lambda",
                format!("{}: must be finite and ≥ 0", self.lambda),
            ));
        }
        self.schedule.check()?;
        self.bn_stats.check()?;
        if let Some(a) = &self.augment {
            a.check()?;
        }
        if self.evals_per_cycle == 0 {
            return Err(Error::config("evals_per_cycle", "must be at least 1"));
        }
        if self.train_eval_limit == Some(0) {
            return Err(Error::config("train_eval_limit", "must be at least 1"));
        }
        if let Optimizer::Adam { beta1, beta2, eps } = self.optimizer {
            let eps_ok = eps > 0.0;
            if !(0.0..1.0).contains(&beta1) || !(0.0..1.0).contains(&beta2) || !eps_ok {
                return Err(Error::config(
                    "optimizer",
                    "Adam needs beta1 and beta2 in [0, 1) and eps > 0",
                ));
            }
        }
        let limit_ok = self.divergence_loss > 0.0;
        if !limit_ok {
            return Err(Error::config("divergence_loss", "must be positive"));
        }
        Ok(())
    }
}
