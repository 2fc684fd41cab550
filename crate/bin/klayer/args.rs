//! Command-line flags shared by the subcommands, their conversion into the library's
//! configuration types (which validate them), and the size limits checked before anything big
//! is allocated.
//!
//! Every numeric flag accepts a leading minus sign (`--eta-min -1e-5` is parsed, then refused
//! by the range check with the flag's name), and every error names the flag, not the library
//! field behind it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use klayer::bn_stats::BnStats;
use klayer::data::{Augment, DataSource, LoadOptions, NUM_CLASSES};
use klayer::net::{BnPlacement, Init, NetConfig};
use klayer::train::{LrSchedule, Optimizer, TrainConfig};
use klayer::{Error, Result};

/// Batch-norm placement flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

/// Parses a count (a whole number ≥ 0), saying what is wrong with anything else; a minus sign
/// is accepted by the command line and refused here with a clear message.
pub fn count(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<usize>() {
        return Ok(v);
    }
    match t.parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("{v} is negative; it must be a whole number ≥ 0")),
        Ok(v) => Err(format!(
            "{v} is too large; it must be at most {}",
            usize::MAX
        )),
        Err(_) if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("{t} is negative; it must be a whole number ≥ 0"))
        }
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "{t} is too large; it must be at most {}",
            usize::MAX
        )),
        Err(_) => Err(format!("`{t}` is not a whole number")),
    }
}

/// The command-line flag that sets the library setting `name` (the names in
/// [`Error::InvalidConfig`]), so that every message names what the user typed.
pub fn flag_for(name: &'static str) -> &'static str {
    match name {
        "batch" => "--batch",
        "lambda" => "--lambda",
        "eta_min" => "--eta-min",
        "eta_max" => "--eta-max",
        "n_s" => "--n-s",
        "cycles" => "--cycles",
        "decay" => "--decay",
        "steps" => "--steps",
        "evals_per_cycle" => "--evals-per-cycle",
        "train_eval_limit" => "--train-eval",
        "bn_stats.alpha" => "--alpha",
        "bn_stats.batches" => "--precise-batches",
        // BnStats::Adaptive's field is the test-time augmentation fraction.
        "augment" => "--tta",
        // Augment's fields: the training-time augmentation.
        "p" | "max_shift" => "--augment",
        "n_train" => "--n-train",
        "n_val" => "--n-val",
        "n_test" => "--n-test",
        "hidden" => "--hidden",
        "sig" => "--sig",
        "h" => "--h",
        "input" => "--features",
        other => other,
    }
}

/// `e` with its setting named by the flag that sets it.
pub fn flagged(e: Error) -> Error {
    e.rename_setting(flag_for)
}

/// The network's architecture and initialisation.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// Hidden layer sizes, comma-separated (e.g. 50,30,20,20,10,10,10,10 for the 9-layer net).
    #[arg(long, value_delimiter = ',', default_value = "50,50", value_parser = count, allow_hyphen_values = true)]
    pub hidden: Vec<usize>,
    /// Where batch normalization goes.
    #[arg(long, value_enum, default_value = "before")]
    pub bn: BnFlag,
    /// Initialise every weight with this std instead of He init.
    #[arg(long, allow_hyphen_values = true)]
    pub sig: Option<f64>,
    /// Seed of every random choice (init, shuffling, augmentation).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub seed: u64,
}

impl NetArgs {
    /// The network configuration for `input` features and `classes` classes (validated;
    /// not built: see [`Budget`] for its size).
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
        cfg.check().map_err(flagged)?;
        Ok(cfg)
    }

    /// True if the net has batch normalization.
    pub fn batch_norm(&self) -> bool {
        self.bn != BnFlag::None
    }
}

/// Training settings.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// L2 factor on the weights.
    #[arg(long, default_value_t = 0.005, allow_hyphen_values = true)]
    pub lambda: f64,
    /// Update rule.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptFlag,
    /// BN statistics used for evaluation.
    #[arg(long, value_enum, default_value = "ema")]
    pub bn_stats: BnStatsFlag,
    /// The other training settings (those a sweep keeps the same for every run).
    #[command(flatten)]
    pub fixed: FixedTrainArgs,
}

/// The training settings other than lambda, the optimizer and the BN statistics: the ones
/// `klayer sweep` keeps the same for every run of a grid (it varies those three).
#[derive(Debug, Clone, Args)]
pub struct FixedTrainArgs {
    /// Images per mini-batch.
    #[arg(long, default_value_t = 100, value_parser = count, allow_hyphen_values = true)]
    pub batch: usize,
    /// Number of cycles of the cyclic learning rate.
    #[arg(long, default_value_t = 2, value_parser = count, allow_hyphen_values = true)]
    pub cycles: usize,
    /// Half-cycle length in steps [default: 5 × training images / batch].
    #[arg(long, value_parser = count, allow_hyphen_values = true)]
    pub n_s: Option<usize>,
    /// Lowest learning rate.
    #[arg(long, default_value_t = 1e-5, allow_hyphen_values = true)]
    pub eta_min: f64,
    /// Highest learning rate.
    #[arg(long, default_value_t = 1e-1, allow_hyphen_values = true)]
    pub eta_max: f64,
    /// Factor on the peak learning rate from one cycle to the next (1 = no decay).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub decay: f64,
    /// EMA factor of the running BN statistics.
    #[arg(long, default_value_t = 0.9, allow_hyphen_values = true)]
    pub alpha: f64,
    /// Mini-batches per PreciseBN estimate [default: 200 for precise, 10 for precise-report].
    #[arg(long, value_parser = count, allow_hyphen_values = true)]
    pub precise_batches: Option<usize>,
    /// Training-time augmentation: probability that an image is flipped/translated.
    #[arg(long, allow_hyphen_values = true)]
    pub augment: Option<f64>,
    /// Adaptive BN: fraction of the test images augmented before adapting (0 to 1).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub tta: f64,
    /// Learning-curve points per cycle.
    #[arg(long, default_value_t = 10, value_parser = count, allow_hyphen_values = true)]
    pub evals_per_cycle: usize,
    /// Evaluate the training curves on the first N training images only (more than there are:
    /// all of them).
    #[arg(long, default_value_t = klayer::train::TRAIN_EVAL_IMAGES, value_parser = count, allow_hyphen_values = true)]
    pub train_eval: usize,
}

impl TrainArgs {
    /// The training configuration for `n_train` training images and the net `net` (validated,
    /// also against each other: BN-only settings need a net with BN, and BN needs batches of
    /// at least 2).
    pub fn config(&self, n_train: usize, net: &NetArgs) -> Result<TrainConfig> {
        if self.fixed.batch == 0 {
            return Err(Error::config("--batch", "must be at least 1"));
        }
        if !net.batch_norm() {
            let bn_only = match self.bn_stats {
                BnStatsFlag::Precise | BnStatsFlag::PreciseReport => Some("--bn-stats precise"),
                BnStatsFlag::Adaptive => Some("--bn-stats adaptive"),
                BnStatsFlag::Ema if self.fixed.tta != 0.0 => Some("--tta"),
                BnStatsFlag::Ema if self.fixed.precise_batches.is_some() => {
                    Some("--precise-batches")
                }
                BnStatsFlag::Ema => None,
            };
            if let Some(flag) = bn_only {
                return Err(Error::config(
                    "--bn",
                    format!(
                        "`none` has no batch normalization, so {flag} (a setting of BN \
                         statistics) would do nothing: drop it, or use --bn before or --bn after"
                    ),
                ));
            }
        }
        let n_s = self
            .fixed
            .n_s
            .unwrap_or((5 * n_train / self.fixed.batch).max(1));
        let bn_stats = match self.bn_stats {
            BnStatsFlag::Ema => BnStats::Ema {
                alpha: self.fixed.alpha,
            },
            BnStatsFlag::Precise => BnStats::Precise {
                batches: self.fixed.precise_batches.unwrap_or(200),
                during_training: false,
            },
            BnStatsFlag::PreciseReport => BnStats::Precise {
                batches: self.fixed.precise_batches.unwrap_or(10),
                during_training: true,
            },
            BnStatsFlag::Adaptive => BnStats::Adaptive {
                augment: self.fixed.tta,
            },
        };
        if self.fixed.tta != 0.0 && self.bn_stats != BnStatsFlag::Adaptive {
            return Err(Error::config(
                "--tta",
                format!(
                    "{}: test-time augmentation applies to Adaptive BN only: add --bn-stats adaptive",
                    self.fixed.tta
                ),
            ));
        }
        if self.fixed.precise_batches.is_some()
            && !matches!(
                self.bn_stats,
                BnStatsFlag::Precise | BnStatsFlag::PreciseReport
            )
        {
            return Err(Error::config(
                "--precise-batches",
                "applies to PreciseBN only: add --bn-stats precise or --bn-stats precise-report",
            ));
        }
        let augment = self.fixed.augment.map(|p| Augment {
            p,
            ..Augment::default()
        });
        let cfg = TrainConfig {
            batch: self.fixed.batch,
            lambda: self.lambda,
            schedule: LrSchedule::Cyclic {
                eta_min: self.fixed.eta_min,
                eta_max: self.fixed.eta_max,
                n_s,
                cycles: self.fixed.cycles,
                decay: self.fixed.decay,
            },
            optimizer: match self.optimizer {
                OptFlag::Sgd => Optimizer::Sgd,
                OptFlag::Adam => Optimizer::ADAM,
            },
            bn_stats,
            augment,
            evals_per_cycle: self.fixed.evals_per_cycle,
            train_eval_limit: Some(self.fixed.train_eval),
            seed: net.seed,
            divergence_loss: TrainConfig::default().divergence_loss,
            progress: true,
            label: None,
        };
        cfg.check_for(n_train, net.batch_norm()).map_err(flagged)?;
        Ok(cfg)
    }
}

/// Parses `--dataset`: `cifar10` or `fashion-mnist`.
pub fn dataset(s: &str) -> std::result::Result<DataSource, String> {
    s.parse::<DataSource>().map_err(|e| match e {
        Error::InvalidConfig { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// Which data set, where it comes from and how much of it is used.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The data set: cifar10 or fashion-mnist.
    #[arg(long, default_value = "cifar10", value_parser = dataset)]
    pub dataset: DataSource,
    /// The data set's directory [default: $KLAYER_DATA, then ./data/cifar-10-batches-bin
    /// (Fashion-MNIST: $KLAYER_DATA if it holds the files, ./data/fashion-mnist,
    /// /usr/share/datasets/fashion-mnist), else download into ./data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use only the first N training images (after the validation split).
    #[arg(long, value_parser = count, allow_hyphen_values = true)]
    pub n_train: Option<usize>,
    /// Validation images, taken from the end of the training images (50,000 of CIFAR-10,
    /// 60,000 of Fashion-MNIST).
    #[arg(long, default_value_t = 5000, value_parser = count, allow_hyphen_values = true)]
    pub n_val: usize,
    /// Use only the first N test images.
    #[arg(long, value_parser = count, allow_hyphen_values = true)]
    pub n_test: Option<usize>,
    /// Fail instead of downloading when no data is found.
    #[arg(long)]
    pub no_download: bool,
}

impl DataArgs {
    /// The loader's options (validated), and the number of training images they give.
    pub fn options(&self) -> Result<(LoadOptions, usize)> {
        let opts = LoadOptions {
            path: self.data.clone(),
            n_train: self.n_train,
            n_val: self.n_val,
            n_test: self.n_test,
            download: !self.no_download,
            ..LoadOptions::new(self.dataset)
        };
        opts.check().map_err(flagged)?;
        let n_train = opts
            .n_train
            .unwrap_or(self.dataset.train_images() - opts.n_val);
        Ok((opts, n_train))
    }
}

/// Floating-point operations the default 3-layer run does per second on two cores (its
/// 9,000 steps of 6 · 100 · 158,000 operations, plus evaluations, in about 11 s), used to turn
/// an operation count into a duration for the messages.
pub const FLOPS_PER_SECOND: f64 = 1e11;
/// The same for a gradient check, whose tiny products run far below full speed.
pub const GRADCHECK_FLOPS_PER_SECOND: f64 = 1e9;

/// What a command will need, estimated from its settings before anything is allocated, and
/// checked against limits: memory against what this machine has available, work against a
/// day of computing (train, bench) or about half an hour (gradcheck: tiny products run far
/// below full speed).
#[derive(Debug, Default)]
pub struct Budget {
    /// Bytes, by what they are for and the flag that controls them most.
    memory: Vec<(&'static str, &'static str, u128)>,
    /// Floating-point operations and the flag that controls them most.
    work: Vec<(&'static str, &'static str, u128)>,
}

/// Most floating-point operations a training or benchmark run may take: 1e16, about a day at
/// [`FLOPS_PER_SECOND`].
pub const MAX_WORK: u128 = 10_000_000_000_000_000;
/// Most floating-point operations a gradient check may take: 2e12, about half an hour at
/// [`GRADCHECK_FLOPS_PER_SECOND`].
pub const MAX_GRADCHECK_WORK: u128 = 2_000_000_000_000;

/// Sizes of a net's layers: (weights and other parameters, activations per image).
pub fn net_sizes(net: &NetConfig) -> (u128, u128) {
    let mut sizes = vec![net.input as u128];
    sizes.extend(net.hidden.iter().map(|&h| h as u128));
    sizes.push(net.classes as u128);
    let mut params: u128 = 0;
    let mut units: u128 = 0;
    for w in sizes.windows(2) {
        // Weights, bias, and for BN gamma, beta and two running statistics.
        params = params
            .saturating_add(w[0].saturating_mul(w[1]))
            .saturating_add(w[1].saturating_mul(5));
        units = units.saturating_add(w[1]);
    }
    (params, units)
}

impl Budget {
    /// Adds `bytes` of memory for `what`, controlled mostly by `flag`.
    pub fn memory(&mut self, what: &'static str, flag: &'static str, bytes: u128) -> &mut Self {
        self.memory.push((what, flag, bytes));
        self
    }

    /// Adds `flops` floating-point operations for `what`, controlled mostly by `flag`.
    pub fn work(&mut self, what: &'static str, flag: &'static str, flops: u128) -> &mut Self {
        self.work.push((what, flag, flops));
        self
    }

    /// The memory and work of training (or benchmarking) `net` with mini-batches of `batch`
    /// for `steps` steps in `scalar` bytes per number, plus `eval_rows` rows evaluated
    /// `evals` times (in chunks of at most `eval_chunk` rows at a time).
    pub fn network(
        &mut self,
        net: &NetConfig,
        scalar: u128,
        batch: u128,
        steps: u128,
        eval: (u128, u128, u128),
    ) -> &mut Self {
        let (params, units) = net_sizes(net);
        let (evals, eval_rows, eval_chunk) = eval;
        // Value, gradient and two Adam moments per parameter; a few arrays per unit and image
        // on the way forward and back.
        self.memory(
            "the parameters",
            "--hidden",
            params.saturating_mul(4 * scalar),
        );
        self.memory(
            "the activations of a mini-batch",
            "--hidden",
            units.saturating_mul(batch).saturating_mul(4 * scalar),
        );
        self.memory(
            "the activations of an evaluation",
            "--hidden",
            units.saturating_mul(eval_chunk).saturating_mul(2 * scalar),
        );
        self.memory("the per-step history", "--n-s", steps.saturating_mul(16));
        self.work(
            "the update steps",
            "--hidden",
            steps
                .saturating_mul(batch)
                .saturating_mul(params)
                .saturating_mul(6),
        );
        self.work(
            "the evaluations",
            "--hidden",
            evals
                .saturating_mul(eval_rows)
                .saturating_mul(params)
                .saturating_mul(2),
        );
        self
    }

    /// Checks the totals against the limits: memory against what this machine has available,
    /// work against `max_work` operations, done at `flops_per_second`. The error names the
    /// flag of the largest part.
    pub fn check(&self, max_work: u128, flops_per_second: f64) -> Result<()> {
        let total = |v: &[(&str, &'static str, u128)]| {
            v.iter().fold(0u128, |s, &(_, _, b)| s.saturating_add(b))
        };
        let largest = |v: &[(&'static str, &'static str, u128)]| {
            v.iter()
                .max_by_key(|&&(_, _, b)| b)
                .map_or(("nothing", "size"), |&(w, f, _)| (w, f))
        };
        let bytes = total(&self.memory);
        let (limit, source) = memory_limit();
        if bytes > limit as u128 {
            let (what, flag) = largest(&self.memory);
            return Err(Error::config(
                flag,
                format!(
                    "this needs about {} of memory (most of it for {what}), more than the {} \
                     limit ({source}); lower {flag}",
                    human_bytes(bytes),
                    human_bytes(limit as u128)
                ),
            ));
        }
        let flops = total(&self.work);
        if flops > max_work {
            let (what, flag) = largest(&self.work);
            return Err(Error::config(
                flag,
                format!(
                    "this needs about {:.1e} floating-point operations (most of them for \
                     {what}), more than the limit of {:.0e} (about {} on two cores); lower \
                     {flag}",
                    flops as f64,
                    max_work as f64,
                    human_seconds(max_work as f64 / flops_per_second)
                ),
            ));
        }
        Ok(())
    }
}

/// The memory a run may use: `MemAvailable` of `/proc/meminfo` (what the kernel says can be
/// allocated without swapping), else 8 GiB; and where the figure comes from.
pub fn memory_limit() -> (u64, &'static str) {
    let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    match available {
        Some(kb) => (
            kb.saturating_mul(1024),
            "the memory available on this machine",
        ),
        None => (
            8 << 30,
            "8 GiB; this system does not report its available memory",
        ),
    }
}

fn human_bytes(b: u128) -> String {
    let b = b as f64;
    match b {
        b if b >= 1e15 => format!("{b:.1e} bytes"),
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b => format!("{:.0} MB", b / 1e6),
    }
}

fn human_seconds(s: f64) -> String {
    if s >= 86_400.0 * 2.0 {
        format!("{:.0} days", s / 86_400.0)
    } else if s >= 3_600.0 {
        format!("{:.0} hours", s / 3_600.0)
    } else {
        format!("{:.0} minutes", s / 60.0)
    }
}

/// The data a run on `source` holds: the loaded sets in `scalar`-byte numbers plus the raw
/// bytes of all the images read.
pub fn data_bytes(source: DataSource, images: usize, scalar: u128) -> u128 {
    let dim = source.shape().dim() as u128;
    let raw = (source.train_images() + source.test_images()) as u128 * dim;
    (images as u128) * dim * scalar + raw
}

/// Classes of CIFAR-10 and of Fashion-MNIST (for nets built before the data is loaded).
pub const CLASSES: usize = NUM_CLASSES;
