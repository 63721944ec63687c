"""`restore-check`: prove a backup restores - checksum, pg_restore into a scratch database, row counts;
and `restore`: put a verified backup (whole, or some tables) into a database someone keeps.

Both stream the dump from the bucket into pg_restore while hashing it
(backup_job.stream), so neither needs the dump's size in memory nor on disk
(Cloud Run's disk is memory).

The check restores into a database it creates for the purpose, marks with a
comment and drops on every way out, so nothing of a restored - or tampered -
dump stays, the check repeats forever, and even a production URL given by
mistake is never written to. A checksum that differs from the manifest fails
the check whatever pg_restore made of the bytes.

A whole-database `restore` writes a database someone keeps, so it runs
pg_restore as one transaction (`--single-transaction`) and holds the dump's
last chunk back until the whole dump's sha256 and size match the manifest:
pg_restore cannot reach its COMMIT before it has read the last byte, so a
tampered or truncated dump is rolled back and never reaches the target. With
`--jobs N` (N > 1) it spools the dump to a private temporary file instead,
verifies it, and runs pg_restore with N workers (a spooled archive allows -j;
stdin does not); on failure it reports which of the dump's tables the target
then holds.

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
  migration does; see MANAGED_SCHEMAS.

Table restores (`--table`) are backup_job.tables.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import archive, database, stream, tables
from backup_job import storage as layout
from backup_job.catalog import Catalog
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError

THROWAWAY_PREFIX = "raptorflow_restore_check_"
# <prefix><UTC %Y%m%dT%H%M%S>_<pid>_<8 hex>: the check creates only names of this shape, with THROWAWAY_MARK as the
# database's comment, and drops only databases that have both.
_THROWAWAY_NAME = re.compile(rf"^{THROWAWAY_PREFIX}(\d{{8}}T\d{{6}})_\d+_[0-9a-f]{{8}}$")
THROWAWAY_MARK = "raptorflow-dr restore-check scratch database: dropped by the check that made it"
# pg_restore workers of `restore`: 1 streams the dump in one transaction; N > 1 spools it and runs -j N.
DEFAULT_JOBS = 1
# A throwaway database older than the longest a run may last (Cloud Run's 24 h task limit) was left by a killed run.
STALE_AFTER = timedelta(hours=24)

# Schemas a Supabase project creates and manages itself (the Supabase CLI's `InternalSchemas`, which
# `supabase db dump` leaves out of a schema dump): into a Supabase project their definitions are never recreated.
MANAGED_SCHEMAS = (
    "auth", "extensions", "pgbouncer", "realtime", "_realtime", "storage", "_analytics", "supabase_functions",
    "supabase_migrations", "cron", "dbdev", "graphql", "graphql_public", "net", "pgsodium", "pgsodium_masks",
    "pgtle", "repack", "tiger", "tiger_data", "topology", "vault", "_supavisor", "pgmq",
)
# Of those, the schemas and tables whose rows stay the project's own (what `supabase db dump --data-only`
# excludes): platform state and migration history. The rows of the others (auth, storage, ...) are restored.
MANAGED_WITHOUT_DATA = ("extensions", "pgbouncer", "realtime", "_realtime", "cron", "dbdev", "graphql",
                        "graphql_public", "net", "pgsodium", "pgsodium_masks", "pgtle", "repack", "tiger",
                        "tiger_data", "topology", "vault", "pgmq")
MANAGED_TABLES_WITHOUT_DATA = (("auth", "schema_migrations"), ("storage", "migrations"),
                               ("supabase_functions", "migrations"))
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


def run_restore_check(
    scratch: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = "full",
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest valid backup (or `object_name`) into a database of its own; return a report.

    The scratch URL's role creates `raptorflow_restore_check_<UTC time>_<pid>_<random>`, marks it, restores and
    counts there, and the database is dropped on every way out - so the check runs again and again, a tampered
    dump never reaches a database anyone keeps, and the scratch URL's own database is never written.
    """
    backup, blob = stream.pick(gcs, bucket_name, prefix, object_name, kind)
    admin = scratch.connect()
    admin.autocommit = True
    try:
        _drop_stale(admin)
        _require_roles(admin, backup, keep_owners=False)
        target = (f"{THROWAWAY_PREFIX}{layout.utc_now().strftime('%Y%m%dT%H%M%S')}_{os.getpid()}_"
                  f"{secrets.token_hex(4)}")
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
        except psycopg.errors.InsufficientPrivilege:
            raise JobError(ExitCode.USAGE, "the scratch URL's role may not create databases: restore-check "
                                           "restores into a database of its own and drops it (grant CREATEDB)") from None
        try:
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(target),
                                                                         sql.Literal(THROWAWAY_MARK)))
            pipe = _stream_restore(scratch.with_database(target), blob, backup, ["--no-owner"], hold_back=False)
            with scratch.with_database(target).connect() as connection:
                restored = database.row_counts(connection)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target)))
    finally:
        admin.close()
    compare_counts(backup, restored)
    return {"object": backup.object, "kind": backup.manifest["kind"], "bytes": pipe.size,
            "sha256": pipe.sha256.hexdigest(), "tables": len(restored), "rows": sum(restored.values())}


def _drop_stale(admin: psycopg.Connection) -> None:
    """Drop throwaway databases that a killed run left behind (older than any run may last): only those whose
    name has the check's exact shape and whose comment is the check's mark."""
    cutoff = (layout.utc_now() - STALE_AFTER).strftime("%Y%m%dT%H%M%S")
    rows = admin.execute("SELECT d.datname, shobj_description(d.oid, 'pg_database') FROM pg_database d "
                         "WHERE d.datname LIKE %s", (THROWAWAY_PREFIX.replace("_", "\\_") + "%",)).fetchall()
    for name, comment in rows:
        match = _THROWAWAY_NAME.match(name)
        if match and comment == THROWAWAY_MARK and match[1] < cutoff:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _require_roles(connection: psycopg.Connection, backup: layout.Backup, keep_owners: bool) -> None:
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


def _stream_restore(target: database.Database, blob: storage.Blob, backup: layout.Backup, options: list[str],
                    hold_back: bool, env: dict[str, str] | None = None) -> stream.HashingPipe:
    """Download the dump into `pg_restore OPTIONS` (reading stdin) into `target`; verify checksum and size.

    Raises VERIFICATION_MISMATCH when the bytes are not the manifest's (then, with `hold_back`, pg_restore never
    got the last chunk and is stopped before its COMMIT), DUMP_FAILED when pg_restore fails.
    """
    manifest = backup.manifest
    # pg_restore needs -d; the name is the database's (nothing secret), the rest comes as PG* variables.
    command = [pg_binary("pg_restore"), "--exit-on-error", "--no-password", f"--dbname={target.params['dbname']}",
               *options]
    run = stream.Restoring(command, blob, manifest, hold_back, env={**target.child_env(), **(env or {})})
    code = run.wait()
    if run.failure is not None:
        raise run.failure
    if not run.verified:
        raise JobError(
            ExitCode.VERIFICATION_MISMATCH,
            f"{backup.object}: sha256 {run.pipe.sha256.hexdigest()} ({run.pipe.size} bytes) differs from the "
            f"manifest's {manifest['sha256']} ({manifest['sizeBytes']} bytes)"
            + ("; nothing was restored" if hold_back else ""),
        )
    if code != 0:
        detail = target.scrub(run.errors)
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {detail[-2000:]}")
    return run.pipe


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


def is_supabase(connection: psycopg.Connection, target_kind: str) -> bool:
    """Whether the target is a Supabase project: as told, or (`auto`) when it has the table `auth.users`, which
    every Supabase project has and a plain PostgreSQL has not until something creates it."""
    if target_kind != "auto":
        return target_kind == "supabase"
    row = connection.execute("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _managed_list(blob: storage.Blob, backup: layout.Backup) -> str:
    """A --use-list of the dump without the definitions of Supabase's managed schemas, keeping their rows."""
    head, listing = stream.read_head(blob)
    toc = archive.Toc(archive.parse_listing(listing))

    def selected(*selectors: str) -> set[int]:
        # pg_restore's --schema and --table select by the entry's namespace and name, compared exactly.
        found = archive.run_pg_restore([pg_binary("pg_restore"), "--list", *selectors], head, "list entries")
        return set(archive.parse_listing(found.decode(errors="replace")))

    managed = selected(*(f"--schema={name}" for name in MANAGED_SCHEMAS))
    no_data = selected(*(f"--schema={name}" for name in MANAGED_WITHOUT_DATA))
    for schema, table in MANAGED_TABLES_WITHOUT_DATA:
        no_data |= selected(f"--schema={schema}", f"--table={table}")
    names = _schema_names(toc, head, backup)
    skipped = {d for d in managed if toc.entries[d].kind not in ("TABLE DATA", "SEQUENCE SET") or d in no_data}
    skipped |= {d for d, name in names.items() if name in MANAGED_SCHEMAS}
    # A comment, grant or label of a skipped definition is the project's too.
    skipped |= {e.dump_id for e in toc.depending_on(skipped) if e.kind in ("ACL", "COMMENT", "SECURITY LABEL")}
    return archive.use_list(e for e in toc.entries.values() if e.dump_id not in skipped)


def _schema_names(toc: archive.Toc, head: bytes, backup: layout.Backup) -> dict[int, str]:
    """The names of the dump's SCHEMA entries by dump id: from the manifest's catalog by OID, or, for a backup
    from before catalogs, from pg_restore's own `CREATE SCHEMA` statements, one per entry in archive order."""
    entries = toc.of_kind("SCHEMA")
    if isinstance(backup.manifest.get("catalog"), dict):
        schemas = Catalog(backup.manifest["catalog"]).schemas
        return {e.dump_id: schemas[e.oid] for e in entries if e.oid in schemas}
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as work:
        listing = Path(work) / "schemas.list"
        listing.write_text(archive.use_list(entries))
        text = archive.script(archive.run_pg_restore(
            [pg_binary("pg_restore"), "--file=-", f"--use-list={listing}"], head, "read the schema entries"))
    names = [n[1:-1].replace('""', '"') if n.startswith('"') else n
             for n in re.findall(r'^CREATE SCHEMA ("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*);$', text, re.M)]
    return {e.dump_id: name for e, name in zip(entries, names, strict=False)} if len(names) == len(entries) else {}


def run_restore(
    target: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = "full",
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
    backup, blob = stream.pick(gcs, bucket_name, prefix, object_name, kind)
    if request.tables:
        return tables.restore_tables(target, blob, backup, request)

    with target.connect() as connection:
        _require_roles(connection, backup, request.keep_owners)
        supabase = is_supabase(connection, request.target_kind)
        existing = database.table_rows(connection)
    expected = backup.manifest.get("tableRowCounts") or {}
    # A Supabase project's managed tables are the project's: their rows are added to, never a clash.
    clash = sorted(f"{schema}.{table}" for _, schema, table, _ in existing
                   if (f"{schema}.{table}" in expected or not expected)
                   and not (supabase and schema in MANAGED_SCHEMAS))
    if clash and not request.replace:
        raise JobError(ExitCode.USAGE, f"the target already has {len(clash)} of the tables to restore "
                                       f"({', '.join(clash[:5])}); pass --replace to drop and restore them")
    options_list = ["--clean", "--if-exists"] if request.replace else []
    if not request.keep_owners:
        options_list.append("--no-owner")
    env: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as work:
        if supabase:
            selection = Path(work) / "selection.list"
            selection.write_text(_managed_list(blob, backup))
            options_list.append(f"--use-list={selection}")
            options_text = target.params.get("options", "")
            env["PGOPTIONS"] = f"{options_text} -c session_replication_role=replica".strip()
        try:
            if request.jobs == 1:
                sink = _stream_restore(target, blob, backup, ["--single-transaction", *options_list],
                                       hold_back=True, env=env)
            else:
                sink = _spooled_restore(target, blob, backup, [f"--jobs={request.jobs}", *options_list], env)
        except JobError as exc:
            if request.jobs > 1 and exc.code == ExitCode.DUMP_FAILED:
                raise JobError(exc.code, f"{exc}; {_left_behind(target, backup)}") from None
            raise
    with target.connect() as connection:
        restored = database.row_counts(connection)
    selected = {t: n for t, n in restored.items() if t in expected}
    compare_counts(backup, selected, set(selected))
    return {"object": backup.object, "kind": backup.manifest["kind"], "bytes": sink.size, "tables": len(selected),
            "rows": sum(selected.values()), "rowCounts": selected}


def _left_behind(target: database.Database, backup: layout.Backup) -> str:
    """What a failed parallel restore left in the target, for its error message."""
    expected = backup.manifest.get("tableRowCounts") or {}
    try:
        with target.connect() as connection:
            present = database.row_counts(connection)
    except JobError:
        return "the target could not be read to say what it now holds"
    complete = sorted(t for t in expected if present.get(t) == expected[t])
    partial = sorted(t for t in expected if t in present and present[t] != expected[t])
    missing = sorted(t for t in expected if t not in present)
    return (f"the target now holds {len(complete)} of the {len(expected)} tables complete, {len(partial)} partly "
            f"({', '.join(partial[:5]) or 'none'}) and lacks {len(missing)} ({', '.join(missing[:5]) or 'none'}): "
            "a parallel restore is not one transaction, so restore again with --replace")


def _spooled_restore(target: database.Database, blob: storage.Blob, backup: layout.Backup,
                     options: list[str], env: dict[str, str]) -> stream.HashingPipe:
    """Download the dump to a private temporary file, verify it, then `pg_restore OPTIONS FILE` (for -j)."""
    with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as spool:
        path = Path(spool) / "backup.dump"
        with path.open("wb") as file:
            sink = stream.HashingPipe(file)
            stream.download(blob, sink)
        if not sink.matches(backup.manifest):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object}: sha256 or size differs from the "
                                                           "manifest; nothing was restored")
        command = [pg_binary("pg_restore"), "--exit-on-error", "--no-password",
                   f"--dbname={target.params['dbname']}", *options, str(path)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   env={**target.child_env(), **env})
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
