"""The drops `pg_restore --clean --if-exists` runs before it creates anything, as SQL of their own, run first
and as one transaction.

A restore on several connections (backup_job.parallel_restore) cannot leave `--clean` to pg_restore: run
section by section, `--clean` on the pre-data section alone would drop tables before the foreign keys that
point at them (post-data) and fail; run by `pg_restore -j N`, each drop commits on its own, and a drop that
fails part-way leaves the target without the constraints, indexes, triggers and policies dropped before it.
pg_restore writes all its drops first, in reverse dependency order, then the entries: the drops are its script
with `--clean` less the same script without. Run as one transaction before anything is created, they either
all happen - exactly what a whole `--clean` restore does - or none (`Refused`: the target is as it was).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg

from backup_job import archive, database
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError

CLEAN = ("--clean", "--if-exists")


class Refused(JobError):
    """The target refused a drop: the drops' transaction rolled back, and nothing of the target changed."""


def run_first(target: database.Database, path: Path, options: list[str]) -> list[str]:
    """With `--clean` among `options`, run the archive's drops in the target as one transaction; return the
    options without `--clean --if-exists` for the pg_restore runs that create. Refused when a drop fails."""
    plain = [option for option in options if option not in CLEAN]
    if "--clean" in options:
        sql_text = statements(path, plain)
        try:
            with target.connect() as connection:
                connection.execute(sql_text.encode())
        except psycopg.Error as exc:
            raise Refused(ExitCode.DUMP_FAILED, "dropping what the backup defines, as pg_restore --clean does, "
                                                f"was refused: {target.scrub(' '.join(str(exc).split()))[:800]}; "
                                                "nothing was changed (restore into an empty database)") from None
    return plain


def _common_prefix(a: str, b: str) -> int:
    """How many leading characters `a` and `b` share (a binary search over slices, compared in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def statements(path: Path, options: list[str]) -> str:
    """The SQL `pg_restore --clean --if-exists OPTIONS` runs before it creates anything: its script with `--clean`
    less the same script without (the drops sit whole between the preamble and the first entry)."""
    def script(*extra: str) -> str:
        command = [pg_binary("pg_restore"), "--file=-", *extra, *options, str(path)]
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-500:]
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore could not write the drops: {detail}")
        return archive.script(done.stdout)
    clean, plain = script("--clean", "--if-exists"), script()
    start = _common_prefix(clean, plain)
    tail = _common_prefix(clean[::-1], plain[::-1])
    # The drops lie between the shared preamble and the shared rest; where both could claim a character (a
    # newline ending the preamble and the drops alike), only whitespace may be shared, which moves nothing.
    if start + tail < len(plain) or plain[len(plain) - tail:start].strip():
        raise JobError(ExitCode.DUMP_FAILED, "the drops of pg_restore --clean could not be told apart from the rest")
    return clean[start:start + len(clean) - len(plain)]
