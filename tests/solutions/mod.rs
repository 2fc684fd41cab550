//! Reference solutions of the exercises, written the way a student would: plain `f64` ndarray
//! code, nothing from klayer.
#![allow(dead_code)]

use ndarray::{Array1, Array2, Axis};

/// `x Wᵀ + b`.
pub fn linear_forward(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>) -> Array2<f64> {
    x.dot(&w.t()) + b
}

/// `(dx, dW, db) = (dy W, dyᵀ x, Σ dy)`.
pub fn linear_backward(
    x: &Array2<f64>,
    w: &Array2<f64>,
    dy: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>, Array1<f64>) {
    (dy.dot(w), dy.t().dot(x), dy.sum_axis(Axis(0)))
}

/// `dy` where `x > 0`.
pub fn relu_backward(x: &Array2<f64>, dy: &Array2<f64>) -> Array2<f64> {
    dy * &x.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 })
}

/// Softmax probabilities, row by row.
pub fn softmax(s: &Array2<f64>) -> Array2<f64> {
    let max = s.map_axis(Axis(1), |r| r.fold(f64::MIN, |a, &b| a.max(b)));
    let e = (s - &max.insert_axis(Axis(1))).mapv(f64::exp);
    &e / &e.sum_axis(Axis(1)).insert_axis(Axis(1))
}

/// Cost with L2, its gradient with respect to the scores, and the L2 gradients `2λW`.
pub fn cost(
    s: &Array2<f64>,
    y: &[usize],
    ws: &[Array2<f64>],
    lambda: f64,
) -> (f64, Array2<f64>, Vec<Array2<f64>>) {
    let n = s.nrows() as f64;
    let p = softmax(s);
    let mut g = p.clone();
    let mut loss = 0.0;
    for (i, &c) in y.iter().enumerate() {
        loss -= p[[i, c]].ln();
        g[[i, c]] -= 1.0;
    }
    let l2: f64 = ws.iter().map(|w| w.mapv(|v| v * v).sum()).sum();
    (
        loss / n + lambda * l2,
        g / n,
        ws.iter().map(|w| w * (2.0 * lambda)).collect(),
    )
}

/// Batch mean and biased variance.
pub fn batch_stats(x: &Array2<f64>) -> (Array1<f64>, Array1<f64>) {
    let n = x.nrows() as f64;
    let mean = x.sum_axis(Axis(0)) / n;
    let var = (x - &mean).mapv(|v| v * v).sum_axis(Axis(0)) / n;
    (mean, var)
}

/// BN forward in training mode.
pub fn bn_forward(
    x: &Array2<f64>,
    gamma: &Array1<f64>,
    beta: &Array1<f64>,
    eps: f64,
) -> (Array2<f64>, Array1<f64>, Array1<f64>) {
    let (mean, var) = batch_stats(x);
    let xhat = (x - &mean) / &var.mapv(|v| (v + eps).sqrt());
    (xhat * gamma + beta, mean, var)
}

/// BN backward.
pub fn bn_backward(
    dy: &Array2<f64>,
    x: &Array2<f64>,
    gamma: &Array1<f64>,
    eps: f64,
) -> (Array2<f64>, Array1<f64>, Array1<f64>) {
    let n = x.nrows() as f64;
    let (mean, var) = batch_stats(x);
    let inv_std = var.mapv(|v| 1.0 / (v + eps).sqrt());
    let xhat = (x - &mean) * &inv_std;
    let dbeta = dy.sum_axis(Axis(0));
    let dgamma = (dy * &xhat).sum_axis(Axis(0));
    let dx = (dy * n - &dbeta - &xhat * &dgamma) * &(gamma * &inv_std / n);
    (dx, dgamma, dbeta)
}

/// The triangular cyclic learning rate.
pub fn cyclic_lr(t: usize, eta_min: f64, eta_max: f64, n_s: usize) -> f64 {
    let pos = t % (2 * n_s);
    let up = if pos <= n_s { pos } else { 2 * n_s - pos };
    eta_min + up as f64 / n_s as f64 * (eta_max - eta_min)
}

/// One EMA step of the BN statistics.
pub fn ema(
    mean_av: &Array1<f64>,
    var_av: &Array1<f64>,
    mean_b: &Array1<f64>,
    var_b: &Array1<f64>,
    alpha: f64,
) -> (Array1<f64>, Array1<f64>) {
    (
        mean_av * alpha + mean_b * (1.0 - alpha),
        var_av * alpha + var_b * (1.0 - alpha),
    )
}
