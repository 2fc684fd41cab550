//! Sweeps: many runs recorded as one JSON line each ([`Record`]), in a file that grows by
//! whole lines ([`SweepFile`]), and condensed per setting ([`summarize`]). `klayer sweep`
//! writes such files; a notebook can make the same records from runs it trained
//! ([`records`]) and summarize them the same way.
//!
//! A record's **settings** are everything that decides its numbers except the seed: the
//! network (hidden sizes, BN placement, initialisation, …), the training settings (lambda,
//! schedule, optimizer, BN statistics, …) and the sizes of the data sets, as one JSON object
//! with its keys sorted ([`settings_of`]). Two runs are the same run when their settings and
//! seed are equal ([`Record::key`]), so a record made with other settings is never taken for
//! one of a grid, and a file can hold several grids.
//!
//! # Example
//! ```
//! use klayer::data::DataSource;
//! use klayer::experiments::sweep::{self, DataSizes, Record, SweepFile};
//! use klayer::net::NetConfig;
//! use klayer::train::{History, Metrics, TrainConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("runs.jsonl");
//! let (file, done) = SweepFile::open(&path)?;
//! assert!(done.is_empty());
//! let sizes = DataSizes { dataset: DataSource::Cifar10, n_train: 45_000, n_val: 5_000, n_test: 10_000 };
//! for (seed, acc) in [(0, 0.53), (1, 0.55)] {
//!     let net = NetConfig::new(&[50, 50]).seed(seed);
//!     let train = TrainConfig { seed, ..TrainConfig::default() };
//!     let m = Metrics { cost: 1.5, loss: 1.4, acc };
//!     let h = History { final_val: Some(m), test: Some(m), steps: 9000, ..History::default() };
//!     file.append(&Record::new(&net, &train, sizes, &h))?;
//! }
//! let table = sweep::summarize(&sweep::read_records(&path)?);
//! assert_eq!(table.len(), 1); // one setting, two seeds
//! assert_eq!(table[0].seeds, [0, 1]);
//! assert!((table[0].test().mean - 54.0).abs() < 1e-9);
//! assert!((table[0].test().std - 1.414).abs() < 1e-3);
//! # Ok::<(), klayer::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::report::{Metric, Outcomes};
use super::{markdown_table, show_markdown, Run, SeedList, Summary};
use crate::data::{DataSource, Split};
use crate::net::{BnPlacement, Init, NetConfig};
use crate::train::{History, TrainConfig};
use crate::{Error, Result};

/// The data set and the sizes of its parts a run was trained, validated and tested on (part
/// of its settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSizes {
    /// The data set.
    pub dataset: DataSource,
    /// Training images.
    pub n_train: usize,
    /// Validation images.
    pub n_val: usize,
    /// Test images.
    pub n_test: usize,
}

impl DataSizes {
    /// The sizes of loaded data.
    pub fn of(data: &Split<f32>) -> Self {
        DataSizes {
            dataset: data.source,
            n_train: data.train.len(),
            n_val: data.val.len(),
            n_test: data.test.len(),
        }
    }
}

/// `value` with the keys of every object sorted, so that equal settings serialize equally.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// The settings of a run without its seed, as a canonical JSON object:
/// `{"data": {…sizes}, "net": {…NetConfig without seed}, "train": {…TrainConfig without seed
/// and progress}}`.
///
/// ```
/// use klayer::data::DataSource;
/// use klayer::experiments::sweep::{settings_of, DataSizes};
/// use klayer::net::NetConfig;
/// use klayer::train::TrainConfig;
/// let sizes = DataSizes { dataset: DataSource::Cifar10, n_train: 500, n_val: 100, n_test: 100 };
/// let a = settings_of(&NetConfig::new(&[50]).seed(1), &TrainConfig { seed: 1, ..TrainConfig::default() }, sizes);
/// let b = settings_of(&NetConfig::new(&[50]).seed(2), &TrainConfig { seed: 2, ..TrainConfig::default() }, sizes);
/// assert_eq!(a, b); // the seed is not a setting
/// assert_eq!(a["train"]["lambda"], 0.005);
/// ```
pub fn settings_of(net: &NetConfig, train: &TrainConfig, data: DataSizes) -> Value {
    let mut net = serde_json::to_value(net).unwrap_or(Value::Null);
    let mut train = serde_json::to_value(train).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut net {
        m.remove("seed");
    }
    if let Value::Object(m) = &mut train {
        m.remove("seed");
        m.remove("progress");
    }
    canonical(serde_json::json!({ "net": net, "train": train, "data": data }))
}

/// The key of a run: its canonical settings and its seed.
pub fn key_of(settings: &Value, seed: u64) -> String {
    format!("{}#seed={seed}", canonical(settings.clone()))
}

/// A short name of a run's setting: the settings a sweep varies (hidden sizes, BN placement,
/// init, lambda, BN statistics, optimizer), e.g.
/// `hidden 50,50 · bn before · init he · lambda 0.005 · ema · sgd`.
pub fn label_of(net: &NetConfig, train: &TrainConfig) -> String {
    let hidden: Vec<String> = net.hidden.iter().map(ToString::to_string).collect();
    let bn = match net.bn {
        BnPlacement::Before => "before",
        BnPlacement::After => "after",
        BnPlacement::None => "none",
    };
    let init = match net.init {
        Init::He => "he".to_string(),
        Init::Fixed(s) => format!("sig {s:e}"),
    };
    let stats = if net.bn == BnPlacement::None {
        String::new()
    } else {
        format!(" · {}", train.bn_stats.label())
    };
    let opt = match train.optimizer {
        crate::train::Optimizer::Sgd => "sgd",
        crate::train::Optimizer::Adam { .. } => "adam",
    };
    format!(
        "hidden {} · bn {bn} · init {init} · lambda {}{stats} · {opt}",
        hidden.join(","),
        train.lambda
    )
}

/// A finite number, or `None` (JSON has no NaN or infinity).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// One finished run: one line of a sweep file.
///
/// Accuracies are fractions in [0, 1] (as in [`History`]); `None` where the run has none (it
/// diverged). A diverged run is a result too: `diverged` says where and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Short name of the setting ([`label_of`]).
    pub label: String,
    /// Every setting but the seed ([`settings_of`]).
    pub settings: Value,
    /// The seed.
    pub seed: u64,
    /// Final validation accuracy (final BN statistics).
    pub val_acc: Option<f64>,
    /// Test accuracy.
    pub test_acc: Option<f64>,
    /// Final validation loss.
    pub val_loss: Option<f64>,
    /// Test loss.
    pub test_loss: Option<f64>,
    /// Training loss at the last learning-curve point.
    pub train_loss: Option<f64>,
    /// Update steps done.
    pub steps: usize,
    /// Wall time of the run, evaluation included, in seconds.
    pub seconds: f64,
    /// The part of it spent evaluating.
    pub eval_seconds: f64,
    /// True if the run diverged.
    pub diverged: bool,
    /// Where and how it diverged (the message of [`crate::train::Divergence`]).
    pub diverged_at: Option<String>,
}

impl Record {
    /// The record of a run of `net` and `train` (whose seeds are the run's seed) on data of
    /// `sizes`, which gave `history`.
    pub fn new(net: &NetConfig, train: &TrainConfig, sizes: DataSizes, history: &History) -> Self {
        Record {
            label: label_of(net, train),
            settings: settings_of(net, train, sizes),
            seed: train.seed,
            val_acc: history.val_acc().and_then(finite),
            test_acc: history.test_acc().and_then(finite),
            val_loss: history.final_val.and_then(|m| finite(m.loss)),
            test_loss: history.test.and_then(|m| finite(m.loss)),
            train_loss: history.last().and_then(|p| finite(p.train.loss)),
            steps: history.steps,
            seconds: history.train_seconds,
            eval_seconds: history.eval_seconds,
            diverged: history.diverged.is_some(),
            diverged_at: history.diverged.map(|d| d.to_string()),
        }
    }

    /// The key that says whether two records are of the same run: settings and seed.
    pub fn key(&self) -> String {
        key_of(&self.settings, self.seed)
    }
}

/// The records of `runs`, the histories [`Run::train_seeds`] returned for `run` and `seeds`
/// (anything [`SeedList`] takes, in the same order) on `data`.
///
/// Errors: bad seeds, or not one history per seed.
pub fn records(
    run: &Run,
    seeds: impl SeedList,
    runs: &[History],
    data: &Split<f32>,
) -> Result<Vec<Record>> {
    let seeds = seeds.to_seeds()?;
    if seeds.len() != runs.len() {
        return Err(Error::config(
            "seeds",
            format!(
                "{} seeds but {} runs: give the seeds the runs were trained with",
                seeds.len(),
                runs.len()
            ),
        ));
    }
    let sizes = DataSizes::of(data);
    Ok(seeds
        .iter()
        .zip(runs)
        .map(|(&s, h)| {
            let one = run.clone().seed(s);
            Record::new(&one.net, &one.train, sizes, h)
        })
        .collect())
}

/// What reading a sweep file found.
#[derive(Debug, Default)]
struct Scan {
    records: Vec<Record>,
    /// Complete lines that are not records (left in the file, never read as results).
    bad_lines: Vec<usize>,
    /// Length of the file up to its last newline (a final line without one was cut short).
    complete_len: u64,
    /// Bytes after the last newline.
    partial: u64,
}

fn scan(bytes: &[u8]) -> Scan {
    let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut scan = Scan {
        complete_len: complete_len as u64,
        partial: (bytes.len() - complete_len) as u64,
        ..Scan::default()
    };
    for (i, line) in bytes[..complete_len].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => scan.records.push(r),
            Err(_) => scan.bad_lines.push(i + 1),
        }
    }
    scan
}

fn warn_bad_lines(path: &Path, scan: &Scan) {
    if !scan.bad_lines.is_empty() {
        eprintln!(
            "warning: {}: {} line(s) are not run records and were skipped (line {})",
            path.display(),
            scan.bad_lines.len(),
            scan.bad_lines
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

/// The records of a sweep file, in file order. A last line without a newline (cut short when
/// a sweep was killed while writing it) is not read; nor is a complete line that is not a
/// record (a warning on stderr names it). The file is not changed.
///
/// Errors: [`Error::Io`] if the file cannot be read.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let scan = scan(&bytes);
    warn_bad_lines(path, &scan);
    Ok(scan.records)
}

/// A sweep file open for appending records, one whole line at a time.
///
/// Each [`append`](Self::append) writes its line with a single write to a file opened in
/// append mode, holding a lock (within the process, and an exclusive `flock` on the file
/// against other processes appending to it), and syncs it: a line is in the file entirely or
/// not at all, and the lines of runs that finish at the same time never mix.
#[derive(Debug)]
pub struct SweepFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl SweepFile {
    /// Opens `path` for appending, creating it if needed, and returns the records it holds.
    /// A last line cut short by a kill is removed (the file is truncated after its last
    /// newline, under the file lock) so that the next record starts on a line of its own;
    /// every complete line stays.
    ///
    /// Errors: [`Error::Io`] naming the path.
    pub fn open(path: &Path) -> Result<(SweepFile, Vec<Record>)> {
        let io = |e: io::Error| Error::io(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        let scanned = (|| {
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut bytes)?;
            let s = scan(&bytes);
            if s.partial > 0 {
                eprintln!(
                    "{}: removed a last line cut short ({} bytes without a newline: a run \
                     that was being written when the sweep was stopped)",
                    path.display(),
                    s.partial
                );
                file.set_len(s.complete_len)?;
                file.sync_all()?;
            }
            Ok(s)
        })();
        file.unlock().map_err(io)?;
        let scanned = scanned.map_err(io)?;
        warn_bad_lines(path, &scanned);
        Ok((
            SweepFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            scanned.records,
        ))
    }

    /// Appends `record` as one line (see [`SweepFile`]).
    ///
    /// Errors: [`Error::Io`] naming the path (a full disk).
    pub fn append(&self, record: &Record) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| Error::io(&self.path, e.into()))?;
        line.push(b'\n');
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let io = |e: io::Error| Error::io(&self.path, e);
        file.lock().map_err(io)?;
        let written = (&*file).write_all(&line).and_then(|()| file.sync_data());
        file.unlock().map_err(io)?;
        written.map_err(io)
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The runs of one setting in a sweep: their seeds and results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingSummary {
    /// Short name ([`label_of`]); made unique within a table by a ` [2]`, ` [3]`, … suffix
    /// when settings that differ elsewhere share it.
    pub label: String,
    /// The settings ([`settings_of`]).
    pub settings: Value,
    /// The seeds, in the order their records came.
    pub seeds: Vec<u64>,
    /// How many runs diverged.
    pub diverged: usize,
    /// Validation accuracies (%) of the runs that did not diverge.
    pub val_acc: Vec<f64>,
    /// Test accuracies (%) of the runs that did not diverge.
    pub test_acc: Vec<f64>,
    /// Wall times of the runs (s).
    pub seconds: Vec<f64>,
}

impl SettingSummary {
    /// Mean ± std (and min, max) of the validation accuracies, in %.
    pub fn val(&self) -> Summary {
        Summary::of(&self.val_acc)
    }

    /// Mean ± std (and min, max) of the test accuracies, in %.
    pub fn test(&self) -> Summary {
        Summary::of(&self.test_acc)
    }

    /// The setting's lambda.
    pub fn lambda(&self) -> Option<f64> {
        self.settings["train"]["lambda"].as_f64()
    }
}

impl Outcomes for SettingSummary {
    fn percents(&self, metric: Metric) -> Vec<f64> {
        match metric {
            Metric::Test => self.test_acc.clone(),
            Metric::Validation => self.val_acc.clone(),
        }
    }

    fn seconds(&self) -> Option<f64> {
        (!self.seconds.is_empty()).then(|| Summary::of(&self.seconds).mean)
    }
}

/// The records grouped by setting (equal [`settings_of`]), in the order each setting first
/// appears, with mean ± std over the seeds. A run recorded twice (the same settings and seed)
/// counts once, with its first record.
pub fn summarize(records: &[Record]) -> Summaries {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, SettingSummary> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    for r in records {
        if !seen.insert(r.key()) {
            continue;
        }
        let k = canonical(r.settings.clone()).to_string();
        let g = groups.entry(k.clone()).or_insert_with(|| {
            order.push(k);
            SettingSummary {
                label: r.label.clone(),
                settings: canonical(r.settings.clone()),
                seeds: Vec::new(),
                diverged: 0,
                val_acc: Vec::new(),
                test_acc: Vec::new(),
                seconds: Vec::new(),
            }
        });
        g.seeds.push(r.seed);
        g.seconds.push(r.seconds);
        if r.diverged {
            g.diverged += 1;
        } else {
            g.val_acc.extend(r.val_acc.map(|a| 100.0 * a));
            g.test_acc.extend(r.test_acc.map(|a| 100.0 * a));
        }
    }
    let mut out: Vec<SettingSummary> = order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .collect();
    let mut count: HashMap<String, usize> = HashMap::new();
    for s in &mut out {
        let n = count.entry(s.label.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            s.label = format!("{} [{n}]", s.label);
        }
    }
    Summaries(out)
}

/// The summary of a sweep: one [`SettingSummary`] per setting. It dereferences to the slice
/// of them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries(pub Vec<SettingSummary>);

impl std::ops::Deref for Summaries {
    type Target = [SettingSummary];
    fn deref(&self) -> &[SettingSummary] {
        &self.0
    }
}

impl Summaries {
    /// The setting with lambda `lambda` (the first, if several have it).
    pub fn at_lambda(&self, lambda: f64) -> Option<&SettingSummary> {
        self.0.iter().find(|s| s.lambda() == Some(lambda))
    }

    /// A markdown table: per setting the runs, how many diverged, and validation and test
    /// accuracy as mean ± std (min–max) in %, and the mean wall time of a run.
    pub fn markdown(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|s| {
                vec![
                    s.label.clone(),
                    s.seeds.len().to_string(),
                    s.diverged.to_string(),
                    s.val().to_string(),
                    s.test().to_string(),
                    format!("{:.1}", Summary::of(&s.seconds).mean),
                ]
            })
            .collect();
        markdown_table(
            &[
                "setting",
                "runs",
                "diverged",
                "val. acc. % (mean ± std, min–max)",
                "test acc. % (mean ± std, min–max)",
                "s per run",
            ],
            &rows,
        )
    }

    /// Shows [`markdown`](Self::markdown) below the notebook cell.
    pub fn show(&self) {
        show_markdown(&self.markdown());
    }
}
