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

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from google.cloud import storage

from backup_job import database, drops, parallel_restore, stream, supabase, tables
from backup_job import storage as layout
from backup_job.errors import ExitCode, JobError, Terminated
from core.contracts import BackupKind

# pg_restore workers of `restore`: 1 streams the dump in one transaction; N > 1 spools it and runs -j N.
DEFAULT_JOBS = 1
TARGET_KINDS = ("auto", "supabase", "postgres")


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
    parallel = backup.manifest.get("mode") == "parallel"
    if request.jobs > 1 or parallel:
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
            sink: parallel_restore.Read | stream.HashingPipe
            if parallel:
                sink = parallel_restore.by_table(target, blob, backup, options_list, env,
                                                 parallel_restore.jobs_for(request.jobs),
                                                 lambda table: not (into_supabase and supabase.managed_without_rows(
                                                     table["schema"], table["name"])))
            elif request.jobs == 1:
                sink = stream.restore_into(target, blob, backup, ["--single-transaction", *options_list],
                                           hold_back=True, env=env)
            else:
                sink = parallel_restore.spooled_restore(target, blob, backup, [f"--jobs={request.jobs}", *options_list],
                                                        env)
        except JobError as exc:
            # A table object gone mid-restore (NOT_FOUND) can only be met once a parallel restore has begun.
            if "PGAPPNAME" in env and not isinstance(exc, drops.Refused) and exc.code in (
                    ExitCode.DUMP_FAILED, ExitCode.TERMINATED, ExitCode.VERIFICATION_MISMATCH,
                    ExitCode.UPLOAD_FAILED, *((ExitCode.NOT_FOUND,) if parallel else ())):
                left, details = parallel_restore.left_behind(target, backup, env["PGAPPNAME"])
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
