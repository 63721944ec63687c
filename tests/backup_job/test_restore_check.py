"""`restore-check` drops only the scratch databases it made, and two checks never take the same name."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from backup_job import check, dump
from backup_job import storage as layout
from backup_job.database import Database
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def databases(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}


def make(url: str, name: str, comment: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if comment is not None:
            connection.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name),
                                                                             sql.Literal(comment)))


def test_only_the_checks_own_stale_databases_are_dropped(bucket, source_url, scratch_url):
    dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    tag = uuid.uuid4().hex[:8]
    old = f"{check.THROWAWAY_PREFIX}20200101T000000_1_{tag}"
    kept = {
        f"{check.THROWAWAY_PREFIX}20200101T000000_2_{tag}": None,  # the shape, but no mark
        f"{check.THROWAWAY_PREFIX}20200101T000000_3_{tag}": "someone's notes",  # the shape, another comment
        f"{check.THROWAWAY_PREFIX}important_{tag}": check.THROWAWAY_MARK,  # the prefix and the mark, not the shape
        f"{check.THROWAWAY_PREFIX}20200101T000000_4_{tag}_copy": check.THROWAWAY_MARK,  # the shape, then more
        f"{check.THROWAWAY_PREFIX}{layout.utc_now():%Y%m%dT%H%M%S}_5_{tag}": check.THROWAWAY_MARK,  # a run now
    }
    make(scratch_url, old, check.THROWAWAY_MARK)
    for name, comment in kept.items():
        make(scratch_url, name, comment)
    check.run_restore_check(Database(scratch_url), bucket.name)
    present = databases(scratch_url)
    assert old not in present, "a database a killed check left is dropped"
    assert set(kept) <= present, "no other database is touched"


def test_two_checks_in_the_same_second_as_pid_1_never_collide(bucket, source_url, scratch_url, monkeypatch):
    """Cloud Run starts every task's job as PID 1, and two tasks may start in the same second."""
    dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    moment = datetime(2026, 12, 2, 2, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(check.os, "getpid", lambda: 1)
    monkeypatch.setattr(check.layout, "utc_now", lambda: moment)
    created: list[str] = []
    execute = psycopg.Connection.execute

    def recording(self, query, params=None, **kwargs):
        if isinstance(query, sql.Composed) and query.as_string(self).startswith("CREATE DATABASE"):
            created.append(query.as_string(self))
        return execute(self, query, params, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", recording)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: check.run_restore_check(Database(scratch_url), bucket.name), range(2)))
    assert [r["rows"] for r in reports] == [reports[0]["rows"]] * 2 and reports[0]["rows"] > 0
    assert len(created) == 2 and len(set(created)) == 2
    assert all('"raptorflow_restore_check_20261202T020000_1_' in c for c in created)
