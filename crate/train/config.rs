//! [`TrainConfig`]: every setting of a training run, with the assignment's defaults.

use super::{LrSchedule, Optimizer};
use crate::bn_stats::BnStats;
use crate::data::Augment;
use crate::{Error, Result};

/// Most images PreciseBN may run through the network after training (`batches × batch`): 5
/// million, 111 passes over the 45,000 training images and 250 times the default 200 × 100.
/// Beyond it the estimate does not get better, only slower.
pub const MAX_PRECISE_IMAGES: usize = 5_000_000;

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
    /// Defaults to [`TRAIN_EVAL_IMAGES`].
    pub train_eval_limit: Option<usize>,
    /// Seed for shuffling, augmentation and PreciseBN batches. Defaults to 0.
    pub seed: u64,
    /// A mini-batch loss above this (or non-finite) ends the run as diverged. Defaults to 100
    /// (chance level is ln 10 ≈ 2.3).
    pub divergence_loss: f64,
    /// Print a progress line to stderr at every evaluation. Defaults to false.
    pub progress: bool,
    /// Prefix of the progress lines (e.g. `seed 1`), so that the lines of runs that train at
    /// the same time can be told apart: `[seed 1] step …`. Not part of the settings (not
    /// serialized, no effect on the numbers). Defaults to `None` (no prefix).
    #[serde(skip)]
    pub label: Option<String>,
}

/// Training images the learning curves are evaluated on by default: the first 10,000, twice
/// the validation set. A curve point on all 45,000 would cost as much as about 150 update steps,
/// and 20 of them more than a third of a default run.
pub const TRAIN_EVAL_IMAGES: usize = 10_000;

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
            train_eval_limit: Some(TRAIN_EVAL_IMAGES),
            seed: 0,
            divergence_loss: 100.0,
            progress: false,
            label: None,
        }
    }
}

impl TrainConfig {
    /// Checks every setting against a training set of `n_train` images.
    ///
    /// Besides the ranges of each setting: at most [`MAX_STEPS`](super::MAX_STEPS) update
    /// steps and learning-curve points per cycle, PreciseBN after training on at most
    /// [`MAX_PRECISE_IMAGES`] images, and PreciseBN during training re-estimated at least once.
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
        let steps = self.schedule.total_steps();
        self.bn_stats.check()?;
        match self.bn_stats {
            BnStats::Precise {
                batches,
                during_training: false,
            } => {
                let images = batches.checked_mul(self.batch);
                if images.is_none_or(|n| n > MAX_PRECISE_IMAGES) {
                    return Err(Error::config(
                        "bn_stats.batches",
                        format!(
                            "PreciseBN over {batches} batches of {} images is more than the \
                             limit of {MAX_PRECISE_IMAGES} images ({} batches of {}); use fewer \
                             batches",
                            self.batch,
                            MAX_PRECISE_IMAGES / self.batch,
                            self.batch
                        ),
                    ));
                }
            }
            BnStats::Precise {
                batches,
                during_training: true,
            } if batches > steps => {
                return Err(Error::config(
                    "bn_stats.batches",
                    format!(
                        "PreciseBN every {batches} batches during training never happens in a \
                         run of {steps} steps; it must be at most {steps}"
                    ),
                ));
            }
            _ => {}
        }
        if let Some(a) = &self.augment {
            a.check()?;
        }
        if self.evals_per_cycle == 0 {
            return Err(Error::config("evals_per_cycle", "must be at least 1"));
        }
        // At most one point per step is recorded; beyond the step limit a count is a mistake
        // (and `evals_per_cycle × cycles` could overflow).
        if self.evals_per_cycle > super::MAX_STEPS {
            return Err(Error::config(
                "evals_per_cycle",
                format!(
                    "{}: more learning-curve points per cycle than a run may have steps \
                     ({}); at most one point per step is recorded anyway",
                    self.evals_per_cycle,
                    super::MAX_STEPS
                ),
            ));
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

    /// [`check`](Self::check), plus what depends on the network: a net with batch
    /// normalization needs mini-batches of at least 2 images (the statistics of one image are
    /// the image itself: every normalised value is 0 and training learns nothing).
    ///
    /// # Example
    /// ```
    /// use klayer::train::TrainConfig;
    /// let cfg = TrainConfig { batch: 1, ..TrainConfig::default() };
    /// assert!(cfg.check_for(45_000, false).is_ok());
    /// assert!(cfg.check_for(45_000, true).is_err());
    /// ```
    pub fn check_for(&self, n_train: usize, batch_norm: bool) -> Result<()> {
        self.check(n_train)?;
        if batch_norm && self.batch < 2 {
            return Err(Error::config(
                "batch",
                format!(
                    "{}: batch normalization needs at least 2 images per mini-batch (the \
                     statistics of one image normalise it to 0); use a larger batch or no BN",
                    self.batch
                ),
            ));
        }
        Ok(())
    }
}
