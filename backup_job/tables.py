"""Table restores: `restore --table S.T [--table ...]` with `--replace`, `--into-schema` or `--merge-missing`.

Every table restore is one transaction on one connection: the job reads the
SQL that pg_restore writes for exactly the archive entries it selects (by dump
id, backup_job.archive), runs it, streams the tables' rows into COPY, checks
the result and the dump's sha256, and only then commits. A failure, a wrong
checksum, a kill or a SIGTERM at any point leaves the target as it was:
tables, rows, policies and grants alike. Tables are named by identity
(backup_job.catalog): the manifest's catalog records each table's OID, which
the dump's table of contents carries too.

Three ways, for three situations:

- `--into-schema S2` (side by side): each table is created as `S2.<name>`
  with the dump's columns, NOT NULL and key, and filled with the dump's rows
  (a partitioned table's rows from all its partitions, in one table).
  Nothing live is touched; the copy has no triggers, policies or grants of the
  live table, so it is private to the restoring role. Generated columns are
  left out (they are computed from the others).
- `--merge-missing` (the plan's data-deletion procedure): the dump's rows go
  into a temporary table and, in the same transaction, the rows whose key is
  absent from the live table are inserted; rows whose key is present are
  skipped, and so are rows the application writes meanwhile with the same key
  (ON CONFLICT DO NOTHING). It takes no lock beyond an ordinary insert's, so
  the application keeps running. Triggers fire and foreign keys are checked
  as for any insert: merge a row's parent table in the same run. A table
  without a primary key or a unique key over NOT NULL columns is refused.
- `--replace`, for a table that is broken or gone:
  - a table that still exists is restored **in place**: its rows are deleted
    and the dump's copied in (TRUNCATE would need to truncate every table
    that references it), with `session_replication_role = replica` so that
    neither the application's triggers nor ON DELETE CASCADE reach other
    tables. The table keeps its OID, so every view, materialized view and
    foreign key that depends on it keeps working untouched; constraints,
    indexes, triggers and policies of the dump that it lacks are recreated,
    and its defaults, row-level security, grants and comments set again. Then
    every foreign key into or out of it is checked; rows that would reference
    a missing key refuse the restore (exit 11) with nothing changed. Owned
    sequences never move backwards: each is set past the restored rows.
  - a table that is gone is **recreated** from the dump with its partitions,
    sequences, defaults, keys, indexes, triggers, policies, grants and
    comments, and so is every dependant the target lost with it (views,
    materialized views, other tables' foreign keys), where the target lacks it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import archive, database, exact
from backup_job import in_place as place
from backup_job import storage as layout
from backup_job.apply import ArchiveRun, sql_failure
from backup_job.catalog import Catalog, TableName, display
from backup_job.consistency import (
    advance_sequences,
    count,
    drop_reshaped,
    dumped_shape,
    ident,
    only,
    shape,
)
from backup_job.copies import create_copy, merge
from backup_job.errors import ExitCode, JobError, Terminated, terminating
from backup_job.selection import Item, live_relation

LOCK_TIMEOUT_SECONDS = float(os.environ.get("BACKUP_RESTORE_LOCK_TIMEOUT_SECONDS", "60"))
"""How long a table restore waits for another session's lock before it gives up, changing nothing (exit 3)."""


def restore_tables(target: database.Database, blob: storage.Blob, backup: layout.Backup, request) -> dict:
    """Restore `request.tables` of the backup into `target` in one transaction; return the report."""
    data = backup.manifest.get("catalog")
    if not isinstance(data, dict):
        raise JobError(ExitCode.USAGE, f"{backup.object} was taken before backups recorded their catalog, so its "
                                       "tables cannot be named exactly: restore it whole into a scratch database, "
                                       "or pick a newer backup")
    if sum(bool(x) for x in (request.replace, request.into_schema, request.merge_missing)) > 1:
        raise JobError(ExitCode.USAGE, "--replace, --into-schema and --merge-missing are three ways: choose one")
    catalog = Catalog(data)
    items: dict[int, Item] = {}
    for text in request.tables:
        table = catalog.resolve(TableName.parse(text))
        leaves = [t for t in [table, *catalog.partitions(table["oid"])] if t["kind"] == "r"]
        items.setdefault(table["oid"], Item(table, leaves))
    # A partition named with its parent table comes back as part of the parent.
    inside = {p["oid"] for item in items.values() for p in catalog.partitions(item.table["oid"])}
    chosen = [item for oid, item in items.items() if oid not in inside]
    if request.merge_missing:
        keyless = [item.name for item in chosen if not item.table.get("key")]
        if keyless:
            raise JobError(ExitCode.USAGE, f"{', '.join(keyless)} has no primary key or unique key over NOT NULL "
                                           "columns, so rows cannot be matched: --merge-missing refuses it (use "
                                           "--into-schema and compare by hand)")
    if request.into_schema:
        names = [item.table["name"] for item in chosen]
        twice = sorted({display(request.into_schema, n) for n in names if names.count(n) > 1})
        if twice:
            raise JobError(ExitCode.USAGE, f"two tables would both be {', '.join(twice)}: restore them into "
                                           "different --into-schema runs")

    connection = target.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="raptorflow-restore-") as work:
            # The job's own limits: a role's statement_timeout or lock_timeout must not cut a restore short.
            connection.execute("SET statement_timeout = 0")
            # Bounded: a restore queued behind the app's lock would block the app's own queries behind it.
            connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{LOCK_TIMEOUT_SECONDS * 1000:.0f}")))
            connection.execute("SET idle_in_transaction_session_timeout = 0")
            connection.execute("SET client_encoding = 'UTF8'")
            connection.execute("SET xmloption = content")  # as pg_restore's script: XML content that is no document
            connection.execute("SET search_path = pg_catalog")
            run = ArchiveRun(connection, blob, backup, catalog, request, Path(work))
            try:
                report = _execute(run, chosen)
            except psycopg.errors.LockNotAvailable:
                raise JobError(ExitCode.DATABASE_UNREACHABLE, f"another session held a lock on the tables for "
                                                              f"{LOCK_TIMEOUT_SECONDS:g} s (BACKUP_RESTORE_LOCK_TIMEOUT_"
                                                              "SECONDS): nothing was changed; retry when it is "
                                                              "done, or stop the writers") from None
            except psycopg.Error as exc:
                if terminating():  # SIGTERM arrived while a statement ran: the driver reports the cancel
                    raise Terminated() from None
                raise sql_failure("restoring the tables", exc) from None
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return report


def _execute(run: ArchiveRun, chosen: list[Item]) -> dict:
    """The restore of `chosen` in `run`'s transaction, up to its commit; the report."""
    connection, request = run.connection, run.request
    mode = "merge" if request.merge_missing else "into" if request.into_schema else "replace"
    _find_live(connection, chosen, mode, request.replace)
    if mode == "replace":
        for item in chosen:
            if item.live_oid is not None and shape(connection, item.live_oid) != dumped_shape(item.table):
                drop_reshaped(connection, run.catalog, item.table, item.live_oid)
                item.live_oid = None
    recreate = [i for i in chosen if mode == "replace" and i.live_oid is None]
    in_place = [i for i in chosen if mode == "replace" and i.live_oid is not None]
    for item in in_place:
        place.settle(run, item)
    ddl = run.selection.definitions([i.table for i in recreate], [i.table for i in in_place]) if mode == "replace" else []

    quiet: list[sql.Composed] = []
    if mode == "into":
        _create_beside(connection, chosen, request.into_schema)
    elif mode == "merge":
        for number, item in enumerate(chosen):
            item.destination = sql.Identifier(f"raptorflow_merge_{number}")
            connection.execute(create_copy(item.destination, item.table, temporary=True))
    else:
        run.run_sql(ddl, "pre-data")
        exact.restore_lost_defaults(connection, run.catalog, {e.oid for e in ddl if e.catalog[0] == archive.PG_CLASS},
                                    {p["oid"] for i in recreate for p in [i.table, *run.catalog.partitions(i.table["oid"])]})
        quiet = place.quieten(connection, run.catalog, in_place)
        place.empty(connection, in_place)
    pipe = run.load(_deliveries(run, chosen, recreate))
    place.wake(connection, quiet)
    if mode == "replace":
        run.run_sql(ddl, "data")
        run.run_sql(ddl, "post-data")
        place.check_keys(connection, in_place)

    report_tables = [merge(connection, item) if mode == "merge"
                     else _counted(connection, item, request.into_schema, item in recreate) for item in chosen]
    for item, line in zip(chosen, report_tables, strict=True):
        if run.selection.not_recreated.get(item.table["oid"]):
            line["notRecreated"] = run.selection.not_recreated[item.table["oid"]]
    # Last, once every check passed: setval is not undone by a rollback.
    for item in in_place:
        advance_sequences(connection, item.table["schema"], item.table["name"],
                          [c["name"] for c in item.table["columns"]])
    return {"object": run.backup.object, "kind": run.backup.manifest["kind"], "bytes": pipe.size,
            "mode": mode, "tables": len(report_tables), "rows": sum(t.get("rows", 0) for t in report_tables),
            "restored": report_tables}


def _find_live(connection: psycopg.Connection, chosen: list[Item], mode: str, replace: bool) -> None:
    """Each item's table in the target, if it has one; USAGE where the way asked for does not fit."""
    for item in chosen:
        live = live_relation(connection, item.table["schema"], item.table["name"])
        item.live_oid = live[0] if live else None
        if live and live[1] not in ("r", "p"):
            raise JobError(ExitCode.USAGE, f"{item.name} is a {live[1]!r} relation in the target, not a table")
    missing = [item.name for item in chosen if item.live_oid is None]
    if mode == "merge" and missing:
        raise JobError(ExitCode.USAGE, f"{', '.join(missing)} does not exist in the target: --merge-missing adds "
                                       "rows to a live table; use --replace to recreate a table that is gone")
    present = [item.name for item in chosen if item.live_oid is not None]
    if mode == "replace" and not replace and present:
        raise JobError(ExitCode.USAGE, f"the target already has {', '.join(present)}: pass --replace to restore "
                                       "it in place, --merge-missing to add back missing rows, or "
                                       "--into-schema to restore beside it")


def _create_beside(connection: psycopg.Connection, chosen: list[Item], schema: str) -> None:
    """`schema.<table>` for each item, refusing any that exists already."""
    connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    for item in chosen:
        if live_relation(connection, schema, item.table["name"]) is not None:
            raise JobError(ExitCode.USAGE, f"{display(schema, item.table['name'])} already exists: "
                                           "drop it, or choose another --into-schema")
        item.destination = ident(schema, item.table["name"])
        connection.execute(create_copy(item.destination, item.table, temporary=False))


def _deliveries(run: ArchiveRun, chosen: list[Item], recreate: list[Item]):
    """(data entry, destination, dumped relation) of every table's rows, in archive order."""
    deliveries = []
    for item in chosen:
        for leaf in item.leaves:
            entry = run.toc.find("TABLE DATA", leaf["oid"])
            if entry is None and leaf["oid"] not in run.objects:
                continue  # a schema-only backup
            # A recreated table's rows go to each leaf itself (its partitions exist once pre-data ran); the others'
            # to the table, which routes a partition's rows.
            destination = ident(leaf["schema"], leaf["name"]) if item in recreate else item.destination
            assert destination is not None
            deliveries.append((entry, destination, leaf))
    return sorted(deliveries, key=lambda d: run.selection.position[d[0].dump_id] if d[0] else 0)


def _counted(connection: psycopg.Connection, item: Item, into_schema: str | None, recreated: bool) -> dict[str, Any]:
    """The report line of a replaced or side-by-side table, once its rows are the manifest's count."""
    where = ident(into_schema or item.table["schema"], item.table["name"])
    rows = count(connection, where, only(item.table))
    expected = item.expected_rows
    if expected is not None and rows != expected:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{item.name}: {rows} rows restored, the manifest says "
                                                       f"{expected}; nothing was restored")
    line: dict[str, Any] = {"table": item.name, "rows": rows}
    if into_schema:
        line["restoredAs"] = display(into_schema, item.table["name"])
    else:
        line["how"] = "recreated" if recreated else "in place"
    return line
