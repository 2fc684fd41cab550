//! [`BnStats::Precise`](super::BnStats::Precise): PreciseBN's population statistics, once after
//! training or over every window of consecutive training mini-batches (the report's way).

use rand::seq::SliceRandom;
use rand::Rng;

use super::ema::{init_from_first_batch, update_ema, SHADOW_ALPHA};
use super::{Finished, Method, Moments};
use crate::data::Dataset;
use crate::layers::Mode;
use crate::net::Network;
use crate::rng::{rng, Stream};
use crate::{Error, Result, Scalar};

fn check_batches(batches: usize) -> Result<()> {
    if batches == 0 {
        return Err(Error::config(
            "bn_stats.batches",
            "PreciseBN needs at least 1 mini-batch",
        ));
    }
    Ok(())
}

/// fvcore's PreciseBN: the EMA during training, then `batches` random mini-batches through the
/// frozen network.
#[derive(Debug, Clone, Copy)]
pub(super) struct AfterTraining {
    pub(super) batches: usize,
}

impl<T: Scalar> Method<T> for AfterTraining {
    fn check(&self) -> Result<()> {
        check_batches(self.batches)
    }

    fn label(&self) -> String {
        format!("PreciseBN ({} batches after training)", self.batches)
    }

    fn after_step(&mut self, net: &mut Network<T>) {
        update_ema(net, SHADOW_ALPHA);
    }

    fn after_training(&mut self, net: &mut Network<T>, run: &Finished<'_, T>) -> Result<()> {
        let mut r = rng(run.seed, Stream::Precise);
        precise_bn(net, run.train, self.batches, run.batch, &mut r)
    }
}

/// The report's PreciseBN: at the end of every window of `batches` consecutive training
/// mini-batches, the population statistics of that window replace the running statistics;
/// until the first window is full, the first mini-batch's statistics stand in.
#[derive(Debug, Clone)]
pub(super) struct Windowed {
    batches: usize,
    window: PreciseAccumulator,
}

impl Windowed {
    pub(super) fn new(batches: usize) -> Self {
        Windowed {
            batches,
            window: PreciseAccumulator::default(),
        }
    }
}

impl<T: Scalar> Method<T> for Windowed {
    fn check(&self) -> Result<()> {
        check_batches(self.batches)
    }

    fn label(&self) -> String {
        format!("PreciseBN (every {} batches during training)", self.batches)
    }

    fn after_step(&mut self, net: &mut Network<T>) {
        self.window.add(net);
        if self.window.batches() == self.batches {
            self.window.apply(net);
        } else {
            init_from_first_batch(net);
        }
    }
}

/// Population statistics of every BN layer over many training batches (PreciseBN).
#[derive(Debug, Clone, Default)]
pub struct PreciseAccumulator {
    layers: Vec<Moments>,
    batches: usize,
}

impl PreciseAccumulator {
    /// Adds the last training batch's statistics of every BN layer (after a [`Mode::Train`]
    /// forward pass).
    pub fn add<T: Scalar>(&mut self, net: &mut Network<T>) {
        let bns: Vec<_> = net.batch_norms_mut().collect();
        if self.layers.len() != bns.len() {
            self.layers = bns.iter().map(|b| Moments::new(b.features())).collect();
        }
        for (acc, bn) in self.layers.iter_mut().zip(bns) {
            if let Some(batch) = bn.last_batch() {
                acc.add_batch(batch);
            }
        }
        self.batches += 1;
    }

    /// Number of batches added since the last reset.
    pub fn batches(&self) -> usize {
        self.batches
    }

    /// Writes the population estimates into the running statistics and starts afresh.
    pub fn apply<T: Scalar>(&mut self, net: &mut Network<T>) {
        for (acc, bn) in self.layers.iter().zip(net.batch_norms_mut()) {
            if acc.count() > 0 {
                bn.set_running(acc.mean_as(), acc.var_as());
            }
        }
        *self = PreciseAccumulator::default();
    }
}

/// PreciseBN after training: runs `batches` random mini-batches of `batch` images from `data`
/// through the frozen network in train mode and sets every BN layer's statistics to the
/// population estimate. Weights are not changed.
pub fn precise_bn<T: Scalar, R: Rng>(
    net: &mut Network<T>,
    data: &Dataset<T>,
    batches: usize,
    batch: usize,
    rng: &mut R,
) -> Result<()> {
    if batch == 0 || batch > data.len() {
        return Err(Error::config(
            "batch",
            format!("{batch} images per batch with {} available", data.len()),
        ));
    }
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut acc = PreciseAccumulator::default();
    let mut pos = data.len();
    for _ in 0..batches {
        if pos + batch > order.len() {
            order.shuffle(rng);
            pos = 0;
        }
        let (x, _) = data.batch(&order[pos..pos + batch]);
        pos += batch;
        net.forward(x.view(), Mode::Train)?;
        acc.add(net);
    }
    acc.apply(net);
    for bn in net.batch_norms_mut() {
        bn.take_last_batch();
    }
    Ok(())
}
