//! The three products of a fully connected layer (`x Wᵀ`, `dyᵀ x` and `dy W`) at the default
//! net's shapes, timed with the hand-written kernels and with `gemm` alone, on one thread and
//! on all: `cargo bench --bench linalg`. Prints the best and the median of 300 repetitions and
//! the GFLOP/s of the best, next to the machine's FMA peak ([`klayer::linalg::fma_peak`]).
//!
//! Other shapes: `SHAPES="m,n,k;m,n,k" cargo bench --bench linalg` (batch m, n outputs, k inputs).
//! The operands start on a cache line, as the trainer's do ([`klayer::linalg::zeros_aligned`]);
//! `ALIGNED=0` starts them 16 bytes past one, where an allocator's large blocks start.

mod common;

use klayer::linalg::{
    fma_peak, kernels, matmul_nn, matmul_nt, matmul_tn, set_custom_kernels, zeros_aligned,
};
use ndarray::{s, Array2};

/// Best and median time of 300 calls of `f`, in µs.
fn time(f: impl FnMut()) -> (f64, f64) {
    common::best_and_median(20, 300, f)
}

/// A `rows × cols` matrix of `f(i, j)` starting on a cache line or, with `ALIGNED=0`, 16 bytes
/// past one.
fn operand((rows, cols): (usize, usize), f: impl Fn(usize, usize) -> f32) -> Array2<f32> {
    let skip = if std::env::var("ALIGNED").as_deref() == Ok("0") {
        4
    } else {
        0
    };
    // An owned array may start inside its allocation: skip the first `skip` floats of an
    // aligned one.
    let mut a = zeros_aligned::<f32>((1, rows * cols + skip))
        .slice_move(s![0, skip..])
        .into_shape_with_order((rows, cols))
        .expect("contiguous");
    a.indexed_iter_mut().for_each(|((i, j), v)| *v = f(i, j));
    a
}

fn shapes() -> Vec<(usize, usize, usize)> {
    let Ok(spec) = std::env::var("SHAPES") else {
        return vec![(100, 50, 3072), (100, 512, 3072), (100, 50, 50)];
    };
    spec.split(';')
        .map(|t| {
            let v: Vec<usize> = t
                .split(',')
                .map(|x| {
                    x.trim()
                        .parse()
                        .expect("SHAPES: m,n,k;m,n,k with whole numbers")
                })
                .collect();
            assert_eq!(v.len(), 3, "SHAPES: three numbers per shape");
            (v[0], v[1], v[2])
        })
        .collect()
}

fn main() {
    let all = rayon::current_num_threads();
    for threads in [1, all] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        match pool.install(|| fma_peak(200)) {
            Some(p) => println!("FMA peak on {threads} threads: {:.1} GFLOP/s", p.gflops),
            None => println!("no vector FMA peak (generic kernels)"),
        }
    }
    for custom in [true, false] {
        set_custom_kernels(custom);
        for threads in [1, all] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            pool.install(|| {
                for (m, n, k) in shapes() {
                    let x = operand((m, k), |i, j| ((i * 7 + j) % 13) as f32 - 6.0);
                    let w = operand((n, k), |i, j| ((i + 3 * j) % 11) as f32 - 5.0);
                    let dy = Array2::from_shape_fn((m, n), |(i, j)| ((i + j) % 5) as f32 - 2.0);
                    let (mut y, mut dw) = (zeros_aligned((m, n)), zeros_aligned((n, k)));
                    let gflop = 2.0 * (m * n * k) as f64 / 1e3;
                    let (b1, m1) = time(|| matmul_nt(x.view(), w.view(), y.view_mut(), false));
                    let (b2, m2) = time(|| matmul_tn(dy.view(), x.view(), dw.view_mut()));
                    let mut dx = zeros_aligned((m, k));
                    let (b3, m3) = time(|| matmul_nn(dy.view(), w.view(), dx.view_mut()));
                    println!(
                        "{:?}, {threads} threads, {m}×{n}×{k}: x·Wᵀ best {b1:.1} µs, median {m1:.1} ({:.1} GFLOP/s); \
                         dyᵀ·x best {b2:.1} µs, median {m2:.1} ({:.1} GFLOP/s); \
                         dy·W best {b3:.1} µs, median {m3:.1} ({:.1} GFLOP/s)",
                        kernels(),
                        gflop / b1,
                        gflop / b2,
                        gflop / b3
                    );
                }
            });
        }
    }
}
