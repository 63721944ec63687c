"""Backups made by a role that is no superuser, as on Supabase (its `postgres` role is none): the database's owner
backs it up in both modes and the restore is exact, and rows a row security policy would hide from that role
are never left out of a backup in silence.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job.database import Database
from backup_job.errors import ExitCode, JobError
from tests.backup_job.zoo import contents, restore, schema_of
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

# Two tables of about 1.5 MB each: both big at --parallel-table-mb 1.
TWO_BIG = """
CREATE TABLE ledger (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO ledger SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 6000) i;
CREATE TABLE tally (n bigint, body text);
INSERT INTO tally SELECT i, repeat(md5((-i)::text), 8) FROM generate_series(1, 6000) i;
"""


def _owned_database(postgres) -> tuple[str, str]:
    """A new database owned by a new login role that is neither superuser nor BYPASSRLS, holding TWO_BIG:
    (its URL as that role, the role's password)."""
    role, password, name = f"owner_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex, f"owned_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'")
        connection.execute(f"CREATE DATABASE {name} OWNER {role}")
    url = f"postgresql://{role}:{password}@127.0.0.1:{postgres.port}/{name}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(TWO_BIG)
        connection.execute("VACUUM ANALYZE")  # the sizes the mode is chosen by are the catalog's
    return url, password


def _backup(url: str, bucket: str, mode: str) -> dict:
    return dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket, mode=mode,
                                                             parallel_table_mb=1))


@pytest.mark.parametrize("mode", ["single", "parallel"])
def test_the_databases_owner_backs_it_up_without_being_superuser(postgres, emulator, mode):
    """The catalog the backup records is read in the dump's snapshot by the backup's role: nothing in it may
    need a superuser (pg_user_mapping does; the pg_user_mappings view does not)."""
    from google.cloud import storage

    url, _ = _owned_database(postgres)
    bucket = storage.Client().create_bucket(f"own-{uuid.uuid4().hex[:12]}")
    manifest = _backup(url, bucket.name, mode)
    assert manifest["mode"] == mode and manifest["tableRowCounts"] == {"public.ledger": 6000, "public.tally": 6000}
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target, "--object", manifest["object"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert schema_of(target, "--no-owner") == schema_of(url, "--no-owner") and contents(target) == contents(url)


def test_rows_a_forced_policy_hides_from_the_backup_role_are_never_silently_left_out(postgres, emulator):
    """The table's owner, neither superuser nor BYPASSRLS, is subject to its policy under FORCE ROW LEVEL
    SECURITY. pg_dump sets row_security off and fails rather than dump part of a table (the single mode); the
    parallel mode's own COPY of the table must fail the same way, not store the rows the policy lets through
    (and count them) as if they were all."""
    from google.cloud import storage

    url, password = _owned_database(postgres)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("ALTER TABLE tally ENABLE ROW LEVEL SECURITY; ALTER TABLE tally FORCE ROW LEVEL SECURITY;"
                           "CREATE POLICY evens ON tally USING (n % 2 = 0)")
    bucket = storage.Client().create_bucket(f"rls-{uuid.uuid4().hex[:12]}")
    for mode in ("single", "parallel"):
        with pytest.raises(JobError) as refused:
            _backup(url, bucket.name, mode)
        assert refused.value.code == ExitCode.DUMP_FAILED, (mode, refused.value)
        assert "row-level security policy for table \"tally\"" in str(refused.value), (mode, refused.value)
        assert password not in str(refused.value)
    assert not [b.name for b in bucket.list_blobs() if b.name.endswith(".manifest.json")], "no backup is made"
