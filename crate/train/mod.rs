//! Training: settings ([`TrainConfig`]), learning-rate schedules, optimizers, the training
//! loop ([`train`]) and what it records ([`History`]).

mod batches;
mod config;
mod eval;
mod history;
mod optimizer;
mod schedule;
mod trainer;

pub use batches::{BatchStream, Gather};
pub use config::{TrainConfig, MAX_PRECISE_IMAGES, TRAIN_EVAL_IMAGES};
pub use eval::{evaluate, evaluate_set, evaluate_test};
pub use history::{Divergence, EvalPoint, History, Metrics};
pub(crate) use optimizer::SgdRule;
pub use optimizer::{Optimizer, OptimizerState, TrainStep};
pub use schedule::{LrSchedule, MAX_STEPS};
pub use trainer::train;
