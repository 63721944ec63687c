"""The backup job against a real PostgreSQL server and a real GCS emulator, both started here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from backup_job import dump
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import ExitCode, JobError
from tests.services import TABLES, free_port, postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def bindir() -> Path:
    """The PostgreSQL binaries' directory (the module is skipped without one)."""
    found = postgres_bindir()
    assert found is not None
    return found



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


def test_a_tampered_dump_never_reaches_the_restore_target(bucket, source_url, scratch_url):
    log = backup(bucket, source_url, "--kind", "full")
    blob = bucket.blob(log["object"])
    data = bytearray(blob.download_as_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.upload_from_string(bytes(data))
    restored = job("restore", "--bucket", bucket.name, "--prefix", "supabase", env={"TARGET_DATABASE_URL": scratch_url})
    assert restored.returncode == ExitCode.VERIFICATION_MISMATCH
    with psycopg.connect(scratch_url) as connection:
        assert connection.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


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


def test_unreachable_database_fails_with_its_exit_code_and_leaves_nothing(bucket, scratch_url):
    dead = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/app?connect_timeout=3"
    result = job("backup", "--kind", "full", "--bucket", bucket.name, env={"DATABASE_URL": dead})
    assert result.returncode == ExitCode.DATABASE_UNREACHABLE
    log = log_of(result)
    assert (log["result"], log["failure"]) == ("failure", "database_unreachable")
    assert list(bucket.list_blobs()) == [], "a failed run must leave no object"
    listing = job("list", "--bucket", bucket.name, "--all")
    assert listing.returncode == 0 and "no complete backups" in listing.stdout
    check = job("restore-check", "--bucket", bucket.name, env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == ExitCode.NOT_FOUND


def test_failing_pg_dump_leaves_no_object(bucket, source_url, monkeypatch):
    # pg_dump fails after connecting when it cannot import the snapshot it is given.
    monkeypatch.setattr(dump, "pg_binary", lambda name: str(bindir() / "pg_dump"))
    request = dump.BackupRequest(kind="full", bucket=bucket.name, compress_level=6)
    original = dump.subprocess.Popen

    def broken_snapshot(command, **kwargs):
        return original([c if not c.startswith("--snapshot=") else "--snapshot=00000000-0000000F-1" for c in command],
                        **kwargs)

    monkeypatch.setattr(dump.subprocess, "Popen", broken_snapshot)
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), request)
    assert caught.value.code == ExitCode.DUMP_FAILED and str(caught.value).startswith("pg_dump exited 1: ")
    assert list(bucket.list_blobs()) == []


def test_dump_without_manifest_is_never_listed_or_restored(bucket, source_url, scratch_url):
    good = backup(bucket, source_url, "--kind", "full")
    # What an interrupted run could leave: a newer dump object with no manifest.
    partial = layout.dump_object_name("supabase", "full", datetime(2099, 1, 1, tzinfo=UTC))
    bucket.blob(partial).upload_from_string(b"PGDMP-truncated", if_generation_match=0)

    listing = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--json")
    assert [row["object"] for row in json.loads(listing.stdout)] == [good["object"]]
    listing_all = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--all")
    assert f"{partial}  INCOMPLETE" in listing_all.stdout
    check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == 0 and log_of(check)["object"] == good["object"]


def test_tampered_dump_fails_the_restore_check_on_sha256(bucket, source_url, scratch_url):
    log = backup(bucket, source_url, "--kind", "full")
    blob = bucket.blob(log["object"])
    data = bytearray(blob.download_as_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.upload_from_string(bytes(data))  # the emulator lets the test replace it; the real bucket would not
    check = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == ExitCode.VERIFICATION_MISMATCH, check.stdout + check.stderr
    assert "sha256" in log_of(check)["message"]


def test_row_count_mismatch_fails_the_restore_check(bucket, source_url, scratch_url):
    log = backup(bucket, source_url, "--kind", "full")
    manifest_blob = bucket.blob(log["object"] + ".manifest.json")
    manifest = json.loads(manifest_blob.download_as_bytes())
    manifest["tableRowCounts"]["public.orders"] += 1
    manifest_blob.upload_from_string(json.dumps(manifest))
    check = job("restore-check", "--bucket", bucket.name, "--object", log["object"],
                env={"SCRATCH_DATABASE_URL": scratch_url})
    assert check.returncode == ExitCode.VERIFICATION_MISMATCH
    assert "public.orders" in log_of(check)["message"]


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
    manifest - so this asserts the request the dump upload makes, and the enforced outcome on the manifest."""
    frozen = datetime(2026, 11, 28, 2, 0, 0, 123456, tzinfo=UTC)
    monkeypatch.setattr(layout, "utc_now", lambda: frozen)
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
    manifest_name = first["object"] + ".manifest.json"
    first_manifest = bucket.blob(manifest_name).download_as_bytes()
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), request)
    assert caught.value.code == ExitCode.UPLOAD_FAILED and "manifest" in str(caught.value)
    # dump and manifest of each run
    assert [u["if_generation_match"] for u in uploads] == [0, 0, 0, 0], "every upload must be create-only"
    assert bucket.blob(manifest_name).download_as_bytes() == first_manifest, "the first manifest was replaced"
    assert [b.name for b in bucket.list_blobs()] == [first["object"], manifest_name]


def test_manual_backup_goes_under_manual_with_its_reason(bucket, source_url):
    log = backup(bucket, source_url, "--kind", "full", "--reason", "before deploy 1234")
    assert log["object"].startswith("supabase/manual/")
    manifest = json.loads(bucket.blob(log["object"] + ".manifest.json").download_as_bytes())
    assert (manifest["trigger"], manifest["reason"]) == ("manual", "before deploy 1234")


def test_database_url_from_a_mounted_file_and_password_never_shown(bucket, postgres, source_url, tmp_path,
                                                                   monkeypatch):
    secret_file = tmp_path / "database-url"
    secret_file.write_text(source_url + "\n")
    result = job("backup", "--kind", "schema", "--bucket", bucket.name, "--database-url-file", str(secret_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert postgres.password not in result.stdout + result.stderr

    seen: list[list[str]] = []
    original = dump.subprocess.Popen

    def spy(command, **kwargs):
        seen.append(list(command))
        return original(command, **kwargs)

    monkeypatch.setattr(dump.subprocess, "Popen", spy)
    dump.run_backup(Database(source_url), dump.BackupRequest(kind="schema", bucket=bucket.name))
    assert seen and not any(postgres.password in arg or "postgresql://" in arg for arg in seen[0]), seen


def test_bad_password_is_reported_without_the_password(bucket, postgres):
    wrong = postgres.url("app").replace(postgres.password, "not-the-password-xyz")
    result = job("backup", "--kind", "full", "--bucket", bucket.name, env={"DATABASE_URL": wrong})
    assert result.returncode == ExitCode.DATABASE_UNREACHABLE
    assert "not-the-password-xyz" not in result.stdout + result.stderr


def test_missing_database_url_is_a_usage_error(bucket):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
    result = subprocess.run([sys.executable, "-m", "backup_job", "backup", "--kind", "full", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == ExitCode.USAGE and "no database URL" in log_of(result)["message"]


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
