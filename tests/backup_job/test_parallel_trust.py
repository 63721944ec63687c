"""What a parallel backup (backup_job.by_table) must never make of production data, each case on a real server and
the storage emulator: a backup that no restore takes for one, a manifest taken for usable that names a table
twice or without the table it fills, or a restore of rows from a table object whose zstd frame is cut short or
followed by another.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
import zstandard
from psycopg import sql

from backup_job import codec, dump, manifests
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import ExitCode
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


def _copy_with(bucket_name: str, manifest: dict, oid: int, stored: bytes) -> str:
    """A copy of the backup in a new bucket whose table object `oid` is `stored`, its manifest's sha256 and size
    made to match (as a job that wrote a bad frame would have written them): the new bucket's name."""
    import hashlib

    from google.cloud import storage

    source = storage.Client().bucket(bucket_name)
    copy = storage.Client().create_bucket(f"frame-{uuid.uuid4().hex[:12]}")
    for blob in source.list_blobs(prefix=manifest["object"]):
        if not blob.name.endswith(".manifest.json"):
            source.copy_blob(blob, copy)
    table = next(t for t in manifest["tables"] if t["oid"] == oid)
    copy.blob(table["object"]).upload_from_string(stored)
    edited = {**manifest, "tables": [{**t, "sha256": hashlib.sha256(stored).hexdigest(), "sizeBytes": len(stored)}
                                     if t["oid"] == oid else t for t in manifest["tables"]]}
    copy.blob(layout.manifest_object_name(manifest["object"])).upload_from_string(json.dumps(edited))
    return copy.name


@pytest.mark.parametrize("fault", ["frame-cut", "second-frame"])
def test_a_table_object_whose_frame_is_cut_or_followed_by_another_restores_none_of_its_rows(
        backed_up, postgres, fault):
    """The stored bytes match the manifest, so only the frame itself can tell: a frame cut before its end
    (its checksum is never read) or two frames in one object (the table's rows twice) are damage."""
    from google.cloud import storage

    url, bucket_name, manifest = backed_up
    tally = next(t for t in manifest["tables"] if t["name"] == "tally")
    good = storage.Client().bucket(bucket_name).blob(tally["object"]).download_as_bytes()
    stored = good[:-4] if fault == "frame-cut" else good + good
    copy = _copy_with(bucket_name, manifest, tally["oid"], stored)
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(copy, target, "--object", manifest["object"])
    assert result.returncode == ExitCode.VERIFICATION_MISMATCH, result.stdout + result.stderr
    assert "tally" in json.loads(result.stdout)["message"]
    with psycopg.connect(target) as connection:
        assert connection.execute("SELECT count(*) FROM tally").fetchone() == (0,), "no row of it committed"
    whole = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    assert restore(bucket_name, whole, "--object", manifest["object"]).returncode == 0
    assert contents(whole) == contents(url)
    result = restore(copy, whole, "--object", manifest["object"], "--table", "tally", "--replace")
    assert result.returncode == ExitCode.VERIFICATION_MISMATCH, result.stdout + result.stderr
    assert contents(whole) == contents(url), "a table restore from the bad frame changes nothing"


def test_decompressing_tells_a_cut_frame_trailing_bytes_and_a_second_frame_from_a_whole_one():
    data = b"0\n" * 3_000_000 + bytes(range(256)) * 64
    frame = zstandard.ZstdCompressor(level=2, write_checksum=True).compress(data)

    def decoded(stored: bytes, expected: int | None = len(data)) -> tuple[int, str | None]:
        received = bytearray()

        class Sink:
            def write(self, piece: bytes) -> int:
                assert len(piece) <= codec.PIECE_BYTES, "pieces stay bounded on highly compressible data"
                received.extend(piece)
                return len(piece)

        decoder = codec.Decompressing(Sink(), expected)
        for at in range(0, len(stored), 4096):
            decoder.write(stored[at:at + 4096])
        return len(received), codec.unfinished(decoder)

    assert decoded(frame) == (len(data), None)
    assert decoded(frame, None) == (len(data), None)
    assert decoded(frame[:-4])[1], "the frame's checksum is missing"
    assert decoded(frame[:-4], None)[1], "the frame's checksum is missing, with no size to compare"
    assert decoded(frame[: len(frame) // 2])[1], "the frame is cut"
    assert decoded(frame + frame)[1] and decoded(frame + frame, None)[1], "a second frame follows"
    assert decoded(frame + b"junk")[1], "trailing bytes follow"


def test_a_backup_whose_table_object_is_not_there_is_not_complete_and_restores_nothing(backed_up, postgres):
    """A bucket copy (Storage Transfer Service copies objects in no set order) or an age rule (the table objects
    are older than the manifest) can hold a parallel backup's manifest and archive without a table object: the
    backup is listed as incomplete, the newest-backup choice passes over it, and a restore of it by name refuses
    before it writes anything."""
    from google.cloud import storage

    _url, bucket_name, manifest = backed_up
    source = storage.Client().bucket(bucket_name)
    copy = storage.Client().create_bucket(f"part-{uuid.uuid4().hex[:12]}")
    tally = next(t for t in manifest["tables"] if t["name"] == "tally")
    for blob in source.list_blobs(prefix=manifest["object"]):
        if blob.name != tally["object"]:
            source.copy_blob(blob, copy)
    assert [b.object for b in layout.scan(copy, "").complete] == []
    assert layout.scan(copy, "").incomplete == [manifest["object"]]
    for how in ([], ["--object", manifest["object"]]):
        target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
        result = restore(copy.name, target, *how)
        assert result.returncode == ExitCode.NOT_FOUND, result.stdout + result.stderr
        with psycopg.connect(target) as connection:
            assert connection.execute("SELECT count(*) FROM pg_class WHERE relname IN ('ledger', 'tally')"
                                      ).fetchone() == (0,), "nothing was written"
    assert tally["object"] in json.loads(restore(copy.name, target, "--object", manifest["object"]).stdout)["message"]


# Sessions that read every value the same way, whatever a database's own settings say.
FIXED_STYLES = "options=-c%20datestyle%3DISO%20-c%20intervalstyle%3Dpostgres%20-c%20extra_float_digits%3D3"


def test_a_databases_own_date_and_interval_styles_do_not_change_the_values_a_table_object_holds(postgres, emulator):
    """COPY writes dates, intervals and floats in the session's DateStyle, IntervalStyle and extra_float_digits,
    and a database may set its own (ALTER DATABASE ... SET). pg_dump writes ISO and postgres styles with every
    digit whatever they are; a table object written in 'SQL, DMY' is read back month-first (2026-01-05 becomes
    2026-05-01 without a word, 13/01/2026 fails the restore), and one with extra_float_digits -3 loses digits."""
    from google.cloud import storage

    name = f"styles_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"ALTER DATABASE {name} SET datestyle = 'SQL, DMY'")
        connection.execute(f"ALTER DATABASE {name} SET intervalstyle = 'sql_standard'")
        connection.execute(f"ALTER DATABASE {name} SET extra_float_digits = -3")
        connection.execute("CREATE TABLE dated (d date, at timestamptz, span interval, x float8, body text)")
        connection.execute("INSERT INTO dated SELECT date '2026-01-01' + i % 12, timestamptz '2026-01-01 00:00+00' "
                           "+ i * interval '1 hour', make_interval(days => -1 - i % 3, secs => i), 1 / 3.0 + i, "
                           "repeat(md5(i::text), 6) FROM generate_series(1, 7000) i")
        connection.execute("CREATE TABLE timed AS SELECT * FROM dated")
        connection.execute("VACUUM ANALYZE")
    bucket = storage.Client().create_bucket(f"styles-{uuid.uuid4().hex[:12]}")
    manifest = _parallel(url, bucket.name)
    assert sorted(t["name"] for t in manifest["tables"]) == ["dated", "timed"]
    target = postgres.create_database(f"t_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target, "--object", manifest["object"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert contents(f"{target}?{FIXED_STYLES}") == contents(f"{url}?{FIXED_STYLES}")


def _latin1_target(postgres) -> str:
    """A new database in LATIN1 whose own xmloption is document: settings pg_restore's script overrides."""
    name = f"latin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
        connection.execute(f"ALTER DATABASE {name} SET xmloption = document")
    return postgres.url(name)


def _texts(url: str, table: str) -> list[tuple]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql.SQL("SELECT n, body, doc::text FROM {} ORDER BY n").format(
            sql.Identifier(table))).fetchall()


def _accented(postgres, emulator, sign: str) -> tuple[str, str, dict]:
    """A database of two big tables whose text holds `sign` and whose XML is content, no document, and a
    parallel backup of it: (URL, bucket, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"accent_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE TABLE words AS SELECT i AS n, {} || repeat(md5(i::text), 8) AS body, "
                                   "xmlparse(content 'a<b>' || i || '</b>c') AS doc FROM generate_series(1, 5000) i"
                                   ).format(sql.Literal(f"café {sign} ")))
        connection.execute("CREATE TABLE more_words AS SELECT * FROM words")
        connection.execute("VACUUM ANALYZE")
    bucket = storage.Client().create_bucket(f"accent-{uuid.uuid4().hex[:12]}")
    return url, bucket.name, _parallel(url, bucket.name)


def test_table_objects_load_as_pg_restore_loads_whatever_the_target_database_sets(postgres, emulator):
    """The table objects' sessions take the settings pg_restore's script sets: UTF-8 bytes are read as UTF-8 in
    a LATIN1 database (read as LATIN1 they make 'café' 'cafÃ©'), and XML content loads where the database's own
    xmloption is document."""
    url, bucket, manifest = _accented(postgres, emulator, "à")
    assert sorted(t["name"] for t in manifest["tables"]) == ["more_words", "words"]
    target = _latin1_target(postgres)
    result = restore(bucket, target, "--object", manifest["object"])
    assert result.returncode == 0, result.stdout + result.stderr
    for table in ("words", "more_words"):
        assert _texts(target, table) == _texts(url, table)
    # A table restore loads an object in its own session: the same settings hold there.
    beside = restore(bucket, target, "--object", manifest["object"], "--table", "words", "--into-schema", "copy")
    assert beside.returncode == 0, beside.stdout + beside.stderr
    assert _texts(target.replace("?", "?options=-csearch_path%3Dcopy&", 1) if "?" in target else
                  f"{target}?options=-csearch_path%3Dcopy", "words") == _texts(url, "words")


def test_a_table_object_that_cannot_load_fails_the_restore_with_one_line_naming_the_table(postgres, emulator):
    """'€' has no LATIN1 form: the load fails as pg_restore would (exit 6, the table and PostgreSQL's reason
    named, what the target holds listed), not as an internal error, and never as mojibake."""
    _url, bucket, manifest = _accented(postgres, emulator, "€")
    target = _latin1_target(postgres)
    result = restore(bucket, target, "--object", manifest["object"])
    assert result.returncode == ExitCode.DUMP_FAILED, result.stdout + result.stderr
    line = json.loads(result.stdout)
    assert "public.words" in line["message"] or "public.more_words" in line["message"], line
    assert "LATIN1" in line["message"] and line["tablesNotRestored"], line
