"""The backup job against a real PostgreSQL server and a real GCS emulator: what a backup stores and where, and
the restores and checks that bring it back."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest

from backup_job import dump
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import ExitCode, JobError
from tests.backup_job.jobs import bindir
from tests.services import TABLES, postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def job(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m backup_job ARGS` as the container would."""
    return subprocess.run(
        [sys.executable, "-m", "backup_job", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})},
    )


def log_of(result: subprocess.CompletedProcess) -> dict:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected one log line, got {result.stdout!r} / {result.stderr!r}"
    return json.loads(lines[0])


def table_rows(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()  # noqa: S608 - the test's own table names
            for table, key in TABLES.items()
        }


def backup(bucket, source_url, *extra: str) -> dict:
    result = job("backup", "--bucket", bucket.name, "--prefix", "supabase", *extra,
                 env={"DATABASE_URL": source_url})
    assert result.returncode == 0, result.stdout + result.stderr
    return log_of(result)


def test_full_backup_restores_every_row_identically(bucket, source_url, scratch_url):
    log = backup(bucket, source_url, "--kind", "full")
    assert log["result"] == "success" and log["event"] == "raptorflow.backup"
    assert log["object"].startswith(f"supabase/full/{datetime.now(UTC):%Y/%m/%d}/")

    check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == 0, check.stdout + check.stderr
    assert log_of(check)["object"] == log["object"]
    restored = job("restore", "--bucket", bucket.name, "--prefix", "supabase",
                   env={"TARGET_DATABASE_URL": scratch_url})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert log_of(restored)["rows"] == 3000 + 5000 + 1200
    assert table_rows(scratch_url) == table_rows(source_url), "restored rows differ from the source"


def databases(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database").fetchall()}


def test_restore_check_repeats_forever_and_never_writes_the_scratch_database(bucket, source_url, scratch_url):
    backup(bucket, source_url, "--kind", "full")
    before = databases(scratch_url)
    for attempt in range(2):
        check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"SCRATCH_DATABASE_URL": scratch_url})
        assert check.returncode == 0, f"run {attempt + 1}: {check.stdout}{check.stderr}"
    assert databases(scratch_url) == before, "the check leaves no database behind"
    with psycopg.connect(scratch_url) as connection:
        assert connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_a_source_url_given_as_scratch_by_mistake_is_never_written(bucket, source_url):
    backup(bucket, source_url, "--kind", "full")
    before = table_rows(source_url)
    check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                env={"SCRATCH_DATABASE_URL": source_url})
    assert check.returncode == 0, check.stdout + check.stderr
    assert table_rows(source_url) == before


def test_restore_refuses_existing_tables_unless_told_and_restores_one_table(bucket, source_url, postgres):
    backup(bucket, source_url, "--kind", "full")
    target = postgres.create_database(f"target_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("CREATE TABLE customers (id int)")
    refused = job("restore", "--bucket", bucket.name, "--prefix", "supabase", "--table", "public.customers",
                  env={"TARGET_DATABASE_URL": target})
    assert refused.returncode == ExitCode.USAGE and "pass --replace" in log_of(refused)["message"]
    replaced = job("restore", "--bucket", bucket.name, "--prefix", "supabase", "--table", "public.customers",
                   "--replace", env={"TARGET_DATABASE_URL": target})
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert log_of(replaced)["rows"] == 3000
    with psycopg.connect(target) as connection:
        tables = {row[0] for row in connection.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('public', 'billing')")}
    assert tables == {"public.customers"}, "only the named table is restored"


def test_manifest_records_checksum_size_version_and_exact_row_counts(bucket, source_url):
    log = backup(bucket, source_url, "--kind", "full")
    manifest = json.loads(bucket.blob(log["object"] + ".manifest.json").download_as_bytes())
    data = bucket.blob(log["object"]).download_as_bytes()
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == log["sha256"]
    assert manifest["sizeBytes"] == len(data) == log["bytes"]
    assert manifest["kind"] == "full" and manifest["trigger"] == "scheduled"
    assert manifest["serverVersion"].split(".")[0] == bindir().parent.name.split(".")[0]
    assert manifest["tableRowCounts"] == {
        "billing.invoices": 1200, "public.customers": 3000, "public.orders": 5000, "public.empty_table": 0,
    }
    assert manifest["startedAt"] <= manifest["finishedAt"]


def test_schema_backup_restores_the_schema_without_rows(bucket, source_url, scratch_url):
    log = backup(bucket, source_url, "--kind", "schema")
    assert "/schema/" in log["object"]
    check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase", "--kind", "schema",
                env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == 0, check.stdout + check.stderr
    put = job("restore", "--bucket", bucket.name, "--prefix", "supabase", "--kind", "schema",
              env={"TARGET_DATABASE_URL": scratch_url})
    assert put.returncode == 0, put.stdout + put.stderr
    restored = table_rows(scratch_url)
    assert set(restored) == set(TABLES) and all(rows == [] for rows in restored.values())


def test_backups_in_the_same_second_never_overwrite(bucket, source_url):
    with ThreadPoolExecutor(max_workers=2) as pool:
        logs = list(pool.map(lambda _: backup(bucket, source_url, "--kind", "schema"), range(2)))
    names = {log["object"] for log in logs}
    assert len(names) == 2, "two runs must write two objects"
    for name in names:
        assert bucket.blob(name + ".manifest.json").exists()


def test_a_name_collision_never_yields_a_second_backup(bucket, source_url, monkeypatch):
    """Every upload is create-only. Cloud Storage enforces `if_generation_match=0` on resumable and simple uploads
    alike (and the retention policy forbids replacing); fake-gcs-server enforces it on simple uploads only - the
    manifest - so this asserts the request the dump upload makes, and the enforced outcome on the manifest.

    Both runs start at the same microsecond (the name) and each finishes at its own time, as two real runs do. With
    the finish frozen too, the second run's manifest could be the first's byte for byte (a schema dump of the same
    second, the same duration to the millisecond): the job rightly takes its own bytes behind a 412 for an earlier
    attempt of its own whose answer was lost, and there is no second backup to refuse."""
    frozen = datetime(2026, 11, 28, 2, 0, 0, 123456, tzinfo=UTC)
    readings = itertools.count()
    real_now = layout.utc_now
    # run_backup reads the clock twice: its start (the object's name), then its finish (the manifest's finishedAt)
    monkeypatch.setattr(layout, "utc_now", lambda: frozen if next(readings) % 2 == 0 else real_now())
    uploads: list[dict] = []

    def spying(method: str) -> None:
        original = getattr(dump.storage.Blob, method)

        def spy(blob, *args, **kwargs):
            uploads.append(kwargs)
            return original(blob, *args, **kwargs)

        monkeypatch.setattr(dump.storage.Blob, method, spy)

    spying("upload_from_file")  # the manifest (upload_from_string calls it)
    spying("create_resumable_upload_session")  # the dump's streaming upload
    request = dump.BackupRequest(kind="schema", bucket=bucket.name)
    first = dump.run_backup(Database(source_url), request)
    assert first["startedAt"] == layout.iso(frozen) != first["finishedAt"]
    manifest_name = first["object"] + ".manifest.json"
    first_manifest = bucket.blob(manifest_name).download_as_bytes()
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), request)
    assert caught.value.code == ExitCode.UPLOAD_FAILED and "manifest" in str(caught.value)
    assert f"{manifest_name}: it exists already with other content" in str(caught.value)
    # dump and manifest of each run
    assert [u["if_generation_match"] for u in uploads] == [0, 0, 0, 0], "every upload must be create-only"
    assert bucket.blob(manifest_name).download_as_bytes() == first_manifest, "the first manifest was replaced"
    assert [b.name for b in bucket.list_blobs()] == [first["object"], manifest_name]


def test_manual_backup_goes_under_manual_with_its_reason(bucket, source_url):
    log = backup(bucket, source_url, "--kind", "full", "--reason", "before deploy 1234")
    assert log["object"].startswith("supabase/manual/")
    manifest = json.loads(bucket.blob(log["object"] + ".manifest.json").download_as_bytes())
    assert (manifest["trigger"], manifest["reason"]) == ("manual", "before deploy 1234")


def test_a_restored_table_gets_back_its_sequence_default_keys_and_indexes(bucket, source_url, postgres):
    """pg_restore --table alone brings back rows without the id default, keys or indexes: the app's next insert
    would fail. The restore selects what belongs to the table too."""
    target = postgres.create_database(f"target_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(source_url) as connection:
        connection.execute("CREATE INDEX IF NOT EXISTS orders_placed_on_idx ON orders (placed_on)")
        connection.commit()
    backup(bucket, source_url, "--kind", "full")
    whole = job("restore", "--bucket", bucket.name, "--prefix", "supabase", env={"TARGET_DATABASE_URL": target})
    assert whole.returncode == 0, whole.stdout + whole.stderr
    catalog = """SELECT (SELECT array_agg(conname::text ORDER BY conname) FROM pg_constraint
                         WHERE conrelid = 'public.orders'::regclass),
                        (SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes WHERE tablename = 'orders'),
                        pg_get_expr(d.adbin, d.adrelid)
                 FROM pg_attrdef d WHERE d.adrelid = 'public.orders'::regclass"""
    with psycopg.connect(target, autocommit=True) as connection:
        before = connection.execute(catalog).fetchone()
        connection.execute("DROP TABLE orders")
    restored = job("restore", "--bucket", bucket.name, "--prefix", "supabase", "--table", "public.orders",
                   env={"TARGET_DATABASE_URL": target})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert log_of(restored)["rows"] == 5000
    with psycopg.connect(target, autocommit=True) as connection:
        assert connection.execute(catalog).fetchone() == before, "keys, indexes and the id default come back"
        new = connection.execute("INSERT INTO orders (customer_id, total) VALUES (1, 2.5) RETURNING id").fetchone()
        assert new is not None and new[0] > 5000, "the sequence continues after the restored rows"
        assert connection.execute("SELECT count(*) FROM customers").fetchone() == (3000,), "other tables untouched"
