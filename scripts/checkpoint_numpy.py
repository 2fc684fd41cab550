#!/usr/bin/env python3
"""Classify images with a klayer checkpoint in plain numpy (no klayer needed).

    .venv/bin/python scripts/checkpoint_numpy.py CHECKPOINT IMAGES OUT

CHECKPOINT  a network saved by `klayer train --save FILE` (safetensors; the layout is described
            in the crate's `checkpoint` module).
IMAGES      a safetensors file with one tensor `pixels`: (n, input features), raw pixel values
            0..255 (any numeric dtype), in the order of the CIFAR-10 binary files.
OUT         written: a safetensors file with `logits` (n, classes, float64) and `predictions`
            (n, int64).

The forward pass is the network's evaluation mode, in float64: each pixel p of feature j becomes
(p / 255 - mean[j]) / std[j]; a linear layer computes x W^T + b; a BN layer
gamma (x - running_mean) / sqrt(running_var + eps) + beta; ReLU max(x, 0).
scripts/lab.sh installs numpy and safetensors into .venv; tests/checkpoint.rs checks that these
predictions equal klayer's.
"""
from __future__ import annotations

import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

FORMAT = "klayer-checkpoint"
VERSION = "1"


def forward(checkpoint: str, pixels: np.ndarray) -> np.ndarray:
    """The logits of the network in `checkpoint` for raw `pixels` (n, features)."""
    with safe_open(checkpoint, framework="numpy") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        sys.exit(f"{checkpoint}: not a klayer checkpoint of version {VERSION}")
    t = {k: v.astype(np.float64) for k, v in load_file(checkpoint).items()}
    x = pixels.astype(np.float64) / 255.0
    x = (x - t["input.mean"]) / t["input.std"]
    for i, layer in enumerate(json.loads(meta["layers"])):
        kind = layer["kind"]
        if kind == "linear":
            x = x @ t[f"layers.{i}.weight"].T
            if layer["bias"]:
                x = x + t[f"layers.{i}.bias"]
        elif kind == "batch_norm":
            scale = t[f"layers.{i}.gamma"] / np.sqrt(t[f"layers.{i}.running_var"] + layer["eps"])
            x = (x - t[f"layers.{i}.running_mean"]) * scale + t[f"layers.{i}.beta"]
        elif kind == "relu":
            x = np.maximum(x, 0.0)
        else:
            sys.exit(f"{checkpoint}: layer {i} has unknown kind {kind!r}")
    return x


def main() -> int:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    checkpoint, images, out = sys.argv[1:]
    logits = forward(checkpoint, load_file(images)["pixels"])
    save_file(
        {"logits": np.ascontiguousarray(logits), "predictions": logits.argmax(axis=1).astype(np.int64)},
        out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
