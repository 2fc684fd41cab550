//! Evaluating a network on a data set with a chosen kind of BN statistics.

use ndarray::{s, ArrayView2};
use rand::Rng;

use super::Metrics;
use crate::bn_stats::BnStats;
use crate::data::{Augment, Dataset};
use crate::net::Network;
use crate::{Result, Scalar};

/// Cost, loss and accuracy of `net` on the rows `x` with labels `y`, BN layers using the
/// statistics that `bn_stats` evaluates with ([`crate::bn_stats::Method::for_eval`]): their
/// stored ones ([`BnStats::Ema`], [`BnStats::Precise`]) or those of `x` itself
/// ([`BnStats::Adaptive`]; its augmentation is not applied here, see [`evaluate_test`]).
pub fn evaluate<T: Scalar>(
    net: &mut Network<T>,
    x: ArrayView2<T>,
    y: &[usize],
    lambda: f64,
    bn_stats: &BnStats,
) -> Result<Metrics> {
    let sums = bn_stats.method::<T>().for_eval(net, x)?.loss_sums(x, y)?;
    let loss = sums.mean_loss();
    Ok(Metrics {
        cost: loss + lambda * net.l2(),
        loss,
        acc: sums.accuracy(),
    })
}

/// [`evaluate`] on the first `limit` rows of `data` (all if `None`).
pub fn evaluate_set<T: Scalar>(
    net: &mut Network<T>,
    data: &Dataset<T>,
    limit: Option<usize>,
    lambda: f64,
    bn_stats: &BnStats,
) -> Result<Metrics> {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    evaluate(
        net,
        data.x.slice(s![..n, ..]),
        &data.y[..n],
        lambda,
        bn_stats,
    )
}

/// Final evaluation of a held-out set. When `bn_stats` asks for test-time augmentation
/// ([`crate::bn_stats::Method::test_augment`]: [`BnStats::Adaptive`] with `augment > 0`), a copy
/// of the set has that fraction of its images augmented (random flip and translation by
/// `tta`), then the statistics are computed on it and its images are classified. The set's
/// rows must then be images of a known shape ([`Augment::shape_of`]).
pub fn evaluate_test<T: Scalar, R: Rng>(
    net: &mut Network<T>,
    data: &Dataset<T>,
    lambda: f64,
    bn_stats: &BnStats,
    tta: &Augment,
    rng: &mut R,
) -> Result<Metrics> {
    let augment = bn_stats.method::<T>().test_augment();
    if augment > 0.0 {
        let shape = tta.shape_of(data)?;
        let mut x = data.x.clone();
        tta.apply_fraction(x.view_mut(), shape, augment, rng);
        evaluate(net, x.view(), &data.y, lambda, bn_stats)
    } else {
        evaluate_set(net, data, None, lambda, bn_stats)
    }
}
