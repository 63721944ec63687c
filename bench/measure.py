"""Measuring one command: wall time, peak resident memory of its whole process tree, and CPU seconds.

Peak RSS is the largest sum of VmRSS over the command and every process below it
(pg_dump, pg_restore, a shell pipeline's members), sampled every SAMPLE_SECONDS
from /proc. CPU is the command tree's user + system time (wait4 counts every
descendant that was waited for), plus - so that the CPU a run costs the machine
is complete - what the PostgreSQL server (postmaster, reaped and live backends) and the storage emulator spent
meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    """One measured run."""

    seconds: float
    peak_rss_bytes: int = 0
    cpu_seconds: float = 0.0  # the command's own tree
    server_cpu_seconds: float = 0.0  # PostgreSQL (postmaster and its exited backends)
    storage_cpu_seconds: float = 0.0  # the storage emulator


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds of a running process (with `children`, also of its children that it has waited for)."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / _TICK


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def server_cpu(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, the backends it has reaped, and its live (or not yet
    reaped) children - so a backend that just exited is counted whether or not the postmaster waited for it."""
    return cpu_of(postmaster, children=True) + sum(cpu_of(pid) for pid, ppid in _parents().items() if ppid == postmaster)


def tree_rss(root: int) -> int:
    """Sum of VmRSS (bytes) over `root` and its descendants right now."""
    parents = _parents()
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    total = 0
    for pid in members:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@dataclass
class Watched:
    """PIDs whose CPU a run charges to the machine: the PostgreSQL postmaster and the storage emulator."""

    server_pid: int
    storage_pid: int

    def sample(self) -> tuple[float, float]:
        return server_cpu(self.server_pid), cpu_of(self.storage_pid)


def run(command: list[str], watched: Watched, env: dict[str, str] | None = None, cwd: str | Path | None = None,
        stdout=subprocess.DEVNULL) -> Run:
    """Run `command` to completion and measure it; raise CalledProcessError (with its stderr) if it fails."""
    server0, storage0 = watched.sample()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(process.pid))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    server1, storage1 = watched.sample()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, stderr=errors)
    return Run(seconds, peak[0], usage.ru_utime + usage.ru_stime, server1 - server0, storage1 - storage0)


def timed(action, watched: Watched) -> Run:
    """Measure an in-process `action()` (a floor that starts no interpreter): wall time and the machine's CPU."""
    server0, storage0 = watched.sample()
    cpu0 = time.process_time()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    server1, storage1 = watched.sample()
    return Run(seconds, 0, time.process_time() - cpu0, server1 - server0, storage1 - storage0)
