"""Whole restores that run on several connections: the spooled `--jobs N` restore of a single archive, and the
restore of a parallel backup (backup_job.by_table), which is parallel by construction.

A parallel backup restores in three phases, as pg_restore itself orders a restore:

1. the archive (definitions, small tables' rows, sequences' positions, large
   objects) is downloaded, checked against the manifest's sha256 and size, and
   decompressed into a private temporary file: it holds no big table's rows, so
   it is small; then its pre-data section runs as one transaction
   (`pg_restore --section=pre-data --single-transaction`);
2. the data: every table object streams from the bucket into its table, the
   biggest first, `jobs` at a time, each in a transaction of its own on its own
   connection (download, sha256, zstd, `COPY ... FROM STDIN`), committed only
   once the object's sha256 and size match the manifest; beside them the
   archive's own data section runs (`pg_restore --section=data`);
3. post-data (indexes, constraints, triggers, policies) with `pg_restore
   --section=post-data --jobs N`, from the archive alone.

`--replace` first runs the archive's own drops, as `pg_restore --clean
--if-exists` would run them before creating anything (backup_job.drops). Like
a spooled `--jobs N` restore, a parallel restore is not one transaction: when
a phase fails, or SIGTERM stops it, the report waits until the restore's
sessions are gone and names the tables complete and those that are not.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import codec, database, drops, stream
from backup_job import storage as layout
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError, Terminated
from backup_job.workers import Workers

# After SIGTERM, how long pg_restore -j gets to stop its workers, and then how long the report waits for their
# sessions to end on the server (a COPY that was committing may still commit): both within Cloud Run's 10 s.
STOP_SECONDS = 3.0
SESSIONS_GONE_SECONDS = 4.0
# What pg_restore's script sets before it loads anything, for the table objects' sessions too: whatever the target
# database or role sets, a load is not cut short by a timeout, reads the objects' bytes as UTF-8 (backup_job.by_table
# writes them so) and takes XML content that is no document.
LOAD_SETTINGS = {"statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
                 "client_encoding": "UTF8", "xmloption": "content", "row_security": "off"}


def left_behind(target: database.Database, backup: layout.Backup, sessions: str) -> tuple[str, dict[str, Any]]:
    """What a failed or stopped parallel restore left in the target, once pg_restore's sessions (`sessions`, their
    application_name) are gone: a sentence for its message, and the log line's fields naming every table
    restored completely and every one not."""
    expected = backup.manifest.get("tableRowCounts") or {}
    try:
        with target.connect() as connection:
            connection.autocommit = True
            wait_for_sessions(connection, sessions)
            present = database.row_counts(connection)
    except JobError:
        return "the target could not be read to say what it now holds", {}
    complete = sorted(t for t in expected if present.get(t) == expected[t])
    partial = sorted(t for t in expected if t in present and present[t] != expected[t])
    missing = sorted(t for t in expected if t not in present)
    details = {"tablesRestored": complete, "tablesNotRestored": sorted(partial + missing)}
    return (f"the target now holds {len(complete)} of the {len(expected)} tables complete, {len(partial)} partly "
            f"({', '.join(partial[:5]) or 'none'}) and lacks {len(missing)} ({', '.join(missing[:5]) or 'none'}): "
            "a parallel restore is not one transaction, so restore again with --replace"), details


def wait_for_sessions(connection: psycopg.Connection, name: str) -> None:
    """Wait (at most SESSIONS_GONE_SECONDS) until no session named `name` (this run's pg_restore) is left on
    the target: a worker's COPY that was committing may still commit, and the report must count what stays."""
    deadline = time.monotonic() + SESSIONS_GONE_SECONDS
    while time.monotonic() < deadline:
        row = connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND pid <> pg_backend_pid() AND application_name = %s",
                                 (name,)).fetchone()
        if row is None or row[0] == 0:
            return
        time.sleep(0.1)


def spool(blob: storage.Blob, backup: layout.Backup, folder: str) -> tuple[Path, stream.HashingPipe]:
    """The backup's archive (`blob`, decompressed) in a file of `folder`, checked against the manifest: its path and
    the pipe that hashed the stored bytes. USAGE when there is no room, VERIFICATION_MISMATCH for other bytes."""
    tmp = tempfile.gettempdir()
    needed = codec.archive_bytes(backup.manifest)
    free = shutil.disk_usage(tmp).free
    if free < needed:
        raise no_room(tmp, needed, f"has {free:,} bytes free")
    path = Path(folder) / "backup.dump"
    try:
        with path.open("wb") as file:
            decoder = codec.decoding(codec.of(backup.manifest), file, backup.manifest.get("archiveSizeBytes"))
            sink = stream.HashingPipe(decoder)
            stream.download(blob, sink)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise no_room(tmp, needed, "filled up while the dump was downloaded") from None
    if not sink.matches(backup.manifest) or codec.unfinished(decoder):
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: sha256, size or frame differs from "
                                                       "the manifest's; nothing was restored")
    return path, sink


def pg_restore_file(target: database.Database, path: Path, options: list[str], env: dict[str, str]) -> None:
    """`pg_restore OPTIONS FILE` into `target`; DUMP_FAILED when it fails, TERMINATED on SIGTERM."""
    command = [pg_binary("pg_restore"), "--exit-on-error", "--no-password",
               f"--dbname={target.params['dbname']}", *options, str(path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**target.child_env(), **env})
    try:
        _, errors = process.communicate()
    except Terminated:
        # The handler passed SIGTERM on to pg_restore, which stops its workers: give it the time to.
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        raise JobError(ExitCode.TERMINATED, "restore stopped by SIGTERM (task timeout or cancel) while "
                                            f"pg_restore {options[0]} ran") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        detail = target.scrub(errors.decode(errors="replace")).strip()
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(process.returncode)}: {detail[-2000:]}")


def spooled_restore(target: database.Database, blob: storage.Blob, backup: layout.Backup,
                    options: list[str], env: dict[str, str]) -> stream.HashingPipe:
    """Download the dump to a private temporary file, verify it, then `pg_restore OPTIONS FILE` (for -j)."""
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as folder:
        path, sink = spool(blob, backup, folder)
        pg_restore_file(target, path, drops.run_first(target, path, options), env)
    return sink


def no_room(folder: str, needed: int, state: str) -> JobError:
    return JobError(ExitCode.USAGE, f"no room to spool the dump for --jobs: {folder} {state}, the dump needs "
                                    f"{needed:,} bytes; free space there, point TMPDIR at a larger folder, or "
                                    "restore with --jobs 1 (it streams and spools nothing); nothing was restored")


@dataclass(frozen=True)
class Read:
    """What a restore read: every object's bytes, and the archive's sha256 (a hashlib object)."""

    size: int
    sha256: Any


def jobs_for(requested: int) -> int:
    """The streams a parallel backup restores with: `--jobs` when given above 1, else the cores (at least 2)."""
    return requested if requested > 1 else max(2, codec.default_threads())


def load_object(connection: psycopg.Connection, bucket: storage.Bucket, table: dict[str, Any],
                destination: sql.Composable, watch: Callable[[stream.HashingPipe], None] | None = None) -> int:
    """Stream a table object (a manifest's `tables` entry) into `destination` with COPY, in the connection's open
    transaction, and check its sha256 and size against the manifest before returning its size: the caller
    commits only then. `watch` is handed the download's pipe first (to abort it)."""
    name = f"{table['schema']}.{table['name']}"
    blob = layout.bounded(f"reading {table['object']}", lambda: bucket.get_blob(
        table["object"], retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS))
    if blob is None:
        raise JobError(ExitCode.NOT_FOUND, f"{table['object']} ({name}'s rows) does not exist")
    if blob.size != table["sizeBytes"]:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{table['object']} is {blob.size} bytes; its manifest "
                                                       f"says {table['sizeBytes']}")
    blob.chunk_size = stream.DOWNLOAD_CHUNK_BYTES
    columns = sql.SQL("({})").format(sql.SQL(", ").join(sql.Identifier(c) for c in table["columns"]))
    statement = sql.SQL("COPY {} {} FROM STDIN").format(destination, columns if table["columns"] else sql.SQL(""))
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        decoder = codec.Decompressing(copy, table["copyBytes"])
        pipe = stream.HashingPipe(decoder)
        if watch is not None:
            watch(pipe)
        stream.download(blob, pipe)
        if not pipe.matches(table) or decoder.unfinished():
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{table['object']} ({name}'s rows): sha256, size or "
                                                           "frame differs from the manifest's; its rows were not "
                                                           "committed")
    return pipe.size


class _Loads:
    """The table objects' COPYs, `jobs` at a time, each on its own connection and in its own transaction."""

    def __init__(self, target: database.Database, bucket: storage.Bucket, tables: list[dict[str, Any]], jobs: int,
                 settings: dict[str, str]):
        self.target, self.bucket, self.settings = target, bucket, settings
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._pipes: list[stream.HashingPipe] = []
        self._connections: list[psycopg.Connection] = []
        self.bytes = 0
        self._workers = Workers("table-load", jobs, self._load, sorted(tables, key=lambda t: -t["sizeBytes"]))

    def _load(self, table: dict[str, Any]) -> None:
        with self.target.connect() as connection:
            with self._lock:
                self._connections.append(connection)
            if self.stopping.is_set():
                raise JobError(ExitCode.TERMINATED, "stopped")
            try:
                for setting, value in {**LOAD_SETTINGS, **self.settings}.items():
                    connection.execute(sql.SQL("SELECT set_config({}, {}, false)").format(sql.Literal(setting),
                                                                                        sql.Literal(value)))
                size = load_object(connection, self.bucket, table, sql.SQL("{}.{}").format(
                    sql.Identifier(table["schema"]), sql.Identifier(table["name"])), self._watch)
                connection.commit()
            except psycopg.Error as exc:
                raise JobError(ExitCode.DUMP_FAILED, f"loading the rows of {table['schema']}.{table['name']}: "
                                                     f"{self.target.scrub(str(exc)).strip()[:1000]}") from None
        with self._lock:
            self.bytes += size

    def _watch(self, pipe: stream.HashingPipe) -> None:
        with self._lock:
            self._pipes.append(pipe)
            if self.stopping.is_set():
                pipe.abort.set()

    def wait(self) -> None:
        """Every load's end; the first failure stops the others and is raised."""
        try:
            self._workers.wait()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every load: downloads stop at their next chunk, COPYs are cancelled, nothing more commits."""
        self.stopping.set()
        with self._lock:
            for pipe in self._pipes:
                pipe.abort.set()
            connections = [c for c in self._connections if not c.closed]
        for connection in connections:
            connection.cancel_safe(timeout=STOP_SECONDS / max(1, len(connections)))
        self._workers.join(STOP_SECONDS)


def by_table(target: database.Database, blob: storage.Blob, backup: layout.Backup, options: list[str],
             env: dict[str, str], jobs: int, keep: Callable[[dict[str, Any]], bool]) -> Read:
    """Restore a parallel backup whole in three phases (module docstring); `options` are the whole restore's
    pg_restore options (`--clean --if-exists` for --replace), `keep(table)` whether a table object is loaded.
    Returns what was read: `size` (every object's bytes) and the archive's `sha256`."""
    bucket = blob.bucket
    settings = {"application_name": env["PGAPPNAME"]}
    if "session_replication_role=replica" in env.get("PGOPTIONS", ""):
        settings["session_replication_role"] = "replica"
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as folder:
        path, sink = spool(blob, backup, folder)
        plain = drops.run_first(target, path, options)
        pg_restore_file(target, path, ["--section=pre-data", "--single-transaction", *plain], env)
        loads = _Loads(target, bucket, [t for t in backup.manifest["tables"] if keep(t)], jobs, settings)
        try:
            pg_restore_file(target, path, ["--section=data", "--single-transaction", *plain], env)
            loads.wait()
        except BaseException:
            loads.stop()
            raise
        pg_restore_file(target, path, ["--section=post-data", f"--jobs={jobs}", *plain], env)
    return Read(sink.size + loads.bytes, sink.sha256)
