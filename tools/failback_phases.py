"""The phases of `python -m tools.failback` (its docstring says what each does and why): a state machine that
reads both sites on every step and does the next phase for what it finds."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import time
from collections.abc import Callable

from tools.failback_sites import Site, State, WaitTimeout, lsn

EXIT_TIMEOUT, EXIT_UNSAFE, EXIT_TOOL, EXIT_FLIP, EXIT_INTERRUPTED = 1, 2, 3, 4, 130
STREAM_GRACE_SECONDS = 15.0
"""How long a standby found running but not streaming gets to connect before it is rewound, unless
`--stream-grace-seconds` says otherwise."""
SHUTDOWN_RECORD_BYTES = 512
"""How far past a stopped server's shutdown checkpoint a replica that replayed it can be: the record (about 120
bytes) and a page header; a standby further on replayed WAL of its own, on another timeline."""
MAX_PHASES = 12
"""A run takes at most the six phases, each of which changes the state: more means the world is changing under it."""
INTERRUPTED = {
    "switchover": "writes are paused on the EU or it is stopped, and the US is not promoted yet: no site takes writes "
                  "until the same command runs again and finishes the switchover",
    "flip": "the US is the primary; the stack may still send traffic to the EU until the same command runs again",
    "rebuild": "the partial copy was removed; the same command starts the rebuild again",
}


class Unsafe(Exception):
    """A state the tool will not act on (exit 2)."""


class Failback:
    """One run: the two sites, the options, and the phases as they were done."""

    def __init__(self, us: Site, eu: Site, args: argparse.Namespace, flip: list[str] | None) -> None:
        self.us, self.eu, self.args, self.flip_argv = us, eu, args, flip
        self.phase = "inspect"
        self.done: list[tuple[str, float, str]] = []
        self.flipped = False

    def wait(self, what: str, condition: Callable[[], bool], timeout: float | None = None) -> None:
        """Poll until true, at the interval, within the timeout (WaitTimeout naming `what`)."""
        self.us.wait(what, condition, self.args.timeout_seconds if timeout is None else timeout,
                     self.args.interval_seconds)

    def timed(self, phase: str, action: Callable[[], str | tuple[str, str]]) -> None:
        """Run one phase and print its timed line (an action that decides its phase as it goes returns it too)."""
        self.phase = phase
        began = time.monotonic()
        said = action()
        phase, what = said if isinstance(said, tuple) else (phase, said)
        seconds = time.monotonic() - began
        self.done.append((phase, seconds, what))
        print(f"{phase:<10} {seconds:7.1f} s  {what}", flush=True)

    # ------------------------------------------------------------------ the state machine

    def run(self) -> None:
        """Phases until the US is primary and the EU streams from it."""
        for site in (self.us, self.eu):
            site.finish_swap()
        for _ in range(MAX_PHASES):
            self.phase = "inspect"
            us, eu = self.us.state(), self.eu.state()
            if us.system and eu.system and us.system != eu.system:
                raise Unsafe(f"the US and EU servers are different clusters (system identifiers {us.system} and "
                             f"{eu.system}): rebuild the US from the EU by hand")
            if not self.next(us, eu):
                return
        raise Unsafe(f"the sites changed state {MAX_PHASES} times without settling: is someone else failing over?")

    def next(self, us: State, eu: State) -> bool:
        """Do the next phase for this state; False when there is nothing left to do."""
        if us.running and us.primary and not (eu.running and eu.primary):
            if eu.running and eu.streaming_timeline == us.timeline:
                if not self.done:
                    print(f"nothing to do: the US is the primary (timeline {us.timeline}) and the EU streams from it")
                return False
            self.refuse_stale_us(us, eu)
            if not self.flipped and self.flip_argv is not None:
                self.timed("flip", self.flip)
            self.timed("follow", lambda: self.follow(eu))
            return True
        if not (eu.running and eu.primary):
            return self.finish_switchover(us, eu)
        if us.running and us.primary and us.timeline >= eu.timeline:
            raise Unsafe(f"both sites accept writes on timelines {us.timeline} (US) and {eu.timeline} (EU): decide "
                         "which to keep, stop the other, and run the command again")
        if us.running and not us.primary and us.streaming_timeline == eu.timeline:
            if not eu.paused:
                self.timed("catch-up", self.catch_up)
            self.timed("switchover", self.switchover)
            return True
        if eu.paused:  # a switchover stopped before the US streamed: writes back on the EU while the US rejoins
            self.timed("resume", self.resume_eu)
            return True
        if us.running and not us.primary:
            try:
                self.wait("the US standby streaming from the EU", self.us_streams, self.args.stream_grace_seconds)
                return True
            except WaitTimeout:
                pass
        if not us.running and us.standby_signal:
            self.timed("stream", self.stream)
            return True
        self.timed("rewind", lambda: self.rejoin(us))
        self.timed("stream", self.stream)
        return True

    @staticmethod
    def refuse_stale_us(us: State, eu: State) -> None:
        """Unsafe unless the writable US is on a newer timeline than the EU that is not a primary: only then was
        the US promoted after the EU (the switchover), and the EU may be rewound onto it and traffic flipped to it.
        An old US primary started again while the EU is down is on an older timeline (or the same one, when the
        EU never checkpointed after its promotion); following it would rewind away the EU's writes."""
        if eu.missing:
            return
        newest = max(eu.timeline, eu.streaming_timeline or 0)
        if newest > us.timeline or (newest == us.timeline and not eu.running and not eu.standby_signal):
            raise Unsafe(f"the US accepts writes on timeline {us.timeline} but the EU, not running as a primary, is "
                         f"on timeline {newest}: the US was not promoted after the EU; start the EU primary, "
                         "stop the US, and run the command again")

    def us_streams(self) -> bool:
        """The US streams from the EU's current timeline."""
        us, eu = self.us.state(), self.eu.state()
        return us.running and not us.primary and eu.primary and us.streaming_timeline == eu.timeline

    # ------------------------------------------------------------------ the phases

    def rejoin(self, us: State) -> tuple[str, str]:
        """Stop the US, rewind it to the EU's timeline, or rebuild it when pg_rewind cannot: (phase, what)."""
        if us.running:
            self.us.stop()
        elif not us.missing and not us.clean:
            self.us.recover()
        path, why = ("rebuild", "no data directory") if us.missing else self.us.rewind(self.eu)
        gone = self._fork_wal_gone(why) if path == "rewind" else None
        if gone is not None:
            path, why = "rebuild", gone
        if path == "rebuild":
            self.phase = "rebuild"
            self.us.rebuild(self.eu)
            what = f"the US rebuilt from the EU (pg_basebackup -R): pg_rewind could not run: {why}"
        elif path == "follow":
            what = "the US never wrote past the EU's timeline switch: nothing to rewind (pg_rewind: no rewind required)"
        else:
            what = f"the US (timeline {us.timeline}) rewound to the EU's timeline (pg_rewind --source-server -R: {why})"
        return ("rebuild" if path == "rebuild" else "rewind"), what

    def _fork_wal_gone(self, said: str | None) -> str | None:
        """A rewound US replays the EU's WAL from where the timelines part: an EU that no longer holds it (recycled;
        on a checksummed database the first read after a promotion writes full pages for hint bits) can never feed
        it, and the US would wait forever. Why it must be rebuilt instead, or None. The segment that holds the first
        byte after the fork (pg_walfile_name of a segment boundary names the segment before it)."""
        found = re.search(r"diverged at WAL location ([0-9A-F]+/[0-9A-F]+)", said or "")
        if found is None:
            return None
        kept = self.eu.sql("SELECT count(*) FROM pg_ls_waldir() WHERE name = pg_walfile_name(%s::pg_lsn + 1)", found[1])
        return None if kept else f"the EU no longer holds the WAL from where the timelines part ({found[1]})"

    def stream(self) -> str:
        """Start the US as a standby; wait until it streams from the EU."""
        self.us.start(self.args.timeout_seconds)
        self.wait("the US streaming from the EU", self.us_streams)
        return f"the US streams from the EU (timeline {self.eu.state().timeline}): a replica again"

    def catch_up(self) -> str:
        """Wait until the US has replayed what the EU had written when this began."""
        target = lsn(str(self.eu.sql("SELECT pg_current_wal_lsn()::text")))
        self.wait("the US replaying the EU's WAL", lambda: self.us.replayed() >= target)
        lag = self.eu.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication "
                          "WHERE state = 'streaming' ORDER BY 1 LIMIT 1")
        return f"the US replayed the EU's WAL up to {target >> 32:X}/{target & 0xFFFFFFFF:X} ({lag or 0} bytes behind now)"

    def pause(self) -> None:
        """Writes paused on the EU: new transactions read-only, every other client session ended."""
        with self.eu.connect() as connection:
            connection.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            connection.execute("SELECT pg_reload_conf()")
        self.wait("the EU's configuration reloaded", lambda: self.eu.sql("SHOW default_transaction_read_only") == "on",
                  self.args.timeout_seconds)
        self.eu.sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")

    def resume_eu(self) -> str:
        """Writes back on the EU (a switchover abandoned before the EU stopped, or one the US no longer streams for)."""
        with self.eu.connect() as connection:
            connection.execute("ALTER SYSTEM RESET default_transaction_read_only")
            connection.execute("SELECT pg_reload_conf()")
        self.wait("the EU's configuration reloaded", lambda: self.eu.sql("SHOW default_transaction_read_only") == "off")
        return "writes resumed on the EU (default_transaction_read_only reset): the US does not stream from it"

    def switchover(self) -> str:
        """Pause writes on the EU, let the US replay all of it, stop the EU cleanly, promote the US."""
        self.pause()
        final = lsn(str(self.eu.sql("SELECT pg_current_wal_lsn()::text")))
        try:
            self.wait("the US replaying the EU's last WAL", lambda: self.us.replayed() >= final)
        except WaitTimeout as exc:
            self.resume_eu()
            raise WaitTimeout(f"{exc}: switchover abandoned, writes resumed on the EU") from None
        # Only the file: the running EU stays read-only until it stops, and starts writable if it ever starts alone.
        self.eu.sql("ALTER SYSTEM RESET default_transaction_read_only")
        self.eu.stop()
        return self.promote_us(self.eu.state())

    def promote_us(self, eu: State) -> str:
        """The EU is stopped cleanly: once the US has replayed its shutdown checkpoint, promote the US."""
        try:
            self.wait("the US replaying the EU's shutdown checkpoint", lambda: self.us.replayed() > eu.checkpoint)
        except WaitTimeout as exc:
            self.eu.start(self.args.timeout_seconds)
            raise WaitTimeout(f"{exc}: switchover abandoned, the EU started again and takes writes") from None
        replayed = self.us.replayed()
        if replayed - eu.checkpoint > SHUTDOWN_RECORD_BYTES:  # no replica of the EU replays past its last record
            raise Unsafe(f"the US standby has replayed up to {replayed >> 32:X}/{replayed & 0xFFFFFFFF:X}, past the "
                         f"EU's last record at {eu.checkpoint >> 32:X}/{eu.checkpoint & 0xFFFFFFFF:X}: it holds WAL "
                         "the EU never wrote and is not the EU's replica; start the EU primary (pg_ctl start) and "
                         "run the command again, which rewinds the US")
        self.us.promote()
        timeline = self.us.state().timeline
        return (f"writes paused on the EU; the US replayed its last WAL and shutdown checkpoint at "
                f"{eu.checkpoint >> 32:X}/{eu.checkpoint & 0xFFFFFFFF:X}; the EU stopped; the US promoted "
                f"(timeline {timeline})")

    def finish_switchover(self, us: State, eu: State) -> bool:
        """No site accepts writes: the switchover was interrupted after the EU stopped, or something else."""
        if not eu.running and eu.clean and not eu.standby_signal and us.running and not us.primary:
            self.timed("switchover", lambda: self.promote_us(eu))
            return True
        where = "stopped" if not eu.running else "a standby"
        raise Unsafe(f"neither site accepts writes and the EU is {where}"
                     f"{'' if eu.running or eu.clean else ' after a crash'}: start the EU primary (pg_ctl start) and "
                     "run the command again")

    def flip(self) -> str:
        """python -m tools.failover demote: the stack's traffic to the US, the Vercel redeploy, the health wait."""
        assert self.flip_argv is not None
        process = subprocess.Popen(self.flip_argv, stdin=subprocess.DEVNULL)
        try:
            code = process.wait()
        except BaseException:
            process.terminate()
            process.wait(30)
            raise
        if code != 0:
            raise FlipFailed(f"{shlex.join(['python', *self.flip_argv[1:4]])} exited {code} (its error is above)")
        self.flipped = True
        return f"{shlex.join(['python', *self.flip_argv[1:7]])} applied, redeployed and healthy"

    def follow(self, eu: State) -> str:
        """The EU stopped, rewound (or rebuilt) as a standby of the US, started, streaming."""
        if eu.running:
            self.eu.stop()
        elif not eu.missing and not eu.clean:
            self.eu.recover()
        path, why = ("rebuild", "no data directory") if eu.missing else self.eu.rewind(self.us)
        if path == "rebuild":
            self.eu.rebuild(self.us)
        self.eu.start(self.args.timeout_seconds)
        us = self.us.state()
        self.wait("the EU streaming from the US", lambda: self.eu.state().streaming_timeline == us.timeline)
        how = {"follow": "no rewind required", "rewind": f"rewound: {why}"}.get(path, f"rebuilt: {why}")
        return f"the EU streams from the US (timeline {us.timeline}; {how}): a replica again"


class FlipFailed(Exception):
    """tools.failover demote failed (exit 4)."""


