"""A parallel backup's table object that goes away while a restore of it runs.

The restore checks that every table object is there before it writes anything; an age rule or an operator can
still delete one after that check. The restore then fails (exit 7) with what it left in the target named, as
every other failure after pre-data does: a parallel restore is not one transaction.
"""

from __future__ import annotations

import json
import uuid

import psycopg

from backup_job import dump, parallel_restore
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.zoo import restore

TWO_BIG = """
CREATE TABLE ledger (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO ledger SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 6000) i;
CREATE TABLE tally (n bigint, body text);
INSERT INTO tally SELECT i, repeat(md5((-i)::text), 8) FROM generate_series(1, 6000) i;
"""


def test_a_table_object_deleted_during_the_restore_fails_it_naming_what_the_target_holds(
        postgres, emulator, monkeypatch):
    from google.cloud import storage

    url = postgres.create_database(f"race_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(TWO_BIG)
        connection.execute("VACUUM ANALYZE")
    bucket = storage.Client().create_bucket(f"race-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name, mode="parallel",
                                                                 parallel_table_mb=1))
    tally = next(t for t in manifest["tables"] if t["name"] == "tally")
    real = parallel_restore.load_object

    def deleted_first(connection, source, table, *args, **kwargs):
        if table["oid"] == tally["oid"] and source.get_blob(table["object"]) is not None:
            source.delete_blob(table["object"])
        return real(connection, source, table, *args, **kwargs)

    monkeypatch.setattr(parallel_restore, "load_object", deleted_first)
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target, "--object", manifest["object"])
    assert result.returncode == ExitCode.NOT_FOUND, result.stdout + result.stderr
    line = json.loads(result.stdout)
    assert tally["object"] in line["message"], line
    assert "public.tally" in line["tablesNotRestored"], line
    assert "restore again with --replace" in line["message"], line
