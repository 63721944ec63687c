"""The two PostgreSQL sites python -m tools.failback's tests run it against, on 127.0.0.1: a US primary with its
EU streaming replica, then a real failover of each test's own (the EU promoted, the US writing past the promotion
and crashing, the EU taking writes on its new timeline), and the checks the tests share.

The primary and replica are built once per module and per data-checksums setting (initdb, the ledger's first 100
rows, a base backup), stopped cleanly, and each test starts from a copy of their data directories: the same
starting point in a fraction of the time.
"""

from __future__ import annotations

import os
import pwd
import shutil
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


def pg_ctl() -> str:
    """The pg_ctl of the newest PostgreSQL installed."""
    bindir = postgres_bindir()
    assert bindir is not None
    return str(bindir / "pg_ctl")


def as_postgres() -> list[str]:
    """The prefix that runs a command as the postgres user (none unless this runs as root)."""
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
        subprocess.run([*as_postgres(), str(bindir / program), *argv], check=True, capture_output=True, text=True,
                       timeout=WAIT_SECONDS)

    def start(self, wal_keep_size: str = "256MB") -> None:
        """Start on 127.0.0.1:port (the options land in postmaster.opts, which the tool's pg_ctl start reuses)."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c wal_level=replica "
                   f"-c max_wal_senders=5 -c wal_keep_size={wal_keep_size} -c fsync=off "
                   "-c wal_retrieve_retry_interval=200ms")
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
    """The two sites: a US primary with the ledger's rows 1-100 and its EU streaming replica; after fail_over(),
    the EU promoted and written to, the US crashed with writes the EU never saw."""

    def __init__(self, password: str) -> None:
        """Two sites in a new folder, their role's password in a passfile; nothing created or started yet."""
        self.folder = Path(tempfile.mkdtemp(prefix="raptorflow-failback-"))
        self.password = password
        self.passfile = self.folder / "pgpass"
        self.passfile.write_text(f"*:*:*:{ROLE}:{self.password}\n")
        self.passfile.chmod(0o600)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (self.folder, self.passfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self.us = Server(self.folder, "us", self.passfile)
        self.eu = Server(self.folder, "eu", self.passfile)

    @classmethod
    def built(cls, checksums: bool) -> Pair:
        """A new US primary (initdb, the ledger's rows 1-100) and its EU streaming replica, both running."""
        made = cls("pw-" + os.urandom(9).hex())
        pwfile = made.us.folder / "pw"
        pwfile.write_text(made.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        made.us.pg("initdb", "-D", str(made.us.data), "-U", ROLE, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                   "--no-sync", *(["--data-checksums"] if checksums else []))
        pwfile.unlink()
        made.us.start()
        made.us.sql("CREATE TABLE ledger (seq int PRIMARY KEY, site text NOT NULL)")
        made.write(made.us, range(1, 101))
        made.eu.replicate(made.us)
        made.eu.start()
        made.wait_replayed(made.us, made.eu)
        return made

    def stop_cleanly(self) -> None:
        """Shut the US down, then the EU (the US's walsender sends its shutdown checkpoint to the EU first)."""
        for server in (self.us, self.eu):
            server.pg("pg_ctl", "stop", "-D", str(server.data), "-m", "fast", "-w")

    def copy(self) -> Pair:
        """A pair of copies of this stopped pair's data directories, on ports of their own, started, the EU
        streaming from the US and caught up: what built() makes, without initdb and a base backup each time."""
        made = Pair(self.password)
        for server, copied in ((self.us, made.us), (self.eu, made.eu)):
            subprocess.run(["cp", "-a", str(server.data), str(copied.data)], check=True, timeout=WAIT_SECONDS)
        settings = made.eu.data / "postgresql.auto.conf"  # pg_basebackup -R's primary_conninfo names the US
        text = settings.read_text()
        assert f"port={self.us.port}" in text and str(self.passfile) in text, text
        settings.write_text(text.replace(f"port={self.us.port}", f"port={made.us.port}")
                            .replace(str(self.passfile), str(made.passfile)))
        made.us.start()
        made.eu.start()
        made.wait_replayed(made.us, made.eu)
        return made

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
        prefix = " ".join(as_postgres())
        return [sys.executable, "-m", "tools.failback", "--us", self.us.conninfo, "--us-data", str(self.us.data),
                "--eu", self.eu.conninfo, "--eu-data", str(self.eu.data), "--us-command", prefix,
                "--eu-command", prefix, "--skip-flip", "--timeout-seconds", "60", "--interval-seconds", "0.2", *extra]

    def stop(self) -> None:
        """Stop both servers and remove everything."""
        for server in (self.us, self.eu):
            if server.data.exists():
                subprocess.run([*as_postgres(), pg_ctl(), "stop", "-D", str(server.data),
                                "-m", "immediate"], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def templates() -> Iterator[dict[bool, Pair]]:
    """Per data-checksums setting, a pair built once for the module and stopped cleanly; each test's pair is a
    copy of it."""
    made: dict[bool, Pair] = {}
    yield made
    for template in made.values():
        template.stop()


@pytest.fixture
def pair(request: pytest.FixtureRequest, templates: dict[bool, Pair]) -> Iterator[Pair]:
    """A primary and its replica after a real failover of their own (with data checksums unless the test is
    marked otherwise), copied from the module's template."""
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries not installed")
    checksums = getattr(request, "param", True)
    if checksums not in templates:
        template = Pair.built(checksums)
        templates[checksums] = template
        template.stop_cleanly()
    made = templates[checksums].copy()
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
