"""The small drill the drill tests share: run once per test run, when a test first asks for it.

Under pytest-xdist each worker has its own session, so a session fixture alone would run the drill once per worker
that asks for it (drills take a machine-wide lock, so the second would wait and then run it all again). The first
worker to ask runs it and leaves the result in the run's shared temporary folder; the others wait on a file lock and
read it.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.drill.runs import drill


def _run(folder: Path) -> dict[str, Any]:
    markdown = folder / "drill.md"
    started = time.monotonic()
    result = drill("--json", "--markdown", str(markdown))
    return {"result": {"args": result.args, "returncode": result.returncode, "stdout": result.stdout,
                       "stderr": result.stderr},
            "seconds": time.monotonic() - started, "markdown": markdown.read_text() if markdown.exists() else ""}


def _loaded(raw: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.CompletedProcess(**raw["result"])
    return {**raw, "result": result, "scenarios": {r["scenario"]: r for r in json.loads(result.stdout or "[]")}}


@pytest.fixture(scope="session")
def small_drill(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> dict[str, Any]:
    """One small drill of every scenario: its exit code, JSON (by scenario), stderr and Markdown record."""
    if worker_id == "master":  # not under xdist
        return _loaded(_run(tmp_path_factory.mktemp("drill")))
    shared = tmp_path_factory.getbasetemp().parent / "small-drill"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = shared / "result.json"
        if not cached.exists():
            cached.write_text(json.dumps(_run(shared)))
        return _loaded(json.loads(cached.read_text()))
