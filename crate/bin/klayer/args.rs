//! Command-line flags shared by the subcommands, and their conversion into the library's
//! configuration types (which validate them).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use klayer::bn_stats::BnStats;
use klayer::data::Augment;
use klayer::net::{BnPlacement, Init, NetConfig};
use klayer::train::{LrSchedule, Optimizer, TrainConfig};
use klayer::{Error, Result};

/// Batch-norm placement flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BnFlag {
    /// Linear → BN → ReLU.
    Before,
    /// Linear → ReLU → BN.
    After,
    /// No batch normalization.
    None,
}

/// Optimizer flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OptFlag {
    /// Plain mini-batch SGD.
    Sgd,
    /// Adam (b1 0.9, b2 0.999, eps 1e-8).
    Adam,
}

/// BN statistics flag.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BnStatsFlag {
    /// Exponential moving average (alpha from --alpha).
    Ema,
    /// PreciseBN over --precise-batches random batches after training.
    Precise,
    /// The report's PreciseBN: re-estimated every --precise-batches batches during training.
    PreciseReport,
    /// Adaptive BN on each evaluation set (test-time augmentation fraction from --tta).
    Adaptive,
}

/// The network's architecture and initialisation.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Hidden layer sizes, comma-separated (e.g. 50,30,20,20,10,10,10,10 for the 9-layer net).
    #[arg(long, value_delimiter = ',', default_value = "50,50")]
    pub hidden: Vec<usize>,
    /// Where batch normalization goes.
    #[arg(long, value_enum, default_value = "before")]
    pub bn: BnFlag,
    /// Initialise every weight with this std instead of He init.
    #[arg(long)]
    pub sig: Option<f64>,
    /// Seed of every random choice (init, shuffling, augmentation).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl NetArgs {
    /// The network configuration for `input` features and `classes` classes (validated).
    pub fn config(&self, input: usize, classes: usize) -> Result<NetConfig> {
        let cfg = NetConfig::new(&self.hidden)
            .input(input)
            .classes(classes)
            .bn(match self.bn {
                BnFlag::Before => BnPlacement::Before,
                BnFlag::After => BnPlacement::After,
                BnFlag::None => BnPlacement::None,
            })
            .init(self.sig.map_or(Init::He, Init::Fixed))
            .seed(self.seed);
        cfg.check()?;
        Ok(cfg)
    }
}

/// Training settings.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Images per mini-batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// L2 factor on the weights.
    #[arg(long, default_value_t = 0.005, allow_negative_numbers = true)]
    pub lambda: f64,
    /// Number of cycles of the cyclic learning rate.
    #[arg(long, default_value_t = 2)]
    pub cycles: usize,
    /// Half-cycle length in steps [default: 5 × training images / batch].
    #[arg(long)]
    pub n_s: Option<usize>,
    /// Lowest learning rate.
    #[arg(long, default_value_t = 1e-5, allow_negative_numbers = true)]
    pub eta_min: f64,
    /// Highest learning rate.
    #[arg(long, default_value_t = 1e-1, allow_negative_numbers = true)]
    pub eta_max: f64,
    /// Factor on the peak learning rate from one cycle to the next (1 = no decay).
    #[arg(long, default_value_t = 1.0)]
    pub decay: f64,
    /// Update rule.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptFlag,
    /// BN statistics used for evaluation.
    #[arg(long, value_enum, default_value = "ema")]
    pub bn_stats: BnStatsFlag,
    /// EMA factor of the running BN statistics.
    #[arg(long, default_value_t = 0.9)]
    pub alpha: f64,
    /// Mini-batches per PreciseBN estimate [default: 200 for precise, 10 for precise-report].
    #[arg(long)]
    pub precise_batches: Option<usize>,
    /// Training-time augmentation: probability that an image is flipped/translated.
    #[arg(long)]
    pub augment: Option<f64>,
    /// Adaptive BN: fraction of the test images augmented before adapting (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub tta: f64,
    /// Learning-curve points per cycle.
    #[arg(long, default_value_t = 10)]
    pub evals_per_cycle: usize,
    /// Evaluate the training curves on the first N training images only [default: all].
    #[arg(long)]
    pub train_eval: Option<usize>,
}

impl TrainArgs {
    /// The training configuration for `n_train` training images (validated).
    pub fn config(&self, n_train: usize, seed: u64) -> Result<TrainConfig> {
        if self.batch == 0 {
            return Err(Error::config("--batch", "must be at least 1"));
        }
        let n_s = self.n_s.unwrap_or((5 * n_train / self.batch).max(1));
        let bn_stats = match self.bn_stats {
            BnStatsFlag::Ema => BnStats::Ema { alpha: self.alpha },
            BnStatsFlag::Precise => BnStats::Precise {
                batches: self.precise_batches.unwrap_or(200),
                during_training: false,
            },
            BnStatsFlag::PreciseReport => BnStats::Precise {
                batches: self.precise_batches.unwrap_or(10),
                during_training: true,
            },
            BnStatsFlag::Adaptive => BnStats::Adaptive { augment: self.tta },
        };
        if self.tta != 0.0 && !matches!(self.bn_stats, BnStatsFlag::Adaptive) {
            return Err(Error::config(
                "--tta",
                "test-time augmentation applies to Adaptive BN only: add --bn-stats adaptive",
            ));
        }
        let augment = self.augment.map(|p| Augment {
            p,
            ..Augment::default()
        });
        let cfg = TrainConfig {
            batch: self.batch,
            lambda: self.lambda,
            schedule: LrSchedule::Cyclic {
                eta_min: self.eta_min,
                eta_max: self.eta_max,
                n_s,
                cycles: self.cycles,
                decay: self.decay,
            },
            optimizer: match self.optimizer {
                OptFlag::Sgd => Optimizer::Sgd,
                OptFlag::Adam => Optimizer::ADAM,
            },
            bn_stats,
            augment,
            evals_per_cycle: self.evals_per_cycle,
            train_eval_limit: self.train_eval,
            seed,
            divergence_loss: TrainConfig::default().divergence_loss,
            progress: true,
        };
        cfg.check(n_train)?;
        Ok(cfg)
    }
}

/// Where the data comes from and how much of it is used.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The cifar-10-batches-bin directory [default: $KLAYER_DATA, then ./data/cifar-10-batches-bin,
    /// else download into ./data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N training images (after the validation split).
    #[arg(long)]
    pub n_train: Option<usize>,
    /// Validation images, taken from the end of the 50,000 training images.
    #[arg(long, default_value_t = 5000)]
    pub n_val: usize,
    /// Use only the first N test images.
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Fail instead of downloading when no data is found.
    #[arg(long)]
    pub no_download: bool,
}
