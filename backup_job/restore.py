"""`restore-check`: prove a backup restores - checksum, pg_restore into a scratch database, row counts;
and `restore`: put a verified backup (whole, or some tables) into a database someone keeps.

Both stream the dump from the bucket into pg_restore while hashing it, so
neither needs the dump's size in memory nor on disk (Cloud Run's disk is
memory), and the download overlaps the restore: a feeder thread writes into
pg_restore's stdin while the next chunk is fetched, with FEED_BLOCKS chunks
between them at most.

The check restores into a database it creates for the purpose and drops on
every way out, so nothing of a restored - or tampered - dump stays, the check
repeats forever, and even a production URL given by mistake is never written
to. A checksum that differs from the manifest fails the check whatever
pg_restore made of the bytes.

`restore` writes a database someone keeps, so it runs pg_restore as one
transaction (`--single-transaction`) and holds the dump's last chunk back
until the whole dump's sha256 and size match the manifest: pg_restore cannot
reach its COMMIT before it has read the last byte, so a tampered or truncated
dump is rolled back and never reaches the target. With `--jobs N` (N > 1) it
spools the dump to a private temporary file instead, verifies it, and runs
pg_restore with N workers (a spooled archive allows -j; stdin does not).
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import subprocess
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
from google.api_core import exceptions as gcs_errors
from google.cloud import storage
from psycopg import sql

from backup_job import database
from backup_job import storage as layout
from backup_job.dump import enlarge_pipe, pg_binary
from backup_job.errors import ExitCode, JobError

DOWNLOAD_CHUNK_BYTES = 8 << 20
FEED_BLOCKS = 2  # downloaded chunks waiting for pg_restore at most: memory is about (FEED_BLOCKS + 2) chunks
THROWAWAY_PREFIX = "raptorflow_restore_check_"
# pg_restore workers of `restore`: 1 streams the dump in one transaction; N > 1 spools it and runs -j N.
DEFAULT_JOBS = 1
# A throwaway database older than the longest a run may last (Cloud Run's 24 h task limit) was left by a killed run.
STALE_AFTER = timedelta(hours=24)


class _HashingPipe:
    """A write-only file that hashes everything and hands it to `forward` (pg_restore's feeder, or a spool file)."""

    def __init__(self, forward):
        self.forward = forward
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if data:
            self.forward.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""

    def matches(self, manifest: dict) -> bool:
        """Whether what passed through is the dump the manifest describes."""
        return self.sha256.hexdigest() == manifest["sha256"] and self.size == int(manifest["sizeBytes"])


_END = object()


class _Feeder(threading.Thread):
    """Writes downloaded chunks into pg_restore's stdin from a bounded queue while the download goes on.

    With `hold_back`, the last chunk is written only once `finish(release=True)` says the dump is verified;
    `finish(release=False)` closes stdin without it, so pg_restore never sees the end of the dump.
    """

    def __init__(self, stdin, hold_back: bool):
        super().__init__(name="pg_restore-feeder", daemon=True)
        self.stdin, self.hold_back = stdin, hold_back
        self.items: queue.Queue = queue.Queue(maxsize=FEED_BLOCKS)
        self.release = threading.Event()
        self.restore_stopped = False

    def write(self, data: bytes) -> None:
        self.items.put(data)

    def _send(self, data: bytes) -> None:
        if not self.restore_stopped:
            try:
                self.stdin.write(data)
            except (BrokenPipeError, ValueError):
                self.restore_stopped = True  # pg_restore gave up; the download goes on for the checksum verdict

    def run(self) -> None:
        held = None
        while (item := self.items.get()) is not _END:
            if held is not None:
                self._send(held)
            held = item
            if not self.hold_back:
                self._send(held)
                held = None
        if held is not None and self.release.is_set():
            self._send(held)
        try:
            self.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def finish(self, release: bool) -> None:
        """No more chunks: write the held-back one if `release`, then close pg_restore's stdin."""
        if release:
            self.release.set()
        self.items.put(_END)
        self.join()


def run_restore_check(
    scratch: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = "full",
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into a database of its own; return a report.

    The scratch URL's role creates `raptorflow_restore_check_<UTC time>_<pid>`, the check restores and counts
    there, and the database is dropped on every way out - so the check runs again and again, a tampered dump
    never reaches a database anyone keeps, and the scratch URL's own database is never written. Raises JobError.
    """
    bucket, backup = _pick(gcs, bucket_name, prefix, object_name, kind)
    admin = scratch.connect()
    admin.autocommit = True
    try:
        _drop_stale(admin)
        target = f"{THROWAWAY_PREFIX}{layout.utc_now().strftime('%Y%m%dT%H%M%S')}_{os.getpid()}"
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
        except psycopg.errors.InsufficientPrivilege:
            raise JobError(ExitCode.USAGE, "the scratch URL's role may not create databases: restore-check "
                                           "restores into a database of its own and drops it (grant CREATEDB)") from None
        try:
            return _restore(scratch.with_database(target), bucket, backup)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
    finally:
        admin.close()


def _pick(gcs: storage.Client | None, bucket_name: str, prefix: str, object_name: str | None,
          kind: str | None) -> tuple[storage.Bucket, layout.Backup]:
    """The backup to restore - `object_name`, or the newest valid one of `kind` - once its dump's size is checked."""
    bucket = (gcs or layout.client()).bucket(bucket_name)
    backup = (
        layout.Backup(object_name, layout.read_manifest(bucket, object_name))
        if object_name
        else layout.newest(bucket, prefix, kind)
    )
    _check_size(bucket, backup)
    return bucket, backup


def _download(bucket: storage.Bucket, backup: layout.Backup, sink: _HashingPipe) -> None:
    """Stream the dump into `sink` (which hashes it); a missing dump is NOT_FOUND, storage trouble exit 4."""
    try:
        bucket.blob(backup.object, chunk_size=DOWNLOAD_CHUNK_BYTES).download_to_file(
            sink, checksum="crc32c", retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS)
    except gcs_errors.NotFound:
        raise JobError(ExitCode.NOT_FOUND, f"{backup.object} does not exist: its manifest names a missing dump") from None
    except layout.STORAGE_ERRORS as exc:
        raise layout.storage_error(f"downloading {backup.object}", exc) from None


def _check_size(bucket: storage.Bucket, backup: layout.Backup) -> None:
    """Refuse a dump that is missing or not the manifest's size, before anything is restored."""
    try:
        blob = bucket.get_blob(backup.object, retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS)
    except layout.STORAGE_ERRORS as exc:
        raise layout.storage_error(f"reading {backup.object}", exc) from None
    if blob is None:
        raise JobError(ExitCode.NOT_FOUND, f"{backup.object} does not exist: its manifest names a missing dump")
    if blob.size != backup.size_bytes:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object} is {blob.size} bytes; its manifest says "
                                                       f"{backup.size_bytes}")


def _drop_stale(admin: psycopg.Connection) -> None:
    """Drop throwaway databases that a killed run left behind (older than any run may last)."""
    cutoff = (layout.utc_now() - STALE_AFTER).strftime("%Y%m%dT%H%M%S")
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                         (THROWAWAY_PREFIX.replace("_", "\\_") + "%",)).fetchall()
    for (name,) in rows:
        stamp = name[len(THROWAWAY_PREFIX):].split("_")[0]
        if stamp < cutoff:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _stream_restore(target: database.Database, bucket: storage.Bucket, backup: layout.Backup, options: list[str],
                    hold_back: bool) -> _HashingPipe:
    """Download the dump into `pg_restore OPTIONS` (reading stdin) into `target`; verify checksum and size.

    Raises VERIFICATION_MISMATCH when the bytes are not the manifest's (then, with `hold_back`, pg_restore never
    got the last chunk and is stopped before its COMMIT), DUMP_FAILED when pg_restore fails.
    """
    manifest = backup.manifest
    # pg_restore needs -d; the name is the database's (nothing secret), the rest comes as PG* variables.
    command = [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
               f"--dbname={target.params['dbname']}", *options]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=target.child_env())
    assert process.stdin is not None and process.stderr is not None  # both opened with PIPE above
    enlarge_pipe(process.stdin)
    stderr = process.stderr
    errors: list[bytes] = []
    stderr_reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    stderr_reader.start()
    feeder = _Feeder(process.stdin, hold_back)
    feeder.start()
    pipe = _HashingPipe(feeder)
    verified = False
    try:
        _download(bucket, backup, pipe)
        verified = pipe.matches(manifest)
    finally:
        if not verified and process.poll() is None:
            process.kill()  # a failed download or a wrong checksum: pg_restore stops short of the end (and COMMIT)
        feeder.finish(release=verified)
        code = process.wait()
        stderr_reader.join(timeout=5)

    if not verified:
        raise JobError(
            ExitCode.VERIFICATION_MISMATCH,
            f"{backup.object}: sha256 {pipe.sha256.hexdigest()} ({pipe.size} bytes) differs from the "
            f"manifest's {manifest['sha256']} ({manifest['sizeBytes']} bytes)"
            + ("; nothing was restored" if hold_back else ""),
        )
    if code != 0:
        detail = target.scrub(b"".join(errors).decode(errors="replace")).strip()
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {detail[-2000:]}")
    return pipe


def _compare_counts(backup: layout.Backup, restored: dict[str, int], tables: set[str] | None = None) -> None:
    """VERIFICATION_MISMATCH unless the restored row counts are the manifest's: for every table on either side,
    or only for `tables` (those a partial or additive restore wrote)."""
    expected = backup.manifest.get("tableRowCounts")
    if expected is None:
        return
    compared = sorted(set(expected) | set(restored)) if tables is None else sorted(tables & set(expected))
    differences = {
        table: {"manifest": expected.get(table), "restored": restored.get(table)}
        for table in compared
        if expected.get(table) != restored.get(table)
    }
    if differences:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: row counts differ from the manifest: {differences}")


def _restore(target: database.Database, bucket: storage.Bucket, backup: layout.Backup) -> dict:
    """Stream the dump into pg_restore into `target` (empty), then verify checksum, size and row counts."""
    pipe = _stream_restore(target, bucket, backup, [], hold_back=False)
    with target.connect() as connection:
        restored = database.row_counts(connection)
    _compare_counts(backup, restored)
    return {
        "object": backup.object,
        "kind": backup.manifest["kind"],
        "bytes": pipe.size,
        "sha256": pipe.sha256.hexdigest(),
        "tables": len(restored),
        "rows": sum(restored.values()),
    }


_IDENT = r'(?:"(?:[^"]|"")+"|[^\s."(),;]+)'
_OWNED_SEQUENCE = re.compile(rf"^ALTER SEQUENCE ({_IDENT})\.({_IDENT}) OWNED BY ({_IDENT})\.({_IDENT})\.", re.M)
_IDENTITY_SEQUENCE = re.compile(rf"^ALTER TABLE (?:ONLY )?({_IDENT})\.({_IDENT}) ALTER COLUMN {_IDENT} ADD GENERATED "
                                rf"[^;]*?SEQUENCE NAME ({_IDENT})\.({_IDENT})", re.M | re.S)
_INDEX = re.compile(rf"^CREATE (?:UNIQUE )?INDEX ({_IDENT}) ON (?:ONLY )?({_IDENT})\.({_IDENT})", re.M)
# Archive entries that belong to a table and whose tag starts with the table's name.
_TAGGED_BY_TABLE = ("TABLE", "TABLE DATA", "DEFAULT", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY",
                    "ROW SECURITY", "RULE")
_ENTRY_TYPES = sorted({*_TAGGED_BY_TABLE, "INDEX", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET"},
                      key=len, reverse=True)


def _unquote(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def _table_entries(archive: Path, schema: str, tables: set[str]) -> str:
    """The archive's table of contents (a pg_restore --use-list) reduced to `tables` of `schema` and what belongs
    to them: their rows, owned and identity sequences, column defaults, constraints, indexes and triggers."""
    def listing(*options: str) -> str:
        result = subprocess.run([pg_binary("pg_restore"), *options, str(archive)], capture_output=True, text=True)
        if result.returncode != 0:
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore could not read the archive: {result.stderr.strip()[-500:]}")
        return result.stdout

    definitions = listing("--schema-only", "--file=-")
    sequences = {_unquote(m[2]) for m in _OWNED_SEQUENCE.finditer(definitions)
                 if _unquote(m[1]) == schema == _unquote(m[3]) and _unquote(m[4]) in tables}
    sequences |= {_unquote(m[4]) for m in _IDENTITY_SEQUENCE.finditer(definitions)
                  if _unquote(m[1]) == schema == _unquote(m[3]) and _unquote(m[2]) in tables}
    indexes = {_unquote(m[1]) for m in _INDEX.finditer(definitions)
               if _unquote(m[2]) == schema and _unquote(m[3]) in tables}
    chosen = []
    for line in listing("--list").splitlines():
        if line.startswith(";"):
            continue
        body = line.split(" ", 3)[-1] if line.count(" ") >= 3 else ""
        kind = next((k for k in _ENTRY_TYPES if body.startswith(k + " ")), None)
        if kind is None or not body[len(kind) + 1:].startswith(schema + " "):
            continue
        tag = body[len(kind) + len(schema) + 2:].rsplit(" ", 1)[0]  # the owner is the last word
        if kind in _TAGGED_BY_TABLE:
            keep = tag in tables or tag.split(" ", 1)[0] in tables
        else:
            keep = tag in (indexes if kind == "INDEX" else sequences)
        if keep:
            chosen.append(line)
    return "\n".join(chosen) + "\n"


def run_restore(
    target: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = "full",
    tables: tuple[str, ...] = (),
    replace: bool = False,
    jobs: int = DEFAULT_JOBS,
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into `target`, whole or only `tables`; return a report.

    Unlike the check, this writes a database someone keeps: a tampered or truncated dump never reaches it. Tables that
    exist already are refused unless `replace` (pg_restore --clean --if-exists). With `jobs` 1 the dump streams
    into one pg_restore transaction whose end is held back until the checksum matches; with more, it is spooled,
    verified and restored by `jobs` workers. Row counts are compared with the manifest's afterwards.
    """
    dbname = target.params.get("dbname")
    if not dbname:
        raise JobError(ExitCode.USAGE, "the target URL names no database: say which database to restore into")
    schemas = {table.split(".", 1)[0] for table in tables if "." in table}
    if len(schemas) > 1 or (schemas and not all("." in table for table in tables)):
        raise JobError(ExitCode.USAGE, "--table names must all be in one schema (pg_restore selects one schema)")
    if jobs < 1:
        raise JobError(ExitCode.USAGE, "--jobs must be at least 1")
    bucket, backup = _pick(gcs, bucket_name, prefix, object_name, kind)
    with target.connect() as connection:
        existing = database.row_counts(connection)
    names = {table.split(".", 1)[-1] for table in tables}
    clash = sorted(t for t in existing if not tables or t in tables or t.split(".", 1)[1] in names)
    if clash and not replace:
        raise JobError(ExitCode.USAGE, f"the target already has {len(clash)} of the tables to restore "
                                       f"({', '.join(clash[:5])}); pass --replace to drop and restore them")
    options = ["--clean", "--if-exists"] if replace else []
    if jobs == 1 and not tables:
        sink = _stream_restore(target, bucket, backup, ["--single-transaction", *options], hold_back=True)
    else:
        # A table restore reads the archive's table of contents to bring back each table's sequences, defaults,
        # keys and indexes, so like a parallel restore it is spooled to a file and verified first.
        selection = (schemas.pop() if schemas else "public", names) if tables else None
        sink = _spooled_restore(target, bucket, backup, [f"--jobs={jobs}", *options], selection)
    with target.connect() as connection:
        restored = database.row_counts(connection)
    selected = {t: n for t, n in restored.items() if not tables or t in tables or t.split(".", 1)[1] in names}
    _compare_counts(backup, selected, set(selected))
    return {"object": backup.object, "kind": backup.manifest["kind"], "bytes": sink.size, "tables": len(selected),
            "rows": sum(selected.values()), "rowCounts": selected}


def _spooled_restore(target: database.Database, bucket: storage.Bucket, backup: layout.Backup,
                     options: list[str], selection: tuple[str, set[str]] | None = None) -> _HashingPipe:
    """Download the dump to a private temporary file, verify it, then `pg_restore OPTIONS FILE` (for -j), only
    the tables of `selection` (schema, names) and what belongs to them when given."""
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as spool:
        path = Path(spool) / "backup.dump"
        with path.open("wb") as file:
            sink = _HashingPipe(file)
            _download(bucket, backup, sink)
        if not sink.matches(backup.manifest):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: sha256 or size differs from the "
                                                           "manifest; nothing was restored")
        if selection is not None:
            # pg_restore --table restores the table and its rows only: no sequence, column default, key, index or
            # trigger, so the restored table would refuse the application's next insert. Select those too.
            listing = Path(spool) / "selection.list"
            listing.write_text(_table_entries(path, *selection))
            options = [*options, f"--use-list={listing}"]
        command = [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
                   f"--dbname={target.params['dbname']}", *options, str(path)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=target.child_env())
        try:
            _, errors = process.communicate()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        detail = target.scrub(errors.decode(errors="replace")).strip()
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(process.returncode)}: {detail[-2000:]}")
    return sink
