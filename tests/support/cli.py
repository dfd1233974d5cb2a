"""The real `tessera` command, run in a new process with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Enough to run a program; none of Tessera's configuration. PYTHONPATH stays so a checkout
# run from elsewhere still imports its own code.
KEPT = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")
CONSOLE_SCRIPT = Path(sys.executable).with_name("tessera")


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: os.environ[k] for k in KEPT if k in os.environ}, **extra}


def tessera(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = (
        [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "tessera.cli"]
    )
    return subprocess.run(
        [*argv, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )
