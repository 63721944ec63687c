"""`--resume FILE`: a long benchmark in pieces. The run issue 25 asks for (two datasets, three sizes up to 2 GB,
three runs of every tool) takes hours on a two-core machine, and one run of every tool at 2 GB of the `app`
dataset about 100 minutes (its fill included); a run stopped in the middle loses only the run (one pass of every tool) in progress.

FILE holds the settings that make rows comparable (`--repeat`, `--tools`, `--jobs`, and the code measured: the
committed trees of backup_job/ and bench/), every finished dataset and size's rows, and the measurements of each
finished run of a size not finished yet. A run with FILE takes the rows already in it instead of running those
sizes again, and of a size in progress runs only the runs still missing (on a database filled again, to the same
size; its row's `fill` and `databaseBytes` are that fill's), then reports the medians of all its runs. It writes
FILE again after each run (a temporary file renamed over it, so a kill never leaves half of one). A FILE made
with other settings or code is refused: its rows would not be comparable.
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
            if not (isinstance(kept, dict) and isinstance(rows, list) and isinstance(runs, list)):
                raise TypeError("settings, rows and runs")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Mismatch(f"{path} is not a record of this benchmark ({type(exc).__name__}): use another file") from None
        if kept != settings:
            differ = ", ".join(f"{key} {kept.get(key)!r} there, {value!r} here" for key, value in settings.items()
                               if kept.get(key) != value)
            raise Mismatch(f"{path} was made with other settings ({differ}): use another file")
        try:
            self.runs = [{"dataset": _typed(run["dataset"], str), "sizeMb": _typed(run["sizeMb"], int),
                          "outcomes": _outcomes(run["outcomes"])} for run in runs]
        except (TypeError, KeyError, AttributeError) as exc:
            raise Mismatch(f"{path} holds a run this benchmark cannot read ({type(exc).__name__}: {exc}): "
                           "use another file") from None
        self.rows = [row for row in rows if isinstance(row, dict)]

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
        """Add one finished dataset and size's rows (its runs are in them now: they are dropped), and write the file
    again."""
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


def _typed(value: Any, kind: Any) -> Any:
    """`value` if it is a `kind` (a type or a union of types; a bool is no number), else TypeError."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"{value!r} is no {getattr(kind, '__name__', kind)}")
    return value


def _run(fields: Any) -> Run:
    """A Run from the JSON `_write` made of it: every field present, every figure a number."""
    numbers = {name: _typed(fields[name], int | float) for name in
               (f.name for f in dataclasses.fields(Run) if f.name != "cpu_by_program")}
    programs = _typed(fields["cpu_by_program"], dict)
    return Run(**numbers, cpu_by_program={_typed(k, str): _typed(v, int | float)
                                          for k, v in programs.items()})


def _outcomes(kept: Any) -> dict[str, Outcome]:
    """The Outcomes of one run, from the JSON `_write` made of them."""
    return {_typed(tool, str): Outcome(backup=_run(o["backup"]) if o["backup"] is not None else None,
                                       restore=_run(o["restore"]) if o["restore"] is not None else None,
                                       stored_bytes=_typed(o["stored_bytes"], int),
                                       extra={_typed(name, str): _run(fields) for name, fields in o["extra"].items()},
                                       error=o["error"] if o["error"] is None else _typed(o["error"], str),
                                       mode=_typed(o["mode"], str))
            for tool, o in _typed(kept, dict).items()}
