//! The training loop: reproducibility, divergence, schedules, optimizers, evaluation points,
//! and a short run on real CIFAR-10 that must learn.

mod common;

use klayer::bn_stats::BnStats;
use klayer::data::{feature_stats, normalise, Augment, Dataset, ImageShape, LoadOptions, Split};
use klayer::net::{BnPlacement, NetConfig, Network};
use klayer::rng::{rng, Stream};
use klayer::train::{
    train, BatchStream, History, LrSchedule, Optimizer, OptimizerState, TrainConfig,
};
use ndarray::Array2;
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;

/// Ten Gaussian blobs in 3072 dimensions, laid out as CIFAR-10 images (so augmentation
/// applies), separable but noisy; `seed` draws the images, the blob centres are always the
/// same.
fn blobs(n: usize, seed: u64) -> Dataset<f32> {
    let centres =
        Array2::<f32>::random_using((10, 3072), StandardNormal, &mut rng(0, Stream::Data)) * 0.5;
    let mut r = rng(seed, Stream::Data);
    let mut x = Array2::<f32>::random_using((n, 3072), StandardNormal, &mut r);
    let y: Vec<usize> = (0..n).map(|i| i % 10).collect();
    for (mut row, &label) in x.rows_mut().into_iter().zip(&y) {
        row += &centres.row(label);
    }
    Dataset::new(x, y, 10)
        .and_then(|d| d.with_shape(ImageShape::CIFAR10))
        .unwrap()
}

fn quick_config(bn_stats: BnStats) -> TrainConfig {
    TrainConfig {
        batch: 50,
        schedule: LrSchedule::Cyclic {
            eta_min: 1e-4,
            eta_max: 5e-2,
            n_s: 40,
            cycles: 2,
            decay: 1.0,
        },
        bn_stats,
        augment: Some(Augment::default()),
        seed: 7,
        ..TrainConfig::default()
    }
}

fn run(net_seed: u64, cfg: &TrainConfig) -> History {
    let (tr, va) = (blobs(1000, 1), blobs(300, 2));
    let mut net = NetConfig::new(&[20, 20])
        .seed(net_seed)
        .build::<f32>()
        .unwrap();
    train(&mut net, cfg, &tr, &va, Some(&va)).unwrap()
}

fn without_timing(mut h: History) -> History {
    h.train_seconds = 0.0;
    h.eval_seconds = 0.0;
    h
}

#[test]
fn the_same_seeds_give_an_identical_history() {
    for stats in [
        BnStats::default(),
        BnStats::PRECISE_REPORT,
        BnStats::Adaptive { augment: 0.5 },
    ] {
        let cfg = quick_config(stats);
        assert_eq!(
            without_timing(run(3, &cfg)),
            without_timing(run(3, &cfg)),
            "{stats:?}"
        );
    }
}

#[test]
fn a_run_gives_the_same_history_on_one_thread_and_on_several() {
    // The next mini-batch is gathered on another thread, and large products are split across
    // threads; neither may change a single number.
    let cfg = quick_config(BnStats::default());
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        without_timing(pool.install(|| run(3, &cfg)))
    };
    assert_eq!(on(1), on(3));
}

/// Row `i` of the data set holds the value `i` in every column.
fn numbered(n: usize) -> Dataset<f32> {
    let x = Array2::from_shape_fn((n, 3), |(i, _)| i as f32);
    Dataset::new(x, (0..n).map(|i| i % 10).collect(), 10).unwrap()
}

/// The image numbers of the next `batches` batches of `stream`.
fn draw(stream: &mut BatchStream<'_, f32>, batches: usize) -> Vec<Vec<usize>> {
    (0..batches)
        .map(|_| {
            stream.with_next(|x, y| {
                let rows: Vec<usize> = x.column(0).iter().map(|&v| v as usize).collect();
                assert!(x.rows().into_iter().all(|r| r.iter().all(|&v| v == r[0])));
                assert_eq!(y, rows.iter().map(|i| i % 10).collect::<Vec<_>>());
                rows
            })
        })
        .collect()
}

#[test]
fn batches_cover_each_image_at_most_once_per_epoch_and_drop_the_remainder() {
    // 103 images in batches of 10: 10 whole batches per epoch, 3 images left out each time.
    let data = numbered(103);
    let mut stream = BatchStream::new(&data, 10, rng(5, Stream::Shuffle)).unwrap();
    let epochs: Vec<Vec<Vec<usize>>> = (0..3).map(|_| draw(&mut stream, 10)).collect();
    for epoch in &epochs {
        let mut seen: Vec<usize> = epoch.concat();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 100, "an image came twice in one epoch");
    }
    assert_ne!(epochs[0], epochs[1], "the second epoch was not reshuffled");
}

#[test]
fn batches_follow_the_shuffle_of_the_generator_and_not_the_thread_count() {
    let data = numbered(50);
    // The sequence the training loop has always used: shuffle, take whole batches in order,
    // reshuffle when fewer than a batch are left.
    let mut r = rng(9, Stream::Shuffle);
    let mut order: Vec<usize> = (0..50).collect();
    let mut expected = Vec::new();
    for _ in 0..4 {
        rand::seq::SliceRandom::shuffle(order.as_mut_slice(), &mut r);
        expected.extend(order.chunks_exact(16).map(<[usize]>::to_vec));
    }
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let got = pool.install(|| {
            let mut stream = BatchStream::new(&data, 16, rng(9, Stream::Shuffle)).unwrap();
            draw(&mut stream, 12)
        });
        assert_eq!(got, expected, "{threads} threads");
    }
}

/// 300 random images of 3,072 bytes normalised as the loaders do (so the set keeps its bytes).
fn normalised_bytes() -> Dataset<f32> {
    let mut r = rng(3, Stream::Data);
    let pixels: Vec<u8> = (0..300 * 3072)
        .map(|_| rand::Rng::random::<u8>(&mut r))
        .collect();
    let labels: Vec<u8> = (0..300).map(|i| (i % 10) as u8).collect();
    let (mean, std) = feature_stats(&pixels, 3072);
    normalise(&pixels, &labels, &mean, &std).unwrap()
}

/// The batches (images and labels) `stream` gives for `steps` steps, by every way of taking
/// the next one: `with_next`, and `with_next_job` with the gathering run on another thread,
/// shared by two threads, or left to run after the step.
fn batches_of(stream: &mut BatchStream<'_, f32>, steps: usize) -> Vec<(Array2<f32>, Vec<usize>)> {
    (0..steps)
        .map(|t| {
            if t % 4 == 0 {
                return stream.with_next(|x, y| (x.to_owned(), y.to_vec()));
            }
            stream.with_next_job(|x, y, gather| {
                match t % 4 {
                    1 => rayon::join(|| (), || gather.run()),
                    2 => rayon::join(|| gather.run(), || gather.run()),
                    _ => ((), ()),
                };
                (x.to_owned(), y.to_vec())
            })
        })
        .collect()
}

#[test]
fn batches_of_a_normalised_set_hold_exactly_its_features_also_after_they_change() {
    let mut data = normalised_bytes();
    // The same features without the bytes they came from: batches are plain copies.
    let copy = |d: &Dataset<f32>| Dataset::new(d.x.clone(), d.y.clone(), 10).unwrap();
    for round in 0..2 {
        let plain = copy(&data);
        let mut a = BatchStream::new(&data, 100, rng(1, Stream::Shuffle)).unwrap();
        let mut b = BatchStream::new(&plain, 100, rng(1, Stream::Shuffle)).unwrap();
        let (got, want) = (batches_of(&mut a, 12), batches_of(&mut b, 12));
        for ((gx, gy), (wx, wy)) in got.iter().zip(&want) {
            assert_eq!(gy, wy, "round {round}");
            let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(gx) == bits(wx),
                "round {round}: a batch differs from the features"
            );
        }
        // Features changed after loading must be what the next batches hold.
        data.x.row_mut(7).fill(-0.0);
        data.x[[123, 45]] = 1e30;
    }
}

#[test]
fn weights_gradients_batches_features_and_layer_outputs_start_on_a_cache_line() {
    use klayer::layers::{Layer, Mode};
    use klayer::linalg::is_aligned;
    let on_line = |a: &Array2<f32>| is_aligned(a.view());
    let data = normalised_bytes();
    assert!(on_line(&data.x), "normalised features");
    let mut stream = BatchStream::new(&data, 100, rng(1, Stream::Shuffle)).unwrap();
    for _ in 0..3 {
        assert!(stream.with_next(|x, _| is_aligned(x.view())));
    }
    let x = stream.with_next(|x, _| x.to_owned());
    for bn in [BnPlacement::Before, BnPlacement::After] {
        let mut net = NetConfig::new(&[50, 50]).bn(bn).build::<f32>().unwrap();
        let mut linear = 0;
        for layer in &net.layers {
            if let Layer::Linear(l) = layer {
                assert!(
                    on_line(&l.w) && on_line(&l.dw),
                    "weights and their gradient"
                );
                linear += 1;
            }
        }
        assert_eq!(linear, 3);
        // Every layer's output but the logits is the input of a later layer's product.
        let last = net.layers.len() - 1;
        for mode in [Mode::Train, Mode::Eval] {
            let mut h = x.clone();
            for (i, layer) in net.layers.iter_mut().enumerate() {
                h = layer.forward(h.view(), mode);
                if i < last {
                    let what = layer.describe();
                    assert!(on_line(&h), "output of {what} in {mode:?} with BN {bn:?}");
                }
            }
        }
    }
}

#[test]
fn a_batch_stream_rejects_a_batch_larger_than_the_data_set() {
    let data = numbered(5);
    for batch in [0, 6] {
        let err = BatchStream::new(&data, batch, rng(0, Stream::Shuffle)).unwrap_err();
        assert!(err.to_string().contains("batch"), "{err}");
    }
}

#[test]
fn another_seed_gives_another_history() {
    let cfg = quick_config(BnStats::default());
    let a = run(3, &cfg);
    assert_ne!(a.batch_loss, run(4, &cfg).batch_loss, "init seed ignored");
    let other = TrainConfig { seed: 8, ..cfg };
    assert_ne!(
        a.batch_loss,
        run(3, &other).batch_loss,
        "training seed ignored"
    );
}

#[test]
fn training_learns_the_blobs() {
    // Without augmentation: the blob centres are noise images, which a shift scrambles.
    let cfg = TrainConfig {
        augment: None,
        ..quick_config(BnStats::default())
    };
    let h = run(0, &cfg);
    assert!(h.test_acc().unwrap() > 0.8, "{}", h.summary());
    assert!(h.evals.last().unwrap().train.loss < h.evals[0].train.loss);
}

#[test]
fn evaluations_come_about_ten_times_per_cycle_plus_the_start() {
    let h = run(0, &quick_config(BnStats::default()));
    let steps: Vec<usize> = h.evals.iter().map(|e| e.step).collect();
    assert_eq!(steps, (0..=20).map(|i| i * 8).collect::<Vec<_>>());
    assert_eq!(h.lr.len(), 160);
    assert_eq!(h.steps, 160);
    // The cost is the loss plus the L2 term.
    let last = h.evals.last().unwrap();
    assert!(last.train.cost > last.train.loss);
}

#[test]
fn the_learning_rate_of_every_step_follows_the_schedule() {
    let cfg = quick_config(BnStats::default());
    let h = run(0, &cfg);
    for (t, &lr) in h.lr.iter().enumerate() {
        assert_eq!(lr, cfg.schedule.lr(t));
    }
    assert_eq!(h.lr[40], 5e-2);
    assert_eq!(h.lr[80], 1e-4);
}

#[test]
fn a_cyclic_schedule_with_decay_lowers_each_peak() {
    let s = LrSchedule::Cyclic {
        eta_min: 1e-5,
        eta_max: 1e-3,
        n_s: 10,
        cycles: 3,
        decay: 0.5,
    };
    assert!((s.lr(10) - 1e-3).abs() < 1e-18);
    assert!((s.lr(30) - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-15);
    assert!((s.lr(50) - (1e-5 + 0.25 * (1e-3 - 1e-5))).abs() < 1e-15);
    assert!((s.lr(5) - (1e-5 + 0.5 * (1e-3 - 1e-5))).abs() < 1e-15);
    assert_eq!(s.total_steps(), 60);
}

#[test]
fn divergence_stops_the_run_and_says_where() {
    let (tr, va) = (blobs(500, 1), blobs(100, 2));
    let mut net = NetConfig::new(&[20, 20])
        .bn(BnPlacement::None)
        .build::<f32>()
        .unwrap();
    let cfg = TrainConfig {
        batch: 50,
        schedule: LrSchedule::Constant {
            eta: 1e4,
            steps: 100,
        },
        ..TrainConfig::default()
    };
    let h = train(&mut net, &cfg, &tr, &va, Some(&va)).unwrap();
    let d = h.diverged.expect("a learning rate of 1e4 must diverge");
    assert!(d.step < 100);
    assert_eq!(d.lr, 1e4);
    assert!(!d.loss.is_finite() || d.loss > cfg.divergence_loss);
    assert_eq!(h.test, None, "a diverged run reports no test accuracy");
    assert_eq!(h.steps, d.step);
    assert!(h.summary().starts_with("diverged at step"));
}

#[test]
fn the_step_that_diverges_leaves_the_weights_as_the_last_update_left_them() {
    // BN keeps the loss finite for many steps of a huge rate, so the run is stopped by a low
    // divergence limit, at a step whose gradients are computed before the stop.
    let (tr, va) = (blobs(500, 1), blobs(100, 2));
    let cfg = |steps| TrainConfig {
        batch: 50,
        schedule: LrSchedule::Constant { eta: 1e3, steps },
        divergence_loss: 5.0,
        evals_per_cycle: 1,
        ..TrainConfig::default()
    };
    let fresh = || NetConfig::new(&[20, 20]).build::<f32>().unwrap();
    let mut diverged = fresh();
    let h = train(&mut diverged, &cfg(100), &tr, &va, None).unwrap();
    let d = h
        .diverged
        .expect("a learning rate of 1e3 must pass a loss of 5");
    assert!(d.step > 0, "the limit should be passed after some updates");
    // The same run stopped after the updates that came before the diverging step.
    let mut stopped = fresh();
    train(&mut stopped, &cfg(d.step), &tr, &va, None).unwrap();
    let values = |n: &mut Network<f32>| {
        n.params_mut()
            .into_iter()
            .map(|p| p.param.value.to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&mut diverged), values(&mut stopped));
}

#[test]
fn adam_moves_every_parameter_by_about_the_learning_rate_on_its_first_step() {
    let x = Array2::<f32>::random_using((8, 3072), StandardNormal, &mut rng(1, Stream::Data));
    let y: Vec<usize> = (0..8).collect();
    let mut net = NetConfig::new(&[10])
        .bn(BnPlacement::None)
        .build::<f32>()
        .unwrap();
    let before: Vec<Vec<f32>> = net
        .params_mut()
        .iter()
        .map(|p| p.param.value.to_vec())
        .collect();
    net.grads(x.view(), &y, 0.0).unwrap();
    let grads: Vec<Vec<f32>> = net
        .params_mut()
        .iter()
        .map(|p| p.param.grad.to_vec())
        .collect();
    let mut opt = OptimizerState::new(Optimizer::ADAM, &mut net);
    opt.step(&mut net, 1e-3);
    for ((p, b), g) in net.params_mut().iter().zip(&before).zip(&grads) {
        for ((&after, &before), &g) in p.param.value.iter().zip(b).zip(g) {
            // m̂ = g, v̂ = g², so the step is η g / (|g| + ε).
            let expected = before - 1e-3 * g / (g.abs() + 1e-8);
            assert!(
                (after - expected).abs() < 1e-6,
                "{}: {after} vs {expected}",
                p.name
            );
        }
    }
}

#[test]
fn invalid_settings_are_rejected_with_the_setting_named() {
    let (tr, va) = (blobs(100, 1), blobs(50, 2));
    let mut net = NetConfig::new(&[5]).build::<f32>().unwrap();
    let cases = [
        (
            TrainConfig {
                batch: 101,
                ..TrainConfig::default()
            },
            "batch",
        ),
        (
            TrainConfig {
                lambda: -1.0,
                ..TrainConfig::default()
            },
            "lambda",
        ),
        (
            TrainConfig {
                schedule: LrSchedule::Cyclic {
                    eta_min: 0.1,
                    eta_max: 0.01,
                    n_s: 10,
                    cycles: 1,
                    decay: 1.0,
                },
                ..TrainConfig::default()
            },
            "eta_min",
        ),
        (
            TrainConfig {
                bn_stats: BnStats::Adaptive { augment: 1.5 },
                ..TrainConfig::default()
            },
            "augment",
        ),
    ];
    for (cfg, name) in cases {
        let err = train(&mut net, &cfg, &tr, &va, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(name), "{err} should name {name}");
    }
    assert!(NetConfig::new(&[50, 0])
        .build::<f32>()
        .unwrap_err()
        .to_string()
        .contains("hidden"));
}

#[test]
fn f32_and_f64_networks_of_one_seed_start_alike() {
    let a = NetConfig::new(&[30, 20]).seed(5).build::<f32>().unwrap();
    let b = NetConfig::new(&[30, 20]).seed(5).build::<f64>().unwrap();
    assert_eq!(a.cast::<f64>().cast::<f32>(), a);
    let x = Array2::<f64>::random_using((4, 3072), StandardNormal, &mut rng(2, Stream::Data));
    let la = a
        .clone()
        .forward(x.mapv(|v| v as f32).view(), klayer::layers::Mode::Train)
        .unwrap();
    let lb = b
        .clone()
        .forward(x.view(), klayer::layers::Mode::Train)
        .unwrap();
    let diff = (&la.mapv(|v| v as f64) - &lb)
        .mapv(f64::abs)
        .fold(0.0f64, |m, &v| m.max(v));
    assert!(diff < 1e-3, "{diff}");
}

/// The 3-layer BN net of the report, trained on a fifth of the real training images for two
/// short cycles, must be far above chance (10 %); full runs reach 53-54 %.
#[test]
fn three_layer_bn_net_learns_real_cifar10() {
    let Some(data_dir) = common::cifar10_dir() else {
        return;
    };
    let opts = LoadOptions {
        path: Some(data_dir),
        n_train: Some(10_000),
        n_val: 1_000,
        n_test: Some(2_000),
        download: false,
        ..LoadOptions::default()
    };
    let cifar = Split::<f32>::load(&opts).unwrap();
    let mut net = NetConfig::new(&[50, 50]).seed(0).build::<f32>().unwrap();
    let cfg = TrainConfig {
        schedule: LrSchedule::assignment(10_000, 100, 2),
        ..TrainConfig::default()
    };
    let h = train(&mut net, &cfg, &cifar.train, &cifar.val, Some(&cifar.test)).unwrap();
    let acc = h.test_acc().unwrap();
    assert!(acc > 0.40, "test accuracy {acc} after {} steps", h.steps);
}

#[test]
fn a_network_too_large_to_allocate_is_refused_by_build_not_by_a_panic() {
    for hidden in [
        vec![usize::MAX],
        vec![100_000_000],
        vec![50, usize::MAX / 2, 50],
    ] {
        let err = NetConfig::new(&hidden)
            .build::<f32>()
            .expect_err("a net this size cannot be built");
        let msg = err.to_string();
        assert!(msg.contains("hidden") && msg.contains("weights"), "{msg}");
    }
    // The report's widest net is far below the limit.
    assert!(NetConfig::new(&[512, 256, 128, 64, 32, 16])
        .build::<f32>()
        .is_ok());
}
