#!/usr/bin/env bash
# One command for the notebooks: installs what they need, then starts JupyterLab on notebooks/.
#
#   scripts/lab.sh                      install (if needed) and start JupyterLab
#   scripts/lab.sh --no-browser --port 8899    extra arguments go to `jupyter lab`
#   scripts/lab.sh --install-only       install (if needed) and stop there
#   scripts/lab.sh --install-only --no-warm   ... without step 5 (used by scripts/test.sh)
#
# Idempotent: a second run checks and changes nothing. What it sets up:
#   1. The Rust kernel: evcxr_jupyter 0.22.0 built from its crates.io sources with the project's
#      patches (scripts/evcxr/build.sh; patches in scripts/evcxr/patches/): Run All stops at the
#      first failing cell, several kernels can share the compilation cache safely (a damaged
#      entry heals itself; a restored entry names this kernel's build folder, so later cells
#      compile only themselves), a `:dep` cell indexes the crates for type inference at once
#      (not in the next cell), and a cell that compiles or indexes for more than 3 s says so.
#      Installed as
#      ~/.cargo/bin/evcxr_jupyter-klayer-<hash of the patches>; built only if that file is
#      missing (~12-20 min from cold).
#   2. A project-local Python venv .venv with the exact packages of
#      scripts/requirements-jupyter.txt (JupyterLab, plotly's offline JupyterLab renderer,
#      nbclient, nbformat, playwright; numpy and safetensors for reading checkpoints).
#      Re-installed only when that file changes.
#      plotly.js is copied from the venv's plotly package to .venv/share/klayer/plotly.min.js,
#      where `klayer reproduce` looks for it to draw PNG figures (its --plotly-js default).
#   3. The kernel spec "rust" in .venv/share/jupyter/kernels/rust (the venv's own Jupyter data
#      dir, found by every Jupyter started from .venv; nothing is written to ~/.local/share).
#      It is what `evcxr_jupyter --install` writes (with JUPYTER_PATH pointed at the venv),
#      started through scripts/evcxr/kernel.sh (each kernel gets a persistent build folder,
#      target/evcxr-kernels/<n>, so cargo's work survives the kernel), plus environment for the
#      kernel: EVCXR_CONFIG_DIR=scripts/evcxr so every kernel runs scripts/evcxr/init.evcxr
#      (`:cache`: compiled dependencies are shared by all kernels, in ~/.cache/evcxr), and
#      cargo profile overrides that switch off evcxr's debug-assertions and overflow-checks
#      (3x faster training in notebooks).
#   4. JupyterLab settings for the venv (.venv/share/jupyter/lab/settings/overrides.json):
#      no "Would you like to get notified about official Jupyter news?" popup and no update
#      check (@jupyterlab/apputils-extension:notification fetchNews "false", checkForUpdates
#      false), and autosave off (@jupyterlab/docmanager-extension:plugin autosave false), so
#      opening and running a notebook leaves its committed outputs intact until you save
#      (Ctrl-S) on purpose. A user's own settings (Settings menu) still win.
#   5. Warm-up (not with --no-warm): one headless kernel runs the notebooks' first `:dep` cell
#      (scripts/evcxr/kernel_client.py warm), so every later kernel finds klayer and its
#      dependencies compiled: a notebook's first cell then answers in seconds, not minutes.
#      Done again only when the kernel, Cargo.toml/Cargo.lock, crate/ or the :dep cells change.
#   6. Unless --install-only: `jupyter lab` on notebooks/ (or on $KLAYER_LAB_ROOT: scripts/assignment.sh
#      lab starts it on assignment/), with Jupyter's config, data,
#      runtime, settings and workspaces under .jupyter-home/ (project-local, git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
REQS="$ROOT/scripts/requirements-jupyter.txt"
EVCXR_VERSION="0.22.0"
EVCXR_CONFIG="$ROOT/scripts/evcxr"
PYTHON="${PYTHON:-python3}"

install_only=0
warm=1
lab_args=()
for arg in "$@"; do
    case "$arg" in
        --install-only) install_only=1 ;;
        --no-warm) warm=0 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) lab_args+=("$arg") ;;
    esac
done

say() { printf '[lab.sh] %s\n' "$*"; }
die() { printf '[lab.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. evcxr_jupyter ----------------------------------------------------------------------
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=/path/to/python3.11)"

EVCXR_BIN="$(bash "$EVCXR_CONFIG/build.sh" path)"
if [ -x "$EVCXR_BIN" ]; then
    say "evcxr_jupyter ${EVCXR_VERSION} (patched): already installed ($EVCXR_BIN)"
else
    say "evcxr_jupyter ${EVCXR_VERSION} (patched): building (about 12-20 min from cold)"
    PYTHON="$PYTHON" bash "$EVCXR_CONFIG/build.sh" install >/dev/null
fi
[ -x "$EVCXR_BIN" ] || die "evcxr_jupyter not found at $EVCXR_BIN after install"

# --- 2. Python venv --------------------------------------------------------------------------
stamp="$VENV/.klayer-requirements.sha256"
venv_has_packages() {  # cheap: finds the packages without importing them
    "$VENV/bin/python" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("jupyterlab", "nbclient", "nbformat", "plotly", "playwright", "numpy", "safetensors")))' 2>/dev/null
}
want="$(sha256sum "$REQS" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" = "$have" ] && venv_has_packages; then
    say "venv $VENV: up to date with $(basename "$REQS")"
else
    if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
        say "venv $VENV: creating with $("$PYTHON" --version 2>&1)"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    say "venv $VENV: installing $(basename "$REQS") (pinned; about a minute)"
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$REQS"
    "$VENV/bin/python" -c 'import jupyterlab, nbclient, nbformat, plotly, playwright, numpy, safetensors' \
        || die "venv packages do not import after install"
    printf '%s\n' "$want" > "$stamp"
fi
if [ ! -f "$VENV/share/jupyter/labextensions/jupyterlab-plotly/package.json" ]; then
    die "the jupyterlab-plotly prebuilt extension is missing from $VENV (plotly figures would not render)"
fi

# plotly.js at the one place `klayer reproduce --plotly-js` defaults to.
PLOTLY_JS="$VENV/share/klayer/plotly.min.js"
plotly_src="$("$VENV/bin/python" -c 'import importlib.util as u, pathlib
print(pathlib.Path(u.find_spec("plotly").origin).parent / "package_data" / "plotly.min.js")')"
[ -f "$plotly_src" ] || die "plotly.min.js missing from the venv's plotly package ($plotly_src)"
if cmp -s "$plotly_src" "$PLOTLY_JS"; then
    say "plotly.js: up to date ($PLOTLY_JS)"
else
    mkdir -p "$(dirname "$PLOTLY_JS")"
    cp "$plotly_src" "$PLOTLY_JS.tmp" && mv "$PLOTLY_JS.tmp" "$PLOTLY_JS"
    say "plotly.js: copied to $PLOTLY_JS (for klayer reproduce)"
fi

# --- 3. kernel spec --------------------------------------------------------------------------
# `evcxr_jupyter --install` writes <JUPYTER_PATH or ~/.local/share/jupyter>/kernels/rust; we
# let it write into a scratch dir, add EVCXR_CONFIG_DIR, and copy it into the venv only if it
# differs from what is there.
KDIR="$VENV/share/jupyter/kernels/rust"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
JUPYTER_PATH="$scratch" "$EVCXR_BIN" --install >/dev/null
"$VENV/bin/python" - "$scratch/kernels/rust/kernel.json" "$EVCXR_CONFIG" <<'PY'
import json, os, sys
path, config_dir = sys.argv[1], sys.argv[2]
spec = json.load(open(path))
# Started through kernel.sh, which gives the kernel a persistent build folder.
spec["argv"] = [os.path.join(config_dir, "kernel.sh")] + spec["argv"]
env = spec.setdefault("env", {})
env["EVCXR_CONFIG_DIR"] = config_dir
# evcxr builds cells and their dependencies with its own [profile.dev]: opt-level 2 but
# debug-assertions and overflow-checks on, which makes klayer's training loop ~3x slower.
# Cargo's profile settings from the environment override the generated Cargo.toml.
env["CARGO_PROFILE_DEV_DEBUG_ASSERTIONS"] = "false"
env["CARGO_PROFILE_DEV_OVERFLOW_CHECKS"] = "false"
spec.setdefault("metadata", {})["klayer"] = "registered by scripts/lab.sh"
with open(path, "w") as f:
    json.dump(spec, f, indent=2, sort_keys=True)
    f.write("\n")
PY
if diff -rq "$scratch/kernels/rust" "$KDIR" >/dev/null 2>&1; then
    say "kernel spec rust: up to date ($KDIR)"
else
    say "kernel spec rust: writing $KDIR (evcxr $EVCXR_BIN, EVCXR_CONFIG_DIR=$EVCXR_CONFIG)"
    rm -rf "$KDIR"
    mkdir -p "$(dirname "$KDIR")"
    cp -r "$scratch/kernels/rust" "$KDIR"
fi

# --- 4. JupyterLab settings ------------------------------------------------------------------
overrides="$VENV/share/jupyter/lab/settings/overrides.json"
want_overrides='{
  "@jupyterlab/apputils-extension:notification": {
    "checkForUpdates": false,
    "fetchNews": "false"
  },
  "@jupyterlab/docmanager-extension:plugin": {
    "autosave": false
  }
}'
if [ "$(cat "$overrides" 2>/dev/null || true)" = "$want_overrides" ]; then
    say "JupyterLab settings: up to date ($overrides)"
else
    say "JupyterLab settings: writing $overrides (no news popup, no autosave)"
    mkdir -p "$(dirname "$overrides")"
    printf '%s\n' "$want_overrides" > "$overrides"
fi

# --- 5. warm-up ------------------------------------------------------------------------------
if [ "$warm" = 1 ]; then
    warm_stamp="$ROOT/target/evcxr-kernels/.warm-stamp"
    want_warm="$( { echo "$EVCXR_BIN"; rustc --version; cat "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" 2>/dev/null;
        find "$ROOT/crate" -type f -print0 2>/dev/null | sort -z | xargs -0 -r cat;
        "$VENV/bin/python" "$EVCXR_CONFIG/kernel_client.py" dep-cells; } | sha256sum | cut -c1-16)"
    if [ "$(cat "$warm_stamp" 2>/dev/null || true)" = "$want_warm" ]; then
        say "kernel warm-up: up to date (klayer and its dependencies compiled)"
    else
        say "kernel warm-up: compiling the notebooks' :dep cells once (a few minutes the first time)"
        "$VENV/bin/python" "$EVCXR_CONFIG/kernel_client.py" warm
        mkdir -p "$(dirname "$warm_stamp")"
        printf '%s\n' "$want_warm" > "$warm_stamp"
    fi
fi

if [ "$install_only" = 1 ]; then
    say "install done (--install-only)"
    exit 0
fi

# --- 6. JupyterLab ---------------------------------------------------------------------------
JHOME="$ROOT/.jupyter-home"
export JUPYTER_CONFIG_DIR="$JHOME/config"
export JUPYTER_DATA_DIR="$JHOME/data"
export JUPYTER_RUNTIME_DIR="$JHOME/runtime"
export JUPYTERLAB_SETTINGS_DIR="$JHOME/lab/user-settings"
export JUPYTERLAB_WORKSPACES_DIR="$JHOME/lab/workspaces"
nbdir="${KLAYER_LAB_ROOT:-$ROOT/notebooks}"
[ -d "$nbdir" ] || nbdir="$ROOT"
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
say "starting JupyterLab on $nbdir (Ctrl-C to stop); notebooks use the 'Rust' kernel"
say "quick mode for a first look: KLAYER_QUICK=1 scripts/lab.sh"
cd "$nbdir"
exec "$VENV/bin/jupyter" lab --ServerApp.root_dir="$nbdir" \
    --MultiKernelManager.default_kernel_name=rust "${extra[@]}" "${lab_args[@]}"
