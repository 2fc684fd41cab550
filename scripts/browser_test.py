#!/usr/bin/env python3
"""Browser test: an executed notebook's plotly figure is drawn by JupyterLab.

    .venv/bin/python scripts/browser_test.py [NOTEBOOK.ipynb] [--dir DIR ...]

Starts JupyterLab from the project venv on 127.0.0.1 (random free port, random token,
throw-away config/data/runtime/settings dirs), opens NOTEBOOK in headless Debian Chromium
(/usr/bin/chromium, driven by Playwright; Playwright's own browser download is never used),
waits until a plotly figure is drawn inside a cell's output area, checks its size, saves a
screenshot to target/browser/notebook.png, and shuts the browser, the server and its kernels
down by itself, also on failure. Exit status 0 on success, 1 on failure.

Without NOTEBOOK it opens the first notebook in the --dir folders (default: notebooks/, then
target/notebooks/) whose saved outputs contain an application/vnd.plotly.v1+json output.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    import venv_python
    venv_python.reexec_or_exit(__file__, "playwright")

PLOTLY_MIME = "application/vnd.plotly.v1+json"
# The flags every headless Chromium of the project starts with: one file, also read by
# `klayer reproduce`.
CHROMIUM_FLAGS_FILE = ROOT / "scripts" / "chromium-flags.txt"
CHROMIUM_ARGS = [
    line.strip()
    for line in CHROMIUM_FLAGS_FILE.read_text().splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]
# The figure, inside a cell's output area, with its SVG drawn.
# (jupyterlab-plotly puts js-plotly-plot on the .jp-OutputArea-output element itself.)
PLOT_SELECTOR = ".jp-OutputArea .js-plotly-plot .main-svg, .jp-OutputArea .plot-container .main-svg"


def log(msg: str) -> None:
    print(f"[browser_test] {msg}", flush=True)


def has_plotly_output(path: Path) -> bool:
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            if PLOTLY_MIME in (out.get("data") or {}):
                return True
    return False


def find_notebook(dirs: list[Path]) -> Path | None:
    for d in dirs:
        for p in sorted(d.glob("*.ipynb")):
            if has_plotly_output(p):
                return p
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server in its own process group with throw-away state dirs."""

    def __init__(self, root_dir: Path, state_dir: Path, log_path: Path, *,
                 news_setting: bool = True, extra_env: dict | None = None,
                 extra_args: tuple[str, ...] = ()):
        """Starts the server. `news_setting` writes "no news prompt" into the throw-away user
        settings (False: rely on scripts/lab.sh's overrides.json in the venv, as a user's
        JupyterLab does); `extra_env` and `extra_args` go to the server's environment and
        command line."""
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(state_dir / "config"),
            JUPYTER_DATA_DIR=str(state_dir / "data"),
            JUPYTER_RUNTIME_DIR=str(state_dir / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(state_dir / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(state_dir / "workspaces"),
        )
        env.update(extra_env or {})
        # Render every cell, not only those in view (JupyterLab 4 windowing); no news prompt.
        tracker = state_dir / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True, exist_ok=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
        if news_setting:
            notif = state_dir / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
            notif.parent.mkdir(parents=True, exist_ok=True)
            notif.write_text(json.dumps({"fetchNews": "false"}))
        self.log_file = open(log_path, "w")
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root_dir}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            *extra_args,
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        log(f"starting JupyterLab on {self.base} (root {root_dir}), log {log_path}")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def api(self, method: str, path: str, timeout: float = 5):
        req = urllib.request.Request(
            f"{self.base}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 90) -> None:
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with status {self.proc.returncode} (see its log)")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab not answering after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            # Kernels are in their own sessions: shut them down through the API first.
            try:
                for k in self.api("GET", "/api/kernels") or []:
                    self.api("DELETE", f"/api/kernels/{k['id']}", timeout=15)
            except Exception as e:  # best effort; the server's own shutdown also stops kernels
                log(f"kernel shutdown via API: {e}")
            try:
                self.api("POST", "/api/shutdown", timeout=5)
            except Exception:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.killpg(self.proc.pid, sig)
                    except ProcessLookupError:
                        break
                    try:
                        self.proc.wait(timeout=10)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        self.log_file.close()
        log(f"JupyterLab stopped (status {self.proc.returncode})")


def launch_chromium(pw, state_dir: Path, chromium: str, height: int = 1000):
    """Headless Debian Chromium with the project's flags and a throw-away profile."""
    return pw.chromium.launch_persistent_context(
        str(state_dir / "chromium-profile"),
        executable_path=chromium,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": height},
    )


def run(nb_path: Path, out_png: Path, chromium: str, timeout_s: float) -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="klayer-browser-"))
    out_png.parent.mkdir(parents=True, exist_ok=True)
    lab = None
    try:
        lab = Lab(nb_path.parent, state_dir, out_png.parent / "jupyterlab.log")
        lab.wait_ready()
        url = f"{lab.base}/lab/tree/{urllib.parse.quote(nb_path.name)}?token={lab.token}&reset"
        with sync_playwright() as pw:
            ctx = launch_chromium(pw, state_dir, chromium)
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                console = []
                page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
                page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                log(f"opening {nb_path.name}")
                t0 = time.monotonic()
                page.goto(url, wait_until="domcontentloaded", timeout=60_000)
                try:
                    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
                    plot = page.locator(PLOT_SELECTOR).first
                    plot.wait_for(state="attached", timeout=timeout_s * 1000)
                    plot.scroll_into_view_if_needed(timeout=10_000)
                    plot.wait_for(state="visible", timeout=10_000)
                    page.wait_for_timeout(1000)  # let plotly finish its first layout pass
                except Exception:
                    page.screenshot(path=str(out_png))
                    log(f"no plotly figure appeared within {timeout_s} s; screenshot {out_png}")
                    for line in console[-20:]:
                        log(f"  console {line}")
                    raise
                n_plots = page.locator(".jp-OutputArea .js-plotly-plot").count()
                box = plot.bounding_box()
                n_traces = page.locator(".jp-OutputArea .js-plotly-plot g.trace").count()
                page.screenshot(path=str(out_png))
                log(f"plotly figure drawn after {time.monotonic() - t0:.1f} s: {n_plots} figure(s), "
                    f"{n_traces} trace element(s), first SVG {box['width']:.0f}x{box['height']:.0f} px")
                if box is None or box["width"] < 100 or box["height"] < 100:
                    raise AssertionError(f"plotly figure too small: {box}")
                if n_traces == 0:
                    raise AssertionError("plotly figure has no trace drawn")
                log(f"screenshot {out_png}")
            finally:
                ctx.close()
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebook", nargs="?", type=Path)
    ap.add_argument("--dir", action="append", type=Path, dest="dirs",
                    help="folder(s) to search for a notebook with a plotly output (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "target" / "browser" / "notebook.png")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for the figure")
    args = ap.parse_args()

    if not Path(args.chromium).exists():
        log(f"FAIL: no browser at {args.chromium} (apt-get install -y chromium)")
        return 1
    nb = args.notebook
    if nb is None:
        dirs = args.dirs or [ROOT / "notebooks", ROOT / "target" / "notebooks"]
        nb = find_notebook(dirs)
        if nb is None:
            log(f"FAIL: no notebook with a plotly output in {', '.join(map(str, dirs))}")
            return 1
    nb = nb.resolve()
    if not nb.is_file():
        log(f"FAIL: no such notebook {nb}")
        return 1
    if not has_plotly_output(nb):
        log(f"FAIL: {nb} has no saved {PLOTLY_MIME} output (execute it first)")
        return 1

    # Turn SIGTERM (e.g. CI timeout) into an exception so the finally blocks clean up.
    def _term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _term)

    t0 = time.monotonic()
    try:
        run(nb, args.out.resolve(), args.chromium, args.timeout)
    except BaseException as e:  # noqa: BLE001 - report and fail
        log(f"FAIL ({time.monotonic() - t0:.1f} s): {type(e).__name__}: {e}")
        return 1
    log(f"PASS in {time.monotonic() - t0:.1f} s: {nb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
