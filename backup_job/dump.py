"""`backup`: stream pg_dump into a create-only, checksummed upload, then write the manifest.

The pipeline has three workers so that none waits for another:

    pg_dump -Fc -Z0  --pipe-->  reader thread  --bounded queue-->  upload (main thread)
                                zstd (its own threads),            one streaming request, crc32c
                                sha256 + size

pg_dump writes its custom-format archive uncompressed and the reader compresses
the stream into one zstd frame (backup_job.codec): pg_dump's own zlib ran on
pg_dump's one thread and was the slowest stage of the whole backup, while zstd
runs beside it on its own threads, faster and smaller. `--compression pg_dump`
writes the archive as before, zlib inside (`--compress-level` is then zlib's).
A shorter dump also holds the exported snapshot - and Supabase's vacuum
horizon - for less time.

The reader keeps pg_dump's pipe drained while the connection is busy, and the
queue bounds memory: QUEUE_BYTES of dump plus the resume window of the upload
(backup_job.transfer, 32 MiB) are held, whatever the size of the dump; in the
parallel mode the archive and the table streams running at once (`--jobs`, at
most one per big table) share both in equal parts (each window at least
MIN_WINDOW_BYTES), and the archive's zstd runs on one thread beside theirs.
Nothing touches disk.

The upload is one resumable-upload request of unknown size whose body is the
dump as the reader hands it on: Cloud Storage creates the object only when the
request ends with the stream, and the stream only ends after pg_dump exited 0
and the zstd frame is closed. A failed dump breaks the request off, so it
leaves no object at all, and even an object left by some other failure has no
manifest, so it is never taken for a backup.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from google.cloud import storage

from backup_job import by_table, codec, database, transfer
from backup_job import catalog as dump_catalog
from backup_job import storage as layout
from backup_job.errors import ExitCode, JobError
from core.contracts import BackupKind

READ_BYTES = 1 << 20  # one pipe read; the pipe is enlarged to this so pg_dump rarely blocks
QUEUE_BYTES = 16 << 20  # dump bytes buffered while the connection is busy: pg_dump keeps writing meanwhile
MIN_WINDOW_BYTES = 1 << 20


@dataclass(frozen=True)
class BackupRequest:
    """What one `backup` run does."""

    kind: str  # a core.contracts.BackupKind
    bucket: str
    prefix: str = ""
    reason: str | None = None  # an ad-hoc backup: stored under <prefix>/manual/ with this reason
    compression: str = codec.ZSTD
    compress_level: int = codec.DEFAULT_ZSTD_LEVEL
    table_level: int | None = None  # the parallel mode's table streams; None: each chosen (codec.level_for)
    compress_threads: int | None = None  # zstd's threads for the archive; None: the cores, 1 in the parallel mode
    mode: str = by_table.SINGLE  # a by_table mode: single, parallel or auto
    jobs: int = 2  # the parallel mode's table streams at once
    parallel_table_mb: int = by_table.PARALLEL_TABLE_MB
    window_bytes: int = transfer.DEFAULT_WINDOW_BYTES

    @property
    def folder(self) -> str:
        """`manual` for ad-hoc backups, else the kind."""
        return "manual" if self.reason else self.kind


class _DumpFailed(Exception):
    """pg_dump exited non-zero: the upload must not be finalised."""


class _EndOfDump:
    """Queue marker: pg_dump exited 0 after its last byte."""


_Item = bytes | _EndOfDump | BaseException


def _blocks(items: queue.Queue[_Item]) -> Iterator[bytes]:
    """The dump's bytes as the reader queued them; raises what the reader queued instead (a failed pg_dump)."""
    while True:
        item = items.get()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, _EndOfDump):
            return
        yield item


class _Reader(threading.Thread):
    """Drains pg_dump's stdout, compresses it (with a `compressor`), hashes and counts every byte it hands on and
    queues it for the upload."""

    def __init__(self, process: subprocess.Popen[bytes], items: queue.Queue[_Item], stop: threading.Event,
                 compressor: codec.Compressor | None):
        super().__init__(name="pg_dump-reader", daemon=True)
        self.process, self.items, self.stop, self.compressor = process, items, stop, compressor
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.archive_size = 0  # what pg_dump wrote

    def _hand_on(self, blocks: list[bytes]) -> bool:
        for block in blocks:
            self.sha256.update(block)
            self.size += len(block)
            if not self._put(block):
                return False
        return True

    def _put(self, item: _Item) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None  # run_backup starts pg_dump with stdout=PIPE
        try:
            while True:
                block = _read_full(stdout, READ_BYTES)
                if not block:
                    break
                self.archive_size += len(block)
                if not self._hand_on(self.compressor.compress(block) if self.compressor else [block]):
                    return
            code = self.process.wait()
            if code != 0:
                self._put(_DumpFailed(database.exit_status(code)))
            elif self._hand_on(self.compressor.finish() if self.compressor else []):
                self._put(_EndOfDump())
        except BaseException as exc:  # noqa: BLE001 - handed to the upload, which re-raises it
            self._put(exc)


def _read_full(pipe, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of the stream.

    pg_dump writes in 4 KiB pieces, so one read of the pipe returns whatever few KiB are there; passing those
    on one by one made every later step (hash, queue, chunked send, CRC32C, resume window) run per few KiB -
    about a third of the job's own CPU. Whole blocks cost one copy of the bytes instead.
    """
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        got = pipe.readinto(view[filled:])
        if not got:
            break
        filled += got
    view.release()
    return bytes(buffer) if filled == size else bytes(buffer[:filled])


def enlarge_pipe(pipe) -> None:
    try:
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, READ_BYTES)
    except (AttributeError, OSError):
        pass  # not Linux, or over the system's pipe-size limit: the default pipe still works


def pg_binary(name: str) -> str:
    """Path of a PostgreSQL client program (pg_dump, pg_restore)."""
    found = shutil.which(name)
    if not found:
        raise JobError(ExitCode.USAGE, f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _describe(connection: psycopg.Connection, count_rows: bool) -> tuple[dict, list | None]:
    """The catalog of what the snapshot holds, and (for a full backup) its row count per table."""
    return dump_catalog.read_catalog(connection), database.table_rows(connection) if count_rows else None


def run_backup(db: database.Database, request: BackupRequest, gcs: storage.Client | None = None) -> dict:
    """Dump `db` into the bucket; return the manifest written. Raises JobError on any failure."""
    if request.window_bytes < MIN_WINDOW_BYTES:
        raise JobError(ExitCode.USAGE, f"--resume-window-bytes must be at least {MIN_WINDOW_BYTES}")
    started = layout.utc_now()
    clock = time.monotonic()
    name = layout.dump_object_name(request.prefix, request.folder, started)
    bucket = (gcs or layout.client()).bucket(request.bucket)

    connection = db.connect()
    try:
        # One snapshot for pg_dump and the row counts, so the manifest describes exactly what was dumped.
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        exported = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert exported is not None  # a function call always returns one row
        snapshot = exported[0]
        version = database.server_version(connection)
        connection.execute("SET LOCAL search_path = pg_catalog")
        connection.execute("SET LOCAL statement_timeout = 0")  # the job's own limit, whatever the role's
        zstd = request.compression == codec.ZSTD
        command = [
            pg_binary("pg_dump"), "--format=custom", f"--compress={0 if zstd else request.compress_level}",
            f"--snapshot={snapshot}", "--no-password",
        ]
        if request.kind == BackupKind.SCHEMA:
            command.append("--schema-only")
        big = [] if request.mode == by_table.SINGLE or request.kind != BackupKind.FULL else by_table.big_tables(
            connection, request.parallel_table_mb << 20)
        mode = by_table.choose(request.mode, big)
        big = big if mode == by_table.PARALLEL else []
        mode = mode if big else by_table.SINGLE  # no table travels apart: a single archive, and so recorded
        if big and not zstd:
            raise JobError(ExitCode.USAGE, "the parallel mode compresses with zstd: drop --compression pg_dump")
        command += [f"--exclude-table-data={table.pattern}" for table in big]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=db.child_env(), bufsize=0
        )
        # In the parallel mode the archive and the table streams share the resume window and the queue in equal
        # parts, and the archive's zstd takes one thread unless told otherwise: the table streams are the parallelism.
        share = min(request.jobs, len(big)) + 1 if big else 1  # the table streams that run at once, and the archive
        window = max(MIN_WINDOW_BYTES, request.window_bytes // share)
        threads = request.compress_threads
        if threads is None:
            threads = 1 if big else codec.default_threads()
        enlarge_pipe(process.stdout)
        items: queue.Queue[_Item] = queue.Queue(maxsize=max(2, QUEUE_BYTES // READ_BYTES // share))
        stop = threading.Event()
        compressor = codec.Compressor(request.compress_level, threads) if zstd else None
        reader = _Reader(process, items, stop, compressor)
        stderr_chunks: list[bytes] = []
        stderr = process.stderr
        assert stderr is not None  # started with stderr=PIPE
        stderr_reader = threading.Thread(target=lambda: stderr_chunks.append(stderr.read()), daemon=True)
        reader.start()
        stderr_reader.start()
        counter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-counts")
        counting = None
        tables: by_table.TableDumps | None = None
        try:
            if big:
                tables = by_table.TableDumps(db, bucket, name, snapshot, big, request.jobs, request.table_level, window)
            # Read while the dump streams, in its snapshot: what the dump holds, by OID (a restore names tables by
            # this, never by text), and the rows pg_dump writes. Reading a default's expression waits for a lock
            # on its table, as pg_dump does, so neither delays the other.
            counting = counter.submit(_describe, connection, request.kind == BackupKind.FULL)
            try:
                transfer.upload_stream(bucket, name, _blocks(items), codec.MEDIA_TYPES[request.compression], window)
            except transfer.SourceFailed as failed:
                raise failed.cause from None
            objects = tables.wait() if tables else None
            catalog, rows = counting.result()
        except _DumpFailed as failed:
            stderr_reader.join(timeout=5)
            detail = db.scrub(b"".join(stderr_chunks).decode(errors="replace")).strip()
            said = f": {detail[-2000:]}" if detail else " (it printed nothing)"
            raise JobError(ExitCode.DUMP_FAILED, f"pg_dump {failed}{said}") from None
        except layout.STORAGE_ERRORS as exc:
            raise layout.storage_error(f"uploading {name}", exc) from None
        except JobError:
            raise
        except psycopg.Error as exc:
            raise JobError(ExitCode.ROW_COUNT_FAILED, f"reading the catalog and counting rows: "
                                                      f"{db.scrub(str(exc)).strip()}") from None
        except Exception as exc:  # noqa: BLE001 - whatever else breaks the stream, no complete object exists
            raise JobError(ExitCode.UPLOAD_FAILED, f"uploading {name}: {type(exc).__name__}: {exc}") from None
        finally:
            if counting is not None and not counting.done():
                # The run failed while the count still waits (on a lock, say): cancel the query, or it would
                # hold the run - and the snapshot - until the lock goes.
                connection.cancel_safe(timeout=5)
            counter.shutdown(wait=True, cancel_futures=True)
            if tables is not None:
                tables.stop()
            stop.set()
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(timeout=5)
    finally:
        connection.close()

    finished = layout.utc_now()
    counts = None
    if rows is not None:
        counts = {f"{schema}.{table}": n for _, schema, table, n in rows}
        by_oid = {oid: n for oid, _, _, n in rows}
        for relation in catalog["relations"]:
            if relation["oid"] in by_oid:
                relation["rows"] = by_oid[relation["oid"]]
    manifest = {
        "format": codec.FORMAT_OF[request.compression],
        "object": name,
        "bucket": request.bucket,
        "kind": request.kind,
        "trigger": "manual" if request.reason else "scheduled",
        "reason": request.reason,
        "sha256": reader.sha256.hexdigest(),
        "sizeBytes": reader.size,
        "startedAt": layout.iso(started),
        "finishedAt": layout.iso(finished),
        "durationSeconds": round(time.monotonic() - clock, 3),
        "serverVersion": version,
        "dumpFormat": "custom",
        "compression": request.compression,
        "compressLevel": request.compress_level,
        "archiveSizeBytes": reader.archive_size,
        "mode": mode,
        "tableRowCounts": counts,
        "catalog": catalog,
    }
    if objects is not None:
        manifest["tables"] = objects
        by_table.check_split(_archive_data(bucket, name), catalog, objects)
    layout.write_manifest(bucket, manifest)
    return manifest


def _archive_data(bucket: storage.Bucket, name: str) -> set[int]:
    """The OIDs of the tables whose rows the uploaded archive holds (its TABLE DATA entries)."""
    from backup_job import archive, stream

    blob = layout.bounded(f"reading {name}", lambda: bucket.get_blob(name, retry=layout.RETRY,
                                                                    timeout=layout.STORAGE_TIMEOUT_SECONDS))
    if blob is None:
        raise JobError(ExitCode.UPLOAD_FAILED, f"{name} is missing right after its upload")
    _, listing = stream.read_head(blob, codec.ZSTD)
    return {entry.oid for entry in archive.parse_listing(listing).values() if entry.kind == "TABLE DATA"}
