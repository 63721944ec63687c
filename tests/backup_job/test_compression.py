"""Backups written before zstd (manifest format 1: pg_dump's zlib inside the custom-format archive) restore and
check as they always did; new backups are zstd frames around an uncompressed archive (format 2), and
`--compression pg_dump` still writes the old kind.

tests/backup_job/fixtures/gzip_era/ holds a full backup of tests.services.SAMPLE_SCHEMA and its manifest exactly
as `python -m backup_job backup --kind full --bucket gzip-era-backups --prefix app` wrote them at commit e0fe25d,
the last before zstd: bytes this code did not write.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from backup_job import codec
from backup_job.errors import ExitCode
from tests.backup_job.jobs import job, one_log_line
from tests.backup_job.zoo import contents, restore
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

FIXTURE = Path(__file__).parent / "fixtures" / "gzip_era"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878, 3.1.1
CUSTOM_MAGIC = b"PGDMP"
# Drawn by gen_random_uuid() when each database was filled: the one column two fills never share.
CUSTOMERS = "SELECT md5(string_agg(row(id, email, balance, active, created_at, profile, avatar, tags)::text, ',' " \
            "ORDER BY id)) FROM customers"


def comparable(url: str) -> dict[str, str]:
    """Every table's rows as one hash, customers without their random uuid."""
    found = contents(url)
    with psycopg.connect(url) as connection:
        row = connection.execute(CUSTOMERS).fetchone()
    assert row is not None
    found["public.customers"] = row[0]
    return found


@pytest.fixture
def old_backup(emulator) -> tuple[str, dict]:
    """The fixture's backup in its bucket, as the old job left it: (bucket name, manifest)."""
    from google.cloud import storage

    (manifest_file,) = FIXTURE.glob("*.manifest.json")
    manifest = json.loads(manifest_file.read_text())
    client = storage.Client()
    bucket = client.lookup_bucket(manifest["bucket"]) or client.create_bucket(manifest["bucket"])
    for name, local in ((manifest["object"], FIXTURE / manifest_file.name.removesuffix(".manifest.json")),
                        (manifest["object"] + ".manifest.json", manifest_file)):
        if not bucket.blob(name).exists():
            bucket.blob(name).upload_from_filename(str(local), if_generation_match=0)
    return bucket.name, manifest


def test_a_backup_from_before_zstd_is_listed_checked_and_restored_whole_in_parallel_and_by_table(
        old_backup, postgres, source_url):
    bucket, manifest = old_backup
    assert manifest["format"] == 1 and "compression" not in manifest, "the fixture is what the old job wrote"
    code, out, err, _ = job("list", "--bucket", bucket, "--prefix", "app", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [row["object"] for row in listed if row.get("status", "complete") == "complete"] == [manifest["object"]], out

    scratch = postgres.create_database(f"scratch_{uuid.uuid4().hex[:8]}")
    code, out, err, _ = job("restore-check", "--bucket", bucket, "--prefix", "app",
                            env={"SCRATCH_DATABASE_URL": scratch})
    assert code == 0 and one_log_line(out)["result"] == "success", out + err

    expected = comparable(source_url)
    for extra in ([], ["--jobs", "2"]):
        target = postgres.create_database(f"old_{uuid.uuid4().hex[:8]}")
        result = restore(bucket, target, "--prefix", "app", *extra)
        assert result.returncode == 0, result.stdout + result.stderr
        assert comparable(target) == expected, f"restore {extra} of the old backup differs from its source"

    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("DELETE FROM orders WHERE id % 2 = 0")
    result = restore(bucket, target, "--prefix", "app", "--table", "public.orders", "--replace")
    assert result.returncode == 0, result.stdout + result.stderr
    assert comparable(target) == expected, "a table restored from the old backup is the dumped table"


def test_new_backups_are_one_zstd_frame_and_pg_dump_compression_writes_the_old_kind(bucket, postgres, source_url):
    env = {"DATABASE_URL": source_url}
    for args, magic, format_, compression in (((), ZSTD_MAGIC, 2, "zstd"),
                                              (("--compression", "pg_dump"), CUSTOM_MAGIC, 1, "pg_dump")):
        code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, *args, env=env)
        assert code == 0, out + err
        name = one_log_line(out)["object"]
        manifest = json.loads(bucket.blob(name + ".manifest.json").download_as_bytes())
        assert (manifest["format"], manifest["compression"]) == (format_, compression)
        stored = bucket.blob(name).download_as_bytes()
        assert stored.startswith(magic) and len(stored) == manifest["sizeBytes"]
        if compression == "zstd":
            assert manifest["archiveSizeBytes"] > manifest["sizeBytes"], "the archive inside is uncompressed"
        target = postgres.create_database(f"new_{uuid.uuid4().hex[:8]}")
        result = restore(bucket.name, target, "--object", name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert comparable(target) == comparable(source_url)


@pytest.mark.parametrize("args", [("--compress-level", "20"), ("--compression", "pg_dump", "--compress-level", "12"),
                                  ("--compress-threads", "0")])
def test_a_level_the_compression_cannot_take_is_refused_in_one_line(bucket, source_url, args):
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, *args,
                            env={"DATABASE_URL": source_url})
    line = one_log_line(out)
    assert code == ExitCode.USAGE and "--compress-level must be" in line["message"], out + err
    assert not list(bucket.list_blobs()), "nothing is written"


def test_a_table_streams_level_follows_how_its_first_bytes_compress() -> None:
    # Random bytes as base64 (the benchmark's worst case) gain almost nothing from a higher level; rows of text and
    # JSON (the application kind) gain 3-6 % (codec's docstring): only they pay for it.
    import base64
    import os
    import random

    noise = base64.b64encode(os.urandom(codec.PROBE_BYTES))[:codec.PROBE_BYTES]
    rng = random.Random(7)
    words = [f"{rng.choice('bcdfgklmnprstvz')}{rng.choice('aeiou')}{rng.choice('lmnrst')}" for _ in range(3000)]
    rows = "".join(f'{n}\t{{"kind": "{rng.choice(["order", "refund", "login"])}", "note": "'
                   f'{" ".join(rng.choices(words, k=8))}", "amount": {rng.randint(1, 99999) / 100}}}\n'
                   for n in range(40000)).encode()[:codec.PROBE_BYTES]
    assert codec.level_for(noise) == codec.DEFAULT_ZSTD_LEVEL
    assert codec.level_for(rows) == codec.COMPRESSIBLE_LEVEL
    assert codec.level_for(b"") == codec.DEFAULT_ZSTD_LEVEL
