"""One database site as `python -m tools.failback` sees it: its server's state read on every run, and the
PostgreSQL tools that change it, each run on the site's database host as the postgres user.

A site is a data directory, a libpq connection string (the tool's SQL, and what the other site streams from),
and a command prefix that runs a command as the postgres user on the host that holds the data directory
(`runuser -u postgres --`, `sudo -u postgres`, `ssh postgres@us-db`; empty: as this user, here). Every file-level
step - pg_ctl, pg_controldata, pg_rewind, pg_basebackup, the directory swap - goes through that prefix, as
repmgr's `standby switchover` reaches the other node over SSH.

PostgreSQL's own tools, as documented for 15:
- pg_rewind --source-server -R (https://www.postgresql.org/docs/15/app-pgrewind.html): makes a stopped server's
  data directory an ancestor of the source's timeline and writes standby.signal and primary_conninfo; it says
  `no rewind required` (and still writes them) when the target never wrote past the point where the timelines
  part. A CHECKPOINT on the source comes first, as its control file names a new timeline only from its first
  checkpoint after the promotion. It needs data checksums or wal_log_hints on the target and the WAL since the last common checkpoint;
  when it cannot run (or fails halfway, which leaves the directory unusable) the site is rebuilt.
- pg_basebackup -R -X stream (https://www.postgresql.org/docs/15/app-pgbasebackup.html) into
  `<data>.failback-partial`, renamed `<data>.failback-ready` once complete, then swapped in for the data
  directory (the old one moved to `<data>.failback-old` and removed). A run finds a half-made copy and removes
  it, or a complete one and finishes the swap.
- A crashed server first finishes its crash recovery in single-user mode with its own options (as pg_rewind
  would, but pg_rewind leaves the options out), so pg_rewind finds it cleanly shut down.
- pg_ctl start reuses the options the server last ran with (postmaster.opts, as `pg_ctl restart` does; a copy
  kept as `<data>.failback-opts` until the server runs again, as pg_rewind deletes the file and pg_basebackup
  leaves it out) and logs to `server.log` beside the data directory.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

CONNECT_TIMEOUT_SECONDS = 5
PARTIAL, READY, OLD, OPTS = ".failback-partial", ".failback-ready", ".failback-old", ".failback-opts"
SECRET = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)|(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE)


class SiteError(Exception):
    """A PostgreSQL tool or a connection failed: one line, secrets removed."""


def scrub(text: str) -> str:
    """`text` without passwords (password=..., postgresql://user:password@)."""
    return SECRET.sub(lambda m: f"{m.group(1)}***" if m.group(1) else f"{m.group(3)}***@", text)


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output, scrubbed."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return scrub(lines[-1]) if lines else "no message"


def lsn(text: str) -> int:
    """An LSN (`16/B374D848`) as a number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class State:
    """What a site's server is doing now."""

    running: bool
    primary: bool = False
    timeline: int = 0
    """The timeline it writes (a primary) or has replayed up to (a standby or a stopped server)."""
    streaming_timeline: int | None = None
    """A running standby's WAL receiver: the timeline it streams, when streaming."""
    paused: bool = False
    """A running primary with default_transaction_read_only on: writes paused."""
    system: str = ""
    clean: bool = False
    """Stopped after a clean shutdown (pg_controldata: `shut down` or `shut down in recovery`)."""
    checkpoint: int = 0
    """A stopped server's latest checkpoint location."""
    standby_signal: bool = False
    missing: bool = False
    """No data directory at all (a rebuild interrupted between its two renames is finished before this is read)."""


class Site:
    """A database site: `name` (us, eu), its data directory on its host, its connection string, its prefix."""

    def __init__(self, name: str, data: str, conninfo: str, prefix: list[str], bindir: str) -> None:
        self.name, self.data, self.prefix, self.bindir = name, PurePosixPath(data), prefix, PurePosixPath(bindir)
        params = conninfo_to_dict(conninfo)
        params.setdefault("dbname", "postgres")
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_SECONDS))
        self.conninfo = make_conninfo("", **params)
        self.children: list[subprocess.Popen[str]] = []

    def naming(self, standby: Site) -> str:
        """This server's connection string as `standby` streams through it (-R writes it into primary_conninfo),
        with the standby's site as its application_name (what pg_stat_replication shows)."""
        return make_conninfo(self.conninfo, application_name=standby.name)

    # ------------------------------------------------------------------ running commands on the host

    def _argv(self, argv: list[str]) -> list[str]:
        if self.prefix and PurePosixPath(self.prefix[0]).name == "ssh":  # ssh joins its words into one shell line
            return [*self.prefix, *(shlex.quote(word) for word in argv)]
        return [*self.prefix, *argv]

    def run(self, *argv: str, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on the site's host; SiteError (its last line) if `check` and it fails."""
        process = subprocess.Popen(self._argv(list(argv)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.children.append(process)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop_children()
            raise SiteError(f"{self.name}: {PurePosixPath(argv[0]).name} did not finish within {timeout:.0f} s") from None
        finally:
            if process in self.children and process.poll() is not None:
                self.children.remove(process)
        result = subprocess.CompletedProcess(process.args, process.returncode, out, err)
        if check and result.returncode != 0:
            raise SiteError(f"{self.name}: {PurePosixPath(argv[0]).name} exited {result.returncode}: "
                            f"{last_line(err or out)}")
        return result

    def stop_children(self) -> None:
        """End the commands still running (an interrupted run leaves no pg_basebackup behind)."""
        import os
        import signal

        for process in self.children:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    process.kill()
        self.children.clear()

    def tool(self, name: str) -> str:
        """The path of a PostgreSQL program on the site's host."""
        return str(self.bindir / name)

    # ------------------------------------------------------------------ what the server does now

    def connect(self) -> psycopg.Connection:
        """A connection to the site's server (SiteError saying why not)."""
        try:
            return psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise SiteError(f"{self.name}: cannot connect: {last_line(str(exc))}") from None

    def state(self) -> State:
        """Running or not (pg_ctl status), then from SQL, or from pg_controldata when stopped."""
        status = self.run(self.tool("pg_ctl"), "status", "-D", str(self.data), check=False)
        if status.returncode == 4:
            return State(running=False, missing=True)
        if status.returncode not in (0, 3):  # 3: not running
            said = scrub((status.stderr.strip() or "no message").splitlines()[0])
            raise SiteError(f"{self.name}: pg_ctl status exited {status.returncode}: {said}")
        if status.returncode == 0:
            with self.connect() as connection:
                row = connection.execute(
                    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on', "
                    "(SELECT system_identifier::text FROM pg_control_system()), "
                    "CASE WHEN pg_is_in_recovery() THEN 0 "
                    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, "
                    "(SELECT received_tli FROM pg_stat_wal_receiver WHERE status = 'streaming'), "
                    "(SELECT timeline_id FROM pg_control_checkpoint())").fetchone()
            assert row is not None
            recovering, paused, system, timeline, streaming, checkpoint_tli = row
            return State(running=True, primary=not recovering, timeline=timeline or checkpoint_tli,
                         streaming_timeline=streaming, paused=paused and not recovering, system=system)
        control = self.controldata()
        return State(running=False, timeline=max(int(control["Latest checkpoint's TimeLineID"]),
                                                 int(control["Min recovery ending loc's timeline"])),
                     system=control["Database system identifier"],
                     clean=control["Database cluster state"] in ("shut down", "shut down in recovery"),
                     checkpoint=lsn(control["Latest checkpoint location"]),
                     standby_signal=self._exists("standby.signal", inside=True))

    def controldata(self) -> dict[str, str]:
        """pg_controldata of the stopped server, field by field."""
        out = self.run(self.tool("pg_controldata"), "-D", str(self.data)).stdout
        return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in out.splitlines())}

    def _exists(self, name: str, inside: bool = False) -> bool:
        path = self.data / name if inside else PurePosixPath(f"{self.data}{name}")
        return self.run("test", "-e", str(path), check=False).returncode == 0

    def sql(self, query: str, *params: object) -> object:
        """The first column of the first row of a query on the site's server."""
        try:
            with self.connect() as connection:
                cursor = connection.execute(query, params)
                row = cursor.fetchone() if cursor.description else None
        except psycopg.Error as exc:
            raise SiteError(f"{self.name}: {last_line(str(exc))}") from None
        return None if row is None else row[0]

    # ------------------------------------------------------------------ changing it

    def options(self) -> list[str]:
        """The options the server last ran with (postmaster.opts without the program and its -D)."""
        text = self.run("cat", str(self.data / "postmaster.opts"), check=False).stdout
        if not text.strip():
            text = self.run("cat", f"{self.data}{OPTS}", check=False).stdout
        words = shlex.split(text)[1:]
        if "-D" in words:
            at = words.index("-D")
            del words[at:at + 2]
        return words

    def start(self, timeout_seconds: float) -> None:
        """pg_ctl start with the options the server last ran with; waits until it accepts connections."""
        words = self.options()
        argv = [self.tool("pg_ctl"), "start", "-D", str(self.data), "-w", "-t", f"{max(1, round(timeout_seconds))}",
                "-l", str(self.data.parent / "server.log")]
        self.run(*argv, *(["-o", shlex.join(words)] if words else []))
        self.run("rm", "-f", f"{self.data}{OPTS}")

    def save_options(self) -> None:
        """Keep postmaster.opts beside the data directory: pg_rewind deletes it and pg_basebackup leaves it out."""
        self.run("cp", "-p", str(self.data / "postmaster.opts"), f"{self.data}{OPTS}", check=False)

    def recover(self) -> None:
        """Finish a crashed server's recovery in single-user mode (no client can reach it) with the options it
        ran with, ending in a clean shutdown. pg_rewind would run it without those options (a wal_keep_size
        given there) and could recycle the WAL it then needs."""
        self.run(self.tool("postgres"), "--single", "-F", "-D", str(self.data), *self.options(), "template1")

    def stop(self) -> None:
        """pg_ctl stop -m fast: a clean shutdown (a primary's walsenders send the shutdown checkpoint first)."""
        self.run(self.tool("pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")

    def promote(self) -> None:
        """pg_ctl promote, waiting until the server accepts writes."""
        self.run(self.tool("pg_ctl"), "promote", "-D", str(self.data), "-w")

    def rewind(self, source: Site) -> tuple[str, str | None]:
        """pg_rewind -R from the source server, the site stopped: (`follow` when it said `no rewind required`, else
        `rewind`; None) when done, else (`rebuild`, why it could not: the site must be rebuilt)."""
        self.save_options()
        # pg_rewind reads the source's timeline from its control file, which a server just promoted updates only
        # at its next checkpoint (a spread one, requested by the promotion): without this it may see one timeline
        # and say `no rewind required` for a target that did write past the fork.
        source.sql("CHECKPOINT")
        result = self.run(self.tool("pg_rewind"), "-D", str(self.data), f"--source-server={source.naming(self)}",
                          "-R", check=False)
        said = f"{result.stdout}\n{result.stderr}"
        if result.returncode != 0:
            return "rebuild", last_line(said)
        if "no rewind required" in said:
            return "follow", None
        return "rewind", next((line.removeprefix("pg_rewind: ") for line in said.splitlines() if "diverged" in line), None)

    def finish_swap(self) -> bool:
        """Complete an interrupted rebuild (swap in a complete copy, drop a partial one); whether one was swapped."""
        partial, ready, old = (f"{self.data}{suffix}" for suffix in (PARTIAL, READY, OLD))
        self.run("rm", "-rf", partial)
        swapped = self._exists(READY)
        if swapped:
            if self.run("test", "-e", str(self.data), check=False).returncode == 0:
                self.run("rm", "-rf", old)
                self.run("mv", str(self.data), old)
            self.run("mv", ready, str(self.data))
        self.run("rm", "-rf", old)
        return swapped

    def rebuild(self, source: Site) -> None:
        """pg_basebackup -R of the source into a fresh directory, swapped in for the data directory."""
        self.save_options()
        self.finish_swap()
        partial, ready = f"{self.data}{PARTIAL}", f"{self.data}{READY}"
        try:
            self.run(self.tool("pg_basebackup"), "-D", partial, "-d", source.naming(self), "-R", "-X", "stream",
                     "-c", "fast")
        except BaseException:
            self.stop_children()
            self.run("rm", "-rf", partial, check=False)
            raise
        self.run("mv", partial, ready)
        self.finish_swap()

    def replayed(self) -> int:
        """A standby's replay position."""
        value = self.sql("SELECT pg_last_wal_replay_lsn()::text")
        return lsn(str(value)) if value else 0

    def wait(self, what: str, condition: Callable[[], bool], timeout_seconds: float, interval_seconds: float) -> None:
        """Poll `condition()` until true; SiteError naming `what` after `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        while not condition():
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{what} not within {timeout_seconds:g} s")
            time.sleep(interval_seconds)


class WaitTimeout(SiteError):
    """A wait ran out of time (exit 1, not 3)."""
