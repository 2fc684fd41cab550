//! Networks: a [`NetConfig`] describes the architecture, [`Network`] holds the layers and runs
//! forward and backward passes; [`Student`] plugs a student's layer functions into a network.

mod config;
mod network;
mod student;

pub use config::{BnPlacement, Init, NetConfig, MAX_WEIGHTS};
pub use network::{NamedParam, Network, StepPhases, EVAL_CHUNK};
pub use student::Student;
