#!/usr/bin/env python3
"""The exercise notebooks in assignment/ with nbgrader: student versions and autograding.

Run it through scripts/assignment.sh, which installs what it needs first:

    scripts/assignment.sh generate                 # student versions -> assignment/release/
    scripts/assignment.sh grade SUBMISSIONS_DIR    # autograde, score table, feedback HTML
    scripts/assignment.sh lab                      # JupyterLab on assignment/ (scripts/lab.sh)

generate [ASSIGNMENT ...]
    Runs `nbgrader generate_assignment` on assignment/source/<A>/ for every assignment (or
    those named): solution regions become `// YOUR CODE HERE` + `todo!()`, hidden tests are
    removed, outputs cleared, and the graded cells are recorded in assignment/gradebook.db.
    Writes assignment/release/<A>/<A>.ipynb. Runs no kernel.

grade SUBMISSIONS_DIR [--full] [--timeout S] [--json FILE]
    SUBMISSIONS_DIR holds one folder per student (the folder's name is the student id), with
    either <A>.ipynb files or nbgrader's <A>/<A>.ipynb folders in it. Each notebook is copied
    to assignment/submitted/<student>/<A>/, executed on the Rust kernel by `nbgrader
    autograde` (its graded cells and hidden tests restored from the instructor version first),
    and gets feedback HTML in assignment/feedback/<student>/<A>/<A>.html. Prints a score table
    per student, notebook and graded cell; --json writes the same as JSON. Training cells run
    at quick size (KLAYER_QUICK=1) unless --full; per-cell timeout 600 s (--timeout).
    Exit status 0 if every notebook was executed (whatever the scores), 1 otherwise.

--course DIR (both commands) uses another course directory than assignment/: the instructor
versions are copied into DIR/source/ and DIR/nbgrader_config.py loads assignment/'s (this is
what scripts/assignment_test.py does, so that it never touches a teacher's gradebook).

Kernels reuse klayer and its dependencies from evcxr's shared cache (compiled once by
scripts/lab.sh's warm-up), each in one of scripts/evcxr/kernel.sh's build folders. Nothing is downloaded when
klayer's dependencies are in cargo's cache (cargo runs with CARGO_NET_OFFLINE=true unless the
environment says otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "assignment"
VENV = ROOT / ".venv"
NBGRADER = VENV / "bin" / "nbgrader"
DEFAULT_TIMEOUT = 600
# A student id or assignment name nbgrader accepts and that is safe as a folder name.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

try:
    import nbformat
except ImportError:  # started with a Python that lacks the venv's packages
    import venv_python
    venv_python.reexec_or_exit(__file__, "nbformat", "run scripts/assignment.sh (it installs the venv)")


class Failure(Exception):
    """An error with a message for the user; printed without a traceback."""


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- course directory -------------------------------------------------------------------------

def assignments_in(course: Path) -> list[str]:
    """The assignments of a course: folders of source/ holding a notebook of the same name."""
    src = course / "source"
    return sorted(p.name for p in src.iterdir() if (p / f"{p.name}.ipynb").is_file()) if src.is_dir() else []


def prepare_course(course: Path) -> Path:
    """Returns the course directory, setting up a non-default one: a copy of the instructor
    versions and an nbgrader_config.py that loads assignment/'s."""
    course = course.resolve()
    if course == COURSE.resolve():
        return course
    course.mkdir(parents=True, exist_ok=True)
    config = course / "nbgrader_config.py"
    config.write_text(
        "# Written by scripts/assignment.py: the project's nbgrader configuration.\n"
        f"load_subconfig({str(COURSE / 'nbgrader_config.py')!r})\n"
    )
    if (course / "source").exists():
        shutil.rmtree(course / "source")
    shutil.copytree(COURSE / "source", course / "source",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return course


class Nbgrader:
    """nbgrader's Python API on one course directory, in this process (each `nbgrader` command
    line would pay seconds of start-up), with its log appended to <course>/nbgrader.log."""

    def __init__(self, course: Path, timeout: int | None = None):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        # nbgrader's gradebook code triggers SQLAlchemy warnings about its own sessions.
        warnings.filterwarnings("ignore", module=r"nbgrader\.")
        # nbgrader runs the venv's `alembic` (gradebook migrations) by name.
        os.environ["PATH"] = f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
        config.CourseDirectory.root = str(course)
        if timeout is not None:
            config.Execute.timeout = timeout
        self.log_file = course / "nbgrader.log"
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

    def run(self, what: str, *args, **kwargs) -> bool:
        result = getattr(self.api, what)(*args, **kwargs)
        with open(self.log_file, "a") as out:
            out.write(f"\n=== {what}{args} [{time.strftime('%Y-%m-%d %H:%M:%S')}]\n")
            out.write(result.get("log", ""))
            if result.get("error"):
                out.write(result["error"])
        return bool(result.get("success"))


def graded_cells(notebook: Path) -> list[tuple[str, float]]:
    """(grade id, points) of every autograded test cell, in notebook order."""
    nb = nbformat.read(notebook, as_version=4)
    out = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and cell.cell_type == "code":
            out.append((meta["grade_id"], float(meta.get("points", 0))))
    return out


# --- generate ---------------------------------------------------------------------------------

def generate(course: Path, names: list[str], quiet: bool = False) -> list[Path]:
    """Student versions of the named assignments (all if none) in <course>/release/."""
    available = assignments_in(course)
    if not available:
        raise Failure(f"no assignments in {course / 'source'} (expected source/<A>/<A>.ipynb)")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise Failure(f"no such assignment: {', '.join(unknown)} (there are: {', '.join(available)})")
    nbg = Nbgrader(course)
    written = []
    for name in names or available:
        ok = nbg.run("generate_assignment", name, force=True)
        out = course / "release" / name / f"{name}.ipynb"
        if not ok or not out.is_file():
            raise Failure(f"nbgrader generate_assignment {name} failed; see {nbg.log_file}:\n"
                          + tail(nbg.log_file))
        check_release(out)
        written.append(out)
        if not quiet:
            log(f"  {out.relative_to(course.parent) if out.is_relative_to(course.parent) else out}: "
                f"{len(graded_cells(out))} graded cells, "
                f"{sum(p for _, p in graded_cells(out)):g} points")
    return written


def check_release(path: Path) -> None:
    """A student version must not contain solutions or hidden tests."""
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        if marker in text:
            raise Failure(f"{path} still contains '{marker}': a region is not inside a solution or test cell")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join("    | " + l for l in path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    | (no log)"


# --- grade ------------------------------------------------------------------------------------

def collect(submissions: Path, course: Path, available: list[str]) -> dict[str, list[str]]:
    """Copies SUBMISSIONS_DIR/<student>/{<A>.ipynb,<A>/<A>.ipynb} into course/submitted/.
    Returns {student: [assignments]}."""
    if not submissions.is_dir():
        raise Failure(f"{submissions} is not a folder (expected one folder per student)")
    found: dict[str, list[str]] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        if not ID_RE.match(student):
            log(f"  skipping {student_dir}: a student id may hold letters, digits, '_', '.' and '-'")
            continue
        for name in available:
            candidates = [student_dir / name / f"{name}.ipynb", student_dir / f"{name}.ipynb"]
            nb = next((c for c in candidates if c.is_file()), None)
            if nb is None:
                continue
            try:
                nbformat.read(nb, as_version=4)
            except Exception as e:  # not a notebook: graded as missing, said loudly
                log(f"  {student}: {nb} is not a readable notebook ({type(e).__name__}: {e}); skipped")
                continue
            dest = course / "submitted" / student / name
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            shutil.copy2(nb, dest / f"{name}.ipynb")
            found.setdefault(student, []).append(name)
        others = sorted(p.name for p in student_dir.glob("*.ipynb") if p.stem not in available)
        if others:
            log(f"  {student}: ignoring {', '.join(others)} (not one of {', '.join(available)})")
    if not found:
        raise Failure(f"no submissions in {submissions}: expected <student>/<A>.ipynb or "
                      f"<student>/<A>/<A>.ipynb with A one of {', '.join(available)}")
    return found


def set_kernel_env(full: bool) -> None:
    """The environment the kernels inherit (nbgrader starts them from this process)."""
    env = os.environ
    if full:
        env.pop("KLAYER_QUICK", None)
    else:
        env["KLAYER_QUICK"] = "1"
    # Build folders and compiled crates: each kernel gets one of scripts/evcxr/kernel.sh's
    # persistent folders, and klayer with its dependencies comes from evcxr's shared :cache
    # (safe for concurrent kernels with the patched kernel; warmed by scripts/lab.sh).
    env.setdefault("CARGO_NET_OFFLINE", "true")
    # Jupyter state in the project (as scripts/lab.sh), so that the venv's "rust" kernel spec
    # is the one found.
    jhome = ROOT / ".jupyter-home"
    env.setdefault("JUPYTER_CONFIG_DIR", str(jhome / "config"))
    env.setdefault("JUPYTER_DATA_DIR", str(jhome / "data"))
    env.setdefault("JUPYTER_RUNTIME_DIR", str(jhome / "runtime"))
    cargo_bin = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo")) / "bin"
    env["PATH"] = f"{cargo_bin}:{env.get('PATH', '')}"


def grade(course: Path, submissions: Path, full: bool, timeout: int) -> dict:
    """Autogrades every notebook in SUBMISSIONS_DIR and writes its feedback; returns the
    results with the scores (see add_scores)."""
    available = assignments_in(course)
    log(f"instructor versions: {', '.join(available)} (recording their graded cells)")
    generate(course, [], quiet=True)
    found = collect(submissions.resolve(), course, available)
    n = sum(len(v) for v in found.values())
    log(f"{n} notebook(s) from {len(found)} student(s) in {submissions}; "
        f"{'full' if full else 'quick (KLAYER_QUICK=1)'} size, cell timeout {timeout} s")
    set_kernel_env(full)
    nbg = Nbgrader(course, timeout)
    results: dict = {"students": {}, "failed": []}
    for student, names in found.items():
        for name in names:
            t0 = time.monotonic()
            ok = nbg.run("autograde", name, student, force=True, create=True)
            dt = time.monotonic() - t0
            graded = course / "autograded" / student / name / f"{name}.ipynb"
            problem = None if ok and graded.is_file() else "nbgrader autograde failed"
            if problem is None:
                problem = execution_problem(graded)
            ok_fb = nbg.run("generate_feedback", name, student, force=True)
            feedback = course / "feedback" / student / name / f"{name}.html"
            if problem is None and (not ok_fb or not feedback.is_file()):
                problem = "nbgrader generate_feedback failed"
            entry = {"seconds": round(dt, 1), "feedback": str(feedback) if feedback.is_file() else None,
                     "autograded": str(graded) if graded.is_file() else None, "problem": problem}
            results["students"].setdefault(student, {})[name] = entry
            log(f"  {student:<16} {name:<24} {dt:6.1f} s  {'ok' if problem is None else 'FAILED: ' + problem}")
            if problem:
                results["failed"].append(f"{student}/{name}")
    add_scores(course, results)
    return results


def execution_problem(graded: Path) -> str | None:
    """A problem with the execution itself (not the student's answers): a timeout or a dead
    kernel, which leave the rest of the notebook unexecuted."""
    nb = nbformat.read(graded, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and out.get("ename") in ("CellTimeoutError", "DeadKernelError"):
                return f"{out.get('ename')} in cell {i}"
    return None


def add_scores(course: Path, results: dict) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    db_url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(db_url) as gb:
        for student, notebooks in results["students"].items():
            for name, entry in notebooks.items():
                order = [gid for gid, _ in graded_cells(course / "source" / name / f"{name}.ipynb")]
                cells = []
                try:
                    sub = gb.find_submission_notebook(name, name, student)
                except MissingEntry:
                    entry["cells"] = []
                    continue
                by_name = {g.name: g for g in sub.grades if g.cell_type == "code"}
                for gid in order:
                    g = by_name.get(gid)
                    if g is None:
                        continue
                    cells.append({"cell": gid, "score": float(g.score or 0.0), "max": float(g.max_score)})
                entry["cells"] = cells
                entry["score"] = sum(c["score"] for c in cells)
                entry["max"] = sum(c["max"] for c in cells)


def print_table(results: dict, course: Path) -> None:
    log("")
    log("Scores (per student, notebook and graded cell):")
    for student, notebooks in results["students"].items():
        total = sum(e.get("score", 0.0) for e in notebooks.values())
        total_max = sum(e.get("max", 0.0) for e in notebooks.values())
        log(f"{student}: {total:g} / {total_max:g}")
        for name, e in notebooks.items():
            mark = "" if e["problem"] is None else f"   ({e['problem']})"
            log(f"  {name:<26} {e.get('score', 0):>5g} / {e.get('max', 0):<5g}{mark}")
            for c in e.get("cells", []):
                tick = "ok" if c["score"] == c["max"] else ("--" if c["score"] == 0 else "part")
                log(f"      {c['cell']:<30} {c['score']:>5g} / {c['max']:<5g} {tick}")
    log("")
    names = sorted({n for nbs in results["students"].values() for n in nbs})
    width = max(12, *(len(n) + 2 for n in names))
    header = f"{'student':<16}" + "".join(f"{n:>{width}}" for n in names) + f"{'total':>{width}}"
    log(header)
    for student, notebooks in results["students"].items():
        row = f"{student:<16}"
        for n in names:
            e = notebooks.get(n)
            row += f"{'-' if e is None else format(e.get('score', 0), 'g') + '/' + format(e.get('max', 0), 'g'):>{width}}"
        tot = sum(e.get("score", 0.0) for e in notebooks.values())
        mx = sum(e.get("max", 0.0) for e in notebooks.values())
        row += f"{f'{tot:g}/{mx:g}':>{width}}"
        log(row)
    log("")
    log(f"feedback: {course / 'feedback'}/<student>/<A>/<A>.html; nbgrader's log: {course / 'nbgrader.log'}")


# --- main -------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="student versions into <course>/release/")
    g.add_argument("assignments", nargs="*", help="default: all in <course>/source/")
    g.add_argument("--course", type=Path, default=COURSE)
    r = sub.add_parser("grade", help="autograde a folder of submissions")
    r.add_argument("submissions", type=Path)
    r.add_argument("--course", type=Path, default=COURSE)
    r.add_argument("--full", action="store_true", help="training cells at full size (no KLAYER_QUICK)")
    r.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="per-cell timeout in s")
    r.add_argument("--json", type=Path, help="also write the scores as JSON")
    args = ap.parse_args()
    try:
        course = prepare_course(args.course)
        if args.command == "generate":
            log(f"generating student versions in {course / 'release'}")
            generate(course, args.assignments)
            return 0
        results = grade(course, args.submissions, args.full, args.timeout)
        print_table(results, course)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        if results["failed"]:
            log(f"not executed to the end: {', '.join(results['failed'])} (see {course / 'nbgrader.log'})")
            return 1
        return 0
    except Failure as e:
        log(f"assignment: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
