//! The `klayer` command line: JSON summaries, and clear messages with a non-zero exit for bad
//! flags and values.

use std::process::{Command, Output};

fn klayer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klayer"))
        .args(args)
        .env("KLAYER_DATA", data_dir())
        .output()
        .expect("the klayer binary runs")
}

fn data_dir() -> std::path::PathBuf {
    std::env::var_os("KLAYER_DATA")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/cifar-10-batches-bin")
        })
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

fn fails_with(args: &[&str], needle: &str) {
    let out = klayer(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: message {err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
}

#[test]
fn train_prints_a_json_summary() {
    let out = klayer(&[
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
    ]);
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

#[test]
fn train_reports_divergence_in_its_json() {
    let out = klayer(&[
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
        "--json",
    ]);
    let v = json_line(&out);
    assert_eq!(v["diverged"], true);
    assert!(v["diverged_at"]["step"].is_u64());
    assert!(v["test_acc"].is_null());
}

#[test]
fn gradcheck_json_reports_a_small_error() {
    let v = json_line(&klayer(&["gradcheck", "--hidden", "10,10", "--json"]));
    let e = v["max_rel_error"].as_f64().unwrap();
    assert!(e < 1e-5, "max relative error {e}");
    assert!(v["per_tensor"]["gamma1"].is_f64());
}

#[test]
fn bench_reports_milliseconds_per_step() {
    let v = json_line(&klayer(&[
        "bench", "--steps", "20", "--warmup", "2", "--images", "500", "--json",
    ]));
    assert!(v["ms_per_step"].as_f64().unwrap() > 0.0);
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
        "eta_min",
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
fn a_missing_data_directory_says_how_to_get_the_data() {
    fails_with(
        &["train", "--data", "/nonexistent/cifar", "--no-download"],
        "klayer download",
    );
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
