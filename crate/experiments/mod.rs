//! The report's experiments as data: a [`Run`] is a network and its training settings; a
//! [`Scale`] says how much data and how many seeds to use (full size, or the quick mode the
//! notebooks use in CI); [`Run::train_seeds`] repeats a run over seeds (concurrently) and
//! [`Summary`] condenses the results; [`sweep`] records runs one JSON line each and summarizes
//! them per setting; [`report`] holds the report's numbers and [`Comparison`] sets ours against
//! them.
//! Parameters accept what a person types ([`Seeds`], [`Sizes`]) and are checked before
//! anything is trained ([`Run::checked`]).
//!
//! # Example
//! ```no_run
//! use klayer::experiments::{report, Comparison, Run, Scale};
//! let scale = Scale::from_env();            // KLAYER_QUICK=1 shrinks everything
//! let data = scale.load()?;                 // CIFAR-10, normalised, 45k / 5k / 10k
//! let run = Run::new(vec![50, 50], &scale).lambda(0.01).checked()?;
//! let runs = run.train_seeds(&(0..3), &data)?;
//! Comparison::new(&scale).row("3-layer, BN, λ = 0.01", &runs, report::THREE_LAYER_BN).show();
//! # Ok::<(), klayer::Error>(())
//! ```

pub mod lambda;
pub mod params;
pub mod report;
pub mod sections;
pub mod sweep;

pub use lambda::{lambda_comparison, LambdaGrid, LambdaSearch};
pub use params::{SeedList, Seeds, Sizes};
pub use report::Comparison;

use crate::bn_stats::BnStats;
use crate::data::{DataSource, LoadOptions, Split};
use crate::net::{BnPlacement, Init, NetConfig};
use crate::train::{train, History, LrSchedule, Optimizer, TrainConfig};
use crate::{Error, Result};

/// Hidden sizes of the report's 3-layer net.
pub const THREE_LAYER: [usize; 2] = [50, 50];
/// Hidden sizes of the report's 9-layer net.
pub const NINE_LAYER: [usize; 8] = [50, 30, 20, 20, 10, 10, 10, 10];
/// Hidden sizes of the 7-layer net trained with Adam (section 3.2).
pub const SEVEN_LAYER_ADAM: [usize; 6] = [60, 50, 40, 30, 20, 10];
/// The two wide 7-layer nets of section 3.2.
pub const WIDE: [[usize; 6]; 2] = [[256, 128, 64, 48, 32, 16], [512, 256, 128, 64, 32, 16]];

/// How big the experiments are: full size, or quick (for CI and a first look), and on which
/// data set (CIFAR-10 unless [`Scale::on`] says otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    /// The data set.
    pub source: DataSource,
    /// Training images (`None`: all that remain after validation, 45,000 of CIFAR-10).
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
    /// Full size: 45,000 / 5,000 / 10,000 images of CIFAR-10 (55,000 / 5,000 / 10,000 of
    /// Fashion-MNIST), 3 seeds.
    pub fn full() -> Self {
        Scale {
            source: DataSource::Cifar10,
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
            source: DataSource::Cifar10,
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

    /// The same size on data set `source`.
    ///
    /// ```
    /// use klayer::{data::DataSource, experiments::Scale};
    /// assert_eq!(Scale::full().train_images(), 45_000);
    /// assert_eq!(Scale::full().on(DataSource::FashionMnist).train_images(), 55_000);
    /// assert_eq!(Scale::quick().on(DataSource::FashionMnist).train_images(), 5_000);
    /// ```
    pub fn on(mut self, source: DataSource) -> Self {
        self.source = source;
        self
    }

    /// Training images used.
    pub fn train_images(&self) -> usize {
        self.n_train
            .unwrap_or(self.source.train_images().saturating_sub(self.n_val))
    }

    /// Test images used.
    pub fn test_images(&self) -> usize {
        self.n_test.unwrap_or(self.source.test_images())
    }

    /// Loads the data set at this scale (data found as [`LoadOptions::data_dir`] says:
    /// `$KLAYER_DATA`, `./data/…`, `../data/…` from a notebook, for Fashion-MNIST Debian's
    /// copy, or downloaded).
    pub fn load(&self) -> Result<Split<f32>> {
        let mut opts = LoadOptions {
            n_train: self.n_train,
            n_val: self.n_val,
            n_test: self.n_test,
            ..LoadOptions::new(self.source)
        };
        if std::env::var_os(crate::data::ENV_VAR).is_none() {
            if let Some(root) = std::env::current_dir()
                .ok()
                .and_then(|d| project_data_root(&d))
            {
                opts.data_root = root;
            }
        }
        Split::load(&opts)
    }

    /// The size in words, for the heading of a section's results: `full size (45,000
    /// training / 5,000 validation / 10,000 test images)`, or in quick mode a warning that the
    /// numbers are not comparable with the report.
    ///
    /// ```
    /// # use klayer::experiments::Scale;
    /// assert_eq!(
    ///     Scale::full().size_words(),
    ///     "full size (45,000 training / 5,000 validation / 10,000 test images)"
    /// );
    /// ```
    pub fn size_words(&self) -> String {
        let (train, val, test) = (
            thousands(self.train_images()),
            thousands(self.n_val),
            thousands(self.test_images()),
        );
        if self.quick {
            format!(
                "**quick mode** ({train} / {val} / {test} images; numbers are not comparable \
                 with the report)"
            )
        } else {
            format!("full size ({train} training / {val} validation / {test} test images)")
        }
    }

    /// The seeds to use: `0..seeds` (at least seed 0).
    pub fn seed_list(&self) -> Seeds {
        params::first_seeds(self.seeds)
    }

    /// In quick mode, one line saying that the numbers are not the full run's (shown above
    /// every table and training cell of the notebooks); `None` at full size.
    ///
    /// ```
    /// # use klayer::experiments::Scale;
    /// assert_eq!(
    ///     Scale::quick().quick_note().unwrap(),
    ///     "quick mode: 5,000 training images, 1 seed — the discussion below describes the full run"
    /// );
    /// assert_eq!(Scale::full().quick_note(), None);
    /// ```
    pub fn quick_note(&self) -> Option<String> {
        self.quick.then(|| {
            format!(
                "quick mode: {} training images, {} seed{} — the discussion below describes the full run",
                thousands(self.train_images()),
                self.seeds,
                if self.seeds == 1 { "" } else { "s" }
            )
        })
    }

    /// Prints [`Scale::describe`] and, in quick mode, shows a banner that the numbers are
    /// not the full run's (the notebooks call this right after loading the data).
    pub fn show(&self, data: &Split<f32>) {
        println!("{}", self.describe(data));
        if self.quick {
            let full = Scale::full().on(self.source);
            show_markdown(&format!(
                "> **Quick mode** (`KLAYER_QUICK=1`): {} training, {} validation, {} test images, \
                 {} seed{}. Its numbers are *not* the full run's (they are lower: far less data); \
                 the text between the cells describes the full run ({} / {} / {} images, {} \
                 seeds), as in the committed outputs.",
                thousands(data.train.len()),
                thousands(data.val.len()),
                thousands(data.test.len()),
                self.seeds,
                if self.seeds == 1 { "" } else { "s" },
                thousands(full.train_images()),
                thousands(full.n_val),
                thousands(full.test_images()),
                full.seeds
            ));
        }
    }

    /// One line saying the size and what `data` (loaded at this scale) holds.
    ///
    /// ```
    /// # use klayer::experiments::Scale;
    /// # use klayer::data::{Split, Dataset};
    /// # let set = |n| Dataset::new(ndarray::Array2::<f32>::zeros((n, 1)), vec![0; n], 10).unwrap();
    /// # let data = Split { train: set(3), val: set(2), test: set(1), mean: vec![0.0], std: vec![1.0], source: Default::default(), shape: klayer::data::ImageShape { height: 1, width: 1, channels: 1 } };
    /// assert_eq!(
    ///     Scale::quick().describe(&data),
    ///     "quick size: 3 training, 2 validation, 1 test images"
    /// );
    /// ```
    pub fn describe(&self, data: &Split<f32>) -> String {
        // CIFAR-10 goes without saying (the report's data set); another one is named.
        let of = match data.source {
            DataSource::Cifar10 => String::new(),
            other => format!(" of {other} ({})", data.shape),
        };
        format!(
            "{} size: {} training, {} validation, {} test images{of}",
            if self.quick { "quick" } else { "full" },
            data.train.len(),
            data.val.len(),
            data.test.len()
        )
    }
}

/// `45000` as `45,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One training run: architecture plus settings; builder methods change one thing each.
///
/// The builder methods take values as a person types them (`.lambda(0)`, `.cycles(3)`,
/// `Run::new(vec![100, 50], &scale)`) and never fail: a value out of range is remembered and
/// reported, naming the setting, by [`Run::checked`] and by every training method, before
/// anything is trained.
///
/// ```
/// use klayer::experiments::{Run, Scale};
/// let scale = Scale::quick();
/// assert!(Run::new([50, 50], &scale).lambda(0).cycles(3).checked().is_ok());
/// let err = Run::new([50, 50], &scale).lambda(-1).checked().unwrap_err();
/// assert_eq!(err.to_string(), "invalid setting `lambda`: -1: must be finite and ≥ 0");
/// let err = Run::new(vec![50, -5], &scale).checked().unwrap_err();
/// assert!(err.to_string().contains("hidden layer 2 has -5 units"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Architecture and initialisation.
    pub net: NetConfig,
    /// Training settings.
    pub train: TrainConfig,
    /// The scale it was made for (training-set size of the schedule, quick-mode note).
    pub scale: Scale,
    /// The first value a builder method could not take, reported by [`Run::checked`].
    problem: Option<(&'static str, String)>,
}

impl Run {
    /// The assignment's defaults (BN before ReLU, He init, lambda 0.005, cyclic rate 1e-5 to
    /// 1e-1 with `n_s = 5 epochs`, 2 cycles, SGD, EMA) for the given hidden sizes (a vector,
    /// array or slice of integers).
    pub fn new(hidden: impl Sizes, scale: &Scale) -> Self {
        let (sizes, problem) = match hidden.to_sizes() {
            Ok(s) => (s, None),
            Err(Error::InvalidConfig { name, reason }) => (Vec::new(), Some((name, reason))),
            Err(e) => (Vec::new(), Some(("hidden", e.to_string()))),
        };
        Run {
            net: NetConfig::new(&sizes),
            train: TrainConfig {
                schedule: LrSchedule::assignment(scale.train_images(), 100, 2),
                ..TrainConfig::default()
            },
            scale: scale.clone(),
            problem,
        }
    }

    fn remember(mut self, name: &'static str, problem: String) -> Self {
        self.problem.get_or_insert((name, problem));
        self
    }

    /// Checks every setting (the network's, the training's, and the values the builder
    /// methods were given) and returns the run; the error names the offending setting.
    pub fn checked(self) -> Result<Self> {
        if let Some((name, problem)) = &self.problem {
            return Err(Error::config(name, problem.clone()));
        }
        self.net.check()?;
        self.train.check(self.scale.train_images())?;
        Ok(self)
    }

    /// The report's 3-layer net, [50, 50].
    pub fn three_layer(scale: &Scale) -> Self {
        Run::new(THREE_LAYER, scale)
    }

    /// The report's 9-layer net.
    pub fn nine_layer(scale: &Scale) -> Self {
        Run::new(NINE_LAYER, scale)
    }

    /// Sets the BN placement.
    pub fn bn(mut self, bn: BnPlacement) -> Self {
        self.net.bn = bn;
        self
    }

    /// Sets lambda (any float or integer literal: `0.01`, `0`).
    pub fn lambda(mut self, lambda: impl Into<f64>) -> Self {
        self.train.lambda = lambda.into();
        self
    }

    /// Initialises every layer with std `sig` instead of He.
    pub fn sig(mut self, sig: impl Into<f64>) -> Self {
        self.net.init = Init::Fixed(sig.into());
        self
    }

    /// Sets the number of cycles of the assignment's cyclic schedule (`n_s` = 5 epochs of
    /// this run's training set).
    pub fn cycles(self, cycles: impl params::Integer) -> Self {
        let c = cycles.wide();
        if !(1..=1000).contains(&c) {
            return self.remember(
                "cycles",
                format!("{cycles}: must be a whole number from 1 to 1000"),
            );
        }
        let n = self.scale.train_images();
        self.schedule(LrSchedule::assignment(n, 100, c as usize))
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

    /// Trains the run once per seed (`seeds`: anything [`SeedList`] takes, e.g. `&seeds`,
    /// `&vec![0]`, `&(0..5)`, `&7`), the seeds concurrently on the cores (see [`run_seeds`]),
    /// and prints one line per run on **stdout** as it finishes (the notebooks' way; in evcxr,
    /// stderr is forwarded asynchronously, so lines printed there near the end of a cell can
    /// turn up under the next cell); in quick mode the quick note ([`Scale::quick_note`])
    /// comes first. [`run_seeds`] does the same with the lines on stderr and without the note.
    /// The histories come back in the order of `seeds`.
    pub fn train_seeds(&self, seeds: impl SeedList, data: &Split<f32>) -> Result<Vec<History>> {
        let seeds = seeds.to_seeds()?;
        let run = self.clone().checked()?;
        if let Some(note) = self.scale.quick_note() {
            println!("{note}");
        }
        seeds_reporting(&run, &seeds, data, |line| println!("{line}"))
    }

    /// Builds the network, with as many inputs and outputs as `data` has features and
    /// classes, and trains it on `data` (train / validation / test).
    pub fn train(&self, data: &Split<f32>) -> Result<History> {
        let run = self.clone().checked()?;
        let run = &run;
        let mut net = run
            .net
            .clone()
            .input(data.train.dim())
            .classes(data.classes())
            .build::<f32>()?;
        train(
            &mut net,
            &run.train,
            &data.train,
            &data.val,
            Some(&data.test),
        )
    }
}

/// Runs `run` once per seed; prints one line per run on stderr as it finishes.
///
/// The seeds train concurrently (a rayon parallel iterator over the seeds, on the global
/// rayon pool, so that one run's own parallel parts share the same threads), and each
/// history is the one a run of that seed alone gives: a run depends only on its settings and
/// seed, never on what else is running (its timings aside). The histories come back in the
/// order of `seeds`; with [`TrainConfig::progress`] on, every progress line starts with
/// `[seed N]`.
pub fn run_seeds(run: &Run, seeds: impl SeedList, data: &Split<f32>) -> Result<Vec<History>> {
    let seeds = seeds.to_seeds()?;
    seeds_reporting(&run.clone().checked()?, &seeds, data, |line| {
        eprintln!("{line}")
    })
}

fn seeds_reporting(
    run: &Run,
    seeds: &[u64],
    data: &Split<f32>,
    report: impl Fn(&str) + Sync,
) -> Result<Vec<History>> {
    use rayon::prelude::*;
    seeds
        .par_iter()
        .map(|&s| {
            let mut one = run.clone().seed(s);
            if seeds.len() > 1 {
                one.train.label = Some(format!("seed {s}"));
            }
            let h = one.train(data)?;
            report(&format!("  seed {s}: {}", h.summary()));
            Ok(h)
        })
        .collect()
}

/// The input of a gradient check: the first `n_images` training images of `data` and their
/// first `n_features` features, in f64, with their labels; an error that names the setting if
/// either is 0 or more than the data holds.
///
/// ```
/// # use klayer::data::{Split, Dataset};
/// # let set = |n| Dataset::new(ndarray::Array2::<f32>::ones((n, 6)), vec![1; n], 10).unwrap();
/// # let data = Split { train: set(4), val: set(2), test: set(1), mean: vec![0.0], std: vec![1.0], source: Default::default(), shape: klayer::data::ImageShape { height: 1, width: 6, channels: 1 } };
/// let (x, y) = klayer::experiments::gradcheck_input(&data, 3, 5)?;
/// assert_eq!((x.dim(), y), ((3, 5), vec![1, 1, 1]));
/// let err = klayer::experiments::gradcheck_input(&data, 3, 7).unwrap_err();
/// assert_eq!(err.to_string(), "invalid setting `n_features`: 7: an image has 1 to 6 features");
/// # Ok::<(), klayer::Error>(())
/// ```
pub fn gradcheck_input(
    data: &Split<f32>,
    n_images: usize,
    n_features: usize,
) -> Result<(ndarray::Array2<f64>, Vec<usize>)> {
    let (rows, cols) = data.train.x.dim();
    if !(1..=rows).contains(&n_images) {
        return Err(Error::config(
            "n_images",
            format!("{n_images}: the check takes 1 to {rows} training images (10 is plenty)"),
        ));
    }
    if !(1..=cols).contains(&n_features) {
        return Err(Error::config(
            "n_features",
            format!("{n_features}: an image has 1 to {cols} features"),
        ));
    }
    let x = data
        .train
        .x
        .slice(ndarray::s![..n_images, ..n_features])
        .mapv(f64::from);
    Ok((x, data.train.y[..n_images].to_vec()))
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

/// Where the notebooks' data lives: `data/` of the nearest folder at or above `dir` that holds
/// `data/cifar-10-batches-bin` (notebooks run in `notebooks/`, exercise notebooks two or three
/// levels deeper), else `data/` of the nearest folder with a `Cargo.toml` (the repository: a
/// download goes there, not into the notebook's folder); `None` if there is neither.
fn project_data_root(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let with_data = dir
        .ancestors()
        .map(|a| a.join("data"))
        .find(|d| d.join(crate::data::DATA_DIR_NAME).is_dir());
    with_data.or_else(|| {
        dir.ancestors()
            .find(|a| a.join("Cargo.toml").is_file())
            .map(|a| a.join("data"))
    })
}

#[cfg(test)]
mod tests {
    use super::project_data_root;
    use crate::data::DATA_DIR_NAME;

    #[test]
    fn notebooks_find_the_project_data_from_any_depth_and_download_into_the_repository() {
        let repo = tempfile::tempdir().unwrap();
        let deep = repo.path().join("assignment/release/A1");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(repo.path().join("Cargo.toml"), "").unwrap();
        // No data yet: the repository's data/ (where a download goes), not the notebook's folder.
        assert_eq!(project_data_root(&deep), Some(repo.path().join("data")));
        // Data in the repository: found three levels up.
        std::fs::create_dir_all(repo.path().join("data").join(DATA_DIR_NAME)).unwrap();
        assert_eq!(project_data_root(&deep), Some(repo.path().join("data")));
        // A nearer data/ wins.
        let near = repo.path().join("assignment/data").join(DATA_DIR_NAME);
        std::fs::create_dir_all(&near).unwrap();
        assert_eq!(
            project_data_root(&deep),
            Some(repo.path().join("assignment/data"))
        );
    }
}
