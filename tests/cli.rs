//! The `klayer` command line: JSON summaries, and clear messages with a non-zero exit for bad
//! flags and values.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The CIFAR-10 directory: `$KLAYER_DATA`, else `./data/cifar-10-batches-bin`; `None` (and the
/// test that needs it is skipped, saying so) if neither exists.
fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KLAYER_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("data/cifar-10-batches-bin").into());
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: this test needs CIFAR-10; set KLAYER_DATA to the cifar-10-batches-bin \
             directory or run `cargo run --release -- download`"
        );
        None
    }
}

/// Runs `klayer args` with `KLAYER_DATA` pointing at the data (or at a directory that does not
/// exist, for tests that must fail before any data is needed), killing it after 120 s: a
/// command that runs without end fails the test instead of hanging it.
fn klayer_with(args: &[&str], data: Option<&Path>) -> Output {
    let missing = Path::new("/nonexistent/klayer-test-data");
    let child = Command::new(env!("CARGO_BIN_EXE_klayer"))
        .args(args)
        .env("KLAYER_DATA", data.unwrap_or(missing))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the klayer binary runs");
    let id = child.id();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("klayer's output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!(
                "klayer {args:?} still ran after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Runs `klayer args` on the real data, or returns `None` (skipped) if there is none.
fn klayer(args: &[&str]) -> Option<Output> {
    let dir = data_dir()?;
    Some(klayer_with(args, Some(&dir)))
}

/// Runs `klayer args` where no data is found: for checks that must come before any data.
fn klayer_no_data(args: &[&str]) -> Output {
    klayer_with(args, None)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `out` failed with exit code `code` and a message naming `needle`, without a
/// panic.
fn assert_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(
        err.contains(needle),
        "message {err:?} should mention {needle:?}"
    );
}

fn tiny(extra: &[&str]) -> Vec<String> {
    std::iter::once(&"train")
        .chain(common::TINY_RUN)
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

fn run_tiny(extra: &[&str]) -> Option<Output> {
    let args = tiny(extra);
    klayer(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn json_line(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let line = stdout.lines().last().expect("a JSON line on stdout");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Asserts that `args` fails with a usage error (code 2) naming `needle`, before needing data.
fn fails_with(args: &[&str], needle: &str) {
    assert_fails(&klayer_no_data(args), 2, needle);
}

#[test]
fn train_prints_a_json_summary() {
    let Some(out) = klayer(&[
        "train",
        "--n-train",
        "2000",
        "--n-val",
        "500",
        "--n-test",
        "500",
        "--cycles",
        "1",
        "--json",
    ]) else {
        return;
    };
    let v = json_line(&out);
    for key in ["test_acc", "val_acc", "diverged", "steps", "train_seconds"] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["steps"], 200);
    assert_eq!(v["diverged"], false);
    assert!(v["test_acc"].as_f64().unwrap() > 0.2);
    // Progress lines go to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("step"));
}

/// Fashion-MNIST, found as the crate finds it (`KLAYER_DATA`, `data/fashion-mnist`, Debian's
/// copy); `None` skips the test, under CI it fails.
#[path = "common/mod.rs"]
mod common;

#[test]
fn train_on_fashion_mnist_sizes_the_net_by_its_28_by_28_images() {
    let Some(dir) = common::fashion_dir() else {
        return;
    };
    let dir = dir.to_string_lossy().into_owned();
    let tmp = tempfile::tempdir().unwrap();
    let saved = tmp.path().join("net.safetensors");
    let saved = saved.to_string_lossy();
    let args = [
        "train",
        "--dataset",
        "fashion-mnist",
        "--data",
        &dir,
        "--n-train",
        "2000",
        "--n-val",
        "500",
        "--augment",
        "0.5",
        "--cycles",
        "1",
        "--save",
        &saved,
        "--json",
    ];
    let out = klayer_with(&args, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("Linear(784→50") && err.contains("Fashion-MNIST"),
        "{err}"
    );
    let v = json_line(&out);
    assert_eq!(v["steps"], 200);
    // Far above chance (10 %): a 3-layer net learns Fashion-MNIST quickly.
    let acc = v["test_acc"].as_f64().unwrap();
    assert!(acc > 0.6, "{v}");
    // The saved net classifies the same 10,000 test images the same way.
    let eval = [
        "eval",
        "--load",
        &saved,
        "--dataset",
        "fashion-mnist",
        "--data",
        &dir,
        "--json",
    ];
    let out = klayer_with(&eval, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let e = json_line(&out);
    assert_eq!(e["images"], 10_000);
    assert!(
        (e["test_acc"].as_f64().unwrap() - acc).abs() < 1e-9,
        "{e} {v}"
    );
    // On CIFAR-10 it is refused: its inputs are 784 grey pixels, not 3,072.
    if let Some(cifar) = data_dir() {
        let out = klayer_with(&["eval", "--load", &saved], Some(&cifar));
        assert_fails(&out, 3, "--dataset");
    }
    // The gradient check takes its features from the same images.
    let out = klayer_with(
        &["gradcheck", "--dataset", "fashion-mnist", "--data", &dir],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Fashion-MNIST training images"),
        "{}",
        stderr(&out)
    );
    // An unknown data set is a usage error naming the choices.
    fails_with(&["train", "--dataset", "mnist"], "fashion-mnist");
    fails_with(
        &[
            "gradcheck",
            "--dataset",
            "fashion-mnist",
            "--features",
            "785",
        ],
        "1..=784",
    );
}

#[test]
fn download_of_fashion_mnist_checks_the_official_md5_and_leaves_nothing() {
    // A mirror on 127.0.0.1 that serves a file which is not the official one.
    let name = "train-images-idx3-ubyte.gz";
    let (base, server) =
        common::serve_routes(vec![(format!("/fm/{name}"), 200, b"not it".to_vec())], 1);
    let root = tempfile::tempdir().unwrap();
    let url = format!("{base}/fm/");
    let dir = root.path().to_string_lossy().into_owned();
    let args = [
        "download",
        "--dataset",
        "fashion-mnist",
        "--url",
        &url,
        "--dir",
        &dir,
    ];
    let out = klayer_no_data(&args);
    assert_eq!(server.join().unwrap(), 1);
    assert_fails(&out, 3, "8d4fb7e6c68d591d4c3dfef9ec88bf0d");
    assert!(stderr(&out).contains(name), "{}", stderr(&out));
    let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A short run whose learning rate (1e3 to 1e4) makes it diverge at once.
const DIVERGING: &[&str] = &[
    "train",
    "--n-train",
    "1000",
    "--n-val",
    "200",
    "--n-test",
    "200",
    "--cycles",
    "1",
    "--bn",
    "none",
    "--eta-min",
    "1e3",
    "--eta-max",
    "1e4",
];

#[test]
fn train_reports_divergence_in_its_json_and_exits_5() {
    let Some(out) = klayer(&[DIVERGING, &["--json"]].concat()) else {
        return;
    };
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["diverged"], true);
    assert!(v["diverged_at"]["step"].is_u64());
    assert!(v["test_acc"].is_null());
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_instead_of_panicking() {
    // `klayer gradcheck | true`: the reader is gone before klayer writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_klayer"))
        .arg("gradcheck")
        .env("KLAYER_DATA", "/nonexistent/klayer-test-data")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the klayer binary runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("klayer's output");
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{:?}: {err}",
            out.status
        );
    }
}

#[test]
fn gradcheck_json_reports_a_small_error() {
    let Some(out) = klayer(&["gradcheck", "--hidden", "10,10", "--json"]) else {
        return;
    };
    let v = json_line(&out);
    assert_eq!(v["passed"], true);
    let e = v["max_rel_error"].as_f64().unwrap();
    assert!(e < 1e-5, "max relative error {e}");
    assert!(v["per_tensor"]["gamma1"].is_f64());
}

#[test]
fn bench_reports_milliseconds_per_step_and_where_a_step_goes() {
    let v = json_line(&klayer_no_data(&[
        "bench", "--steps", "20", "--warmup", "2", "--images", "500", "--json",
    ]));
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
    let phase = |k: &str| {
        v["phases_ms"][k]
            .as_f64()
            .unwrap_or_else(|| panic!("phases_ms.{k} in {v}"))
    };
    for k in [
        "first_forward",
        "layers",
        "gather",
        "first_backward",
        "update",
    ] {
        assert!(phase(k) > 0.0, "{k} took no time: {v}");
    }
    // The layers after the first and the gathering run side by side: together they take at
    // least as long as either.
    assert!(
        phase("layers_and_gather") >= phase("layers").max(phase("gather")),
        "{v}"
    );
}

#[test]
fn zero_hidden_units_are_rejected() {
    fails_with(&["train", "--hidden", "50,0"], "hidden");
    fails_with(&["bench", "--hidden", "0"], "hidden");
}

#[test]
fn eta_min_above_eta_max_is_rejected() {
    fails_with(
        &[
            "train",
            "--eta-min",
            "0.5",
            "--eta-max",
            "0.1",
            "--n-train",
            "1000",
        ],
        "--eta-min",
    );
}

#[test]
fn negative_lambda_is_rejected() {
    fails_with(
        &["train", "--lambda", "-0.1", "--n-train", "1000"],
        "lambda",
    );
}

#[test]
fn a_batch_larger_than_the_data_is_rejected() {
    fails_with(&["train", "--n-train", "50", "--batch", "100"], "batch");
}

#[test]
fn a_missing_data_directory_says_how_to_get_the_data_and_exits_3() {
    let out = klayer_no_data(&["train", "--data", "/nonexistent/cifar", "--no-download"]);
    assert_fails(&out, 3, "klayer download");
}

#[test]
fn an_unknown_flag_value_is_rejected() {
    fails_with(&["train", "--bn", "sideways"], "sideways");
    fails_with(&["train", "--optimizer", "rmsprop"], "rmsprop");
}

#[test]
fn reproduce_names_the_sections_when_given_an_unknown_one() {
    fails_with(&["reproduce", "nonsense", "--no-png"], "three-layer");
}

// ---------------------------------------------------------------------------------------------
// Output files (--history)

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
#[cfg(unix)]
fn history_replaces_a_regular_file_and_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.json");
    std::fs::write(&h, b"old").unwrap();
    std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Some(out) = run_tiny(&["--history", h.to_str().unwrap()]) else {
        return;
    };
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&h).unwrap()).unwrap();
    assert_eq!(doc["history"]["steps"], 10);
    assert_eq!(mode(&h), 0o644, "the file keeps its mode");
}

#[test]
#[cfg(unix)]
fn history_through_a_symlink_writes_the_target_and_keeps_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.json");
    std::fs::write(&target, b"old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let Some(out) = run_tiny(&["--history", link.to_str().unwrap()]) else {
        return;
    };
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(doc["history"]["steps"], 10);
}

#[test]
#[cfg(unix)]
fn history_to_a_fifo_is_written_through_not_replaced() {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    if data_dir().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::fs::File::open(&reader_path)
            .and_then(|mut f| f.read_to_string(&mut s))
            .map(|_| s)
    });
    let out = run_tiny(&["--history", fifo.to_str().unwrap()]).unwrap();
    let still_fifo = std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo();
    assert!(still_fifo, "the FIFO was replaced by a file");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = reader.join().unwrap().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["history"]["steps"], 10);
}

#[test]
#[cfg(unix)]
fn history_to_a_full_device_is_an_error_and_the_device_stays() {
    use std::os::unix::fs::FileTypeExt;
    if data_dir().is_none() {
        return;
    }
    // A copy of /dev/full (character device 1, 7) in a temporary directory, so that a
    // regression replaces the copy and not the machine's device.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let made = Command::new("mknod")
        .arg(&full)
        .args(["c", "1", "7"])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: this user cannot make device nodes (mknod)");
        return;
    }
    let out = run_tiny(&["--history", full.to_str().unwrap()]).unwrap();
    assert_fails(&out, 4, "No space left on device");
    assert!(std::fs::metadata(&full)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn history_in_a_missing_directory_is_refused_before_loading_data() {
    let out = klayer_no_data(&["train", "--history", "/nonexistent/dir/h.json"]);
    // Exit 4 (cannot write), not 3 (no data): the path was checked first.
    assert_fails(&out, 4, "/nonexistent/dir");
    let out = klayer_no_data(&["train", "--history", "/"]);
    assert_fails(&out, 4, "is a directory");
}

// ---------------------------------------------------------------------------------------------
// Step counts and sizes

#[test]
fn step_counts_that_overflow_or_exceed_the_limit_are_refused() {
    for (n_s, cycles) in [
        ("4611686018427387904", "2"),
        ("9223372036854775808", "2"),
        ("18446744073709551615", "2"),
        ("1", "4294967296"),
    ] {
        let out = klayer_no_data(&["train", "--n-s", n_s, "--cycles", cycles]);
        assert_fails(&out, 2, "--n-s");
        assert!(
            stderr(&out).contains("the limit is 20000000"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn absurd_sizes_are_refused_with_their_limit_before_allocating() {
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--hidden", "18446744073709551615"], "--hidden"),
        (&["train", "--hidden", "100000000"], "--hidden"),
        (
            &["gradcheck", "--hidden", "18446744073709551615"],
            "--hidden",
        ),
        (&["bench", "--hidden", "18446744073709551615"], "--hidden"),
        (&["bench", "--images", "100000000"], "--images"),
        (
            &[
                "train",
                "--bn-stats",
                "precise",
                "--precise-batches",
                "18446744073709551615",
            ],
            "--precise-batches",
        ),
        (&["gradcheck", "--images", "100000"], "--images"),
        (&["gradcheck", "--images", "40000"], "limit"),
        (&["bench", "--steps", "18446744073709551615"], "--steps"),
    ];
    for (args, needle) in cases {
        let out = klayer_no_data(args);
        assert_fails(&out, 2, needle);
        let err = stderr(&out);
        assert!(
            err.contains("limit") || err.contains("must be in"),
            "{args:?}: the message states no limit: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Silent wrong results

#[test]
fn an_f32_run_whose_loss_is_nan_from_the_start_is_reported_as_diverged() {
    let Some(out) = run_tiny(&["--sig", "1e30", "--json"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let v = last_json(&out);
    assert_eq!(v["diverged"], true, "{v}");
    assert!(v["test_acc"].is_null());
}

#[test]
fn a_batch_of_one_with_batch_norm_is_refused() {
    fails_with(&["train", "--batch", "1"], "batch normalization");
    fails_with(
        &["bench", "--batch", "1", "--images", "10"],
        "batch normalization",
    );
    fails_with(&["gradcheck", "--images", "1"], "batch normalization");
}

#[test]
fn gradcheck_refuses_a_step_outside_0_to_0_1() {
    for h in ["1e300", "0", "-1e-4", "nan", "0.5"] {
        let out = klayer_no_data(&["gradcheck", "--h", h]);
        assert_fails(&out, 2, "--h");
        assert!(stderr(&out).contains("(0, 0.1]"), "{}", stderr(&out));
    }
}

#[test]
fn gradcheck_exits_4_when_an_error_is_above_tol() {
    // Random inputs when no data is found: the check itself still runs.
    let out = klayer_no_data(&["gradcheck", "--hidden", "5", "--tol", "1e-300"]);
    assert_fails(&out, 4, "above --tol");
    // The same check passes at the default tolerance.
    let out = klayer_no_data(&["gradcheck", "--hidden", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    fails_with(&["gradcheck", "--tol", "-1"], "--tol");
}

#[test]
#[cfg(unix)]
fn a_test_batch_replaced_by_a_training_batch_is_refused_by_its_md5() {
    let Some(real) = data_dir() else {
        return;
    };
    let real = std::fs::canonicalize(real).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&fake).unwrap();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ] {
        std::os::unix::fs::symlink(real.join(name), fake.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(real.join("data_batch_1.bin"), fake.join("test_batch.bin")).unwrap();
    let args = tiny(&["--data", fake.to_str().unwrap()]);
    let out = klayer_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert_fails(&out, 3, "test_batch.bin");
    let err = stderr(&out);
    assert!(err.contains("md5"), "{err}");
    assert!(err.contains("klayer download --force --dir"), "{err}");
}

#[test]
fn bn_statistics_settings_without_batch_norm_are_refused() {
    fails_with(
        &["train", "--bn", "none", "--bn-stats", "precise"],
        "--bn-stats precise",
    );
    fails_with(
        &["train", "--bn", "none", "--bn-stats", "adaptive"],
        "--bn-stats adaptive",
    );
    fails_with(&["train", "--bn", "none", "--tta", "0.5"], "--tta");
    fails_with(
        &[
            "train",
            "--bn",
            "none",
            "--bn-stats",
            "adaptive",
            "--tta",
            "0.5",
        ],
        "--bn",
    );
}

// ---------------------------------------------------------------------------------------------
// Exit codes and the divergence message

fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let line = stdout.lines().last().expect("a JSON line on stdout");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn exit_codes_tell_usage_data_runtime_and_divergence_apart() {
    assert_eq!(klayer_no_data(&["train", "--bogus"]).status.code(), Some(2));
    assert_eq!(
        klayer_no_data(&["train", "--lambda", "-1"]).status.code(),
        Some(2)
    );
    assert_eq!(
        klayer_no_data(&["train", "--no-download"]).status.code(),
        Some(3)
    );
    assert_eq!(
        klayer_no_data(&["train", "--history", "/nonexistent/x/h.json"])
            .status
            .code(),
        Some(4)
    );
    let help = String::from_utf8(klayer_no_data(&["--help"]).stdout).unwrap();
    for line in ["2  usage", "3  data", "4  runtime", "5  diverged"] {
        assert!(help.contains(line), "--help lacks {line:?}: {help}");
    }
}

#[test]
fn divergence_is_reported_once_with_the_rate_the_curve_shows() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.json");
    let Some(out) = klayer(&[DIVERGING, &["--history", h.to_str().unwrap()]].concat()) else {
        return;
    };
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("diverged")).collect();
    assert_eq!(lines.len(), 1, "one divergence message on stderr: {err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("diverged"));
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&h).unwrap()).unwrap();
    let d = &doc["history"]["diverged"];
    let step = d["step"].as_u64().unwrap() as usize;
    let lr = d["lr"].as_f64().unwrap();
    let rates = doc["history"]["lr"].as_array().unwrap();
    assert_eq!(rates.len(), step, "the steps done before it");
    if step > 0 {
        assert_eq!(lr, rates[step - 1].as_f64().unwrap(), "the rate last used");
    }
    assert!(
        lines[0].contains(&format!("learning rate {lr:.3e}")),
        "{}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------------------------
// Messages that name the right thing, checks that come first

#[test]
fn errors_name_the_flag_that_was_given() {
    fails_with(
        &["train", "--bn-stats", "adaptive", "--tta", "2"],
        "`--tta`",
    );
    fails_with(&["train", "--augment", "2"], "`--augment`");
    fails_with(&["bench", "--images", "0"], "`--images`");
    fails_with(&["train", "--alpha", "1.5"], "`--alpha`");
    fails_with(&["train", "--n-val", "60000"], "`--n-val`");
}

#[test]
fn negative_numbers_parse_for_every_numeric_flag_and_are_range_checked() {
    fails_with(&["train", "--eta-min", "-1e-5"], "`--eta-min`");
    fails_with(&["train", "--eta-max", "-1e-5"], "`--eta-max`");
    fails_with(&["train", "--decay", "-0.5"], "`--decay`");
    fails_with(&["train", "--sig", "-1e-3"], "`--sig`");
    fails_with(&["train", "--batch", "-1"], "negative");
    fails_with(&["train", "--n-s", "-5"], "negative");
    fails_with(&["train", "--hidden", "50,-5"], "negative");
    fails_with(&["gradcheck", "--lambda", "-1e-3"], "`--lambda`");
    fails_with(&["bench", "--steps", "-10"], "negative");
}

#[test]
fn a_data_path_that_is_a_file_is_called_a_file() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let out = klayer_no_data(&["train", "--data", f.path().to_str().unwrap()]);
    assert_fails(&out, 3, "is a file, not a directory");
}

#[test]
fn the_advice_for_a_corrupt_file_names_a_download_command_that_runs() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&dir).unwrap();
    for name in [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ] {
        std::fs::write(dir.join(name), b"short").unwrap();
    }
    let out = klayer_no_data(&["train", "--data", dir.to_str().unwrap()]);
    assert_fails(&out, 3, "klayer download --force --dir");
    let err = stderr(&out);
    let advice = err
        .split('`')
        .find(|s| s.starts_with("klayer download"))
        .expect("a command in backquotes");
    // The advised command (pointed at a port where nothing listens) gets as far as the
    // network: it is not refused because the directory exists.
    let mut args: Vec<&str> = advice.split_whitespace().skip(1).collect();
    args.extend(["--url", "http://127.0.0.1:9/cifar-10-binary.tar.gz"]);
    let out = klayer_no_data(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("download from"), "{err}");
    assert!(!err.contains("already exists"), "{err}");
    assert!(
        dir.join("test_batch.bin").exists(),
        "the old copy is kept on failure"
    );
}

#[test]
fn settings_are_checked_before_the_data_is_loaded() {
    // No data exists here: a settings error must come first (code 2), not the data's (3).
    fails_with(&["train", "--lambda", "-1"], "`--lambda`");
    fails_with(&["train", "--evals-per-cycle", "0"], "`--evals-per-cycle`");
    fails_with(&["gradcheck", "--features", "0"], "`--features`");
}

#[test]
fn reproduce_checks_its_output_directory_before_computing() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let out_dir = f.path().join("docs");
    let out = klayer_no_data(&[
        "reproduce",
        "three-layer",
        "--no-png",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    // Exit 4 naming the output place, not 3 (no data): nothing was loaded or computed.
    assert_fails(&out, 4, f.path().to_str().unwrap());
}
