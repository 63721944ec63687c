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
import zstandard
from google.cloud import storage

from backup_job.database import Database
from bench.measure import Run, Watched
from tests.services import PostgresServer

SINGLE, PARALLEL = "single", "parallel"  # a backup's mode: one archive, or the big tables' rows in objects of their own
ZSTD = "zstd"  # the manifest's compression when the job compressed the archive stream itself


@dataclass
class Outcome:
    """What one tool did in one repeat at one size."""

    backup: Run | None = None
    restore: Run | None = None
    stored_bytes: int = 0
    extra: dict[str, Run] = field(default_factory=dict)
    error: str | None = None
    mode: str = SINGLE


@dataclass(frozen=True)
class JobBackup:
    """What the backup job's manifest says about one backup: its objects, compression and mode."""

    manifest: dict

    @property
    def mode(self) -> str:
        return str(self.manifest.get("mode", SINGLE))

    @property
    def compression(self) -> str:
        """`zstd` when the job compressed the stream itself; anything else means the object is the archive."""
        return str(self.manifest.get("compression", "pg_dump"))

    @property
    def objects(self) -> list[str]:
        """The dump object first, then a parallel backup's table objects."""
        return [self.manifest["object"], *(table["object"] for table in self.manifest.get("tables", []))]


@dataclass
class Bench:
    """The shared set-up of one size: server, emulator, source database, bucket and a scratch folder."""

    postgres: PostgresServer
    watched: Watched
    source_db: str
    bucket: storage.Bucket
    scratch: Path
    expected_rows: dict[str, int]
    jobs: int = 2  # pg_dump -Fd -j, pg_restore -j and the job's restore --jobs
    local_dump: Path | None = None  # the custom-format archive the restore floors restore (see dump_file)
    stored_copy: Path | None = None  # the job's stored bytes (every object, one after another) for the upload floor

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

    def _pg_dump_file(self, path: Path, *options: str) -> Path:
        subprocess.run([str(self.postgres.bindir / "pg_dump"), "--format=custom", *options, "--no-password",
                        f"--file={path}"], env=self.env(), check=True)
        return path

    def dump_file(self) -> Path:
        """The archive the restore floors restore: the job's (decompressed when it is zstd); a `pg_dump -Fc` of the
        source when the job is not among the tools run."""
        if self.local_dump is None:
            self.local_dump = self._pg_dump_file(self.scratch / "archive.dump")
        return self.local_dump

    def stored_file(self) -> Path:
        """The bytes the upload floor sends: the job's stored bytes, or the restore floors' archive without it."""
        return self.stored_copy or self.dump_file()

    def keep_job_backup(self, backup: JobBackup) -> None:
        """Keep the job's stored bytes and its archive as local files, once per size (outside any timed part).

        A single-mode backup's archive is its object, decompressed when zstd; a parallel backup's data is spread
        over table objects that no pg_restore reads, so its floors restore a `pg_dump -Fc -Z0` of the source."""
        if self.stored_copy is not None:
            return
        self.stored_copy = self.scratch / "job.stored"
        with self.stored_copy.open("wb") as out:
            for name in backup.objects:
                self.bucket.blob(name).download_to_file(out)
        if backup.mode != SINGLE:
            self.local_dump = self._pg_dump_file(self.scratch / "archive.dump", "--compress=0")
        elif backup.compression == ZSTD:
            self.local_dump = self.scratch / "job.dump"
            with self.stored_copy.open("rb") as source, self.local_dump.open("wb") as out:
                reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True)
                while block := reader.read(1 << 20):
                    out.write(block)
        else:
            self.local_dump = self.stored_copy

    def remove(self, names: list[str]) -> None:
        """Delete a tool's objects once measured: the emulator keeps them on this machine's disk."""
        for name in names:
            self.bucket.blob(name).delete()

    def forget_files(self) -> None:
        """Delete the local copies (at the end of a size)."""
        for path in (self.local_dump, self.stored_copy):
            if path is not None:
                path.unlink(missing_ok=True)

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
