"""`restore-check`: prove a backup restores - checksum, pg_restore into a scratch database, row counts;
and `restore`: put a verified backup (whole, or some tables) into a database someone keeps.

The dump is streamed from the bucket into pg_restore while being hashed, so
the check needs neither the dump's size in memory nor on disk (Cloud Run's
disk is memory). It restores into a database it creates for the purpose and
drops on every way out, so nothing of a restored - or tampered - dump stays,
the check repeats forever, and even a production URL given by mistake is
never written to. A checksum that differs from the manifest fails the check
whatever pg_restore made of the bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
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
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError

DOWNLOAD_CHUNK_BYTES = 8 << 20
THROWAWAY_PREFIX = "raptorflow_restore_check_"
# pg_restore workers of `restore` (a spooled archive allows -j): one per core, up to 4.
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))
# A throwaway database older than the longest a run may last (Cloud Run's 24 h task limit) was left by a killed run.
STALE_AFTER = timedelta(hours=24)


class _HashingPipe:
    """A write-only file that hashes everything and forwards it to pg_restore while pg_restore reads."""

    def __init__(self, stdin):
        self.stdin = stdin
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.restore_stopped = False

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if not self.restore_stopped:
            try:
                self.stdin.write(data)
            except BrokenPipeError:
                self.restore_stopped = True  # keep hashing: the checksum verdict comes first
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""


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


def _restore(target: database.Database, bucket: storage.Bucket, backup: layout.Backup) -> dict:
    """Stream the dump into pg_restore into `target` (empty), then verify checksum, size and row counts."""
    manifest = backup.manifest
    # pg_restore needs -d; the name is the throwaway database's (nothing secret), the rest comes as PG* variables.
    command = [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
               f"--dbname={target.params['dbname']}"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=target.child_env())
    assert process.stdin is not None and process.stderr is not None  # both opened with PIPE above
    stderr = process.stderr
    errors: list[bytes] = []
    stderr_reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    stderr_reader.start()
    pipe = _HashingPipe(process.stdin)
    try:
        _download(bucket, backup, pipe)
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        if sys.exc_info()[0] is not None and process.poll() is None:
            process.kill()
        code = process.wait()
        stderr_reader.join(timeout=5)

    if pipe.sha256.hexdigest() != manifest["sha256"] or pipe.size != int(manifest["sizeBytes"]):
        raise JobError(
            ExitCode.VERIFICATION_MISMATCH,
            f"{backup.object}: sha256 {pipe.sha256.hexdigest()} ({pipe.size} bytes) differs from the "
            f"manifest's {manifest['sha256']} ({manifest['sizeBytes']} bytes)",
        )
    if code != 0:
        detail = target.scrub(b"".join(errors).decode(errors="replace")).strip()
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {detail[-2000:]}")

    with target.connect() as connection:
        restored = database.row_counts(connection)
    expected = manifest.get("tableRowCounts")
    if expected is not None:
        differences = {
            table: {"manifest": expected.get(table), "restored": restored.get(table)}
            for table in sorted(set(expected) | set(restored))
            if expected.get(table) != restored.get(table)
        }
        if differences:
            raise JobError(
                ExitCode.VERIFICATION_MISMATCH,
                f"{backup.object}: row counts differ from the manifest: {differences}",
            )
    return {
        "object": backup.object,
        "kind": manifest["kind"],
        "bytes": pipe.size,
        "sha256": pipe.sha256.hexdigest(),
        "tables": len(restored),
        "rows": sum(restored.values()),
    }


# One identifier of pg_restore's SQL: plain, or double-quoted with "" inside.
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
    jobs: int = 2,
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into `target`, whole or only `tables`; return a report.

    Unlike the check, this writes a database someone keeps, so the dump is first spooled to a private temporary
    folder and its sha256 and size verified: a tampered or truncated dump never reaches the target. Tables that
    exist already are refused unless `replace` (pg_restore --clean --if-exists). pg_restore runs `jobs` workers.
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
    manifest = backup.manifest
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as spool:
        path = Path(spool) / "backup.dump"
        with path.open("wb") as file:
            sink = _HashingPipe(file)
            _download(bucket, backup, sink)
        if sink.sha256.hexdigest() != manifest["sha256"] or sink.size != int(manifest["sizeBytes"]):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: sha256 or size differs from the "
                                                           "manifest; nothing was restored")
        command = [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password",
                   f"--dbname={dbname}", f"--jobs={jobs}"]
        if replace:
            command += ["--clean", "--if-exists"]
        if tables:
            # pg_restore --table restores the table and its rows only: no sequence, column default, key, index or
            # trigger, so the restored table would refuse the application's next insert. Select those too.
            schema = schemas.pop() if schemas else "public"
            selection = Path(spool) / "selection.list"
            selection.write_text(_table_entries(path, schema, names))
            command.append(f"--use-list={selection}")
        command.append(str(path))
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
    with target.connect() as connection:
        restored = database.row_counts(connection)
    selected = {t: n for t, n in restored.items() if not tables or t in tables or t.split(".", 1)[1] in names}
    return {"object": backup.object, "kind": manifest["kind"], "bytes": sink.size, "tables": len(selected),
            "rows": sum(selected.values()), "rowCounts": selected}
