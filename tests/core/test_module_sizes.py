"""No module of the repo is over MAX_MODULE_BYTES: past that a module holds more than one responsibility, and a
reader needs more than one sitting to hold it. Split it by responsibility (one scenario, one fault family, one
component per module), not by line count.

Every .py file under the project root counts - program, components, core, policies, job, tools, bench and tests
- except the virtualenv, git's folder and the tools' caches.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_BYTES = 16 * 1024
NOT_THE_PROJECT = frozenset({".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                             ".hypothesis"})


def modules() -> list[Path]:
    """Every .py file of the project, by path (the excluded folders are not entered)."""
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in NOT_THE_PROJECT]
        found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(found)


def test_no_module_is_over_the_size_limit():
    over = [(path.relative_to(ROOT).as_posix(), path.stat().st_size) for path in modules()
            if path.stat().st_size > MAX_MODULE_BYTES]
    assert not over, (f"modules over {MAX_MODULE_BYTES} bytes; split each by responsibility: "
                      + ", ".join(f"{name} ({size} bytes)" for name, size in over))


def test_the_scan_covers_every_layer_and_skips_the_virtualenv():
    names = {path.relative_to(ROOT).as_posix() for path in modules()}
    for expected in ("__main__.py", "backup_job/cli.py", "bench/harness.py", "components/sites.py", "core/contracts.py",
                     "policies/raptorflow_policies/_plan.py", "tools/drill/harness.py", "tests/core/test_module_sizes.py"):
        assert expected in names, f"{expected} is not scanned"
    assert not any(name.startswith(".venv/") for name in names), "the virtualenv is not the project's"
