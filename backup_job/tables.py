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

import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from google.cloud import storage
from psycopg import sql

from backup_job import archive, database, stream
from backup_job import storage as layout
from backup_job.catalog import Catalog, TableName, display, sql_name
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError

# Entries that belong to a table, followed from its TABLE entry through the archive's dependencies.
OWN_KINDS = frozenset({
    "TABLE ATTACH", "DEFAULT", "CONSTRAINT", "CHECK CONSTRAINT", "FK CONSTRAINT", "INDEX", "INDEX ATTACH", "TRIGGER",
    "POLICY", "ROW SECURITY", "RULE", "SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "ACL", "COMMENT",
    "SECURITY LABEL", "STATISTICS",
})
# What an existing table may lack of its own: not its sequences (they exist with it) nor its partitions.
IN_PLACE_KINDS = OWN_KINDS - {"SEQUENCE", "SEQUENCE OWNED BY", "SEQUENCE SET", "TABLE ATTACH"}
DEPENDANT_KINDS = frozenset({"VIEW", "MATERIALIZED VIEW"})
VIEW_PARTS = frozenset({"MATERIALIZED VIEW DATA", "ACL", "COMMENT", "SECURITY LABEL", "INDEX", "TRIGGER", "RULE"})
# Statements that set, rather than create: run again on a table that has them, they change nothing.
RESTATED_KINDS = frozenset({"DEFAULT", "ROW SECURITY", "ACL", "COMMENT", "SECURITY LABEL"})
NAMED_OBJECT_KINDS = {"CONSTRAINT": "pg_constraint", "CHECK CONSTRAINT": "pg_constraint",
                      "FK CONSTRAINT": "pg_constraint", "TRIGGER": "pg_trigger", "POLICY": "pg_policy",
                      "RULE": "pg_rewrite"}
_LIVE_OBJECT = {
    "pg_constraint": "SELECT 1 FROM pg_constraint o WHERE o.conrelid = %s AND o.conname = %s",
    "pg_trigger": "SELECT 1 FROM pg_trigger o WHERE o.tgrelid = %s AND o.tgname = %s",
    "pg_policy": "SELECT 1 FROM pg_policy o WHERE o.polrelid = %s AND o.polname = %s",
    "pg_rewrite": "SELECT 1 FROM pg_rewrite o WHERE o.ev_class = %s AND o.rulename = %s",
}


@dataclass
class Item:
    """One requested table: what the dump has of it and where its rows go."""

    table: dict[str, Any]
    leaves: list[dict[str, Any]]  # the relations that hold its rows: itself, or its leaf partitions
    live_oid: int | None = None
    destination: sql.Composable | None = None

    @property
    def name(self) -> str:
        return display(self.table["schema"], self.table["name"])

    @property
    def expected_rows(self) -> int | None:
        counts = [leaf.get("rows") for leaf in self.leaves]
        return None if any(c is None for c in counts) else sum(int(c) for c in counts if c is not None)


def _ident(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _copy_columns(relation: dict[str, Any]) -> list[str]:
    """The columns pg_dump's COPY of `relation` lists: all but generated ones, in column order."""
    return [c["name"] for c in relation["columns"] if not c["generated"]]


def _live_relation(connection: psycopg.Connection, schema: str, name: str) -> tuple[int, str] | None:
    row = connection.execute("SELECT c.oid::bigint, c.relkind::text FROM pg_class c JOIN pg_namespace n "
                             "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                             (schema, name)).fetchone()
    return (row[0], row[1]) if row else None


class _Restore:
    """One table restore, in one transaction of `connection`."""

    def __init__(self, connection: psycopg.Connection, blob: storage.Blob, backup: layout.Backup,
                 catalog: Catalog, request, work: Path):
        self.connection, self.blob, self.backup, self.catalog, self.request = connection, blob, backup, catalog, request
        self.work = work
        self.head, listing = stream.read_head(blob)
        self.toc = archive.Toc(archive.parse_listing(listing))
        self.position = {dump_id: i for i, dump_id in enumerate(self.toc.entries)}

    # -- selection --------------------------------------------------------------------------------------------
    def _closure(self, start: Iterable[archive.Entry], kinds: frozenset[str]) -> dict[int, archive.Entry]:
        chosen = {e.dump_id: e for e in start}
        frontier = list(chosen)
        while frontier:
            found = [e for e in self.toc.depending_on(frontier) if e.kind in kinds and e.dump_id not in chosen]
            chosen.update((e.dump_id, e) for e in found)
            frontier = [e.dump_id for e in found]
        return chosen

    def _table_entries(self, item: Item) -> list[archive.Entry]:
        oids = [item.table["oid"], *(p["oid"] for p in self.catalog.partitions(item.table["oid"]))]
        found = [self.toc.find("TABLE", oid) for oid in oids]
        if any(entry is None for entry in found):
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{self.backup.object}: the dump lacks {item.name}, "
                                                           "which its manifest lists")
        return [e for e in found if e is not None]

    def _live_oid(self, dumped_oid: int) -> int | None:
        """The target's OID of the relation the dump had as `dumped_oid` (by its schema and name), if it has one."""
        relation = self.catalog.relations.get(dumped_oid)
        live = relation and _live_relation(self.connection, relation["schema"], relation["name"])
        return live[0] if live else None

    def _exists(self, entry: archive.Entry, recreated: set[int]) -> bool:
        """Whether the target already has the object of `entry` (by the dumped object's schema, table and name)."""
        if entry.kind in NAMED_OBJECT_KINDS:
            obj = self.catalog.objects.get((NAMED_OBJECT_KINDS[entry.kind], entry.oid))
            if obj is None or obj["table"] in recreated:
                return False
            table = self._live_oid(obj["table"])
            query = _LIVE_OBJECT[NAMED_OBJECT_KINDS[entry.kind]]
            return table is not None and self.connection.execute(query, (table, obj["name"])).fetchone() is not None
        return entry.catalog[0] == archive.PG_CLASS and self._live_oid(entry.oid) is not None

    def _tables_present(self, entry: archive.Entry, recreated: set[int]) -> bool:
        """Whether every table `entry` depends on is in the target, or being recreated."""
        tables = [self.toc.entries[d] for d in entry.depends if d in self.toc.entries]
        return all(self._live_oid(t.oid) is not None for t in tables if t.kind == "TABLE" and t.oid not in recreated)

    def ddl_selection(self, recreate: list[Item], in_place: list[Item]) -> list[archive.Entry]:
        """The non-data entries to run: everything of recreated tables and their lost dependants; what in-place
        tables lack; in archive order."""
        recreated = {p["oid"] for item in recreate
                     for p in [item.table, *self.catalog.partitions(item.table["oid"])]}
        chosen: dict[int, archive.Entry] = {}
        for item in recreate:
            own = self._closure(self._table_entries(item), OWN_KINDS)
            views = self._closure(own.values(), DEPENDANT_KINDS | VIEW_PARTS)
            kept_views = set()
            for entry in views.values():
                if entry.kind in DEPENDANT_KINDS and self._exists(entry, recreated):
                    kept_views.add(entry.dump_id)
                    continue
                if entry.kind in NAMED_OBJECT_KINDS and (self._exists(entry, recreated)
                                                         or not self._tables_present(entry, recreated)):
                    continue
                chosen[entry.dump_id] = entry
            # Parts of a view the target still has belong to that view, not to this restore.
            for entry in list(chosen.values()):
                if entry.kind in VIEW_PARTS and any(d in kept_views for d in entry.depends):
                    chosen.pop(entry.dump_id)
        for item in in_place:
            own = self._closure(self._table_entries(item), IN_PLACE_KINDS)
            added: set[int] = set()
            for entry in own.values():
                if entry.kind == "TABLE":
                    continue
                if entry.kind in RESTATED_KINDS:
                    chosen[entry.dump_id] = entry
                elif entry.kind == "INDEX ATTACH":
                    if any(d in added for d in entry.depends):
                        chosen[entry.dump_id] = entry
                elif not self._exists(entry, set()) and self._tables_present(entry, set()):
                    chosen[entry.dump_id] = entry
                    added.add(entry.dump_id)
        return sorted(chosen.values(), key=lambda e: self.position[e.dump_id])

    # -- running ----------------------------------------------------------------------------------------------
    def run_sql(self, entries: list[archive.Entry], section: str) -> None:
        """Run pg_restore's SQL for `entries` of one section in this transaction."""
        if not entries:
            return
        listing = self.work / f"{section}.list"
        listing.write_text(archive.use_list(entries))
        command = [pg_binary("pg_restore"), "--file=-", f"--section={section}", f"--use-list={listing}"]
        if not self.request.keep_owners:
            command.append("--no-owner")
        text = archive.script(archive.run_pg_restore(command, self.head, f"write the {section} SQL"))
        try:
            self.connection.execute(text.encode())  # psycopg runs a script of many statements when given no params
        except psycopg.Error as exc:
            raise _sql_failure(f"restoring the {section} definitions", exc) from None
        self.connection.execute("SET search_path = pg_catalog")

    def load(self, deliveries: list[tuple[archive.Entry, sql.Composable, dict[str, Any]]]) -> stream.HashingPipe:
        """Stream the whole dump once: the rows of `deliveries` (data entry, destination, dumped relation) into
        their destinations; then the sha256 and size of all the bytes read, against the manifest."""
        listing = self.work / "data.list"
        listing.write_text(archive.use_list(entry for entry, _, _ in deliveries))
        run = stream.Restoring([pg_binary("pg_restore"), "--file=-", f"--use-list={listing}"], self.blob,
                               self.backup.manifest, hold_back=False, stdout=subprocess.PIPE)
        assert run.process.stdout is not None  # opened with PIPE
        outcome: JobError | None = None
        count = 0
        try:
            for block in archive.copy_blocks(run.process.stdout):
                if count >= len(deliveries):
                    raise JobError(ExitCode.DUMP_FAILED, "pg_restore wrote more tables' rows than were selected")
                _, destination, relation = deliveries[count]
                count += 1
                columns = sql.SQL(", ").join(sql.Identifier(c) for c in _copy_columns(relation))
                statement = sql.SQL("COPY {} ({}) FROM STDIN").format(destination, columns)
                with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
                    for chunk in block.chunks():
                        copy.write(chunk)
        except psycopg.Error as exc:
            outcome = _sql_failure("loading the rows", exc)
        except JobError as exc:
            outcome = exc
        except BaseException:
            run.stop()  # SIGTERM: stop the download too
            raise
        if outcome is not None:
            run.kill()  # the download goes on: a wrong checksum is the better explanation of a failure
        code = run.wait()
        pipe = run.pipe
        if not pipe.matches(self.backup.manifest):
            raise JobError(ExitCode.VERIFICATION_MISMATCH,
                           f"{self.backup.object}: sha256 {pipe.sha256.hexdigest()} ({pipe.size} bytes) differs from "
                           f"the manifest's {self.backup.manifest['sha256']}; nothing was restored")
        if run.failure is not None:
            raise run.failure
        if outcome is not None:
            raise outcome
        if code != 0:
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {run.errors[-1000:]}; "
                                                 "nothing was restored")
        if count != len(deliveries):
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore wrote the rows of {count} tables of "
                                                 f"{len(deliveries)}; nothing was restored")
        return pipe


def _sql_failure(action: str, exc: psycopg.Error) -> JobError:
    detail = " ".join(str(exc).split())[:500]
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return JobError(ExitCode.DATABASE_UNREACHABLE, f"the target is read-only: {detail}; nothing was restored")
    if isinstance(exc, psycopg.OperationalError):
        return JobError(ExitCode.DATABASE_UNREACHABLE, f"{action}: the target went away: {detail}")
    return JobError(ExitCode.DUMP_FAILED, f"{action}: {detail}; nothing was restored")


def _only(table: dict[str, Any]) -> sql.SQL:
    """`ONLY ` for a plain table: its inheritance children are tables of their own, which a restore never touches;
    a partitioned table's partitions are part of it."""
    return sql.SQL("ONLY ") if table["kind"] == "r" else sql.SQL("")


def _count(connection: psycopg.Connection, relation: sql.Composable, only: sql.SQL | None = None) -> int:
    row = connection.execute(sql.SQL("SELECT count(*) FROM {}{}").format(only or sql.SQL(""), relation)).fetchone()
    assert row is not None  # count(*) always returns one row
    return row[0]


def _foreign_key_violations(connection: psycopg.Connection, oids: list[int]) -> list[str]:
    """Foreign keys into or out of the tables `oids` (and their partitions) that some row now breaks."""
    rows = connection.execute(
        """SELECT o.conname, cn.nspname, c.relname, pn.nspname, p.relname,
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(o.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = o.conrelid AND a.attnum = k.n),
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(o.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = o.confrelid AND a.attnum = k.n)
           FROM pg_constraint o
           JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           JOIN pg_class p ON p.oid = o.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
           WHERE o.contype = 'f' AND o.conparentid = 0
             AND (o.conrelid = ANY(%(oids)s) OR o.confrelid = ANY(%(oids)s)
                  OR o.conrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = ANY(%(oids)s))
                  OR o.confrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = ANY(%(oids)s)))""",
        {"oids": oids}).fetchall()
    broken = []
    for name, child_schema, child, parent_schema, parent, columns, referenced in rows:
        present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in columns)
        match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(ref), sql.Identifier(col))
                                      for col, ref in zip(columns, referenced, strict=True))
        query = sql.SQL("SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
            _ident(child_schema, child), present, _ident(parent_schema, parent), match)
        found = connection.execute(query).fetchone()
        if found and found[0]:
            broken.append(f"{found[0]} row(s) of {display(child_schema, child)} break {name} "
                          f"(references {display(parent_schema, parent)})")
    return broken


def _advance_sequences(connection: psycopg.Connection, schema: str, table: str, columns: list[str]) -> None:
    """Set each sequence owned by a column of the table past its largest value (never backwards)."""
    qualified = sql_name(schema, table)
    for column in columns:
        row = connection.execute("SELECT pg_get_serial_sequence(%s, %s)", (qualified, column)).fetchone()
        if not row or not row[0]:
            continue
        connection.execute(
            sql.SQL("SELECT setval({seq}::regclass, m) FROM (SELECT max({col}) AS m FROM {tbl}) x "
                    "WHERE m > (SELECT last_value FROM {seq_rel})").format(
                seq=sql.Literal(row[0]), col=sql.Identifier(column), tbl=_ident(schema, table),
                seq_rel=sql.SQL(row[0])))


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
            connection.execute("SET lock_timeout = 0")
            connection.execute("SET idle_in_transaction_session_timeout = 0")
            connection.execute("SET client_encoding = 'UTF8'")
            connection.execute("SET search_path = pg_catalog")
            run = _Restore(connection, blob, backup, catalog, request, Path(work))
            try:
                report = _execute(run, chosen)
            except psycopg.Error as exc:
                raise _sql_failure("restoring the tables", exc) from None
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()
    return report


def _execute(run: _Restore, chosen: list[Item]) -> dict:
    connection, request = run.connection, run.request
    for item in chosen:
        live = _live_relation(connection, item.table["schema"], item.table["name"])
        item.live_oid = live[0] if live else None
        if live and live[1] not in ("r", "p"):
            raise JobError(ExitCode.USAGE, f"{item.name} is a {live[1]!r} relation in the target, not a table")
    mode = "merge" if request.merge_missing else "into" if request.into_schema else "replace"
    if mode == "merge":
        missing = [item.name for item in chosen if item.live_oid is None]
        if missing:
            raise JobError(ExitCode.USAGE, f"{', '.join(missing)} does not exist in the target: --merge-missing adds "
                                           "rows to a live table; use --replace to recreate a table that is gone")
    if mode == "replace" and not request.replace:
        present = [item.name for item in chosen if item.live_oid is not None]
        if present:
            raise JobError(ExitCode.USAGE, f"the target already has {', '.join(present)}: pass --replace to restore "
                                           "it in place, --merge-missing to add back missing rows, or "
                                           "--into-schema to restore beside it")
    if mode == "replace":
        for item in chosen:
            if item.live_oid is not None and _shape(connection, item.live_oid) != _dumped_shape(item.table):
                _drop_broken(connection, run.catalog, item)
    recreate = [i for i in chosen if mode == "replace" and i.live_oid is None]
    in_place = [i for i in chosen if mode == "replace" and i.live_oid is not None]
    ddl = run.ddl_selection(recreate, in_place) if mode == "replace" else []

    if mode == "into":
        connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(request.into_schema)))
        for item in chosen:
            if _live_relation(connection, request.into_schema, item.table["name"]) is not None:
                raise JobError(ExitCode.USAGE, f"{display(request.into_schema, item.table['name'])} already exists: "
                                               "drop it, or choose another --into-schema")
            item.destination = _ident(request.into_schema, item.table["name"])
            connection.execute(_create_copy(item.destination, item.table, temporary=False))
    elif mode == "merge":
        for number, item in enumerate(chosen):
            item.destination = sql.Identifier(f"raptorflow_merge_{number}")
            connection.execute(_create_copy(item.destination, item.table, temporary=True))
    else:
        run.run_sql(ddl, "pre-data")
        if in_place:
            try:
                connection.execute("SET LOCAL session_replication_role = replica")
            except psycopg.errors.InsufficientPrivilege:
                raise JobError(ExitCode.USAGE, "restoring a table in place needs a role that may set "
                                               "session_replication_role (a superuser, or Supabase's postgres)") from None
        for item in in_place:
            item.destination = _ident(item.table["schema"], item.table["name"])
            connection.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(item.destination))
            connection.execute(sql.SQL("DELETE FROM {}{}").format(_only(item.table), item.destination))

    deliveries = []
    for item in chosen:
        for leaf in item.leaves:
            entry = run.toc.find("TABLE DATA", leaf["oid"])
            if entry is None:
                continue  # a schema-only backup
            # A recreated table's rows go to each leaf itself (its partitions exist once pre-data ran); the others'
            # to the table, which routes a partition's rows.
            destination = _ident(leaf["schema"], leaf["name"]) if item in recreate else item.destination
            assert destination is not None
            deliveries.append((entry, destination, leaf))
    deliveries.sort(key=lambda d: run.position[d[0].dump_id])
    pipe = run.load(deliveries)

    if mode == "replace":
        run.run_sql(ddl, "data")
        run.run_sql(ddl, "post-data")
        if in_place:
            connection.execute("SET LOCAL session_replication_role = origin")
            broken = _foreign_key_violations(connection, [i.live_oid for i in in_place if i.live_oid])
            if broken:
                raise JobError(ExitCode.RESTORE_REFUSED, f"restoring would break foreign keys: {'; '.join(broken[:5])}"
                                                         "; nothing was changed (restore the referencing tables in "
                                                         "the same run, or use --merge-missing)")
    report_tables = []
    for item in chosen:
        if mode == "merge":
            report_tables.append(_merge(connection, item))
            continue
        where = item.destination if mode == "into" and item.destination else _ident(item.table["schema"],
                                                                                      item.table["name"])
        rows = _count(connection, where, _only(item.table))
        expected = item.expected_rows
        if expected is not None and rows != expected:
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{item.name}: {rows} rows restored, the manifest says "
                                                           f"{expected}; nothing was restored")
        line: dict[str, Any] = {"table": item.name, "rows": rows}
        if mode == "into":
            line["restoredAs"] = display(request.into_schema, item.table["name"])
        else:
            line["how"] = "recreated" if item in recreate else "in place"
        report_tables.append(line)
    # Last, once every check passed: setval is not undone by a rollback.
    for item in in_place:
        _advance_sequences(connection, item.table["schema"], item.table["name"],
                           [c["name"] for c in item.table["columns"]])
    return {"object": run.backup.object, "kind": run.backup.manifest["kind"], "bytes": pipe.size,
            "mode": mode, "tables": len(report_tables), "rows": sum(t.get("rows", 0) for t in report_tables),
            "restored": report_tables}


def _shape(connection: psycopg.Connection, oid: int) -> list[tuple[str, str]]:
    """The live table's columns (name, type as format_type writes it, user types schema-qualified)."""
    return [(name, kind) for name, kind in connection.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()]


def _dumped_shape(table: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["name"], c["type"]) for c in table["columns"]]


def _drop_broken(connection: psycopg.Connection, catalog: Catalog, item: Item) -> None:
    """Drop a live table whose columns are not the dump's, so that it is recreated, with whatever depends on it -
    but only when the dump can recreate every one of those dependants; otherwise refuse (exit 2, naming them)."""
    assert item.live_oid is not None
    dependants = connection.execute(
        """SELECT DISTINCT 'view', vn.nspname, v.relname, NULL::text
           FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
           JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace vn ON vn.oid = v.relnamespace
           WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(oid)s AND r.ev_class <> %(oid)s
           UNION
           SELECT DISTINCT 'foreign key', cn.nspname, c.relname, o.conname
           FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           WHERE o.contype = 'f' AND o.confrelid = %(oid)s AND o.conrelid <> %(oid)s AND o.conparentid = 0""",
        {"oid": item.live_oid}).fetchall()
    dumped_views = {(r["schema"], r["name"]) for r in catalog.relations.values() if r["kind"] in ("v", "m")}
    dumped_keys = {(catalog.relations[o["table"]]["schema"], catalog.relations[o["table"]]["name"], o["name"])
                   for o in catalog.objects.values() if o["catalog"] == "pg_constraint" and o["table"] in catalog.relations}
    unknown = [f"{what} {display(schema, name)}" + (f" {constraint}" if constraint else "")
               for what, schema, name, constraint in dependants
               if ((schema, name) not in dumped_views if what == "view" else (schema, name, constraint) not in dumped_keys)]
    if unknown:
        raise JobError(ExitCode.USAGE, f"{item.name} in the target has other columns than in the backup, so it "
                                       f"would be recreated, but {', '.join(unknown[:5])} depend on it and are not in "
                                       "the backup: nothing was changed (drop or save them first)")
    connection.execute(sql.SQL("DROP TABLE {} CASCADE").format(_ident(item.table["schema"], item.table["name"])))
    item.live_oid = None


def _create_copy(destination: sql.Composable, table: dict[str, Any], temporary: bool) -> sql.Composed:
    """CREATE [TEMP] TABLE with the dump's columns (without generated ones), NOT NULL and key.

    The column types are the manifest's `format_type` text, written by the job that took the dump; a manifest is
    trusted as far as the dump whose sha256 it holds, whose own SQL a restore runs anyway.
    """
    parts = []
    for column in table["columns"]:
        if column["generated"]:
            continue
        if any(ch in column["type"] for ch in ";\x00") or "--" in column["type"]:
            raise JobError(ExitCode.VERIFICATION_MISMATCH, f"the manifest's type of column {column['name']!r} "
                                                           "is not a type name")
        parts.append(sql.SQL("{} {}{}").format(sql.Identifier(column["name"]), sql.SQL(column["type"]),
                                               sql.SQL(" NOT NULL") if column["notNull"] else sql.SQL("")))
    if table.get("key"):
        parts.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(sql.Identifier(k) for k in table["key"])))
    return sql.SQL("CREATE {}TABLE {} ({}){}").format(
        sql.SQL("TEMPORARY ") if temporary else sql.SQL(""), destination, sql.SQL(", ").join(parts),
        sql.SQL(" ON COMMIT DROP") if temporary else sql.SQL(""))


def _merge(connection: psycopg.Connection, item: Item) -> dict[str, Any]:
    """Insert the rows of the restored copy whose key the live table lacks; count what came back and what not."""
    assert item.destination is not None
    columns = [c["name"] for c in item.table["columns"] if not c["generated"]]
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    live = _ident(item.table["schema"], item.table["name"])
    match = sql.SQL(" AND ").join(sql.SQL("l.{k} = r.{k}").format(k=sql.Identifier(k)) for k in item.table["key"])
    identity = any(c["identity"] == "a" for c in item.table["columns"])
    statement = sql.SQL("INSERT INTO {live} ({cols}) {override}SELECT {rcols} FROM {copy} r "
                        "WHERE NOT EXISTS (SELECT 1 FROM {only}{live} l WHERE {match}) ON CONFLICT DO NOTHING").format(
        only=_only(item.table), live=live, cols=column_list, override=sql.SQL("OVERRIDING SYSTEM VALUE ") if identity else sql.SQL(""),
        rcols=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
        copy=item.destination, match=match)
    total = _count(connection, item.destination)
    expected = item.expected_rows
    if expected is not None and total != expected:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{item.name}: {total} rows read, the manifest says "
                                                       f"{expected}; nothing was merged")
    try:
        cursor = connection.execute(statement)
    except psycopg.Error as exc:
        raise _sql_failure(f"merging {item.name}", exc) from None
    brought = cursor.rowcount
    return {"table": item.name, "rows": brought, "restored": brought, "skipped": total - brought,
            "inDump": total}
