"""The WAL spool of the barman peer against a real PostgreSQL server: it holds segments only while barman's backup
runs. Every restore of the benchmark writes as much WAL as the database it loads (about 7 GB at 2 GB of `app`), and
a spool that kept it all filled the disk within one run of every tool."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from bench import barman_cloud
from tests.services import PostgresServer


def _segments(spool: Path) -> list[str]:
    return sorted(p.name for p in spool.iterdir() if p.name != barman_cloud.ARMED)


def _switch_and_wait(server: PostgresServer) -> None:
    """Write a little, finish the segment, and wait until the archiver has run its command on it."""
    with psycopg.connect(server.url(), autocommit=True) as connection:
        before = connection.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0]  # type: ignore[index]
        connection.execute("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t VALUES (1)")
        connection.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 30
        while connection.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()[0] <= before:  # type: ignore[index]
            assert time.monotonic() < deadline, "the archiver never ran"
            time.sleep(0.05)


@pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as postgres, which must reach the spool")
def test_the_spool_keeps_wal_only_while_armed_and_is_emptied_after():
    scratch = Path(tempfile.mkdtemp(prefix="raptorflow-bench-test-"))  # as the benchmark's: postgres reaches it
    os.chmod(scratch, 0o755)  # noqa: S103 - postgres reaches the spool inside
    spool = scratch / "wal-spool"
    spool.mkdir()
    shutil.chown(spool, "postgres", "postgres")
    server = PostgresServer(barman_cloud.barman_settings(spool)).start()
    try:
        relay = barman_cloud.BarmanRelay(spool, "gs://unused/cluster")
        _switch_and_wait(server)
        assert _segments(spool) == [], "a segment no backup needs was spooled"
        with relay.armed():  # the server reaches the spool: this segment is kept
            _switch_and_wait(server)
            kept = _segments(spool)
            assert len(kept) == 1, kept
        assert list(spool.iterdir()) == [], "the spool is emptied when barman's backup is done"
        _switch_and_wait(server)
        assert _segments(spool) == []
    finally:
        server.stop()
        shutil.rmtree(scratch)
