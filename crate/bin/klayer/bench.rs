//! `klayer bench`: update steps of a given net on random CIFAR-shaped data, timed.

use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use crate::args::{count, Budget, NetArgs, CLASSES, FLOPS_PER_SECOND, MAX_WORK};
use crate::Outcome;
use klayer::bn_stats::update_ema;
use klayer::data::{feature_stats, normalise, Dataset, IMAGE_DIM};
use klayer::linalg::{fma_peak, kernels, on_worker};
use klayer::net::{NetConfig, StepPhases, EVAL_CHUNK};
use klayer::rng::{rng, Stream};
use klayer::train::{evaluate_set, BatchStream, Optimizer, OptimizerState};
use klayer::{Error, Result, Scalar};

/// Flags of `klayer bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Images per mini-batch.
    #[arg(long, default_value_t = 100, value_parser = count, allow_hyphen_values = true)]
    batch: usize,
    /// Timed update steps.
    #[arg(long, default_value_t = 2000, value_parser = count, allow_hyphen_values = true)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 200, value_parser = count, allow_hyphen_values = true)]
    warmup: usize,
    /// Random images in the pool mini-batches are drawn from.
    #[arg(long, default_value_t = 10_000, value_parser = count, allow_hyphen_values = true)]
    images: usize,
    /// Use Adam instead of SGD.
    #[arg(long)]
    adam: bool,
    /// Benchmark f64 instead of f32.
    #[arg(long)]
    f64: bool,
    /// Also time one evaluation pass over 50,000 images (45,000 train + 5,000 validation).
    #[arg(long)]
    eval: bool,
    /// Print one line of JSON.
    #[arg(long)]
    json: bool,
}

/// Most update steps (timed and warm-up) a benchmark may run: a million, about 15 minutes
/// of the default net; a median over five blocks needs far fewer.
pub const MAX_BENCH_STEPS: usize = 1_000_000;

/// Images of the optional evaluation pass.
const EVAL_IMAGES: usize = 50_000;

/// A checked benchmark.
pub struct BenchPlan {
    args: BenchArgs,
    net: NetConfig,
}

/// Checks the flags and the size limits, before anything is allocated.
pub fn plan(args: BenchArgs) -> Result<BenchPlan> {
    if args.steps == 0 {
        return Err(Error::config("--steps", "must be at least 1"));
    }
    match args.steps.checked_add(args.warmup) {
        Some(n) if n <= MAX_BENCH_STEPS => {}
        _ => {
            return Err(Error::config(
                "--steps",
                format!(
                    "{} timed and {} warm-up steps are more than the limit of {MAX_BENCH_STEPS} \
                     steps in all (a median over five blocks needs a few thousand)",
                    args.steps, args.warmup
                ),
            ))
        }
    }
    if args.images == 0 {
        return Err(Error::config("--images", "the pool needs at least 1 image"));
    }
    if args.batch == 0 {
        return Err(Error::config("--batch", "must be at least 1"));
    }
    if args.batch > args.images {
        return Err(Error::config(
            "--batch",
            format!(
                "{} is larger than the --images pool of {}; use a smaller batch or more images",
                args.batch, args.images
            ),
        ));
    }
    if args.net.batch_norm() && args.batch < 2 {
        return Err(Error::config(
            "--batch",
            "batch normalization needs at least 2 images per mini-batch; use a larger batch or \
             --bn none",
        ));
    }
    let net = args.net.config(IMAGE_DIM, CLASSES)?;
    let scalar: u128 = if args.f64 { 8 } else { 4 };
    // Random bytes, kept next to the normalised features as the loaders keep them.
    let per_image = IMAGE_DIM as u128 * (1 + scalar);
    let mut budget = Budget::default();
    budget
        .network(
            &net,
            scalar,
            args.batch as u128,
            (args.steps + args.warmup) as u128,
            (
                u128::from(args.eval),
                EVAL_IMAGES as u128,
                EVAL_CHUNK as u128,
            ),
        )
        .memory(
            "the --images pool",
            "--images",
            (args.images as u128).saturating_mul(per_image),
        );
    if args.eval {
        budget.memory(
            "the evaluation set",
            "--eval",
            EVAL_IMAGES as u128 * per_image,
        );
    }
    budget.check(MAX_WORK, FLOPS_PER_SECOND)?;
    Ok(BenchPlan { args, net })
}

/// Runs the benchmark.
pub fn run(plan: &BenchPlan) -> Result<Outcome> {
    // On a rayon worker, as in training (see klayer::linalg::on_worker).
    if plan.args.f64 {
        on_worker(|| run_typed::<f64>(plan))
    } else {
        on_worker(|| run_typed::<f32>(plan))
    }
}

fn run_typed<T: Scalar>(plan: &BenchPlan) -> Result<Outcome> {
    let args = &plan.args;
    let mut net = plan.net.build::<T>()?;
    let mut r = rng(args.net.seed, Stream::Data);
    let data = random_images::<T>(args.images, &mut r)?;
    let kind = if args.adam {
        Optimizer::ADAM
    } else {
        Optimizer::Sgd
    };
    let mut opt = OptimizerState::new(kind, &mut net);
    let mut batches = BatchStream::new(&data, args.batch, rng(args.net.seed, Stream::Shuffle))?;
    let mut step = |net: &mut klayer::net::Network<T>| -> Result<Phases> {
        // As in training (λ = 0.005).
        let step = batches.with_next_job(|xb, yb, gather| {
            opt.train_step(net, xb.view(), yb, 0.01, 0.005, || gather.run(), |_| true)
        })?;
        let t = Instant::now();
        update_ema(net, 0.9);
        Ok(Phases::of(step.phases, step.update + t.elapsed()))
    };
    for _ in 0..args.warmup {
        step(&mut net)?;
    }
    const BLOCKS: usize = 5;
    let per_block = args.steps.div_ceil(BLOCKS);
    let mut block_ms = Vec::new();
    let mut phases = Vec::with_capacity(per_block * BLOCKS);
    for _ in 0..BLOCKS {
        let t = Instant::now();
        for _ in 0..per_block {
            phases.push(step(&mut net)?);
        }
        block_ms.push(t.elapsed().as_secs_f64() * 1e3 / per_block as f64);
    }
    let median = median(block_ms.clone());
    let best = block_ms.iter().copied().fold(f64::INFINITY, f64::min);
    let phases = Phases::median(&phases);
    let eval_seconds = if args.eval {
        let set = random_images::<T>(EVAL_IMAGES, &mut r)?;
        let t = Instant::now();
        evaluate_set(&mut net, &set, None, 0.005, &Default::default())?;
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };
    let threads = rayon::current_num_threads();
    let gflops = step_flops(&net, args.batch) / (median * 1e-3) / 1e9;
    // The peak is f32's; an f64 run is compared with it too (half the lanes).
    let peak = fma_peak(200);
    let of_peak = peak.map(|p| gflops / p.gflops);
    if args.json {
        println!(
            "{}",
            json!({
                "ms_per_step": median,
                "best_ms_per_step": best,
                "steps": per_block * BLOCKS,
                "batch": args.batch,
                "hidden": args.net.hidden,
                "precision": T::NAME,
                "threads": threads,
                "eval_50k_seconds": eval_seconds,
                "gflops": gflops,
                "kernels": format!("{:?}", kernels()),
                "fma_peak_gflops": peak.map(|p| p.gflops),
                "fraction_of_peak": of_peak,
                "phases_ms": phases.json(),
            })
        );
    } else {
        println!(
            "{} ({}), batch {}: {median:.3} ms per update step (median of {BLOCKS} blocks of {per_block}; best {best:.3}), {threads} threads",
            net.describe(),
            T::NAME,
            args.batch
        );
        match peak {
            Some(p) => println!(
                "{gflops:.1} GFLOP/s in the layers' products, {:.0} % of this machine's f32 FMA peak of {:.1} GFLOP/s \
                 ({} threads running independent {}-lane FMAs for 0.2 s; {:?} kernels)",
                100.0 * gflops / p.gflops,
                p.gflops,
                p.threads,
                p.lanes,
                kernels()
            ),
            None => println!("{gflops:.1} GFLOP/s in the layers' products (no vector FMA peak: generic kernels)"),
        }
        println!("{}", phases.describe());
        if let Some(s) = eval_seconds {
            println!("evaluation of 50,000 images: {:.3} s", s);
        }
    }
    Ok(Outcome::Done)
}

/// The middle value of `v` (the upper of the two middle ones for an even length), 0 if empty.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Where one update step's time went, in ms: the parts of [`StepPhases`] and the update.
#[derive(Debug, Clone, Copy)]
struct Phases([f64; 6]);

impl Phases {
    /// The names in JSON, in the order of the array.
    const KEYS: [&'static str; 6] = [
        "first_forward",
        "layers",
        "gather",
        "layers_and_gather",
        "first_backward",
        "update",
    ];

    fn of(p: StepPhases, update: Duration) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Phases([
            ms(p.first_forward),
            ms(p.layers),
            ms(p.job),
            ms(p.layers_and_job),
            ms(p.first_backward),
            ms(update),
        ])
    }

    /// Each part's median over the steps (so the parts need not add up to the step's median).
    fn median(steps: &[Phases]) -> Self {
        Phases(std::array::from_fn(|i| {
            median(steps.iter().map(|p| p.0[i]).collect())
        }))
    }

    fn json(&self) -> serde_json::Value {
        Self::KEYS
            .iter()
            .zip(self.0)
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    }

    fn describe(&self) -> String {
        let [forward, layers, gather, both, backward, update] = self.0;
        format!(
            "where a step goes (medians over the steps, ms): first layer's forward product \
             {forward:.3}; layers after it {layers:.3}, beside them the next batch's gathering \
             {gather:.3}, the two {both:.3}; first layer's weight gradient {backward:.3} \
             (with SGD, and its update); the other updates and BN averages {update:.3}"
        )
    }
}

/// `n` images of uniformly random bytes with labels `0, 1, …, 9, 0, …`, normalised as the
/// data loaders normalise CIFAR-10 (so mini-batches are gathered as in training).
fn random_images<T: Scalar>(n: usize, r: &mut impl rand::Rng) -> Result<Dataset<T>> {
    let mut pixels = vec![0u8; n * IMAGE_DIM];
    r.fill_bytes(&mut pixels);
    let labels: Vec<u8> = (0..n).map(|i| (i % CLASSES) as u8).collect();
    let (mean, std) = feature_stats(&pixels, IMAGE_DIM);
    normalise(&pixels, &labels, &mean, &std)
}

/// Floating-point operations of the products of one update step at `batch` images: each
/// linear layer's forward product and weight gradient, and its input gradient except for the
/// first layer (an FMA counts as 2). Element-wise work (BN, ReLU, softmax, the update) is not
/// counted.
fn step_flops<T: Scalar>(net: &klayer::net::Network<T>, batch: usize) -> f64 {
    net.layers
        .iter()
        .filter_map(|l| l.as_linear())
        .enumerate()
        .map(|(i, l)| {
            let products = if i == 0 { 2.0 } else { 3.0 };
            products * 2.0 * (batch * l.in_features() * l.out_features()) as f64
        })
        .sum()
}
