//! What several integration test files share: where the real CIFAR-10 is.

use std::path::{Path, PathBuf};

use klayer::data::locate_in;

/// The real CIFAR-10 folder for the tests that need it: `$KLAYER_DATA` (which `.ci/run` sets),
/// else `data/cifar-10-batches-bin` in the repository (where `klayer download` puts it).
///
/// Without either, the test is skipped: `None`, after a message on stderr that says how to get
/// the data. Under CI (`CI` set) it fails instead, so that a green CI has run every test; and a
/// `KLAYER_DATA` that names no data set always fails, naming the folder.
pub fn cifar10_dir() -> Option<PathBuf> {
    let env = std::env::var_os("KLAYER_DATA").filter(|v| !v.is_empty());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    match locate_in(None, env.as_deref(), &root) {
        Ok(dir) => Some(dir),
        Err(e) if env.is_none() && std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped (needs the real CIFAR-10): {e}. From the repository: \
                 `cargo run --release -- download`."
            );
            None
        }
        Err(e) => panic!("this test needs the real CIFAR-10: {e}"),
    }
}
