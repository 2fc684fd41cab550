//! # klayer
//!
//! k-layer fully-connected classification networks with batch normalization, trained on
//! CIFAR-10.
#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod linalg;
pub mod scalar;

pub use error::{Error, Result};
pub use scalar::Scalar;
