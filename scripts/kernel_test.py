#!/usr/bin/env python3
"""Tests of the Rust kernel that scripts/lab.sh registers (patched evcxr_jupyter, kernel.sh).

    .venv/bin/python scripts/kernel_test.py            # quick: small crates (scripts/test.sh)
    .venv/bin/python scripts/kernel_test.py --klayer   # the notebooks' own `:dep klayer` cell
    .venv/bin/python scripts/kernel_test.py -k abort   # only tests whose name contains "abort"
    .venv/bin/python scripts/kernel_test.py --kernel NAME  # test another kernel spec (an older build)

Every kernel gets a private, initially empty evcxr cache (XDG_CACHE_HOME in a temporary
folder) and its own build folder, so nothing here touches the user's ~/.cache/evcxr or the
kernels' target/evcxr-kernels. The tests, in order (later ones reuse the cache filled by
the first):

  concurrent_kernels_from_empty_cache_all_succeed
      3 kernels started at once each run the `:dep` cell (quick: a local crate using serde's
      derive and serde_json; --klayer: the notebooks' first cell) and use the crate; all
      succeed, each showed a compile status line, and no half-written cache entry is left.
  fresh_kernel_reuses_the_cache
      a new kernel (new build folder) runs the same cells: succeeds, with cache hits.
  local_crate_edit_is_seen_by_a_new_kernel
      (quick only) the local crate's source changes: a new kernel prints the new value, not
      the cached build of the old source.
  damaged_cache_heals
      artifacts in cache entries are truncated, deleted, or their list garbled; a new kernel
      still succeeds and the damaged entries are rebuilt whole.
  cells_after_the_dep_cell_compile_only_themselves
      a new kernel (new build folder, cache filled by the others) runs the :dep cell, then cells
      that use the crate or only define a variable: none of them compiles a dependency again
      (no "Compiling <crate>" on the kernel's stderr, no "Compiled in" status line, no cache
      hit). Cached crates name the kernel that stored them in their dep-info; cargo must not
      find them stale here.
  the_dep_cell_indexes_the_crates_for_the_next_cell
      a new kernel runs the :dep cell, then two cells that keep a variable of one of the crate's
      types: the :dep cell indexed the new crate graph for evcxr's type inference (its line on
      the kernel's stderr), and the first of those cells costs the kernel process little more
      CPU time than the second (before, it loaded every crate for type inference itself).
  run_all_stops_at_first_error
      like JupyterLab's Run All: five execute requests sent at once with stop_on_error; after
      the failing one (a compile error) the queued ones are answered "aborted" and print
      nothing; one sent with stop_on_error=false still runs; a later request runs normally.
  panic_and_question_mark_errors_fail_the_cell
      a panic and an error returned with `?` give an error reply (so Run All stops there), and
      the cell shows its closing line once (as JupyterLab renders the outputs; so do
      scripts/run_notebooks.py's reports of the same outputs saved in a notebook).
  stderr_arrives_before_the_reply
      a cell that writes 300 lines to stderr and then stops at `?` (or panics), five times:
      every line, then the error, arrive before the cell's idle status (clients such as
      nbgrader stop listening there); an unfinished last line arrives too, and evcxr's
      end-of-stderr marker never shows.
  kernel_sh_gives_concurrent_kernels_different_folders
      scripts/evcxr/kernel.sh hands out distinct locked build folders, then falls back.

Exit status 0 if all pass. Run scripts/lab.sh --install-only first.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO

sys.dont_write_bytecode = True  # no __pycache__ in scripts/evcxr
sys.path.insert(0, str(Path(__file__).resolve().parent / "evcxr"))
from kernel_client import NOTEBOOKS, ROOT, Kernel, dep_cells, text_of, use_project_jupyter_dirs  # noqa: E402
from nbformat.v4 import output_from_msg  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402

CELL_TIMEOUT = 1800
LOCAL_CRATE = "kt_local"
# evcxr's line on the kernel's stderr for each dependency cargo compiles (the cell's own crate,
# ctx, is not reported); the status line's "(N crates)" counts the same lines.
COMPILING_RE = re.compile(r"^\s*Compiling (\w+)", re.MULTILINE)
# The kernel's line on its stderr each time rust-analyzer has indexed a (new) crate graph.
INDEXED_RE = re.compile(r"^evcxr: indexed (\d+) crates for type inference", re.MULTILINE)
# The most CPU time (s) the kernel itself may spend on the first cell after the :dep cell beyond
# twice what the next cell costs it (0.1-0.6 s; it was 2.8 s in quick mode and 7-9 s with klayer
# when that cell loaded the crates for type inference).
FIRST_CELL_KERNEL_CPU = 1.0


class Failed(AssertionError):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


class Setup:
    """The cells under test and the private cache shared by the tests of one run."""

    def __init__(self, klayer: bool, tmp: Path, kernel_name: str = "rust"):
        self.tmp = tmp
        self.kernel_name = kernel_name
        self.cache_home = tmp / "xdg-cache"
        self.cache = self.cache_home / "evcxr"
        self.kernels = 0
        if klayer:
            self.cwd = NOTEBOOKS
            cells = dep_cells()
            check(bool(cells), "no notebook starts with a :dep cell")
            self.dep_cell = cells[0]
            self.use_cell = "println!(\"{}\", std::any::type_name::<klayer::Error>());"
            self.expected = "klayer::error::Error"
            # Cells that keep a variable of one of the crate's types, as a notebook's first
            # cells do (evcxr infers its type with rust-analyzer).
            self.typed_cells = ["use klayer::experiments::Scale;\nlet scale = Scale::from_env();",
                                "let hidden = klayer::experiments::THREE_LAYER.to_vec();"]
        else:
            self.cwd = tmp
            self.write_local_crate(1)
            self.dep_cell = f':dep {LOCAL_CRATE} = {{ path = "{LOCAL_CRATE}" }}'
            self.use_cell = f"println!(\"{{}}\", {LOCAL_CRATE}::describe());"
            self.expected = '{"value":1}'
            self.typed_cells = [f"let answer = {LOCAL_CRATE}::Answer {{ value: 3 }};",
                                f"let text = {LOCAL_CRATE}::describe();"]

    def write_local_crate(self, value: int) -> None:
        crate = self.tmp / LOCAL_CRATE
        (crate / "src").mkdir(parents=True, exist_ok=True)
        (crate / "Cargo.toml").write_text(
            f'[package]\nname = "{LOCAL_CRATE}"\nversion = "0.1.0"\nedition = "2021"\n\n'
            '[dependencies]\nserde = { version = "1", features = ["derive"] }\nserde_json = "1"\n'
        )
        (crate / "src" / "lib.rs").write_text(
            "#[derive(serde::Serialize)]\npub struct Answer { pub value: u32 }\n\n"
            f"pub fn describe() -> String {{\n    serde_json::to_string(&Answer {{ value: {value} }}).unwrap()\n}}\n"
        )

    def kernel(self, stderr: IO[str] | None = None) -> Kernel:
        """A new kernel with the private cache and a new, empty build folder (its own stderr
        to `stderr` if given)."""
        self.kernels += 1
        build = self.tmp / f"build-{self.kernels}"
        build.mkdir()
        return Kernel(self.cwd, env={"XDG_CACHE_HOME": str(self.cache_home), "EVCXR_TMPDIR": str(build)},
                      kernel_name=self.kernel_name, stderr=stderr)

    def run_dep_and_use(self) -> dict:
        """A new kernel runs the :dep cell and the cell using the crate; returns what it saw."""
        t0 = time.monotonic()
        kernel = self.kernel()
        try:
            dep_reply, dep_out = kernel.run(self.dep_cell, timeout=CELL_TIMEOUT)
            seconds = time.monotonic() - t0
            use_reply, use_out = kernel.run(self.use_cell, timeout=CELL_TIMEOUT)
        finally:
            kernel.close()
        return {
            "dep_status": dep_reply["status"],
            "dep_text": text_of(dep_out),
            "dep_outputs": dep_out,
            "use_status": use_reply["status"],
            "use_text": text_of(use_out),
            "seconds": seconds,
        }

    def entries(self) -> list[Path]:
        if not self.cache.is_dir():
            return []
        return sorted(p for p in self.cache.iterdir() if p.is_dir() and not p.name.startswith("."))

    def total_hits(self) -> int:
        total = 0
        for e in self.entries():
            try:
                total += int((e / "hits").read_text())
            except (OSError, ValueError):
                pass
        return total


def assert_success(result: dict, expected: str, who: str) -> None:
    check(result["dep_status"] == "ok", f"{who}: the :dep cell failed:\n{result['dep_text']}")
    check(result["use_status"] == "ok", f"{who}: using the crate failed:\n{result['use_text']}")
    check(expected in result["use_text"], f"{who}: expected {expected!r} in the output, got:\n{result['use_text']}")


def entry_problems(entry: Path) -> list[str]:
    """What is wrong with a cache entry: missing/unlisted files, sizes that differ from `sums`."""
    problems = []
    try:
        listed = [json.loads(line)["artifact"] for line in (entry / "stderr").read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError) as e:
        return [f"{entry.name}: artifact list unreadable ({e})"]
    try:
        sums = dict(reversed(line.split(" ", 1)) for line in (entry / "sums").read_text().splitlines())
    except (OSError, ValueError) as e:
        return [f"{entry.name}: sums unreadable ({e})"]
    if not listed:
        problems.append(f"{entry.name}: lists no artifacts")
    for artifact in listed:
        name = Path(artifact).name
        f = entry / name
        if not f.is_file():
            problems.append(f"{entry.name}: {name} missing")
        elif name not in sums or int(sums[name].split(":")[0]) != f.stat().st_size:
            problems.append(f"{entry.name}: {name} has {f.stat().st_size} bytes, sums say {sums.get(name)}")
    return problems


# ---- the tests ----------------------------------------------------------------------------

def concurrent_kernels_from_empty_cache_all_succeed(s: Setup) -> str:
    check(not s.entries(), "the private cache is not empty at the start")
    n = 3
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: s.run_dep_and_use(), range(n)))
    for i, r in enumerate(results):
        assert_success(r, s.expected, f"kernel {i + 1} of {n}")
        progress = [m for m in r["dep_outputs"] if m["content"].get("metadata", {}).get("evcxr_compile_progress")]
        check(any("Compiling" in str(m["content"]["data"].get("text/plain", "")) for m in progress),
              f"kernel {i + 1}: no 'Compiling ...' status line while compiling for {r['seconds']:.0f} s")
        check(any(str(m["content"]["data"].get("text/plain", "")).startswith("Compiled in") for m in progress),
              f"kernel {i + 1}: the status line does not say when compiling ended")
    leftovers = [p.name for p in s.cache.iterdir() if p.name.startswith(".")]
    check(not leftovers, f"scratch files left in the cache: {leftovers}")
    bad = [p for e in s.entries() for p in entry_problems(e)]
    check(not bad, "incomplete cache entries:\n" + "\n".join(bad))
    return f"{n} kernels: " + ", ".join(f"{r['seconds']:.0f} s" for r in results) + f"; {len(s.entries())} cache entries"


def fresh_kernel_reuses_the_cache(s: Setup) -> str:
    hits_before = s.total_hits()
    r = s.run_dep_and_use()
    assert_success(r, s.expected, "fresh kernel")
    hits = s.total_hits() - hits_before
    check(hits > 0, "the fresh kernel used no cache entry")
    return f":dep cell in {r['seconds']:.1f} s (kernel start included), {hits} cache hits"


def local_crate_edit_is_seen_by_a_new_kernel(s: Setup) -> str:
    if s.cwd == NOTEBOOKS:
        return "skipped (--klayer)"
    s.write_local_crate(2)
    try:
        r = s.run_dep_and_use()
        assert_success(r, '{"value":2}', "kernel after the edit")
    finally:
        s.write_local_crate(1)
    return "the edited source was compiled"


def damaged_cache_heals(s: Setup) -> str:
    # Entries every new kernel looks up: used before (hits) and of crates without dependencies
    # in the target dir (a dependent's key covers its dependencies' builds, so after one of
    # those is rebuilt, a dependent may be looked up under another key).
    entries = [e for e in s.entries() if not entry_problems(e) and int((e / "hits").read_text() or 0) > 0
               and "extern contents" not in (e / "meta").read_text()]
    check(len(entries) >= 3, f"need 3 used cache entries of leaf crates to damage, have {len(entries)}")
    by_size = sorted(entries, key=lambda e: sum(f.stat().st_size for f in e.iterdir()), reverse=True)
    truncated, deleted, garbled = by_size[0], by_size[1], by_size[2]

    def artifacts(e: Path) -> list[Path]:
        return [e / Path(json.loads(line)["artifact"]).name for line in (e / "stderr").read_text().splitlines()]

    victim = max(artifacts(truncated), key=lambda f: f.stat().st_size)
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    artifacts(deleted)[0].unlink()
    (garbled / "stderr").write_text("not json\n")
    r = s.run_dep_and_use()
    assert_success(r, s.expected, "kernel on the damaged cache")
    for e in (truncated, deleted, garbled):
        check(e.is_dir(), f"damaged entry {e.name} was not rebuilt")
        problems = entry_problems(e)
        check(not problems, "damaged entry not healed:\n" + "\n".join(problems))
    return f"3 damaged entries rebuilt; :dep cell in {r['seconds']:.1f} s"


def cells_after_the_dep_cell_compile_only_themselves(s: Setup) -> str:
    # A new build folder and a cache filled by kernels in other build folders: what a student's
    # kernel meets. Every dependency is built by the :dep cell; a later cell must not run cargo
    # (or the cache) for any of them again. (The kernel writes its stderr to the log file
    # itself, unbuffered, before it replies.)
    if not s.entries():
        s.run_dep_and_use()  # run alone (-k): fill the cache from another build folder first
    # The kernels that stored the entries are gone, and so are their build folders (evcxr
    # removes its temporary folder when a kernel exits).
    for build in s.tmp.glob("build-*"):
        shutil.rmtree(build)
    log_path = s.tmp / f"kernel-stderr-{s.kernels + 1}.log"
    cells = [s.use_cell, "let a = 40 + 2;", 'println!("a + 1 = {}", a + 1);', s.use_cell]
    with open(log_path, "w") as log:
        kernel = s.kernel(stderr=log)
        try:
            dep_reply, dep_out = kernel.run(s.dep_cell, timeout=CELL_TIMEOUT)
            check(dep_reply["status"] == "ok", f"the :dep cell failed:\n{text_of(dep_out)}")
            results = []
            for code in cells:
                hits_before = s.total_hits()
                log.flush()
                seen = log_path.stat().st_size
                t0 = time.monotonic()
                reply, out = kernel.run(code, timeout=CELL_TIMEOUT)
                seconds = time.monotonic() - t0
                text = text_of(out)
                check(reply["status"] == "ok", f"{code!r} failed:\n{text}")
                with open(log_path) as f:
                    f.seek(seen)
                    compiled = COMPILING_RE.findall(f.read())
                status = [line for line in text.splitlines() if line.startswith("Compiled in")]
                check(not compiled, f"{code!r} compiled {len(compiled)} dependency crates again "
                      f"({', '.join(compiled)}); status line: {status}")
                check(not status, f"{code!r} showed a compile status line: {status}")
                hits = s.total_hits() - hits_before
                check(hits == 0, f"{code!r} took {hits} dependencies from the cache again")
                results.append(seconds)
        finally:
            kernel.close()
    check(s.expected in text, f"expected {s.expected!r} from the last cell, got:\n{text}")
    return f"{len(cells)} cells after :dep, 0 dependency crates each, " + ", ".join(f"{t:.1f} s" for t in results)


def the_dep_cell_indexes_the_crates_for_the_next_cell(s: Setup) -> str:
    # evcxr asks rust-analyzer for the type of each variable a cell keeps. Loading the crates of a
    # new dependency graph for that (each crate's name resolution and trait impls) used to happen
    # in the first such cell after the :dep cell: with klayer 7-9 s of the kernel's own CPU time
    # (8-16 s of wall time), shown as nothing, before cargo even started. The :dep cell now does it (with a status
    # line) and says so on the kernel's stderr; the next cell costs the kernel about what later
    # cells do. Measured as the kernel process's CPU time, not wall time (the machine is shared):
    # it excludes cargo, rustc and the run of the cell, so it is the analysis alone.
    if not s.entries():
        s.run_dep_and_use()  # run alone (-k): fill the cache first
    log_path = s.tmp / f"kernel-stderr-{s.kernels + 1}.log"
    with open(log_path, "w") as log:
        kernel = s.kernel(stderr=log)
        try:
            t0 = time.monotonic()
            dep_reply, dep_out = kernel.run(s.dep_cell, timeout=CELL_TIMEOUT)
            dep_seconds = time.monotonic() - t0
            check(dep_reply["status"] == "ok", f"the :dep cell failed:\n{text_of(dep_out)}")
            log.flush()
            indexed = INDEXED_RE.findall(log_path.read_text())
            cpu, wall = [], []
            for code in s.typed_cells:
                c0, t0 = kernel.cpu_seconds(), time.monotonic()
                reply, out = kernel.run(code, timeout=CELL_TIMEOUT)
                cpu.append(kernel.cpu_seconds() - c0)
                wall.append(time.monotonic() - t0)
                check(reply["status"] == "ok", f"{code!r} failed:\n{text_of(out)}")
        finally:
            kernel.close()
    limit = FIRST_CELL_KERNEL_CPU + 2 * cpu[1]
    check(cpu[0] <= limit, f"the first cell after the :dep cell took {cpu[0]:.1f} s of the kernel's CPU "
          f"(the next one {cpu[1]:.1f} s; limit {limit:.1f} s): type inference loaded the crates itself")
    check(len(indexed) >= 2 and int(indexed[-1]) > int(indexed[0]),
          f"the :dep cell did not index the new crate graph (kernel stderr: {indexed} crates indexed)")
    return (f":dep cell {dep_seconds:.1f} s (indexed {indexed[-1]} crates); the next cells: kernel CPU "
            + ", ".join(f"{c:.2f} s" for c in cpu) + "; wall " + ", ".join(f"{w:.1f} s" for w in wall))


def run_all_stops_at_first_error(s: Setup) -> str:
    kernel = s.kernel()
    try:
        cells = [
            ("let a = 40 + 2;", True),
            ('let b: u32 = "not a number";', True),  # E0308: the failing cell
            ('println!("queued 3 ran");', True),
            ('println!("queued 4 ran");', True),
            ('println!("no stop_on_error ran");', False),
        ]
        ids = [kernel.send(code, stop_on_error=stop) for code, stop in cells]
        replies = [kernel.reply(i, CELL_TIMEOUT)["content"] for i in ids]
        texts = [text_of(kernel.outputs(i)) for i in ids]
        statuses = [r["status"] for r in replies]
        check(statuses == ["ok", "error", "aborted", "aborted", "ok"], f"reply statuses {statuses}")
        check("queued" not in "".join(texts), f"an aborted cell printed: {texts}")
        check("no stop_on_error ran" in texts[4], f"the stop_on_error=false cell did not run: {texts[4]!r}")
        later, out = kernel.run('println!("a = {a}");', timeout=CELL_TIMEOUT)
        check(later["status"] == "ok" and "a = 42" in text_of(out),
              f"a request after the abort did not run normally: {later['status']} {text_of(out)!r}")
    finally:
        kernel.close()
    return "replies ok, error, aborted, aborted, ok; then ok"


def panic_and_question_mark_errors_fail_the_cell(s: Setup) -> str:
    kernel = s.kernel()
    try:
        panic_reply, panic_out = kernel.run('let v: Vec<u32> = Vec::new();\nprintln!("{}", v[3]);', timeout=CELL_TIMEOUT)
        check(panic_reply["status"] == "error", f"a panicking cell replied {panic_reply['status']}")
        check("panicked" in text_of(panic_out), f"no panic message: {text_of(panic_out)!r}")
        q_reply, q_out = kernel.run('let n: u32 = "x".parse()?;\nprintln!("{n}");', timeout=CELL_TIMEOUT)
        check(q_reply["status"] == "error", f"a cell stopped by `?` replied {q_reply['status']}")
        check("`?`" in text_of(q_out), f"no message about `?`: {text_of(q_out)!r}")
        for what, out in (("panic", panic_out), ("`?`", q_out)):
            shown = text_of(out).count("Cells queued after it are not run")
            check(shown == 1, f"{what}: the closing line shows {shown} times: {text_of(out)!r}")
            # The same outputs saved in a notebook, as scripts/run_notebooks.py reports them.
            cell = {"outputs": [output_from_msg(m) for m in out if m["msg_type"] in ("stream", "error")]}
            for tool in (run_notebooks.error_text, run_notebooks.cell_text):
                shown = tool(cell).count("Cells queued after it are not run")
                check(shown == 1, f"{what}: run_notebooks.{tool.__name__} shows the closing line {shown} times")
        ok_reply, ok_out = kernel.run('println!("still alive");', timeout=CELL_TIMEOUT)
        check(ok_reply["status"] == "ok" and "still alive" in text_of(ok_out), "the kernel did not recover")
    finally:
        kernel.close()
    return "panic: error reply; `?`: error reply"


def stderr_arrives_before_the_reply(s: Setup) -> str:
    kernel = s.kernel()
    lines = 300
    cells = {
        "`?`": f'for i in 0..{lines} {{ eprintln!("line {{i}}"); }}\n'
               'eprint!("unfinished");\nlet n: u32 = "x".parse()?;\nprintln!("{n}");',
        "panic": f'for i in 0..{lines} {{ eprintln!("line {{i}}"); }}\n'
                 'eprint!("unfinished");\npanic!("on purpose");',
    }
    try:
        for attempt in range(5):
            for what, code in cells.items():
                msg_id = kernel.send(code)
                reply = kernel.reply(msg_id, CELL_TIMEOUT)["content"]
                out = kernel.outputs(msg_id)
                check(reply["status"] == "error", f"{what}, attempt {attempt}: reply {reply['status']}")
                kinds = [m["msg_type"] for m in out]
                stderr = "".join(m["content"]["text"] for m in out
                                 if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
                got = [i for i in range(lines) if f"line {i}\n" in stderr]
                check(len(got) == lines, f"{what}, attempt {attempt}: {len(got)} of {lines} stderr "
                      f"lines before idle (the rest came late)")
                check("unfinished" in stderr, f"{what}, attempt {attempt}: the unfinished last line is missing")
                check("EVCXR_STDERR_COMPLETE" not in stderr, f"{what}: the kernel's marker showed")
                check("error" in kinds, f"{what}, attempt {attempt}: no error output before idle: {kinds}")
                last_stream = max(i for i, k in enumerate(kinds) if k == "stream")
                check(last_stream < kinds.index("error"),
                      f"{what}, attempt {attempt}: stderr after the error output: {kinds}")
        ok_reply, ok_out = kernel.run('println!("quiet");', timeout=CELL_TIMEOUT)
        text = text_of(ok_out)
        check(ok_reply["status"] == "ok" and "quiet" in text and "line " not in text
              and "unfinished" not in text, f"the next cell got: {text!r}")
    finally:
        kernel.close()
    return f"5 × (`?`, panic): all {lines} stderr lines, then the error, before idle"


def kernel_sh_gives_concurrent_kernels_different_folders(s: Setup) -> str:
    base = s.tmp / "slots"
    env = {k: v for k, v in os.environ.items() if k != "EVCXR_TMPDIR"}
    env["KLAYER_EVCXR_KERNELS_DIR"] = str(base)
    script = ROOT / "scripts" / "evcxr" / "kernel.sh"
    # Each fake kernel prints its folder, then holds it until stdin closes.
    procs = [subprocess.Popen([str(script), "sh", "-c", 'echo "${EVCXR_TMPDIR:-fresh}"; cat >/dev/null'],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(5)]
    try:
        dirs = [p.stdout.readline().strip() for p in procs]
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=30)
    want = sorted([str(base / str(i)) for i in range(1, 5)] + ["fresh"])
    check(sorted(dirs) == want, f"folders handed out: {dirs}")
    again = subprocess.run([str(script), "sh", "-c", 'echo "${EVCXR_TMPDIR:-fresh}"'], env=env,
                           capture_output=True, text=True, timeout=30).stdout.strip()
    check(again == str(base / "1"), f"a released folder was not handed out again: {again}")
    return "4 locked folders, then a fresh one; released folders are reused"


TESTS = [
    concurrent_kernels_from_empty_cache_all_succeed,
    fresh_kernel_reuses_the_cache,
    local_crate_edit_is_seen_by_a_new_kernel,
    damaged_cache_heals,
    cells_after_the_dep_cell_compile_only_themselves,
    the_dep_cell_indexes_the_crates_for_the_next_cell,
    run_all_stops_at_first_error,
    panic_and_question_mark_errors_fail_the_cell,
    stderr_arrives_before_the_reply,
    kernel_sh_gives_concurrent_kernels_different_folders,
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--klayer", action="store_true", help="use the notebooks' :dep klayer cell (slow from cold)")
    ap.add_argument("-k", dest="select", default="", help="run only tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (cache, build folders)")
    ap.add_argument("--kernel", default="rust", help="the kernel spec to test (default: rust, registered by "
                    "scripts/lab.sh; another one to compare an older build)")
    args = ap.parse_args()
    use_project_jupyter_dirs()
    tmp = Path(tempfile.mkdtemp(prefix="klayer-kernel-test-"))
    failed = 0
    t_all = time.monotonic()
    try:
        setup = Setup(args.klayer, tmp, args.kernel)
        for test in TESTS:
            if args.select not in test.__name__:
                continue
            t0 = time.monotonic()
            try:
                note = test(setup)
                print(f"PASS {test.__name__} ({time.monotonic() - t0:.0f} s): {note}", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure, go on with the rest
                failed += 1
                detail = str(e) if isinstance(e, Failed) else traceback.format_exc()
                print(f"FAIL {test.__name__} ({time.monotonic() - t0:.0f} s):\n{detail}", flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"kernel tests: {'all passed' if not failed else f'{failed} failed'} in {time.monotonic() - t_all:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
