#!/usr/bin/env python3
"""Execute the project's Rust notebooks headless on the evcxr kernel.

    .venv/bin/python scripts/run_notebooks.py                  # quick mode, all notebooks/*.ipynb
    .venv/bin/python scripts/run_notebooks.py notebooks/03_x.ipynb
    .venv/bin/python scripts/run_notebooks.py --full --write   # refresh the committed outputs
    .venv/bin/python scripts/run_notebooks.py --tips           # run every tip of every notebook

Quick mode (default) sets KLAYER_QUICK=1 in the kernel's environment; --full runs at full
size (KLAYER_QUICK removed from the environment) and writes the outputs back into the
notebook files (--no-write to keep them as they are); --write also writes back in quick
mode. The executed copy of every notebook always goes to target/notebooks/<name>.ipynb (and
the kernel's own output, cargo's "Compiling ..." lines, to <name>.kernel.log beside it).
Written notebooks have volatile metadata (timestamps, kernel session ids) stripped so that
a re-run without changes gives the same file; a failed notebook is never written back.

A cell fails on an error reply (compile error, `?` error) and also on a panic: evcxr
catches panics and replies "ok", so the runner looks for Rust's panic message in the
cell's stderr (a cell tagged "raises-exception" may fail on purpose). The failing cell's
source and error are printed. Per-cell timeout: 600 s quick, 1800 s full (--timeout).

Notebooks run one after the other (2 cores), each with its own folder as the kernel's cwd,
so `:dep klayer = { path = ".." }` resolves. The kernel spec that scripts/lab.sh registers
switches on evcxr's compilation cache (`:cache`, for registry crates) so that later
notebooks reuse the dependencies compiled by earlier ones, and turns off evcxr's
debug-assertions/overflow-checks.

--tips runs the notebooks' tips instead of the notebooks (quick mode, nothing written). The
parameter cell of a notebook carries the tag "parameters"; a tip is either a comment on one of
its `let` lines, "try `A`" or "try `A` or `B`" (the value is replaced by A, then by B), or a
sentence anywhere in the notebook, "replace `X` with `Y`" (X, which must occur exactly once in
the parameter cell, is replaced by Y). The cell's metadata "klayer" may add "also": [[X, Y]]
(more replacements that must work) and "bad": [[X, Y, message]] (replacements that must stop
the parameter cell with exactly that one message from the crate, and no compile error). For
each tip the runner executes, in one kernel per notebook, the cells above the parameter cell
once, then the changed parameter cell and every cell tagged "tip-check". A tip worded in a
form it cannot run ("set `x` to `...`") fails the run, so no tip goes untested.

Exit status: 0 if every notebook ran without a cell error, 1 otherwise. The last line printed
is `N passed, M failed`.
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
except ImportError:  # started with a Python that lacks the venv's packages
    import venv_python
    venv_python.reexec_or_exit(__file__, "nbclient/nbformat")

sys.path.insert(0, str(ROOT / "scripts" / "evcxr"))
from kernel_client import output_text  # noqa: E402

QUICK_TIMEOUT = 600
FULL_TIMEOUT = 1800
# Notebook-level metadata worth keeping; everything else (papermill, widgets state,
# execution timestamps, ...) is dropped when writing back.
KEEP_NB_METADATA = ("kernelspec", "language_info")
# Cell metadata that nbclient or JupyterLab add and that changes on every run.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "papermill", "trusted")


# evcxr catches a panic in a cell, prints it on stderr and still answers "ok": we look for
# Rust's panic message in the cell's stderr and count it as a cell error (unless the cell
# carries the tag "raises-exception", nbclient's own opt-out for cells that are meant to fail).
PANIC_RE = re.compile(r"^thread '[^']*'(?: \(\d+\))? panicked at ", re.MULTILINE)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CellPanicked(Exception):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def strip_volatile(nb: "nbformat.NotebookNode") -> "nbformat.NotebookNode":
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.NotebookNode(
        {k: nb.metadata[k] for k in KEEP_NB_METADATA if k in nb.metadata}
    )
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        # The kernel's status lines ("Compiling ... / Compiled in N s", "Indexing ... / Indexed in
        # N s") depend on the cache's state and the machine.
        cell.outputs = [o for o in cell.get("outputs", [])
                        if not o.get("metadata", {}).get("evcxr_compile_progress")]
        for out in cell.outputs:
            out.pop("transient", None)  # per-session display ids
    return nb


def error_text(cell) -> str:
    """A failed cell's stderr and error, as JupyterLab shows them."""
    lines = [output_text(out).rstrip() for out in cell.get("outputs", [])
             if out.get("output_type") == "error" or (out.get("output_type") == "stream" and out.get("name") == "stderr")]
    return ANSI_RE.sub("", "\n".join(l for l in lines if l))


def stderr_text(cell) -> str:
    return "".join(
        out.get("text", "") for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    )


def earlier_stderr_hint(nb, idx: int) -> None:
    """A `?` error in a cell is only printed on that cell's stderr (evcxr replies "ok" and
    drops the cell's new variables), so a later cell fails instead: show earlier stderr."""
    shown = 0
    for j in range(idx - 1, -1, -1):
        cell = nb.cells[j]
        text = ANSI_RE.sub("", stderr_text(cell)).strip() if cell.cell_type == "code" else ""
        if not text:
            continue
        if shown == 0:
            log("  note: earlier cells wrote to stderr; a `?` error there is reported only this way:")
        log(f"  cell {j} stderr (last lines):")
        log(indent("\n".join(text.splitlines()[-4:])))
        shown += 1
        if shown == 3:
            break


def indent(text: str, prefix: str = "    | ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


class TimedClient(NotebookClient):
    """NotebookClient that logs each code cell's wall time as it finishes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._t_cell = 0.0
        self.on_cell_execute = self._cell_start
        self.on_cell_executed = self._cell_done

    def _cell_start(self, cell, cell_index, **_):
        self._t_cell = time.monotonic()
        first = next((l for l in cell.source.splitlines() if l.strip()), "")
        self.current_cell = (cell_index, first[:70])

    def _cell_done(self, cell, cell_index, execute_reply=None, **_):
        dt = time.monotonic() - self._t_cell
        status = (execute_reply or {}).get("content", {}).get("status", "?")
        first = self.current_cell[1]
        panicked = (
            status == "ok"
            and "raises-exception" not in cell.metadata.get("tags", [])
            and PANIC_RE.search(stderr_text(cell))
        )
        log(f"    cell {cell_index:>3} {dt:7.1f} s  {'panic' if panicked else status:<5} {first}")
        if panicked:
            raise CellPanicked(f"cell {cell_index} panicked")


# Tips (see --tips in the docstring).
REPLACE_RE = re.compile(r"replace\s+`([^`]+)`\s+with\s+`([^`]+)`")
TRY_RE = re.compile(r"\btry\s+(`[^`]+`(?:\s*(?:,|or)\s*`[^`]+`)*)")
LET_RE = re.compile(r"^(\s*let\s+(?:mut\s+)?\w+(?:\s*:\s*[^=]+?)?\s*=\s*)(.+?);(\s*//.*)$")
# Tip-like wording the runner cannot execute: must be rewritten in one of the forms above.
UNRUNNABLE_RE = re.compile(r"\b(?:set|change)\s+`[^`]+`\s+to\s+`", re.IGNORECASE)
SETTING_RE = re.compile(r"invalid setting `(\w+)`: (.*)")


def collect_tips(nb) -> tuple[int | None, list, list, list]:
    """(index of the parameter cell, tips, bad values, problems). A tip is (description,
    new source of the parameter cell); a bad value is (description, new source, message)."""
    params = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    problems = []
    for i, cell in enumerate(nb.cells):
        for m in UNRUNNABLE_RE.finditer(cell.source):
            problems.append(f"cell {i}: tip {m.group(0)!r}... is not in a form the test can run "
                            "(write \"replace `X` with `Y`\" or a \"try `Y`\" comment)")
    if len(params) != 1:
        if any(REPLACE_RE.search(c.source) for c in nb.cells):
            problems.append(f"{len(params)} cells tagged 'parameters'; tips need exactly one")
        return None, [], [], problems
    p = params[0]
    source = nb.cells[p].source
    tips, bad = [], []

    def replaced(old, new, where):
        if source.count(old) != 1:
            problems.append(f"{where}: `{old}` occurs {source.count(old)} times in the parameter cell (cell {p}), not once")
            return None
        return source.replace(old, new)

    for line in source.splitlines():
        m = LET_RE.match(line)
        if not m:
            continue
        for t in TRY_RE.finditer(m.group(3)):
            for alt in re.findall(r"`([^`]+)`", t.group(1)):
                new = replaced(line, f"{m.group(1)}{alt};{m.group(3)}", f"tip on `{line.strip()}`")
                if new is not None:
                    tips.append((f"`{m.group(1).strip()} {alt};`", new))
    for i, cell in enumerate(nb.cells):
        for m in REPLACE_RE.finditer(cell.source):
            new = replaced(m.group(1), m.group(2), f"cell {i}: tip {m.group(0)!r}")
            if new is not None:
                tips.append((f"replace `{m.group(1)}` with `{m.group(2)}`", new))
    meta = nb.cells[p].metadata.get("klayer", {})
    for old, new_text in meta.get("also", []):
        new = replaced(old, new_text, f"'also' {old!r}")
        if new is not None:
            tips.append((f"`{new_text}`", new))
    for old, new_text, message in meta.get("bad", []):
        new = replaced(old, new_text, f"'bad' {old!r}")
        if new is not None:
            bad.append((f"`{new_text}`", new, message))
    if not tips and not bad:
        problems.append(f"the parameter cell (cell {p}) has no tip and no bad value")
    return p, tips, bad, problems


def cell_text(cell) -> str:
    """All a cell showed, as JupyterLab shows it."""
    return ANSI_RE.sub("", "\n".join(output_text(out) for out in cell.get("outputs", [])))


def run_tips(path: Path, args) -> bool:
    """Runs every tip and bad value of one notebook (see the docstring); True if all behave."""
    log(f"=== tips of {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    nb = nbformat.read(path, as_version=4)
    p, tips, bad, problems = collect_tips(nb)
    for problem in problems:
        log(f"  PROBLEM: {problem}")
    if p is None:
        log("  no parameter cell and no tips" if not problems else "  FAIL")
        return not problems
    checks = [i for i, c in enumerate(nb.cells) if "tip-check" in c.metadata.get("tags", [])]
    if not checks:
        problems.append("no cell is tagged 'tip-check'")
        log(f"  PROBLEM: {problems[-1]}")
    log(f"  {len(tips)} tip(s), {len(bad)} bad value(s); parameter cell {p}, then cells {checks}")
    kernel = args.kernel or nb.metadata.get("kernelspec", {}).get("name") or "rust"
    client = NotebookClient(nb, timeout=args.timeout, startup_timeout=120, kernel_name=kernel,
                            allow_errors=True, resources={"metadata": {"path": str(path.parent)}})
    original = nb.cells[p].source
    ok = not problems

    def run(idx, source=None):
        cell = copy.deepcopy(nb.cells[idx])
        if source is not None:
            cell.source = source
        cell.outputs = []
        nb.cells[idx] = cell
        client.execute_cell(cell, idx)
        text = cell_text(cell)
        failed = any(o.get("output_type") == "error" for o in cell.outputs) or PANIC_RE.search(text) \
            or re.search(r"^Error\b|\berror\[E\d+\]", text, re.MULTILINE)
        return not failed, text

    kernel_log = open(args.out_dir.resolve() / f"{path.stem}.tips.kernel.log", "wb")
    try:
        with client.setup_kernel(stdout=kernel_log, stderr=kernel_log):
            for i in range(p):
                if nb.cells[i].cell_type == "code":
                    good, text = run(i)
                    if not good:
                        log(f"  FAIL: setup cell {i} failed:\n{indent(text)}")
                        return False
            for desc, source in tips:
                t = time.monotonic()
                for idx, src in [(p, source)] + [(i, None) for i in checks]:
                    good, text = run(idx, src)
                    if not good:
                        ok = False
                        log(f"  FAIL tip {desc}: cell {idx}:\n{indent(text.strip()[-3000:])}")
                        break
                else:
                    log(f"  ok   tip {desc} ({time.monotonic() - t:.1f} s)")
            for desc, source, message in bad:
                # The patched kernel sends a cell's stderr (where a `?` error is printed)
                # before its reply, so the message is in the cell's own outputs.
                _, text = run(p, source)
                m = SETTING_RE.match(message)
                # The crate's message, whether the kernel shows the error's Display or Debug form.
                wanted = [m.group(1), m.group(2)] if m else [message]
                compile_error = re.search(r"\berror\[E\d+\]", text)
                if all(w in text for w in wanted) and not compile_error and not PANIC_RE.search(text):
                    log(f"  ok   bad value {desc}: {message}")
                else:
                    ok = False
                    log(f"  FAIL bad value {desc}: expected one message with {wanted}, got:\n{indent(text.strip()[-3000:])}")
            good, text = run(p, original)
            if not good:
                ok = False
                log(f"  FAIL: the original parameter cell failed after the tips:\n{indent(text)}")
    except Exception as e:  # kernel failed to start, timeout, ...
        ok = False
        log(f"  FAILED: {type(e).__name__}: {e}")
    finally:
        kernel_log.close()
    log(f"  {'PASS' if ok else 'FAIL'} tips of {path.name}")
    return ok


def run_one(path: Path, args, out_dir: Path) -> bool:
    log(f"=== {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    nb = nbformat.read(path, as_version=4)
    kernel = args.kernel or nb.metadata.get("kernelspec", {}).get("name") or "rust"
    client = TimedClient(
        nb,
        timeout=args.timeout,
        startup_timeout=120,
        kernel_name=kernel,
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel_log_path = out_dir / f"{path.stem}.kernel.log"
    kernel_log = open(kernel_log_path, "wb")
    t0 = time.monotonic()
    ok = True
    show_kernel_log = False  # for failures that are not a cell's own error
    try:
        # The kernel's own stdout/stderr (cargo's "Compiling ..." lines) go to a log file.
        client.execute(stdout=kernel_log, stderr=kernel_log)
    except CellTimeoutError as e:
        ok = False
        idx, _ = getattr(client, "current_cell", (None, ""))
        show_kernel_log = True
        log(f"  TIMEOUT after {args.timeout} s in cell {idx}:")
        if idx is not None:
            log(indent(nb.cells[idx].source))
        log(indent(str(e).strip().splitlines()[0] if str(e).strip() else "timeout"))
    except DeadKernelError as e:
        ok = False
        idx, _ = getattr(client, "current_cell", (None, ""))
        show_kernel_log = True
        log(f"  KERNEL DIED in cell {idx}: {e}")
        if idx is not None:
            log(indent(nb.cells[idx].source))
    except CellExecutionError as e:
        ok = False
        idx, _ = getattr(client, "current_cell", (None, ""))
        log(f"  CELL ERROR in cell {idx}:")
        if idx is not None:
            cell = nb.cells[idx]
            log("  source:")
            log(indent(cell.source))
            log("  error:")
            log(indent(error_text(cell) or str(e)))
            earlier_stderr_hint(nb, idx)
        else:
            log(indent(str(e)))
    except CellPanicked:
        ok = False
        idx, _ = client.current_cell
        cell = nb.cells[idx]
        log(f"  PANIC in cell {idx}:")
        log("  source:")
        log(indent(cell.source))
        log("  stderr:")
        log(indent(ANSI_RE.sub("", stderr_text(cell)).strip()))
    except Exception as e:  # kernel failed to start, etc.
        ok = False
        show_kernel_log = True
        log(f"  FAILED: {type(e).__name__}: {e}")
    dt = time.monotonic() - t0
    kernel_log.close()
    if show_kernel_log:
        tail = kernel_log_path.read_text(errors="replace").splitlines()[-25:]
        if tail:
            log(f"  last lines of the kernel's log {kernel_log_path}:")
            log(indent("\n".join(tail)))

    clean = strip_volatile(nb)
    executed = out_dir / path.name
    nbformat.write(clean, executed)
    if args.write and ok:
        nbformat.write(clean, path)
        log(f"  wrote outputs back into {path.name}")
    elif args.write:
        log(f"  not writing {path.name}: it failed")
    log(f"  {'PASS' if ok else 'FAIL'} {path.name} in {dt:.1f} s (executed copy: {executed.relative_to(ROOT) if executed.is_relative_to(ROOT) else executed})")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    ap.add_argument("--full", action="store_true", help="full size (no KLAYER_QUICK); implies --write unless --no-write")
    ap.add_argument("--write", action="store_true", default=None, help="write outputs back into the notebook files")
    ap.add_argument("--no-write", dest="write", action="store_false", help="never write back (also with --full)")
    ap.add_argument("--timeout", type=int, default=None, help=f"per-cell timeout in s (default {QUICK_TIMEOUT} quick, {FULL_TIMEOUT} full)")
    ap.add_argument("--tips", action="store_true", help="run every notebook's tips instead (quick mode, nothing written)")
    ap.add_argument("--kernel", default=None, help="kernel name (default: the notebook's kernelspec, else 'rust')")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "target" / "notebooks", help="where executed copies go")
    ap.add_argument("--evcxr-dir", type=Path, default=ROOT / "target" / "evcxr",
                    help="evcxr's build folder (EVCXR_TMPDIR), shared by the notebooks of this run and kept "
                         "between runs so klayer itself is not rebuilt per notebook; 'none' for evcxr's default "
                         "(a fresh temporary folder per kernel)")
    args = ap.parse_args()

    if args.tips and (args.full or args.write):
        ap.error("--tips runs in quick mode and writes nothing: drop --full/--write")
    if args.write is None:
        args.write = args.full
    if args.timeout is None:
        args.timeout = FULL_TIMEOUT if args.full else QUICK_TIMEOUT

    if args.full:
        os.environ.pop("KLAYER_QUICK", None)
    else:
        os.environ["KLAYER_QUICK"] = "1"

    # Jupyter state in the project (like scripts/lab.sh), so that a "rust" kernel spec in the
    # user's ~/.local/share/jupyter cannot shadow the venv's (which carries EVCXR_CONFIG_DIR).
    jhome = ROOT / ".jupyter-home"
    os.environ.setdefault("JUPYTER_CONFIG_DIR", str(jhome / "config"))
    os.environ.setdefault("JUPYTER_DATA_DIR", str(jhome / "data"))
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(jhome / "runtime"))

    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        log("no notebooks")
        log("0 passed, 0 failed")
        return 0
    missing = [p for p in paths if not p.is_file()]
    if missing:
        for p in missing:
            log(f"no such notebook: {p}")
        log(f"0 passed, {len(missing)} failed")
        return 1

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in sorted({args.kernel or nbformat.read(p, as_version=4).metadata.get("kernelspec", {}).get("name") or "rust" for p in paths}):
        try:
            spec = ksm.get_kernel_spec(name)
            log(f"kernel {name}: {spec.resource_dir} ({spec.argv[0]}{', ' + ' '.join(f'{k}={v}' for k, v in spec.env.items()) if spec.env else ''})")
        except NoSuchKernel:
            log(f"kernel {name}: not found; run scripts/lab.sh --install-only")

    # evcxr compiles each kernel's cells in EVCXR_TMPDIR (default: a new temporary folder per
    # kernel). One shared, persistent folder lets cargo reuse the build of the local klayer
    # crate across notebooks and runs (`:cache` only covers registry crates). Kernels that
    # share it must not run at the same time: an exclusive lock guards it, and a second
    # concurrent runner falls back to evcxr's default.
    lock_file = None
    if str(args.evcxr_dir) != "none":
        evcxr_dir = args.evcxr_dir.resolve()
        evcxr_dir.mkdir(parents=True, exist_ok=True)
        lock_file = open(evcxr_dir / ".run_notebooks.lock", "w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.environ["EVCXR_TMPDIR"] = str(evcxr_dir)
            # evcxr's `:cache` (in ~/.cache/evcxr) is shared with every other kernel: the
            # patched kernel (scripts/evcxr/patches) makes it safe for concurrent kernels, and
            # `scripts/lab.sh` has already compiled klayer and its dependencies into it.
            log(f"evcxr build folder: {evcxr_dir}")
        except BlockingIOError:
            lock_file.close()
            lock_file = None
            log(f"evcxr build folder {evcxr_dir} is in use by another run: using a fresh one per kernel")

    mode = "full" if args.full else "quick (KLAYER_QUICK=1)"
    log(f"running {len(paths)} notebook(s), {mode}, cell timeout {args.timeout} s, write-back: {'yes' if args.write else 'no'}")
    passed = failed = 0
    t0 = time.monotonic()
    summary = []
    for p in paths:
        t = time.monotonic()
        args.out_dir.resolve().mkdir(parents=True, exist_ok=True)
        ok = run_tips(p, args) if args.tips else run_one(p, args, args.out_dir.resolve())
        summary.append((p.name, ok, time.monotonic() - t))
        passed += ok
        failed += not ok
    log("")
    for name, ok, dt in summary:
        log(f"  {'PASS' if ok else 'FAIL'}  {dt:7.1f} s  {name}")
    log(f"total {time.monotonic() - t0:.1f} s")
    log(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
