"""Runs stopped mid-way - SIGTERM at any moment, pg_dump killed, the storage server gone during the upload:
each ends with its exit code and one line that says what is true (which tables a parallel restore left),
leaves no throwaway database, and nothing that passes for a new backup.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from backup_job import dump
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.emulator_proxy import Answer, proxy
from tests.backup_job.jobs import (
    FAST_STORAGE,
    assert_nothing_lost_and_no_new_backup,
    children_named,
    job,
    new_database,
    one_log_line,
    snapshot,
    start,
    wait_for_child,
)
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def wait_until(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    """Poll until `condition` holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        time.sleep(0.01)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler installed (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


def maps_a_library(pid: int, name: str) -> bool:
    """Whether the process has loaded a shared library whose path holds `name`."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def public_rows(url: str) -> dict[str, int]:
    """Rows of every table in the schema public, counted."""
    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        counted = {}
        for table in tables:
            row = connection.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                psycopg.sql.Identifier(table))).fetchone()
            assert row is not None
            counted[f"public.{table}"] = row[0]
    return counted


@pytest.fixture
def locked_table(source_url):
    """Hold an ACCESS EXCLUSIVE lock on a table: pg_dump then waits, so a test can kill or stop it mid-dump."""
    connection = psycopg.connect(source_url)
    connection.execute("BEGIN")
    connection.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
    yield
    connection.rollback()
    connection.close()


def test_pg_dump_killed_mid_dump_leaves_no_object_and_says_how_it_ended(bucket, seeded, source_url, locked_table):
    before = snapshot(bucket)
    process = start("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"DATABASE_URL": source_url})
    os.kill(wait_for_child(process.pid, "pg_dump"), signal.SIGKILL)
    out, _err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.DUMP_FAILED
    assert one_log_line(out)["message"].startswith("pg_dump was killed by SIGKILL")
    assert_nothing_lost_and_no_new_backup(bucket, before)


def test_sigterm_logs_the_failure_and_leaves_nothing_during_a_backup(bucket, seeded, source_url, locked_table):
    before = snapshot(bucket)
    process = start("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"DATABASE_URL": source_url})
    wait_for_child(process.pid, "pg_dump")  # waiting on the locked table
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert_nothing_lost_and_no_new_backup(bucket, before)


def test_sigterm_during_a_restore_check_drops_its_database(bucket, big_url, scratch_url, postgres):
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": big_url})
    assert code == 0, out + err
    before = snapshot(bucket)
    process = start("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"SCRATCH_DATABASE_URL": scratch_url})
    wait_for_child(process.pid, "pg_restore")  # restoring a dump that takes seconds
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert snapshot(bucket) == before
    with psycopg.connect(postgres.url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'raptorflow_restore%'")
        assert left.fetchall() == [], "a throwaway database was left behind"


@pytest.fixture(scope="module")
def big_url(postgres) -> str:
    """A database whose dump takes seconds to write and to restore (about 150 MB of text that zstd cannot shrink
    much: a row's 30 hashes each its own, so the upload, not only pg_dump, takes seconds)."""
    url = postgres.create_database("faults_big")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE blobs AS SELECT i, md5(i::text) || (SELECT string_agg(md5(random()::text), "
                           "'') FROM generate_series(1, 30) WHERE i > 0) AS data FROM generate_series(1, 150000) AS i")
    return url


def test_storage_killed_mid_transfer(big_url):
    from google.cloud import storage

    from tests.services import StorageEmulator

    big = big_url
    emulator = StorageEmulator().start()
    try:
        storage.Client().create_bucket("faults-mid-transfer")
        process = start("backup", "--kind", "full", "--bucket", "faults-mid-transfer",
                        env={"DATABASE_URL": big, "STORAGE_EMULATOR_HOST": emulator.url, **FAST_STORAGE})
        wait_for_child(process.pid, "pg_dump")
        time.sleep(0.5)
    finally:
        emulator.stop()
    out, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.UPLOAD_FAILED, out + err
    assert one_log_line(out)["failure"] == "upload_failed"


@pytest.fixture(scope="module")
def long_run(postgres, emulator) -> tuple[str, str, dict]:
    """A database whose dump takes a second or two to write and to restore, in tables of very different sizes,
    and a bucket holding one full backup of it: (database URL, bucket name, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"long_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        for table, rows in (("small_a", 10), ("small_b", 100), ("small_c", 1000),
                            ("big_a", 25000), ("big_b", 25000), ("big_c", 25000)):
            connection.execute(f"CREATE TABLE {table} AS SELECT i, md5(i::text) || repeat(md5(random()::text), 30) "  # noqa: S608 - the test's own names
                               f"AS data FROM generate_series(1, {rows}) AS i")
            connection.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (i)")
    bucket = storage.Client().create_bucket(f"long-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name, compress_level=0))
    return url, bucket.name, manifest


@pytest.fixture
def stalled(long_run, emulator) -> Iterator[str]:
    """Runs stall in the middle until SIGTERM: pg_dump waits on a table the test locks, and a restore's download
    waits at a proxy that holds the dump back. Yields the proxy's address."""
    url, _, _ = long_run
    release = threading.Event()

    def holding(method: str, path: str, answer: Answer) -> Answer:
        if urllib.parse.unquote(urllib.parse.urlsplit(path).path).endswith(".dump"):
            release.wait(60)
        return answer

    with psycopg.connect(url) as locker, proxy(emulator.url, holding) as address:
        locker.execute("LOCK TABLE big_a IN ACCESS EXCLUSIVE MODE")
        try:
            yield address
        finally:
            release.set()


DELAYS = (0.0, 0.2, 0.5, 1.0, 1.6)  # after the handler is installed: loading the libraries, connecting, working


@pytest.mark.parametrize("command", ["backup", "restore", "list"])
def test_sigterm_at_any_moment_ends_with_one_line_and_exit_10(command, long_run, stalled, postgres):
    url, bucket, manifest = long_run
    delays = DELAYS if command != "list" else DELAYS[:2]
    runs = []
    for delay in delays:
        args = {"backup": ("backup", "--kind", "full"), "restore": ("restore", "--object", manifest["object"]),
                "list": ("list",)}[command]
        process = start(*args, "--bucket", bucket, env={
            "STORAGE_EMULATOR_HOST": stalled, "DATABASE_URL": url,
            "TARGET_DATABASE_URL": new_database(postgres) if command == "restore" else ""})
        runs.append((delay, process))
    early = []
    for _, process in runs:
        wait_until(functools.partial(lambda p: catches_sigterm(p.pid) or p.poll() is not None, process),
                   "the handler's installation")
        early.append(not maps_a_library(process.pid, "psycopg"))
    assert any(early), "the SIGTERM handler was installed only once the client libraries had loaded"
    began = time.monotonic()
    for delay, process in sorted(runs, key=lambda run: run[0]):
        time.sleep(max(0.0, began + delay - time.monotonic()))
        assert process.poll() is None, f"{command} ended before SIGTERM at {delay} s"
        process.send_signal(signal.SIGTERM)
    for delay, process in runs:
        out, err = process.communicate(timeout=60)
        assert process.returncode == ExitCode.TERMINATED, f"SIGTERM at {delay} s: {out}{err}"
        assert "Traceback" not in err, f"SIGTERM at {delay} s: {err}"
        if command == "list":
            assert out == "" and err.strip().splitlines()[-1].startswith("error: list stopped by SIGTERM"), err
        else:
            log = one_log_line(out)
            assert (log["failure"], log["exitCode"], log["event"]) == ("terminated", 10, "raptorflow.backup"), log


def test_sigterm_during_a_parallel_restore_reports_exactly_the_tables_it_left(long_run, postgres):
    """pg_restore -j is not one transaction: stopped in the middle, the target holds some tables and not
    others. The log line says which, as the target holds them once the run is over."""
    _, bucket, manifest = long_run
    target = new_database(postgres)
    process = start("restore", "--bucket", bucket, "--object", manifest["object"], "--jobs", "2",
                    env={"TARGET_DATABASE_URL": target})

    def a_big_table_restored() -> bool:
        # pg_restore -j copies the largest tables first: with two workers, the third big one is still to come.
        try:
            with psycopg.connect(target) as connection:
                return any(connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (25000,)  # noqa: S608
                           for table in ("big_a", "big_b", "big_c"))
        except psycopg.Error:
            return False

    wait_until(lambda: children_named(process.pid, "pg_restore"), "pg_restore's start")
    wait_until(lambda: a_big_table_restored() or process.poll() is not None, "a table's rows")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert "nothing was completed" not in log["message"], "the target holds what pg_restore -j committed"

    expected = manifest["tableRowCounts"]
    held = public_rows(target)
    complete = sorted(table for table, rows in expected.items() if held.get(table) == rows)
    assert log["tablesRestored"] == complete, log
    assert log["tablesNotRestored"] == sorted(set(expected) - set(complete)), log
    assert log["tablesNotRestored"], "SIGTERM came after the restore: nothing to report"
    assert "restore again with --replace" in log["message"]
