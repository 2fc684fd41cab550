#!/usr/bin/env bash
# The project's one test command:
#
#   scripts/test.sh
#
# Stages, in order; it stops at the first that fails and says which:
#   fmt        cargo fmt --all -- --check
#   clippy     cargo clippy --all-targets -- -D warnings
#   lab        scripts/lab.sh --install-only (patched evcxr_jupyter, .venv, kernel spec,
#              JupyterLab settings, and the warm-up: klayer and its dependencies compiled once
#              into evcxr's shared cache, which the notebooks, tips and assignment stages reuse)
#   test       cargo test (unit, integration and doc tests; the test profile is opt-level 3;
#              the checkpoint test reads a saved net with the venv's numpy)
#   kernel     scripts/kernel_test.py: the kernel with a private empty cache: 3 kernels compiling
#              at once, cache reuse and self-healing, Run All stopping at the first error (~3 min)
#   notebooks  scripts/run_notebooks.py: every notebooks/*.ipynb, headless, KLAYER_QUICK=1;
#              executed copies go to target/notebooks/ (the committed notebooks are not touched)
#   tips       scripts/run_notebooks.py --tips: every tip of every notebook put into its parameter
#              cell and run with the cells that depend on it; bad values give one clear message
#   browser    scripts/browser_test.py on the first executed copy with a plotly figure:
#              JupyterLab + headless Chromium draw it; screenshot target/browser/notebook.png;
#              then scripts/student_session.py: a student's session (Run All, a changed and a
#              bad parameter, two notebooks at once, autosave off, the exercise pictures),
#              screenshots target/browser/session_*.png and picture_*.png
#   assignment scripts/assignment_test.py: the exercise notebooks (assignment/) through nbgrader
#              at quick size: student versions generated; instructor versions score full
#              points, student versions run to the end and score 0, a faulty A2 gets partial
#              credit with feedback naming its mistakes (two graders at once; 10-20 min on 2
#              cores, depending on load)
#
# Environment: KLAYER_DATA (CIFAR-10 folder) is passed through to the tests and notebooks.
# SKIP_STAGES="fmt clippy" skips stages by name (for local iteration; CI skips none).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in *":$CARGO_BIN:"*) ;; *) export PATH="$CARGO_BIN:$PATH" ;; esac

SKIP_STAGES="${SKIP_STAGES:-}"
T_START=$(date +%s)
summary=()
current=""

hms() { local s=$1; printf '%dm%02ds' $((s / 60)) $((s % 60)); }

on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -n "$current" ]; then
        echo
        echo "[test.sh] FAILED at stage '$current' (exit $rc) after $(hms $(( $(date +%s) - T_STAGE )))"
        for line in "${summary[@]}"; do echo "[test.sh]   $line"; done
        echo "[test.sh]   FAIL  $current"
    fi
}
trap on_exit EXIT

stage() {  # stage NAME COMMAND...
    local name=$1; shift
    if [[ " $SKIP_STAGES " == *" $name "* ]]; then
        echo "[test.sh] ---- $name: skipped (SKIP_STAGES)"
        summary+=("skip  $name")
        return 0
    fi
    echo
    echo "[test.sh] ==== $name [$(date '+%H:%M:%S')]: $*"
    current=$name
    T_STAGE=$(date +%s)
    "$@"
    local dt=$(( $(date +%s) - T_STAGE ))
    current=""
    echo "[test.sh] ---- $name: ok in $(hms "$dt")"
    summary+=("ok    $name $(hms "$dt")")
}

notebooks_stage() {
    shopt -s nullglob
    local nbs=("$ROOT"/notebooks/*.ipynb)
    shopt -u nullglob
    if [ ${#nbs[@]} -eq 0 ]; then
        echo "[test.sh] no notebooks in notebooks/: nothing to run"
        NO_NOTEBOOKS=1
        return 0
    fi
    rm -rf "$ROOT/target/notebooks"  # no stale executed copies for the browser stage
    "$ROOT/.venv/bin/python" scripts/run_notebooks.py --out-dir "$ROOT/target/notebooks" "${nbs[@]}"
}

tips_stage() {
    if [ "${NO_NOTEBOOKS:-0}" = 1 ]; then
        echo "[test.sh] no notebooks: no tips"
        return 0
    fi
    "$ROOT/.venv/bin/python" scripts/run_notebooks.py --tips --out-dir "$ROOT/target/notebooks"
}

browser_stage() {
    if [ "${NO_NOTEBOOKS:-0}" = 1 ]; then
        echo "[test.sh] no notebooks: no browser test"
        return 0
    fi
    [ -x /usr/bin/chromium ] || { echo "[test.sh] /usr/bin/chromium missing: apt-get install -y chromium"; return 1; }
    "$ROOT/.venv/bin/python" scripts/browser_test.py --dir "$ROOT/target/notebooks"
    KLAYER_QUICK=1 "$ROOT/.venv/bin/python" scripts/student_session.py
}

stage fmt       cargo fmt --all -- --check
stage clippy    cargo clippy --all-targets -- -D warnings
stage lab       bash scripts/lab.sh --install-only
stage test      cargo test
stage kernel    "$ROOT/.venv/bin/python" scripts/kernel_test.py
stage notebooks notebooks_stage
stage tips      tips_stage
stage browser   browser_stage
stage assignment "$ROOT/.venv/bin/python" scripts/assignment_test.py

echo
echo "[test.sh] all stages passed in $(hms $(( $(date +%s) - T_START )))"
for line in "${summary[@]}"; do echo "[test.sh]   $line"; done
