//! Data: CIFAR-10 and Fashion-MNIST reading, locating and downloading, the [`Dataset`] and
//! [`Split`] types, the [`ImageShape`] they carry, and augmentation.
//!
//! - which data set: [`DataSource`] (CIFAR-10, the default, or Fashion-MNIST), chosen with
//!   [`LoadOptions::source`];
//! - CIFAR-10's binary format: [`read_batch`], [`read_dir`], [`RawImages`] and the format's
//!   constants ([`IMAGE_DIM`], [`RECORD_BYTES`], [`CLASS_NAMES`], ...);
//! - the IDX format of Fashion-MNIST: [`parse_idx`], [`read_idx`], [`read_fashion_dir`] and
//!   the official files and checksums ([`FASHION_FILES`]);
//! - where the data is: [`locate`] for CIFAR-10 (explicit path, then `KLAYER_DATA`, then
//!   `./data/cifar-10-batches-bin`), [`locate_fashion_in`] for Fashion-MNIST (explicit path,
//!   then `KLAYER_DATA` if it holds the files, then `./data/fashion-mnist`, then Debian's
//!   [`FASHION_SYSTEM_DIR`]);
//! - fetching the official files: [`download()`], [`download_fashion_mnist`];
//! - the train / validation / test split and normalisation: [`Split`] and [`LoadOptions`];
//! - random flips and translations of images of any [`ImageShape`]: [`Augment`].
//!
//! # Example
//! ```no_run
//! use klayer::data::{DataSource, LoadOptions, Split};
//! // CIFAR-10: 45,000 / 5,000 / 10,000 images, normalised with the training statistics.
//! let cifar = Split::<f32>::load(&LoadOptions::default().download(false))?;
//! println!("first test image is a {}", cifar.class_names()[cifar.test.y[0]]);
//! // Fashion-MNIST: 55,000 / 5,000 / 10,000 images of 28×28×1.
//! let fashion = Split::<f32>::load(&LoadOptions::new(DataSource::FashionMnist))?;
//! assert_eq!(fashion.train.dim(), 784);
//! # Ok::<(), klayer::Error>(())
//! ```

mod augment;
mod cifar;
mod dataset;
mod download;
mod fashion;
mod idx;
mod load;
mod locate;
mod source;

pub use augment::{transform_image, Augment, Fill};
pub use cifar::{
    check_dir, read_batch, read_batch_records, read_dir, read_dir_records, stamp_path, RawImages,
    BATCH_FILES, BATCH_MD5, CHANNELS, CHANNEL_DIM, CLASS_NAMES, FILE_BYTES, IMAGE_DIM, IMAGE_SIDE,
    NUM_CLASSES, RECORDS_PER_FILE, RECORD_BYTES, TEST_FILE, TEST_IMAGES, TRAIN_FILES, TRAIN_IMAGES,
    VERIFIED_STAMP,
};
pub use dataset::{Dataset, ImageShape};
pub use download::{
    download, download_archive, download_fashion_files, download_fashion_mnist, redownload,
    redownload_fashion_mnist, CIFAR10_BYTES, CIFAR10_MD5, CIFAR10_URL, CONNECT_TIMEOUT,
    READ_TIMEOUT, TOTAL_TIMEOUT,
};
pub use fashion::{
    fashion_file, has_fashion_files, read_fashion_dir, FashionFile, FASHION_CLASS_NAMES,
    FASHION_DIR_NAME, FASHION_FILES, FASHION_MNIST_URL, FASHION_SYSTEM_DIR, FASHION_TEST_IMAGES,
    FASHION_TRAIN_IMAGES,
};
pub use idx::{parse_idx, read_idx, Idx, IDX_UBYTE, MAX_IDX_BYTES};
pub use load::{feature_stats, normalise, LoadOptions, Split};
pub use locate::{locate, locate_fashion_in, locate_in, DATA_DIR_NAME, DEFAULT_DATA_ROOT, ENV_VAR};
pub use source::DataSource;
