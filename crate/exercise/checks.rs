//! The checkers: each runs the student's function on small fixed inputs and compares every
//! output with klayer's implementation (and, for gradients, with centred differences).

use std::time::Instant;

use ndarray::{Array, Array1, Array2, ArrayD, Axis, Dimension};
use ndarray_rand::rand_distr::StandardNormal;
use ndarray_rand::RandomExt;
use rand::Rng;

use super::compare::{compare, scalar, Expect};
use super::guard;
use super::report::{Against, Hint, Report, Row};
use super::Checked;
use crate::bn_stats::update_ema;
use crate::gradcheck::{gradcheck, GradCheckConfig};
use crate::layers::{
    softmax_cross_entropy, BatchNorm, BatchStats, Layer, Linear, LossSums, Mode, ParamKind, Relu,
};
use crate::net::{BnPlacement, NetConfig, Network, Student};
use crate::rng::{rng, Stream};
use crate::train::LrSchedule;

/// Tolerance on the relative error against klayer's implementation (both in f64; only the
/// order of operations differs).
const TOL_REFERENCE: f64 = 1e-8;
/// Tolerance against centred differences (five-point stencil, error about 1e-10).
const TOL_NUMERICAL: f64 = 1e-6;

/// Collects the rows of one check and turns them into the verdict.
struct Check {
    title: &'static str,
    points: u32,
    started: Instant,
    rows: Vec<Row>,
}

impl Check {
    fn new(title: &'static str, points: u32) -> Self {
        Check {
            title,
            points,
            started: Instant::now(),
            rows: Vec::new(),
        }
    }

    fn add(&mut self, e: Expect, got: ArrayD<f64>) -> &mut Row {
        self.rows.push(compare(&e, got.view()));
        self.rows.last_mut().expect("just pushed")
    }

    fn finish(self, problem: Option<String>) -> Checked {
        Report {
            title: self.title.to_string(),
            rows: self.rows,
            problem,
            max_points: self.points,
            seconds: self.started.elapsed().as_secs_f64(),
        }
        .into_result()
    }

    /// The student's function could not be run (it panicked).
    fn failed(self, message: String) -> Checked {
        self.finish(Some(message))
    }
}

/// A fixed pseudo-random (rows, cols) matrix of standard normals.
fn normal(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    Array2::random_using((rows, cols), StandardNormal, &mut rng(seed, Stream::Data))
}

fn normal1(len: usize, seed: u64) -> Array1<f64> {
    Array1::random_using(len, StandardNormal, &mut rng(seed, Stream::Data))
}

/// Centred differences (five-point stencil) of `f` at `at`, entry by entry.
fn numerical<D: Dimension>(at: &Array<f64, D>, f: impl Fn(&Array<f64, D>) -> f64) -> Array<f64, D> {
    const H: f64 = 1e-4;
    let mut a = at.as_standard_layout().into_owned();
    let mut g = Array::zeros(at.raw_dim());
    for i in 0..a.len() {
        let original = a.as_slice().expect("standard layout")[i];
        let mut at_offset = |o: f64| {
            a.as_slice_mut().expect("standard layout")[i] = original + o;
            f(&a)
        };
        let d1 = (at_offset(H) - at_offset(-H)) / (2.0 * H);
        let d2 = (at_offset(2.0 * H) - at_offset(-2.0 * H)) / (4.0 * H);
        a.as_slice_mut().expect("standard layout")[i] = original;
        g.as_slice_mut().expect("standard layout")[i] = (4.0 * d1 - d2) / 3.0;
    }
    g
}

fn dyn_of<D: Dimension>(a: Array<f64, D>) -> ArrayD<f64> {
    a.into_dyn()
}

/// Checks a linear layer's forward pass `(x, W, b) ↦ x Wᵀ + b` against [`Linear::forward`].
/// Default 1 point.
///
/// # Example
/// ```
/// use ndarray::{Array1, Array2};
/// use klayer::exercise::{check_linear_forward, Hint};
/// let report = check_linear_forward(|x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| x.dot(&w.t()) + b).unwrap();
/// assert_eq!(report.points(), 1);
/// // W instead of Wᵀ does not even fit: the report says which shape came back.
/// let err = check_linear_forward(|x: &Array2<f64>, w: &Array2<f64>, _b: &Array1<f64>| w.dot(&x.t())).unwrap_err();
/// assert_eq!(err.report().hints(), [Hint::Transposed]);
/// ```
pub fn check_linear_forward<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>) -> Array2<f64>,
{
    let mut check = Check::new("Linear forward: scores = x Wᵀ + b", 1);
    let (n, d, m) = (6, 5, 4);
    let (x, w, b) = (normal(n, d, 11), normal(m, d, 12), normal1(m, 13));
    let expected = Linear::from_weights(w.clone(), Some(b.clone())).forward(x.view());
    let got = match guard::call(|| f(&x, &w, &b)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    check.add(
        Expect::new(
            "scores",
            Against::Reference,
            dyn_of(expected),
            TOL_REFERENCE,
        )
        .factor(Hint::SignError, -1.0),
        dyn_of(got),
    );
    check.finish(None)
}

/// Checks a linear layer's backward pass `(x, W, dy) ↦ (dx, dW, db)` against
/// [`Linear::backward`] and against centred differences of `Σ dy ⊙ (x Wᵀ + b)`. Default 3
/// points.
///
/// # Example
/// ```
/// use ndarray::{Array1, Array2, Axis};
/// use klayer::exercise::check_linear_backward;
/// let report = check_linear_backward(|x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>| {
///     (dy.dot(w), dy.t().dot(x), dy.sum_axis(Axis(0)))
/// }).unwrap();
/// assert!(report.passed());
/// ```
pub fn check_linear_backward<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &Array2<f64>, &Array2<f64>) -> (Array2<f64>, Array2<f64>, Array1<f64>),
{
    let mut check = Check::new("Linear backward: dx, dW, db", 3);
    let (n, d, m) = (6, 5, 4);
    let (x, w, b, dy) = (
        normal(n, d, 21),
        normal(m, d, 22),
        normal1(m, 23),
        normal(n, m, 24),
    );
    let mut layer = Linear::from_weights(w.clone(), Some(b.clone()));
    layer.forward(x.view());
    let dx = layer
        .backward(x.view(), dy.view(), true)
        .expect("dx was asked for");
    let (dw, db) = (
        layer.dw.clone(),
        layer.db.clone().expect("the layer has a bias"),
    );
    let loss = |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| {
        (Linear::from_weights(w.clone(), Some(b.clone())).forward(x.view()) * &dy).sum()
    };
    let num_dx = numerical(&x, |x| loss(x, &w, &b));
    let num_dw = numerical(&w, |w| loss(&x, w, &b));
    let num_db = numerical(&b, |b| loss(&x, &w, b));
    let (gx, gw, gb) = match guard::call(|| f(&x, &w, &dy)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    for (name, reference, num, got) in [
        ("dx", dyn_of(dx), dyn_of(num_dx), dyn_of(gx)),
        ("dW", dyn_of(dw), dyn_of(num_dw), dyn_of(gw)),
        ("db", dyn_of(db), dyn_of(num_db), dyn_of(gb)),
    ] {
        check.add(
            Expect::new(name, Against::Reference, reference, TOL_REFERENCE).batch_factors(n),
            got.clone(),
        );
        check.add(
            Expect::new(name, Against::Numerical, num, TOL_NUMERICAL).batch_factors(n),
            got,
        );
    }
    check.finish(None)
}

/// Checks ReLU's backward pass `(x, dy) ↦ dx`, where `x` is the ReLU's input, against
/// [`Relu::backward`] and centred differences of `Σ dy ⊙ max(0, x)`. Default 1 point.
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use klayer::exercise::check_relu_backward;
/// let report = check_relu_backward(|x: &Array2<f64>, dy: &Array2<f64>| {
///     dy * &x.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 })
/// }).unwrap();
/// assert!(report.passed());
/// ```
pub fn check_relu_backward<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &Array2<f64>) -> Array2<f64>,
{
    let mut check = Check::new("ReLU backward: dx", 1);
    // Inputs kept away from the kink at 0, so that centred differences are exact there.
    let x = normal(6, 5, 31).mapv(|v| {
        if v.abs() < 0.05 {
            v.signum() * 0.05 + v
        } else {
            v
        }
    });
    let dy = normal(6, 5, 32);
    let out = Relu.forward(x.view());
    let dx = Relu
        .backward(out.view(), dy.clone(), true)
        .expect("dx was asked for");
    let num = numerical(&x, |x| (Relu.forward(x.view()) * &dy).sum());
    let inverted =
        Array2::from_shape_fn(
            x.raw_dim(),
            |(i, j)| if x[[i, j]] < 0.0 { dy[[i, j]] } else { 0.0 },
        );
    let got = match guard::call(|| f(&x, &dy)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    for (against, expected, tol) in [
        (Against::Reference, dyn_of(dx), TOL_REFERENCE),
        (Against::Numerical, dyn_of(num), TOL_NUMERICAL),
    ] {
        check.add(
            Expect::new("dx", against, expected, tol)
                .mistake(Hint::ReluMaskInverted, dyn_of(inverted.clone()))
                .factor(Hint::SignError, -1.0),
            dyn_of(got.clone()),
        );
    }
    check.finish(None)
}

/// A network of linear layers with weights `ws`, for the L2 term `Σ ‖W‖²` ([`Network::l2`]).
fn l2_of(ws: &[Array2<f64>]) -> f64 {
    let layers = ws
        .iter()
        .map(|w| Layer::Linear(Linear::from_weights(w.clone(), None)))
        .collect();
    Network::new(layers, ws[0].ncols())
        .expect("the weights chain")
        .l2()
}

/// Checks the cost `J = mean cross-entropy of softmax(scores) + λ Σ_l ‖W_l‖²` and its gradients:
/// the student's function takes `(scores, y, Ws, λ)` and returns `(J, ∂J/∂scores, [∂(λ‖W_l‖²)/∂W_l])`
/// (the gradient of the L2 term for every weight matrix, `2λ W_l`). Compared with klayer's
/// [`softmax_cross_entropy`], [`LossSums`] and [`Network::l2`], and with centred differences of
/// `J`. Default 3 points.
///
/// # Example
/// ```
/// use ndarray::{Array2, Axis};
/// use klayer::exercise::check_cost;
/// fn cost(s: &Array2<f64>, y: &[usize], ws: &[Array2<f64>], lambda: f64) -> (f64, Array2<f64>, Vec<Array2<f64>>) {
///     let n = s.nrows() as f64;
///     let max = s.map_axis(Axis(1), |r| r.fold(f64::MIN, |a, &b| a.max(b)));
///     let e = (s - &max.insert_axis(Axis(1))).mapv(f64::exp);
///     let p = &e / &e.sum_axis(Axis(1)).insert_axis(Axis(1));
///     let mut g = p.clone();
///     let mut loss = 0.0;
///     for (i, &c) in y.iter().enumerate() {
///         loss -= p[[i, c]].ln();
///         g[[i, c]] -= 1.0;
///     }
///     let l2: f64 = ws.iter().map(|w| w.mapv(|v| v * v).sum()).sum();
///     (loss / n + lambda * l2, g / n, ws.iter().map(|w| w * (2.0 * lambda)).collect())
/// }
/// assert!(check_cost(cost).unwrap().passed());
/// ```
pub fn check_cost<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &[usize], &[Array2<f64>], f64) -> (f64, Array2<f64>, Vec<Array2<f64>>),
{
    let mut check = Check::new(
        "Cost: softmax cross-entropy + λ Σ‖W‖², and its gradients",
        3,
    );
    let (n, classes, lambda) = (6, 4, 0.1);
    let scores = normal(n, classes, 41) * 2.0;
    let y = [0, 3, 1, 2, 1, 3];
    let ws = vec![normal(3, 5, 42), normal(classes, 3, 43)];
    let cost = |s: &Array2<f64>, ws: &[Array2<f64>]| {
        LossSums::of_batch(s.view(), &y).mean_loss() + lambda * l2_of(ws)
    };
    let loss = LossSums::of_batch(scores.view(), &y).mean_loss();
    let l2 = l2_of(&ws);
    let j = loss + lambda * l2;
    let (_, dscores) = softmax_cross_entropy(scores.view(), &y);
    let num_scores = numerical(&scores, |s| cost(s, &ws));
    let got = match guard::call(|| f(&scores, &y, &ws, lambda)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    let (gj, gscores, gws) = got;
    check.add(
        Expect::new("J", Against::Reference, scalar(j), TOL_REFERENCE)
            .mistake(Hint::L2TermMissing, scalar(loss))
            .mistake(Hint::MissingOneOverN, scalar(n as f64 * loss + lambda * l2)),
        scalar(gj),
    );
    for (against, expected, tol) in [
        (Against::Reference, dyn_of(dscores), TOL_REFERENCE),
        (Against::Numerical, dyn_of(num_scores), TOL_NUMERICAL),
    ] {
        check.add(
            Expect::new("dscores", against, expected, tol).batch_factors(n),
            dyn_of(gscores.clone()),
        );
    }
    if gws.len() != ws.len() {
        return check.finish(Some(format!(
            "the L2 gradients: {} matrices returned for {} weight matrices (one per W, in order)",
            gws.len(),
            ws.len()
        )));
    }
    for (l, (w, gw)) in ws.iter().zip(gws).enumerate() {
        let name = format!("dW{} (L2 term)", l + 1);
        let num = numerical(w, |wl| {
            let mut v = ws.clone();
            v[l] = wl.clone();
            cost(&scores, &v)
        });
        for (against, expected, tol) in [
            (
                Against::Reference,
                dyn_of(w * (2.0 * lambda)),
                TOL_REFERENCE,
            ),
            (Against::Numerical, dyn_of(num), TOL_NUMERICAL),
        ] {
            check.add(
                Expect::new(name.clone(), against, expected, tol)
                    .factor(Hint::SignError, -1.0)
                    .factor(Hint::L2FactorMissing, 0.5)
                    .factor(Hint::L2FactorMissing, 1.0 / (2.0 * lambda))
                    .factor(Hint::L2FactorMissing, 1.0 / lambda)
                    .factor(Hint::L2FactorTwice, 2.0)
                    .factor(Hint::L2FactorTwice, 2.0 * lambda),
                dyn_of(gw.clone()),
            );
        }
    }
    check.finish(None)
}

/// klayer's BN layer with the given γ, β and ε, set through its parameter list.
fn reference_bn(gamma: &Array1<f64>, beta: &Array1<f64>, eps: f64) -> BatchNorm<f64> {
    let mut bn = BatchNorm::new(gamma.len(), eps);
    for p in bn.params_mut() {
        match p.kind {
            ParamKind::Gamma => p
                .value
                .copy_from_slice(gamma.as_slice().expect("contiguous")),
            ParamKind::Beta => p
                .value
                .copy_from_slice(beta.as_slice().expect("contiguous")),
            _ => {}
        }
    }
    bn
}

/// BN's training-mode output `y` and gradients `(dx, dγ, dβ)` by klayer's layer.
fn reference_bn_pass(
    x: &Array2<f64>,
    gamma: &Array1<f64>,
    beta: &Array1<f64>,
    eps: f64,
    dy: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>, Array1<f64>, Array1<f64>) {
    let mut bn = reference_bn(gamma, beta, eps);
    let y = bn.forward(x.view(), Mode::Train);
    let dx = bn.backward(dy.clone(), true).expect("dx was asked for");
    let grads: Vec<Array1<f64>> = bn
        .params_mut()
        .iter()
        .map(|p| Array1::from(p.grad.to_vec()))
        .collect();
    (y, dx, grads[0].clone(), grads[1].clone())
}

/// Mistaken variants of BN (the answers students' common errors give): variance divided by
/// n − 1, ε outside the square root. Returns `y` and the matching `dx` for `dy`.
fn bn_variant(
    x: &Array2<f64>,
    gamma: &Array1<f64>,
    beta: &Array1<f64>,
    eps: f64,
    dy: &Array2<f64>,
    unbiased: bool,
    eps_outside: bool,
) -> (Array2<f64>, Array2<f64>) {
    let n = x.nrows() as f64;
    let mean = x.sum_axis(Axis(0)) / n;
    let centred = x - &mean;
    let var = centred.mapv(|v| v * v).sum_axis(Axis(0)) / if unbiased { n - 1.0 } else { n };
    let std = var.mapv(|v| {
        if eps_outside {
            v.sqrt() + eps
        } else {
            (v + eps).sqrt()
        }
    });
    let xhat = &centred / &std;
    let y = &xhat * gamma + beta;
    let dbeta = dy.sum_axis(Axis(0));
    let dgamma = (dy * &xhat).sum_axis(Axis(0));
    let dx = (dy * n - &dbeta - &xhat * &dgamma) * &(gamma / &std / n);
    (y, dx)
}

/// The inputs of the BN checks: x (8 × 5, features with different means and scales), γ, β, ε.
fn bn_inputs() -> (Array2<f64>, Array1<f64>, Array1<f64>, f64) {
    let x = normal(8, 5, 51) * &Array1::from(vec![1.0, 2.0, 0.5, 3.0, 1.5])
        + &Array1::from(vec![0.5, -1.0, 2.0, 0.0, 4.0]);
    let gamma = normal1(5, 52).mapv(|v| 1.0 + 0.5 * v);
    let beta = normal1(5, 53);
    // Large enough that ε's place (under the square root or not) shows in the output.
    (x, gamma, beta, 1e-3)
}

/// Checks BN's forward pass in training mode `(x, γ, β, ε) ↦ (y, μ, σ²)`: batch mean, biased
/// variance, normalisation and scale and shift, against [`BatchNorm::forward`] and
/// [`BatchStats::of`]. Default 3 points.
///
/// # Example
/// See the [module documentation](crate::exercise).
pub fn check_bn_forward<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &Array1<f64>, &Array1<f64>, f64) -> (Array2<f64>, Array1<f64>, Array1<f64>),
{
    let mut check = Check::new(
        "BN forward (training mode): y, batch mean, batch variance",
        3,
    );
    let (x, gamma, beta, eps) = bn_inputs();
    let n = x.nrows();
    let zeros = Array2::zeros(x.raw_dim());
    let (y, ..) = reference_bn_pass(&x, &gamma, &beta, eps, &zeros);
    let stats = BatchStats::of(x.view());
    let (y_unbiased, _) = bn_variant(&x, &gamma, &beta, eps, &zeros, true, false);
    let (y_eps_out, _) = bn_variant(&x, &gamma, &beta, eps, &zeros, false, true);
    let (gy, gmean, gvar) = match guard::call(|| f(&x, &gamma, &beta, eps)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    check.add(
        Expect::new("y", Against::Reference, dyn_of(y), TOL_REFERENCE)
            .mistake(Hint::UnbiasedVariance, dyn_of(y_unbiased))
            .mistake(Hint::EpsOutsideSqrt, dyn_of(y_eps_out))
            .factor(Hint::SignError, -1.0),
        dyn_of(gy),
    );
    check.add(
        Expect::new(
            "mean",
            Against::Reference,
            dyn_of(stats.mean),
            TOL_REFERENCE,
        )
        .batch_factors(n),
        dyn_of(gmean),
    );
    check.add(
        Expect::new("var", Against::Reference, dyn_of(stats.var), TOL_REFERENCE)
            .factor(Hint::UnbiasedVariance, n as f64 / (n as f64 - 1.0))
            .batch_factors(n),
        dyn_of(gvar),
    );
    check.finish(None)
}

/// Checks BN's backward pass `(dy, x, γ, ε) ↦ (dx, dγ, dβ)` (training mode; `x` is the forward
/// pass's input) against [`BatchNorm::backward`] and centred differences of `Σ dy ⊙ BN(x)`.
/// Default 4 points.
///
/// # Example
/// ```
/// use ndarray::{Array1, Array2, Axis};
/// use klayer::exercise::check_bn_backward;
/// fn bn_backward(dy: &Array2<f64>, x: &Array2<f64>, gamma: &Array1<f64>, eps: f64)
///     -> (Array2<f64>, Array1<f64>, Array1<f64>)
/// {
///     let n = x.nrows() as f64;
///     let mean = x.sum_axis(Axis(0)) / n;
///     let var = (x - &mean).mapv(|v| v * v).sum_axis(Axis(0)) / n;
///     let inv_std = var.mapv(|v| 1.0 / (v + eps).sqrt());
///     let xhat = (x - &mean) * &inv_std;
///     let dbeta = dy.sum_axis(Axis(0));
///     let dgamma = (dy * &xhat).sum_axis(Axis(0));
///     let dx = (dy * n - &dbeta - &xhat * &dgamma) * &(gamma * &inv_std / n);
///     (dx, dgamma, dbeta)
/// }
/// assert!(check_bn_backward(bn_backward).unwrap().passed());
/// ```
pub fn check_bn_backward<F>(f: F) -> Checked
where
    F: Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>, f64) -> (Array2<f64>, Array1<f64>, Array1<f64>),
{
    let mut check = Check::new("BN backward: dx, dgamma, dbeta", 4);
    let (x, gamma, beta, eps) = bn_inputs();
    let n = x.nrows();
    let dy = normal(n, x.ncols(), 54);
    let (_, dx, dgamma, dbeta) = reference_bn_pass(&x, &gamma, &beta, eps, &dy);
    let (_, dx_no_gamma, ..) = reference_bn_pass(&x, &Array1::ones(gamma.len()), &beta, eps, &dy);
    let (_, dx_eps_out) = bn_variant(&x, &gamma, &beta, eps, &dy, false, true);
    let (_, dx_unbiased) = bn_variant(&x, &gamma, &beta, eps, &dy, true, false);
    let out = |x: &Array2<f64>, g: &Array1<f64>, b: &Array1<f64>| {
        (reference_bn(g, b, eps).forward(x.view(), Mode::Train) * &dy).sum()
    };
    let num_dx = numerical(&x, |x| out(x, &gamma, &beta));
    let num_dgamma = numerical(&gamma, |g| out(&x, g, &beta));
    let num_dbeta = numerical(&beta, |b| out(&x, &gamma, b));
    let (gx, ggamma, gbeta) = match guard::call(|| f(&dy, &x, &gamma, eps)) {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    for (against, expected, tol) in [
        (Against::Reference, dyn_of(dx), TOL_REFERENCE),
        (Against::Numerical, dyn_of(num_dx), TOL_NUMERICAL),
    ] {
        check.add(
            Expect::new("dx", against, expected, tol)
                .mistake(Hint::GammaMissingInDx, dyn_of(dx_no_gamma.clone()))
                .mistake(Hint::EpsOutsideSqrt, dyn_of(dx_eps_out.clone()))
                .mistake(Hint::UnbiasedVariance, dyn_of(dx_unbiased.clone()))
                .batch_factors(n),
            dyn_of(gx.clone()),
        );
    }
    for (name, reference, num, got) in [
        ("dgamma", dgamma, num_dgamma, ggamma),
        ("dbeta", dbeta, num_dbeta, gbeta),
    ] {
        check.add(
            Expect::new(name, Against::Reference, dyn_of(reference), TOL_REFERENCE)
                .batch_factors(n),
            dyn_of(got.clone()),
        );
        check.add(
            Expect::new(name, Against::Numerical, dyn_of(num), TOL_NUMERICAL).batch_factors(n),
            dyn_of(got),
        );
    }
    check.finish(None)
}

/// Checks the cyclic learning rate `(t, η_min, η_max, n_s) ↦ η_t` over two full cycles
/// (`t = 0 … 4 n_s − 1`) of two schedules against [`LrSchedule::lr`]. Default 2 points.
///
/// # Example
/// ```
/// use klayer::exercise::check_cyclic_lr;
/// let report = check_cyclic_lr(|t: usize, lo: f64, hi: f64, n_s: usize| {
///     let pos = t % (2 * n_s);
///     let up = if pos <= n_s { pos } else { 2 * n_s - pos };
///     lo + up as f64 / n_s as f64 * (hi - lo)
/// }).unwrap();
/// assert!(report.passed());
/// ```
pub fn check_cyclic_lr<F>(f: F) -> Checked
where
    F: Fn(usize, f64, f64, usize) -> f64,
{
    let mut check = Check::new("Cyclic learning rate η_t over two cycles", 2);
    for (eta_min, eta_max, n_s) in [(1e-5, 1e-1, 5), (1e-3, 5e-2, 8)] {
        let schedule = LrSchedule::Cyclic {
            eta_min,
            eta_max,
            n_s,
            cycles: 2,
            decay: 1.0,
        };
        let steps = schedule.total_steps();
        let expected = Array1::from_iter((0..steps).map(|t| schedule.lr(t)));
        let got = match guard::call(|| {
            Array1::from_iter((0..steps).map(|t| f(t, eta_min, eta_max, n_s)))
        }) {
            Ok(g) => g,
            Err(e) => return check.failed(e),
        };
        let first_ok =
            (0..2 * n_s).all(|t| super::compare::rel_error(got[t], expected[t]) <= TOL_REFERENCE);
        let row = check.add(
            Expect::new(
                format!("eta_t (n_s = {n_s}, index = t)"),
                Against::Reference,
                dyn_of(expected),
                TOL_REFERENCE,
            )
            .factor(Hint::SignError, -1.0),
            dyn_of(got),
        );
        if !row.passed && row.hint.is_none() && row.problem.is_none() && first_ok {
            row.hint = Some(Hint::CycleNotRepeated);
        }
    }
    check.finish(None)
}

/// Checks one exponential-moving-average update of BN's statistics,
/// `(μ_av, σ²_av, μ_B, σ²_B, α) ↦ (α μ_av + (1 − α) μ_B, α σ²_av + (1 − α) σ²_B)`, against
/// [`update_ema`] on a BN layer after a training batch. Default 2 points.
///
/// # Example
/// ```
/// use ndarray::Array1;
/// use klayer::exercise::check_ema;
/// let report = check_ema(|m: &Array1<f64>, v: &Array1<f64>, bm: &Array1<f64>, bv: &Array1<f64>, a: f64| {
///     (m * a + bm * (1.0 - a), v * a + bv * (1.0 - a))
/// }).unwrap();
/// assert!(report.passed());
/// ```
pub fn check_ema<F>(f: F) -> Checked
where
    F: Fn(
        &Array1<f64>,
        &Array1<f64>,
        &Array1<f64>,
        &Array1<f64>,
        f64,
    ) -> (Array1<f64>, Array1<f64>),
{
    let mut check = Check::new("EMA update of the BN statistics", 2);
    let (d, alpha) = (5, 0.8);
    let x = normal(8, d, 61) * 2.0 + 1.0;
    let avg_mean = normal1(d, 62);
    let avg_var = normal1(d, 63).mapv(|v| 1.0 + v.abs());
    let batch = BatchStats::of(x.view());
    let mut bn = BatchNorm::new(d, 1e-8);
    bn.set_running(avg_mean.clone(), avg_var.clone());
    let mut net = Network::new(vec![Layer::BatchNorm(bn)], d).expect("one BN layer");
    let _ = net.forward(x.view(), Mode::Train);
    update_ema(&mut net, alpha);
    let updated = net.layers[0].as_batch_norm().expect("a BN layer");
    let (mean, var) = (updated.running_mean.clone(), updated.running_var.clone());
    let swapped = |a: &Array1<f64>, b: &Array1<f64>| a * (1.0 - alpha) + b * alpha;
    let (gmean, gvar) = match guard::call(|| f(&avg_mean, &avg_var, &batch.mean, &batch.var, alpha))
    {
        Ok(g) => g,
        Err(e) => return check.failed(e),
    };
    check.add(
        Expect::new("mean_av", Against::Reference, dyn_of(mean), TOL_REFERENCE).mistake(
            Hint::EmaWeightsSwapped,
            dyn_of(swapped(&avg_mean, &batch.mean)),
        ),
        dyn_of(gmean),
    );
    check.add(
        Expect::new("var_av", Against::Reference, dyn_of(var), TOL_REFERENCE).mistake(
            Hint::EmaWeightsSwapped,
            dyn_of(swapped(&avg_var, &batch.var)),
        ),
        dyn_of(gvar),
    );
    check.finish(None)
}

/// Checks a whole network built with the student's layers ([`Student`]): for a net without BN
/// and one with BN before the ReLU (input 8, hidden [6, 5], 4 classes, batch 6, λ = 0.05), every
/// parameter's gradient from the student's layers is compared with the same network built from
/// klayer's layers and with centred differences of the student's own network cost
/// ([`gradcheck`]). Default 4 points.
///
/// # Example
/// ```
/// use ndarray::{Array1, Array2, Axis};
/// use klayer::exercise::{check_network, Student};
/// let mine = Student::new().linear(
///     |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| x.dot(&w.t()) + b,
///     |x: &Array2<f64>, w: &Array2<f64>, dy: &Array2<f64>| (dy.dot(w), dy.t().dot(x), dy.sum_axis(Axis(0))),
/// );
/// assert!(check_network(&mine).unwrap().passed());
/// ```
pub fn check_network(student: &Student) -> Checked {
    let mut check = Check::new("Whole-network gradient check with your layers", 4);
    let (n, lambda) = (6, 0.05);
    let x = normal(n, 8, 71);
    let y = [0, 1, 2, 3, 1, 2];
    for (bn, label) in [(BnPlacement::None, "no BN"), (BnPlacement::Before, "BN")] {
        let mut reference = match NetConfig::new(&[6, 5])
            .input(8)
            .classes(4)
            .bn(bn)
            .seed(7)
            .build::<f64>()
        {
            Ok(net) => net,
            Err(e) => return check.failed(e.to_string()),
        };
        // γ, β and the biases away from their initial 1 and 0, so that a forgotten γ or β shows.
        let mut r = rng(72, Stream::Data);
        for p in reference.params_mut() {
            let (scale, offset) = match p.param.kind {
                ParamKind::Gamma => (0.3, 1.0),
                ParamKind::Beta | ParamKind::Bias => (0.3, 0.0),
                ParamKind::Weight => continue,
            };
            for v in p.param.value.iter_mut() {
                *v = offset + scale * r.sample::<f64, _>(StandardNormal);
            }
        }
        let mut mine = match reference.with_student(student) {
            Ok(net) => net,
            Err(e) => return check.failed(e.to_string()),
        };
        if !mine.has_student_layers() {
            continue;
        }
        if let Err(e) = reference.grads(x.view(), &y, lambda) {
            return check.failed(e.to_string());
        }
        let expected: Vec<(String, Vec<f64>)> = reference
            .params_mut()
            .into_iter()
            .map(|p| (p.name, p.param.grad.to_vec()))
            .collect();
        let cfg = GradCheckConfig {
            lambda,
            ..GradCheckConfig::default()
        };
        let numeric = match guard::call(|| gradcheck(&mut mine, x.view(), &y, &cfg)) {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return check.failed(e.to_string()),
            Err(e) => return check.failed(e),
        };
        for ((name, reference), t) in expected.into_iter().zip(numeric.tensors) {
            let got = dyn_of(Array1::from(t.analytic.clone()));
            let output = format!("{name} ({label})");
            check.add(
                Expect::new(
                    output.clone(),
                    Against::Reference,
                    dyn_of(Array1::from(reference)),
                    TOL_REFERENCE,
                )
                .batch_factors(n),
                got.clone(),
            );
            check.add(
                Expect::new(
                    output,
                    Against::Numerical,
                    dyn_of(Array1::from(t.numerical)),
                    TOL_NUMERICAL,
                )
                .batch_factors(n),
                got,
            );
        }
    }
    if check.rows.is_empty() {
        return check.failed(
            "your Student has no layer functions yet: add .linear(forward, backward) and/or .batch_norm(forward, backward)".into(),
        );
    }
    check.finish(None)
}
