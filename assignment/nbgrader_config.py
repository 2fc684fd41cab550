"""nbgrader configuration of klayer's exercise notebooks (Rust kernel, evcxr).

Used by scripts/assignment.sh (which runs nbgrader with this folder as the course directory,
or loads this file from another course directory); see docs/TEACHING.md.

Layout (nbgrader's own): source/<A>/<A>.ipynb are the instructor versions, release/<A>/ the
student versions, submitted/<student>/<A>/ the collected work, autograded/ and feedback/ what
grading makes, gradebook.db the scores. Only source/ is committed.
"""

import os
import re

from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    SaveAutoGrades,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)



def _klayer_root():
    """The klayer repository: the nearest folder above the course directory (or above this
    file) whose Cargo.toml is klayer's."""
    for start in (os.getcwd(), os.path.dirname(os.path.abspath(__file__))):
        folder = os.path.abspath(start)
        while True:
            try:
                with open(os.path.join(folder, "Cargo.toml")) as f:
                    if re.search(r'^name\s*=\s*"klayer"', f.read(), re.MULTILINE):
                        return folder
            except OSError:
                pass
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    raise RuntimeError("nbgrader_config.py: no klayer repository (Cargo.toml of klayer) above "
                       f"{os.getcwd()}; run nbgrader inside a klayer clone")


#: The klayer repository, which the notebooks' `:dep klayer` line must reach.
KLAYER_ROOT = _klayer_root()

c.CourseDirectory.course_id = "klayer"

# --- Student versions ----------------------------------------------------------------------
# A solution region, inside a solution cell,
#     // BEGIN SOLUTION
#     ...
#     // END SOLUTION
# becomes `// YOUR CODE HERE` and `todo!()` (indented like the BEGIN line): the function still
# compiles, and calling it panics with "not yet implemented", which klayer's checkers report
# as "not implemented yet" without ending the kernel. The stub is chosen by the notebook's
# kernel language, which the evcxr kernel spec reports as "rust".
c.ClearSolutions.code_stub = {"rust": "// YOUR CODE HERE\ntodo!()"}
c.ClearSolutions.begin_solution_delimeter = "// BEGIN SOLUTION"
c.ClearSolutions.end_solution_delimeter = "// END SOLUTION"
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Hidden tests: present in the instructor version and at grading, removed from the student's.
c.ClearHiddenTests.begin_test_delimeter = "// BEGIN HIDDEN TESTS"
c.ClearHiddenTests.end_test_delimeter = "// END HIDDEN TESTS"
# Mark schemes are not used; keep the delimiters Rust comments all the same.
c.ClearMarkScheme.begin_mark_scheme_delimeter = "// BEGIN MARK SCHEME"
c.ClearMarkScheme.end_mark_scheme_delimeter = "// END MARK SCHEME"
c.GenerateAssignment.create_assignment = True

# --- Autograding ----------------------------------------------------------------------------
# Per-cell timeout. The first cell compiles klayer inside the kernel: about 4 minutes with an
# empty evcxr cache, seconds with a warm one (scripts/assignment.sh shares one cache across
# kernels); training cells run at quick size (KLAYER_QUICK=1) when grading.
c.Execute.timeout = 600
c.Execute.startup_timeout = 120
c.Autograde.create_student = True


class KlayerDependencyPath(NbGraderPreprocessor):
    """Points the `:dep klayer = { path = "..." }` line at this repository, relative to the
    folder the notebook is executed in.

    The committed notebooks say `path = "../../.."` (right for source/<A>/ and release/<A>/),
    but a submission is executed from autograded/<student>/<A>/, one level deeper, and a
    course directory may live anywhere. evcxr resolves the path against the kernel's working
    directory, which nbgrader sets to the notebook's folder.
    """

    pattern = re.compile(r'^(\s*:dep\s+klayer\s*=\s*\{\s*path\s*=\s*")[^"]*(")', re.MULTILINE)

    def preprocess(self, nb, resources):
        folder = resources.get("metadata", {}).get("path") or os.getcwd()
        rel = os.path.relpath(KLAYER_ROOT, os.path.abspath(folder)).replace(os.sep, "/")
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = self.pattern.sub(lambda m: m.group(1) + rel + m.group(2), cell.source)
        return nb, resources


class RustExecute(Execute):
    """nbgrader's Execute for the evcxr kernel, whose error replies lack the `ename`,
    `evalue` and `traceback` fields of the Jupyter protocol (nbgrader reads them to tell a
    timeout from a cell's own error, and would stop grading the notebook with a KeyError).
    The cell's error output itself is intact; the reply gets neutral values."""

    def on_cell_executed(self, **kwargs):
        content = kwargs["execute_reply"]["content"]
        if content.get("status") == "error":
            content.setdefault("ename", "Error")
            content.setdefault("evalue", "")
            content.setdefault("traceback", [])
        return super().on_cell_executed(**kwargs)


class PlainTextResults(NbGraderPreprocessor):
    """Gives every cell result a text/plain version.

    nbgrader grades a test cell by its outputs: an error or anything on stderr scores 0, and
    otherwise it reads the result's text/plain (a number there would be partial credit) and
    fails on a result that has none. evcxr sends only the mime types a value displays as, and
    a klayer check report displays as text/html alone; its text/plain here says so (not a
    number: a passing check gets the cell's points).
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            for out in cell.get("outputs", []):
                data = out.get("data")
                if out.get("output_type") == "execute_result" and data is not None and "text/plain" not in data:
                    data["text/plain"] = "(shown as " + ", ".join(sorted(data)) + ")"
        return cell, resources


# nbgrader's default autograde pipeline, with the path fix in front of the execution, the
# evcxr-tolerant execution, and the text/plain fix after it.
c.Autograde.autograde_preprocessors = [
    KlayerDependencyPath,
    RustExecute,
    PlainTextResults,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
