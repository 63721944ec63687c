"""Running `python -m tools.drill` from the drill tests: as an operator runs it, and only where it can run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.drill.__main__ import preflight
from tools.drill.world import DrillError
from tools.offline import ROOT

DRILL_TIMEOUT_SECONDS = 300


def _ready() -> str | None:
    try:
        preflight()
    except DrillError as exc:
        return str(exc)
    return None


NOT_READY = _ready()
MARKS = [pytest.mark.drill, pytest.mark.skipif(NOT_READY is not None, reason=f"drill cannot run: {NOT_READY}")]
"""The marks of a module of drill tests: marked `drill`, and skipped where a drill cannot run (not root...)."""


def drill(*args: str, timeout: float = DRILL_TIMEOUT_SECONDS, env: dict[str, str] | None = None,
          ) -> subprocess.CompletedProcess:
    """`python -m tools.drill ARGS` as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "tools.drill", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)
