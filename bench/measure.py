"""Measuring one command: wall time, peak resident memory and CPU seconds, of its process tree and of the servers.

Peak RSS is the largest sum of VmRSS over the command and every process below it
(pg_dump, pg_restore, a shell pipeline's members), sampled every SAMPLE_SECONDS
from /proc. CPU is the command tree's user + system time (wait4 counts every
descendant that was waited for), plus - so that the CPU a run costs the machine
is complete - what the PostgreSQL server (postmaster, reaped and live backends) and the storage emulator spent
meanwhile. The tree's CPU is also split by program (pg_dump, python3, pg_restore...) from the same samples: a
process's last sample before it exits is what it is charged, so up to SAMPLE_SECONDS of CPU per process may be
missing from the split (never from the tree's total). The servers' peak memory is sampled alongside: the
emulator's VmRSS, and PostgreSQL's private memory (RssAnon of every server process) plus its shared memory once
(the largest RssShmem: shared buffers are mapped by every backend but resident once).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_SECONDS = 0.05
_TICK = os.sysconf("SC_CLK_TCK")
READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Run:
    """One measured run."""

    seconds: float
    peak_rss_bytes: int = 0
    cpu_seconds: float = 0.0  # the command's own tree
    server_cpu_seconds: float = 0.0  # PostgreSQL (postmaster and its exited backends)
    storage_cpu_seconds: float = 0.0  # the storage emulator
    output_bytes: int = 0  # what the command wrote to its stdout, when counted
    server_peak_rss_bytes: int = 0
    storage_peak_rss_bytes: int = 0
    cpu_by_program: dict[str, float] = field(default_factory=dict)  # the tree's CPU seconds by program name


@dataclass(frozen=True)
class _Proc:
    ppid: int
    program: str
    ticks: int


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


def _processes() -> dict[int, _Proc]:
    """Every process now: parent, program name and own CPU ticks."""
    found: dict[int, _Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        head, _, tail = text.rpartition(")")
        fields = tail.split()
        if len(fields) > 12:
            found[int(entry.name)] = _Proc(int(fields[1]), head.partition("(")[2], int(fields[11]) + int(fields[12]))
    return found


def _parents() -> dict[int, int]:
    return {pid: proc.ppid for pid, proc in _processes().items()}


def server_cpu(postmaster: int) -> float:
    """CPU seconds of a PostgreSQL server: the postmaster, the backends it has reaped, and its live (or not yet
    reaped) children - so a backend that just exited is counted whether or not the postmaster waited for it.

    A backend reaped while its siblings are read would be in neither figure (the client that just disconnected
    is one: it ends as the measured command ends), so the postmaster is read before and after, and again until
    nothing was reaped in between."""
    for _ in range(20):
        reaped = cpu_of(postmaster, children=True)
        live = sum(cpu_of(pid) for pid, ppid in _parents().items() if ppid == postmaster)
        if cpu_of(postmaster, children=True) == reaped:
            break
    return reaped + live


def _tree(root: int, parents: dict[int, int]) -> set[int]:
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    return members


def _status(pid: int, *keys: str) -> dict[str, int]:
    values = dict.fromkeys(keys, 0)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in values:
                values[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return values


def tree_rss(root: int, parents: dict[int, int] | None = None) -> int:
    """Sum of VmRSS (bytes) over `root` and its descendants right now."""
    members = _tree(root, parents if parents is not None else _parents())
    return sum(_status(pid, "VmRSS")["VmRSS"] for pid in members)


def server_rss(postmaster: int, parents: dict[int, int]) -> int:
    """A PostgreSQL server's resident memory: every process's private memory, its shared memory once."""
    statuses = [_status(pid, "RssAnon", "RssShmem") for pid in _tree(postmaster, parents)]
    return sum(s["RssAnon"] for s in statuses) + max((s["RssShmem"] for s in statuses), default=0)


@dataclass
class Watched:
    """PIDs whose CPU a run charges to the machine: the PostgreSQL postmaster and the storage emulator."""

    server_pid: int
    storage_pid: int

    def sample(self) -> tuple[float, float]:
        return server_cpu(self.server_pid), cpu_of(self.storage_pid)


class _Sampler(threading.Thread):
    """Samples a command's tree and the servers every SAMPLE_SECONDS until stopped."""

    def __init__(self, root: int, watched: Watched) -> None:
        super().__init__(daemon=True)
        self.root, self.watched, self.done = root, watched, threading.Event()
        self.peak = self.server_peak = self.storage_peak = 0
        self.last_ticks: dict[int, tuple[str, int]] = {}

    def run(self) -> None:
        while not self.done.is_set():
            processes = _processes()
            parents = {pid: proc.ppid for pid, proc in processes.items()}
            members = _tree(self.root, parents)
            self.peak = max(self.peak, sum(_status(pid, "VmRSS")["VmRSS"] for pid in members))
            for pid in members:
                if pid in processes:
                    self.last_ticks[pid] = (processes[pid].program, processes[pid].ticks)
            self.server_peak = max(self.server_peak, server_rss(self.watched.server_pid, parents))
            self.storage_peak = max(self.storage_peak, tree_rss(self.watched.storage_pid, parents))
            self.done.wait(SAMPLE_SECONDS)

    def by_program(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for program, ticks in self.last_ticks.values():
            totals[program] = totals.get(program, 0.0) + ticks / _TICK
        return {program: round(seconds, 2) for program, seconds in sorted(totals.items()) if seconds}


def _count(stream, counted: list[int]) -> None:
    buffer = bytearray(READ_BYTES)
    while n := stream.readinto(buffer):
        counted[0] += n


def run(command: list[str], watched: Watched, env: dict[str, str] | None = None, cwd: str | Path | None = None,
        stdout=subprocess.DEVNULL, count_stdout: bool = False) -> Run:
    """Run `command` to completion and measure it; raise CalledProcessError (with its stderr) if it fails.

    With `count_stdout` the command writes into a pipe that is read and thrown away here, its bytes counted (the
    size of what `> /dev/null` would have discarded). With `stdout=subprocess.PIPE` its output is kept for the
    error a failure raises."""
    server0, storage0 = watched.sample()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE if count_stdout else stdout,
                               stderr=subprocess.PIPE)
    counted = [0]
    output: list[bytes] = []
    counter = None
    if count_stdout:
        counter = threading.Thread(target=_count, args=(process.stdout, counted), daemon=True)
    elif stdout is subprocess.PIPE:
        counter = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    if counter is not None:
        counter.start()
    sampler = _Sampler(process.pid, watched)
    sampler.start()
    assert process.stderr is not None
    try:
        errors = process.stderr.read()
        if counter is not None:
            counter.join()
        _, status, usage = os.wait4(process.pid, 0)
    except BaseException:  # interrupted (SIGINT, SIGTERM): the command's whole tree goes too, nothing is left running
        for pid in _tree(process.pid, _parents()):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        sampler.done.set()
        raise
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    sampler.done.set()
    sampler.join()
    server1, storage1 = watched.sample()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, output=b"".join(output), stderr=errors)
    return Run(seconds, sampler.peak, usage.ru_utime + usage.ru_stime, server1 - server0, storage1 - storage0,
               counted[0], sampler.server_peak, sampler.storage_peak, sampler.by_program())


def timed(action, watched: Watched) -> Run:
    """Measure an in-process `action()` (a floor that starts no interpreter): wall time and the machine's CPU."""
    server0, storage0 = watched.sample()
    cpu0 = time.process_time()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    server1, storage1 = watched.sample()
    return Run(seconds, 0, time.process_time() - cpu0, server1 - server0, storage1 - storage0)
