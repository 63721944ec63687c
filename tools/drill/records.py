"""Drill records as a hash chain: each drill files a Markdown and a JSON record in docs/drills/, and each record
holds the sha256 of the one before it, so a record changed after it was filed breaks the chain.

    python -m tools.drill --record DIR ...      the drill files DIR/<UTC date>-<time>.md and .json (filing.py)
    python -m tools.drill verify [DIR]          checks the chain (DIR: docs/drills)

A record is a pair with one name: `2026-12-02-133005.md`, what a team reads and files, and
`2026-12-02-133005.json`, which holds:
- `commit`: the commit the drill ran, and `uncommittedChanges`: whether the working tree differed from it;
- `plans`: the sha256 of each plan the drill used (`prod`, `dr`, `promoted`) - of the plan's JSON as
  `python -m tools.plan STACK --json` prints it, read and written again with sorted keys and no spaces
  (`plan_digests`);
- `previous`: the newest record before it, by file name, and the sha256 of that file (the JSON of a chained
  record; the Markdown of a record older than the chain);
- `markdownSha256`: the sha256 of its Markdown twin;
- `scenarios`: each scenario's `--json` object (with `assessment`, the readiness table's scenario), `world`,
  `throughput`;
- `sha256`: the sha256 of the record itself without this field (sorted keys, no spaces).

Only files named like records count: a chained record is `<date>-<time>` (`-<n>` added when two drills file in
the same second), and records older than the chain are Markdown alone, named from their date
(docs/drills/2026-11-29-make-drill.md), sorting before the first chained record; the newest of them is the
chain's anchor: the first chained record links to it, so it cannot change unnoticed either. Any other file
(a README.md) is not a record. A dated Markdown without a JSON twin after the first chained record breaks the
chain, and so does a chained JSON without its Markdown.

`verify` reads at most 4 MB of a record and never opens a file that is not a regular file (a FIFO, a device).
Exit codes: 0 the chain is intact (or the folder holds no record); 1 a record's content or link is wrong - one
line names the first such record and what does not match; 2 bad usage (DIR is not a folder, or a record is not
a readable JSON object: too large, not a regular file, not UTF-8 JSON, nested too deeply).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

FOLDER = Path("docs/drills")
FORMAT = 1
EXIT_INTACT, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2
MAX_RECORD_BYTES = 4 * 1024 * 1024
CHAINED = re.compile(r"(\d{4}-\d{2}-\d{2}-\d{6})(?:-(\d+))?")
"""The name (stem) of a chained record: UTC date and time, and a counter when two drills file in one second."""
DATED = re.compile(r"\d{4}-\d{2}-\d{2}\b")


class Unreadable(ValueError):
    """A record that cannot be read as one: not a regular file, too large, not a JSON object."""


def sha256(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def canonical(document: Any) -> bytes:
    """`document` as JSON with sorted keys and no spaces: the bytes its sha256 covers."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def plan_digests(plans: Mapping[str, Any]) -> dict[str, str]:
    """`{"prod": sha256, ...}` of each plan document (its JSON with sorted keys and no spaces)."""
    return {name: sha256(canonical(plan)) for name, plan in plans.items()}


def read(path: Path) -> bytes:
    """A record file's bytes: Unreadable (before opening it) if it is not a regular file, or if it is larger
    than MAX_RECORD_BYTES; OSError if it is missing."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise Unreadable(f"{path.name} is not a regular file")
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # swapped for a FIFO since the stat: never blocks
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise Unreadable(f"{path.name} is larger than {MAX_RECORD_BYTES // 2**20} MB, more than a drill record holds")
    return data


@dataclass(frozen=True)
class Record:
    """One record of the folder: its Markdown, and its JSON when it is chained."""

    markdown: Path
    json: Path | None

    @property
    def name(self) -> str:
        """The record's file name (the JSON's when chained)."""
        return (self.json or self.markdown).name

    @property
    def linked_file(self) -> Path:
        """The file whose sha256 the next record holds."""
        return self.json or self.markdown


def chain_order(stem: str) -> tuple[str, int]:
    """The sort key of a record's name: a chained record by date, time and counter."""
    match = CHAINED.fullmatch(stem)
    return (match[1], int(match[2] or 0)) if match else (stem, 0)


def chain(folder: Path) -> list[Record]:
    """The folder's records in chain order: the records older than the chain (dated Markdown alone, named before
    the first chained record) by name, then the chained records by UTC date and time - with a dated Markdown
    alone that sorts after the first of them, and a chained JSON without its Markdown, so that verify names
    them. Other files are not records."""
    names = {path.name for path in folder.iterdir()}
    stems = sorted({name.rsplit(".", 1)[0] for name in names if CHAINED.fullmatch(name.rsplit(".", 1)[0])
                    and name.endswith((".md", ".json"))}, key=chain_order)
    chained = [Record(folder / f"{stem}.md", folder / f"{stem}.json") for stem in stems if f"{stem}.json" in names]
    first = chain_order(chained[0].json.stem) if chained and chained[0].json else None
    alone = sorted((folder / name for name in names if name.endswith(".md") and DATED.match(name)
                    and f"{name[:-3]}.json" not in names), key=lambda path: chain_order(path.stem))
    older = [Record(md, None) for md in alone if first is None or chain_order(md.stem) < first]
    later = [Record(md, None) for md in alone if first is not None and chain_order(md.stem) > first]
    return older + sorted(chained + later, key=lambda record: chain_order(Path(record.name).stem))


class BrokenChain(Exception):
    """A record whose content or link is wrong: the message names it."""


def load(record: Record) -> dict[str, Any]:
    """A chained record's JSON object, or Unreadable saying why not."""
    assert record.json is not None
    try:
        document = json.loads(read(record.json))
    except RecursionError:
        raise Unreadable(f"{record.json.name} is nested too deeply for a drill record") from None
    if not isinstance(document, dict):
        raise Unreadable(f"{record.json.name} is not a JSON object")
    return document


def _describe(link: Any) -> str:
    if not link:
        return "nothing"
    if not isinstance(link, dict):
        return f"{type(link).__name__} {str(link)[:40]!r} (not a link)"
    return f"{link.get('record')} {str(link.get('sha256'))[:12]}"


def verify(folder: Path) -> tuple[int, str | None]:
    """(the number of chained records, the anchor's name), or BrokenChain naming the first record whose content or
    link is wrong; Unreadable or OSError for a record that cannot be read."""
    previous: Record | None = None
    chained = 0
    records = chain(folder)
    for record in records:
        if record.json is None:
            if chained:
                raise BrokenChain(f"{record.markdown.name} has no JSON record ({record.markdown.stem}.json) but "
                                  "comes after the first chained record")
            previous = record
            continue
        if not os.path.lexists(record.markdown):
            raise BrokenChain(f"{record.json.name} has no Markdown record ({record.markdown.name})")
        document = load(record)
        claimed = document.pop("sha256", None)
        if claimed != sha256(canonical(document)):
            raise BrokenChain(f"{record.json.name}: its content does not match its sha256 (changed after it was "
                              "written)")
        if document.get("markdown") != record.markdown.name:
            raise BrokenChain(f"{record.json.name}: it names its Markdown {str(document.get('markdown'))[:60]!r}, "
                              f"not {record.markdown.name} (renamed after it was written)")
        if document.get("markdownSha256") != sha256(read(record.markdown)):
            raise BrokenChain(f"{record.markdown.name}: its content does not match the markdownSha256 of "
                              f"{record.json.name} (changed after it was written)")
        link = document.get("previous")
        expected = None if previous is None else {"record": previous.linked_file.name,
                                                  "sha256": sha256(read(previous.linked_file))}
        if link != expected:
            wanted = "nothing" if expected is None else f"{expected['record']} {expected['sha256'][:12]}"
            raise BrokenChain(f"{record.json.name}: its link says {_describe(link)}, but the record before it is "
                              f"{wanted} (the previous record changed, or a record was removed or added)")
        previous, chained = record, chained + 1
    anchors = [record.markdown.name for record in records if record.json is None]
    return chained, anchors[-1] if anchors else None


@dataclass(frozen=True)
class LastDrill:
    """The newest record whose drill met its objectives for one of the readiness table's scenarios."""

    date: str
    rto_seconds: float | None
    """The worst plan-clock RTO plus declared decision among the record's scenarios measured against it."""
    rpo_seconds: float | None
    """The worst measured RPO among those scenarios held to the assessment's RPO objective."""
    failed: str | None = None
    """The date of a newer record whose drill of this scenario failed (not met, or a recovery step failed)."""


class Drills(dict[str, LastDrill]):
    """Readiness scenario -> its LastDrill; `skipped`: each record the table could not read ("name: why");
    `failed`: readiness scenario -> the date of its newest failed drill; `started`: each record's name and the
    date its drill started."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: list[str] = []
        self.failed: dict[str, str] = {}
        self.started: list[tuple[str, date]] = []


def _seconds(scenario: Mapping[str, Any], key: str) -> float | None:
    value = scenario.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value) or value < 0):
        raise Unreadable(f"its {key} is {str(value)[:20]!r}, not a number of seconds")
    return value


def _measured(document: Mapping[str, Any], name: str) -> tuple[date, dict[str, list[Mapping[str, Any]]]]:
    """A record's start date and its scenarios by readiness scenario, or Unreadable saying what is wrong."""
    try:
        started = date.fromisoformat(str(document.get("startedAt") or name)[:10])
    except ValueError:
        raise Unreadable(f"its startedAt {str(document.get('startedAt'))[:20]!r} is not a date") from None
    scenarios = document.get("scenarios") or []
    if not isinstance(scenarios, list) or not all(isinstance(s, dict) for s in scenarios):
        raise Unreadable("its scenarios are not a list of objects")
    by_assessment: dict[str, list[Mapping[str, Any]]] = {}
    for scenario in scenarios:
        assessment = scenario.get("assessment")
        if assessment is not None and not isinstance(assessment, str):
            raise Unreadable(f"the assessment of {str(scenario.get('scenario'))[:40]} is not a name")
        for key in ("planClockRtoSeconds", "decisionSeconds", "measuredRpoSeconds", "estimatedRtoSeconds"):
            _seconds(scenario, key)
        if assessment and scenario.get("estimatedRtoSeconds") is not None:
            by_assessment.setdefault(assessment, []).append(scenario)
    return started, by_assessment


def _worst(values: list[float | None]) -> float | None:
    return None if None in values else max(value for value in values if value is not None)


def last_drills(folder: Path) -> Drills:
    """Readiness scenario (`regionalOutage`...) -> its last drill: the newest chained record with a scenario
    measured against the model's estimate for it whose drill met its objectives, flagged with a newer record
    whose drill of it failed. Reads JSON only; a record it cannot read is skipped and named in `skipped`."""
    found = Drills()
    for record in reversed(chain(folder) if folder.is_dir() else []):
        if record.json is None:
            continue
        try:
            started, by_assessment = _measured(load(record), record.json.stem)
        except (ValueError, OSError) as exc:  # `verify` names it too; the table reads the records it can
            found.skipped.append(f"{record.json.name}: {exc}")
            continue
        found.started.append((record.json.name, started))
        for name, measured in by_assessment.items():
            if name in found:
                continue
            if any(s.get("met") is False or s.get("failure") for s in measured):
                found.failed.setdefault(name, started.isoformat())
                continue
            rto = [None if s.get("planClockRtoSeconds") is None
                   else s["planClockRtoSeconds"] + (s.get("decisionSeconds") or 0) for s in measured]
            held = [s.get("measuredRpoSeconds") for s in measured if s.get("targetRpoSeconds") is not None]
            found[name] = LastDrill(started.isoformat(), _worst(rto), _worst(held) if held else None,
                                    found.failed.get(name))
    return found


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.drill verify [DIR]`: check the chain; one line either way."""
    cli = argparse.ArgumentParser(prog="python -m tools.drill verify",
                                  description="Check that the drill records in DIR form an unbroken hash chain.")
    cli.add_argument("folder", nargs="?", type=Path, default=FOLDER, metavar="DIR",
                     help=f"the folder of records (default {FOLDER})")
    args = cli.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder of drill records", file=sys.stderr)
        return EXIT_USAGE
    try:
        chained, anchor = verify(args.folder)
    except BrokenChain as exc:
        print(f"verify: chain broken at {exc}", file=sys.stderr)
        return EXIT_BROKEN
    except (ValueError, OSError) as exc:  # Unreadable, json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        print(f"error: a record in {args.folder} cannot be read: {str(exc)[:300]}", file=sys.stderr)
        return EXIT_USAGE
    anchored = f" after the anchor {anchor} (older than the chain)" if anchor else ""
    print(f"verify: {chained} chained records in {args.folder}{anchored}, chain intact")
    return EXIT_INTACT
