"""The project's venv Python for the scripts in scripts/: a script started by another Python
(one without the venv's packages) runs itself again with `.venv/bin/python`, or stops with
advice when there is no venv yet."""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"


def reexec_or_exit(script: str, missing: str,
                   advice: str = "run scripts/lab.sh --install-only first") -> None:
    """Replaces this process by `script` (with the same arguments) under the venv's Python;
    if this already is that Python, or there is no venv, exits saying which packages are
    `missing` and what to do."""
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])
    sys.exit(f"{Path(script).name}: {missing} not importable; {advice}")
