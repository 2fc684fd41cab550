//! Exercises: checkers that take a student's function, run it on small inputs in `f64`, and give
//! a verdict within a fraction of a second, as a table in a notebook.
//!
//! Every student function uses plain ndarray types and the crate's row convention: `x` is
//! (n, d) with one image per row, `W` is (m, d), scores are `x Wᵀ + b` (n, m). The checkers:
//!
//! | checker | the student's function | default points |
//! |---|---|---|
//! | [`check_linear_forward`] | `(x, W, b) → x Wᵀ + b` | 1 |
//! | [`check_linear_backward`] | `(x, W, dy) → (dx, dW, db)` | 3 |
//! | [`check_relu_backward`] | `(x, dy) → dx` (`x` is the ReLU's input) | 1 |
//! | [`check_cost`] | `(scores, y, Ws, λ) → (J, ∂J/∂scores, [∂(λ‖W‖²)/∂W])` | 3 |
//! | [`check_bn_forward`] | `(x, γ, β, ε) → (y, μ, σ²)` in training mode | 3 |
//! | [`check_bn_backward`] | `(dy, x, γ, ε) → (dx, dγ, dβ)` | 4 |
//! | [`check_cyclic_lr`] | `(t, η_min, η_max, n_s) → η_t` | 2 |
//! | [`check_ema`] | `(μ_av, σ²_av, μ_B, σ²_B, α) → (μ_av', σ²_av')` | 2 |
//! | [`check_network`] | a [`Student`]'s linear and/or BN functions in whole networks | 4 |
//!
//! Forward results are compared with klayer's own layers ([`crate::layers`], the loss, the
//! schedule, [`crate::bn_stats`]); backward results with those layers' backward passes and with
//! centred differences of their forward passes. A report names each output, shows the worst
//! entry (index, expected, got, relative error `|got − expected| / max(|got| + |expected|,
//! 1e-8)`) and, when the wrong answer matches a common mistake, a [`Hint`]. A function that
//! panics (including `todo!()`), returns a wrong shape or NaN gets a message saying so; the
//! panic is caught and its default output silenced.
//!
//! # In a notebook
//!
//! The student writes the function in a solution cell; a graded test cell calls the checker and
//! ends with `?`:
//!
//! ```
//! use klayer::exercise::*;
//! use ndarray::{Array1, Array2, Axis};
//!
//! // Solution cell: the student's BN forward pass.
//! fn bn_forward(x: &Array2<f64>, gamma: &Array1<f64>, beta: &Array1<f64>, eps: f64)
//!     -> (Array2<f64>, Array1<f64>, Array1<f64>)
//! {
//!     let n = x.nrows() as f64;
//!     let mean = x.sum_axis(Axis(0)) / n;
//!     let var = (x - &mean).mapv(|v| v * v).sum_axis(Axis(0)) / n;
//!     let xhat = (x - &mean) / var.mapv(|v| (v + eps).sqrt());
//!     (xhat * gamma + beta, mean, var)
//! }
//!
//! # fn cell() -> Result<Report, ExerciseError> {
//! // Graded test cell (worth 3 points instead of the default):
//! check_bn_forward(bn_forward).points(3)?
//! # ; check_bn_forward(bn_forward) }
//! # let report = cell().unwrap();
//! # assert!(report.passed() && report.points() == 3);
//! ```
//!
//! On success the cell's value is the [`Report`], which shows as an HTML table
//! ([`Report::evcxr_display`]). On failure the checker returns `Err(`[`ExerciseError`]`)`
//! instead; nothing panics, so the kernel keeps its variables. Inside an evcxr kernel the failed
//! report's HTML table is shown in the cell's output first, then `?` ends the cell with the
//! error. With the project's patched evcxr kernel (scripts/evcxr) that makes the cell an
//! `error` output, which is what nbclient and nbgrader count as a failed cell (0 points for a
//! graded test cell); this was checked by running such cells through nbclient on that kernel.
//! With an unpatched evcxr 0.22 the `?` only prints the error and the cell counts as passed, so
//! graded cells need the patched kernel. Written without `?` as the cell's last expression, the
//! checker's `Result` is shown instead and the cell passes either way: use that for practice
//! cells, not graded ones.
//!
//! Checkers never panic: everything wrong with the student's function ends up in the report.
//!
//! A student's layers can also be trained: see [`Student`] and
//! [`crate::net::Network::with_student`].

mod checks;
mod compare;
pub mod guard;
mod report;

pub use crate::net::Student;
pub use checks::{
    check_bn_backward, check_bn_forward, check_cost, check_cyclic_lr, check_ema,
    check_linear_backward, check_linear_forward, check_network, check_relu_backward,
};
pub use report::{Against, ExerciseError, Hint, Points, Report, Row, Worst};

/// What every checker returns: `Ok` with the report if every check passed, else `Err` with the
/// same report inside.
pub type Checked = Result<Report, ExerciseError>;
