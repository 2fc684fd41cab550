//! The training loop.

use std::time::Instant;

use super::{evaluate_set, evaluate_test, EvalPoint, History, OptimizerState, TrainConfig};
use crate::bn_stats::Finished;
use crate::data::Dataset;
use crate::net::Network;
use crate::rng::{rng, Stream};
use crate::train::BatchStream;
use crate::train::Divergence;
use crate::{Error, Result, Scalar};

/// The non-finite loss of the last learning-curve point, if it has one.
fn curve_breakdown(history: &History) -> Option<f64> {
    let p = history.evals.last()?;
    [p.train.loss, p.val.loss]
        .into_iter()
        .find(|l| !l.is_finite())
}

/// Trains `net` on `train` with mini-batch gradient descent as `cfg` says, recording learning
/// curves on `train` and `val` about `cfg.evals_per_cycle` times per cycle, then the final
/// validation and (if given) test metrics with the final BN statistics.
///
/// Each epoch visits the training images in a new random order (seeded by `cfg.seed`); a last
/// incomplete batch is left for the next epoch's shuffle. A non-finite or exploding mini-batch
/// loss, or a non-finite loss on the learning curve, stops the run and is recorded in
/// [`History::diverged`]; that is not an error.
///
/// # Errors
/// Invalid settings, or data whose shape does not fit the network.
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use klayer::{data::Dataset, net::NetConfig, train::{train, LrSchedule, TrainConfig}};
/// let x = Array2::from_shape_fn((200, 4), |(i, j)| if (i % 2 == 0) == (j < 2) { 1.0f32 } else { -1.0 });
/// let y = (0..200).map(|i| i % 2).collect();
/// let data = Dataset::new(x, y, 2).unwrap();
/// let mut net = NetConfig::new(&[8]).input(4).classes(2).build().unwrap();
/// let cfg = TrainConfig {
///     batch: 20,
///     schedule: LrSchedule::Constant { eta: 0.1, steps: 50 },
///     ..TrainConfig::default()
/// };
/// let history = train(&mut net, &cfg, &data, &data, Some(&data)).unwrap();
/// assert_eq!(history.test_acc(), Some(1.0));
/// ```
pub fn train<T: Scalar>(
    net: &mut Network<T>,
    cfg: &TrainConfig,
    train: &Dataset<T>,
    val: &Dataset<T>,
    test: Option<&Dataset<T>>,
) -> Result<History> {
    // The loop runs on a rayon worker, with another kept at hand, so that each step's parallel
    // products split cheaply (see on_worker).
    crate::linalg::on_worker(|| train_here(net, cfg, train, val, test))
}

fn train_here<T: Scalar>(
    net: &mut Network<T>,
    cfg: &TrainConfig,
    train: &Dataset<T>,
    val: &Dataset<T>,
    test: Option<&Dataset<T>>,
) -> Result<History> {
    cfg.check_for(train.len(), net.has_batch_norm())?;
    for (name, set) in [("train", Some(train)), ("val", Some(val)), ("test", test)] {
        let Some(set) = set else { continue };
        if set.is_empty() {
            return Err(Error::config("data", format!("the {name} set is empty")));
        }
        if set.dim() != net.input_features() {
            return Err(Error::Shape(format!(
                "the {name} set has {} features per image, the network expects {}",
                set.dim(),
                net.input_features()
            )));
        }
        if set.classes > net.classes() {
            return Err(Error::Shape(format!(
                "the {name} set has {} classes, the network outputs {}",
                set.classes,
                net.classes()
            )));
        }
    }
    // Augmentation needs the images' shape, and its shift must fit them.
    let augment = match &cfg.augment {
        Some(aug) => Some((aug, aug.shape_of(train)?)),
        None => None,
    };
    let started = Instant::now();
    let shuffle_rng = rng(cfg.seed, Stream::Shuffle);
    let mut augment_rng = rng(cfg.seed, Stream::Augment);
    let steps = cfg.schedule.total_steps();
    let evals = cfg.evals_per_cycle * cfg.schedule.cycles();
    let eval_every = (steps / evals).max(1);
    let batches_per_epoch = train.len() / cfg.batch;
    let mut opt = OptimizerState::new(cfg.optimizer, net);
    let mut bn_stats = cfg.bn_stats.method::<T>();
    let mut history = History {
        lr: Vec::with_capacity(steps),
        batch_loss: Vec::with_capacity(steps),
        ..History::default()
    };
    let mut eval_seconds = 0.0;
    let prefix = cfg
        .label
        .as_ref()
        .map_or(String::new(), |l| format!("[{l}] "));
    let mut record = |net: &mut Network<T>, step: usize, history: &mut History| -> Result<()> {
        let t = Instant::now();
        let point = EvalPoint {
            step,
            epoch: step as f64 / batches_per_epoch as f64,
            train: evaluate_set(net, train, cfg.train_eval_limit, cfg.lambda, &cfg.bn_stats)?,
            val: evaluate_set(net, val, None, cfg.lambda, &cfg.bn_stats)?,
        };
        eval_seconds += t.elapsed().as_secs_f64();
        if cfg.progress {
            eprintln!(
                "{prefix}step {step:>6}/{steps}  epoch {:>5.1}  lr {:.2e}  train cost {:.3} loss {:.3} acc {:5.2} %  val loss {:.3} acc {:5.2} %  [{:.1} s]",
                point.epoch,
                history.lr.last().copied().unwrap_or(cfg.schedule.lr(0)),
                point.train.cost,
                point.train.loss,
                100.0 * point.train.acc,
                point.val.loss,
                100.0 * point.val.acc,
                started.elapsed().as_secs_f64()
            );
        }
        history.evals.push(point);
        Ok(())
    };

    record(net, 0, &mut history)?;
    let mut batches = BatchStream::new(train, cfg.batch, shuffle_rng)?;
    for t in 0..steps {
        let lr = cfg.schedule.lr(t);
        // A non-finite or exploding loss ends the run before the update. A learning-curve loss
        // that is not finite counts too: in f32 the BN statistics of huge activations
        // overflow, so the mini-batch loss can look normal while evaluation gives NaN.
        let breakdown = curve_breakdown(&history);
        let seen = |loss: f64| breakdown.unwrap_or(loss);
        let go_on = |loss: f64| {
            let seen = seen(loss);
            seen.is_finite() && seen <= cfg.divergence_loss
        };
        // The next batch is gathered while the small layers leave a core idle.
        let step = batches.with_next_job(|mut xb, yb, gather| {
            if let Some((aug, shape)) = augment {
                aug.apply(xb.view_mut(), shape, &mut augment_rng);
            }
            opt.train_step(net, xb.view(), yb, lr, cfg.lambda, || gather.run(), go_on)
        })?;
        let loss = step.loss;
        if !step.updated {
            // The loss of the weights after `t` updates; the rate that led there is the last
            // one applied (the one the learning curve shows for step `t`), not `lr(t)`, which
            // is never used. Before the first update it is the initial rate, as on the curve.
            let used = history.lr.last().copied().unwrap_or(lr);
            history.diverged = Some(Divergence {
                step: t,
                lr: used,
                loss: seen(loss),
            });
            break;
        }
        bn_stats.after_step(net);
        history.lr.push(lr);
        history.batch_loss.push(loss);
        history.steps = t + 1;
        if (t + 1) % eval_every == 0 || t + 1 == steps {
            record(net, t + 1, &mut history)?;
        }
    }

    if let (None, Some(loss)) = (&history.diverged, curve_breakdown(&history)) {
        // The last learning-curve point, after the last step.
        history.diverged = Some(Divergence {
            step: history.steps,
            lr: history.lr.last().copied().unwrap_or(cfg.schedule.lr(0)),
            loss,
        });
    }
    if history.diverged.is_none() {
        let finished = Finished {
            train,
            batch: cfg.batch,
            seed: cfg.seed,
        };
        bn_stats.after_training(net, &finished)?;
        let t = Instant::now();
        history.final_val = Some(evaluate_set(net, val, None, cfg.lambda, &cfg.bn_stats)?);
        if let Some(test) = test {
            let tta = cfg.augment.clone().unwrap_or_default();
            let mut r = rng(cfg.seed, Stream::TestAugment);
            history.test = Some(evaluate_test(
                net,
                test,
                cfg.lambda,
                &cfg.bn_stats,
                &tta,
                &mut r,
            )?);
        }
        eval_seconds += t.elapsed().as_secs_f64();
    }
    history.eval_seconds = eval_seconds;
    history.train_seconds = started.elapsed().as_secs_f64();
    if cfg.progress {
        // Once: the summary, or the divergence (which is the summary of a diverged run).
        eprintln!("{prefix}{}", history.summary());
    }
    Ok(history)
}
