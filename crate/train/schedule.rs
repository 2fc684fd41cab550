//! Learning-rate schedules: constant and triangular cyclic (Smith, "Cyclical Learning Rates for
//! Training Neural Networks", 2017, <https://arxiv.org/abs/1506.01186>).

use crate::{Error, Result};

/// The learning rate of every update step.
///
/// # Example
/// ```
/// use klayer::train::LrSchedule;
/// let s = LrSchedule::Cyclic { eta_min: 1e-5, eta_max: 1e-1, n_s: 2250, cycles: 2, decay: 1.0 };
/// assert_eq!(s.total_steps(), 9000);
/// assert_eq!(s.lr(0), 1e-5);
/// assert!((s.lr(2250) - 1e-1).abs() < 1e-15);
/// assert_eq!(s.lr(4500), 1e-5);
/// // 2 · n_s · cycles beyond the limit (or a usize) is refused, not wrapped around.
/// let huge = LrSchedule::Cyclic { eta_min: 1e-5, eta_max: 1e-1, n_s: 1 << 62, cycles: 2, decay: 1.0 };
/// assert!(huge.check().unwrap_err().to_string().contains("limit"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LrSchedule {
    /// `eta` for `steps` steps.
    Constant {
        /// The learning rate.
        eta: f64,
        /// Number of update steps.
        steps: usize,
    },
    /// Triangular cycles: `n_s` steps up from `eta_min` to the cycle's peak, `n_s` steps back.
    /// The peak of cycle `l` (from 0) is `eta_min + (eta_max − eta_min) · decay^l`; `decay = 1`
    /// is the plain schedule.
    Cyclic {
        /// Lowest rate.
        eta_min: f64,
        /// Highest rate (of the first cycle).
        eta_max: f64,
        /// Half-cycle length in update steps.
        n_s: usize,
        /// Number of full cycles.
        cycles: usize,
        /// Factor applied to the peak from one cycle to the next, in (0, 1].
        decay: f64,
    },
}

/// Most update steps a schedule may have: 20 million, 2,222 times the assignment's 9,000. Each
/// step keeps its learning rate and mini-batch loss in the [`History`](super::History) (16
/// bytes, so 320 MB at the limit) and takes a millisecond or more, so the limit is hours of
/// training; a count beyond it (or beyond what a `usize` holds) is a mistake, refused before
/// anything is allocated.
pub const MAX_STEPS: usize = 20_000_000;

impl LrSchedule {
    /// The assignment's schedule: eta 1e-5 to 1e-1, `n_s = 5 · n_train / batch`, `cycles` cycles.
    pub fn assignment(n_train: usize, batch: usize, cycles: usize) -> Self {
        LrSchedule::Cyclic {
            eta_min: 1e-5,
            eta_max: 1e-1,
            n_s: (5 * n_train / batch.max(1)).max(1),
            cycles,
            decay: 1.0,
        }
    }

    /// Total number of update steps (saturating at `usize::MAX`; [`check`](Self::check)
    /// refuses more than [`MAX_STEPS`]).
    pub fn total_steps(&self) -> usize {
        self.checked_total_steps().unwrap_or(usize::MAX)
    }

    /// Total number of update steps, `None` if it does not fit in a `usize`.
    fn checked_total_steps(&self) -> Option<usize> {
        match *self {
            LrSchedule::Constant { steps, .. } => Some(steps),
            LrSchedule::Cyclic { n_s, cycles, .. } => n_s.checked_mul(2)?.checked_mul(cycles),
        }
    }

    /// Number of cycles (1 for a constant rate).
    pub fn cycles(&self) -> usize {
        match *self {
            LrSchedule::Constant { .. } => 1,
            LrSchedule::Cyclic { cycles, .. } => cycles,
        }
    }

    /// The learning rate at step `t` (from 0).
    pub fn lr(&self, t: usize) -> f64 {
        match *self {
            LrSchedule::Constant { eta, .. } => eta,
            LrSchedule::Cyclic {
                eta_min,
                eta_max,
                n_s,
                decay,
                ..
            } => {
                // `check` keeps 2 · n_s far below overflow; saturate for unchecked settings.
                let period = n_s.saturating_mul(2).max(1);
                let cycle = t / period;
                let pos = t % period;
                let peak = eta_min + (eta_max - eta_min) * decay.powi(cycle as i32);
                let frac = if pos <= n_s {
                    pos as f64 / n_s as f64
                } else {
                    (period - pos) as f64 / n_s as f64
                };
                eta_min + frac * (peak - eta_min)
            }
        }
    }

    /// Checks the settings; the error names the offending one.
    pub fn check(&self) -> Result<()> {
        let positive = |name, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::config(
                    name,
                    format!("{v}: must be positive and finite"),
                ))
            }
        };
        match *self {
            LrSchedule::Constant { eta, steps } => {
                positive("eta", eta)?;
                if steps == 0 {
                    return Err(Error::config("steps", "must be at least 1"));
                }
            }
            LrSchedule::Cyclic {
                eta_min,
                eta_max,
                n_s,
                cycles,
                decay,
            } => {
                positive("eta_min", eta_min)?;
                positive("eta_max", eta_max)?;
                if eta_min > eta_max {
                    return Err(Error::config(
                        "eta_min",
                        format!(
                            "{eta_min} is above eta_max {eta_max}; eta_min must not exceed eta_max"
                        ),
                    ));
                }
                if n_s == 0 {
                    return Err(Error::config("n_s", "the half-cycle needs at least 1 step"));
                }
                if cycles == 0 {
                    return Err(Error::config("cycles", "must be at least 1"));
                }
                if !(decay > 0.0 && decay <= 1.0) {
                    return Err(Error::config(
                        "decay",
                        format!("{decay}: must be in (0, 1]"),
                    ));
                }
            }
        }
        let (name, what) = match *self {
            LrSchedule::Constant { steps, .. } => ("steps", format!("{steps} steps")),
            LrSchedule::Cyclic { n_s, cycles, .. } => (
                "n_s",
                format!("n_s {n_s} and {cycles} cycles make 2 × n_s × cycles"),
            ),
        };
        match self.checked_total_steps() {
            Some(total) if total <= MAX_STEPS => Ok(()),
            total => Err(Error::config(
                name,
                format!(
                    "{what} = {} update steps; the limit is {MAX_STEPS} (each step keeps 16 \
                     bytes of history and takes a millisecond or more: hours at the limit)",
                    total.map_or("2^64 or more".to_string(), |t| t.to_string())
                ),
            )),
        }
    }
}
