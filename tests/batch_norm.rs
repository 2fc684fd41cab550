//! Batch normalization and its evaluation statistics (EMA, PreciseBN, Adaptive BN) against
//! values computed independently here.

use approx_eq::assert_close;
use klayer::bn_stats::{adapt, precise_bn, update_ema, Moments, PreciseAccumulator};
use klayer::data::Dataset;
use klayer::layers::{BatchNorm, BatchStats, Layer, Mode};
use klayer::net::{BnPlacement, NetConfig, Network};
use klayer::rng::{rng, Stream};
use ndarray::{array, Array1, Array2, Axis};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;

mod approx_eq {
    macro_rules! assert_close {
        ($a:expr, $b:expr, $tol:expr) => {{
            let (a, b): (&ndarray::Array1<f64>, &ndarray::Array1<f64>) = (&$a, &$b);
            assert_eq!(a.len(), b.len(), "lengths differ");
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                assert!(
                    (x - y).abs() <= $tol,
                    "entry {i}: {x} vs {y} (tolerance {})",
                    $tol
                );
            }
        }};
    }
    pub(crate) use assert_close;
}

/// Mean and biased variance of the columns, the plain way.
fn column_stats(x: &Array2<f64>) -> (Array1<f64>, Array1<f64>) {
    let n = x.nrows() as f64;
    let mean = x.sum_axis(Axis(0)) / n;
    let var = Array1::from_iter((0..x.ncols()).map(|j| {
        x.column(j)
            .iter()
            .map(|v| (v - mean[j]).powi(2))
            .sum::<f64>()
            / n
    }));
    (mean, var)
}

#[test]
fn train_mode_forward_matches_hand_computed_values() {
    let mut bn = BatchNorm::<f64>::new(2, 0.0);
    bn.gamma = array![2.0, 1.0];
    bn.beta = array![0.5, -1.0];
    // Column 0: 1, 3, 5 → mean 3, biased variance 8/3. Column 1: 2, 2, 8 → mean 4, variance 8.
    let y = bn.forward(
        array![[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]].view(),
        Mode::Train,
    );
    let s0 = (8.0f64 / 3.0).sqrt();
    let s1 = 8.0f64.sqrt();
    let expected = array![
        [2.0 * -2.0 / s0 + 0.5, -2.0 / s1 - 1.0],
        [0.5, -2.0 / s1 - 1.0],
        [2.0 * 2.0 / s0 + 0.5, 4.0 / s1 - 1.0]
    ];
    for (a, b) in y.iter().zip(&expected) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    let stats = bn.last_batch.clone().unwrap();
    assert_eq!(stats.mean, array![3.0, 4.0]);
    assert_close!(stats.var, array![8.0 / 3.0, 8.0], 1e-12);
}

#[test]
fn eval_mode_uses_running_statistics_not_the_batch() {
    let mut bn = BatchNorm::<f64>::new(1, 0.0);
    bn.set_running(array![1.0], array![4.0]);
    let y = bn.forward(array![[3.0], [5.0]].view(), Mode::Eval);
    assert_eq!(y, array![[1.0], [2.0]]);
}

#[test]
fn eps_is_added_to_the_variance() {
    let mut bn = BatchNorm::<f64>::new(1, 1.0);
    let y = bn.forward(array![[0.0], [2.0]].view(), Mode::Train);
    // variance 1, eps 1 → divide by sqrt(2)
    assert!((y[[1, 0]] - 1.0 / 2f64.sqrt()).abs() < 1e-15);
}

#[test]
fn train_mode_forward_leaves_running_statistics_alone() {
    let mut bn = BatchNorm::<f64>::new(2, 1e-8);
    bn.set_running(array![0.5, 0.25], array![2.0, 3.0]);
    bn.forward(array![[1.0, 9.0], [3.0, 7.0]].view(), Mode::Train);
    assert_eq!(bn.running_mean, array![0.5, 0.25]);
    assert_eq!(bn.running_var, array![2.0, 3.0]);
}

fn small_net(bn: BnPlacement) -> Network<f64> {
    NetConfig::new(&[6, 5])
        .input(7)
        .bn(bn)
        .seed(11)
        .build::<f64>()
        .unwrap()
}

fn random_rows(n: usize, d: usize, seed: u64) -> Array2<f64> {
    Array2::random_using((n, d), StandardNormal, &mut rng(seed, Stream::Data)) * 2.0 + 0.7
}

fn linear_out(net: &Network<f64>, layer: usize, x: &Array2<f64>) -> Array2<f64> {
    match &net.layers[layer] {
        Layer::Linear(l) => {
            let y = x.dot(&l.w.t());
            match &l.b {
                Some(b) => y + b,
                None => y,
            }
        }
        _ => panic!("layer {layer} is not linear"),
    }
}

fn normalise(
    x: &Array2<f64>,
    mean: &Array1<f64>,
    var: &Array1<f64>,
    bn: &BatchNorm<f64>,
) -> Array2<f64> {
    let mut y = x.clone();
    for mut row in y.rows_mut() {
        for j in 0..row.len() {
            row[j] = (row[j] - mean[j]) / (var[j] + bn.eps).sqrt() * bn.gamma[j] + bn.beta[j];
        }
    }
    y
}

fn bn_of(net: &Network<f64>, layer: usize) -> &BatchNorm<f64> {
    match &net.layers[layer] {
        Layer::BatchNorm(b) => b,
        _ => panic!("layer {layer} is not BN"),
    }
}

#[test]
fn ema_starts_from_the_first_batch_then_averages_with_alpha() {
    let mut net = small_net(BnPlacement::Before);
    let (b1, b2) = (random_rows(10, 7, 1), random_rows(10, 7, 2));
    net.forward(b1.view(), Mode::Train).unwrap();
    update_ema(&mut net, 0.9);
    let (m1, v1) = column_stats(&linear_out(&net, 0, &b1));
    assert_close!(bn_of(&net, 1).running_mean, m1, 1e-12);
    assert_close!(bn_of(&net, 1).running_var, v1, 1e-12);
    net.forward(b2.view(), Mode::Train).unwrap();
    update_ema(&mut net, 0.9);
    let (m2, v2) = column_stats(&linear_out(&net, 0, &b2));
    assert_close!(bn_of(&net, 1).running_mean, &m1 * 0.9 + &m2 * 0.1, 1e-12);
    assert_close!(bn_of(&net, 1).running_var, &v1 * 0.9 + &v2 * 0.1, 1e-12);
}

#[test]
fn moments_over_batches_equal_the_variance_of_all_rows_together() {
    let x = random_rows(60, 4, 3) * 1e3 + 1e4; // a large offset: naive formulas lose digits
    let mut m = Moments::new(4);
    let mut by_formula_mean = Array1::<f64>::zeros(4);
    let mut by_formula_sq = Array1::<f64>::zeros(4);
    for chunk in x.axis_chunks_iter(Axis(0), 15) {
        let stats = BatchStats::of(chunk);
        m.add_batch(&stats);
        by_formula_mean += &stats.mean;
        by_formula_sq += &(&stats.var + &stats.mean.mapv(|v| v * v));
    }
    let (mean, var) = column_stats(&x);
    assert_close!(m.mean(), mean, 1e-9);
    assert_close!(m.var(), var, 1e-6);
    // EXPERIMENTS.md's formula: mean of (batch var + batch mean²) − mean².
    let mean_f = by_formula_mean / 4.0;
    let var_f = by_formula_sq / 4.0 - mean_f.mapv(|v| v * v);
    assert_close!(m.var(), var_f, 1e-3);
}

#[test]
fn precise_accumulator_sets_population_statistics_of_the_batches_seen() {
    let mut net = small_net(BnPlacement::Before);
    let batches: Vec<_> = (0..3).map(|i| random_rows(8, 7, 10 + i)).collect();
    let mut acc = PreciseAccumulator::default();
    for b in &batches {
        net.forward(b.view(), Mode::Train).unwrap();
        acc.add(&mut net);
    }
    acc.apply(&mut net);
    let all = ndarray::concatenate(
        Axis(0),
        &batches.iter().map(|b| b.view()).collect::<Vec<_>>(),
    )
    .unwrap();
    let (mean, var) = column_stats(&linear_out(&net, 0, &all));
    assert_close!(bn_of(&net, 1).running_mean, mean, 1e-12);
    assert_close!(bn_of(&net, 1).running_var, var, 1e-12);
}

#[test]
fn precise_bn_over_the_whole_set_in_one_batch_matches_a_train_mode_pass() {
    let mut net = small_net(BnPlacement::Before);
    let x = random_rows(40, 7, 4);
    let data = Dataset::new(x.clone(), vec![0; 40], 10).unwrap();
    let weights_before = net.clone();
    precise_bn(&mut net, &data, 1, 40, &mut rng(0, Stream::Precise)).unwrap();
    // Layer by layer, independently: BN1 on x W1ᵀ, ReLU, BN2 on that W2ᵀ.
    let h1 = linear_out(&net, 0, &x);
    let (m1, v1) = column_stats(&h1);
    let a1 = normalise(&h1, &m1, &v1, bn_of(&net, 1)).mapv(|v| v.max(0.0));
    let h2 = linear_out(&net, 3, &a1);
    let (m2, v2) = column_stats(&h2);
    assert_close!(bn_of(&net, 1).running_mean, m1, 1e-12);
    assert_close!(bn_of(&net, 1).running_var, v1, 1e-12);
    assert_close!(bn_of(&net, 4).running_mean, m2, 1e-12);
    assert_close!(bn_of(&net, 4).running_var, v2, 1e-12);
    // Weights are frozen.
    for (a, b) in net.layers.iter().zip(&weights_before.layers) {
        if let (Layer::Linear(a), Layer::Linear(b)) = (a, b) {
            assert_eq!(a.w, b.w);
        }
    }
}

#[test]
fn adaptive_bn_recomputes_statistics_layer_by_layer_on_the_evaluation_set() {
    for placement in [BnPlacement::Before, BnPlacement::After] {
        let mut net = small_net(placement);
        // Give the net some unrelated running statistics first.
        net.forward(random_rows(10, 7, 8).view(), Mode::Train)
            .unwrap();
        update_ema(&mut net, 0.9);
        let x = random_rows(50, 7, 9) * 3.0;
        let adapted = adapt(&net, x.view()).unwrap();
        // Independently: walk the layers, computing each BN's stats on its actual input.
        let mut h = x.clone();
        for (i, layer) in adapted.layers.iter().enumerate() {
            h = match layer {
                Layer::Linear(_) => linear_out(&adapted, i, &h),
                Layer::Relu(_) => h.mapv(|v| v.max(0.0)),
                Layer::BatchNorm(bn) => {
                    let (m, v) = column_stats(&h);
                    assert_close!(bn.running_mean, m, 1e-10);
                    assert_close!(bn.running_var, v, 1e-9);
                    normalise(&h, &m, &v, bn)
                }
                Layer::Student(_) => unreachable!("small_net has no student layers"),
            };
        }
        // And the adapted net in eval mode gives the same logits as a train-mode pass on x.
        let mut adapted = adapted;
        let eval = adapted.forward(x.view(), Mode::Eval).unwrap();
        let train = net.clone().forward(x.view(), Mode::Train).unwrap();
        let diff = (&eval - &train)
            .mapv(f64::abs)
            .fold(0.0f64, |m, &v| m.max(v));
        assert!(diff < 1e-9, "{placement:?}: {diff}");
        // The original network is untouched.
        assert_ne!(
            bn_of(
                &net,
                if placement == BnPlacement::Before {
                    1
                } else {
                    2
                }
            )
            .running_mean,
            bn_of(
                &adapted,
                if placement == BnPlacement::Before {
                    1
                } else {
                    2
                }
            )
            .running_mean
        );
    }
}
