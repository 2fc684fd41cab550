//! [`DataSource`]: which data set to load (CIFAR-10 or Fashion-MNIST) and what it is.

use std::fmt;
use std::str::FromStr;

use super::{ImageShape, CLASS_NAMES, FASHION_CLASS_NAMES};
use crate::{Error, Result};

/// A data set klayer can load: its name, image shape, classes and official sizes.
///
/// # Example
/// ```
/// use klayer::data::DataSource;
/// let fashion: DataSource = "fashion-mnist".parse().unwrap();
/// assert_eq!(fashion, DataSource::FashionMnist);
/// assert_eq!(fashion.shape().dim(), 784);
/// assert_eq!((fashion.train_images(), fashion.test_images()), (60_000, 10_000));
/// assert_eq!(fashion.class_names()[9], "ankle boot");
/// assert!("mnist".parse::<DataSource>().is_err());
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum DataSource {
    /// CIFAR-10: 32×32 colour images of 10 classes, 50,000 for training and 10,000 for
    /// testing (binary version, six batch files).
    #[default]
    Cifar10,
    /// Fashion-MNIST: 28×28 grey images of 10 kinds of clothing, 60,000 for training and
    /// 10,000 for testing (four IDX files, usually gzipped).
    FashionMnist,
}

impl DataSource {
    /// Every data set, in the order the CLI lists them.
    pub const ALL: [DataSource; 2] = [DataSource::Cifar10, DataSource::FashionMnist];

    /// The name a person reads: `CIFAR-10`, `Fashion-MNIST`.
    pub fn name(self) -> &'static str {
        match self {
            DataSource::Cifar10 => "CIFAR-10",
            DataSource::FashionMnist => "Fashion-MNIST",
        }
    }

    /// The name on the command line (`--dataset`): `cifar10`, `fashion-mnist`.
    pub fn id(self) -> &'static str {
        match self {
            DataSource::Cifar10 => "cifar10",
            DataSource::FashionMnist => "fashion-mnist",
        }
    }

    /// The shape of its images.
    pub fn shape(self) -> ImageShape {
        match self {
            DataSource::Cifar10 => ImageShape::CIFAR10,
            DataSource::FashionMnist => ImageShape::FASHION_MNIST,
        }
    }

    /// Class names, indexed by label.
    pub fn class_names(self) -> &'static [&'static str; 10] {
        match self {
            DataSource::Cifar10 => &CLASS_NAMES,
            DataSource::FashionMnist => &FASHION_CLASS_NAMES,
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        self.class_names().len()
    }

    /// Training images of the official release: 50,000 (CIFAR-10), 60,000 (Fashion-MNIST).
    pub fn train_images(self) -> usize {
        match self {
            DataSource::Cifar10 => super::TRAIN_IMAGES,
            DataSource::FashionMnist => super::FASHION_TRAIN_IMAGES,
        }
    }

    /// Test images of the official release: 10,000 for both.
    pub fn test_images(self) -> usize {
        match self {
            DataSource::Cifar10 => super::TEST_IMAGES,
            DataSource::FashionMnist => super::FASHION_TEST_IMAGES,
        }
    }

    /// The directory under the data root that holds its files (where `klayer download`
    /// puts them): `cifar-10-batches-bin`, `fashion-mnist`.
    pub fn dir_name(self) -> &'static str {
        match self {
            DataSource::Cifar10 => super::DATA_DIR_NAME,
            DataSource::FashionMnist => super::FASHION_DIR_NAME,
        }
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DataSource {
    type Err = Error;

    /// `cifar10` (or `cifar-10`) and `fashion-mnist` (or `fashion`), in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cifar10" | "cifar-10" => Ok(DataSource::Cifar10),
            "fashion-mnist" | "fashion_mnist" | "fashion" => Ok(DataSource::FashionMnist),
            _ => Err(Error::config(
                "dataset",
                format!("unknown data set {s:?}; choose cifar10 or fashion-mnist"),
            )),
        }
    }
}
