"""`restore`: put a verified backup (whole, or some tables) into a database someone keeps.

It streams the dump from the bucket into pg_restore while hashing it
(backup_job.stream), so it needs the dump's size neither in memory nor on disk
(Cloud Run's disk is memory). `restore-check` is backup_job.check.

A whole-database `restore` writes a database someone keeps, so it runs
pg_restore as one transaction (`--single-transaction`) and holds the dump's
last chunk back until the whole dump's sha256 and size match the manifest:
pg_restore cannot reach its COMMIT before it has read the last byte, so a
tampered or truncated dump is rolled back and never reaches the target. With
`--jobs N` (N > 1) it spools the dump to a private temporary file instead,
verifies it, and runs pg_restore with N workers (a spooled archive allows -j;
stdin does not). The spool needs the archive's size (decompressed) free in TMPDIR
(on Cloud Run, memory): less, checked before the download or met
during it, is exit 2 naming the folder and the bytes needed, and nothing is
restored. A parallel restore is not one transaction: when pg_restore fails, or
SIGTERM stops it (pg_restore passes the signal to its workers), the report
waits until its sessions are gone and then names the tables the target holds
complete and those it does not.

A read-only target (a hot standby, or `default_transaction_read_only` set for
its database or role) is refused with exit 3 before anything is downloaded or
written.

What a whole restore brings back, and who owns it:
- privileges (GRANTs, default privileges), row-level-security policies,
  comments, large objects and sequence positions, as the dump has them;
- objects are owned by the role of the target URL (pg_restore --no-owner),
  unless `keep_owners`, which keeps the dump's owners (they must exist);
- roles the dump grants to, or names in a policy, must exist in the target:
  the restore lists the missing ones and exits 2 before it writes anything;
- into a Supabase project (`target_kind`), the definitions of Supabase's
  managed schemas are not recreated, because the project has them, while
  their rows are (every user of `auth.users`), loaded with
  `session_replication_role = replica` as the Supabase CLI's documented
  migration does; see backup_job.supabase.

Table restores (`--table`) are backup_job.tables.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from google.cloud import storage

from backup_job import codec, database, stream, supabase, tables
from backup_job import storage as layout
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError, Terminated
from core.contracts import BackupKind

# pg_restore workers of `restore`: 1 streams the dump in one transaction; N > 1 spools it and runs -j N.
DEFAULT_JOBS = 1
TARGET_KINDS = ("auto", "supabase", "postgres")
# After SIGTERM, how long pg_restore -j gets to stop its workers, and then how long the report waits for their
# sessions to end on the server (a COPY that was committing may still commit): both within Cloud Run's 10 s.
STOP_SECONDS = 3.0
SESSIONS_GONE_SECONDS = 4.0


@dataclass(frozen=True)
class RestoreRequest:
    """What one `restore` run does (see backup_job.cli for the flags)."""

    tables: tuple[str, ...] = ()
    replace: bool = False
    into_schema: str | None = None
    merge_missing: bool = False
    jobs: int = DEFAULT_JOBS
    keep_owners: bool = False
    target_kind: str = "auto"


def require_roles(connection: psycopg.Connection, backup: layout.Backup, keep_owners: bool) -> None:
    """USAGE, naming them, when roles the dump grants to (or, keeping owners, that own its objects) are missing."""
    catalog = backup.manifest.get("catalog")
    if not isinstance(catalog, dict):
        return  # a backup from before catalogs: pg_restore reports a missing role, and its transaction rolls back
    wanted = set(catalog.get("roles", [])) | (set(catalog.get("owners", [])) if keep_owners else set())
    present = {row[0] for row in connection.execute("SELECT rolname FROM pg_roles").fetchall()}
    missing = sorted(wanted - present)
    if missing:
        raise JobError(ExitCode.USAGE, f"the target lacks {len(missing)} role(s) the backup grants to"
                                       f"{' or that own its objects' if keep_owners else ''}: {', '.join(missing)}; "
                                       "create them first (a Supabase project has anon, authenticated and "
                                       "service_role); nothing was restored")


def require_writable(connection: psycopg.Connection, dbname: str) -> None:
    """DATABASE_UNREACHABLE when the target takes no writes: a hot standby, or read-only by default."""
    row = connection.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'").fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    standby, read_only = row
    if standby:
        why = "a hot standby (in recovery): restore into the primary"
    elif read_only:
        why = ("default_transaction_read_only is on for it or for the URL's role: restore into a writable database, "
               "or reset the setting if the database should take writes")
    else:
        return
    raise JobError(ExitCode.DATABASE_UNREACHABLE, f"the target database {dbname} is read-only, {why}; nothing was "
                                                  "downloaded or written")


def compare_counts(backup: layout.Backup, restored: dict[str, int], tables: set[str] | None = None) -> None:
    """VERIFICATION_MISMATCH unless the restored row counts are the manifest's: for every table on either side,
    or only for `tables` (those a partial or additive restore wrote)."""
    expected = backup.manifest.get("tableRowCounts")
    if not isinstance(expected, dict):
        return
    compared = sorted(set(expected) | set(restored)) if tables is None else sorted(tables & set(expected))
    differences = {
        table: {"manifest": expected.get(table), "restored": restored.get(table)}
        for table in compared
        if expected.get(table) != restored.get(table)
    }
    if differences:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: row counts differ from the manifest: {differences}")


def run_restore(
    target: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = BackupKind.FULL,
    request: RestoreRequest | None = None,
    gcs: storage.Client | None = None,
    **options,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into `target`, whole or only some tables; return a report.

    Unlike the check, this writes a database someone keeps: a tampered or truncated dump never reaches it.
    `options` are RestoreRequest's fields, for callers that pass them one by one.
    """
    request = request or RestoreRequest(**options)
    dbname = target.params.get("dbname")
    if not dbname:
        raise JobError(ExitCode.USAGE, "the target URL names no database: say which database to restore into")
    if request.jobs < 1:
        raise JobError(ExitCode.USAGE, "--jobs must be at least 1")
    if request.target_kind not in TARGET_KINDS:
        raise JobError(ExitCode.USAGE, f"--target-kind must be one of {', '.join(TARGET_KINDS)}")
    if request.tables and request.jobs != 1:
        raise JobError(ExitCode.USAGE, "--jobs applies to whole-database restores; a table restore is one "
                                       "transaction on one connection")
    if not request.tables and (request.into_schema or request.merge_missing):
        raise JobError(ExitCode.USAGE, "--into-schema and --merge-missing restore tables: name them with --table")
    with target.connect() as connection:
        require_writable(connection, dbname)
    backup, blob = stream.pick(gcs, bucket_name, prefix, object_name, kind)
    if request.tables:
        return tables.restore_tables(target, blob, backup, request)

    with target.connect() as connection:
        require_roles(connection, backup, request.keep_owners)
        into_supabase = supabase.is_supabase(connection, request.target_kind)
        existing = database.table_rows(connection)
    expected = backup.manifest.get("tableRowCounts") or {}
    # A Supabase project's managed tables are the project's: their rows are added to, never a clash.
    clash = sorted(f"{schema}.{table}" for _, schema, table, _ in existing
                   if (f"{schema}.{table}" in expected or not expected)
                   and not (into_supabase and schema in supabase.MANAGED_SCHEMAS))
    if clash and not request.replace:
        raise JobError(ExitCode.USAGE, f"the target already has {len(clash)} of the tables to restore "
                                       f"({', '.join(clash[:5])}); pass --replace to drop and restore them")
    options_list = ["--clean", "--if-exists"] if request.replace else []
    if not request.keep_owners:
        options_list.append("--no-owner")
    env: dict[str, str] = {}
    if request.jobs > 1:
        # The name pg_restore's sessions carry, so a report can wait for them to end.
        env["PGAPPNAME"] = target.params.get("application_name") or f"raptorflow-restore-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as work:
        if into_supabase:
            selection = Path(work) / "selection.list"
            selection.write_text(supabase.managed_list(blob, backup))
            options_list.append(f"--use-list={selection}")
            options_text = target.params.get("options", "")
            env["PGOPTIONS"] = f"{options_text} -c session_replication_role=replica".strip()
        try:
            if request.jobs == 1:
                sink = stream.restore_into(target, blob, backup, ["--single-transaction", *options_list],
                                       hold_back=True, env=env)
            else:
                sink = _spooled_restore(target, blob, backup, [f"--jobs={request.jobs}", *options_list], env)
        except JobError as exc:
            if request.jobs > 1 and exc.code in (ExitCode.DUMP_FAILED, ExitCode.TERMINATED):
                left, details = _left_behind(target, backup, env["PGAPPNAME"])
                raise JobError(exc.code, f"{exc}; {left}", details) from None
            raise
    try:
        with target.connect() as connection:
            restored = database.row_counts(connection)
    except Terminated:
        raise JobError(ExitCode.TERMINATED, f"restore stopped by SIGTERM after pg_restore finished: {backup.object} "
                                            "is restored, but its row counts were not compared with the manifest "
                                            "(compare them, or run restore-check)") from None
    selected = {t: n for t, n in restored.items() if t in expected}
    compare_counts(backup, selected, set(selected))
    return {"object": backup.object, "kind": backup.manifest["kind"], "bytes": sink.size, "tables": len(selected),
            "rows": sum(selected.values()), "rowCounts": selected}


def _left_behind(target: database.Database, backup: layout.Backup, sessions: str) -> tuple[str, dict[str, Any]]:
    """What a failed or stopped parallel restore left in the target, once pg_restore's sessions (`sessions`, their
    application_name) are gone: a sentence for its message, and the log line's fields naming every table
    restored completely and every one not."""
    expected = backup.manifest.get("tableRowCounts") or {}
    try:
        with target.connect() as connection:
            connection.autocommit = True
            _wait_for_sessions(connection, sessions)
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


def _wait_for_sessions(connection: psycopg.Connection, name: str) -> None:
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


def _spooled_restore(target: database.Database, blob: storage.Blob, backup: layout.Backup,
                     options: list[str], env: dict[str, str]) -> stream.HashingPipe:
    """Download the dump to a private temporary file, verify it, then `pg_restore OPTIONS FILE` (for -j)."""
    folder = tempfile.gettempdir()
    needed = codec.archive_bytes(backup.manifest)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise _no_room(folder, needed, f"has {free:,} bytes free")
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as spool:
        path = Path(spool) / "backup.dump"
        try:
            with path.open("wb") as file:
                decoder = codec.decoding(codec.of(backup.manifest), file)
                sink = stream.HashingPipe(decoder)
                stream.download(blob, sink)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise _no_room(folder, needed, "filled up while the dump was downloaded") from None
        if not sink.matches(backup.manifest) or codec.broken(decoder):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: sha256, size or frame differs from "
                                                           "the manifest's; nothing was restored")
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
    return sink


def _no_room(folder: str, needed: int, state: str) -> JobError:
    return JobError(ExitCode.USAGE, f"no room to spool the dump for --jobs: {folder} {state}, the dump needs "
                                    f"{needed:,} bytes; free space there, point TMPDIR at a larger folder, or "
                                    "restore with --jobs 1 (it streams and spools nothing); nothing was restored")
