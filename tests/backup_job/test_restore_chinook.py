"""Every restore command on Chinook, a public sample database nobody here wrote (tests/fixtures/chinook).

Its quoted PascalCase names, composite and self-referencing keys and eleven
foreign keys are loaded as published; on top the tests add what a Supabase
project has (the app's roles with grants, row-level security with a policy),
since that is what a restore must keep. Each command is compared with the
source by schema dump (grants and policies included), per-table content hash
and sequence positions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job import chinook
from tests.backup_job.zoo import contents, ensure_roles, log_of, restore, restored, run, scalar, schema_of
from tests.services import postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

SUPABASE_SHAPE = """
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon, authenticated;
GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role;
ALTER TABLE "Customer" ENABLE ROW LEVEL SECURITY;
CREATE POLICY "Customers see themselves" ON "Customer" FOR SELECT TO authenticated USING ("Email" = current_user);
CREATE POLICY "Service reads all" ON "Customer" TO service_role USING (true);
"""


@pytest.fixture(scope="module")
def store(postgres, emulator):
    """Chinook, Supabase-shaped, and one full backup of it: (source URL, bucket name, rows per table)."""
    from google.cloud import storage

    url = postgres.create_database(f"chinook_{uuid.uuid4().hex[:8]}")
    ensure_roles(url)
    counts = chinook.load(url)
    run(url, SUPABASE_SHAPE)
    bucket = storage.Client().create_bucket(f"chinook-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name))
    return url, bucket.name, counts


def copy_of(postgres, store, statement: str = "") -> str:
    _, bucket, _ = store
    target = postgres.create_database(f"chinook_copy_{uuid.uuid4().hex[:8]}")
    restored(bucket, target)
    if statement:
        run(target, statement)
    return target


def unchanged_except(before: dict[str, str], after: dict[str, str], *tables: str) -> dict[str, str]:
    """`after` without `tables`, to compare with `before` without them."""
    return {k: v for k, v in after.items() if k not in tables and k in before}


def test_the_data_set_is_the_published_one(store):
    _, _, counts = store
    assert sum(counts.values()) == 15607 and len(counts) == 11
    assert counts["PlaylistTrack"] == 8715 and counts["Track"] == 3503 and counts["InvoiceLine"] == 2240


def test_a_full_restore_is_the_source(postgres, store):
    source, bucket, _ = store
    target = postgres.create_database(f"chinook_full_{uuid.uuid4().hex[:8]}")
    log = restored(bucket, target)
    assert log["rows"] == 15607
    assert schema_of(target) == schema_of(source)
    assert contents(target) == contents(source)
    with psycopg.connect(target) as connection:
        assert scalar(connection, """SELECT has_table_privilege('anon', '"Track"', 'SELECT')""")
        assert not scalar(connection, """SELECT has_table_privilege('anon', '"Track"', 'INSERT')""")


def test_restore_check_verifies_it(postgres, store):
    _, bucket, _ = store
    scratch = postgres.create_database(f"chinook_check_{uuid.uuid4().hex[:8]}")
    result = subprocess.run([sys.executable, "-m", "backup_job", "restore-check", "--bucket", bucket], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "SCRATCH_DATABASE_URL": scratch})
    assert result.returncode == 0, result.stdout + result.stderr
    assert log_of(result)["rows"] == 15607


def test_replace_in_place_of_referenced_tables(postgres, store):
    source, bucket, _ = store
    target = copy_of(postgres, store, """UPDATE "Track" SET "UnitPrice" = 0, "Name" = upper("Name");
        DELETE FROM "PlaylistTrack" WHERE "PlaylistId" = 1;
        REVOKE SELECT ON "Track" FROM anon; GRANT DELETE ON "Track" TO anon""")
    before = contents(target)
    log = restored(bucket, target, "--table", '"Track"', "--table", 'public."PlaylistTrack"', "--replace")
    assert log["restored"] == [{"table": 'public."Track"', "rows": 3503, "how": "in place"},
                               {"table": 'public."PlaylistTrack"', "rows": 8715, "how": "in place"}]
    after, expected = contents(target), contents(source)
    assert after['public."Track"'] == expected['public."Track"']
    assert after['public."PlaylistTrack"'] == expected['public."PlaylistTrack"']
    assert unchanged_except(before, after, 'public."Track"', 'public."PlaylistTrack"') == \
        unchanged_except(before, before, 'public."Track"', 'public."PlaylistTrack"')
    assert schema_of(target) == schema_of(source), "grants on Track are the dump's again"


def test_replace_recreates_a_dropped_table_and_the_keys_that_pointed_at_it(postgres, store):
    source, bucket, _ = store
    target = copy_of(postgres, store, 'DROP TABLE "Invoice" CASCADE')
    log = restored(bucket, target, "--table", 'public."Invoice"', "--replace")
    assert log["restored"] == [{"table": 'public."Invoice"', "rows": 412, "how": "recreated"}]
    assert schema_of(target) == schema_of(source), "the table, its key, its index and FK_InvoiceLineInvoiceId"
    assert contents(target) == contents(source)


def test_a_refused_replace_changes_nothing(postgres, store):
    _, bucket, _ = store
    target = copy_of(postgres, store, """INSERT INTO "Artist" VALUES (9001, 'Written after the dump');
        INSERT INTO "Album" VALUES (9001, 'Late', 9001)""")
    schema, before = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", '"Artist"', "--replace")
    assert result.returncode == ExitCode.RESTORE_REFUSED and "FK_AlbumArtistId" in log_of(result)["message"]
    assert (schema_of(target), contents(target)) == (schema, before)


def test_into_schema_and_merge_missing(postgres, store):
    source, bucket, _ = store
    target = copy_of(postgres, store, """DELETE FROM "InvoiceLine" WHERE "InvoiceId" > 300;
        INSERT INTO "InvoiceLine" VALUES (9001, 1, 1, 0.99, 1)""")
    before = contents(target)
    beside = restored(bucket, target, "--table", '"InvoiceLine"', "--table", '"Customer"', "--into-schema", "restored")
    assert [line["restoredAs"] for line in beside["restored"]] == ['restored."InvoiceLine"', 'restored."Customer"']
    after, expected = contents(target), contents(source)
    assert after['restored."InvoiceLine"'] == expected['public."InvoiceLine"']
    assert unchanged_except(before, after) == before, "nothing live changed"
    merged = restored(bucket, target, "--table", '"InvoiceLine"', "--merge-missing")
    lost = 2240 - int(before['public."InvoiceLine"'].split(":")[0]) + 1
    assert merged["restored"] == [{"table": 'public."InvoiceLine"', "rows": lost, "restored": lost,
                                   "skipped": 2240 - lost, "inDump": 2240}]
    with psycopg.connect(target) as connection:
        assert scalar(connection, 'SELECT count(*) FROM "InvoiceLine"') == 2241, "the row written since is kept"
    again = restored(bucket, target, "--table", '"InvoiceLine"', "--merge-missing")
    assert again["restored"][0]["restored"] == 0


def test_a_name_as_written_unquoted_is_refused_with_the_quoted_one_offered(postgres, store):
    _, bucket, _ = store
    target = postgres.create_database(f"chinook_names_{uuid.uuid4().hex[:8]}")
    result = restore(bucket, target, "--table", "public.Track", "--into-schema", "x")
    assert result.returncode == ExitCode.USAGE
    assert 'public."Track"' in log_of(result)["message"]
