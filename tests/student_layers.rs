//! Students' layers inside real networks: the reference solutions written as plain ndarray
//! functions, plugged into a `Network` with `Student`, train on CIFAR-10 to the same history as
//! klayer's built-in layers (to round-off); broken functions are refused when plugged in.

mod solutions;

mod common;

use klayer::data::{LoadOptions, Split};
use klayer::layers::{Layer, Mode};
use klayer::net::{BnPlacement, NetConfig, Student};
use klayer::train::{train, History, LrSchedule, TrainConfig};
use ndarray::{Array1, Array2};
use solutions as s;

/// A small part of CIFAR-10 (`$KLAYER_DATA`), in f64.
fn data() -> Option<Split<f64>> {
    let dir = common::cifar10_dir()?;
    let opts = LoadOptions::default()
        .path(dir)
        .download(false)
        .n_train(2_000)
        .n_val(1_000)
        .n_test(1_000);
    Some(Split::<f64>::load(&opts).unwrap_or_else(|e| panic!("these tests need CIFAR-10: {e}")))
}

fn config() -> TrainConfig {
    TrainConfig {
        batch: 100,
        schedule: LrSchedule::Cyclic {
            eta_min: 1e-5,
            eta_max: 1e-1,
            n_s: 40,
            cycles: 1,
            decay: 1.0,
        },
        evals_per_cycle: 4,
        ..TrainConfig::default()
    }
}

/// Every number a history records except wall times, in order.
fn numbers(h: &History) -> Vec<f64> {
    let mut v = h.lr.clone();
    v.extend(&h.batch_loss);
    for e in &h.evals {
        for m in [e.train, e.val] {
            v.extend([m.cost, m.loss, m.acc]);
        }
    }
    for m in [h.final_val, h.test].into_iter().flatten() {
        v.extend([m.cost, m.loss, m.acc]);
    }
    v
}

/// Largest relative difference between two histories' numbers (they must have as many).
fn max_rel_difference(a: &History, b: &History) -> f64 {
    let (a, b) = (numbers(a), numbers(b));
    assert_eq!(a.len(), b.len(), "the histories differ in length");
    a.iter()
        .zip(&b)
        .map(|(x, y)| {
            if x == y {
                0.0
            } else {
                (x - y).abs() / x.abs().max(y.abs())
            }
        })
        .fold(0.0, f64::max)
}

#[test]
fn a_students_bn_and_linear_layers_train_to_the_built_in_history() {
    let Some(data) = data() else { return };
    let cfg = config();
    let net = NetConfig::new(&[50, 50]).seed(1).build::<f64>().unwrap();
    let builtin = train(
        &mut net.clone(),
        &cfg,
        &data.train,
        &data.val,
        Some(&data.test),
    )
    .unwrap();
    assert!(builtin.diverged.is_none() && builtin.steps == 80);
    for (what, student) in [
        (
            "BN",
            Student::new().batch_norm(s::bn_forward, s::bn_backward),
        ),
        (
            "BN and linear",
            Student::new()
                .batch_norm(s::bn_forward, s::bn_backward)
                .linear(s::linear_forward, s::linear_backward),
        ),
    ] {
        let mut mine = net.with_student(&student).unwrap();
        assert!(mine.has_student_layers());
        let history = train(&mut mine, &cfg, &data.train, &data.val, Some(&data.test)).unwrap();
        let diff = max_rel_difference(&builtin, &history);
        eprintln!(
            "your {what}: {:.2} % test (built-in {:.2} %), largest relative difference of the histories {diff:.1e}, {:.2} s (built-in {:.2} s)",
            100.0 * history.test_acc().unwrap(),
            100.0 * builtin.test_acc().unwrap(),
            history.train_seconds,
            builtin.train_seconds
        );
        assert!(diff <= 1e-12, "your {what}: histories differ by {diff:e}");
        assert_eq!(history.test_acc(), builtin.test_acc());
        // The running statistics came from the student's mean and variance.
        let ours = mine.layers[1]
            .as_batch_norm()
            .unwrap()
            .running_var()
            .clone();
        assert!(ours.iter().all(|v| v.is_finite() && *v > 0.0));
    }
}

#[test]
fn a_network_with_student_layers_is_reported_and_converts_back_to_built_in_layers() {
    let net = NetConfig::new(&[6])
        .input(4)
        .classes(3)
        .bn(BnPlacement::After)
        .build::<f64>()
        .unwrap();
    let mine = net
        .with_student(&Student::new().batch_norm(s::bn_forward, s::bn_backward))
        .unwrap();
    assert_eq!(
        mine.describe(),
        "Linear(4→6) → Relu → Yours: BatchNorm(6) → Linear(6→3)"
    );
    assert!(mine.has_batch_norm());
    assert_eq!(mine.builtin(), net);
    // A cast keeps the student's layer.
    assert!(mine.cast::<f32>().has_student_layers());
}

#[test]
fn a_students_layer_gives_the_built_in_output_in_f32_and_in_eval_mode() {
    let net = NetConfig::new(&[5])
        .input(3)
        .classes(2)
        .seed(2)
        .build::<f32>()
        .unwrap();
    let mut mine = net
        .with_student(
            &Student::new()
                .batch_norm(s::bn_forward, s::bn_backward)
                .linear(s::linear_forward, s::linear_backward),
        )
        .unwrap();
    let mut net = net;
    let x = Array2::from_shape_fn((7, 3), |(i, j)| ((i * 3 + j) as f32 * 0.7).sin());
    for mode in [Mode::Train, Mode::Eval] {
        let (a, b) = (
            net.forward(x.view(), mode).unwrap(),
            mine.forward(x.view(), mode).unwrap(),
        );
        let diff = (&a - &b).iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(diff < 1e-5, "{mode:?}: {diff}");
    }
}

#[test]
fn plugging_in_an_unimplemented_or_misshapen_function_is_refused_with_a_message() {
    let net = NetConfig::new(&[5])
        .input(3)
        .classes(2)
        .build::<f64>()
        .unwrap();
    let todo = Student::new().batch_norm(
        |_: &Array2<f64>,
         _: &Array1<f64>,
         _: &Array1<f64>,
         _: f64|
         -> (Array2<f64>, Array1<f64>, Array1<f64>) { todo!() },
        s::bn_backward,
    );
    let e = net.with_student(&todo).unwrap_err().to_string();
    assert!(
        e.contains("layer 2") && e.contains("not implemented yet"),
        "{e}"
    );
    let transposed = Student::new().linear(
        s::linear_forward,
        |x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>| {
            (dy.dot(w), x.t().dot(dy), dy.sum_axis(ndarray::Axis(0)))
        },
    );
    let e = net.with_student(&transposed).unwrap_err().to_string();
    assert!(
        e.contains("your linear backward (dW) returned shape [3, 5], expected [5, 3]"),
        "{e}"
    );
    // Nothing was plugged into the original.
    assert!(!net.layers.iter().any(|l| matches!(l, Layer::Student(_))));
}
