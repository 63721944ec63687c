"""The floors: what the job's work costs with nothing around it, measured in the same run as the tools.

- pg_dump -Fc at its default level (the baseline `ratioToPgDumpFc` divides by) and at -Z1 (the level of the job's
  dumps before zstd), their output counted through a pipe;
- the read floors: what the server and pg_dump cost with no compression and no upload - `pg_dump -Fc -Z0` into
  a pipe that is counted and thrown away (as `> /dev/null`), and `pg_dump -Fd -j N -Z0` into a temporary folder
  (removed after, outside the timed part), the floor of a dump that is split by table;
- the job's stored bytes uploaded alone (one streaming request, in-process: no interpreter start);
- pg_restore of the job's archive from a local file (-j1 and -j N) into an empty database.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from backup_job import transfer
from bench.harness import PARALLEL, SINGLE, Bench, Outcome, restore_into_empty
from bench.measure import Run, run, timed


def pg_dump(bench: Bench, compress: int | None) -> Outcome:
    """`pg_dump -Fc [-Z N]`, its bytes counted (`storedBytes`: what pg_dump would store)."""
    command = [str(bench.postgres.bindir / "pg_dump"), "--format=custom", "--no-password"]
    if compress is not None:
        command.append(f"--compress={compress}")
    measured = run(command, bench.watched, env=bench.env(), count_stdout=True)
    return Outcome(backup=measured, stored_bytes=measured.output_bytes)


def pg_dump_directory(bench: Bench) -> Outcome:
    """`pg_dump -Fd -j N -Z0` into a temporary folder: every table's rows in a file of its own, N at once."""
    folder = bench.scratch / f"directory-floor-{uuid.uuid4().hex[:8]}"
    try:
        measured = run([str(bench.postgres.bindir / "pg_dump"), "--format=directory", f"--jobs={bench.jobs}",
                        "--compress=0", "--no-password", f"--file={folder}"], bench.watched, env=bench.env())
        written = sum(path.stat().st_size for path in folder.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Outcome(backup=measured, stored_bytes=written, mode=PARALLEL)


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            yield block


def upload(bench: Bench) -> Outcome:
    """The job's stored bytes alone, from a local file, in one streaming request to the same emulator (in-process)."""
    path = bench.stored_file()
    name = bench.object_name("upload-floor")
    measured = timed(lambda: transfer.upload_stream(bench.bucket, name, _file_blocks(path), "application/octet-stream"),
                     bench.watched)
    bench.remove([name])
    return Outcome(backup=measured, stored_bytes=path.stat().st_size)


def pg_restore(bench: Bench, jobs: int) -> Outcome:
    """`pg_restore -j N` of the job's archive from a local file into an empty database."""
    dump = bench.dump_file()

    def command(target: str) -> Run:
        return run([str(bench.postgres.bindir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                    "--no-password", f"--jobs={jobs}", f"--dbname={target}", str(dump)], bench.watched, env=bench.env(target))

    return Outcome(restore=restore_into_empty(bench, f"pg_restore -j{jobs}", command), mode=PARALLEL if jobs > 1 else SINGLE)
