"""`python -m tools.pitr` against the Supabase PITR stand-in (tools/drill/pitr.py), which drives a real PostgreSQL
whose WAL is archived into a real GCS emulator, both started here on 127.0.0.1.

The rows a restore keeps are checked against PostgreSQL's own commit timestamps (track_commit_timestamp), read
before the restore: exactly the rows committed at or before the target come back.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.services import PostgresServer, StorageEmulator, postgres_bindir, serving
from tools import pitr as command
from tools.drill import pitr, wal_archive
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL server binaries not installed")

REF = "abcdefghijklmnopqrst"
TOKEN = "sbp_" + "0123456789abcdef" * 3
COMMAND_TIMEOUT_SECONDS = 120


class Server:
    """tests.services' PostgreSQL as the stand-in's Server: started again with the same options after a restore,
    commit timestamps on so a test knows each row's commit time."""

    def __init__(self, postgres: PostgresServer) -> None:
        self.postgres = postgres
        self.data, self.bindir = postgres.data, postgres.bindir
        self.options = (f"-c listen_addresses=127.0.0.1 -p {postgres.port} -k {postgres.directory} -c fsync=off "
                        "-c track_commit_timestamp=on")

    def _run(self, *argv: str) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True,
                                timeout=120, check=False)
        if result.returncode != 0:  # the stand-in reports the failure; the server's log says why
            log = self.postgres.directory / "server.log"
            tail = log.read_text().splitlines()[-3:] if log.exists() else []
            raise RuntimeError(f"{Path(argv[0]).name} exited {result.returncode}: {result.stderr.strip()} {tail}")

    def start(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", self.options, "-l",
                  str(self.postgres.directory / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        return psycopg.connect(self.postgres.url(dbname), autocommit=autocommit)

    def base_backup(self, folder: Path) -> None:
        passfile = self.postgres.directory / "pgpass"
        passfile.write_text(f"127.0.0.1:{self.postgres.port}:*:{self.postgres.admin}:{self.postgres.password}\n")
        passfile.chmod(0o600)
        os.chown(passfile, *_postgres_ids())
        self._run("env", f"PGPASSFILE={passfile}", str(self.bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                  str(self.postgres.port), "-U", self.postgres.admin, "-D", str(folder), "-Ft", "-z", "-X", "fetch",
                  "-c", "fast", "--no-sync")


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@dataclass
class World:
    """A PostgreSQL primary archived by the stand-in, its API served on 127.0.0.1."""

    server: Server
    stand_in: pitr.SupabasePitrStandIn
    url: str
    state: Path

    def rows(self) -> dict[int, float]:
        """id -> commit time (Unix seconds) of the table's rows."""
        with self.server.connect() as connection:
            found = connection.execute("SELECT id, extract(epoch FROM pg_xact_commit_timestamp(xmin)) FROM t")
            return {row[0]: float(row[1]) for row in found}

    def write(self, count: int, pause_seconds: float = 0.05) -> None:
        """`count` rows, one transaction each."""
        with self.server.connect() as connection:
            for _ in range(count):
                connection.execute("INSERT INTO t DEFAULT VALUES")
                time.sleep(pause_seconds)

    def write_around_a_second(self, pause_seconds: float = 0.05) -> int:
        """Rows, one transaction each, from now until past a whole second inside the window: that second."""
        earliest, _ = self.stand_in.window()
        assert earliest is not None, "the base backup is listed"
        target = max(earliest, int(time.time())) + 1
        while time.time() < target + 1.2:
            self.write(1, pause_seconds)
        return target

    def archived_past(self, moment: float, timeout: float = 30.0) -> tuple[int, int]:
        """Switch the WAL until the window's latest point is at or after `moment`; the window."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.server.connect() as connection:
                connection.execute("INSERT INTO t DEFAULT VALUES")  # a commit after `moment` to stop at
                connection.execute("SELECT pg_switch_wal()")
            earliest, latest = self.stand_in.window()
            if earliest is not None and latest is not None and latest >= moment:
                return earliest, latest
            time.sleep(0.3)
        raise AssertionError(f"the archive never reached {moment}")

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`python -m tools.pitr restore` against the stand-in, the token in the environment."""
        environment = {**os.environ, command.TOKEN_VARIABLE: TOKEN, **(env or {})}
        return subprocess.run([sys.executable, "-m", "tools.pitr", "restore", "--project-ref", REF,
                               "--api-url", self.url, "--state-dir", str(self.state), "--poll-seconds", "0.2", *args],
                              cwd=ROOT, env=environment, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_SECONDS)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    emulator = StorageEmulator().start()
    postgres = PostgresServer(settings={"track_commit_timestamp": "on"}).start()
    server = Server(postgres)
    stand_in = pitr.SupabasePitrStandIn(server, pitr.Settings(REF, TOKEN, emulator.url, "supabase-pitr-test",
                                                              postgres.directory / "pitr", 0))
    try:
        with server.connect() as connection:
            connection.execute("CREATE TABLE t (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
        stand_in.start()
        with serving(stand_in.handler()) as http:
            yield World(server, stand_in, f"http://127.0.0.1:{http.server_address[1]}", tmp_path / "state")
    finally:
        stand_in.stop()
        try:
            postgres.stop()
        except subprocess.CalledProcessError:
            pass  # a test left it stopped (a failed restore); its files are gone all the same
        finally:
            emulator.stop()


def _rfc3339(unix: int) -> str:
    return wal_archive.utc_text(unix)


def test_a_restore_inside_the_wal_brings_back_exactly_the_rows_committed_before_the_target(world):
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    kept = {key for key, at in world.rows().items() if at <= target}
    lost = set(world.rows()) - kept
    assert kept and lost, "the target falls between commits"

    result = world.run("--to", _rfc3339(target))

    assert result.returncode == 0, (result.stderr, world.stand_in.failure)
    assert set(world.rows()) == kept
    assert world.stand_in.restores == [{"targetUnix": target, "target": _rfc3339(target),
                                        "seconds": world.stand_in.restores[0]["seconds"]}]
    assert f"restored to {_rfc3339(target)}" in result.stdout
    assert TOKEN not in result.stdout + result.stderr
    with world.server.connect() as connection:  # writable again, out of recovery
        assert connection.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        connection.execute("INSERT INTO t DEFAULT VALUES")
    settings = (world.server.data / "postgresql.auto.conf").read_text()
    assert "recovery_target_time" not in settings and "restore_command" not in settings, "a restart recovers nothing"
    assert "archive_command" in settings, "the restored server archives as before"

    again = world.run("--to", _rfc3339(target))
    assert again.returncode == 0, again.stderr
    assert "already restored" in again.stdout and "nothing requested" in again.stdout
    assert len(world.stand_in.restores) == 1, "a second run requested no second restore"


def test_a_target_outside_the_archived_wal_is_refused_and_nothing_is_touched(world):
    world.write(5)
    earliest, latest = world.archived_past(time.time())
    before = world.rows()
    pid = (world.server.data / "postmaster.pid").read_text().split()[0]

    too_early = world.run("--to", _rfc3339(earliest - 60))
    too_late = world.run("--to", _rfc3339(latest + 3600))

    assert too_early.returncode == too_late.returncode == command.EXIT_REFUSED
    assert "before the earliest recovery point" in too_early.stderr and _rfc3339(earliest) in too_early.stderr
    assert "after the latest recovery point" in too_late.stderr and _rfc3339(latest) in too_late.stderr
    assert len(too_early.stderr.strip().splitlines()) == 1, "one line on failure"
    # The stand-in's own window refuses the same request when it is sent anyway.
    request = urllib.request.Request(f"{world.url}/v1/projects/{REF}/database/backups/restore-pitr", method="POST",
                                     data=json.dumps({"recovery_time_target_unix": latest + 3600}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400 and "outside the archived WAL" in json.loads(refused.value.read())["message"]
    assert world.stand_in.restores == [] and world.stand_in.status == pitr.ACTIVE
    assert world.rows() == before
    assert (world.server.data / "postmaster.pid").read_text().split()[0] == pid, "the server was not restarted"
    assert not (world.state / f"{REF}.json").exists(), "no receipt for a refused request"


def test_a_timed_out_wait_exits_1_and_a_second_run_waits_for_the_same_restore(world):
    target = world.write_around_a_second()
    world.archived_past(target + 1)

    first = world.run("--to", _rfc3339(target), "--timeout-seconds", "0")
    second = world.run("--to", _rfc3339(target), "--timeout-seconds", "120")

    assert first.returncode == command.EXIT_TIMEOUT, first.stderr
    assert "--timeout-seconds" in first.stderr and "RESTORING" in first.stderr
    assert second.returncode == 0, second.stderr
    assert "in progress: waiting" in second.stdout
    assert len(world.stand_in.restores) == 1, "the second run started no second restore"


def test_a_failed_restore_exits_5_with_one_line_and_the_same_command_requests_it_again(world):
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    kept = {key for key, at in world.rows().items() if at <= target}
    base = wal_archive.call_in(lambda: None, lambda: world.stand_in.bucket().blob(wal_archive.BASE_BACKUP))
    content = base.download_as_bytes()
    base.delete()  # the base backup lost: the restore cannot run

    failed = world.run("--to", _rfc3339(target))

    assert failed.returncode == command.EXIT_FAILED, failed.stderr
    assert "RESTORE_FAILED" in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert world.stand_in.status == pitr.FAILED and "NotFound" in (world.stand_in.failure or "")
    base.upload_from_string(content)
    again = world.run("--to", _rfc3339(target))
    assert again.returncode == 0, (again.stderr, world.stand_in.failure)
    assert "requesting it again" in again.stdout
    assert set(world.rows()) == kept


def test_a_restore_still_queued_behind_an_active_healthy_status_is_waited_for(world):
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    kept = {key for key, at in world.rows().items() if at <= target}
    world.stand_in.settings.start_delay_seconds = 1.5  # ACTIVE_HEALTHY for 1.5 s after the 201

    result = world.run("--to", _rfc3339(target))

    assert result.returncode == 0, (result.stderr, world.stand_in.failure)
    assert set(world.rows()) == kept, "returned once the restore had run"
    assert "status ACTIVE_HEALTHY after" in result.stdout and "no restore seen yet" in result.stdout


def test_a_receipt_of_a_request_that_never_arrived_is_not_taken_for_a_restore(world):
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    before = world.rows()
    # What a run SIGKILLed between writing its receipt and sending the POST leaves.
    command.Receipts(world.state, REF).write({"projectRef": REF, "targetUnix": target, "requestedAt": "then"})

    result = world.run("--to", _rfc3339(target), "--timeout-seconds", "1")

    assert result.returncode == command.EXIT_TIMEOUT, result.stdout
    assert "never seen starting" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert world.stand_in.restores == [] and world.rows() == before


def test_a_wrong_token_is_an_api_failure_that_never_prints_the_token(world):
    wrong = "sbp_" + "f" * 40
    result = world.run("--to", _rfc3339(int(time.time())), env={command.TOKEN_VARIABLE: wrong})
    assert result.returncode == command.EXIT_API
    assert "401" in result.stderr and wrong not in result.stdout + result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "2026-12-02 14:03:09"], "UTC"),
    (["--to", "2026-12-02T14:03:09.5Z"], "whole seconds"),
    (["--to", "2026-12-02T14:03:09+02:00"], "UTC"),
    (["--to", "2026-12-02T14:03:09Z", "--timeout-seconds", "nan"], "seconds"),
    (["--to", "2026-12-02T14:03:09Z", "--api-url", "api.supabase.com"], "API URL"),
    (["--to", "2026-12-02T14:03:09Z", "--api-url", "https://[::1"], "API URL"),
])
def test_bad_options_exit_2_before_any_request(args, message):
    result = subprocess.run([sys.executable, "-m", "tools.pitr", "restore", "--project-ref", REF,
                             "--api-url", "http://127.0.0.1:9", *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, command.TOKEN_VARIABLE: TOKEN}, timeout=60)
    assert result.returncode == command.EXIT_USAGE and message in result.stderr, shlex.join(args)
    assert "Traceback" not in result.stderr


def test_no_token_exits_2():
    environment = {k: v for k, v in os.environ.items() if k != command.TOKEN_VARIABLE}
    result = subprocess.run([sys.executable, "-m", "tools.pitr", "restore", "--project-ref", REF, "--to",
                             "2026-12-02T14:03:09Z"], cwd=ROOT, capture_output=True, text=True, env=environment,
                            timeout=60)
    assert result.returncode == command.EXIT_USAGE and command.TOKEN_VARIABLE in result.stderr
