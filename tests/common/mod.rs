//! What several integration test files share: where the real CIFAR-10 and Fashion-MNIST are,
//! and a local HTTP server to download from.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use klayer::data::{locate_fashion_in, locate_in, FASHION_SYSTEM_DIR};

/// The repository's root folder (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The real CIFAR-10 folder for the tests that need it: `$KLAYER_DATA` (which `.ci/run` sets),
/// else `data/cifar-10-batches-bin` in the repository (where `klayer download` puts it).
///
/// Without either, the test is skipped: `None`, after a message on stderr that says how to get
/// the data. Under CI (`CI` set) it fails instead, so that a green CI has run every test; and a
/// `KLAYER_DATA` that names no data set always fails, naming the folder.
pub fn cifar10_dir() -> Option<PathBuf> {
    let env = std::env::var_os("KLAYER_DATA").filter(|v| !v.is_empty());
    let root = repo_root().join("data");
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

/// The real Fashion-MNIST folder for the tests that need it, found as the crate finds it:
/// `$KLAYER_DATA` if it holds the four files, else `data/fashion-mnist` in the repository,
/// else Debian's copy in `/usr/share/datasets/fashion-mnist` (which `.ci/run` installs).
///
/// Without any, the test is skipped (`None`, after a message saying how to get the data);
/// under CI (`CI` set) it fails instead.
pub fn fashion_dir() -> Option<PathBuf> {
    let env = std::env::var_os("KLAYER_DATA").filter(|v| !v.is_empty());
    let root = repo_root().join("data");
    let system = Path::new(FASHION_SYSTEM_DIR);
    match locate_fashion_in(None, env.as_deref(), &root, Some(system)) {
        Ok(dir) => Some(dir),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!(
                "skipped (needs the real Fashion-MNIST): {e}. Install Debian's copy \
                 (`apt-get install dataset-fashion-mnist`) or, from the repository, \
                 `cargo run --release -- download --dataset fashion-mnist`."
            );
            None
        }
        Err(e) => panic!("this test needs the real Fashion-MNIST: {e}"),
    }
}

/// Serves `requests` requests on 127.0.0.1 from a thread, answering a request for a path in
/// `routes` with that route's status and body and any other with 404; the thread ends after
/// that many requests or 30 s without one. Returns the server's base URL
/// (`http://127.0.0.1:PORT`) and the thread, which returns the number of requests answered.
pub fn serve_routes(
    routes: Vec<(String, u16, Vec<u8>)>,
    requests: usize,
) -> (String, JoinHandle<usize>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let handle = thread::spawn(move || {
        let mut served = 0;
        for _ in 0..requests {
            match server.recv_timeout(Duration::from_secs(30)) {
                Ok(Some(req)) => {
                    let (status, body) = routes
                        .iter()
                        .find(|(path, _, _)| path == req.url())
                        .map_or((404, b"not here".to_vec()), |(_, s, b)| (*s, b.clone()));
                    let resp = tiny_http::Response::from_data(body)
                        .with_status_code(tiny_http::StatusCode(status));
                    let _ = req.respond(resp);
                    served += 1;
                }
                _ => break,
            }
        }
        served
    });
    (format!("http://127.0.0.1:{port}"), handle)
}

/// A tiny training run's flags (after the command): 500 images, 10 steps.
pub const TINY_RUN: &[&str] = &[
    "--n-train",
    "500",
    "--n-val",
    "100",
    "--n-test",
    "100",
    "--cycles",
    "1",
    "--n-s",
    "5",
    "--evals-per-cycle",
    "1",
];
