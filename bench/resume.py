"""`--resume FILE`: a long benchmark in pieces. The run issue 25 asks for (two datasets, three sizes up to 2 GB,
three runs of every tool) takes hours on a two-core machine, and one run of every tool at 2 GB of the `app`
dataset close to an hour; a run stopped in the middle loses only the run (one pass of every tool) in progress.

FILE holds the settings that make rows comparable (`--repeat`, `--tools`, `--jobs`, and the code measured: the
committed trees of backup_job/ and bench/), every finished dataset and size's rows, and the measurements of each
finished run of a size not finished yet. A run with FILE takes the rows already in it instead of running those
sizes again, and of a size in progress runs only the runs still missing (on a database filled again, to the same
size), then reports the medians of all its runs. It writes FILE again after each run (a temporary file renamed
over it, so a kill never leaves half of one). A FILE made with other settings or code is refused: its rows would
not be comparable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.harness import Outcome
from bench.measure import Run

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
        self.runs: list[dict] = []  # {"dataset", "sizeMb", "outcomes": {tool: Outcome as JSON}}, oldest first
        if not path.exists():
            return
        try:
            document = json.loads(path.read_text())
            kept, rows, runs = document["settings"], document["rows"], document.get("runs", [])
            outcomes_of = [(run["dataset"], run["sizeMb"], _outcomes(run["outcomes"])) for run in runs]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Mismatch(f"{path} is not a record of this benchmark ({type(exc).__name__}): use another file") from None
        if kept != settings:
            differ = ", ".join(f"{key} {kept.get(key)!r} there, {value!r} here" for key, value in settings.items()
                               if kept.get(key) != value)
            raise Mismatch(f"{path} was made with other settings ({differ}): use another file")
        self.rows = [row for row in rows if isinstance(row, dict)]
        self.runs = [{"dataset": dataset, "sizeMb": size_mb, "outcomes": outcomes}
                     for dataset, size_mb, outcomes in outcomes_of]

    def finished(self, dataset: str, size_mb: int) -> list[dict]:
        """The rows kept for `dataset` at `size_mb` (none: it was not run yet)."""
        return [row for row in self.rows if row.get("dataset") == dataset and row.get("sizeMb") == size_mb]

    def runs_of(self, dataset: str, size_mb: int) -> list[dict[str, Outcome]]:
        """What each finished run of `dataset` at `size_mb` measured, by tool (none: no run finished yet)."""
        return [run["outcomes"] for run in self.runs if run["dataset"] == dataset and run["sizeMb"] == size_mb]

    def keep_run(self, dataset: str, size_mb: int, outcomes: dict[str, Outcome]) -> None:
        """Add one finished run of every tool at one dataset and size, and write the file again."""
        self.runs.append({"dataset": dataset, "sizeMb": size_mb, "outcomes": outcomes})
        self._write()

    def keep(self, rows: list[dict]) -> None:
        """Add one finished dataset and size's rows (its runs are in them now), and write the file again."""
        self.rows += rows
        done = {(row.get("dataset"), row.get("sizeMb")) for row in rows}
        self.runs = [run for run in self.runs if (run["dataset"], run["sizeMb"]) not in done]
        self._write()

    def _write(self) -> None:
        runs = [{**run, "outcomes": {tool: dataclasses.asdict(o) for tool, o in run["outcomes"].items()}}
                for run in self.runs]
        partial = self.path.with_name(f".{self.path.name}.partial")
        partial.write_text(json.dumps({"settings": self.settings, "rows": self.rows, "runs": runs}, indent=1))
        os.replace(partial, self.path)


def _outcomes(kept: dict[str, dict]) -> dict[str, Outcome]:
    """The Outcomes of one run, from the JSON `_write` made of them."""
    def run(fields: dict | None) -> Run | None:
        return Run(**fields) if fields else None

    return {tool: Outcome(backup=run(o["backup"]), restore=run(o["restore"]), stored_bytes=o["stored_bytes"],
                          extra={name: Run(**fields) for name, fields in o["extra"].items()}, error=o["error"],
                          mode=o["mode"])
            for tool, o in kept.items()}
