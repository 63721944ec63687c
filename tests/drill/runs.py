"""Running `python -m tools.drill` from the drill tests: as an operator runs it, and only where it can run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.drill import plan_cache
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


def start_and_wait_for_the_world(plans: Path) -> subprocess.Popen:
    """A dns-loss drill started (reading the plan cache `plans`), once its world is up: for a test to kill."""
    process = subprocess.Popen([sys.executable, "-m", "tools.drill", "--scenario", "dns-loss"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, plan_cache.VARIABLE: str(plans)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = subprocess.run(["ip", "netns", "pids", "rfdr-us"], capture_output=True, text=True).stdout.split()
        if pids and process.poll() is None:
            return process
        time.sleep(0.2)
    process.kill()
    pytest.fail("the drill's world did not come up within 60 s")


def world_processes(folder: Path) -> list[str]:
    """The command lines of the running processes that name `folder` (a drill world's)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(folder) in text:
            found.append(text)
    return found
