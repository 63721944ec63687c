"""backup_job.heap: with glibc's heap set as the job sets it, megabyte blocks freed between live ones go back to
the system at once; with glibc's defaults they stay resident (the growth the benchmark measured over a long
stream). Each case runs in a fresh interpreter, as `python -m backup_job` does."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from tests.project_files import ROOT

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

_FREED = """
import os, sys
from backup_job import heap
tuned = heap.tune() if sys.argv[1] == "tuned" else None
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))
first = bytearray(1 << 20)
del first  # a freed mapped block: glibc's default threshold rises above the blocks below
blocks = [bytearray(os.urandom(16)) * ((1 << 20) // 16) for _ in range(128)]
before = rss()
del blocks[:-1]  # the last block stays, above the others, as a live block does in a stream
print(tuned, before - rss())
"""
BLOCKS_FREED_BYTES = 127 << 20


def _returned(mode: str) -> tuple[str, int]:
    # glibc's own settings from the environment would decide the default case instead of its defaults.
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run([sys.executable, "-c", _FREED, mode], cwd=ROOT, env=environment, capture_output=True,
                          text=True, check=True, timeout=60)
    tuned, returned = done.stdout.split()
    return tuned, int(returned)


def test_the_tuned_heap_returns_freed_blocks_that_the_default_one_keeps() -> None:
    tuned, returned = _returned("tuned")
    assert tuned == "True", "glibc refused mallopt"
    assert returned >= 0.9 * BLOCKS_FREED_BYTES, f"only {returned >> 20} MiB of 127 MiB freed left the process"
    _, kept = _returned("default")
    assert kept < 0.25 * BLOCKS_FREED_BYTES, f"with glibc's defaults {kept >> 20} MiB went back: the premise is gone"
