"""The small drill the drill tests share: run once per test run, when a test first asks for it.

Under pytest-xdist each worker has its own session, so a session fixture alone would run the drill once per worker
that asks for it (drills take a machine-wide lock, so the second would wait and then run it all again). The first
worker to ask runs it and leaves the result in the run's shared temporary folder; the others wait on a file lock and
read it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.drill.runs import drill
from tools.drill import plan_cache


def _run(folder: Path, plans: Path) -> dict[str, Any]:
    markdown = folder / "drill.md"
    started = time.monotonic()
    result = drill("--json", "--markdown", str(markdown), env={**os.environ, plan_cache.VARIABLE: str(plans)})
    return {"result": {"args": result.args, "returncode": result.returncode, "stdout": result.stdout,
                       "stderr": result.stderr},
            "seconds": time.monotonic() - started, "markdown": markdown.read_text() if markdown.exists() else ""}


def _loaded(raw: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.CompletedProcess(**raw["result"])
    return {**raw, "result": result, "scenarios": {r["scenario"]: r for r in json.loads(result.stdout or "[]")}}


@pytest.fixture(scope="session")
def drill_plans(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The plan cache ($RFDR_PULUMI_PLAN_CACHE, tools/drill/plan_cache.py) of the drills the tests run, shared by
    the run's workers: each drill's setup plans the unchanged stacks once for all, instead of in two planners and
    the stand-in CLI's checkpoint every time. The `up` a drill times still runs the program."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "drill-plans"


@pytest.fixture(scope="session")
def small_drill(tmp_path_factory: pytest.TempPathFactory, worker_id: str, drill_plans: Path) -> dict[str, Any]:
    """One small drill of every scenario: its exit code, JSON (by scenario), stderr and Markdown record."""
    if worker_id == "master":  # not under xdist
        return _loaded(_run(tmp_path_factory.mktemp("drill"), drill_plans))
    shared = tmp_path_factory.getbasetemp().parent / "small-drill"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = shared / "result.json"
        if not cached.exists():
            cached.write_text(json.dumps(_run(shared, drill_plans)))
        return _loaded(json.loads(cached.read_text()))
