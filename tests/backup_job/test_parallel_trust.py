"""What a parallel backup (backup_job.by_table) must never make of production data, each case on a real server and
the storage emulator: a backup that no restore takes for one, or a manifest taken for usable that names a table
twice or without the table it fills.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from backup_job import dump, manifests
from backup_job.database import Database
from tests.backup_job.zoo import contents, restore
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

# Two tables of about 1.5 MB each (big at --parallel-table-mb 1); `tally` has no key, so rows loaded twice stay.
TWO_BIG = """
CREATE TABLE ledger (id bigint PRIMARY KEY, body text NOT NULL);
INSERT INTO ledger SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 6000) i;
CREATE TABLE tally (n bigint, body text);
INSERT INTO tally SELECT i, repeat(md5((-i)::text), 8) FROM generate_series(1, 6000) i;
"""


def _parallel(url: str, bucket: str) -> dict:
    return dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket, mode="parallel",
                                                             parallel_table_mb=1))


@pytest.fixture(scope="module")
def backed_up(postgres, emulator) -> tuple[str, str, dict]:
    """A database with two big tables and one parallel backup of it: (URL, bucket, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"trust_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(TWO_BIG)
        connection.execute("VACUUM ANALYZE")
    bucket = storage.Client().create_bucket(f"trust-{uuid.uuid4().hex[:12]}")
    return url, bucket.name, _parallel(url, bucket.name)


def test_the_parallel_mode_with_no_big_table_makes_a_backup_that_restores(backed_up, postgres):
    """`--mode parallel` where no table is big (here: none at 1 GB): nothing travels apart, and the backup is a
    single archive that says so - never a manifest of mode parallel without table objects, which no restore
    takes for a backup."""
    from google.cloud import storage

    url, _, _ = backed_up
    bucket = storage.Client().create_bucket(f"nobig-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name, mode="parallel",
                                                                 parallel_table_mb=1024))
    assert manifests.problem(manifest, manifest["object"]) is None
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target, "--object", manifest["object"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert contents(target) == contents(url)
    assert manifest["mode"] == "single" and "tables" not in manifest


def test_a_manifest_naming_a_table_object_twice_or_without_its_table_is_not_a_usable_backup(backed_up):
    _url, _bucket, manifest = backed_up
    assert manifests.problem(manifest, manifest["object"]) is None
    tables = manifest["tables"]
    twice = {**manifest, "tables": [*tables, tables[0]]}
    assert manifests.problem(twice, manifest["object"]), "one table's rows would be loaded twice"
    for field in ("schema", "name"):
        nameless = {**manifest, "tables": [{k: v for k, v in tables[0].items() if k != field}, *tables[1:]]}
        assert manifests.problem(nameless, manifest["object"]), f"a table object without its {field}"
    odd_columns = {**manifest, "tables": [{**tables[0], "columns": [1]}, *tables[1:]]}
    assert manifests.problem(odd_columns, manifest["object"]), "columns are names"
    no_size = {**manifest, "tables": [{k: v for k, v in t.items() if k != "copyBytes"} for t in tables]}
    assert manifests.problem(no_size, manifest["object"]), "what each object decompresses to is recorded"
