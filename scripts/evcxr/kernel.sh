#!/usr/bin/env bash
# Starts the Rust kernel (the kernel spec's argv, written by scripts/lab.sh, runs
# `kernel.sh EVCXR_JUPYTER_BINARY --control_file FILE`) in a persistent build folder.
#
# evcxr compiles a kernel's cells, and the crates they use, in EVCXR_TMPDIR (by default a new
# temporary folder per kernel, so every kernel starts cargo from nothing). This gives each
# kernel one of a few persistent folders instead, target/evcxr-kernels/<1..4>, each held with
# an exclusive lock (flock) for the kernel's lifetime: a kernel that gets a folder a previous
# kernel used finds cargo's build up to date and compiles only what changed (the first cell
# of a notebook then takes seconds). Kernels running at the same time get different folders;
# when all are in use, the kernel falls back to evcxr's fresh temporary folder. Either way
# compiled dependencies also come from evcxr's shared `:cache` (scripts/evcxr/init.evcxr).
# An EVCXR_TMPDIR set by the caller (scripts/run_notebooks.py) is used as it is;
# KLAYER_EVCXR_KERNELS_DIR replaces target/evcxr-kernels (scripts/kernel_test.py).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 EVCXR_JUPYTER [ARGS...]" >&2; exit 2; }
if [ -z "${EVCXR_TMPDIR:-}" ] && command -v flock >/dev/null; then
    base="${KLAYER_EVCXR_KERNELS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/evcxr-kernels}"
    for slot in 1 2 3 4; do
        dir="$base/$slot"
        mkdir -p "$dir" 2>/dev/null || break
        exec {lock}>"$dir/.lock" || continue
        if flock --nonblock "$lock"; then
            # The kernel inherits the open lock file: the folder stays ours until it exits.
            export EVCXR_TMPDIR="$dir"
            exec "$@"
        fi
        exec {lock}>&-
    done
fi
exec "$@"
