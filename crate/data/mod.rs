//! Data: CIFAR-10 reading, locating and downloading, the [`Dataset`] type and augmentation.

mod dataset;

pub use dataset::Dataset;
