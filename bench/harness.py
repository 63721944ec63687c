"""What every tool of the benchmark runs against: one size's server, emulator, source database and bucket, and
what a tool's run measured.

Each tool backs up the same database into the same storage emulator and restores
its copy into an empty database (or, for barman, a new cluster) on the same
server. Every command runs as its own process tree, measured by bench.measure.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from google.cloud import storage

from backup_job.database import Database
from bench.measure import Run, Watched
from tests.services import PostgresServer


@dataclass
class Outcome:
    """What one tool did in one repeat at one size."""

    backup: Run | None = None
    restore: Run | None = None
    stored_bytes: int = 0
    extra: dict[str, Run] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Bench:
    """The shared set-up of one size: server, emulator, source database, bucket and a scratch folder."""

    postgres: PostgresServer
    watched: Watched
    source_db: str
    bucket: storage.Bucket
    scratch: Path
    expected_rows: dict[str, int]
    local_dump: Path | None = None  # the job's dump, kept locally for the upload and restore floors

    @property
    def url(self) -> str:
        return self.postgres.url(self.source_db)

    def env(self, dbname: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a tool: libpq variables for `dbname` (default the source), the server's binaries first."""
        libpq = {k: v for k, v in Database(self.postgres.url(dbname or self.source_db)).child_env().items()
                 if k.startswith("PG")}
        return {**os.environ, **libpq, "PATH": f"{self.postgres.bindir}:{os.environ['PATH']}", **extra}

    def empty_database(self) -> str:
        name = f"restore_{uuid.uuid4().hex[:10]}"
        self.postgres.create_database(name)
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.postgres.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def check_restored(self, url: str, tool: str) -> None:
        """The restored rows are the source's (outside the timed part: a broken peer must not look fast)."""
        from backup_job.database import row_counts

        with psycopg.connect(url) as connection:
            found = row_counts(connection)
        if found != self.expected_rows:
            raise RuntimeError(f"{tool}: restored row counts {found} differ from the source's {self.expected_rows}")

    def dump_file(self) -> Path:
        """The job's dump as a local file (the upload and restore floors use it); a `pg_dump -Fc -Z1` of the source
        when the job is not among the tools run."""
        if self.local_dump is None:
            self.local_dump = self.scratch / "job.dump"
            subprocess.run([str(self.postgres.bindir / "pg_dump"), "--format=custom", "--compress=1", "--no-password",
                            f"--file={self.local_dump}"], env=self.env(), check=True)
        return self.local_dump

    def object_name(self, tool: str) -> str:
        return f"{tool}/{uuid.uuid4().hex}.dump"

    def size_of(self, name: str) -> int:
        blob = self.bucket.get_blob(name)
        return int(blob.size) if blob is not None and blob.size is not None else 0


def restore_into_empty(bench: Bench, tool: str, command_for: Callable[[str], Run]) -> Run:
    """`command_for(target)` against a new empty database, its rows checked against the source's; the database is
    dropped after."""
    target = bench.empty_database()
    try:
        measured = command_for(target)
        bench.check_restored(bench.postgres.url(target), tool)
        return measured
    finally:
        bench.drop(target)
