"""What the operator commands that drive the Pulumi CLI share (tools.failover, tools.adopt, tools.image): a
SIGTERM that ends the CLI they started too, the one line of a CLI failure worth printing, and a temporary copy
of a stack file with some settings changed, for a run that must never change the real one."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class Interrupted(BaseException):
    """SIGTERM: unwind so that every `finally` runs (temporary config files go), like Ctrl-C."""


def children() -> list[int]:
    """Pids of this process's children (the Pulumi CLI the Automation API started), from /proc."""
    found = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields and int(fields[1]) == os.getpid():
            found.append(int(entry.parent.name))
    return found


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM handler: pass it on to the CLI, as a terminal would (it cancels its operation and exits, so
    nothing keeps running after this process), then unwind."""
    for pid in children():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    raise Interrupted()


def last_error_line(exc: BaseException) -> str:
    """The last error line the CLI printed (the Automation API's CommandError holds `code:`/`stdout:`/`stderr:`)."""
    lines = [line.strip().removeprefix("stderr:").removeprefix("stdout:").strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [type(exc).__name__])[-1][:300]


def config_file_copy(stack_file: Path, settings: Mapping[str, Any], folder: Path) -> Path:
    """A copy of `stack_file` in `folder` whose config has `settings` (full keys, `raptorflow-dr:promoted`); a
    mapping value is merged into the key's mapping. Whichever spelling the file uses for a key is replaced, and
    the copy is written so that the CLI reads every other value back as the file had it."""
    from tools.stack_files import dump_yaml, load_yaml_mapping, namespaced

    document = load_yaml_mapping(stack_file)
    config = dict(document.get("config") or {})
    for key, value in settings.items():
        spellings = [k for k in config if namespaced(str(k)) == key]
        current = config.get(spellings[0]) if spellings else None
        for spelling in spellings:
            del config[spelling]
        merged = {**current, **value} if isinstance(current, dict) and isinstance(value, Mapping) else value
        config[key] = dict(merged) if isinstance(merged, Mapping) else merged
    copy = folder / stack_file.name
    copy.write_text(dump_yaml({**document, "config": config}))
    return copy
