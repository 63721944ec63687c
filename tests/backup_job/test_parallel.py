"""The parallel mode (backup_job.by_table, backup_job.parallel_restore) on the schema zoo and on the sample
database with two big tables: an exact whole restore, the check, `--replace`, the automatic choice, and the
faults - a killed upload, a damaged table object, and SIGTERM in each phase of the restore.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from backup_job import archive, by_table, codec, dump, stream
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.emulator_proxy import Answer, proxy
from tests.backup_job.jobs import children_named, job, one_log_line, start
from tests.backup_job.zoo import ZOO, contents, ensure_roles, restore, schema_of
from tests.services import SAMPLE_SCHEMA, postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

# Two tables of a few MB each (big at --parallel-table-mb 1), one referencing the other, with an index and a
# generated column that COPY must leave out; their names need quoting.
BIG = """
CREATE TABLE "Big ""Events"".x" (id bigint PRIMARY KEY, body text NOT NULL, doubled bigint GENERATED ALWAYS AS (id * 2) STORED);
INSERT INTO "Big ""Events"".x" (id, body) SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, 20000) i;
CREATE TABLE big_notes (id bigint PRIMARY KEY, event_id bigint REFERENCES "Big ""Events"".x" (id), note text);
INSERT INTO big_notes SELECT i, 1 + i % 20000, md5(i::text) || ' ' || i FROM generate_series(1, 40000) i;
CREATE INDEX big_notes_event ON big_notes (event_id);
"""
MB = 1


def parallel_backup(url: str, bucket: str, *extra: str) -> dict:
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket, "--mode", "parallel",
                            "--parallel-table-mb", str(MB), *extra, env={"DATABASE_URL": url})
    assert code == 0, out + err
    name = one_log_line(out)["object"]
    from google.cloud import storage

    return json.loads(storage.Client().bucket(bucket).blob(layout.manifest_object_name(name)).download_as_bytes())


@pytest.fixture(scope="module")
def sample(postgres, emulator) -> tuple[str, str, dict]:
    """The sample database with the two big tables, and one parallel backup of it: (URL, bucket, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"par_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(SAMPLE_SCHEMA)
        connection.execute(BIG)
        connection.execute("VACUUM ANALYZE")
    bucket = storage.Client().create_bucket(f"par-{uuid.uuid4().hex[:12]}")
    return url, bucket.name, parallel_backup(url, bucket.name)


def test_the_big_tables_travel_apart_and_every_table_has_its_rows_in_exactly_one_place(sample):
    from google.cloud import storage

    _url, bucket_name, manifest = sample
    assert manifest["mode"] == "parallel" and manifest["format"] == 2
    assert sorted(t["name"] for t in manifest["tables"]) == ['Big "Events".x', "big_notes"]
    events = next(t for t in manifest["tables"] if t["name"] != "big_notes")
    assert events["columns"] == ["id", "body"], "the generated column is left out, as pg_dump leaves it out"
    assert events["compressLevel"] == codec.COMPRESSIBLE_LEVEL, "rows that compress take the higher level"
    bucket = storage.Client().bucket(bucket_name)
    for table in manifest["tables"]:
        assert bucket.get_blob(table["object"]).size == table["sizeBytes"]
    blob = bucket.get_blob(manifest["object"])
    _, listing = stream.read_head(blob, "zstd")
    in_archive = {e.oid for e in archive.parse_listing(listing).values() if e.kind == "TABLE DATA"}
    own = {t["oid"] for t in manifest["tables"]}
    tables = {r["oid"] for r in manifest["catalog"]["relations"] if r["kind"] == "r"}
    assert not in_archive & own and in_archive | own == tables
    code, out, _, _ = job("list", "--bucket", bucket_name, "--all", "--json")
    assert code == 0 and [row["object"] for row in json.loads(out)] == [manifest["object"]], "table objects are "\
        "no backups of their own"


def test_a_parallel_backup_restores_exactly_and_passes_the_check(sample, postgres):
    url, bucket, manifest = sample
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket, target, "--object", manifest["object"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert schema_of(target) == schema_of(url) and contents(target) == contents(url)
    again = restore(bucket, target, "--object", manifest["object"], "--replace", "--jobs", "3")
    assert again.returncode == 0, again.stdout + again.stderr
    assert schema_of(target) == schema_of(url) and contents(target) == contents(url), "--replace is exact too"
    scratch = postgres.create_database(f"scratch_{uuid.uuid4().hex[:8]}")
    code, out, err, _ = job("restore-check", "--bucket", bucket, "--object", manifest["object"],
                            env={"SCRATCH_DATABASE_URL": scratch})
    assert code == 0 and one_log_line(out)["tables"] == len(manifest["tableRowCounts"]), out + err


def test_the_zoo_restores_exactly_from_a_parallel_backup(postgres, emulator):
    """Privileges, policies, comments, large objects, sequences, partitions and odd names, with the big tables."""
    from google.cloud import storage

    url = postgres.create_database(f"zoo_par_{uuid.uuid4().hex[:8]}")
    ensure_roles(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(ZOO)
        connection.execute(BIG)
        connection.execute("VACUUM ANALYZE")  # the sizes the mode is chosen by are the catalog's estimates
    bucket = storage.Client().create_bucket(f"zoo-par-{uuid.uuid4().hex[:10]}")
    manifest = parallel_backup(url, bucket.name)
    assert len(manifest["tables"]) == 2
    target = postgres.create_database(f"zoo_t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert schema_of(target) == schema_of(url) and contents(target) == contents(url)


def test_auto_is_parallel_only_when_two_tables_are_big(sample):
    url, _, _ = sample
    with psycopg.connect(url) as connection:
        sizes = sorted(t.bytes for t in by_table.big_tables(connection, 1 << 20))
        assert len(sizes) == 2 and by_table.choose("auto", by_table.big_tables(connection, 1 << 20)) == "parallel"
        only_one = by_table.big_tables(connection, sizes[0] + 1)
        assert len(only_one) == 1 and by_table.choose("auto", only_one) == "single"
        assert by_table.choose("single", by_table.big_tables(connection, 1 << 20)) == "single"


def test_table_restores_read_the_big_tables_objects_in_every_way(sample, postgres):
    url, bucket, manifest = sample
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    assert restore(bucket, target, "--object", manifest["object"]).returncode == 0
    expected = contents(url)
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute("DELETE FROM big_notes WHERE id % 3 = 0")
    merged = restore(bucket, target, "--object", manifest["object"], "--table", "big_notes", "--merge-missing")
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert contents(target) == expected, "the missing rows come back from the table's object"
    with psycopg.connect(target, autocommit=True) as connection:
        connection.execute('UPDATE "Big ""Events"".x" SET body = \'changed\'')
    replaced = restore(bucket, target, "--object", manifest["object"], "--table", '"Big ""Events"".x"', "--replace")
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert contents(target) == expected, "the table is put back in place from its object"
    beside = restore(bucket, target, "--object", manifest["object"], "--table", "big_notes", "--into-schema", "copy")
    assert beside.returncode == 0, beside.stdout + beside.stderr
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT count(*) FROM copy.big_notes").fetchone() == (
            manifest["tableRowCounts"]["public.big_notes"],)


def test_a_damaged_table_object_restores_nothing_of_that_table_and_says_so(sample, postgres):
    """The object is replaced by other bytes of the same size: its rows are loaded, its sha256 differs, and its
    transaction is rolled back; the report names what the target holds."""
    from google.cloud import storage

    _url, bucket_name, manifest = sample
    bucket = storage.Client().bucket(bucket_name)
    damaged_bucket = storage.Client().create_bucket(f"dmg-{uuid.uuid4().hex[:12]}")
    for blob in bucket.list_blobs():
        bucket.copy_blob(blob, damaged_bucket)
    notes = next(t for t in manifest["tables"] if t["name"] == "big_notes")
    good = damaged_bucket.blob(notes["object"]).download_as_bytes()
    damaged_bucket.blob(notes["object"]).upload_from_string(good[:-64] + bytes(64))
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(damaged_bucket.name, target)
    line = json.loads(result.stdout)
    assert result.returncode == ExitCode.VERIFICATION_MISMATCH, result.stdout + result.stderr
    assert "big_notes" in line["message"] and "public.big_notes" in line["tablesNotRestored"], line
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT count(*) FROM big_notes").fetchone() == (0,), "no row of it committed"
    whole = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    assert restore(bucket_name, whole).returncode == 0
    before = contents(whole)
    result = restore(damaged_bucket.name, whole, "--table", "big_notes", "--replace")
    assert result.returncode == ExitCode.VERIFICATION_MISMATCH, result.stdout + result.stderr
    assert contents(whole) == before, "a table restore from the damaged object changes nothing"


def _pg_restore_running(pid: int, section: str) -> bool:
    for child in children_named(pid, "pg_restore"):
        try:
            if f"--section={section}".encode() in Path(f"/proc/{child}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _wait(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the restore never reached the phase"
        time.sleep(0.05)


@pytest.mark.parametrize("phase", ["pre-data", "data", "post-data"])
def test_sigterm_in_each_phase_ends_with_one_line_naming_what_is_left_and_replace_then_restores(
        sample, postgres, emulator, phase):
    url, bucket, manifest = sample
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    held = threading.Event()
    blocker = psycopg.connect(target)

    def on_answer(method: str, path: str, answer: Answer) -> Answer:
        if phase != "pre-data" and "tables%2F" in path and "alt=media" in path:
            held.set()
            while not release.is_set():
                time.sleep(0.05)
        return answer
    release = threading.Event()
    if phase == "pre-data":
        blocker.execute("CREATE SCHEMA billing")  # uncommitted: pg_restore's CREATE SCHEMA billing waits for it
    with proxy(emulator.url, on_answer) as address:
        process = start("restore", "--bucket", bucket, "--object", manifest["object"],
                        env={"TARGET_DATABASE_URL": target, "STORAGE_EMULATOR_HOST": address})
        try:
            if phase == "pre-data":
                _wait(lambda: _pg_restore_running(process.pid, "pre-data"))
                time.sleep(0.3)
            elif phase == "data":
                _wait(held.is_set)
            else:
                _wait(held.is_set)
                blocker.execute("LOCK TABLE big_notes IN ROW EXCLUSIVE MODE")  # CREATE INDEX waits for it
                release.set()
                _wait(lambda: _pg_restore_running(process.pid, "post-data"))
                time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            release.set()
            blocker.rollback()
            blocker.close()
            if process.poll() is None:
                process.kill()
    line = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED, out + err
    assert "tablesNotRestored" in line and "SIGTERM" in line["message"], line
    assert children_named(process.pid, "pg_restore") == [] and children_named(process.pid, "psql") == []
    result = restore(bucket, target, "--object", manifest["object"], "--replace")
    assert result.returncode == 0, result.stdout + result.stderr
    assert contents(target) == contents(url), "a second run with --replace restores what the first did not"


def test_a_killed_parallel_backup_leaves_no_manifest_and_no_dump_process(postgres, emulator, sample):
    from google.cloud import storage

    url, _, _ = sample
    bucket = storage.Client().create_bucket(f"kill-{uuid.uuid4().hex[:12]}")
    uploading, release = threading.Event(), threading.Event()

    def on_answer(method: str, path: str, answer: Answer) -> Answer:
        if method == "PUT":  # every upload's chunks wait: the job is killed with all of them in flight
            uploading.set()
            release.wait(30)
        return answer
    with proxy(emulator.url, on_answer) as address:
        process = start("backup", "--kind", "full", "--bucket", bucket.name, "--mode", "parallel",
                        "--parallel-table-mb", str(MB), env={"DATABASE_URL": url, "STORAGE_EMULATOR_HOST": address})
        try:
            _wait(uploading.is_set)
            children = children_named(process.pid, "psql") + children_named(process.pid, "pg_dump")
            process.kill()
            process.communicate(timeout=30)
        finally:
            release.set()
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 30)
    assert layout.scan(bucket, "").complete == [], "no manifest: nothing passes for a backup"
    assert dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name, mode="parallel",
                                                             parallel_table_mb=MB))["mode"] == "parallel"
    assert len(layout.scan(bucket, "").complete) == 1, "the next run makes a whole backup"
