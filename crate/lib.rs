//! # klayer
//!
//! k-layer fully-connected classification networks with batch normalization, trained on
//! CIFAR-10: a re-creation in Rust of a course report (DD2424, assignment 2) and its
//! experiments, fast enough to change a setting in a notebook and see new curves in seconds.
//!
//! Where things live:
//! - [`data`]: reading, locating and downloading CIFAR-10 and Fashion-MNIST; [`data::Dataset`],
//!   [`data::Split`] and the [`data::ImageShape`] they carry; augmentation.
//! - [`layers`]: [`layers::Linear`], [`layers::BatchNorm`], [`layers::Relu`], softmax
//!   cross-entropy.
//! - [`net`]: [`net::NetConfig`] (hidden sizes, BN placement, init) builds a [`net::Network`].
//! - [`bn_stats`]: the BN statistics used at evaluation: EMA, PreciseBN, Adaptive BN.
//! - [`train`]: [`train::TrainConfig`], schedules, SGD and Adam, [`train::train`], [`train::History`].
//! - [`gradcheck`]: analytic against numerical gradients.
//! - [`checkpoint`]: saving and loading a trained network (safetensors).
//! - [`exercise`]: checkers for students' layer functions, with hints and points; students'
//!   layers plug into a network with [`net::Student`].
//! - [`experiments`]: the report's runs ([`experiments::Run`]), quick or full
//!   ([`experiments::Scale`]), repeated over seeds and summarised.
//! - [`plot`]: the figures, as plotly plots.
//! - [`linalg`]: matrix products (hand-written AVX-512 kernels for the first layer).
//! - [`output`]: writing result files atomically, through devices and symbolic links.
//!
//! # Example
//! ```
//! use ndarray::Array2;
//! use klayer::{data::Dataset, net::NetConfig, train::{train, LrSchedule, TrainConfig}};
//! // Two classes told apart by the sign of the first feature.
//! let x = Array2::from_shape_fn((300, 8), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
//! let y = x.column(0).iter().map(|&v| usize::from(v > 0.0)).collect();
//! let data = Dataset::new(x, y, 2).unwrap();
//! let mut net = NetConfig::new(&[16, 16]).input(8).classes(2).seed(1).build::<f32>().unwrap();
//! let cfg = TrainConfig {
//!     batch: 30,
//!     schedule: LrSchedule::Cyclic { eta_min: 1e-3, eta_max: 1e-1, n_s: 50, cycles: 1, decay: 1.0 },
//!     ..TrainConfig::default()
//! };
//! let history = train(&mut net, &cfg, &data, &data, None).unwrap();
//! assert!(history.val_acc().unwrap() > 0.9);
//! ```
#![warn(missing_docs)]

pub mod bn_stats;
pub mod checkpoint;
pub mod data;
pub mod error;
pub mod exercise;
pub mod experiments;
pub mod gradcheck;
pub mod layers;
pub mod linalg;
pub mod net;
pub mod output;
pub mod plot;
pub mod rng;
pub mod scalar;
pub mod train;

pub use error::{Error, Result};
pub use scalar::Scalar;

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
