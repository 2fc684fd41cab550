//! Data: CIFAR-10 reading, locating and downloading, the [`Dataset`] type and augmentation.
//!
//! - the binary format: [`read_batch`], [`read_dir`], [`RawImages`] and the format's constants
//!   ([`IMAGE_DIM`], [`RECORD_BYTES`], [`CLASS_NAMES`], ...);
//! - where the data is: [`locate`] (explicit path, then `KLAYER_DATA`, then
//!   `./data/cifar-10-batches-bin`);
//! - fetching and unpacking the official archive: [`download()`];
//! - the train / validation / test split and normalisation: [`Cifar10`] and [`LoadOptions`];
//! - random flips and translations: [`Augment`].
//!
//! # Example
//! ```no_run
//! use klayer::data::{Cifar10, LoadOptions, CLASS_NAMES};
//! // 45,000 / 5,000 / 10,000 images, normalised with the training statistics.
//! let data = Cifar10::<f32>::load(&LoadOptions::default().download(false))?;
//! println!("first test image is a {}", CLASS_NAMES[data.test.y[0]]);
//! # Ok::<(), klayer::Error>(())
//! ```

mod augment;
mod cifar;
mod dataset;
mod download;
mod load;
mod locate;

pub use augment::{transform_image, Augment, Fill};
pub use cifar::{
    check_dir, read_batch, read_batch_records, read_dir, read_dir_records, RawImages, BATCH_FILES,
    BATCH_MD5, CHANNELS, CHANNEL_DIM, CLASS_NAMES, FILE_BYTES, IMAGE_DIM, IMAGE_SIDE, NUM_CLASSES,
    RECORDS_PER_FILE, RECORD_BYTES, TEST_FILE, TEST_IMAGES, TRAIN_FILES, TRAIN_IMAGES,
    VERIFIED_STAMP,
};
pub use dataset::Dataset;
pub use download::{
    download, download_archive, redownload, CIFAR10_BYTES, CIFAR10_MD5, CIFAR10_URL,
    CONNECT_TIMEOUT, READ_TIMEOUT, TOTAL_TIMEOUT,
};
pub use load::{feature_stats, normalise, Cifar10, LoadOptions};
pub use locate::{locate, locate_in, DATA_DIR_NAME, DEFAULT_DATA_ROOT, ENV_VAR};
