"""Filing a drill's record in a folder of records (tools/drill/records.py describes the chain): the Markdown and
its JSON twin, each written atomically, the JSON last, linked to the newest record there; and the commit and
state of the working tree a drill reads when it starts."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.drill.records import FORMAT, canonical, chain, chain_order, read, sha256


def provenance(root: Path) -> dict[str, Any]:
    """`{"commit": short hash, "uncommittedChanges": bool}` of the working tree at `root`, read when a drill
    starts: whether tracked files differ from the commit the record names."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30,
                              check=False)
    commit, status = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.stdout.strip() or "?",
            "uncommittedChanges": status.returncode != 0 or bool(status.stdout.strip())}


def replace_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in its folder: a reader sees the old file or the whole
    new one, and a failed write leaves no half file."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _free_stem(folder: Path, when: datetime) -> str:
    stem = when.strftime("%Y-%m-%d-%H%M%S")
    for counter in range(1, 1000):
        if not any(os.path.lexists(folder / f"{stem}{suffix}") for suffix in (".md", ".json")):
            return stem
        stem = f"{when:%Y-%m-%d-%H%M%S}-{counter}"
    raise FileExistsError(f"{folder} already holds 1000 records filed at {when:%Y-%m-%d %H:%M:%S}")


def write(folder: Path, markdown: str, scenarios: Sequence[Mapping[str, Any]], world: Mapping[str, Any],
          throughput: Mapping[str, Any], plans: Mapping[str, str], now: datetime | None = None,
          uncommitted: bool = False) -> tuple[Path, Path]:
    """File one drill's record in `folder`, linked to the newest record there: the Markdown (with a section
    naming the commit, the plans' and the previous record's sha256) and its JSON twin, each written atomically,
    the JSON last. Two drills in one second get `-1`, `-2`... after the time; a record is never overwritten, nor
    filed before the newest one. `plans` maps each plan the drill used to its sha256 (`plan_digests`);
    `uncommitted`: the drill ran with changes the commit lacks."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, now or datetime.now(UTC))
    md_path, json_path = folder / f"{stem}.md", folder / f"{stem}.json"
    records = chain(folder)
    if records and records[-1].json is not None and chain_order(stem) < chain_order(records[-1].json.stem):
        raise ValueError(f"{md_path.name} would sort before the newest record {records[-1].name}: a record is "
                         "filed after the newest one")
    previous = None if not records else {"record": records[-1].linked_file.name,
                                         "sha256": sha256(read(records[-1].linked_file))}
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
    document["sha256"] = sha256(canonical(document))
    replace_atomically(md_path, md_text)
    replace_atomically(json_path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return md_path, json_path
