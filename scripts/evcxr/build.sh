#!/usr/bin/env bash
# Builds and installs the project's patched evcxr_jupyter (the Rust Jupyter kernel); called by
# scripts/lab.sh.
#
#   scripts/evcxr/build.sh path      print the installed binary's path (installed or not)
#   scripts/evcxr/build.sh install   build and install it unless it is installed; print its path
#
# What it builds: evcxr_jupyter 0.22.0 and evcxr 0.22.0 from their crates.io sources (fetched by
# cargo), with the patches in scripts/evcxr/patches/ applied, and every other dependency at the
# version in evcxr_jupyter's own Cargo.lock (`--locked`). The patches:
#   evcxr-0.22.0.patch          the compilation cache (`:cache`) is safe for several kernels at
#                               once and heals itself, and a crate taken from it is not compiled
#                               again by every later cell; compile progress is reported to the
#                               kernel; a cell's stderr is all read when the cell ends; new
#                               dependencies are indexed for type inference in the cell that
#                               adds them (not lazily in the next cell); cells may use `?` from
#                               the start (a first cell using it is compiled once, not twice)
#   evcxr_jupyter-0.22.0.patch  Run All stops at the first failing cell (stop_on_error); a
#                               status line under a cell while cargo builds for more than 3 s;
#                               a cell's stdout and stderr go out before its error and reply;
#                               a status line while new dependencies are indexed
# Each patch file starts with a description of what it changes and why.
#
# Where: the binary is ~/.cargo/bin/evcxr_jupyter-klayer-<stamp>, <stamp> being a hash of the
# version and the patches, so a changed patch gets a new binary and an unchanged one is never
# rebuilt (idempotent). The stock `evcxr_jupyter` is neither needed nor touched. The build
# folder is target/evcxr-build/ (kept for fast rebuilds; safe to delete). About 12-20 minutes
# from cold on 2 cores.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VERSION="0.22.0"
PATCHES=("$HERE/patches/evcxr-$VERSION.patch" "$HERE/patches/evcxr_jupyter-$VERSION.patch")
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
WORK="$ROOT/target/evcxr-build"
PYTHON="${PYTHON:-python3}"

say() { printf '[evcxr build] %s\n' "$*" >&2; }
die() { printf '[evcxr build] ERROR: %s\n' "$*" >&2; exit 1; }

for p in "${PATCHES[@]}"; do [ -f "$p" ] || die "missing patch $p"; done
stamp="$( { echo "evcxr_jupyter $VERSION"; cat "${PATCHES[@]}"; } | sha256sum | cut -c1-12)"
BIN="$CARGO_BIN/evcxr_jupyter-klayer-$stamp"

case "${1:-}" in
    path) echo "$BIN"; exit 0 ;;
    install) ;;
    *) die "usage: $0 path|install" ;;
esac

if [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi

command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
command -v patch >/dev/null || die "patch not found (apt-get install patch)"
T0=$(date +%s)

# 1. The pristine sources, downloaded and unpacked by cargo (crates.io checksums verified):
#    a scratch package depending on evcxr_jupyter =VERSION; `cargo metadata` fetches it and
#    reports where the sources are.
fetch="$WORK/fetch"
mkdir -p "$fetch/src"
cat > "$fetch/Cargo.toml" <<EOF
[package]
name = "klayer-evcxr-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
evcxr_jupyter = "=$VERSION"
evcxr = "=$VERSION"

[workspace]
EOF
: > "$fetch/src/lib.rs"
say "fetching evcxr_jupyter $VERSION and evcxr $VERSION sources (cargo)"
cargo metadata --format-version 1 --manifest-path "$fetch/Cargo.toml" > "$fetch/metadata.json"
read -r src_jupyter src_evcxr < <("$PYTHON" - "$fetch/metadata.json" "$VERSION" <<'PY'
import json, os, sys
meta, version = json.load(open(sys.argv[1])), sys.argv[2]
dirs = {p["name"]: os.path.dirname(p["manifest_path"]) for p in meta["packages"]
        if p["version"] == version and p["source"] and p["source"].startswith("registry+")}
print(dirs["evcxr_jupyter"], dirs["evcxr"])
PY
)
[ -f "$src_jupyter/Cargo.lock" ] || die "no Cargo.lock in $src_jupyter"

# 2. A fresh copy of both, patched. evcxr_jupyter uses the patched evcxr through [patch].
src="$WORK/src"
rm -rf "$src"
mkdir -p "$src"
cp -r "$src_jupyter" "$src/evcxr_jupyter"
cp -r "$src_evcxr" "$src/evcxr"
patch --quiet --batch --forward -p1 -d "$src/evcxr" < "${PATCHES[0]}" || die "${PATCHES[0]} does not apply"
patch --quiet --batch --forward -p1 -d "$src/evcxr_jupyter" < "${PATCHES[1]}" || die "${PATCHES[1]} does not apply"
printf '\n[patch.crates-io]\nevcxr = { path = "../evcxr" }\n' >> "$src/evcxr_jupyter/Cargo.toml"

# 3. The lock file: evcxr_jupyter's own, where only evcxr's source changes (registry -> path).
#    `cargo metadata` records that change; anything else (another version) is refused.
cargo metadata --format-version 1 --manifest-path "$src/evcxr_jupyter/Cargo.toml" >/dev/null
changes="$(diff "$src_jupyter/Cargo.lock" "$src/evcxr_jupyter/Cargo.lock" | grep '^[<>]' || true)"
expected="$(grep -A3 '^name = "evcxr"$' "$src_jupyter/Cargo.lock" | grep -E '^(source|checksum) = ' | sed 's/^/< /')"
[ "$changes" = "$expected" ] || die "the lock file changed beyond evcxr's source:
$changes"

# 4. Build (release, locked) and install under the stamped name (atomically).
say "building evcxr_jupyter $VERSION + patches $stamp (about 12-20 min from cold)"
CARGO_TARGET_DIR="$WORK/target" cargo build --release --locked \
    --manifest-path "$src/evcxr_jupyter/Cargo.toml" --bin evcxr_jupyter
mkdir -p "$CARGO_BIN"
cp "$WORK/target/release/evcxr_jupyter" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
say "installed $BIN in $(( $(date +%s) - T0 )) s"
echo "$BIN"
