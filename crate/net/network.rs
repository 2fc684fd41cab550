//! [`Network`]: a stack of layers with a softmax cross-entropy head.

use std::time::{Duration, Instant};

use ndarray::{s, Array2, ArrayView2};

use crate::layers::{softmax_cross_entropy, BatchNorm, Layer, LossSums, Mode, Param, ParamKind};
use crate::train::SgdRule;
use crate::{Error, Result, Scalar};

/// Rows per chunk when a large set is evaluated: keeps the activations in cache and memory
/// bounded while the first layer's product stays large enough for all cores.
pub const EVAL_CHUNK: usize = 5000;

/// How long the parts of one [`Network::grads_timed`] pass took (wall clock).
///
/// The first layer's products use all threads; the layers after it run beside the job (the
/// gathering of the next mini-batch, in training), which takes another thread, so
/// `layers_and_job` is about the longer of `layers` and `job`, not their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepPhases {
    /// The first layer's forward pass (its product `x Wᵀ`).
    pub first_forward: Duration,
    /// Forward and backward passes of the layers after the first, and the loss.
    pub layers: Duration,
    /// The job run beside them.
    pub job: Duration,
    /// From the start of those two to the end of the later one.
    pub layers_and_job: Duration,
    /// The first layer's backward pass (its weight gradient `dyᵀ x`).
    pub first_backward: Duration,
}

/// A parameter tensor with its name in the report's notation (`W1`, `b1`, `gamma1`, `beta1`, …,
/// numbered by hidden block) and its gradient.
#[derive(Debug)]
pub struct NamedParam<'a, T> {
    /// `W3`, `gamma2`, …
    pub name: String,
    /// The tensor and its gradient.
    pub param: Param<'a, T>,
}

/// A feed-forward network ending in logits; the loss is softmax cross-entropy plus
/// `lambda · Σ ‖W_l‖²` over the weight matrices.
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use klayer::net::NetConfig;
/// let mut net = NetConfig::new(&[8]).input(4).classes(3).build::<f64>().unwrap();
/// let x = Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f64 / 10.0);
/// let y = [0, 1, 2, 1, 0];
/// let loss = net.grads(x.view(), &y, 0.01).unwrap();
/// assert!(loss > 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Network<T> {
    /// The layers, first to last.
    pub layers: Vec<Layer<T>>,
    input: usize,
}

impl<T: Scalar> Network<T> {
    /// A network from layers taking `input` features. Fails if consecutive shapes do not fit.
    pub fn new(layers: Vec<Layer<T>>, input: usize) -> Result<Self> {
        let mut width = input;
        for (i, layer) in layers.iter().enumerate() {
            if let Some(e) = layer.in_features() {
                if e != width {
                    return Err(Error::Shape(format!(
                        "layer {} ({}) expects {e} inputs but receives {width}",
                        i + 1,
                        layer.describe()
                    )));
                }
            }
            width = layer.out_features(width);
        }
        Ok(Network { layers, input })
    }

    /// Input features.
    pub fn input_features(&self) -> usize {
        self.input
    }

    /// Output classes.
    pub fn classes(&self) -> usize {
        self.layers
            .iter()
            .fold(self.input, |w, l| l.out_features(w))
    }

    /// The layers joined by arrows: `Linear(3072→50) → Relu → …`.
    pub fn describe(&self) -> String {
        self.layers
            .iter()
            .map(Layer::describe)
            .collect::<Vec<_>>()
            .join(" → ")
    }

    fn check_input(&self, x: &ArrayView2<T>, y: Option<&[usize]>) -> Result<()> {
        if x.ncols() != self.input {
            return Err(Error::Shape(format!(
                "input has {} features, the network expects {}",
                x.ncols(),
                self.input
            )));
        }
        if let Some(y) = y {
            if y.len() != x.nrows() {
                return Err(Error::Shape(format!(
                    "{} rows but {} labels",
                    x.nrows(),
                    y.len()
                )));
            }
            let classes = self.classes();
            if let Some(&bad) = y.iter().find(|&&l| l >= classes) {
                return Err(Error::Shape(format!(
                    "label {bad} is not below the number of classes {classes}"
                )));
            }
        }
        Ok(())
    }

    /// The logits for `x`, in one pass (in [`Mode::Train`] every BN layer uses the statistics
    /// of `x` itself and keeps them in [`BatchNorm::last_batch`]).
    ///
    /// # Shapes
    /// `x`: (batch, input) → (batch, classes).
    pub fn forward(&mut self, x: ArrayView2<T>, mode: Mode) -> Result<Array2<T>> {
        self.check_input(&x, None)?;
        let mut layers = self.layers.iter_mut();
        let mut h = match layers.next() {
            Some(first) => first.forward(x, mode),
            None => x.to_owned(),
        };
        for layer in layers {
            h = layer.forward(h.view(), mode);
        }
        Ok(h)
    }

    /// Forward and backward pass on a mini-batch in [`Mode::Train`]: leaves the gradient of
    /// the cost (mean cross-entropy + `lambda · Σ ‖W‖²`) in every layer and returns the mean
    /// cross-entropy (the loss, without the L2 term). Running BN statistics are not touched.
    ///
    /// The gradient with respect to the input is never computed.
    ///
    /// # Shapes
    /// `x`: (batch, input), `y`: batch labels.
    pub fn grads(&mut self, x: ArrayView2<T>, y: &[usize], lambda: f64) -> Result<f64> {
        self.grads_alongside(x, y, lambda, || ())
    }

    /// [`Network::grads`], running `job` on another rayon thread while the layers after the
    /// first do their forward and backward passes, and once more on this thread when they are
    /// done.
    ///
    /// Those layers are small, between the first layer's two large products, which use all
    /// threads; most of their work (BN, ReLU, products under
    /// [`crate::linalg::PARALLEL_THRESHOLD`]) runs on one thread. The trainer gathers the next
    /// mini-batch there (see [`crate::train::BatchStream::with_next_job`]), where a core would
    /// otherwise wait. A job that takes its work in parts, like [`crate::train::Gather::run`],
    /// is shared by the two calls: this thread takes up what is left once its layers are done,
    /// and the other can leave its job between parts to take up half of a product the layers
    /// split. The gradients are exactly those of [`Network::grads`]. `job` is called twice,
    /// and once when the input is refused: a job that must do its work once keeps track of
    /// what it has done.
    ///
    /// # Example
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use ndarray::Array2;
    /// use klayer::net::NetConfig;
    /// let mut net = NetConfig::new(&[8]).input(4).classes(3).build::<f64>().unwrap();
    /// let x = Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f64 / 10.0);
    /// let mut twin = net.clone();
    /// let calls = AtomicUsize::new(0);
    /// let job = || {
    ///     calls.fetch_add(1, Ordering::Relaxed);
    /// };
    /// let loss = net.grads_alongside(x.view(), &[0, 1, 2, 1, 0], 0.01, job).unwrap();
    /// assert_eq!(calls.load(Ordering::Relaxed), 2);
    /// assert_eq!(loss, twin.grads(x.view(), &[0, 1, 2, 1, 0], 0.01).unwrap());
    /// assert_eq!(net, twin);
    /// ```
    pub fn grads_alongside(
        &mut self,
        x: ArrayView2<T>,
        y: &[usize],
        lambda: f64,
        job: impl Fn() + Sync,
    ) -> Result<f64> {
        self.grads_timed(x, y, lambda, job).map(|(loss, _)| loss)
    }

    /// [`Network::grads_alongside`], also returning how long each part of the pass took
    /// ([`StepPhases`]; `klayer bench` prints them). The clock is read ten times per call.
    ///
    /// # Example
    /// ```
    /// use ndarray::Array2;
    /// use klayer::net::NetConfig;
    /// let mut net = NetConfig::new(&[8]).input(4).classes(3).build::<f64>().unwrap();
    /// let x = Array2::from_shape_fn((5, 4), |(i, j)| (i + j) as f64 / 10.0);
    /// let mut twin = net.clone();
    /// let (loss, phases) = net.grads_timed(x.view(), &[0, 1, 2, 1, 0], 0.01, || ()).unwrap();
    /// assert_eq!(loss, twin.grads(x.view(), &[0, 1, 2, 1, 0], 0.01).unwrap());
    /// assert_eq!(net, twin);
    /// assert!(phases.layers_and_job >= phases.layers && phases.layers_and_job >= phases.job);
    /// ```
    pub fn grads_timed(
        &mut self,
        x: ArrayView2<T>,
        y: &[usize],
        lambda: f64,
        job: impl Fn() + Sync,
    ) -> Result<(f64, StepPhases)> {
        self.grads_then_first_sgd(x, y, lambda, job, |_| None)
            .map(|(loss, phases, _)| (loss, phases))
    }

    /// [`Network::grads_timed`], but once the loss is known, `first_step(loss)` may give an SGD
    /// rule for the first layer's weights, which its backward pass then applies block by block
    /// as it computes their gradient, never storing it ([`crate::linalg::sgd_step_tn`]): the
    /// weights come out as the rule would leave them from the stored gradient, to the bit. The
    /// third value says whether that happened (it needs a first layer that is
    /// [`Layer::Linear`] and a product that kernel handles); if not, the gradient is stored as
    /// by [`Network::grads_timed`]. A first layer's bias, if any, keeps its gradient.
    pub(crate) fn grads_then_first_sgd(
        &mut self,
        x: ArrayView2<T>,
        y: &[usize],
        lambda: f64,
        job: impl Fn() + Sync,
        first_step: impl FnOnce(f64) -> Option<SgdRule<T>>,
    ) -> Result<(f64, StepPhases, bool)> {
        if let Err(e) = self.check_input(&x, Some(y)) {
            job();
            return Err(e);
        }
        let Some((first, rest)) = self.layers.split_first_mut() else {
            let ((), job) = timed(&job);
            let (loss, _) = softmax_cross_entropy(x, y);
            return Ok((
                loss,
                StepPhases {
                    job,
                    ..StepPhases::default()
                },
                false,
            ));
        };
        let (out, first_forward) = timed(|| first.forward(x, Mode::Train));
        let ((((loss, dy), layers), ((), job_time)), layers_and_job) = timed(|| {
            rayon::join(
                || {
                    let done = timed(|| rest_grads(rest, out.view(), y));
                    // What is left of the job, shared with the other thread.
                    job();
                    done
                },
                || timed(&job),
            )
        });
        // The L2 term's gradient is added below, after the fused step would have used the
        // weights: the two do not mix.
        let rule = first_step(loss).filter(|_| lambda == 0.0);
        let (fused, first_backward) = timed(|| match (rule, first.as_linear_mut()) {
            (Some(rule), Some(linear)) => linear.backward_sgd(x, dy.view(), &rule),
            _ => {
                first.backward(x, out.view(), dy, false);
                false
            }
        });
        if lambda != 0.0 {
            let two_lambda = T::of(2.0 * lambda);
            for l in self.layers.iter_mut().filter_map(Layer::as_linear_mut) {
                l.dw.scaled_add(two_lambda, &l.w);
            }
        }
        let phases = StepPhases {
            first_forward,
            layers,
            job: job_time,
            layers_and_job,
            first_backward,
        };
        Ok((loss, phases, fused))
    }

    /// `Σ_l ‖W_l‖²` over the weight matrices (not biases, γ or β), in f64.
    pub fn l2(&self) -> f64 {
        self.layers
            .iter()
            .filter_map(Layer::as_linear)
            .map(|l| l.w.iter().map(|&w| w.as_f64().powi(2)).sum::<f64>())
            .sum()
    }

    /// The cost `mean cross-entropy + lambda · Σ ‖W‖²` of one pass over `x` in `mode`
    /// (with [`Mode::Train`], BN uses the statistics of `x`: this is the function the gradient
    /// check differentiates).
    pub fn cost(&mut self, x: ArrayView2<T>, y: &[usize], lambda: f64, mode: Mode) -> Result<f64> {
        self.check_input(&x, Some(y))?;
        let logits = self.forward(x, mode)?;
        Ok(LossSums::of_batch(logits.view(), y).mean_loss() + lambda * self.l2())
    }

    /// Cross-entropy and accuracy sums over a whole set in [`Mode::Eval`], in chunks of
    /// [`EVAL_CHUNK`] rows.
    pub fn loss_sums(&mut self, x: ArrayView2<T>, y: &[usize]) -> Result<LossSums> {
        self.check_input(&x, Some(y))?;
        let mut sums = LossSums::default();
        let mut start = 0;
        while start < x.nrows() {
            let end = (start + EVAL_CHUNK).min(x.nrows());
            let logits = self.forward(x.slice(s![start..end, ..]), Mode::Eval)?;
            sums.merge(LossSums::of_batch(logits.view(), &y[start..end]));
            start = end;
        }
        Ok(sums)
    }

    /// Predicted class of every row of `x` ([`Mode::Eval`]).
    pub fn predict(&mut self, x: ArrayView2<T>) -> Result<Vec<usize>> {
        let logits = self.forward(x, Mode::Eval)?;
        Ok(logits
            .rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, T::neg_infinity()), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    })
                    .0
            })
            .collect())
    }

    /// Every parameter tensor with its gradient and its name (`W1`, `b1`, `gamma1`, `beta1`,
    /// `W2`, …), in layer order.
    pub fn params_mut(&mut self) -> Vec<NamedParam<'_, T>> {
        let mut block = 0;
        let mut out = Vec::new();
        for layer in &mut self.layers {
            if layer.as_linear().is_some() {
                block += 1;
            }
            for param in layer.params_mut() {
                out.push(NamedParam {
                    name: format!("{}{}", param.kind.symbol(), block),
                    param,
                });
            }
        }
        out
    }

    /// Names and sizes of the parameter tensors, in the order of [`Network::params_mut`].
    pub fn param_shapes(&mut self) -> Vec<(String, ParamKind, usize)> {
        self.params_mut()
            .into_iter()
            .map(|p| (p.name, p.param.kind, p.param.value.len()))
            .collect()
    }

    /// The batch-norm layers, first to last.
    pub fn batch_norms_mut(&mut self) -> impl Iterator<Item = &mut BatchNorm<T>> {
        self.layers.iter_mut().filter_map(Layer::as_batch_norm_mut)
    }

    /// True if the network has batch-norm layers.
    pub fn has_batch_norm(&self) -> bool {
        self.layers.iter().any(|l| l.as_batch_norm().is_some())
    }

    /// A copy of the network in another float type (e.g. an f32 net as f64 for a gradient check).
    pub fn cast<U: Scalar>(&self) -> Network<U> {
        Network {
            layers: self.layers.iter().map(cast_layer).collect(),
            input: self.input,
        }
    }
}

/// `f()` and how long it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    (f(), start.elapsed())
}

/// Forward and backward passes of `layers` on their input `x` (the first layer's output):
/// returns the mean cross-entropy and the gradient with respect to `x`.
fn rest_grads<T: Scalar>(
    layers: &mut [Layer<T>],
    x: ArrayView2<T>,
    y: &[usize],
) -> (f64, Array2<T>) {
    let mut outputs: Vec<Array2<T>> = Vec::with_capacity(layers.len());
    for (i, layer) in layers.iter_mut().enumerate() {
        let input = if i == 0 { x } else { outputs[i - 1].view() };
        let out = layer.forward(input, Mode::Train);
        outputs.push(out);
    }
    let logits = outputs.last().map_or(x, |o| o.view());
    let (loss, mut dy) = softmax_cross_entropy(logits, y);
    for (i, layer) in layers.iter_mut().enumerate().rev() {
        let input = if i == 0 { x } else { outputs[i - 1].view() };
        dy = layer
            .backward(input, outputs[i].view(), dy, true)
            .expect("a layer asked for its input gradient returns it");
    }
    (loss, dy)
}

/// One layer in another float type; a student's layer keeps its functions.
fn cast_layer<T: Scalar, U: Scalar>(layer: &Layer<T>) -> Layer<U> {
    use crate::layers::{Linear, Relu};
    let c1 = |a: &ndarray::Array1<T>| a.mapv(|v| U::of(v.as_f64()));
    match layer {
        Layer::Linear(l) => Layer::Linear(Linear::from_weights(
            l.w.mapv(|v| U::of(v.as_f64())),
            l.b.as_ref().map(c1),
        )),
        Layer::BatchNorm(b) => {
            let mut n = BatchNorm::new(b.features(), b.eps.as_f64());
            n.gamma = c1(&b.gamma);
            n.beta = c1(&b.beta);
            if b.has_stats() {
                n.set_running(c1(b.running_mean()), c1(b.running_var()));
            }
            Layer::BatchNorm(n)
        }
        Layer::Relu(_) => Layer::Relu(Relu),
        Layer::Student(s) => Layer::Student(
            s.with_builtin(cast_layer(&s.builtin()))
                .expect("a cast keeps the layer's kind"),
        ),
    }
}
