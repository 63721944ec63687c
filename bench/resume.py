"""`--resume FILE`: a long benchmark in pieces. The run issue 25 asks for (two datasets, three sizes up to 2 GB,
three runs of every tool) takes hours on a two-core machine; a run stopped between two sizes loses only the size
in progress when each finished dataset and size is kept.

FILE holds the settings that make rows comparable (`--repeat`, `--tools`, `--jobs`, and the code measured: the
committed trees of backup_job/ and bench/) and every finished dataset and size's rows. A run with FILE takes the
rows already in it instead of running those again, runs the rest, and writes FILE again after each (a temporary
file renamed over it, so a kill never leaves half of one). A FILE made with other settings or code is refused:
its rows would not be comparable.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

MEASURED = ("backup_job", "bench")  # the code whose figures the rows are


def code() -> str:
    """The measured code as committed (git's tree of each MEASURED folder at HEAD; a commit that changes neither
    keeps it), or "unknown" outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", *(f"HEAD:{folder}" for folder in MEASURED)],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    trees = done.stdout.split()
    return " ".join(f"{folder}@{tree[:12]}" for folder, tree in zip(MEASURED, trees, strict=True)) \
        if done.returncode == 0 and len(trees) == len(MEASURED) else "unknown"


class Mismatch(Exception):
    """FILE cannot be resumed with these settings (or is not a record of this benchmark): one line."""


class Record:
    """The kept rows of one benchmark run, by dataset and size."""

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path, self.settings = path, settings
        self.rows: list[dict] = []
        if not path.exists():
            return
        try:
            document = json.loads(path.read_text())
            kept, rows = document["settings"], document["rows"]
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise Mismatch(f"{path} is not a record of this benchmark ({type(exc).__name__}): use another file") from None
        if kept != settings:
            differ = ", ".join(f"{key} {kept.get(key)!r} there, {value!r} here" for key, value in settings.items()
                               if kept.get(key) != value)
            raise Mismatch(f"{path} was made with other settings ({differ}): use another file")
        self.rows = [row for row in rows if isinstance(row, dict)]

    def finished(self, dataset: str, size_mb: int) -> list[dict]:
        """The rows kept for `dataset` at `size_mb` (none: it was not run yet)."""
        return [row for row in self.rows if row.get("dataset") == dataset and row.get("sizeMb") == size_mb]

    def keep(self, rows: list[dict]) -> None:
        """Add one finished dataset and size's rows, and write the file again."""
        self.rows += rows
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps({"settings": self.settings, "rows": self.rows}, indent=1))
        os.replace(partial, self.path)
