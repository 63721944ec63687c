"""python -m tools.failback against real PostgreSQL clusters on 127.0.0.1: a US primary with its EU streaming
replica, a failover (the EU promoted, the US crashed after writing past the promotion), writes on the EU, then
the failback - rewound when the clusters have data checksums, rebuilt when pg_rewind cannot run, resumed after
a kill in the switchover, a no-op when run again. The flip (tools.failover demote) is the drill's to test."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.services import free_port, postgres_bindir
from tools.offline import ROOT

ROLE = "dr_admin"
WAIT_SECONDS = 60.0
RUN_SECONDS = 240


def _pg_ctl() -> str:
    bindir = postgres_bindir()
    assert bindir is not None
    return str(bindir / "pg_ctl")


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Server:
    """One site's cluster: its data directory, port and connection string (the password in a passfile)."""

    def __init__(self, folder: Path, name: str, passfile: Path) -> None:
        self.name, self.data, self.port = name, folder / name / "data", free_port()
        self.conninfo = f"host=127.0.0.1 port={self.port} user={ROLE} dbname=postgres passfile={passfile}"
        self.folder = folder / name
        self.folder.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    def pg(self, program: str, *argv: str) -> None:
        """A PostgreSQL program as the postgres user."""
        bindir = postgres_bindir()
        assert bindir is not None
        subprocess.run([*_as_postgres(), str(bindir / program), *argv], check=True, capture_output=True, text=True,
                       timeout=WAIT_SECONDS)

    def start(self) -> None:
        """Start on 127.0.0.1:port (the options land in postmaster.opts, which the tool's pg_ctl start reuses)."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c wal_level=replica "
                   "-c max_wal_senders=5 -c wal_keep_size=256MB -c fsync=off -c wal_retrieve_retry_interval=200ms")
        self.pg("pg_ctl", "start", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w")

    def replicate(self, source: Server) -> None:
        """This site's data directory made a streaming replica of `source` (pg_basebackup -R), after a fast
        checkpoint on `source` as tools.failback's rebuild asks for: the default spread one waited 4 s."""
        self.pg("pg_basebackup", "-D", str(self.data), "-d", source.conninfo, "-R", "-X", "stream", "--no-sync",
                "--checkpoint=fast")

    def sql(self, query: str) -> list[tuple]:
        """Rows of a statement (autocommit)."""
        with psycopg.connect(self.conninfo, autocommit=True) as connection:
            cursor = connection.execute(query)
            return cursor.fetchall() if cursor.description else []

    def seqs(self) -> set[int]:
        """The ledger's rows."""
        return {row[0] for row in self.sql("SELECT seq FROM ledger")}


class Pair:
    """The two sites after a failover: EU promoted and written to; the US crashed with writes the EU never saw."""

    def __init__(self, checksums: bool) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="raptorflow-failback-"))
        self.password = "pw-" + os.urandom(9).hex()
        self.passfile = self.folder / "pgpass"
        self.passfile.write_text(f"*:*:*:{ROLE}:{self.password}\n")
        self.passfile.chmod(0o600)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.folder, self.passfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.us = Server(self.folder, "us", self.passfile)
        self.eu = Server(self.folder, "eu", self.passfile)
        pwfile = self.us.folder / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        self.us.pg("initdb", "-D", str(self.us.data), "-U", ROLE, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                   "--no-sync", *(["--data-checksums"] if checksums else []))
        pwfile.unlink()
        self.us.start()
        self.us.sql("CREATE TABLE ledger (seq int PRIMARY KEY, site text NOT NULL)")
        self.write(self.us, range(1, 101))
        self.eu.replicate(self.us)
        self.eu.start()
        self.wait_replayed(self.us, self.eu)

    def write(self, server: Server, seqs: range) -> None:
        """Acknowledged writes (each committed on its own)."""
        with psycopg.connect(server.conninfo, autocommit=True) as connection:
            for seq in seqs:
                connection.execute("INSERT INTO ledger VALUES (%s, %s)", (seq, server.name))

    def wait_replayed(self, primary: Server, standby: Server) -> None:
        """The standby has replayed all the primary has written."""
        target = primary.sql("SELECT pg_current_wal_lsn()")[0][0]
        deadline = time.monotonic() + WAIT_SECONDS
        while not standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]:
            assert time.monotonic() < deadline, f"{standby.name} did not replay {target}"
            time.sleep(0.1)

    def fail_over(self) -> None:
        """The EU promoted while the US keeps writing (rows 101-120: the US's timeline diverges), then the US
        crashes; the EU takes acknowledged writes 1001-1100 on its new timeline."""
        self.eu.pg("pg_ctl", "promote", "-D", str(self.eu.data), "-w")
        self.write(self.us, range(101, 121))
        self.us.pg("pg_ctl", "stop", "-D", str(self.us.data), "-m", "immediate")
        self.write(self.eu, range(1001, 1101))

    def failback(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """The operator's command, run to its end."""
        return subprocess.run(self.argv(*extra), cwd=ROOT, capture_output=True, text=True, timeout=RUN_SECONDS)

    def argv(self, *extra: str) -> list[str]:
        """python -m tools.failback for this pair (the flip skipped: no stack here)."""
        prefix = " ".join(_as_postgres())
        return [sys.executable, "-m", "tools.failback", "--us", self.us.conninfo, "--us-data", str(self.us.data),
                "--eu", self.eu.conninfo, "--eu-data", str(self.eu.data), "--us-command", prefix,
                "--eu-command", prefix, "--skip-flip", "--timeout-seconds", "60", "--interval-seconds", "0.2", *extra]

    def stop(self) -> None:
        """Stop both servers and remove everything."""
        for server in (self.us, self.eu):
            if server.data.exists():
                subprocess.run([*_as_postgres(), _pg_ctl(), "stop", "-D", str(server.data),
                                "-m", "immediate"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """A primary and its replica after a failover (with data checksums unless the test is marked otherwise)."""
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    made = Pair(checksums=getattr(request, "param", True))
    try:
        made.fail_over()
        yield made
    finally:
        made.stop()


def phases(output: str) -> list[str]:
    """The phase of each timed line the command printed."""
    return [line.split()[0] for line in output.splitlines() if line.split()[1:3][-1:] == ["s"]]


def assert_failed_back(pair: Pair) -> None:
    """The US is the primary, the EU streams from it, and every acknowledged write of the EU is on the US."""
    assert pair.us.sql("SELECT pg_is_in_recovery()") == [(False,)], "the US is not the primary"
    assert pair.eu.sql("SELECT pg_is_in_recovery()") == [(True,)], "the EU is not a standby"
    assert pair.us.sql("SELECT application_name, state FROM pg_stat_replication") == [("eu", "streaming")], \
        "the EU does not stream from the US under its site name"
    acknowledged = set(range(1, 101)) | set(range(1001, 1101))
    assert acknowledged <= pair.us.seqs(), f"lost: {sorted(acknowledged - pair.us.seqs())[:10]}"
    pair.write(pair.us, range(2001, 2002))
    pair.wait_replayed(pair.us, pair.eu)
    assert 2001 in pair.eu.seqs(), "a write on the US did not reach the EU"


def test_failback_rewinds_the_diverged_us_and_switches_over(pair: Pair) -> None:
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout) == ["rewind", "stream", "catch-up", "switchover", "follow", "failback"], result.stdout
    assert "rewound to the EU's timeline" in result.stdout, "the diverged US must be rewound, not followed"
    assert "no rewind required" in result.stdout.splitlines()[4], f"the cleanly stopped EU needs no rewind: {result.stdout}"
    assert_failed_back(pair)
    assert not set(range(101, 121)) & pair.us.seqs(), "the US's writes after the promotion survived the rewind"
    assert pair.us.sql("SHOW default_transaction_read_only") == [("off",)], "the US came up read-only"
    assert pair.us.sql("SELECT current_setting('default_transaction_read_only')") == [("off",)]


def test_failback_run_twice_changes_nothing(pair: Pair) -> None:
    assert pair.failback().returncode == 0
    timeline = pair.us.sql("SELECT timeline_id FROM pg_control_checkpoint()")
    again = pair.failback()
    assert again.returncode == 0, again.stderr
    assert phases(again.stdout) == [], again.stdout
    assert "nothing to do" in again.stdout
    assert pair.us.sql("SELECT timeline_id FROM pg_control_checkpoint()") == timeline, "a second switchover ran"
    assert_failed_back(pair)


@pytest.mark.parametrize("pair", [False], indirect=True)
def test_failback_rebuilds_when_pg_rewind_cannot_run(pair: Pair) -> None:
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rebuild", result.stdout
    assert "data checksums or \"wal_log_hints = on\"" in result.stdout, "the rebuild must say why pg_rewind could not"
    assert "rebuilt" in result.stdout.splitlines()[4], "the EU without checksums is rebuilt too"
    assert_failed_back(pair)
    assert not set(range(101, 121)) & pair.us.seqs(), "the US's diverged writes survived the rebuild"
    leftovers = sorted(p.name for p in pair.us.data.parent.iterdir() if ".failback-" in p.name)
    assert leftovers == [], f"the rebuild left {leftovers}"


def test_failback_killed_in_the_switchover_leaves_no_writer_and_continues(pair: Pair) -> None:
    # The US made a streaming replica of the EU beforehand, its replay paused: the switchover stops the EU, then
    # waits for the US to replay the EU's shutdown checkpoint - and is killed there.
    shutil.rmtree(pair.us.data)
    pair.us.replicate(pair.eu)
    pair.us.start()
    pair.wait_replayed(pair.eu, pair.us)
    pair.us.sql("SELECT pg_wal_replay_pause()")
    process = subprocess.Popen(pair.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while subprocess.run([*_as_postgres(), _pg_ctl(), "status", "-D", str(pair.eu.data)],
                         capture_output=True).returncode == 0:
        assert time.monotonic() < deadline and process.poll() is None, "the switchover never stopped the EU"
        time.sleep(0.1)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 130, err
    assert err.splitlines() == [err.strip()] and err.startswith("interrupted in switchover: "), err
    assert "run again" in err or "runs again" in err
    assert pair.us.sql("SELECT pg_is_in_recovery()") == [(True,)], "the US was promoted although killed before"
    with pytest.raises(psycopg.OperationalError):
        pair.eu.sql("SELECT 1")
    pair.us.sql("SELECT pg_wal_replay_resume()")
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout) == ["switchover", "follow", "failback"], result.stdout
    assert_failed_back(pair)


@pytest.mark.parametrize("pair", [False], indirect=True)
def test_failback_killed_in_the_rebuild_leaves_no_partial_copy_and_continues(pair: Pair) -> None:
    # 60 MB more on the EU, so that pg_basebackup runs long enough to be killed halfway.
    pair.eu.sql("CREATE TABLE filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 100000) AS g")
    partial = pair.us.data.parent / "data.failback-partial"
    process = subprocess.Popen(pair.argv(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT_SECONDS
    while not (partial / "base").exists():
        assert time.monotonic() < deadline and process.poll() is None, "the rebuild never began its copy"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 130, err
    assert err.startswith("interrupted in rebuild: ") and len(err.splitlines()) == 1, err
    assert not partial.exists(), "the killed rebuild left its partial copy"
    assert (pair.us.data / "PG_VERSION").exists(), "the kill lost the US data directory before a copy was complete"
    assert subprocess.run(["pgrep", "-f", f"pg_basebackup -D {partial}"], capture_output=True).returncode == 1, \
        "pg_basebackup outlived the command"
    result = pair.failback()
    assert result.returncode == 0, result.stderr
    assert phases(result.stdout)[0] == "rebuild", result.stdout
    assert_failed_back(pair)
