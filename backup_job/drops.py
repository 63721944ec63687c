"""The drops `pg_restore --clean --if-exists` runs before it creates anything, as SQL of their own.

A parallel backup restores section by section (backup_job.parallel_restore), so `--clean` on the pre-data
section alone would drop tables before the foreign keys that point at them (post-data) and fail. pg_restore
writes all its drops first, in reverse dependency order, then the entries: the drops are its script with
`--clean` less the same script without, and running them first is exactly what a whole `--clean` restore does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from backup_job import archive
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError


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
