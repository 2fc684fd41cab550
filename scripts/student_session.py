#!/usr/bin/env python3
"""A student's session in JupyterLab, driven in headless Chromium (a stage of scripts/test.sh).

    .venv/bin/python scripts/student_session.py [--pictures EXECUTED_A1.ipynb]

Starts JupyterLab the way scripts/lab.sh does (the venv's settings, overrides.json: no news
prompt, autosave off; the "rust" kernel) with KLAYER_QUICK=1, on a throw-away copy of
notebooks/ (a folder beside it, so `:dep klayer = { path = ".." }` resolves; removed at the
end), and uses it as a new user would, through the menus and the editor:

1. opens 02_three_layer.ipynb: no "official Jupyter news" prompt; Run > Run All Cells; when
   the kernel is idle, no cell has an error and a plotly figure is drawn;
2. types `let lambda = 0.01;` into the parameter cell, Run > Run Selected Cell and All Below:
   the printed λ and the results change, no error; then types `lambda = -1.0`, Run > Run All
   Cells: exactly one error, in the parameter cell, with the crate's message (`invalid
   setting` `lambda`), and the cells below it not run (no output, no execution count);
3. opens 03_nine_layer.ipynb while 02's kernel is alive and runs its first two code cells:
   both kernels work (no "can't find crate");
4. autosave is off: both notebook files on disk are byte-identical to before;
5. the pictures (sample images, first-layer weights, confusion matrix, most confident
   mistakes) in an executed copy of the exercise notebook A1_layers: each one drawn, with a
   screenshot target/browser/picture_<name>.png. The executed copy is the first of
   --pictures, target/assignment_test/**/A1_layers.ipynb (scripts/assignment_test.py) with
   all four pictures, or else one made here with scripts/run_notebooks.py (quick mode).

One deviation from lab.sh, for the test only: every cell is rendered (windowingMode "none"),
and the page exposes `window.jupyterapp` so cell states are read from the notebook's model.

Screenshots in target/browser/ (session_*.png; on failure, session_failure.png); the
server's log in target/browser/jupyterlab-session.log. Shuts the browser, the server and its
kernels down also on failure. Exit status 0 on success, 1 on failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
try:
    import nbformat
    import playwright  # noqa: F401
except ImportError:
    import venv_python
    venv_python.reexec_or_exit(__file__, "playwright")

sys.path.insert(0, str(ROOT / "scripts"))
from browser_test import PLOT_SELECTOR, PLOTLY_MIME, Lab, launch_chromium  # noqa: E402
sys.path.insert(0, str(ROOT / "scripts" / "evcxr"))
from kernel_client import output_text  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

OUT = ROOT / "target" / "browser"
NB_A, NB_B = "02_three_layer.ipynb", "03_nine_layer.ipynb"
PICTURES_NB = "A1_layers.ipynb"
# name of the screenshot -> the call in the cell that draws it
PICTURES = {
    "sample_images": "pictures::sample_images(",
    "first_layer_weights": "pictures::first_layer_weights(",
    "confusion_matrix": "pictures::confusion_matrix(",
    "most_confident_mistakes": "pictures::most_confident_mistakes(",
}
RUN_TIMEOUT = 600  # s for one Run All at quick size on a loaded machine
ERROR_RE = re.compile(r"\berror(\[E\d+\])?:|panicked at|can't find crate|cannot find", re.IGNORECASE)

# The notebook's state from its model (JupyterLab exposes the app with expose_app_in_browser).
STATE_JS = """(name) => {
  const app = window.jupyterapp;
  if (!app) return null;
  let panel = null;
  for (const w of app.shell.widgets('main')) { if (w.context && w.context.path === name) panel = w; }
  if (!panel || !panel.content.model) return null;
  const cells = [];
  const m = panel.content.model.cells;
  for (let i = 0; i < m.length; i++) {
    const c = m.get(i);
    const outs = [];
    if (c.type === 'code') for (let j = 0; j < c.outputs.length; j++) outs.push(c.outputs.get(j).toJSON());
    cells.push({type: c.type, source: c.sharedModel.getSource(), count: c.type === 'code' ? c.executionCount : null,
                tags: (c.getMetadata && c.getMetadata('tags')) || [], outputs: outs});
  }
  const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const busy = panel.node.querySelectorAll('.jp-InputPrompt').length &&
    Array.from(panel.node.querySelectorAll('.jp-InputPrompt')).some(p => p.textContent.includes('*'));
  return {kernel: k ? k.status : 'none', queued: busy, dirty: panel.context.model.dirty, cells};
}"""


def log(msg: str) -> None:
    print(f"[student_session] {msg}", flush=True)


class SessionFailure(AssertionError):
    pass


def errors_of(cell: dict) -> list[str]:
    """The error outputs of a cell: error replies, and stderr with a compile error or panic."""
    errs = []
    for o in cell["outputs"]:
        text = output_text(o)
        if o.get("output_type") == "error" or (o.get("name") == "stderr" and ERROR_RE.search(text)):
            errs.append(re.sub(r"\x1b\[[0-9;]*m", "", text))
    return errs


class Session:
    def __init__(self, page, shots: Path):
        self.page = page
        self.shots = shots

    def cells(self):
        """The cells of the notebook in view (other open notebooks are hidden tabs)."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def fail(self, msg: str):
        shot = self.shots / "session_failure.png"
        try:
            self.page.screenshot(path=str(shot), full_page=False)
            msg += f"\n  screenshot: {shot}"
        except Exception as e:  # noqa: BLE001
            msg += f"\n  (no screenshot: {e})"
        raise SessionFailure(msg)

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        if not ok:
            self.fail(f"{what}" + (f": {detail}" if detail else ""))
        log(f"ok    {what}")

    def state(self, name: str) -> dict:
        s = self.page.evaluate(STATE_JS, name)
        if s is None:
            self.fail(f"notebook {name} is not open in JupyterLab")
        return s

    def activate(self, name: str) -> None:
        self.page.locator(f'.lm-DockPanel-tabBar .lm-TabBar-tab:has-text("{name}")').first.click()
        self.page.wait_for_timeout(300)

    def open(self, base: str, token: str, name: str, reset: bool) -> None:
        url = f"{base}/lab/tree/{urllib.parse.quote(name)}?token={token}" + ("&reset" if reset else "")
        if reset:
            self.page.goto(url, wait_until="domcontentloaded", timeout=90_000)
        else:  # a second notebook, beside the first: File > Open from Path... is a dialog; use the API
            self.page.evaluate("(n) => window.jupyterapp.commands.execute('docmanager:open', {path: n})", name)
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            s = self.page.evaluate(STATE_JS, name) if self.page.evaluate("() => !!window.jupyterapp") else None
            if s and s["cells"] and s["kernel"] == "idle":
                return
            self.page.wait_for_timeout(500)
        self.fail(f"{name} did not open with an idle kernel within 120 s")

    def menu(self, top: str, item: str) -> None:
        self.page.locator(f'#jp-menu-panel .lm-MenuBar-itemLabel:text-is("{top}")').click()
        entry = self.page.locator(f'.lm-Menu-content .lm-Menu-itemLabel:text-is("{item}")').first
        entry.wait_for(state="visible", timeout=10_000)
        entry.click()

    def wait_idle(self, name: str, what: str, timeout: float = RUN_TIMEOUT) -> dict:
        """Waits until the kernel is idle with no queued cell, twice 1 s apart."""
        t0 = time.monotonic()
        self.page.wait_for_timeout(1500)  # let the execute requests go out
        stable = 0
        while time.monotonic() - t0 < timeout:
            s = self.state(name)
            if s["kernel"] == "idle" and not s["queued"]:
                stable += 1
                if stable >= 2:
                    log(f"{what}: kernel idle after {time.monotonic() - t0:.1f} s")
                    return s
            else:
                stable = 0
            if s["kernel"] in ("dead", "unknown"):
                self.fail(f"{what}: the kernel of {name} is {s['kernel']}")
            self.page.wait_for_timeout(1000)
        self.fail(f"{what}: kernel of {name} still busy after {timeout} s")

    def no_errors(self, s: dict, what: str) -> None:
        bad = [(i, e) for i, c in enumerate(s["cells"]) if c["type"] == "code" for e in errors_of(c)]
        self.check(not bad, f"{what}: no cell shows an error",
                   "; ".join(f"cell {i}: {e.strip()[:400]}" for i, e in bad[:3]))

    def plot_drawn(self, what: str) -> None:
        plot = self.page.locator(PLOT_SELECTOR).first
        try:
            plot.wait_for(state="attached", timeout=30_000)
            plot.scroll_into_view_if_needed(timeout=10_000)
            self.page.wait_for_timeout(800)
        except Exception:
            self.fail(f"{what}: no plotly figure drawn in an output")
        box = plot.bounding_box()
        n_traces = self.page.locator(".jp-OutputArea .js-plotly-plot g.trace").count()
        self.check(box is not None and box["width"] >= 100 and box["height"] >= 100 and n_traces > 0,
                   f"{what}: a plotly figure is drawn", f"box {box}, {n_traces} traces")

    def edit_line(self, name: str, cell_index: int, prefix: str, new_text: str) -> None:
        """Types `new_text` over the cell's line that starts with `prefix`, as a person would:
        click into the editor, go to the line, select up to the ';', type."""
        s = self.state(name)
        lines = s["cells"][cell_index]["source"].split("\n")
        row = next((i for i, line in enumerate(lines) if line.startswith(prefix)), None)
        if row is None:
            self.fail(f"the parameter cell of {name} has no line starting with {prefix!r}")
        old = lines[row][: lines[row].index(";") + 1]
        cell = self.cells().nth(cell_index)
        cell.scroll_into_view_if_needed()
        cell.locator(".cm-content").click()
        kb = self.page.keyboard
        kb.press("Control+Home")
        for _ in range(row):
            kb.press("ArrowDown")
        kb.press("Home")
        for _ in range(len(old)):
            kb.press("Shift+ArrowRight")
        kb.type(new_text)
        self.page.wait_for_timeout(300)
        src = self.state(name)["cells"][cell_index]["source"].split("\n")[row]
        self.check(src.startswith(new_text), f"typed {new_text!r} into the parameter cell", f"line is now {src!r}")

    def shot(self, name: str) -> Path:
        p = self.shots / f"session_{name}.png"
        self.page.screenshot(path=str(p))
        log(f"screenshot {p}")
        return p


def param_index(s: dict) -> int:
    for i, c in enumerate(s["cells"]):
        if "parameters" in c["tags"]:
            return i
    raise SessionFailure("no cell tagged `parameters`")


def code_text(s: dict) -> str:
    return "\n".join(output_text(o) for c in s["cells"] if c["type"] == "code" for o in c["outputs"])


def find_pictures_notebook(explicit: list[Path]) -> Path | None:
    cands = list(explicit) + sorted((ROOT / "target" / "assignment_test").glob(f"**/{PICTURES_NB}")) \
        + [OUT / "executed" / PICTURES_NB]
    for p in cands:
        if p.is_file() and has_all_pictures(p):
            return p
    return None


def has_all_pictures(path: Path) -> bool:
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001
        return False
    found = set()
    for c in nb.cells:
        for name, call in PICTURES.items():
            if c.cell_type == "code" and call in c.source and any(
                    PLOTLY_MIME in (o.get("data") or {}) for o in c.get("outputs", [])):
                found.add(name)
    return found == set(PICTURES)


def execute_pictures_notebook() -> Path:
    src = ROOT / "assignment" / "source" / "A1_layers" / PICTURES_NB
    log(f"no executed {PICTURES_NB} with its pictures: executing {src.relative_to(ROOT)} (quick mode)")
    rc = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"),
                         "--out-dir", str(OUT / "executed"), str(src)]).returncode
    out = OUT / "executed" / PICTURES_NB
    if rc != 0 or not has_all_pictures(out):
        raise SessionFailure(f"executing {src} failed (status {rc}) or gave no pictures; see its output above")
    return out


def student(se: Session, lab: Lab, work: Path) -> None:
    page = se.page
    before = {n: (work / n).read_bytes() for n in (NB_A, NB_B)}

    # 1. Open, no news prompt, Run All.
    se.open(lab.base, lab.token, NB_A, reset=True)
    page.wait_for_timeout(4000)  # the news prompt comes a moment after the page has loaded
    news = page.get_by_text(re.compile("official Jupyter news", re.I))
    se.check(news.count() == 0, "no 'notified about official Jupyter news' prompt")
    se.menu("Run", "Run All Cells")
    s = se.wait_idle(NB_A, "Run All")
    se.no_errors(s, "Run All")
    code = [c for c in s["cells"] if c["type"] == "code"]
    se.check(all(c["count"] for c in code), "Run All: every code cell ran",
             f"cells without execution count: {[i for i, c in enumerate(s['cells']) if c['type'] == 'code' and not c['count']]}")
    se.check("quick" in code_text(s).lower(), "Run All: the notebook says it runs at quick size")
    se.plot_drawn("Run All")
    se.shot("02_run_all")
    p = param_index(s)
    first = code_text(s)

    # 2. lambda = 0.01, run it and below.
    se.edit_line(NB_A, p, "let lambda", "let lambda = 0.01;")
    se.menu("Run", "Run Selected Cell and All Below")
    s = se.wait_idle(NB_A, "lambda = 0.01, Run Selected Cell and All Below")
    se.no_errors(s, "lambda = 0.01")
    ptext = "".join(output_text(o) for o in s["cells"][p]["outputs"])
    se.check("λ = 0.01" in ptext, "lambda = 0.01: the parameter cell prints the new λ", repr(ptext[:200]))
    later = [c for c in s["cells"][p + 1:] if c["type"] == "code"]
    se.check(all(c["count"] for c in later), "lambda = 0.01: every cell below ran")
    se.check(code_text(s) != first, "lambda = 0.01: the outputs changed")
    se.plot_drawn("lambda = 0.01")
    se.shot("02_lambda_0.01")

    se.edit_line(NB_A, p, "let lambda", "let lambda = -1.0;")
    se.menu("Run", "Run All Cells")
    s = se.wait_idle(NB_A, "lambda = -1.0, Run All")
    errs = [(i, e) for i, c in enumerate(s["cells"]) if c["type"] == "code" for e in errors_of(c)]
    se.check(len(errs) == 1, "lambda = -1.0: exactly one error",
             "; ".join(f"cell {i}: {e.strip()[:300]}" for i, e in errs) or "none")
    i, e = errs[0]
    se.check(i == p, "lambda = -1.0: the error is in the parameter cell", f"it is in cell {i}")
    # The whole output of the cell, as the student reads it (stderr lines and the error).
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output_text(o) for o in s["cells"][p]["outputs"]))
    se.check(re.search(r"invalid setting\W+lambda", shown) is not None,
             "lambda = -1.0: the parameter cell shows the crate's message (invalid setting `lambda`)",
             repr(shown.strip()[:400]))
    for line in shown.strip().splitlines():
        log(f"      the student sees: {line[:200]}")
    stale = [j for j, c in enumerate(s["cells"]) if j > p and c["type"] == "code" and (c["outputs"] or c["count"])]
    se.check(not stale, "lambda = -1.0: the cells below the error were not run (no output, no count)",
             f"cells with output or count: {stale}")
    # Run All leaves the view at the last cell; the student scrolls up to the error.
    se.cells().nth(p).scroll_into_view_if_needed()
    se.shot("02_lambda_negative")

    # 3. A second notebook while the first kernel lives.
    se.open(lab.base, lab.token, NB_B, reset=False)
    sb = se.state(NB_B)
    code_b = [i for i, c in enumerate(sb["cells"]) if c["type"] == "code"][:2]
    se.cells().nth(code_b[0]).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")  # runs and selects the next cell
    page.wait_for_timeout(500)
    se.cells().nth(code_b[1]).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Control+Enter")
    sb = se.wait_idle(NB_B, "03, first two code cells")
    se.no_errors(sb, "03 first two code cells")
    se.check(all(sb["cells"][i]["count"] for i in code_b) and sb["cells"][code_b[1]]["outputs"],
             "03: the first two code cells ran with output")
    sa = se.state(NB_A)
    se.check(sa["kernel"] == "idle", "02's kernel is still alive", sa["kernel"])
    se.activate(NB_A)
    se.edit_line(NB_A, p, "let lambda", "let lambda = 0.005;")
    page.keyboard.press("Control+Enter")
    sa = se.wait_idle(NB_A, "02 parameter cell again")
    se.no_errors(sa, "02 after 03 started")
    se.check(sa["cells"][p]["count"] is not None, "02's kernel runs a cell after 03's started")
    se.shot("03_beside_02")

    # 4. Autosave off.
    for n, b in before.items():
        se.check((work / n).read_bytes() == b, f"autosave off: {n} on disk is unchanged")
    se.check(se.state(NB_A)["dirty"], "02 has unsaved changes (so autosave had something to save)")


def pictures(se: Session, lab: Lab, nb: Path, work: Path, fresh: bool) -> None:
    shutil.copy(nb, work / PICTURES_NB)
    # The sample grid is ~1,500 px tall: a viewport that holds it whole, for its screenshot.
    se.page.set_viewport_size({"width": 1400, "height": 1900})
    se.open(lab.base, lab.token, PICTURES_NB, reset=fresh)
    se.page.wait_for_timeout(1500)
    s = se.state(PICTURES_NB)
    for name, call in PICTURES.items():
        idx = next(i for i, c in enumerate(s["cells"]) if c["type"] == "code" and call in c["source"])
        out = se.cells().nth(idx).locator(".jp-OutputArea-output").filter(
            has=se.page.locator(".main-svg")).first
        try:
            out.scroll_into_view_if_needed(timeout=10_000)
            out.locator(".main-svg").first.wait_for(state="visible", timeout=30_000)
        except Exception:
            se.fail(f"picture {name}: no plotly figure drawn in cell {idx}")
        se.page.wait_for_timeout(700)
        box = out.bounding_box()
        marks = out.locator("g.trace, image, .hm, g.imagelayer image, .layer-above image").count()
        path = OUT / f"picture_{name}.png"
        out.screenshot(path=str(path))
        # One row of ten weight tiles is about 970 × 170 px: 120 px tall leaves tiles of ~80 px.
        se.check(box is not None and box["width"] >= 300 and box["height"] >= 120 and marks > 0,
                 f"picture {name} is drawn ({box and round(box['width'])}x{box and round(box['height'])} px, "
                 f"{marks} marks)", f"box {box}, {marks} trace/image elements")
        log(f"screenshot {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pictures", action="append", type=Path, default=[],
                    help=f"an executed {PICTURES_NB} with its pictures (repeatable; first that fits)")
    ap.add_argument("--pictures-only", action="store_true", help="only step 5 (the pictures)")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args()
    if not Path(args.chromium).exists():
        log(f"FAIL: no browser at {args.chromium} (apt-get install -y chromium)")
        return 1

    def _term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _term)

    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="klayer-student-"))
    # Beside notebooks/, so that the notebooks' `:dep klayer = { path = ".." }` finds the crate.
    work = Path(tempfile.mkdtemp(prefix="student-session-", dir=ROOT))
    lab = None
    try:
        pic_nb = find_pictures_notebook(args.pictures) or execute_pictures_notebook()
        log(f"pictures from {pic_nb}")
        for n in (NB_A, NB_B):
            shutil.copy(ROOT / "notebooks" / n, work / n)
        lab = Lab(work, state_dir, OUT / "jupyterlab-session.log", news_setting=False,
                  extra_env={"KLAYER_QUICK": "1"},
                  extra_args=("--MultiKernelManager.default_kernel_name=rust",
                              "--LabApp.expose_app_in_browser=True"))
        lab.wait_ready()
        with sync_playwright() as pw:
            ctx = launch_chromium(pw, state_dir, args.chromium)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.set_default_timeout(30_000)
                se = Session(page, OUT)
                if not args.pictures_only:
                    student(se, lab, work)
                pictures(se, lab, pic_nb, work, fresh=args.pictures_only)
            finally:
                ctx.close()
    except BaseException as e:  # noqa: BLE001 - report and fail
        log(f"FAIL ({time.monotonic() - t0:.1f} s): {type(e).__name__}: {e}")
        return 1
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log(f"PASS in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
