//! Batch-norm statistics for evaluation: where a BN layer's `running_mean`/`running_var`
//! come from (report section 3.1).
//!
//! - [`BnStats::Ema`]: exponential moving average over training mini-batches, initialised from
//!   the first one: `μ_av ← α μ_av + (1 − α) μ_B`.
//! - [`BnStats::Precise`]: PreciseBN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021,
//!   <https://arxiv.org/abs/2105.07576>): with weights frozen, the population mean and
//!   variance over many mini-batches run in train mode, `μ = mean(μ_B)`,
//!   `σ² = mean(σ²_B + μ_B²) − μ²`, accumulated stably by [`Moments`].
//! - [`BnStats::Adaptive`]: Adaptive BN (Li et al., "Revisiting Batch Normalization For Practical
//!   Domain Adaptation", 2016, <https://arxiv.org/abs/1603.04779>): at evaluation time the
//!   statistics are recomputed on the evaluation set itself, layer by layer. This is
//!   transductive: the prediction for one image depends on the others in the set.

mod moments;

use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::Rng;

pub use moments::Moments;

use crate::data::Dataset;
use crate::layers::Mode;
use crate::net::Network;
use crate::{Error, Result, Scalar};

/// Which statistics a network's BN layers use at evaluation time.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum BnStats {
    /// Exponential moving average with factor `alpha` (0.9 in the assignment), updated on every
    /// training mini-batch and initialised from the first.
    Ema {
        /// Weight of the old average.
        alpha: f64,
    },
    /// PreciseBN population statistics over `batches` mini-batches.
    ///
    /// With `during_training = false` (fvcore's way; 200 batches there) the EMA runs during
    /// training for the curves, and after training, with the weights frozen, `batches` random
    /// training mini-batches replace it. With `during_training = true` (the report's way, with
    /// 10 batches) the statistics of every window of `batches` consecutive training
    /// mini-batches replace the running statistics at the end of that window.
    Precise {
        /// Mini-batches per estimate.
        batches: usize,
        /// The report's windowed variant instead of one estimate after training.
        during_training: bool,
    },
    /// Adaptive BN: statistics recomputed on each evaluation set, after a random `augment`
    /// fraction (0 to 1) of its images is flipped and/or translated (test-time augmentation).
    /// During training the EMA is kept as well, but evaluation never uses it.
    Adaptive {
        /// Fraction of the evaluation images augmented before the statistics are computed and
        /// the images classified.
        augment: f64,
    },
}

impl Default for BnStats {
    fn default() -> Self {
        BnStats::Ema { alpha: 0.9 }
    }
}

impl BnStats {
    /// PreciseBN after training with fvcore's 200 batches.
    pub const PRECISE: BnStats = BnStats::Precise {
        batches: 200,
        during_training: false,
    };
    /// The report's PreciseBN: re-estimated every 10 training mini-batches.
    pub const PRECISE_REPORT: BnStats = BnStats::Precise {
        batches: 10,
        during_training: true,
    };

    /// Checks the settings.
    pub fn check(&self) -> Result<()> {
        match *self {
            BnStats::Ema { alpha } if !(0.0..1.0).contains(&alpha) => Err(Error::config(
                "bn_stats.alpha",
                format!("{alpha}: the EMA factor must be in [0, 1)"),
            )),
            BnStats::Precise { batches: 0, .. } => Err(Error::config(
                "bn_stats.batches",
                "PreciseBN needs at least 1 mini-batch",
            )),
            BnStats::Adaptive { augment } if !(0.0..=1.0).contains(&augment) => Err(Error::config(
                "augment",
                format!("{augment}: the test-time augmentation fraction must be in [0, 1]"),
            )),
            _ => Ok(()),
        }
    }

    /// A short label: `ema`, `precise`, `adaptive`, with settings.
    pub fn label(&self) -> String {
        match *self {
            BnStats::Ema { alpha } => format!("EMA (α = {alpha})"),
            BnStats::Precise {
                batches,
                during_training: false,
            } => format!("PreciseBN ({batches} batches after training)"),
            BnStats::Precise { batches, .. } => {
                format!("PreciseBN (every {batches} batches during training)")
            }
            BnStats::Adaptive { augment } => {
                format!("Adaptive BN ({:.0} % test-time augmented)", augment * 100.0)
            }
        }
    }
}

/// Updates every BN layer's running statistics with the EMA of its last training batch
/// ([`crate::layers::BatchNorm::last_batch`]); a layer without statistics takes the batch's.
pub fn update_ema<T: Scalar>(net: &mut Network<T>, alpha: f64) {
    let a = T::of(alpha);
    let b = T::one() - a;
    for bn in net.batch_norms_mut() {
        let Some(batch) = bn.last_batch.take() else {
            continue;
        };
        if bn.has_stats {
            bn.running_mean = &bn.running_mean * a + &batch.mean * b;
            bn.running_var = &bn.running_var * a + &batch.var * b;
        } else {
            bn.set_running(batch.mean, batch.var);
        }
    }
}

/// Gives every BN layer that has no running statistics yet those of its last training batch
/// (how the EMA starts, and what the windowed PreciseBN uses until its first window is full).
pub fn init_from_first_batch<T: Scalar>(net: &mut Network<T>) {
    for bn in net.batch_norms_mut() {
        if !bn.has_stats {
            if let Some(batch) = bn.last_batch.take() {
                bn.set_running(batch.mean, batch.var);
            }
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
            if let Some(batch) = &bn.last_batch {
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
        bn.last_batch = None;
    }
    Ok(())
}

/// Adaptive BN: a copy of `net` whose BN statistics are those of `x` itself, computed layer
/// by layer (each layer sees the outputs of the already adapted layers below), in f64.
///
/// # Shapes
/// `x`: (n, input).
pub fn adapt<T: Scalar>(net: &Network<T>, x: ArrayView2<T>) -> Result<Network<T>> {
    let mut adapted = net.clone();
    if x.ncols() != net.input_features() {
        return Err(Error::Shape(format!(
            "input has {} features, the network expects {}",
            x.ncols(),
            net.input_features()
        )));
    }
    if x.nrows() == 0 {
        return Err(Error::Shape("Adaptive BN needs at least one image".into()));
    }
    // The first layer reads `x` in place: an evaluation set can be large (45,000 images).
    let mut h: Option<ndarray::Array2<T>> = None;
    for layer in &mut adapted.layers {
        let input = h.as_ref().map_or(x, |a| a.view());
        if let Some(bn) = layer.as_batch_norm_mut() {
            let mut m = Moments::new(bn.features());
            m.add_rows(input);
            bn.set_running(m.mean_as(), m.var_as());
        }
        h = Some(layer.forward(input, Mode::Eval));
    }
    Ok(adapted)
}
