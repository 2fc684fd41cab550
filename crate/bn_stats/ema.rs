//! [`BnStats::Ema`](super::BnStats::Ema): the exponential moving average of the training
//! mini-batches' statistics, which the other kinds keep too while they train.

use super::Method;
use crate::net::Network;
use crate::{Error, Result, Scalar};

/// The EMA factor kept during training by the kinds whose evaluation uses other statistics
/// (for their learning curves, and so that the net always has statistics).
pub(super) const SHADOW_ALPHA: f64 = 0.9;

/// The EMA with factor `alpha`, updated after every training step.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ema {
    pub(super) alpha: f64,
}

impl<T: Scalar> Method<T> for Ema {
    fn check(&self) -> Result<()> {
        if (0.0..1.0).contains(&self.alpha) {
            Ok(())
        } else {
            Err(Error::config(
                "bn_stats.alpha",
                format!("{}: the EMA factor must be in [0, 1)", self.alpha),
            ))
        }
    }

    fn label(&self) -> String {
        format!("EMA (α = {})", self.alpha)
    }

    fn after_step(&mut self, net: &mut Network<T>) {
        update_ema(net, self.alpha);
    }
}

/// Updates every BN layer's running statistics with the EMA of its last training batch
/// ([`crate::layers::BatchNorm::take_last_batch`]); a layer without statistics takes the
/// batch's.
pub fn update_ema<T: Scalar>(net: &mut Network<T>, alpha: f64) {
    let a = T::of(alpha);
    let b = T::one() - a;
    for bn in net.batch_norms_mut() {
        let Some(batch) = bn.take_last_batch() else {
            continue;
        };
        if bn.has_stats() {
            let mean = bn.running_mean() * a + &batch.mean * b;
            let var = bn.running_var() * a + &batch.var * b;
            bn.set_running(mean, var);
        } else {
            bn.set_running(batch.mean, batch.var);
        }
    }
}

/// Gives every BN layer that has no running statistics yet those of its last training batch
/// (how the EMA starts, and what the windowed PreciseBN uses until its first window is full).
pub fn init_from_first_batch<T: Scalar>(net: &mut Network<T>) {
    for bn in net.batch_norms_mut() {
        if !bn.has_stats() {
            if let Some(batch) = bn.take_last_batch() {
                bn.set_running(batch.mean, batch.var);
            }
        }
    }
}
