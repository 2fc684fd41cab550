//! What a training run records: the learning curves, the learning rate of every step, the final
//! scores, and whether and where it diverged.

use serde::{Deserialize, Serialize};

/// Cost, loss and accuracy of a network on one data set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean cross-entropy + `lambda · Σ ‖W‖²`.
    pub cost: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction classified correctly, in [0, 1].
    pub acc: f64,
}

/// One point of the learning curves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    /// Update steps done.
    pub step: usize,
    /// Epochs done (fractional).
    pub epoch: f64,
    /// On the training images evaluated (the first 10,000 by default, see
    /// `TrainConfig::train_eval_limit`).
    pub train: Metrics,
    /// On the validation set.
    pub val: Metrics,
}

/// Where and how a run diverged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// Update steps done when a mini-batch loss was non-finite or above the limit (the loss of
    /// the weights after `step` updates; the step numbering of the learning curves).
    pub step: usize,
    /// The learning rate of the last update before it, the one that led there (at step 0 the
    /// schedule's first rate): the rate the learning curve shows for the same step.
    pub lr: f64,
    /// The loss seen (may be NaN or infinite).
    pub loss: f64,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.step == 0 {
            return write!(
                f,
                "diverged at step 0: the initial weights give a loss of {} before any \
                 update (the initialisation is off: check the init std)",
                self.loss
            );
        }
        write!(
            f,
            "diverged at step {} (learning rate {:.3e}, mini-batch loss {})",
            self.step, self.lr, self.loss
        )
    }
}

/// The record of a training run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Learning-curve points, about `evals_per_cycle` per cycle, plus one before training.
    pub evals: Vec<EvalPoint>,
    /// The learning rate of every update step.
    pub lr: Vec<f64>,
    /// The mini-batch loss of every update step.
    pub batch_loss: Vec<f64>,
    /// Validation metrics with the final BN statistics (after PreciseBN, or adapted).
    pub final_val: Option<Metrics>,
    /// Test metrics with the final BN statistics, if a test set was given and the run did not
    /// diverge.
    pub test: Option<Metrics>,
    /// Set if the run diverged; it then stopped at that step.
    pub diverged: Option<Divergence>,
    /// Update steps done.
    pub steps: usize,
    /// Wall time of the whole run, evaluation included, in seconds.
    pub train_seconds: f64,
    /// The part of it spent evaluating, in seconds.
    pub eval_seconds: f64,
}

impl History {
    /// The last learning-curve point.
    pub fn last(&self) -> Option<&EvalPoint> {
        self.evals.last()
    }

    /// Final validation accuracy (final BN statistics), if any.
    pub fn val_acc(&self) -> Option<f64> {
        self.final_val.map(|m| m.acc)
    }

    /// Test accuracy, if any.
    pub fn test_acc(&self) -> Option<f64> {
        self.test.map(|m| m.acc)
    }

    /// True if the final validation accuracy is within 2 points of chance for `classes`
    /// classes: the run trained to nothing (without diverging).
    pub fn stuck_at_chance(&self, classes: usize) -> bool {
        self.diverged.is_none()
            && self
                .val_acc()
                .is_some_and(|a| (a - 1.0 / classes as f64).abs() < 0.02)
    }

    /// One line: `test 53.9 %, val 53.1 %` or `diverged at step …`.
    pub fn summary(&self) -> String {
        if let Some(d) = &self.diverged {
            return d.to_string();
        }
        let pct = |m: Option<f64>| m.map_or("-".to_string(), |a| format!("{:.2} %", 100.0 * a));
        format!(
            "test {}, val {}, {} steps in {:.1} s",
            pct(self.test_acc()),
            pct(self.val_acc()),
            self.steps,
            self.train_seconds
        )
    }
}
