//! The report's experiments as data: a [`Run`] is a network and its training settings; a
//! [`Scale`] says how much data and how many seeds to use (full size, or the quick mode the
//! notebooks use in CI); [`run_seeds`] repeats a run and [`Summary`] condenses the results.
//!
//! # Example
//! ```no_run
//! use klayer::experiments::{Run, Scale};
//! let scale = Scale::from_env();            // KLAYER_QUICK=1 shrinks everything
//! let data = scale.load()?;                 // CIFAR-10, normalised, 45k / 5k / 10k
//! let run = Run::three_layer(&scale).lambda(0.01);
//! let history = run.seed(1).train(&data)?;
//! println!("{}", history.summary());
//! # Ok::<(), klayer::Error>(())
//! ```

pub mod sections;

use crate::bn_stats::BnStats;
use crate::data::{Cifar10, LoadOptions};
use crate::net::{BnPlacement, Init, NetConfig};
use crate::train::{train, History, LrSchedule, Optimizer, TrainConfig};
use crate::Result;

/// Hidden sizes of the report's 3-layer net.
pub const THREE_LAYER: [usize; 2] = [50, 50];
/// Hidden sizes of the report's 9-layer net.
pub const NINE_LAYER: [usize; 8] = [50, 30, 20, 20, 10, 10, 10, 10];
/// Hidden sizes of the 7-layer net trained with Adam (section 3.2).
pub const SEVEN_LAYER_ADAM: [usize; 6] = [60, 50, 40, 30, 20, 10];
/// The two wide 7-layer nets of section 3.2.
pub const WIDE: [[usize; 6]; 2] = [[256, 128, 64, 48, 32, 16], [512, 256, 128, 64, 32, 16]];

/// How big the experiments are: full size, or quick (for CI and a first look).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    /// Training images (`None`: all 45,000).
    pub n_train: Option<usize>,
    /// Validation images.
    pub n_val: usize,
    /// Test images (`None`: all 10,000).
    pub n_test: Option<usize>,
    /// Seeds per setting.
    pub seeds: usize,
    /// True in quick mode.
    pub quick: bool,
}

impl Scale {
    /// Full size: 45,000 / 5,000 / 10,000 images, 3 seeds.
    pub fn full() -> Self {
        Scale {
            n_train: None,
            n_val: 5_000,
            n_test: None,
            seeds: 3,
            quick: false,
        }
    }

    /// Quick: 5,000 training, 1,000 validation and 2,000 test images, 1 seed. The cyclic
    /// schedule keeps its shape (`n_s` = 5 epochs), so a run is about 9 times shorter.
    pub fn quick() -> Self {
        Scale {
            n_train: Some(5_000),
            n_val: 1_000,
            n_test: Some(2_000),
            seeds: 1,
            quick: true,
        }
    }

    /// [`Scale::quick`] if the environment variable `KLAYER_QUICK` is set to anything but `0`
    /// or an empty string, else [`Scale::full`].
    pub fn from_env() -> Self {
        match std::env::var("KLAYER_QUICK") {
            Ok(v) if !v.is_empty() && v != "0" => Scale::quick(),
            _ => Scale::full(),
        }
    }

    /// Training images used.
    pub fn train_images(&self) -> usize {
        self.n_train.unwrap_or(45_000)
    }

    /// Loads CIFAR-10 at this scale (data found as [`LoadOptions`] says: `$KLAYER_DATA`,
    /// `./data/cifar-10-batches-bin`, `../data/…` from a notebook, or downloaded).
    pub fn load(&self) -> Result<Cifar10<f32>> {
        let mut opts = LoadOptions {
            n_train: self.n_train,
            n_val: self.n_val,
            n_test: self.n_test,
            ..LoadOptions::default()
        };
        // Notebooks run in notebooks/: look for the project's data/ one level up too.
        let parent = std::path::Path::new("../data");
        if std::env::var_os(crate::data::ENV_VAR).is_none()
            && !opts.data_root.join(crate::data::DATA_DIR_NAME).is_dir()
            && parent.join(crate::data::DATA_DIR_NAME).is_dir()
        {
            opts.data_root = parent.to_path_buf();
        }
        Cifar10::load(&opts)
    }

    /// The seeds to use: `0..seeds`.
    pub fn seed_list(&self) -> Vec<u64> {
        (0..self.seeds as u64).collect()
    }

    /// One line saying the size and what `data` (loaded at this scale) holds.
    ///
    /// ```
    /// # use klayer::experiments::Scale;
    /// # use klayer::data::{Cifar10, Dataset};
    /// # let set = |n| Dataset::new(ndarray::Array2::<f32>::zeros((n, 1)), vec![0; n], 10).unwrap();
    /// # let data = Cifar10 { train: set(3), val: set(2), test: set(1), mean: vec![0.0], std: vec![1.0] };
    /// assert_eq!(
    ///     Scale::quick().describe(&data),
    ///     "quick size: 3 training, 2 validation, 1 test images"
    /// );
    /// ```
    pub fn describe(&self, data: &Cifar10<f32>) -> String {
        format!(
            "{} size: {} training, {} validation, {} test images",
            if self.quick { "quick" } else { "full" },
            data.train.len(),
            data.val.len(),
            data.test.len()
        )
    }
}

/// One training run: architecture plus settings; builder methods change one thing each.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Architecture and initialisation.
    pub net: NetConfig,
    /// Training settings.
    pub train: TrainConfig,
}

impl Run {
    /// The assignment's defaults (BN before ReLU, He init, lambda 0.005, cyclic rate 1e-5 to
    /// 1e-1 with `n_s = 5 epochs`, 2 cycles, SGD, EMA) for the given hidden sizes.
    pub fn new(hidden: &[usize], scale: &Scale) -> Self {
        Run {
            net: NetConfig::new(hidden),
            train: TrainConfig {
                schedule: LrSchedule::assignment(scale.train_images(), 100, 2),
                ..TrainConfig::default()
            },
        }
    }

    /// The report's 3-layer net, [50, 50].
    pub fn three_layer(scale: &Scale) -> Self {
        Run::new(&THREE_LAYER, scale)
    }

    /// The report's 9-layer net.
    pub fn nine_layer(scale: &Scale) -> Self {
        Run::new(&NINE_LAYER, scale)
    }

    /// Sets the BN placement.
    pub fn bn(mut self, bn: BnPlacement) -> Self {
        self.net.bn = bn;
        self
    }

    /// Sets lambda.
    pub fn lambda(mut self, lambda: f64) -> Self {
        self.train.lambda = lambda;
        self
    }

    /// Initialises every layer with std `sig` instead of He.
    pub fn sig(mut self, sig: f64) -> Self {
        self.net.init = Init::Fixed(sig);
        self
    }

    /// Sets the seed of the initialisation and of training.
    pub fn seed(mut self, seed: u64) -> Self {
        self.net.seed = seed;
        self.train.seed = seed;
        self
    }

    /// Sets the BN statistics used for evaluation.
    pub fn bn_stats(mut self, stats: BnStats) -> Self {
        self.train.bn_stats = stats;
        self
    }

    /// Sets the optimizer.
    pub fn optimizer(mut self, optimizer: Optimizer) -> Self {
        self.train.optimizer = optimizer;
        self
    }

    /// Sets the learning-rate schedule.
    pub fn schedule(mut self, schedule: LrSchedule) -> Self {
        self.train.schedule = schedule;
        self
    }

    /// Prints a progress line at every evaluation (to stderr, which notebooks show).
    pub fn progress(mut self, on: bool) -> Self {
        self.train.progress = on;
        self
    }

    /// Trains the run once per seed and prints one line per run on **stdout** as it finishes
    /// (the notebooks' way; in evcxr, stderr is forwarded asynchronously, so lines printed
    /// there near the end of a cell can turn up under the next cell). [`run_seeds`] does the
    /// same with the lines on stderr.
    pub fn train_seeds(&self, seeds: &[u64], data: &Cifar10<f32>) -> Result<Vec<History>> {
        seeds_reporting(self, seeds, data, |line| println!("{line}"))
    }

    /// Builds the network and trains it on `data` (train / validation / test).
    pub fn train(&self, data: &Cifar10<f32>) -> Result<History> {
        let mut net = self.net.build::<f32>()?;
        train(
            &mut net,
            &self.train,
            &data.train,
            &data.val,
            Some(&data.test),
        )
    }
}

/// Runs `run` once per seed; prints one line per run on stderr as it finishes.
pub fn run_seeds(run: &Run, seeds: &[u64], data: &Cifar10<f32>) -> Result<Vec<History>> {
    seeds_reporting(run, seeds, data, |line| eprintln!("{line}"))
}

fn seeds_reporting(
    run: &Run,
    seeds: &[u64],
    data: &Cifar10<f32>,
    report: impl Fn(&str),
) -> Result<Vec<History>> {
    seeds
        .iter()
        .map(|&s| {
            let h = run.clone().seed(s).train(data)?;
            report(&format!("  seed {s}: {}", h.summary()));
            Ok(h)
        })
        .collect()
}

/// Shows `markdown` rendered below the current notebook cell. It uses evcxr's rich-output
/// protocol: the text goes to stdout between `EVCXR_BEGIN_CONTENT text/markdown` and
/// `EVCXR_END_CONTENT` lines (outside evcxr those lines are printed as they are).
pub fn show_markdown(markdown: &str) {
    println!("EVCXR_BEGIN_CONTENT text/markdown\n{markdown}\nEVCXR_END_CONTENT");
}

/// The test accuracies of some runs, in %, in order (runs without a test result are left
/// out).
pub fn test_accuracies(runs: &[History]) -> Vec<f64> {
    runs.iter()
        .filter_map(|h| h.test_acc())
        .map(|a| 100.0 * a)
        .collect()
}

/// Mean, standard deviation (n − 1), minimum and maximum of some values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one value).
    pub std: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// The summary of `values` (NaN fields if empty).
    ///
    /// # Example
    /// ```
    /// let s = klayer::experiments::Summary::of(&[1.0, 2.0, 3.0]);
    /// assert_eq!((s.mean, s.std, s.min, s.max), (2.0, 1.0, 1.0, 3.0));
    /// ```
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Summary {
            n,
            mean,
            std,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// Test accuracies (in %) of the runs that did not diverge.
    pub fn test_acc(runs: &[History]) -> Self {
        Summary::of(&test_accuracies(runs))
    }

    /// Wall times of the runs in seconds, evaluations included.
    pub fn seconds(runs: &[History]) -> Self {
        Summary::of(&runs.iter().map(|h| h.train_seconds).collect::<Vec<_>>())
    }

    /// Final validation accuracies (in %) of the runs that did not diverge.
    pub fn val_acc(runs: &[History]) -> Self {
        Summary::of(
            &runs
                .iter()
                .filter_map(|h| h.val_acc())
                .map(|a| 100.0 * a)
                .collect::<Vec<_>>(),
        )
    }
}

impl std::fmt::Display for Summary {
    /// `53.41 ± 0.32 (53.05–53.70, n = 3)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.n == 0 {
            return write!(f, "– (no run finished)");
        }
        write!(
            f,
            "{:.2} ± {:.2} ({:.2}–{:.2}, n = {})",
            self.mean, self.std, self.min, self.max, self.n
        )
    }
}

/// A markdown table from a header and rows.
///
/// # Example
/// ```
/// let t = klayer::experiments::markdown_table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
/// assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
/// ```
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}|\n",
        header.join(" | "),
        vec!["---"; header.len()].join("|")
    );
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}
