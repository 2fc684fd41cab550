//! `klayer`: train, gradient-check and benchmark k-layer networks on CIFAR-10 from the shell.

mod args;
mod bench;
mod checkpoint;
mod reproduce;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ndarray::{s, Array2};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use serde_json::json;

use args::{DataArgs, NetArgs, TrainArgs};
use klayer::data::{self, Cifar10, LoadOptions};
use klayer::gradcheck::{gradcheck, GradCheckConfig, Stencil};
use klayer::rng::{rng, Stream};
use klayer::train::train;
use klayer::{Error, Result, Scalar};

#[derive(Parser)]
#[command(
    name = "klayer",
    version,
    about = "k-layer networks with batch normalization on CIFAR-10"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: boxing the large `train` variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a network on CIFAR-10 and report validation and test accuracy.
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
        /// Write the whole history (curves, learning rates, settings) as JSON to this file.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Save the trained network (with its BN statistics and input normalisation) to this
        /// safetensors file; `klayer eval --load FILE` evaluates it.
        #[arg(long, value_name = "FILE")]
        save: Option<PathBuf>,
    },
    /// Evaluate a network saved by `klayer train --save` on the CIFAR-10 test images.
    Eval(checkpoint::EvalArgs),
    /// Compare analytic and numerical gradients (f64) on a reduced input.
    Gradcheck {
        #[command(flatten)]
        net: NetArgs,
        /// Use the first N features of each image.
        #[arg(long, default_value_t = 20)]
        features: usize,
        /// Number of images in the batch.
        #[arg(long, default_value_t = 10)]
        images: usize,
        /// L2 factor of the cost.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        lambda: f64,
        /// Step of the centred difference.
        #[arg(long, default_value_t = 1e-4)]
        h: f64,
        /// Use the plain three-point difference instead of the five-point one.
        #[arg(long)]
        three_point: bool,
        /// The cifar-10-batches-bin directory [default: $KLAYER_DATA, then ./data/…;
        /// random N(0, 1) inputs if none is found].
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
    /// Download and verify the official CIFAR-10 binary archive into ./data (or --dir).
    Download {
        /// The data root; the files land in DIR/cifar-10-batches-bin.
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Archive URL.
        #[arg(long, default_value = data::CIFAR10_URL)]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train {
            net,
            train,
            data,
            f64: double,
            json,
            history,
            save,
        } => {
            let out = Outputs { history, save };
            if double {
                run_train::<f64>(&net, &train, &data, json, out)
            } else {
                run_train::<f32>(&net, &train, &data, json, out)
            }
        }
        Command::Eval(args) => checkpoint::run(&args),
        Command::Gradcheck {
            net,
            features,
            images,
            lambda,
            h,
            three_point,
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
            run_gradcheck(&net, features, images, &cfg, data, json)
        }
        Command::Bench(args) => bench::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::Download { dir, url } => {
            let path = data::download(&url, data::CIFAR10_MD5, &dir)?;
            eprintln!("CIFAR-10 is in {}", path.display());
            Ok(())
        }
    }
}

fn load_options(d: &DataArgs) -> LoadOptions {
    LoadOptions {
        path: d.data.clone(),
        n_train: d.n_train,
        n_val: d.n_val,
        n_test: d.n_test,
        download: !d.no_download,
        ..LoadOptions::default()
    }
}

/// Files `klayer train` writes besides its report.
struct Outputs {
    history: Option<PathBuf>,
    save: Option<PathBuf>,
}

fn run_train<T: Scalar>(
    net_args: &NetArgs,
    train_args: &TrainArgs,
    data_args: &DataArgs,
    json: bool,
    out: Outputs,
) -> Result<()> {
    let cifar = Cifar10::<T>::load(&load_options(data_args))?;
    let net_cfg = net_args.config(cifar.train.dim(), cifar.train.classes)?;
    let cfg = train_args.config(cifar.train.len(), net_args.seed)?;
    let mut net = net_cfg.build::<T>()?;
    eprintln!(
        "training {} ({}) on {} images, validating on {}, {} steps, {}",
        net.describe(),
        T::NAME,
        cifar.train.len(),
        cifar.val.len(),
        cfg.schedule.total_steps(),
        cfg.bn_stats.label()
    );
    let history = train(&mut net, &cfg, &cifar.train, &cifar.val, Some(&cifar.test))?;
    if let Some(path) = out.history {
        let doc = json!({ "net": net_cfg, "train": cfg, "history": history });
        write_json(&path, &doc)?;
    }
    if json {
        println!(
            "{}",
            json!({
                "test_acc": history.test_acc(),
                "val_acc": history.val_acc(),
                "diverged": history.diverged.is_some(),
                "diverged_at": history.diverged,
                "steps": history.steps,
                "train_seconds": history.train_seconds,
                "eval_seconds": history.eval_seconds,
                "hidden": net_cfg.hidden,
                "bn": net_cfg.bn,
                "lambda": cfg.lambda,
                "seed": net_cfg.seed,
                "precision": T::NAME,
            })
        );
    } else {
        println!("{}", history.summary());
    }
    if let Some(path) = &out.save {
        if let Some(d) = &history.diverged {
            return Err(Error::config(
                "save",
                format!("the run diverged ({d}); {} was not written", path.display()),
            ));
        }
        checkpoint::save(path, &net, &cifar)?;
    }
    Ok(())
}

/// Writes `doc` to `path` through a temporary file in the same directory, renamed into place,
/// so a crash never leaves a half-written file.
fn write_json(path: &std::path::Path, doc: &serde_json::Value) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    serde_json::to_writer(&mut tmp, doc).map_err(|e| Error::io(path, e.into()))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

fn run_gradcheck(
    net_args: &NetArgs,
    features: usize,
    images: usize,
    cfg: &GradCheckConfig,
    data_path: Option<PathBuf>,
    json: bool,
) -> Result<()> {
    if features == 0 || features > data::IMAGE_DIM {
        return Err(Error::config(
            "--features",
            format!("{features}: must be in 1..={}", data::IMAGE_DIM),
        ));
    }
    if images == 0 {
        return Err(Error::config("--images", "must be at least 1"));
    }
    let explicit = data_path.is_some();
    let opts = LoadOptions {
        path: data_path,
        n_train: Some(images.max(100)),
        n_test: Some(1),
        download: false,
        ..LoadOptions::default()
    };
    let (x, y, source) = match Cifar10::<f64>::load(&opts) {
        Ok(c) if images <= c.train.len() => (
            c.train.x.slice(s![..images, ..features]).to_owned(),
            c.train.y[..images].to_vec(),
            "CIFAR-10 training images",
        ),
        Err(e) if explicit => return Err(e),
        _ => {
            let mut r = rng(net_args.seed, Stream::Data);
            let x = Array2::<f64>::random_using((images, features), StandardNormal, &mut r);
            let y = (0..images).map(|i| i % 10).collect();
            (x, y, "random N(0, 1) inputs (no CIFAR-10 found)")
        }
    };
    let mut net = net_args.config(features, 10)?.build::<f64>()?;
    eprintln!(
        "gradient check of {} on {images} {source}, {features} features, lambda {}, h {} ({:?} stencil)",
        net.describe(),
        cfg.lambda,
        cfg.h,
        cfg.stencil
    );
    let check = gradcheck(&mut net, x.view(), &y, cfg)?;
    if json {
        let per: serde_json::Map<_, _> = check
            .tensors
            .iter()
            .map(|t| (t.name.clone(), json!(t.max_rel_error())))
            .collect();
        println!(
            "{}",
            json!({ "max_rel_error": check.max_rel_error(), "per_tensor": per })
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
    Ok(())
}
