#!/usr/bin/env python3
"""Drive the registered Rust kernel ("rust", from scripts/lab.sh) headless with jupyter_client.

    .venv/bin/python scripts/evcxr/kernel_client.py warm        # compile the notebooks' :dep cells once
    .venv/bin/python scripts/evcxr/kernel_client.py first-cell  # time a new kernel's first :dep cell
    .venv/bin/python scripts/evcxr/kernel_client.py dep-cells   # print those cells (lab.sh's stamp)

`warm` (run by scripts/lab.sh) starts one kernel in notebooks/ and executes each distinct first
`:dep` cell of notebooks/*.ipynb, so that evcxr's shared `:cache` and a persistent kernel build
folder (scripts/evcxr/kernel.sh) hold everything the notebooks compile: a later kernel's first
cell then takes seconds. `first-cell` prints the wall-clock time from starting a kernel to the
reply of its first `:dep` cell (what a student waits for when opening a notebook).

The `Kernel` class is also used by scripts/kernel_test.py; `output_text` (what one output of a cell
shows, as JupyterLab renders it) by that, scripts/run_notebooks.py and scripts/student_session.py.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from pathlib import Path
from typing import IO

from jupyter_client.manager import KernelManager
from nbformat.v4 import output_from_msg

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def use_project_jupyter_dirs() -> None:
    """Jupyter state under .jupyter-home (like scripts/lab.sh), so that a "rust" kernel spec in
    the user's ~/.local/share/jupyter cannot shadow the venv's."""
    jhome = ROOT / ".jupyter-home"
    os.environ.setdefault("JUPYTER_CONFIG_DIR", str(jhome / "config"))
    os.environ.setdefault("JUPYTER_DATA_DIR", str(jhome / "data"))
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(jhome / "runtime"))


class Kernel:
    """One Rust kernel; `run` executes code and returns what came back."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None, kernel_name: str = "rust",
                 stderr: IO[str] | None = None):
        """Starts the kernel in `cwd` with `env` added to this process's environment; its own
        stderr (evcxr's "Compiling <crate>" lines, for one) goes to `stderr` if given."""
        self.km = KernelManager(kernel_name=kernel_name)
        kernel_env = dict(os.environ)
        kernel_env.update(env or {})
        streams = {"stderr": stderr} if stderr is not None else {}
        self.km.start_kernel(cwd=str(cwd), env=kernel_env, **streams)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=120)

    def send(self, code: str, stop_on_error: bool = True) -> str:
        """Sends an execute request without waiting; returns its msg_id."""
        return self.kc.execute(code, stop_on_error=stop_on_error)

    def reply(self, msg_id: str, timeout: float) -> dict:
        """The shell reply to `msg_id` (replies arrive in request order)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id} within {timeout} s")
            msg = self.kc.get_shell_msg(timeout=left)
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def outputs(self, msg_id: str, timeout: float = 10) -> list[dict]:
        """The iopub messages of `msg_id` up to its idle status (call after its reply)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no idle status for {msg_id} within {timeout} s")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
            out.append(msg)

    def run(self, code: str, timeout: float = 1800) -> tuple[dict, list[dict]]:
        """Executes `code`; returns (reply content, iopub messages)."""
        msg_id = self.send(code)
        reply = self.reply(msg_id, timeout)
        return reply["content"], self.outputs(msg_id)

    def cpu_seconds(self) -> float:
        """CPU time the kernel process itself has used so far (user + system, all its threads;
        not cargo, rustc or the process that runs the cells, which are its children). Unlike
        wall time it does not grow while the machine is busy with other work."""
        pid = self.km.provisioner.process.pid
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def output_text(out: dict) -> str:
    """The text one output of a cell shows, in nbformat's shape (a saved notebook's outputs,
    nbclient's, JupyterLab's model): a stream's text, a result's or display's text/plain, and
    an error as JupyterLab shows it: its traceback, or "ename: evalue" if it has none (the
    traceback already says what evalue says; both at once would repeat the message)."""
    kind = out.get("output_type")
    if kind == "stream":
        text = out.get("text", "")
    elif kind == "error":
        text = "\n".join(out.get("traceback") or [f"{out.get('ename', '')}: {out.get('evalue', '')}"]) + "\n"
    else:
        text = (out.get("data") or {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def text_of(outputs: list[dict]) -> str:
    """All text a cell showed, from its iopub messages (as `Kernel.run` returns them): streams,
    results, displays and errors, each as `output_text` renders it."""
    parts = []
    for msg in outputs:
        if msg["msg_type"] == "update_display_data":  # nbformat has no output for it
            parts.append(str(msg["content"].get("data", {}).get("text/plain", "")))
        elif msg["msg_type"] in ("stream", "execute_result", "display_data", "error"):
            parts.append(output_text(output_from_msg(msg)))
    return "".join(parts)


def dep_cells() -> list[str]:
    """The distinct first code cells of notebooks/*.ipynb that start with `:dep`."""
    cells = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        if code:
            src = "".join(code[0]["source"]).strip()
            if src.startswith(":dep") and src not in cells:
                cells.append(src)
    return cells


def run_dep_cells(cells: list[str], timeout: float) -> float:
    """Runs `cells` in one new kernel in notebooks/; returns the wall time to the first reply."""
    t0 = time.monotonic()
    kernel = Kernel(NOTEBOOKS)
    try:
        first = None
        for src in cells:
            content, outputs = kernel.run(src, timeout=timeout)
            first = first if first is not None else time.monotonic() - t0
            if content["status"] != "ok":
                sys.exit(f"kernel_client: cell failed:\n{src}\n{text_of(outputs)}")
        return first if first is not None else 0.0
    finally:
        kernel.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["warm", "first-cell", "dep-cells"])
    ap.add_argument("--timeout", type=float, default=3600, help="per cell, seconds")
    args = ap.parse_args()
    cells = dep_cells()
    if args.command == "dep-cells":
        print("\n".join(cells))
        return 0
    use_project_jupyter_dirs()
    if not cells:
        print("kernel_client: no notebook starts with a :dep cell; nothing to do")
        return 0
    seconds = run_dep_cells(cells, args.timeout)
    what = "compiled the notebooks' :dep cells" if args.command == "warm" else "first :dep cell answered"
    print(f"kernel_client: {what} in {seconds:.1f} s (kernel start included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
