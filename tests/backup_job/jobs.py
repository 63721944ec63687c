"""Running the backup job as its operators do: a process per command, its exit code and its one JSON line; and
what the tests look at around a run: the processes it starts, the bucket's objects, the target's tables.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from backup_job import storage as layout
from tests.services import postgres_bindir
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


def bindir() -> Path:
    """The PostgreSQL binaries' directory (the modules that run the job are skipped without one)."""
    found = postgres_bindir()
    assert found is not None
    return found


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


def wait_for_child(pid: int, name: str, seconds: float = 30) -> int:
    """The PID of process `pid`'s first child named `name`, once it has started."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = children_named(pid, name)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


def snapshot(bucket) -> dict[str, int]:
    """Every object in the bucket and its generation."""
    return {blob.name: blob.generation for blob in bucket.client.list_blobs(bucket)}


def assert_nothing_lost_and_no_new_backup(bucket, before: dict[str, int]) -> None:
    """Every object of `before` is still there unchanged, and no new object passes for a complete backup."""
    after = snapshot(bucket)
    for name, generation in before.items():
        assert after.get(name) == generation, f"{name} was deleted or replaced"
    found = layout.scan(bucket, "supabase")
    new_complete = [b.object for b in found.complete if b.object not in before]
    assert new_complete == [], f"a failed run left something that looks like a good backup: {new_complete}"


def new_database(postgres) -> str:
    """A new empty database on the test server: a restore's target."""
    return postgres.create_database(f"target_{uuid.uuid4().hex[:10]}")


def user_tables(url: str) -> list[str]:
    """Every table of the database outside the system schemas, as `schema.table`."""
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT schemaname || '.' || tablename FROM pg_tables "
                                  "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall()
    return sorted(row[0] for row in rows)
