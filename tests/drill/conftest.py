"""The small drill the drill tests share: run once per session, when a test asks for it."""

from __future__ import annotations

import json
import time

import pytest

from tests.drill.runs import drill


@pytest.fixture(scope="session")
def small_drill(tmp_path_factory) -> dict:
    """One small drill of every scenario: its exit code, JSON, stderr and Markdown record."""
    markdown = tmp_path_factory.mktemp("drill") / "drill.md"
    started = time.monotonic()
    result = drill("--json", "--markdown", str(markdown))
    return {"result": result, "seconds": time.monotonic() - started, "markdown": markdown.read_text()
            if markdown.exists() else "", "scenarios": {r["scenario"]: r for r in json.loads(result.stdout or "[]")}}
