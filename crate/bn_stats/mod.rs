//! Batch-norm statistics for evaluation: where a BN layer's running mean and variance come from
//! (report section 3.1), and everything each kind of statistics does during a run.
//!
//! - [`BnStats::Ema`] (`ema.rs`): exponential moving average over training mini-batches,
//!   initialised from the first one: `μ_av ← α μ_av + (1 − α) μ_B`.
//! - [`BnStats::Precise`] (`precise.rs`): PreciseBN (Wu & Johnson, "Rethinking 'Batch' in
//!   BatchNorm", 2021, <https://arxiv.org/abs/2105.07576>): with weights frozen, the population
//!   mean and variance over many mini-batches run in train mode, `μ = mean(μ_B)`,
//!   `σ² = mean(σ²_B + μ_B²) − μ²`, accumulated stably by [`Moments`]; either once after
//!   training or, as in the report, over every window of consecutive training mini-batches.
//! - [`BnStats::Adaptive`] (`adaptive.rs`): Adaptive BN (Li et al., "Revisiting Batch
//!   Normalization For Practical Domain Adaptation", 2016, <https://arxiv.org/abs/1603.04779>):
//!   at evaluation time the statistics are recomputed on the evaluation set itself, layer by
//!   layer. This is transductive: the prediction for one image depends on the others in the set.
//!
//! Each kind is a [`Method`]: what it does after every training step, once after training, and
//! when a network is evaluated. The trainer and the evaluation ask [`BnStats::method`] for it
//! and never look at the kind. A new kind of statistics is one file implementing [`Method`],
//! a variant of [`BnStats`] with its line in [`BnStats::method`], and a value of the CLI's
//! `--bn-stats`.

mod adaptive;
mod ema;
mod moments;
mod precise;

use std::ops::{Deref, DerefMut};

use ndarray::ArrayView2;

pub use adaptive::adapt;
pub use ema::{init_from_first_batch, update_ema};
pub use moments::Moments;
pub use precise::{precise_bn, PreciseAccumulator};

use crate::data::Dataset;
use crate::net::Network;
use crate::{Result, Scalar};

/// Which statistics a network's BN layers use at evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum BnStats {
    /// Exponential moving average with factor `alpha` (0.9 in the assignment), updated on every
    /// training mini-batch and initialised from the first.
    Ema {
        /// Weight of the old average.
        alpha: f64,
    },
    /// PreciseBN population statistics over `batches` mini-batches.
    ///
    /// With `during_training = false` (fvcore's way; 200 batches there) the EMA runs during
    /// training for the curves, and after training, with the weights frozen, `batches` random
    /// training mini-batches replace it. With `during_training = true` (the report's way, with
    /// 10 batches) the statistics of every window of `batches` consecutive training
    /// mini-batches replace the running statistics at the end of that window.
    Precise {
        /// Mini-batches per estimate.
        batches: usize,
        /// The report's windowed variant instead of one estimate after training.
        during_training: bool,
    },
    /// Adaptive BN: statistics recomputed on each evaluation set, after a random `augment`
    /// fraction (0 to 1) of its images is flipped and/or translated (test-time augmentation).
    /// During training the EMA is kept as well, but evaluation never uses it.
    Adaptive {
        /// Fraction of the evaluation images augmented before the statistics are computed and
        /// the images classified.
        augment: f64,
    },
}

impl Default for BnStats {
    fn default() -> Self {
        BnStats::Ema { alpha: 0.9 }
    }
}

impl BnStats {
    /// PreciseBN after training with fvcore's 200 batches.
    pub const PRECISE: BnStats = BnStats::Precise {
        batches: 200,
        during_training: false,
    };
    /// The report's PreciseBN: re-estimated every 10 training mini-batches.
    pub const PRECISE_REPORT: BnStats = BnStats::Precise {
        batches: 10,
        during_training: true,
    };

    /// What these statistics do during a run of a network of float type `T`, with a fresh
    /// state (the one place that maps a setting to its implementation).
    pub fn method<T: Scalar>(&self) -> Box<dyn Method<T>> {
        match *self {
            BnStats::Ema { alpha } => Box::new(ema::Ema { alpha }),
            BnStats::Precise {
                batches,
                during_training: false,
            } => Box::new(precise::AfterTraining { batches }),
            BnStats::Precise {
                batches,
                during_training: true,
            } => Box::new(precise::Windowed::new(batches)),
            BnStats::Adaptive { augment } => Box::new(adaptive::Adaptive { augment }),
        }
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        self.method::<f64>().check()
    }

    /// A short label with the settings: `EMA (α = 0.9)`, `PreciseBN (…)`, `Adaptive BN (…)`.
    pub fn label(&self) -> String {
        self.method::<f64>().label()
    }
}

/// What one kind of BN statistics does during a run: after every training step, once after
/// training, and whenever the network is evaluated. [`crate::train::train`] and
/// [`crate::train::evaluate`] call these and nothing else.
///
/// Networks without BN layers go through the same calls; a method has nothing to do there.
pub trait Method<T: Scalar> {
    /// Checks the settings: a clear error for a value out of range.
    fn check(&self) -> Result<()>;

    /// A short label with the settings.
    fn label(&self) -> String;

    /// After each training step's update (not after a step that ended the run as diverged):
    /// every BN layer holds the statistics of that step's mini-batch
    /// ([`crate::layers::BatchNorm::last_batch`]).
    fn after_step(&mut self, net: &mut Network<T>);

    /// Once after the last training step (not after a diverged run), before the final
    /// evaluation. Nothing by default.
    fn after_training(&mut self, net: &mut Network<T>, run: &Finished<'_, T>) -> Result<()> {
        let _ = (net, run);
        Ok(())
    }

    /// The network that evaluates the rows `x`: `net` itself with its stored statistics (the
    /// default), or a copy with statistics of its own.
    ///
    /// # Shapes
    /// `x`: (n, input).
    fn for_eval<'a>(&self, net: &'a mut Network<T>, x: ArrayView2<T>) -> Result<EvalNet<'a, T>> {
        let _ = x;
        Ok(EvalNet::Stored(net))
    }

    /// The fraction of a held-out set's images augmented before its final evaluation
    /// (test-time augmentation, see [`crate::train::evaluate_test`]); 0 by default.
    fn test_augment(&self) -> f64 {
        0.0
    }
}

/// What a [`Method`] may use once training has finished.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a, T> {
    /// The training set.
    pub train: &'a Dataset<T>,
    /// Images per training mini-batch.
    pub batch: usize,
    /// The run's seed (methods draw their own random stream from it).
    pub seed: u64,
}

/// The network an evaluation runs: the trained one with its stored statistics, or a copy
/// whose statistics were computed for the evaluation set ([`Method::for_eval`]).
#[derive(Debug)]
pub enum EvalNet<'a, T> {
    /// The network itself.
    Stored(&'a mut Network<T>),
    /// A copy with other BN statistics.
    Adapted(Network<T>),
}

impl<T> Deref for EvalNet<'_, T> {
    type Target = Network<T>;

    fn deref(&self) -> &Network<T> {
        match self {
            EvalNet::Stored(net) => net,
            EvalNet::Adapted(net) => net,
        }
    }
}

impl<T> DerefMut for EvalNet<'_, T> {
    fn deref_mut(&mut self) -> &mut Network<T> {
        match self {
            EvalNet::Stored(net) => net,
            EvalNet::Adapted(net) => net,
        }
    }
}
