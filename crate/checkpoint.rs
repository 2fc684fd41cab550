//! Checkpoints: a trained [`Network`] with everything needed to use it elsewhere — its layers,
//! weights, BN statistics and the normalisation of its inputs — in one
//! [safetensors](https://huggingface.co/docs/safetensors) file, readable from Python with
//! `safetensors.numpy.load_file`.
//!
//! # Layout
//! Tensors (little-endian, `F32` for an f32 network and `F64` for an f64 one), named by the
//! position `i` of the layer in [`Network::layers`], counted from 0:
//! - `layers.{i}.weight` (out, in) and, if the layer has one, `layers.{i}.bias` (out) for a
//!   linear layer: `y = x Wᵀ + b`;
//! - `layers.{i}.gamma`, `layers.{i}.beta`, `layers.{i}.running_mean`, `layers.{i}.running_var`
//!   (features) for a BN layer: at evaluation `y = γ (x − mean) / sqrt(var + eps) + β`;
//! - `input.mean` and `input.std` (`F64`, input features) if the input normalisation is saved: a
//!   raw pixel `p` (0 to 255) becomes the input `(p / 255 − mean) / std`.
//!
//! The safetensors metadata (a string map) holds `format` = `klayer-checkpoint`, `version` =
//! `1`, `input_features`, and `layers`: a JSON list with one entry per layer, `{"kind":
//! "linear", "bias": true}`, `{"kind": "batch_norm", "eps": 1e-5}` or `{"kind": "relu"}`.
//!
//! # Example
//! ```
//! use klayer::checkpoint::{load, save, InputNorm};
//! use klayer::net::NetConfig;
//! let net = NetConfig::new(&[8]).input(4).classes(3).build::<f32>().unwrap();
//! let norm = InputNorm { mean: vec![0.5; 4], std: vec![0.25; 4] };
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("net.safetensors");
//! save(&path, &net, Some(&norm)).unwrap();
//! let back = load::<f32>(&path).unwrap();
//! assert_eq!(back.net, net);
//! assert_eq!(back.input, Some(norm));
//! ```

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::layers::{BatchNorm, Layer, Linear, Relu};
use crate::net::Network;
use crate::{Error, Result, Scalar};

/// The `format` entry of a klayer checkpoint's metadata.
pub const FORMAT: &str = "klayer-checkpoint";
/// The layout version this crate writes and reads.
pub const VERSION: &str = "1";

/// How raw pixels become a network's inputs: `(p / 255 − mean[j]) / std[j]` for feature `j`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputNorm {
    /// Per-feature mean on the `[0, 1]` scale.
    pub mean: Vec<f64>,
    /// Per-feature standard deviation on the `[0, 1]` scale.
    pub std: Vec<f64>,
}

/// What [`load`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint<T> {
    /// The network, with its BN statistics.
    pub net: Network<T>,
    /// The normalisation of its inputs, if it was saved.
    pub input: Option<InputNorm>,
}

/// One layer in the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum LayerSpec {
    Linear { bias: bool },
    BatchNorm { eps: f64, has_stats: bool },
    Relu,
}

/// Tensor bytes in the network's float type.
fn dtype_of<T: Scalar>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

fn bytes_of<T: Scalar>(values: impl IntoIterator<Item = T>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        match dtype_of::<T>() {
            Dtype::F32 => out.extend((v.as_f64() as f32).to_le_bytes()),
            _ => out.extend(v.as_f64().to_le_bytes()),
        }
    }
    out
}

/// Saves `net` (and, if given, the normalisation of its inputs) to `path` in the layout of the
/// [module](self). The file is written next to `path` under a temporary name and renamed into
/// place, so `path` is either the old file or the complete new one.
///
/// Errors: [`Error::Shape`] if `input` does not have one mean and one std per input feature;
/// [`Error::Io`] if the file cannot be written.
pub fn save<T: Scalar>(path: &Path, net: &Network<T>, input: Option<&InputNorm>) -> Result<()> {
    let mut specs = Vec::new();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut add = |name: String, shape: Vec<usize>, bytes: Vec<u8>, dtype: Dtype| {
        tensors.push((name, dtype, shape, bytes));
    };
    for (i, layer) in net.layers.iter().enumerate() {
        // A student's layer is saved as the built-in layer it wraps (same parameters and
        // statistics), so the file loads without the student's functions.
        let inner;
        let layer = match layer {
            Layer::Student(s) => {
                inner = s.builtin();
                &inner
            }
            other => other,
        };
        match layer {
            Layer::Linear(l) => {
                specs.push(LayerSpec::Linear {
                    bias: l.b.is_some(),
                });
                let w = l.w.as_standard_layout();
                add(
                    format!("layers.{i}.weight"),
                    w.shape().to_vec(),
                    bytes_of(w.iter().copied()),
                    dtype_of::<T>(),
                );
                if let Some(b) = &l.b {
                    add(
                        format!("layers.{i}.bias"),
                        vec![b.len()],
                        bytes_of(b.iter().copied()),
                        dtype_of::<T>(),
                    );
                }
            }
            Layer::BatchNorm(bn) => {
                specs.push(LayerSpec::BatchNorm {
                    eps: bn.eps.as_f64(),
                    has_stats: bn.has_stats(),
                });
                for (name, v) in [
                    ("gamma", &bn.gamma),
                    ("beta", &bn.beta),
                    ("running_mean", bn.running_mean()),
                    ("running_var", bn.running_var()),
                ] {
                    add(
                        format!("layers.{i}.{name}"),
                        vec![v.len()],
                        bytes_of(v.iter().copied()),
                        dtype_of::<T>(),
                    );
                }
            }
            Layer::Relu(_) => specs.push(LayerSpec::Relu),
            Layer::Student(_) => {
                unreachable!("a student layer's built-in layer is never a student layer")
            }
        }
    }
    if let Some(norm) = input {
        let n = net.input_features();
        if norm.mean.len() != n || norm.std.len() != n {
            return Err(Error::Shape(format!(
                "the input normalisation has {} means and {} stds for a network with {n} inputs",
                norm.mean.len(),
                norm.std.len()
            )));
        }
        for (name, v) in [("input.mean", &norm.mean), ("input.std", &norm.std)] {
            add(
                name.to_string(),
                vec![n],
                bytes_of(v.iter().copied()),
                Dtype::F64,
            );
        }
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        (
            "input_features".to_string(),
            net.input_features().to_string(),
        ),
        (
            "layers".to_string(),
            serde_json::to_string(&specs).expect("layer specs serialise"),
        ),
    ]);
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            let view = safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .expect("shape and bytes agree by construction");
            (name.as_str(), view)
        })
        .collect::<Vec<_>>();
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Shape(format!("cannot serialise the network: {e}")))?;
    crate::output::write_atomic(path, &bytes)
}

/// Loads a checkpoint written by [`save`], as a network of float type `T` (an f64 checkpoint
/// can be loaded as f32 and the other way round).
///
/// Errors: [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] naming the file and
/// the problem if it is not a complete klayer checkpoint (truncated, another safetensors file,
/// another format, a newer layout, a missing or misshapen tensor).
pub fn load<T: Scalar>(path: &Path) -> Result<Checkpoint<T>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |reason: String| Error::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a complete safetensors file ({e:?})")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a complete safetensors file ({e:?})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let entry = |key: &str| {
        meta.get(key)
            .ok_or_else(|| bad(format!("its metadata has no `{key}` entry")))
    };
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "a safetensors file, but not a klayer checkpoint (its metadata has no `format: {FORMAT}`)"
        )));
    }
    let version = entry("version")?;
    if version != VERSION {
        return Err(bad(format!(
            "layout version {version}, this klayer reads version {VERSION}"
        )));
    }
    let input: usize = entry("input_features")?
        .parse()
        .map_err(|e| bad(format!("`input_features`: {e}")))?;
    let specs: Vec<LayerSpec> =
        serde_json::from_str(entry("layers")?).map_err(|e| bad(format!("`layers`: {e}")))?;
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>> {
        let t = st
            .tensor(name)
            .map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if t.shape() != shape {
            return Err(bad(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                t.shape()
            )));
        }
        let data = t.data();
        match t.dtype() {
            Dtype::F32 => Ok(data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect()),
            Dtype::F64 => Ok(data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()),
            other => Err(bad(format!(
                "tensor `{name}` is {other:?}, expected F32 or F64"
            ))),
        }
    };
    let vector = |name: String, n: usize| -> Result<Array1<T>> {
        Ok(Array1::from_iter(read(&name, &[n])?.into_iter().map(T::of)))
    };
    let mut layers = Vec::with_capacity(specs.len());
    let mut width = input;
    let mut linears = 0;
    for (i, spec) in specs.iter().enumerate() {
        match *spec {
            LayerSpec::Linear { bias } => {
                let name = format!("layers.{i}.weight");
                let shape = st
                    .tensor(&name)
                    .map_err(|_| bad(format!("tensor `{name}` is missing")))?
                    .shape()
                    .to_vec();
                let [out, inp] = shape[..] else {
                    return Err(bad(format!(
                        "tensor `{name}` has shape {shape:?}, expected 2-D"
                    )));
                };
                let w = Array2::from_shape_vec((out, inp), read(&name, &[out, inp])?)
                    .expect("length checked")
                    .mapv(T::of);
                let b = if bias {
                    Some(vector(format!("layers.{i}.bias"), out)?)
                } else {
                    None
                };
                layers.push(Layer::Linear(Linear::from_weights(w, b)));
                width = out;
                linears += 1;
            }
            LayerSpec::BatchNorm { eps, has_stats } => {
                if !(eps.is_finite() && eps >= 0.0) {
                    return Err(bad(format!("layer {i}: BN eps {eps}")));
                }
                let mut bn = BatchNorm::new(width, eps);
                bn.gamma = vector(format!("layers.{i}.gamma"), width)?;
                bn.beta = vector(format!("layers.{i}.beta"), width)?;
                let mean = vector(format!("layers.{i}.running_mean"), width)?;
                let var = vector(format!("layers.{i}.running_var"), width)?;
                if has_stats {
                    bn.set_running(mean, var);
                }
                layers.push(Layer::BatchNorm(bn));
            }
            LayerSpec::Relu => layers.push(Layer::Relu(Relu)),
        }
    }
    if linears == 0 {
        return Err(bad("it has no linear layer".into()));
    }
    let net = Network::new(layers, input).map_err(|e| bad(e.to_string()))?;
    let input = match (st.tensor("input.mean"), st.tensor("input.std")) {
        (Ok(_), Ok(_)) => Some(InputNorm {
            mean: read("input.mean", &[input])?,
            std: read("input.std", &[input])?,
        }),
        (Err(_), Err(_)) => None,
        _ => return Err(bad("only one of `input.mean` and `input.std`".into())),
    };
    Ok(Checkpoint { net, input })
}
