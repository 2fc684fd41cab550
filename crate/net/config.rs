//! [`NetConfig`]: the architecture of a k-layer network and how it is initialised.

use ndarray::{Array1, Array2};
use ndarray_rand::rand_distr::Normal;
use ndarray_rand::RandomExt;

use super::Network;
use crate::layers::{BatchNorm, Layer, Linear, Relu};
use crate::rng::{rng, Stream};
use crate::{Error, Result, Scalar};

/// Most weights a network may have (checked by [`NetConfig::check`] before anything is
/// allocated): a billion, 4 GB in f32. The report's widest net has 1.7 million.
pub const MAX_WEIGHTS: usize = 1_000_000_000;

/// Where batch normalization goes in each hidden block, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnPlacement {
    /// `Linear → ReLU` blocks, no batch normalization.
    None,
    /// `Linear → BatchNorm → ReLU` (the assignment's default). The linear layer has no bias.
    #[default]
    Before,
    /// `Linear → ReLU → BatchNorm` (report section 3.1).
    After,
}

/// How weights are initialised; biases and β start at 0, γ at 1.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum Init {
    /// He: `W ~ N(0, 2 / fan_in)`.
    #[default]
    He,
    /// Every layer `W ~ N(0, sig²)` (report section 2.4).
    Fixed(f64),
}

/// Architecture and initialisation of a k-layer network: `hidden.len() + 1` linear layers.
///
/// # Example
/// ```
/// use klayer::net::{BnPlacement, NetConfig};
/// let net = NetConfig::new(&[50, 50]).bn(BnPlacement::Before).seed(1).build::<f32>().unwrap();
/// assert_eq!(net.describe(), "Linear(3072→50, no bias) → BatchNorm(50) → Relu → \
///     Linear(50→50, no bias) → BatchNorm(50) → Relu → Linear(50→10)");
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    /// Input features. Defaults to 3072 (32 × 32 × 3).
    pub input: usize,
    /// Hidden layer sizes; `[50, 50]` is the report's 3-layer net.
    pub hidden: Vec<usize>,
    /// Output classes. Defaults to 10.
    pub classes: usize,
    /// Batch-norm placement. Defaults to [`BnPlacement::Before`].
    pub bn: BnPlacement,
    /// Weight initialisation. Defaults to [`Init::He`].
    pub init: Init,
    /// ε of every BN layer. Defaults to 1e-8 ("tiny", as in the assignment).
    pub bn_eps: f64,
    /// Seed of the initialisation. Defaults to 0.
    pub seed: u64,
}

impl NetConfig {
    /// A CIFAR-10 network with the given hidden sizes and the defaults above.
    pub fn new(hidden: &[usize]) -> Self {
        NetConfig {
            input: 3072,
            hidden: hidden.to_vec(),
            classes: 10,
            bn: BnPlacement::Before,
            init: Init::He,
            bn_eps: 1e-8,
            seed: 0,
        }
    }

    /// Sets the input size.
    pub fn input(mut self, input: usize) -> Self {
        self.input = input;
        self
    }

    /// Sets the number of classes.
    pub fn classes(mut self, classes: usize) -> Self {
        self.classes = classes;
        self
    }

    /// Sets the batch-norm placement.
    pub fn bn(mut self, bn: BnPlacement) -> Self {
        self.bn = bn;
        self
    }

    /// Sets the initialisation.
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks every setting; the error names the offending one.
    pub fn check(&self) -> Result<()> {
        if self.input == 0 {
            return Err(Error::config("input", "must be at least 1 feature"));
        }
        if self.classes < 2 {
            return Err(Error::config("classes", "must be at least 2"));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::config(
                "hidden",
                format!(
                    "hidden layer {} has 0 units; every layer needs at least 1",
                    i + 1
                ),
            ));
        }
        if let Init::Fixed(sig) = self.init {
            if !(sig.is_finite() && sig > 0.0) {
                return Err(Error::config(
                    "sig",
                    format!("{sig}: the init std must be positive and finite"),
                ));
            }
        }
        if !(self.bn_eps.is_finite() && self.bn_eps >= 0.0) {
            return Err(Error::config("bn_eps", "must be finite and ≥ 0"));
        }
        let mut sizes = vec![self.input];
        sizes.extend(&self.hidden);
        sizes.push(self.classes);
        let weights = sizes.windows(2).try_fold(0usize, |sum, pair| {
            pair[0]
                .checked_mul(pair[1])
                .and_then(|n| sum.checked_add(n))
        });
        match weights {
            Some(n) if n <= MAX_WEIGHTS => Ok(()),
            _ => Err(Error::config(
                "hidden",
                format!(
                    "{:?} with {} inputs and {} classes has more than {MAX_WEIGHTS} weights \
                     (the limit: {} GB in f32); use smaller layers",
                    self.hidden,
                    self.input,
                    self.classes,
                    MAX_WEIGHTS * 4 / 1_000_000_000
                ),
            )),
        }
    }

    /// Builds the network, with every random number drawn from [`NetConfig::seed`]. Weights are
    /// drawn in f64 and rounded, so f32 and f64 networks of one seed start alike.
    pub fn build<T: Scalar>(&self) -> Result<Network<T>> {
        self.check()?;
        let mut r = rng(self.seed, Stream::Init);
        let mut sizes = vec![self.input];
        sizes.extend(&self.hidden);
        sizes.push(self.classes);
        let mut layers = Vec::new();
        for (l, pair) in sizes.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let std = match self.init {
                Init::He => (2.0 / fan_in as f64).sqrt(),
                Init::Fixed(sig) => sig,
            };
            let normal = Normal::new(0.0, std).map_err(|e| Error::config("sig", e.to_string()))?;
            let w = Array2::<f64>::random_using((fan_out, fan_in), normal, &mut r).mapv(T::of);
            let last = l == self.hidden.len();
            let bias = (last || self.bn != BnPlacement::Before).then(|| Array1::zeros(fan_out));
            layers.push(Layer::Linear(Linear::from_weights(w, bias)));
            if last {
                break;
            }
            let bn = || Layer::BatchNorm(BatchNorm::new(fan_out, self.bn_eps));
            match self.bn {
                BnPlacement::None => layers.push(Layer::Relu(Relu)),
                BnPlacement::Before => {
                    layers.push(bn());
                    layers.push(Layer::Relu(Relu));
                }
                BnPlacement::After => {
                    layers.push(Layer::Relu(Relu));
                    layers.push(bn());
                }
            }
        }
        Network::new(layers, self.input)
    }
}
