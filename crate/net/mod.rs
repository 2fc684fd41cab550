//! Networks: a [`NetConfig`] describes the architecture, [`Network`] holds the layers and runs
//! forward and backward passes.

mod config;
mod network;

pub use config::{BnPlacement, Init, NetConfig};
pub use network::{NamedParam, Network, EVAL_CHUNK};
