"""Fixtures of the backup job's tests."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job import storage as layout
from backup_job.database import Database
from tests.backup_job.zoo import ZOO, ensure_roles


@pytest.fixture(scope="session")
def zoo(postgres, emulator):
    """The zoo database and one full backup of it: (source URL, bucket name, manifest). Built once for the
    session: the tests restore copies of it and never write the source or its bucket."""
    from google.cloud import storage

    url = postgres.create_database(f"zoo_{uuid.uuid4().hex[:8]}")
    ensure_roles(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(ZOO)
    bucket = storage.Client().create_bucket(f"zoo-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name))
    return url, bucket.name, manifest


@pytest.fixture
def seeded(bucket, source_url) -> layout.Backup:
    """A bucket holding one good full backup of the sample database under `supabase`, made by the backup command's
    code (`backup --kind full --prefix supabase`) in this process: the tests that use it run the command they test
    as its own process, and test_backup_job runs `backup` as one. A failed backup raises its JobError here."""
    dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name, prefix="supabase"))
    (backup,) = layout.scan(bucket, "supabase").complete
    return backup
