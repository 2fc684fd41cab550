//! Checkpoints: a saved network loads back identical, runs the same forward pass in plain
//! numpy (scripts/checkpoint_numpy.py), and a damaged or foreign file gets a clear error.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use klayer::checkpoint::{load, save, InputNorm};
use klayer::data::{normalise, Dataset, IMAGE_DIM};
use klayer::net::{BnPlacement, NetConfig, Network};
use klayer::rng::{rng, Stream};
use klayer::train::{train, LrSchedule, TrainConfig};
use klayer::{Error, Scalar};
use ndarray::Array2;
use rand::Rng;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// `n` random images of raw pixels, with labels that depend on them (so training learns).
fn images(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut r = rng(seed, Stream::Data);
    let pixels: Vec<u8> = (0..n * IMAGE_DIM).map(|_| r.random()).collect();
    let labels = pixels
        .chunks(IMAGE_DIM)
        .map(|img| (img[..40].iter().map(|&p| p as usize).sum::<usize>() / 4 % 10) as u8)
        .collect();
    (pixels, labels)
}

fn norm_of(pixels: &[u8]) -> InputNorm {
    let (mean, std) = klayer::data::feature_stats(pixels, IMAGE_DIM);
    InputNorm { mean, std }
}

/// A small trained net of float type `T` with BN statistics from training.
fn trained<T: Scalar>(
    bn: BnPlacement,
    norm: &InputNorm,
    pixels: &[u8],
    labels: &[u8],
) -> Network<T> {
    let data: Dataset<T> = normalise(pixels, labels, &norm.mean, &norm.std).unwrap();
    let mut net = NetConfig::new(&[20, 12])
        .bn(bn)
        .seed(4)
        .build::<T>()
        .unwrap();
    let cfg = TrainConfig {
        batch: 50,
        schedule: LrSchedule::Constant {
            eta: 0.05,
            steps: 30,
        },
        ..TrainConfig::default()
    };
    train(&mut net, &cfg, &data, &data, None).unwrap();
    net
}

/// The state a checkpoint keeps, layer by layer: weights, biases, γ, β, ε and the BN
/// statistics (not the gradients or caches of the last training step).
fn assert_same_state<T: Scalar>(a: &Network<T>, b: &Network<T>) {
    use klayer::layers::Layer;
    assert_eq!(a.input_features(), b.input_features());
    assert_eq!(
        a.layers.len(),
        b.layers.len(),
        "{} vs {}",
        a.describe(),
        b.describe()
    );
    for (i, (x, y)) in a.layers.iter().zip(&b.layers).enumerate() {
        match (x, y) {
            (Layer::Linear(x), Layer::Linear(y)) => assert!(x.w == y.w && x.b == y.b, "layer {i}"),
            (Layer::BatchNorm(x), Layer::BatchNorm(y)) => {
                assert!(
                    x.gamma == y.gamma && x.beta == y.beta && x.eps == y.eps,
                    "layer {i}"
                );
                assert_eq!(x.has_stats(), y.has_stats(), "layer {i}");
                assert_eq!(x.running_mean(), y.running_mean(), "layer {i}");
                assert_eq!(x.running_var(), y.running_var(), "layer {i}");
            }
            (Layer::Relu(_), Layer::Relu(_)) => {}
            _ => panic!("layer {i}: {} vs {}", a.describe(), b.describe()),
        }
    }
}

#[test]
fn a_saved_network_loads_back_identical_with_its_bn_statistics_and_input_normalisation() {
    let (pixels, labels) = images(300, 1);
    let norm = norm_of(&pixels);
    let dir = tempfile::tempdir().unwrap();
    for bn in [BnPlacement::Before, BnPlacement::After, BnPlacement::None] {
        let net = trained::<f32>(bn, &norm, &pixels, &labels);
        let path = dir.path().join("net.safetensors");
        save(&path, &net, Some(&norm)).unwrap();
        let back = load::<f32>(&path).unwrap();
        assert_same_state(&back.net, &net);
        assert_eq!(back.input.as_ref(), Some(&norm));
        if bn != BnPlacement::None {
            let bns: Vec<_> = back
                .net
                .layers
                .iter()
                .filter_map(|l| match l {
                    klayer::layers::Layer::BatchNorm(b) => Some(b),
                    _ => None,
                })
                .collect();
            assert!(
                bns.iter().all(|b| b.has_stats()),
                "BN statistics were not kept"
            );
        }
        // f64 networks too, and across float types.
        let net64 = trained::<f64>(bn, &norm, &pixels, &labels);
        save(&path, &net64, None).unwrap();
        let back = load::<f64>(&path).unwrap();
        assert_same_state(&back.net, &net64);
        assert_eq!(back.input, None);
        assert_same_state(&load::<f32>(&path).unwrap().net, &net64.cast::<f32>());
    }
    // Written through a temporary file: nothing else is left in the folder.
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["net.safetensors"]);
}

fn load_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    fs::write(&path, bytes).unwrap();
    let err = load::<f32>(&path).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("bad.safetensors") && msg.contains("klayer train --save"),
        "{msg}"
    );
    msg
}

#[test]
fn a_truncated_foreign_or_incomplete_file_is_refused_with_what_is_wrong() {
    let (pixels, labels) = images(200, 2);
    let norm = norm_of(&pixels);
    let net = trained::<f32>(BnPlacement::Before, &norm, &pixels, &labels);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    save(&path, &net, Some(&norm)).unwrap();
    let good = fs::read(&path).unwrap();

    for cut in [0, 5, 100, good.len() / 2, good.len() - 1] {
        let msg = load_err(&good[..cut]);
        assert!(
            msg.contains("not a complete safetensors file"),
            "cut at {cut}: {msg}"
        );
    }
    assert!(load_err(b"definitely not a checkpoint, just text").contains("safetensors"));

    // A valid safetensors file from elsewhere.
    let data = [0u8; 16];
    let t = TensorView::new(Dtype::F32, vec![4], &data).unwrap();
    let foreign = safetensors::serialize([("weight", t)], None).unwrap();
    assert!(load_err(&foreign).contains("not a klayer checkpoint"));

    // A klayer checkpoint with a tensor missing, or of another version.
    let st = SafeTensors::deserialize(&good).unwrap();
    let (_, header) = SafeTensors::read_metadata(&good).unwrap();
    let meta = header.metadata().clone().unwrap();
    let keep: Vec<_> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "layers.1.running_var")
        .collect();
    let missing = safetensors::serialize(keep.clone(), Some(meta.clone())).unwrap();
    assert!(load_err(&missing).contains("`layers.1.running_var` is missing"));
    let mut newer = meta.clone();
    newer.insert("version".into(), "99".into());
    let newer = safetensors::serialize(st.tensors(), Some(newer)).unwrap();
    assert!(load_err(&newer).contains("version 99"));

    // A file that is not there is an I/O error naming it.
    let err = load::<f32>(&dir.path().join("absent.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && err.to_string().contains("absent.safetensors"));
}

/// A Python with numpy and safetensors: the project venv's (`scripts/lab.sh --install-only`),
/// else a venv made once under the build folder with the pins of
/// scripts/requirements-jupyter.txt. `None` (the test is skipped, saying why) if neither can be
/// had; under CI (`CI` set) that fails instead.
fn python() -> Option<PathBuf> {
    let root = common::repo_root();
    let has_modules = |py: &Path| {
        Command::new(py)
            .args(["-c", "import numpy, safetensors.numpy"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let project = root.join(".venv/bin/python");
    if has_modules(&project) {
        return Some(project);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("checkpoint-venv");
    let py = venv.join("bin/python");
    if has_modules(&py) {
        return Some(py);
    }
    let reqs = fs::read_to_string(root.join("scripts/requirements-jupyter.txt")).unwrap();
    let pins: Vec<&str> = reqs
        .lines()
        .filter(|l| l.starts_with("numpy==") || l.starts_with("safetensors=="))
        .collect();
    assert_eq!(
        pins.len(),
        2,
        "numpy and safetensors pins in scripts/requirements-jupyter.txt"
    );
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(&pins)
            .status()
            .is_ok_and(|s| s.success());
    if made && has_modules(&py) {
        return Some(py);
    }
    let why = "no Python with numpy and safetensors: run scripts/lab.sh --install-only \
               (the project venv), or make python3 -m venv and pip work";
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

#[test]
fn numpy_runs_a_saved_network_to_the_same_predictions() {
    let Some(py) = python() else { return };
    let (pixels, labels) = images(400, 3);
    let norm = norm_of(&pixels[..300 * IMAGE_DIM]);
    let (test_pixels, test_labels) = (&pixels[300 * IMAGE_DIM..], &labels[300..]);
    let dir = tempfile::tempdir().unwrap();
    let images_file = dir.path().join("images.safetensors");
    let view = TensorView::new(Dtype::U8, vec![100, IMAGE_DIM], test_pixels).unwrap();
    fs::write(
        &images_file,
        safetensors::serialize([("pixels", view)], None).unwrap(),
    )
    .unwrap();
    let script = common::repo_root().join("scripts/checkpoint_numpy.py");
    for bn in [BnPlacement::Before, BnPlacement::After] {
        let mut net = trained::<f32>(bn, &norm, &pixels[..300 * IMAGE_DIM], &labels[..300]);
        let ck = dir.path().join("net.safetensors");
        save(&ck, &net, Some(&norm)).unwrap();
        let out = dir.path().join("out.safetensors");
        let run = Command::new(&py)
            .arg(&script)
            .arg(&ck)
            .arg(&images_file)
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );

        let test: Dataset<f32> =
            normalise(test_pixels, test_labels, &norm.mean, &norm.std).unwrap();
        let ours = net.predict(test.x.view()).unwrap();
        let logits: Array2<f32> = net
            .forward(test.x.view(), klayer::layers::Mode::Eval)
            .unwrap();
        let bytes = fs::read(&out).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let theirs: Vec<usize> = st
            .tensor("predictions")
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
            .collect();
        let their_logits: Vec<f64> = st
            .tensor("logits")
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(theirs, ours, "{bn:?}: predictions differ");
        let worst = logits
            .iter()
            .zip(&their_logits)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "{bn:?}: logits differ by {worst}");
        assert!(
            ours.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "a constant prediction proves little"
        );
    }
}

fn klayer(args: &[&str], data: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_klayer"))
        .args(args)
        .env("KLAYER_DATA", data)
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn the_cli_saves_a_trained_net_and_evaluates_it_to_the_same_test_accuracy() {
    let Some(data) = common::cifar10_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("net.safetensors");
    let file_arg = file.to_str().unwrap();
    let trained = json_of(&klayer(
        &[
            "train",
            "--n-train",
            "2000",
            "--n-val",
            "500",
            "--n-s",
            "20",
            "--cycles",
            "1",
        ]
        .into_iter()
        .chain(["--json", "--save", file_arg])
        .collect::<Vec<_>>(),
        &data,
    ));
    let evaluated = json_of(&klayer(&["eval", "--load", file_arg, "--json"], &data));
    assert_eq!(evaluated["images"], 10_000);
    assert_eq!(evaluated["test_acc"], trained["test_acc"]);
    // A damaged file: a non-zero exit and a message naming it.
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    let out = klayer(&["eval", "--load", file_arg], &data);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a usable klayer checkpoint"),
        "{err}"
    );
}
