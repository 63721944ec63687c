"""The floors: what the job's work costs with nothing around it, measured in the same run as the tools.

pg_dump alone into /dev/null (default level and the job's -Z1), the job's dump bytes uploaded alone (one
streaming request, in-process), and pg_restore of that dump from a local file (-j1 and -j2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from backup_job import transfer
from bench.harness import Bench, Outcome, restore_into_empty
from bench.measure import Run, run, timed


def pg_dump(bench: Bench, compress: int | None) -> Outcome:
    """`pg_dump -Fc [-Z N] > /dev/null`."""
    command = [str(bench.postgres.bindir / "pg_dump"), "--format=custom", "--no-password"]
    if compress is not None:
        command.append(f"--compress={compress}")
    return Outcome(backup=run(command, bench.watched, env=bench.env()))


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            yield block


def upload(bench: Bench) -> Outcome:
    """The job's dump bytes alone, from a local file, in one streaming request to the same emulator (in-process)."""
    path = bench.dump_file()
    name = bench.object_name("upload-floor")
    measured = timed(lambda: transfer.upload_stream(bench.bucket, name, _file_blocks(path), "application/octet-stream"),
                     bench.watched)
    return Outcome(backup=measured, stored_bytes=path.stat().st_size)


def pg_restore(bench: Bench, jobs: int) -> Outcome:
    """`pg_restore -j N` of the job's dump from a local file into an empty database."""
    dump = bench.dump_file()

    def command(target: str) -> Run:
        return run([str(bench.postgres.bindir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                    "--no-password", f"--jobs={jobs}", f"--dbname={target}", str(dump)], bench.watched, env=bench.env(target))

    return Outcome(restore=restore_into_empty(bench, f"pg_restore -j{jobs}", command))
