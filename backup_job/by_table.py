"""The parallel mode of `backup`: the big tables' rows as objects of their own, dumped and uploaded side by side.

A database whose data sits in several big tables dumps faster, and restores
much faster, when those tables travel apart. In the parallel mode:

- pg_dump writes the archive as in the single mode, in the same exported
  snapshot, but without the rows of the big tables
  (`--exclude-table-data` with each table's exact, quoted name): the archive
  keeps every definition, every small table's rows, the sequences' positions
  and the large objects;
- each big table's rows are read by `psql -c "COPY ... TO STDOUT"` in a
  transaction that takes that same snapshot (`SET TRANSACTION SNAPSHOT`), so
  the whole backup is one consistent picture, exactly the rows pg_dump would
  have written for it (COPY's text format, the columns pg_dump lists, and
  `row_security` off as pg_dump sets it: a role a policy applies to, under
  FORCE ROW LEVEL SECURITY, gets an error, never the rows the policy lets
  through as if they were all; dates, intervals and floating-point numbers
  in the ISO and postgres styles and with all their digits, as pg_dump sets
  them, whatever DateStyle the database or role sets); each
  stream is compressed with zstd and uploaded, create-only, as
  `<dump>.tables/<table OID>.zst` while the others run: `--jobs` streams at
  once, the biggest tables first;
- the manifest, written last, lists every table object with its sha256 and
  size, and the backup is checked before it is written: every table with rows
  has them either in the archive or in an object of its own, never in both.

A table is *big* when its heap holds at least `--parallel-table-mb` (default
PARALLEL_TABLE_MB), as of its last VACUUM or ANALYZE (autovacuum keeps it). `--mode auto` chooses the parallel mode when at least two
tables are big: one big table alone gains nothing from running beside the
rest. A failed run leaves no manifest, so whatever objects it did upload are
never taken for a backup.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import codec, database, transfer
from backup_job.catalog import _NOT_EXTENSION_MEMBER, _USER_NAMESPACE
from backup_job.errors import ExitCode, JobError
from backup_job.workers import Workers

PARALLEL_TABLE_MB = 64
READ_BYTES = 1 << 20
STOP_SECONDS = 3.0  # how long a failed or stopped run waits for its table streams to end
SINGLE, PARALLEL, AUTO = "single", "parallel", "auto"
MODES = (AUTO, SINGLE, PARALLEL)


@dataclass(frozen=True)
class BigTable:
    oid: int
    schema: str
    name: str
    bytes: int
    columns: tuple[str, ...]

    @property
    def pattern(self) -> str:
        """pg_dump's pattern for exactly this table: both names double-quoted, so no character is special."""
        return ".".join('"' + part.replace('"', '""') + '"' for part in (self.schema, self.name))

    def copy_statement(self) -> str:
        """The COPY pg_dump would run for this table (its columns: all but generated ones)."""
        columns = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in self.columns))
        return sql.SQL("COPY {}.{} {} TO STDOUT").format(sql.Identifier(self.schema), sql.Identifier(self.name),
                                                        columns if self.columns else sql.SQL("")).as_string(None)


# The tables pg_dump writes rows for, as backup_job.catalog lists them (no system schema, no extension member);
# their columns as pg_dump's COPY lists them (not dropped, not generated). The size is the catalog's estimate as of
# the last VACUUM or ANALYZE (pg_class.relpages): pg_relation_size would take a lock on every table, and a table
# another session holds locked would hold the backup before pg_dump even started.
_TABLES = f"""
SELECT c.oid::bigint, n.nspname, c.relname, c.relpages::bigint * current_setting('block_size')::bigint,
       (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND {_USER_NAMESPACE} AND {_NOT_EXTENSION_MEMBER}
"""  # noqa: S608 - constant SQL fragments, no input


def big_tables(connection: psycopg.Connection, min_bytes: int) -> list[BigTable]:
    """The tables with rows of their own (plain tables and partitions) whose heap holds at least `min_bytes`,
    biggest first, as the snapshot of `connection` sees them."""
    rows = connection.execute(_TABLES).fetchall()
    found = [BigTable(oid, schema, name, size, tuple(columns or ()))
             for oid, schema, name, size, columns in rows if size >= min_bytes]
    return sorted(found, key=lambda t: (-t.bytes, t.oid))


def choose(mode: str, tables: list[BigTable]) -> str:
    """The mode a backup runs in: `auto` is parallel when at least two tables are big (module docstring)."""
    if mode == AUTO:
        return PARALLEL if len(tables) >= 2 else SINGLE
    return mode


def object_name(dump_name: str, oid: int) -> str:
    return f"{dump_name}.tables/{oid}.zst"


class TableDumps:
    """Every big table's COPY, compressed and uploaded, `jobs` at a time; `wait()` gives the manifest's list."""

    def __init__(self, db: database.Database, bucket: storage.Bucket, dump_name: str, snapshot: str,
                 tables: list[BigTable], jobs: int, level: int | None, window: int):
        self.db, self.bucket, self.dump_name, self.snapshot = db, bucket, dump_name, snapshot
        self.level, self.window = level, window
        self.stopped = threading.Event()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._workers = Workers("table-dump", jobs, self._dump, tables)

    def _blocks(self, process: subprocess.Popen[bytes], table: BigTable, digest: Any, sizes: list[int]
                ) -> Iterator[bytes]:
        stdout = process.stdout
        assert stdout is not None  # started with stdout=PIPE
        compressor, held = None, bytearray()
        while True:
            block = stdout.read(READ_BYTES)
            if self.stopped.is_set():
                raise JobError(ExitCode.TERMINATED, "stopped")
            sizes[0] += len(block)
            if compressor is None:  # the first PROBE_BYTES choose the level, unless one was given
                held += block
                if block and len(held) < codec.PROBE_BYTES:
                    continue
                block, held = bytes(held), bytearray()
                sizes[2] = self.level or codec.level_for(block)
                compressor = codec.Compressor(sizes[2], 1)
            if not block:
                break
            for piece in compressor.compress(block):
                digest.update(piece)
                sizes[1] += len(piece)
                yield piece
        assert compressor is not None  # made at the latest when the rows ended
        code = process.wait()
        if code != 0:
            assert process.stderr is not None
            detail = self.db.scrub(process.stderr.read().decode(errors="replace")).strip()[-1000:]
            raise JobError(ExitCode.DUMP_FAILED, f"COPY of {table.schema}.{table.name} {database.exit_status(code)}: "
                                                 f"{detail or 'psql printed nothing'}")
        for piece in compressor.finish():
            digest.update(piece)
            sizes[1] += len(piece)
            yield piece

    def _dump(self, table: BigTable) -> dict[str, Any]:
        from backup_job.dump import pg_binary

        command = [pg_binary("psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1",
                   "-c", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                   "-c", f"SET TRANSACTION SNAPSHOT '{self.snapshot}'", "-c", "SET statement_timeout = 0",
                   "-c", "SET row_security = off",  # as pg_dump: all the rows or an error, never some
                   # As pg_dump: values in the forms every restore reads back the same, whatever the database sets.
                   "-c", "SET datestyle = ISO", "-c", "SET intervalstyle = postgres", "-c", "SET extra_float_digits = 3",
                   "-c", "SET client_encoding = 'UTF8'",  # what every restore reads a table object as
                   "-c", table.copy_statement(), "-c", "COMMIT"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.db.child_env())
        with self._lock:
            self._processes.add(process)
        name = object_name(self.dump_name, table.oid)
        digest, sizes = hashlib.sha256(), [0, 0, 0]  # rows' bytes, stored bytes, zstd level
        try:
            transfer.upload_stream(self.bucket, name, self._blocks(process, table, digest, sizes),
                                   codec.MEDIA_TYPES[codec.ZSTD], self.window)
        except transfer.SourceFailed as failed:
            raise failed.cause from None
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        return {"oid": table.oid, "schema": table.schema, "name": table.name, "object": name,
                "sha256": digest.hexdigest(), "sizeBytes": sizes[1], "copyBytes": sizes[0], "compressLevel": sizes[2],
                "columns": list(table.columns)}

    def wait(self) -> list[dict[str, Any]]:
        """Each table's object as the manifest lists it; the first failure (the others are stopped) otherwise."""
        try:
            return self._workers.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop every COPY still running and wait for the workers."""
        self.stopped.set()
        with self._lock:
            for process in self._processes:
                if process.poll() is None:
                    process.kill()
        self._workers.join(STOP_SECONDS)


def check_split(archive_data: set[int], catalog: dict[str, Any], tables: list[dict[str, Any]]) -> None:
    """Every table with rows of its own has them in exactly one place: the archive (a TABLE DATA entry, known by
    the table's OID in `pg_restore --list`) or an object of its own. JobError(DUMP_FAILED) names the first that
    has not, before any manifest makes the backup usable."""
    own = {t["oid"] for t in tables}
    for relation in catalog["relations"]:
        if relation["kind"] != "r":
            continue
        places = (relation["oid"] in archive_data) + (relation["oid"] in own)
        if places != 1:
            where = "nowhere" if places == 0 else "both in the archive and in an object of their own"
            raise JobError(ExitCode.DUMP_FAILED, f"the rows of {relation['schema']}.{relation['name']} "
                                                 f"(OID {relation['oid']}) are {where}")
