//! Gradient checks in f64: analytic against centred-difference gradients for every parameter
//! tensor, for 2-, 3-, 4- and 9-layer nets, BN none/before/after, with and without L2.

use klayer::gradcheck::{gradcheck, GradCheckConfig};
use klayer::net::{BnPlacement, Init, NetConfig};
use klayer::rng::{rng, Stream};
use ndarray::Array2;
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;

const FEATURES: usize = 15;
const BATCH: usize = 8;
/// Largest relative error allowed, `|g_a − g_n| / max(FLOOR, |g_a| + |g_n|)`.
const TOLERANCE: f64 = 1e-7;
/// The denominator's floor. f64 round-off in the cost limits any finite difference to a few
/// 1e-12 absolute (1e-11 in the 9-layer nets), which is above 1e-7 relative for gradients
/// below about 1e-4; with this floor such entries must agree to 2e-10 absolute instead.
const FLOOR: f64 = 2e-3;

fn max_error(t: &klayer::gradcheck::TensorCheck) -> f64 {
    t.analytic
        .iter()
        .zip(&t.numerical)
        .map(|(a, n)| (a - n).abs() / FLOOR.max(a.abs() + n.abs()))
        .fold(0.0, f64::max)
}

fn hidden_for(layers: usize) -> Vec<usize> {
    [12, 10, 9, 8, 8, 7, 7, 6][..layers - 1].to_vec()
}

fn check(layers: usize, bn: BnPlacement, lambda: f64, seed: u64) -> f64 {
    let mut net = NetConfig::new(&hidden_for(layers))
        .input(FEATURES)
        .bn(bn)
        .seed(seed)
        .build::<f64>()
        .unwrap();
    let x = Array2::<f64>::random_using(
        (BATCH, FEATURES),
        StandardNormal,
        &mut rng(seed, Stream::Data),
    );
    let y: Vec<usize> = (0..BATCH).map(|i| (i * 3 + seed as usize) % 10).collect();
    let cfg = GradCheckConfig {
        lambda,
        ..GradCheckConfig::default()
    };
    let result = gradcheck(&mut net, x.view(), &y, &cfg).unwrap();
    let expected_tensors = layers * 2
        + match bn {
            BnPlacement::None => 0,
            // no bias before BN, but gamma and beta: one extra tensor per hidden layer
            BnPlacement::Before => layers - 1,
            BnPlacement::After => 2 * (layers - 1),
        };
    assert_eq!(
        result.tensors.len(),
        expected_tensors,
        "tensors of a {layers}-layer net, BN {bn:?}"
    );
    for t in &result.tensors {
        assert!(
            max_error(t) <= TOLERANCE,
            "{layers} layers, BN {bn:?}, lambda {lambda}, seed {seed}: {} has relative error {:.3e}",
            t.name,
            max_error(t)
        );
        assert_eq!(
            t.kinks, 0,
            "{}: numerical gradient taken across a ReLU kink",
            t.name
        );
    }
    result.max_abs_error()
}

fn check_all_placements(layers: usize) {
    for bn in [BnPlacement::None, BnPlacement::Before, BnPlacement::After] {
        for lambda in [0.0, 0.1] {
            for seed in 0..2 {
                check(layers, bn, lambda, seed);
            }
        }
    }
}

#[test]
fn two_layer_gradients_match_numerical_ones() {
    check_all_placements(2);
}

#[test]
fn three_layer_gradients_match_numerical_ones() {
    check_all_placements(3);
}

#[test]
fn four_layer_gradients_match_numerical_ones() {
    check_all_placements(4);
}

#[test]
fn nine_layer_gradients_match_numerical_ones() {
    check_all_placements(9);
}

#[test]
fn fixed_sigma_init_gradients_match_numerical_ones() {
    let mut net = NetConfig::new(&[10, 10])
        .input(FEATURES)
        .init(Init::Fixed(1e-1))
        .bn(BnPlacement::Before)
        .build::<f64>()
        .unwrap();
    let x =
        Array2::<f64>::random_using((BATCH, FEATURES), StandardNormal, &mut rng(5, Stream::Data));
    let y: Vec<usize> = (0..BATCH).collect();
    let r = gradcheck(&mut net, x.view(), &y, &GradCheckConfig::default()).unwrap();
    for t in &r.tensors {
        assert!(
            max_error(t) <= TOLERANCE,
            "{}: {:.3e}",
            t.name,
            max_error(t)
        );
    }
}

#[test]
fn gradcheck_leaves_the_network_as_it_was() {
    let mut net = NetConfig::new(&[10, 10])
        .input(FEATURES)
        .bn(BnPlacement::After)
        .build::<f64>()
        .unwrap();
    let before = net.clone();
    let x =
        Array2::<f64>::random_using((BATCH, FEATURES), StandardNormal, &mut rng(1, Stream::Data));
    let y: Vec<usize> = (0..BATCH).collect();
    gradcheck(
        &mut net,
        x.view(),
        &y,
        &GradCheckConfig {
            lambda: 0.01,
            ..Default::default()
        },
    )
    .unwrap();
    for (a, b) in net.layers.iter().zip(&before.layers) {
        match (a, b) {
            (klayer::layers::Layer::Linear(a), klayer::layers::Layer::Linear(b)) => {
                assert_eq!(a.w, b.w);
                assert_eq!(a.b, b.b);
            }
            (klayer::layers::Layer::BatchNorm(a), klayer::layers::Layer::BatchNorm(b)) => {
                assert_eq!((&a.gamma, &a.beta), (&b.gamma, &b.beta));
                assert_eq!(
                    (a.running_mean(), a.running_var()),
                    (b.running_mean(), b.running_var())
                );
                assert_eq!(a.last_batch(), b.last_batch());
            }
            _ => {}
        }
    }
}
