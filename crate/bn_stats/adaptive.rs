//! [`BnStats::Adaptive`](super::BnStats::Adaptive): statistics recomputed on each evaluation
//! set, optionally after test-time augmentation.

use ndarray::{Array2, ArrayView2};

use super::ema::{update_ema, SHADOW_ALPHA};
use super::{EvalNet, Method, Moments};
use crate::layers::Mode;
use crate::net::Network;
use crate::{Error, Result, Scalar};

/// Adaptive BN with a fraction `augment` of test images augmented.
#[derive(Debug, Clone, Copy)]
pub(super) struct Adaptive {
    pub(super) augment: f64,
}

impl<T: Scalar> Method<T> for Adaptive {
    fn check(&self) -> Result<()> {
        if (0.0..=1.0).contains(&self.augment) {
            Ok(())
        } else {
            Err(Error::config(
                "augment",
                format!(
                    "{}: the test-time augmentation fraction must be in [0, 1]",
                    self.augment
                ),
            ))
        }
    }

    fn label(&self) -> String {
        format!(
            "Adaptive BN ({:.0} % test-time augmented)",
            self.augment * 100.0
        )
    }

    /// The EMA is kept for a network that is used elsewhere without adaptation.
    fn after_step(&mut self, net: &mut Network<T>) {
        update_ema(net, SHADOW_ALPHA);
    }

    fn for_eval<'a>(&self, net: &'a mut Network<T>, x: ArrayView2<T>) -> Result<EvalNet<'a, T>> {
        if net.has_batch_norm() {
            Ok(EvalNet::Adapted(adapt(net, x)?))
        } else {
            Ok(EvalNet::Stored(net))
        }
    }

    fn test_augment(&self) -> f64 {
        self.augment
    }
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
    let mut h: Option<Array2<T>> = None;
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
