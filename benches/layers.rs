//! Each layer of the default net after the first, timed alone at its shapes in a training step
//! (a mini-batch of 100, f32): forward and backward passes of BN, ReLU and the 50 → 50 and
//! 50 → 10 linear layers, and the softmax cross-entropy. `cargo bench --bench layers` prints
//! the median and the best of 3,000 calls of each, in µs.
//!
//! Inside a training step these run on one thread beside the gathering of the next batch
//! (`klayer bench` shows the two), with caches that the first layer's products have just
//! filled: there each takes up to a third longer than here.

mod common;

use klayer::layers::{softmax_cross_entropy, BatchNorm, Linear, Mode, Relu};
use ndarray::{Array1, Array2};

/// Prints the median and the best time of 3,000 calls of `f` after 200 to warm up, in µs.
fn time(name: &str, f: impl FnMut()) {
    let (best, median) = common::best_and_median(200, 3000, f);
    println!("{name:<34} median {median:>5.2} µs, best {best:>5.2}");
}

/// A `rows × cols` matrix of values in [-0.5, 0.5).
fn values(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(i, j)| {
        ((i * 7 + j * 13 + seed) % 17) as f32 / 17.0 - 0.5
    })
}

fn main() {
    let m = 100;
    let x = values(m, 50, 0);
    let labels: Vec<usize> = (0..m).map(|i| i % 10).collect();
    let mut bn = BatchNorm::<f32>::new(50, 1e-5);
    let mut hidden = Linear::from_weights(values(50, 50, 1), None);
    let mut last = Linear::from_weights(values(10, 50, 2), Some(Array1::zeros(10)));

    time("BatchNorm(50) forward", || {
        std::hint::black_box(bn.forward(x.view(), Mode::Train));
    });
    let h = Relu.forward(bn.forward(x.view(), Mode::Train).view());
    time("Relu forward", || {
        std::hint::black_box(Relu.forward(x.view()));
    });
    time("Linear(50→50) forward", || {
        std::hint::black_box(hidden.forward(h.view()));
    });
    time("Linear(50→10) forward", || {
        std::hint::black_box(last.forward(h.view()));
    });
    let logits = last.forward(h.view());
    time("softmax cross-entropy", || {
        std::hint::black_box(softmax_cross_entropy(logits.view(), &labels));
    });
    let (_, dlogits) = softmax_cross_entropy(logits.view(), &labels);
    time("Linear(50→10) backward", || {
        std::hint::black_box(last.backward(h.view(), dlogits.view(), true));
    });
    time("Linear(50→50) backward", || {
        std::hint::black_box(hidden.backward(h.view(), x.view(), true));
    });
    // Backward passes take their gradient by value: each call gets a copy (0.1–0.2 µs).
    time("Relu backward", || {
        std::hint::black_box(Relu.backward(h.view(), x.clone(), true));
    });
    time("BatchNorm(50) backward", || {
        std::hint::black_box(bn.backward(x.clone(), true));
    });
}
