"""Fixtures of the backup job's restore tests."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job.database import Database
from tests.backup_job.zoo import ZOO, ensure_roles


@pytest.fixture(scope="module")
def zoo(postgres, emulator):
    """The zoo database and one full backup of it: (source URL, bucket name, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"zoo_{uuid.uuid4().hex[:8]}")
    ensure_roles(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(ZOO)
    bucket = storage.Client().create_bucket(f"zoo-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name))
    return url, bucket.name, manifest
