#!/usr/bin/env python3
"""Tests of the exercise notebooks and their grading (a stage of scripts/test.sh).

    .venv/bin/python scripts/assignment_test.py          # all four assignments
    .venv/bin/python scripts/assignment_test.py A2_batch_norm

In scratch course directories under target/assignment_test/ (never assignment/ itself), it
runs the real commands, `scripts/assignment.py generate` and `... grade` (quick size), on three
kinds of submission built from assignment/source/:

- instructor: the instructor versions, which must score every point and run without an error
  or a line on stderr in any cell;
- student: the generated student versions, which must contain no solution and no hidden
  test, run to the end (every cell executed, no timeout, no dead kernel), fail only in cells
  that are graded or call one of the functions the student writes (each `todo!()` fails only
  its own cell), and score 0 on every graded cell;
- faulty: A2 with two classic mistakes put in by text substitution (the unbiased variance in
  BN's forward pass, γ left out of BN's dx), which must get partial credit, lose exactly the
  points of the cells that check those functions, and get feedback naming both mistakes
  (klayer's checker hints, found in the feedback HTML).

The notebooks are graded by GRADERS `grade` commands at once, each on its own course
directory and share of the submissions (a kernel spends much of a notebook waiting for one
rustc; kernels share compiled crates through evcxr's cache). 10-20 minutes on 2 cores,
depending on load.

Prints one line per check and ends with `N passed, M failed`; exit status 1 if any failed.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
try:
    import nbformat
except ImportError:
    import venv_python
    venv_python.reexec_or_exit(__file__, "nbformat")

SOURCE = ROOT / "assignment" / "source"
WORK = ROOT / "target" / "assignment_test"
DRIVER = ROOT / "scripts" / "assignment.py"
#: `grade` commands run at once (each notebook's kernel mostly runs one rustc or one training
#: loop at a time, so two share a 2-core machine well).
GRADERS = 2

# The faulty submission: (assignment, solution cell, text in it, replacement, the graded cells
# that must lose their points, a fragment of the hint klayer's checker gives for the mistake).
FAULTS = [
    ("A2_batch_norm", "bn_forward",
     "let var = centred.mapv(|v| v * v).sum_axis(Axis(0)) / n;",
     "let var = centred.mapv(|v| v * v).sum_axis(Axis(0)) / (n - 1.0);",
     "check_bn_forward", "unbiased variance"),
    ("A2_batch_norm", "bn_backward",
     "* &(gamma * &inv_std / n)",
     "* &(&inv_std / n)",
     "check_bn_backward", "dx is right for γ = 1"),
]
# Graded cells that use a faulty function indirectly and so lose their points as well.
FAULTY_ALSO_FAILS = {"check_network_bn"}

PANIC_RE = re.compile(r"panicked at ", re.MULTILINE)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  ok    {what}", flush=True)
        else:
            self.failed += 1
            print(f"  FAIL  {what}" + (f"\n        {detail}" if detail else ""), flush=True)
        return ok


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def student_functions(nb) -> set[str]:
    """Names of the functions defined in the solution cells."""
    names = set()
    for cell in nb.cells:
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            names.update(re.findall(r"^\s*fn\s+([A-Za-z_][A-Za-z0-9_]*)", cell.source, re.MULTILINE))
    return names


def cell_failed(cell) -> str | None:
    """What went wrong in an executed cell, as nbgrader sees it (an error or stderr)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"[:300]
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return out.get("text", "").strip()[:300]
    return None


def build_submissions(names: list[str], release: Path, subs: list[Path], checks: Checks) -> None:
    """The submissions, shared out among the folders `subs` (one per `grade` command) so that
    each gets about as much work: <sub>/<who>/<A>.ipynb with who = instructor, student or
    faulty. A complete notebook (instructor, faulty) takes about 1.5 times as long to grade as
    a student version, whose unfinished functions stop their cells early."""
    jobs = [("instructor", name) for name in names]
    jobs += [("faulty", name) for name in sorted({f[0] for f in FAULTS} & set(names))]
    jobs += [("student", name) for name in names]
    load = [0.0] * len(subs)
    for who, name in jobs:
        k = load.index(min(load))
        load[k] += 1.0 if who == "student" else 1.5
        dest = subs[k] / who / f"{name}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if who == "instructor":
            shutil.copy(SOURCE / name / f"{name}.ipynb", dest)
        elif who == "student":
            shutil.copy(release / name / f"{name}.ipynb", dest)
        else:
            nb = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
            for _, cell_id, old, new, _, _ in (f for f in FAULTS if f[0] == name):
                cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == cell_id)
                checks.check(cell.source.count(old) == 1, f"faulty {name}: '{old}' occurs once in {cell_id}")
                cell.source = cell.source.replace(old, new)
            nbformat.write(nb, dest)


def check_release(name: str, release: Path, checks: Checks) -> None:
    src = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    rel = nbformat.read(release / name / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in rel.cells if c.cell_type == "code")
    solutions = sum(c.source.count("// BEGIN SOLUTION") for c in src.cells)
    checks.check(solutions > 0 and text.count("todo!()") == solutions,
                 f"{name} student version: each of the {solutions} solution regions is `// YOUR CODE HERE` + `todo!()`",
                 f"found {text.count('todo!()')} todo!()")
    checks.check(text.count("// YOUR CODE HERE") == solutions, f"{name} student version: {solutions} × // YOUR CODE HERE")
    hidden = [re.search(r"// BEGIN HIDDEN TESTS\n(.*?)// END HIDDEN TESTS", c.source, re.S) for c in src.cells]
    hidden = [h.group(1).strip() for h in hidden if h]
    checks.check(all(h not in text for h in hidden) and "HIDDEN TESTS" not in text,
                 f"{name} student version: none of the {len(hidden)} hidden tests")
    solution_lines = [l.strip() for c in src.cells for l in
                      (re.search(r"// BEGIN SOLUTION\n(.*?)// END SOLUTION", c.source, re.S) or [None, ""])[1].splitlines()
                      if len(l.strip()) > 25]
    solution_ids = {nbgrader_meta(c).get("grade_id") for c in src.cells if nbgrader_meta(c).get("solution")}
    student_cells = "\n".join(c.source for c in rel.cells if nbgrader_meta(c).get("grade_id") in solution_ids)
    leaked = [l for l in solution_lines if l in student_cells]
    checks.check(not leaked, f"{name} student version: no line of a solution", f"leaked: {leaked[:2]}")


def check_scores(results: dict, names: list[str], checks: Checks) -> None:
    students = results["students"]
    for name in names:
        src = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
        functions = student_functions(src)
        # --- instructor
        e = students.get("instructor", {}).get(name, {})
        cells = e.get("cells", [])
        full = [c for c in cells if c["score"] == c["max"]]
        checks.check(e.get("problem") is None and cells and len(full) == len(cells),
                     f"{name} instructor version: full points ({e.get('score', 0):g} / {e.get('max', 0):g})",
                     f"problem {e.get('problem')}; cells below full: {[c['cell'] for c in cells if c not in full]}")
        if e.get("autograded"):
            nb = nbformat.read(e["autograded"], as_version=4)
            bad = [(i, cell_failed(c)) for i, c in enumerate(nb.cells)
                   if c.cell_type == "code" and cell_failed(c)]
            checks.check(not bad, f"{name} instructor version: no cell has an error or writes to stderr",
                         "; ".join(f"cell {i}: {m}" for i, m in bad[:3]))
        # --- student
        e = students.get("student", {}).get(name, {})
        cells = e.get("cells", [])
        checks.check(e.get("problem") is None and cells and all(c["score"] == 0 for c in cells),
                     f"{name} student version: 0 points on each of {len(cells)} graded cells",
                     f"problem {e.get('problem')}; scores {[(c['cell'], c['score']) for c in cells if c['score']]}")
        if e.get("autograded"):
            nb = nbformat.read(e["autograded"], as_version=4)
            code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
            unexecuted = [i for i, c in code if c.get("execution_count") is None]
            checks.check(not unexecuted, f"{name} student version: runs to the end ({len(code)} code cells executed)",
                         f"not executed: cells {unexecuted}")
            stray = []
            for i, c in code:
                why = cell_failed(c)
                if why is None or nbgrader_meta(c).get("grade"):
                    continue
                if not any(re.search(rf"\b{f}\b", c.source) for f in functions):
                    stray.append(f"cell {i}: {why}")
            checks.check(not stray, f"{name} student version: only graded cells and cells calling "
                         f"{', '.join(sorted(functions))} fail", "; ".join(stray[:3]))
    # --- faulty
    for name in sorted({f[0] for f in FAULTS} & set(names)):
        e = students.get("faulty", {}).get(name, {})
        cells = {c["cell"]: c for c in e.get("cells", [])}
        lose = {f[4] for f in FAULTS if f[0] == name} | (FAULTY_ALSO_FAILS & set(cells))
        checks.check(e.get("problem") is None and 0 < e.get("score", 0) < e.get("max", 0),
                     f"{name} faulty version: partial credit ({e.get('score', 0):g} / {e.get('max', 0):g})")
        checks.check(all(cells.get(c, {}).get("score") == 0 for c in lose)
                     and all(c["score"] == c["max"] for n, c in cells.items() if n not in lose),
                     f"{name} faulty version: 0 on {', '.join(sorted(lose))}, full points elsewhere",
                     f"{[(n, c['score'], c['max']) for n, c in cells.items()]}")
        page = html.unescape(Path(e["feedback"]).read_text()) if e.get("feedback") else ""
        for *_, cell, hint in (f for f in FAULTS if f[0] == name):
            checks.check(hint in page, f"{name} faulty version: the feedback names the mistake in {cell} ('{hint}')",
                         f"feedback: {e.get('feedback')}")


def main() -> int:
    names = sys.argv[1:] or sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").is_file())
    checks = Checks()
    t0 = time.monotonic()
    if WORK.exists():
        shutil.rmtree(WORK)
    courses = [WORK / f"course{k + 1}" for k in range(GRADERS)]
    subs = [WORK / f"submissions{k + 1}" for k in range(GRADERS)]
    course = courses[0]
    py = sys.executable
    print(f"[assignment_test] generate ({', '.join(names)}) in {course}", flush=True)
    rc = subprocess.run([py, str(DRIVER), "generate", "--course", str(course), *names]).returncode
    if not checks.check(rc == 0, "scripts/assignment.py generate exits 0"):
        print(f"{checks.passed} passed, {checks.failed} failed")
        return 1
    release = course / "release"
    for name in names:
        check_release(name, release, checks)
    build_submissions(names, release, subs, checks)
    print(f"[assignment_test] grade the instructor, student and faulty versions (quick size), "
          f"{GRADERS} grade commands at once: {', '.join(map(str, subs))}", flush=True)
    graders = []
    for k, (c, sub) in enumerate(zip(courses, subs)):
        if not sub.is_dir():
            continue
        log = WORK / f"grade{k + 1}.log"
        out = WORK / f"scores{k + 1}.json"
        cmd = [py, str(DRIVER), "grade", str(sub), "--course", str(c), "--json", str(out)]
        graders.append((cmd, log, out, subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)))
    results: dict = {"students": {}, "failed": []}
    for cmd, log, out, proc in graders:
        rc = proc.wait()
        print(f"[assignment_test] {' '.join(cmd[1:])}  (exit {rc}; its output, from {log}):")
        print("".join("    | " + line for line in log.read_text(errors="replace").splitlines(True)), flush=True)
        checks.check(rc == 0, f"scripts/assignment.py grade {Path(cmd[3]).name} exits 0 (every notebook executed to the end)")
        if not out.is_file():
            checks.check(False, "grade wrote its JSON scores", str(out))
            continue
        part = json.loads(out.read_text())
        for student, notebooks in part["students"].items():
            results["students"].setdefault(student, {}).update(notebooks)
        results["failed"] += part["failed"]
    check_scores(results, names, checks)
    print(f"[assignment_test] {time.monotonic() - t0:.0f} s; scores in {WORK}/scores*.json")
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 0 if checks.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
