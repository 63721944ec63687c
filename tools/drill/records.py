"""Drill records as a hash chain: each drill files a Markdown and a JSON record in docs/drills/, and each record
holds the sha256 of the one before it, so a record changed after it was filed breaks the chain.

    python -m tools.drill --record DIR ...      the drill writes DIR/<UTC date>-<time>.md and .json
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

Records older than the chain (a Markdown without a JSON twin, such as docs/drills/2026-11-29-make-drill.md)
come first, whatever their names; the newest of them is the chain's anchor: the first chained record links to
it, so it cannot change unnoticed either. A Markdown without a JSON twin after the first chained record breaks
the chain.

`verify` exit codes: 0 the chain is intact (or the folder holds no record); 1 a record's content or link is
wrong - one line names the first such record and what does not match; 2 bad usage (DIR is not a folder, or a
record is not readable JSON).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FOLDER = Path("docs/drills")
FORMAT = 1
EXIT_INTACT, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


def sha256(data: bytes) -> str:
    """The hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def _canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def plan_digests(plans: Mapping[str, Any]) -> dict[str, str]:
    """`{"prod": sha256, ...}` of each plan document (its JSON with sorted keys and no spaces)."""
    return {name: sha256(_canonical(plan)) for name, plan in plans.items()}


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


def chain(folder: Path) -> list[Record]:
    """The folder's records in chain order: records older than the chain first, then the chained ones, each
    group by name (UTC date and time)."""
    records = [Record(md, md.with_suffix(".json") if md.with_suffix(".json").exists() else None)
               for md in folder.glob("*.md")]
    return sorted(records, key=lambda r: (r.json is not None, r.markdown.name))


class BrokenChain(Exception):
    """A record whose content or link is wrong: the message names it."""


def _load(record: Record) -> dict[str, Any]:
    assert record.json is not None
    document = json.loads(record.json.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{record.json.name} is not a JSON object")
    return document


def verify(folder: Path) -> tuple[int, str | None]:
    """(the number of chained records, the anchor's name), or BrokenChain naming the first record whose content or
    link is wrong."""
    previous: Record | None = None
    chained = 0
    for record in chain(folder):
        if record.json is None:
            if chained:
                raise BrokenChain(f"{record.markdown.name} has no JSON record ({record.markdown.stem}.json) but "
                                  "comes after the first chained record")
            previous = record
            continue
        document = _load(record)
        claimed = document.pop("sha256", None)
        if claimed != sha256(_canonical(document)):
            raise BrokenChain(f"{record.json.name}: its content does not match its sha256 (changed after it was "
                              "written)")
        if document.get("markdownSha256") != sha256(record.markdown.read_bytes()):
            raise BrokenChain(f"{record.markdown.name}: its content does not match the markdownSha256 of "
                              f"{record.json.name} (changed after it was written)")
        link = document.get("previous")
        expected = None if previous is None else {"record": previous.linked_file.name,
                                                  "sha256": sha256(previous.linked_file.read_bytes())}
        if link != expected:
            said = "nothing" if not link else f"{link.get('record')} {str(link.get('sha256'))[:12]}"
            wanted = "nothing" if expected is None else f"{expected['record']} {expected['sha256'][:12]}"
            raise BrokenChain(f"{record.json.name}: its link says {said}, but the record before it is {wanted} (the "
                              "previous record changed, or a record was removed or added)")
        previous, chained = record, chained + 1
    anchors = [record.markdown.name for record in chain(folder) if record.json is None]
    return chained, anchors[-1] if anchors else None


def write(folder: Path, markdown: str, scenarios: Sequence[Mapping[str, Any]], world: Mapping[str, Any],
          throughput: Mapping[str, Any], plans: Mapping[str, str], now: datetime | None = None,
          uncommitted: bool = False) -> tuple[Path, Path]:
    """File one drill's record in `folder`, linked to the newest record there: the Markdown (with a section
    naming the commit, the plans' and the previous record's sha256) and its JSON twin. `plans` maps each plan
    the drill used to its sha256 (`plan_digests`); `uncommitted`: the drill ran with changes the commit lacks."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = (now or datetime.now(UTC)).strftime("%Y-%m-%d-%H%M%S")
    md_path, json_path = folder / f"{stem}.md", folder / f"{stem}.json"
    if md_path.exists() or json_path.exists():
        raise FileExistsError(f"{md_path} already exists: a record is never overwritten")
    records = chain(folder)
    previous = None if not records else {"record": records[-1].linked_file.name,
                                         "sha256": sha256(records[-1].linked_file.read_bytes())}
    changes = " with uncommitted changes (the commit alone does not reproduce this drill)" if uncommitted else ""
    section = ["", "## Record", "", f"- commit: `{world.get('commit', '?')}`{changes}",
               *(f"- plan {name}: sha256 `{digest}`" for name, digest in sorted(plans.items())),
               "- previous record: " + ("none" if previous is None else f"{previous['record']}, sha256 "
                                                                        f"`{previous['sha256']}`"),
               f"- verify: `python -m tools.drill verify {folder}`", ""]
    md_text = markdown.rstrip("\n") + "\n" + "\n".join(section)
    document: dict[str, Any] = {
        "format": FORMAT, "startedAt": world.get("startedAt"), "commit": world.get("commit"),
        "uncommittedChanges": uncommitted, "plans": dict(plans),
        "previous": previous, "markdown": md_path.name, "markdownSha256": sha256(md_text.encode()),
        "world": dict(world), "throughput": dict(throughput), "scenarios": [dict(s) for s in scenarios]}
    document["sha256"] = sha256(_canonical(document))
    md_path.write_text(md_text)
    json_path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return md_path, json_path


@dataclass(frozen=True)
class LastDrill:
    """What the newest record measured for one of the readiness table's scenarios."""

    date: str
    rto_seconds: float | None
    """The worst plan-clock RTO plus declared decision among the record's scenarios measured against it."""
    rpo_seconds: float | None


def last_drills(folder: Path) -> dict[str, LastDrill]:
    """Readiness scenario (`regionalOutage`...) -> its last drill: the newest chained record with a scenario
    measured against the model's estimate for it. Reads JSON only."""
    found: dict[str, LastDrill] = {}
    for record in reversed(chain(folder) if folder.is_dir() else []):
        if record.json is None:
            continue
        try:
            document = _load(record)
        except (ValueError, OSError):  # `verify` reports it; the readiness table reads the records it can
            continue
        date = str(document.get("startedAt") or record.name)[:10]
        by_assessment: dict[str, list[Mapping[str, Any]]] = {}
        for scenario in document.get("scenarios") or []:
            if scenario.get("assessment") and scenario.get("estimatedRtoSeconds") is not None:
                by_assessment.setdefault(scenario["assessment"], []).append(scenario)
        for name, measured in by_assessment.items():
            if name not in found:
                rto = [None if s.get("planClockRtoSeconds") is None
                       else s["planClockRtoSeconds"] + (s.get("decisionSeconds") or 0) for s in measured]
                rpo = [s.get("measuredRpoSeconds") for s in measured]
                found[name] = LastDrill(date, None if None in rto else max(r for r in rto if r is not None),
                                        None if None in rpo else max(r for r in rpo if r is not None))
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
    except (ValueError, OSError) as exc:  # json.JSONDecodeError is a ValueError
        print(f"error: a record in {args.folder} cannot be read: {exc}", file=sys.stderr)
        return EXIT_USAGE
    anchored = f" after the anchor {anchor} (older than the chain)" if anchor else ""
    print(f"verify: {chained} chained records in {args.folder}{anchored}, chain intact")
    return EXIT_INTACT
