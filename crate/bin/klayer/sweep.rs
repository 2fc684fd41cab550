//! `klayer sweep`: a grid of settings × seeds, trained concurrently, one JSON line per
//! finished run appended to `--out`; re-running the same command skips the runs already
//! there. `--shard I/N` takes the I-th of N disjoint parts of the grid; `--summary FILE`
//! prints mean ± std per setting. The file format and the summary are the crate's
//! ([`klayer::experiments::sweep`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Args, Parser};
use rayon::prelude::*;
use serde_json::{json, Value};

use klayer::data::Split;
use klayer::experiments::sweep::{self, label_of, DataSizes, Record, SweepFile};
use klayer::experiments::Summary;
use klayer::net::NetConfig;
use klayer::output::{OutputKind, OutputPath};
use klayer::train::{train, TrainConfig};
use klayer::{Error, Result};

use crate::args::{
    count, BnFlag, BnStatsFlag, DataArgs, FixedTrainArgs, NetArgs, OptFlag, TrainArgs,
};
use crate::reproduce::duration;
use crate::seeds::seed_list;
use crate::Outcome;

/// The grid's lists (which a spec file gives instead).
const GRID_FLAGS: [&str; 7] = [
    "lambda",
    "sig",
    "hidden",
    "bn",
    "bn_stats",
    "optimizer",
    "seeds",
];

/// Seconds between two "12/30 runs, ETA …" lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Flags of `klayer sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    grid: GridArgs,
    #[command(flatten)]
    data: DataArgs,
    /// Read the grid (the flags above, as a JSON object) from FILE instead of the flags; see
    /// the README's "Sweeps". The data flags, --out, --shard and --list stay on the command
    /// line.
    #[arg(long, value_name = "FILE", conflicts_with = "FixedTrainArgs")]
    spec: Option<PathBuf>,
    /// Append one JSON line per finished run to FILE (created if missing); the runs already
    /// in it are skipped.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["summary", "list"])]
    out: Option<PathBuf>,
    /// Run only the I-th of N disjoint parts of the grid (1 ≤ I ≤ N): the runs whose number
    /// in grid order, counted from 0, leaves remainder I − 1 when divided by N.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// List the runs (of the shard) and whether --out already holds them; train nothing.
    #[arg(long)]
    list: bool,
    /// Print mean ± std per setting of the runs in FILE (a sweep's --out; several files, e.g.
    /// one per shard, are read as one) and exit.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = GRID_FLAGS, conflicts_with_all = ["FixedTrainArgs", "spec", "out", "shard", "list"])]
    summary: Option<Vec<PathBuf>>,
    /// With --summary or --list: JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

/// The settings a sweep varies, each a comma-separated list (every combination is trained),
/// and the training settings it keeps the same for every run. A list left out takes the
/// value `klayer train` uses by default.
#[derive(Debug, Clone, Args)]
pub struct GridArgs {
    /// L2 factors, e.g. 0.001,0.005,0.01.
    #[arg(
        long,
        conflicts_with = "spec",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    lambda: Vec<f64>,
    /// Init stds, or `he` for He init, e.g. he,1e-3,1e-1.
    #[arg(long, conflicts_with = "spec", value_delimiter = ',', value_parser = parse_sig, allow_hyphen_values = true)]
    sig: Vec<Sig>,
    /// Hidden layer sizes of one net, comma-separated; repeat the flag for more nets
    /// (--hidden 50,50 --hidden 100,50).
    #[arg(long, conflicts_with = "spec", value_parser = parse_hidden, allow_hyphen_values = true)]
    hidden: Vec<Hidden>,
    /// BN placements, e.g. before,none (a net without BN is trained with ema statistics
    /// only: other --bn-stats are left out for it).
    #[arg(long, conflicts_with = "spec", value_enum, value_delimiter = ',')]
    bn: Vec<BnFlag>,
    /// BN statistics, e.g. ema,precise.
    #[arg(long, conflicts_with = "spec", value_enum, value_delimiter = ',')]
    bn_stats: Vec<BnStatsFlag>,
    /// Optimizers, e.g. sgd,adam.
    #[arg(long, conflicts_with = "spec", value_enum, value_delimiter = ',')]
    optimizer: Vec<OptFlag>,
    /// Seeds, e.g. 0,1,2 [default: 0].
    #[arg(long, conflicts_with = "spec", value_delimiter = ',', value_parser = count, allow_hyphen_values = true)]
    seeds: Vec<usize>,
    #[command(flatten)]
    fixed: FixedTrainArgs,
}

/// An init std or He.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sig(Option<f64>);

fn parse_sig(s: &str) -> std::result::Result<Sig, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("he") {
        return Ok(Sig(None));
    }
    t.parse::<f64>()
        .map(|v| Sig(Some(v)))
        .map_err(|_| format!("`{t}` is neither a number nor `he`"))
}

/// The hidden sizes of one net.
#[derive(Debug, Clone, PartialEq)]
pub struct Hidden(Vec<usize>);

fn parse_hidden(s: &str) -> std::result::Result<Hidden, String> {
    if s.trim().is_empty() {
        return Ok(Hidden(Vec::new()));
    }
    s.split(',')
        .map(count)
        .collect::<std::result::Result<_, _>>()
        .map(Hidden)
}

/// `klayer train`'s flags with nothing given: the defaults of a grid's lists.
#[derive(Parser)]
struct TrainDefaults {
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    train: TrainArgs,
}

/// The grid flags of a spec file, parsed as on the command line.
#[derive(Parser)]
#[command(name = "the spec file", no_binary_name = true)]
struct SpecFile {
    #[command(flatten)]
    grid: GridArgs,
    /// The grid lists conflict with `--spec`; in a spec file it has no place.
    #[arg(long, hide = true)]
    spec: Option<PathBuf>,
}

/// One run of the grid.
pub struct Job {
    /// Its number in grid order, from 0.
    index: usize,
    net: NetConfig,
    train: TrainConfig,
    record_key: String,
    label: String,
}

/// A checked sweep.
pub enum SweepPlan {
    /// Train the runs of the grid (or the shard) that `out` does not hold yet.
    Run {
        jobs: Vec<Job>,
        grid_size: usize,
        load: Box<klayer::data::LoadOptions>,
        sizes: DataSizes,
        out: PathBuf,
    },
    /// List the runs.
    List {
        jobs: Vec<Job>,
        out: Option<PathBuf>,
        json: bool,
    },
    /// Summarize a sweep file.
    Summary { files: Vec<PathBuf>, json: bool },
}

/// A shard `I/N`, 1-based, checked.
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let bad = |why: String| Error::config("--shard", format!("`{s}`: {why}"));
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| bad("give it as I/N, e.g. 2/4 for the second of four parts".into()))?;
    let i = count(i).map_err(|e| bad(format!("I: {e}")))?;
    let n = count(n).map_err(|e| bad(format!("N: {e}")))?;
    if n == 0 {
        return Err(bad("N must be at least 1".into()));
    }
    if !(1..=n).contains(&i) {
        return Err(bad(format!(
            "I must be from 1 to N = {n} (shards count from 1; with a Slurm job array \
             starting at 0 use $((SLURM_ARRAY_TASK_ID+1))/{n})"
        )));
    }
    Ok((i, n))
}

/// The flags of a spec file: a JSON object whose keys are the grid flags without `--`
/// (`lambda`, `bn-stats` or `bn_stats`, `n-s`, …) and whose values are a list (for the lists
/// of the grid; `hidden`: a list of lists) or a single value.
fn spec_args(path: &Path) -> Result<GridArgs> {
    let bad = |why: String| Error::config("--spec", format!("{}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = doc else {
        return Err(bad(
            "must be a JSON object such as {\"lambda\": [0.001, 0.01], \"seeds\": [0, 1, 2]}"
                .into(),
        ));
    };
    let scalar = |k: &str, v: &Value| -> Result<String> {
        match v {
            Value::Number(n) => Ok(n.to_string()),
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad(format!("`{k}`: {v} is not a number or a string"))),
        }
    };
    let mut argv = Vec::new();
    for (key, value) in &map {
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            Value::Array(items) if items.is_empty() => {
                return Err(bad(format!(
                    "`{key}` is an empty list; give at least one value (or leave it out for \
                     the default)"
                )))
            }
            Value::Array(items) if key == "hidden" => {
                for net in items {
                    let sizes = match net {
                        Value::Array(sizes) => sizes
                            .iter()
                            .map(|s| scalar(key, s))
                            .collect::<Result<Vec<_>>>()?
                            .join(","),
                        other => scalar(key, other)?,
                    };
                    argv.push(format!("{flag}={sizes}"));
                }
            }
            Value::Array(items) => {
                let values = items
                    .iter()
                    .map(|v| scalar(key, v))
                    .collect::<Result<Vec<_>>>()?;
                argv.push(format!("{flag}={}", values.join(",")));
            }
            other => argv.push(format!("{flag}={}", scalar(key, other)?)),
        }
    }
    SpecFile::try_parse_from(&argv)
        .map(|s| s.grid)
        .map_err(|e| {
            let msg = e.to_string();
            let first = msg
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            bad(first.replace("--", "").to_string())
        })
}

/// A list, or the default when the flag was not given.
fn or_default<T: Clone>(values: &[T], default: T) -> Vec<T> {
    if values.is_empty() {
        vec![default]
    } else {
        values.to_vec()
    }
}

/// Checks the flags (or the spec file), every run's settings and size limits, the shard and
/// the output path, before any data is loaded.
pub fn plan(args: SweepArgs) -> Result<SweepPlan> {
    if let Some(files) = args.summary {
        return Ok(SweepPlan::Summary {
            files,
            json: args.json,
        });
    }
    if args.json && !args.list {
        return Err(Error::config(
            "--json",
            "applies to --summary and --list (a sweep's --out file is JSON lines already)",
        ));
    }
    let grid = match &args.spec {
        Some(path) => spec_args(path)?,
        None => args.grid.clone(),
    };
    let defaults = TrainDefaults::try_parse_from(["klayer"])
        .map_err(|e| Error::config("defaults", e.to_string()))?;
    let seeds = if grid.seeds.is_empty() {
        vec![defaults.net.seed]
    } else {
        seed_list(&grid.seeds)?
    };
    let hidden: Vec<Vec<usize>> = if grid.hidden.is_empty() {
        vec![defaults.net.hidden.clone()]
    } else {
        grid.hidden.iter().map(|h| h.0.clone()).collect()
    };
    let bns = or_default(&grid.bn, defaults.net.bn);
    let sigs = or_default(&grid.sig, Sig(defaults.net.sig));
    let stats = or_default(&grid.bn_stats, defaults.train.bn_stats);
    let opts = or_default(&grid.optimizer, defaults.train.optimizer);
    let lambdas = or_default(&grid.lambda, defaults.train.lambda);
    let fixed = &grid.fixed;
    if fixed.tta != 0.0 && !stats.contains(&BnStatsFlag::Adaptive) {
        return Err(Error::config(
            "--tta",
            "applies to adaptive BN statistics only: add adaptive to --bn-stats",
        ));
    }
    let precise = |s: &BnStatsFlag| matches!(s, BnStatsFlag::Precise | BnStatsFlag::PreciseReport);
    if fixed.precise_batches.is_some() && !stats.iter().any(precise) {
        return Err(Error::config(
            "--precise-batches",
            "applies to PreciseBN only: add precise or precise-report to --bn-stats",
        ));
    }
    let (load, n_train) = args.data.options().map_err(crate::args::flagged)?;
    let sizes = DataSizes {
        dataset: load.source,
        n_train,
        n_val: load.n_val,
        n_test: load.n_test.unwrap_or(load.source.test_images()),
    };
    let mut jobs = Vec::new();
    for h in &hidden {
        for &bn in &bns {
            for &sig in &sigs {
                for &stat in &stats {
                    // A net without BN has no statistics to choose.
                    if bn == BnFlag::None && stat != BnStatsFlag::Ema {
                        continue;
                    }
                    for &opt in &opts {
                        for &lambda in &lambdas {
                            for &seed in &seeds {
                                let net_args = NetArgs {
                                    hidden: h.clone(),
                                    bn,
                                    sig: sig.0,
                                    seed,
                                };
                                let mut fixed = fixed.clone();
                                if stat != BnStatsFlag::Adaptive {
                                    fixed.tta = 0.0;
                                }
                                if !precise(&stat) || bn == BnFlag::None {
                                    fixed.precise_batches = None;
                                }
                                let train_args = TrainArgs {
                                    lambda,
                                    optimizer: opt,
                                    bn_stats: stat,
                                    fixed,
                                };
                                // The checks and size limits of `klayer train`, run by run.
                                let p = crate::plan_train(
                                    &net_args,
                                    &train_args,
                                    &args.data,
                                    false,
                                    false,
                                    None,
                                    None,
                                )?;
                                let mut train = p.train;
                                train.progress = false;
                                let record_key =
                                    sweep::key_of(&sweep::settings_of(&p.net, &train, sizes), seed);
                                jobs.push(Job {
                                    index: jobs.len(),
                                    label: label_of(&p.net, &train),
                                    net: p.net,
                                    train,
                                    record_key,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    if jobs.is_empty() {
        return Err(Error::config(
            "--bn",
            "the grid is empty: a net without BN (--bn none) is trained with ema statistics \
             only; add ema to --bn-stats or another BN placement to --bn",
        ));
    }
    let grid_size = jobs.len();
    if let Some(shard) = &args.shard {
        let (i, n) = parse_shard(shard)?;
        if n > grid_size {
            return Err(Error::config(
                "--shard",
                format!(
                    "`{shard}`: the grid has {grid_size} run(s), fewer than the {n} parts \
                     asked for, so some parts would be empty; use N ≤ {grid_size}"
                ),
            ));
        }
        jobs.retain(|j| j.index % n == i - 1);
    }
    let out = match &args.out {
        Some(path) => {
            let checked = OutputPath::check(path)?;
            if checked.kind == OutputKind::WriteThrough {
                return Err(Error::config(
                    "--out",
                    format!(
                        "{}: not a regular file; a sweep reads its file back to resume, so \
                         name a regular file",
                        path.display()
                    ),
                ));
            }
            Some(checked.target)
        }
        None => None,
    };
    if args.list {
        return Ok(SweepPlan::List {
            jobs,
            out,
            json: args.json,
        });
    }
    Ok(SweepPlan::Run {
        jobs,
        grid_size,
        load: Box::new(load),
        sizes,
        out: out.expect("--out is required unless --summary or --list (clap checks it)"),
    })
}

/// Runs a checked sweep.
pub fn run(p: &SweepPlan) -> Result<Outcome> {
    match p {
        SweepPlan::Summary { files, json } => summary(files, *json),
        SweepPlan::List { jobs, out, json } => list(jobs, out.as_deref(), *json),
        SweepPlan::Run {
            jobs,
            grid_size,
            load,
            sizes,
            out,
        } => train_grid(jobs, *grid_size, load, *sizes, out),
    }
}

fn summary(files: &[PathBuf], json: bool) -> Result<Outcome> {
    let mut records = Vec::new();
    for file in files {
        if !file.is_file() {
            return Err(Error::config(
                "--summary",
                format!(
                    "{}: no such file (give the --out file of a sweep)",
                    file.display()
                ),
            ));
        }
        records.extend(sweep::read_records(file)?);
    }
    let table = sweep::summarize(&records);
    if table.is_empty() {
        eprintln!("no finished run recorded yet");
        return Ok(Outcome::Done);
    }
    if json {
        for s in table.iter() {
            println!(
                "{}",
                json!({
                    "label": s.label,
                    "settings": s.settings,
                    "seeds": s.seeds,
                    "runs": s.seeds.len(),
                    "diverged": s.diverged,
                    "val_acc": s.val(),
                    "test_acc": s.test(),
                    "seconds": Summary::of(&s.seconds),
                })
            );
        }
    } else {
        print!("{}", table.markdown());
    }
    Ok(Outcome::Done)
}

fn done_keys(out: Option<&Path>) -> Result<HashSet<String>> {
    match out {
        Some(path) if path.is_file() => {
            Ok(sweep::read_records(path)?.iter().map(Record::key).collect())
        }
        _ => Ok(HashSet::new()),
    }
}

fn list(jobs: &[Job], out: Option<&Path>, json: bool) -> Result<Outcome> {
    let done = done_keys(out)?;
    for j in jobs {
        let is_done = done.contains(&j.record_key);
        if json {
            println!(
                "{}",
                json!({
                    "index": j.index,
                    "label": j.label,
                    "seed": j.net.seed,
                    "key": j.record_key,
                    "done": is_done,
                })
            );
        } else {
            println!(
                "{:>5}  {}  seed {}  {}",
                j.index,
                if is_done { "done" } else { "todo" },
                j.net.seed,
                j.label
            );
        }
    }
    Ok(Outcome::Done)
}

/// "12/30 runs, ETA 1 min 20 s".
fn progress_line(done: usize, total: usize, finished_here: usize, started: Instant) -> String {
    let left = total - done;
    if left == 0 {
        return format!("{done}/{total} runs, done");
    }
    if finished_here == 0 {
        return format!("{done}/{total} runs, ETA after the first run finishes");
    }
    let per_run = started.elapsed().as_secs_f64() / finished_here as f64;
    format!(
        "{done}/{total} runs, ETA {}",
        duration(per_run * left as f64)
    )
}

fn train_grid(
    jobs: &[Job],
    grid_size: usize,
    load: &klayer::data::LoadOptions,
    sizes: DataSizes,
    out: &Path,
) -> Result<Outcome> {
    let (file, recorded) = SweepFile::open(out)?;
    let done: HashSet<String> = recorded.iter().map(Record::key).collect();
    let pending: Vec<&Job> = jobs
        .iter()
        .filter(|j| !done.contains(&j.record_key))
        .collect();
    let total = jobs.len();
    let already = total - pending.len();
    eprintln!(
        "sweep: {total} run(s){}, {already} already in {}, {} to train",
        if total < grid_size {
            format!(" in this shard (of {grid_size})")
        } else {
            String::new()
        },
        out.display(),
        pending.len()
    );
    if pending.is_empty() {
        return Ok(Outcome::Done);
    }
    let data = Split::<f32>::load(load)?;
    if DataSizes::of(&data) != sizes {
        return Err(Error::config(
            "--n-train",
            format!(
                "the data gave {:?} images, not the {sizes:?} planned",
                DataSizes::of(&data)
            ),
        ));
    }
    let finished = AtomicUsize::new(0);
    let started = Instant::now();
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        let finished = &finished;
        scope.spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_EVERY) {
                let here = finished.load(Ordering::SeqCst);
                eprintln!("{}", progress_line(already + here, total, here, started));
            }
        });
        let result = pending.par_iter().try_for_each(|job| -> Result<()> {
            let mut net = job.net.build::<f32>()?;
            let h = train(
                &mut net,
                &job.train,
                &data.train,
                &data.val,
                Some(&data.test),
            )?;
            let record = Record::new(&job.net, &job.train, sizes, &h);
            debug_assert_eq!(record.key(), job.record_key);
            file.append(&record)?;
            let here = finished.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!(
                "[{}/{total}] {} · seed {}: {}",
                already + here,
                job.label,
                job.net.seed,
                h.summary()
            );
            Ok(())
        });
        let _ = stop.send(());
        result
    })?;
    let here = finished.load(Ordering::SeqCst);
    eprintln!("{}", progress_line(already + here, total, here, started));
    eprintln!(
        "wrote {}; `klayer sweep --summary {}` gives mean ± std per setting",
        out.display(),
        out.display()
    );
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_line_definition_passes_clap_s_own_checks() {
        crate::Cli::command().debug_assert();
        SpecFile::command().debug_assert();
        TrainDefaults::command().debug_assert();
    }

    #[test]
    fn shards_count_from_one_and_bad_ones_say_how_to_write_them() {
        assert_eq!(parse_shard("1/1").unwrap(), (1, 1));
        assert_eq!(parse_shard("3/4").unwrap(), (3, 4));
        for (bad, says) in [
            ("0/4", "I must be from 1 to N = 4"),
            ("5/4", "I must be from 1 to N = 4"),
            ("1/0", "N must be at least 1"),
            ("-1/4", "negative"),
            ("1/4/2", "N: `4/2` is not a whole number"),
            ("", "give it as I/N"),
        ] {
            let msg = parse_shard(bad).unwrap_err().to_string();
            assert!(msg.starts_with("invalid setting `--shard`"), "{msg}");
            assert!(msg.contains(says), "{bad}: {msg}");
        }
    }

    #[test]
    fn the_progress_line_gives_runs_done_and_the_time_left() {
        let started = Instant::now() - Duration::from_secs(20);
        assert_eq!(
            progress_line(3, 30, 0, started),
            "3/30 runs, ETA after the first run finishes"
        );
        // 2 runs in 20 s here: 10 s a run, 28 left.
        assert_eq!(
            progress_line(4, 30, 2, started),
            "4/30 runs, ETA 4 min 20 s"
        );
        assert_eq!(progress_line(30, 30, 2, started), "30/30 runs, done");
    }
}
