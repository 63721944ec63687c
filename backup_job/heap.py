"""glibc's heap set for a stream of megabyte blocks, before the job's own work allocates any.

The job moves its data in blocks of about a megabyte (pipe reads, zstd pieces,
the resume window's blocks) across several threads. With glibc's defaults two
things keep memory that was freed long ago:

- the mmap threshold is dynamic: once a block above it is freed, the threshold
  rises to that block's size, and every later block of that size comes from
  the heap, whose holes between live blocks are never returned to the system;
- each thread that meets a locked arena gets an arena of its own (up to eight
  per core), each keeping its own freed blocks.

So the job's own process (Python, without pg_dump) grew with the length of its
stream: 178 MB at the end of a 2 GB backup of the benchmark's `random` dataset,
and 186 MB during a 150 MB parallel backup whose single-mode twin held 135 MB.
Fixing the threshold at MMAP_THRESHOLD_BYTES (blocks above it are mapped on
their own and unmapped when freed) and the arenas at ARENAS (the threads share
them) gave 149 MB and 171 MB for the same two runs. tests/backup_job/test_heap.py
checks the mechanism; docs/benchmarks.md has the whole trees' peaks at 200 MB
and 2 GB.

It costs CPU: every block above the threshold is mapped, zeroed and unmapped
again. Measured against glibc's defaults (the same database, the job and its
pg_dump): two 2 GB `random` backups took 35.3 and 32.1 CPU-seconds against 28.5
and 23.5 (+24 % and +37 %; the wall time, bound by the storage emulator, did
not grow), with peaks of 161 and 164 MB against 178 and 173; a 300 MB parallel
`app` backup 18.8 against 16.2, with 183 MB against 199 for the whole tree.
Thresholds of 1.25 MiB, 2 MiB and 4 MiB, or the arenas alone, cost less but
held 192-195 MB in the parallel backup, too near its 200 MB target. So only
`backup` (__main__) sets the heap: `restore` and `restore-check` stay under
200 MB with glibc's defaults (170 MB at most, a 2 GB parallel restore) and
would pay the CPU in their wall time. mallopt is glibc's: elsewhere (musl) it
does nothing and the defaults stand.
https://man7.org/linux/man-pages/man3/mallopt.3.html
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's <malloc.h>
MMAP_THRESHOLD_BYTES = 256 << 10
ARENAS = 2


def tune() -> bool:
    """Set the threshold and the arenas; whether the C library took both."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to load, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_ARENA_MAX, ARENAS) == 1
