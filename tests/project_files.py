"""The project's own Python modules, for the tests that scan them (sizes, contract literals, SDK internals).

Every .py file under the project root counts except what is not the project's: git's folder, the tools' caches
and every virtualenv - `.venv`, and any other folder holding a `pyvenv.cfg` (the policy pack's `policies/venv`,
which the first `pulumi preview --policy-pack policies` creates) or named `site-packages`.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_THE_PROJECT = frozenset({".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                             ".hypothesis", "site-packages"})


def _ours(folder: Path, name: str) -> bool:
    return name not in NOT_THE_PROJECT and not (folder / name / "pyvenv.cfg").exists()


def project_modules(under: Path = ROOT) -> list[Path]:
    """Every .py file of the project under `under`, by path (folders that are not the project's are not entered)."""
    found = []
    for folder, subfolders, files in os.walk(under):
        subfolders[:] = [name for name in subfolders if _ours(Path(folder), name)]
        found += [Path(folder) / name for name in files if name.endswith(".py")]
    return sorted(found)
