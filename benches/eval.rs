//! Evaluation of the default net (3072-50-50-10 with BN, f32) on CIFAR-10, as a training run's
//! learning curves do it: the first 10,000 training images and the 5,000 validation images.
//! `cargo bench --bench eval` prints the median and the best of 15 evaluations in ms, and the
//! first layer's product alone, whose rate it compares with the machine's FMA peak: once with
//! the images streaming from memory, as in an evaluation, and once with the same number of
//! rows taken from one mini-batch that stays in cache, as in a training step. It needs the
//! data set (`KLAYER_DATA` or `./data`); without it, it says so and times nothing.

mod common;

use klayer::data::{LoadOptions, Split};
use klayer::linalg::{fma_peak, matmul_nt};
use klayer::net::NetConfig;
use ndarray::{s, Array2};

/// Times 15 calls of `f` after 2 to warm up and prints the median and the best in ms, and,
/// given the multiply-adds of a call, the median's GFLOP/s and their fraction of `peak`.
fn time(name: &str, madds: Option<f64>, peak: f64, f: impl FnMut()) {
    let (best, median) = common::best_and_median(2, 15, f);
    let rate = madds.map_or(String::new(), |m| {
        let gflops = 2.0 * m / (median * 1e-6) / 1e9;
        format!(
            ", {gflops:.0} GFLOP/s, {:.0} % of the peak",
            100.0 * gflops / peak
        )
    });
    println!(
        "{name:<52} median {:>6.2} ms, best {:>6.2}{rate}",
        median / 1e3,
        best / 1e3
    );
}

fn main() {
    let split = match Split::<f32>::load(&LoadOptions::default().download(false)) {
        Ok(split) => split,
        Err(e) => {
            println!("no evaluation timed: {e}");
            return;
        }
    };
    let peak = fma_peak(200).map_or(f64::NAN, |p| p.gflops);
    println!("f32 FMA peak of this machine: {peak:.1} GFLOP/s");
    let mut net = NetConfig::new(&[50, 50]).build::<f32>().unwrap();
    let (train, val) = (&split.train, &split.val);
    let rows = 10_000;
    let x = train.x.slice(s![..rows, ..]);
    time(
        "10,000 training and 5,000 validation images",
        None,
        peak,
        || {
            net.loss_sums(x, &train.y[..rows]).unwrap();
            net.loss_sums(val.x.view(), &val.y).unwrap();
        },
    );
    let w = net.layers[0].as_linear().unwrap().w.clone();
    let madds = (rows * w.len()) as f64;
    let mut y = Array2::<f32>::zeros((rows, w.nrows()));
    time(
        "first layer's product, 10,000 images",
        Some(madds),
        peak,
        || {
            matmul_nt(x, w.view(), y.view_mut(), false);
        },
    );
    let batch = 100;
    let cached = x.slice(s![..batch, ..]);
    time(
        "the same rows from one cached mini-batch",
        Some(madds),
        peak,
        || {
            for start in (0..rows).step_by(batch) {
                let out = y.slice_mut(s![start..start + batch, ..]);
                matmul_nt(cached, w.view(), out, false);
            }
        },
    );
}
