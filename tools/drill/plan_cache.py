"""Offline plans kept by a digest of everything a plan is made from, so that tests which plan the same inputs many
times run the program once: the plans the STAND-IN Pulumi CLI (tools/drill/pulumi_cli.py) makes for `up` and for
the drill's checkpoint, and the planners' output a drill starts from (tools/drill/plans.py).

$RFDR_PULUMI_PLAN_CACHE names the folder; a test sets it. Unset, nothing is kept or read. A drill never hands it
to the `up` of an operator's command it runs: the drill times `up` as part of the recovery it measures, and a
real `pulumi up` runs the program every time; its own setup's plans are not timed.

The digest covers what `tools.offline.plan_stack` and `tools.plan` read: the program's source (`__main__.py`,
components/, core/, tools/, policies/), the project's stack files, the installed Pulumi SDK and providers, the
Python version, and the words naming the plan (stack, overrides, command). A change to any of them makes a new
digest, so a kept plan is never one the program would no longer make (the offline plan is the same every time it
is made from the same inputs: tools/offline.py sorts it by URN).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import sys
from pathlib import Path
from typing import Any

VARIABLE = "RFDR_PULUMI_PLAN_CACHE"
SOURCE_FOLDERS = ("components", "core", "tools", "policies")
SDK_PREFIX = "pulumi"
"""Distributions whose name starts with this: the SDK, the providers and pulumiverse's."""


def folder() -> Path | None:
    """The cache folder $RFDR_PULUMI_PLAN_CACHE names, if any."""
    named = os.environ.get(VARIABLE)
    return Path(named) if named else None


def digest(root: Path, *words: str) -> str:
    """The digest of the inputs of a plan of the project at `root`, named by `words` (the stack and its overrides,
    or a planner's command line)."""
    found = [root / "__main__.py", *root.glob("Pulumi*.yaml")]
    for name in SOURCE_FOLDERS:
        found += (root / name).rglob("*.py")
    hashed = hashlib.sha256()
    for path in sorted(found):
        hashed.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    sdks = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                  if str(d.metadata["Name"]).lower().startswith(SDK_PREFIX))
    hashed.update("\0".join([sys.version, *sdks, *words]).encode())
    return hashed.hexdigest()


def cached(cache: Path, key: str) -> Any | None:
    """What was kept under `key`, if anything."""
    try:
        return pickle.loads((cache / f"{key}.pickle").read_bytes())  # noqa: S301 - our own file
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return None


def keep(cache: Path, key: str, value: Any) -> None:
    """Keep `value` under `key` (written whole, then renamed: a concurrent reader sees all of it or nothing)."""
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"{key}.{os.getpid()}.new"
    partial.write_bytes(pickle.dumps(value))
    partial.replace(cache / f"{key}.pickle")
