"""Running the backup job as its operators do: a process per command, its exit code and its one JSON line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tools.offline import ROOT

FAST_STORAGE = {"BACKUP_STORAGE_RETRY_SECONDS": "2"}
"""A storage retry budget short enough for outage tests."""


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m backup_job ARGS` started with `env` added to this process's environment."""
    return subprocess.Popen([sys.executable, "-m", "backup_job", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def job(*args: str, env: dict | None = None, timeout: float = 120) -> tuple[int, str, str, float]:
    """Run `python -m backup_job ARGS` to its end: (exit code, stdout, stderr, seconds)."""
    began = time.monotonic()
    process = start(*args, env=env)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err, time.monotonic() - began


def one_log_line(out: str) -> dict:
    """The one JSON log line a command printed (it must print exactly one)."""
    lines = out.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one log line, got {out!r}"
    return json.loads(lines[0])


def children_named(pid: int, name: str) -> list[int]:
    """The PIDs of process `pid`'s children whose command is `name` (pg_dump, pg_restore)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(tail.split()[1]) == pid and head.split("(", 1)[1] == name:
            found.append(int(stat.parent.name))
    return found
