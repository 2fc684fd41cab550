//! `klayer`: train, gradient-check and benchmark k-layer networks on CIFAR-10 from the shell.
//!
//! Every command first checks all of its settings, size limits and output paths (a
//! [`Plan`]), and only then loads data or computes, so that a mistake is reported in
//! milliseconds rather than after minutes.

mod args;
mod bench;
mod checkpoint;
mod reproduce;
mod seeds;
#[cfg(test)]
mod settings_fuzz;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ndarray::{s, Array2};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use serde_json::json;

use args::{count, flagged, Budget, DataArgs, NetArgs, TrainArgs, CLASSES};
use klayer::bn_stats::BnStats;
use klayer::data::{self, DataSource, LoadOptions, Split};
use klayer::error::exit_code;
use klayer::gradcheck::{gradcheck, GradCheckConfig, Stencil};
use klayer::net::{NetConfig, EVAL_CHUNK};
use klayer::output::OutputPath;
use klayer::rng::{rng, Stream};
use klayer::train::{train, History, TrainConfig};
use klayer::{Error, Result, Scalar};

/// The exit codes, for `klayer --help` (the README's "Exit codes" section says the same).
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  2  usage: an unknown flag, a value out of range, settings that do not fit together or
     exceed a size limit (nothing was computed)
  3  data: the data set missing, unreadable, corrupt (wrong size, label or md5), or the
     download failed
  4  runtime: a file could not be written, or a gradient check found an error above --tol
  5  diverged: the training loss became non-finite or exploded; the run stopped there";

#[derive(Parser)]
#[command(
    name = "klayer",
    version,
    about = "k-layer networks with batch normalization on CIFAR-10",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: boxing the large `train` variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a network on CIFAR-10 (or --dataset fashion-mnist) and report validation and
    /// test accuracy.
    Train {
        #[command(flatten)]
        net: NetArgs,
        #[command(flatten)]
        train: TrainArgs,
        #[command(flatten)]
        data: DataArgs,
        /// Train in f64 instead of f32.
        #[arg(long)]
        f64: bool,
        /// Print a one-line JSON summary on stdout.
        #[arg(long)]
        json: bool,
        /// Write the whole history (curves, learning rates, settings) as JSON to this file
        /// (checked before training; a regular file is replaced atomically and keeps its
        /// permissions, a device or FIFO is written to, a symbolic link is followed).
        #[arg(long)]
        history: Option<PathBuf>,
        /// Save the trained network (with its BN statistics and input normalisation) to this
        /// safetensors file; `klayer eval --load FILE` evaluates it.
        #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
        save: Option<PathBuf>,
        /// Train once per seed, the seeds concurrently (instead of --seed), e.g. 0,1,2: one
        /// summary line per seed and the mean ± std; --history then holds every run.
        #[arg(long, value_delimiter = ',', value_parser = count, allow_hyphen_values = true, conflicts_with = "seed")]
        seeds: Option<Vec<usize>>,
    },
    /// Evaluate a network saved by `klayer train --save` on the test images (--dataset).
    Eval(checkpoint::EvalArgs),
    /// Compare analytic and numerical gradients (f64) on a reduced input.
    Gradcheck {
        #[command(flatten)]
        net: NetArgs,
        /// Use the first N features of each image.
        #[arg(long, default_value_t = 20, value_parser = count, allow_hyphen_values = true)]
        features: usize,
        /// Number of images in the batch.
        #[arg(long, default_value_t = 10, value_parser = count, allow_hyphen_values = true)]
        images: usize,
        /// L2 factor of the cost.
        #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
        lambda: f64,
        /// Step of the centred difference, in (0, 0.1].
        #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true)]
        h: f64,
        /// Largest relative error that passes; above it the command exits with code 4 (the
        /// default leaves room for ReLU kinks and the three-point stencil; a wrong gradient
        /// is off by far more).
        #[arg(long, default_value_t = 1e-5, allow_hyphen_values = true)]
        tol: f64,
        /// Use the plain three-point difference instead of the five-point one.
        #[arg(long)]
        three_point: bool,
        /// The data set whose training images are checked on: cifar10 or fashion-mnist.
        #[arg(long, default_value = "cifar10", value_parser = args::dataset)]
        dataset: DataSource,
        /// The data set's directory [default: $KLAYER_DATA, then ./data/… (see `train
        /// --help`); random N(0, 1) inputs if none is found].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Print a one-line JSON summary on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Time update steps on random CIFAR-shaped data (no data set needed).
    Bench(bench::BenchArgs),
    /// Re-run a section of the report (or all) and regenerate its part of docs/RESULTS.md.
    Reproduce(reproduce::ReproduceArgs),
    /// Train a grid of settings × seeds concurrently, one JSON line per finished run
    /// appended to --out (re-running skips the runs already there); --summary FILE prints
    /// mean ± std per setting.
    Sweep(Box<sweep::SweepArgs>),
    /// Download and verify the official CIFAR-10 binary archive (or the four Fashion-MNIST
    /// files) into ./data (or --dir).
    Download {
        /// The data set: cifar10 or fashion-mnist.
        #[arg(long, default_value = "cifar10", value_parser = args::dataset)]
        dataset: DataSource,
        /// The data root; the files land in DIR/cifar-10-batches-bin (DIR/fashion-mnist).
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Archive URL (Fashion-MNIST: the URL of the directory holding the four .gz files)
        /// [default: the official one].
        #[arg(long)]
        url: Option<String>,
        /// Replace an existing copy (a corrupt one) with a fresh, verified one; the old copy
        /// stays until the new one is complete.
        #[arg(long)]
        force: bool,
    },
}

/// How a command that ran to its end came out.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// Training diverged; the divergence was reported once, where it happened.
    Diverged,
    /// A check ran and failed (a gradient check above `--tol`); the message says how.
    Failed(String),
}

fn main() -> ExitCode {
    // Output into a pipe whose reader has gone (`klayer bench | head -1`) ends the process
    // quietly, as it does `cat` or `grep`, instead of panicking on the failed write. (Rust
    // ignores SIGPIPE; sockets are unaffected: the standard library sends with MSG_NOSIGNAL.)
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match plan(cli).and_then(execute) {
        Ok(Outcome::Done) => ExitCode::from(exit_code::SUCCESS),
        Ok(Outcome::Diverged) => ExitCode::from(exit_code::DIVERGED),
        Ok(Outcome::Failed(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(exit_code::RUNTIME)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A command with every setting checked and every limit and output path verified: what is
/// left can only fail on the data, the disk or the numbers.
enum Plan {
    Train(Box<TrainPlan>),
    Gradcheck(Box<GradPlan>),
    Bench(Box<bench::BenchPlan>),
    Reproduce(Box<reproduce::ReproducePlan>),
    Sweep(Box<sweep::SweepPlan>),
    Eval(Box<checkpoint::EvalArgs>),
    Download {
        dataset: DataSource,
        dir: PathBuf,
        url: Option<String>,
        force: bool,
    },
}

/// Checks everything that can be checked before loading data or computing.
fn plan(cli: Cli) -> Result<Plan> {
    Ok(match cli.command {
        Command::Train {
            net,
            train,
            data,
            f64: double,
            json,
            history,
            save,
            seeds,
        } => {
            let mut p = plan_train(&net, &train, &data, double, json, history, save)?;
            p.seeds = seeds.as_deref().map(seeds::seed_list).transpose()?;
            Plan::Train(Box::new(p))
        }
        Command::Eval(args) => Plan::Eval(Box::new(args)),
        Command::Gradcheck {
            net,
            features,
            images,
            lambda,
            h,
            tol,
            three_point,
            dataset,
            data,
            json,
        } => {
            let stencil = if three_point {
                Stencil::Three
            } else {
                Stencil::Five
            };
            let cfg = GradCheckConfig {
                h,
                lambda,
                stencil,
                ..GradCheckConfig::default()
            };
            let input = GradInput {
                features,
                images,
                dataset,
                data,
            };
            Plan::Gradcheck(Box::new(plan_gradcheck(&net, input, cfg, tol, json)?))
        }
        Command::Bench(args) => Plan::Bench(Box::new(bench::plan(args)?)),
        Command::Reproduce(args) => Plan::Reproduce(Box::new(reproduce::plan(args)?)),
        Command::Sweep(args) => Plan::Sweep(Box::new(sweep::plan(*args)?)),
        Command::Download {
            dataset,
            dir,
            url,
            force,
        } => Plan::Download {
            dataset,
            dir,
            url,
            force,
        },
    })
}

/// Runs a checked command.
fn execute(plan: Plan) -> Result<Outcome> {
    match plan {
        Plan::Train(p) if p.seeds.is_some() && p.double => seeds::run::<f64>(&p),
        Plan::Train(p) if p.seeds.is_some() => seeds::run::<f32>(&p),
        Plan::Train(p) if p.double => run_train::<f64>(&p),
        Plan::Train(p) => run_train::<f32>(&p),
        Plan::Gradcheck(p) => run_gradcheck(&p),
        Plan::Bench(p) => bench::run(&p),
        Plan::Reproduce(p) => reproduce::run(&p),
        Plan::Sweep(p) => sweep::run(&p),
        Plan::Eval(args) => checkpoint::run(&args).map(|()| Outcome::Done),
        Plan::Download {
            dataset,
            dir,
            url,
            force,
        } => {
            let url = url.unwrap_or_else(|| LoadOptions::new(dataset).download_url().to_string());
            let path = match (dataset, force) {
                (DataSource::Cifar10, true) => data::redownload(&url, data::CIFAR10_MD5, &dir)?,
                (DataSource::Cifar10, false) => data::download(&url, data::CIFAR10_MD5, &dir)?,
                (DataSource::FashionMnist, true) => data::redownload_fashion_mnist(&url, &dir)?,
                (DataSource::FashionMnist, false) => data::download_fashion_mnist(&url, &dir)?,
            };
            eprintln!("{dataset} is in {}", path.display());
            Ok(Outcome::Done)
        }
    }
}

/// A checked training run.
struct TrainPlan {
    net: NetConfig,
    train: TrainConfig,
    load: LoadOptions,
    double: bool,
    json: bool,
    history: Option<OutputPath>,
    save: Option<OutputPath>,
    /// `--seeds`: train once per seed, concurrently (`None`: the one run of `--seed`).
    seeds: Option<Vec<u64>>,
}

fn plan_train(
    net_args: &NetArgs,
    train_args: &TrainArgs,
    data_args: &DataArgs,
    double: bool,
    json: bool,
    history: Option<PathBuf>,
    save: Option<PathBuf>,
) -> Result<TrainPlan> {
    let (load, n_train) = data_args.options()?;
    // The network's input is an image of the data set.
    let net = net_args.config(load.source.shape().dim(), CLASSES)?;
    let train = train_args.config(n_train, net_args)?;
    let scalar: u128 = if double { 8 } else { 4 };
    let n_val = load.n_val;
    let n_test = load.n_test.unwrap_or(load.source.test_images());
    let steps = train.schedule.total_steps() as u128;
    // Learning-curve points (at most one per step), the first, the final ones.
    let evals = (train.evals_per_cycle as u128 * train.schedule.cycles() as u128).min(steps) + 2;
    let curve_rows = train.train_eval_limit.map_or(n_train, |l| l.min(n_train)) + n_val;
    let largest_set = n_train.max(n_val).max(n_test);
    let (eval_chunk, tta_copy) = match train.bn_stats {
        // Adaptive BN passes a whole set through at once (and copies the test set to augment).
        BnStats::Adaptive { augment } => (largest_set, if augment > 0.0 { n_test } else { 0 }),
        _ => (EVAL_CHUNK.min(largest_set), 0),
    };
    let mut budget = Budget::default();
    budget
        .network(
            &net,
            scalar,
            train.batch as u128,
            steps,
            (evals, curve_rows as u128, eval_chunk as u128),
        )
        .memory(
            "the data",
            "--n-train",
            args::data_bytes(load.source, n_train + n_val + n_test + tta_copy, scalar),
        );
    if let BnStats::Precise {
        batches,
        during_training: false,
    } = train.bn_stats
    {
        let (params, _) = args::net_sizes(&net);
        budget.work(
            "PreciseBN",
            "--precise-batches",
            (batches as u128 * train.batch as u128).saturating_mul(params * 2),
        );
    }
    budget.check(args::MAX_WORK, args::FLOPS_PER_SECOND)?;
    let history = history.map(OutputPath::check).transpose()?;
    let save = save.map(OutputPath::check).transpose()?;
    Ok(TrainPlan {
        net,
        train,
        load,
        double,
        json,
        history,
        save,
        seeds: None,
    })
}

fn run_train<T: Scalar>(p: &TrainPlan) -> Result<Outcome> {
    let cifar = Split::<T>::load(&p.load)?;
    // The input size comes from the data (`plan_train` sized the net for the data set).
    let mut net = p.net.clone().input(cifar.input_dim()).build::<T>()?;
    let cfg = &p.train;
    eprintln!(
        "training {} ({}) on {} {} images, validating on {}, {} steps, {}",
        net.describe(),
        T::NAME,
        cifar.train.len(),
        cifar.source,
        cifar.val.len(),
        cfg.schedule.total_steps(),
        cfg.bn_stats.label()
    );
    let history = train(&mut net, cfg, &cifar.train, &cifar.val, Some(&cifar.test))?;
    if let Some(out) = &p.history {
        let bytes = serde_json::to_vec(&history_doc(&p.net, cfg, &history))
            .map_err(|e| Error::io(&out.given, e.into()))?;
        out.write(&bytes)?;
    }
    if p.json {
        println!("{}", json_summary::<T>(&p.net, cfg, &history));
    } else if history.diverged.is_none() {
        println!("{}", history.summary());
    }
    if let Some(out) = &p.save {
        if let Some(d) = &history.diverged {
            return Err(Error::config(
                "save",
                format!(
                    "the run diverged ({d}); {} was not written",
                    out.given.display()
                ),
            ));
        }
        checkpoint::save(&out.given, &net, &cifar)?;
    }
    // A divergence was printed once, by the training loop, as it happened.
    Ok(if history.diverged.is_some() {
        Outcome::Diverged
    } else {
        Outcome::Done
    })
}

/// What `--history` writes for one run: its settings and its history.
fn history_doc(net: &NetConfig, cfg: &TrainConfig, history: &History) -> serde_json::Value {
    json!({ "net": net, "train": cfg, "history": history })
}

/// The line `--json` prints for one run.
fn json_summary<T: Scalar>(
    net: &NetConfig,
    cfg: &TrainConfig,
    history: &History,
) -> serde_json::Value {
    json!({
        "test_acc": history.test_acc(),
        "val_acc": history.val_acc(),
        "diverged": history.diverged.is_some(),
        "diverged_at": history.diverged,
        "steps": history.steps,
        "train_seconds": history.train_seconds,
        "eval_seconds": history.eval_seconds,
        "hidden": net.hidden,
        "bn": net.bn,
        "lambda": cfg.lambda,
        "seed": net.seed,
        "precision": T::NAME,
    })
}

/// The input of a gradient check: how many features of how many images, of which data set,
/// found where.
struct GradInput {
    features: usize,
    images: usize,
    dataset: DataSource,
    data: Option<PathBuf>,
}

/// A checked gradient check.
struct GradPlan {
    net: NetConfig,
    input: GradInput,
    cfg: GradCheckConfig,
    tol: f64,
    json: bool,
}

fn plan_gradcheck(
    net_args: &NetArgs,
    input: GradInput,
    cfg: GradCheckConfig,
    tol: f64,
    json: bool,
) -> Result<GradPlan> {
    let (features, images) = (input.features, input.images);
    let dim = input.dataset.shape().dim();
    if features == 0 || features > dim {
        return Err(Error::config(
            "--features",
            format!("{features}: must be in 1..={dim}"),
        ));
    }
    // Most images a check may use: the training images left after the default validation.
    let max_images = LoadOptions::new(input.dataset).n_val;
    let max_images = input.dataset.train_images() - max_images;
    if images == 0 || images > max_images {
        return Err(Error::config(
            "--images",
            format!("{images}: must be in 1..={max_images} (the training images)"),
        ));
    }
    if net_args.batch_norm() && images < 2 {
        return Err(Error::config(
            "--images",
            "batch normalization needs at least 2 images (the statistics of one image \
             normalise it to 0); use more images or --bn none",
        ));
    }
    if !(tol.is_finite() && tol > 0.0) {
        return Err(Error::config(
            "--tol",
            format!("{tol}: the tolerance must be positive and finite"),
        ));
    }
    cfg.check().map_err(flagged)?;
    let net = net_args.config(features, CLASSES)?;
    let (params, units) = args::net_sizes(&net);
    let costs_per_entry: u128 = match cfg.stencil {
        Stencil::Three => 2,
        Stencil::Five => 4,
    };
    let images_u = images as u128;
    let mut budget = Budget::default();
    budget
        .memory("the parameters", "--hidden", params.saturating_mul(8 * 4))
        .memory(
            "the activations",
            "--hidden",
            units.saturating_mul(images_u).saturating_mul(8 * 4),
        )
        .memory(
            "the data",
            "--images",
            args::data_bytes(input.dataset, images.max(100) + 1, 8),
        )
        .work(
            "the cost evaluations",
            "--images",
            params
                .saturating_mul(costs_per_entry)
                .saturating_mul(images_u)
                .saturating_mul(params)
                .saturating_mul(2),
        );
    budget.check(args::MAX_GRADCHECK_WORK, args::GRADCHECK_FLOPS_PER_SECOND)?;
    Ok(GradPlan {
        net,
        input,
        cfg,
        tol,
        json,
    })
}

fn run_gradcheck(p: &GradPlan) -> Result<Outcome> {
    let (features, images) = (p.input.features, p.input.images);
    let explicit = p.input.data.is_some();
    let opts = LoadOptions {
        path: p.input.data.clone(),
        n_train: Some(images.max(100)),
        n_test: Some(1),
        download: false,
        ..LoadOptions::new(p.input.dataset)
    };
    let (x, y, source) = match Split::<f64>::load(&opts) {
        Ok(c) => (
            c.train.x.slice(s![..images, ..features]).to_owned(),
            c.train.y[..images].to_vec(),
            format!("{} training images", c.source),
        ),
        Err(e) if explicit => return Err(e),
        Err(_) => {
            let mut r = rng(p.net.seed, Stream::Data);
            let x = Array2::<f64>::random_using((images, features), StandardNormal, &mut r);
            let y = (0..images).map(|i| i % 10).collect();
            let what = format!("random N(0, 1) inputs (no {} found)", p.input.dataset);
            (x, y, what)
        }
    };
    let mut net = p.net.build::<f64>()?;
    let cfg = &p.cfg;
    eprintln!(
        "gradient check of {} on {images} {source}, {features} features, lambda {}, h {} ({:?} stencil)",
        net.describe(),
        cfg.lambda,
        cfg.h,
        cfg.stencil
    );
    let check = gradcheck(&mut net, x.view(), &y, cfg)?;
    let passed = check.passes(p.tol);
    if p.json {
        let per: serde_json::Map<_, _> = check
            .tensors
            .iter()
            .map(|t| (t.name.clone(), json!(t.max_rel_error())))
            .collect();
        println!(
            "{}",
            json!({
                "max_rel_error": check.max_rel_error(),
                "per_tensor": per,
                "tol": p.tol,
                "passed": passed,
            })
        );
    } else {
        for t in &check.tensors {
            println!(
                "{:>8}  {:>6} entries  max relative error {:.3e}",
                t.name,
                t.rel_errors.len(),
                t.max_rel_error()
            );
        }
        println!("max relative error {:.3e}", check.max_rel_error());
    }
    if passed {
        return Ok(Outcome::Done);
    }
    let worst = check
        .tensors
        .iter()
        .find(|t| t.max_rel_error().is_nan() || t.max_rel_error() > p.tol)
        .map_or(String::new(), |t| format!(" (in {})", t.name));
    Ok(Outcome::Failed(format!(
        "gradient check failed: largest relative error {:.3e}{worst} is above --tol {:e}",
        check.max_rel_error(),
        p.tol
    )))
}
