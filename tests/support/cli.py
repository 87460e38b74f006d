"""The `clearing` command as a user runs it, against a given broker."""

from __future__ import annotations

import os
import subprocess
import sys


def clearing(*args: str, bootstrap: str) -> subprocess.CompletedProcess[str]:
    """`python -m clearing.cli ARGS` with `KAFKA_BOOTSTRAP=bootstrap`; output captured."""
    env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "clearing.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
