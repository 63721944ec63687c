"""Plans the STAND-IN Pulumi CLI (tools/drill/pulumi_cli.py) made for `up`, kept by a digest of everything a plan is
made from, so that tests which run `up` many times on unchanged inputs run the program once.

$RFDR_PULUMI_PLAN_CACHE names the folder; a test sets it. Unset - as in a drill, which times `up` as part of the
recovery it measures, and a real `pulumi up` runs the program every time - nothing is kept or read.

The digest covers what `tools.offline.plan_stack` reads: the program's source (`__main__.py`, components/, core/,
tools/), the project's stack files, the installed Pulumi SDK and providers, the Python version, the stack and the
override. A change to any of them makes a new digest, so a kept plan is never one the program would no longer make
(the offline plan is the same every time it is made from the same inputs: tools/offline.py sorts it by URN).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import pickle
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.offline import Plan

VARIABLE = "RFDR_PULUMI_PLAN_CACHE"
SOURCE_FOLDERS = ("components", "core", "tools")
SDK_PREFIX = "pulumi"
"""Distributions whose name starts with this: the SDK, the providers and pulumiverse's."""


def folder() -> Path | None:
    """The cache folder $RFDR_PULUMI_PLAN_CACHE names, if any."""
    named = os.environ.get(VARIABLE)
    return Path(named) if named else None


def digest(root: Path, stack: str, overrides: tuple[str, ...]) -> str:
    """The digest of the inputs of the plan of `stack` with `overrides` from the project at `root`."""
    found = [root / "__main__.py", *root.glob("Pulumi*.yaml")]
    for name in SOURCE_FOLDERS:
        found += (root / name).rglob("*.py")
    hashed = hashlib.sha256()
    for path in sorted(found):
        hashed.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    sdks = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                  if str(d.metadata["Name"]).lower().startswith(SDK_PREFIX))
    hashed.update("\0".join([sys.version, *sdks, stack, *overrides]).encode())
    return hashed.hexdigest()


def cached(cache: Path, key: str) -> tuple[Plan, dict[str, Plan]] | None:
    """The plan kept under `key` and the plans of the stacks it referenced, if there is one."""
    try:
        kept: tuple[Plan, dict[str, Plan]] = pickle.loads((cache / f"{key}.pickle").read_bytes())  # noqa: S301 - ours
    except (OSError, pickle.UnpicklingError, EOFError, ValueError):
        return None
    return kept


def keep(cache: Path, key: str, plan: Plan, as_filed: dict[str, Plan]) -> None:
    """Keep `plan` and the referenced stacks' plans under `key` (written whole, then renamed: a concurrent reader
    sees all of it or nothing)."""
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f"{key}.{os.getpid()}.new"
    partial.write_bytes(pickle.dumps((plan, as_filed)))
    partial.replace(cache / f"{key}.pickle")
