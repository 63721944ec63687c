"""A table restored in place: its definition settled to the dump's, its triggers and rules quiet while its rows
are swapped, its rows deleted without reaching other tables, and its foreign keys checked before the commit.

backup_job.tables explains when a table is restored in place and why (it keeps its OID, so everything that
depends on it keeps working); backup_job.exact says what "settled to the dump's" means.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from backup_job import exact
from backup_job.apply import ArchiveRun
from backup_job.catalog import Catalog, display
from backup_job.consistency import foreign_key_violations, ident, only
from backup_job.errors import ExitCode, JobError
from backup_job.selection import Item, live_relation


def settle(run: ArchiveRun, item: Item) -> None:
    """Undo what the table restored in place, and each of its partitions, has otherwise than the dump. A partition
    the target added since the dump refuses the restore (exit 2): the dump's rows would be routed into it."""
    if item.live_oid is not None and item.table["kind"] == "p":
        dumped = {(p["schema"], p["name"]) for p in run.catalog.partitions(item.table["oid"])}
        added = [display(schema, name) for schema, name in run.connection.execute(
            "SELECT n.nspname, c.relname FROM pg_partition_tree(%s) t JOIN pg_class c ON c.oid = t.relid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.level > 0", (item.live_oid,)).fetchall()
            if (schema, name) not in dumped]
        if added:
            raise JobError(ExitCode.USAGE, f"{item.name} has partitions the backup lacks ({', '.join(added[:5])}): "
                                           "the dump's rows would land in them; nothing was changed (detach them, "
                                           "or restore --into-schema)")
    for relation in [item.table, *run.catalog.partitions(item.table["oid"])]:
        live = live_relation(run.connection, relation["schema"], relation["name"])
        if live is not None:
            exact.settle(run.connection, run.catalog, relation, live[0], ident(relation["schema"], relation["name"]))


_STATE = {"O": "ENABLE", "D": "DISABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA"}


def quieten(connection: psycopg.Connection, catalog: Catalog, in_place: list[Item]) -> list[sql.Composed]:
    """Disable the user triggers and rules of the tables restored in place, for the swap of their rows: replica
    mode silences ordinary ones, but one set to fire ALWAYS or in REPLICA mode would rewrite the dump's rows or
    write to other tables. Returns the statements that set each back as it was."""
    wake: list[sql.Composed] = []
    for item in in_place:
        for relation in [item.table, *catalog.partitions(item.table["oid"])]:
            live = live_relation(connection, relation["schema"], relation["name"])
            if live is None:
                continue
            target = ident(relation["schema"], relation["name"])
            for kind, name, state in connection.execute(
                    "SELECT 'TRIGGER', tgname, tgenabled::text FROM pg_trigger WHERE tgrelid = %(oid)s AND NOT tgisinternal "
                    "UNION ALL SELECT 'RULE', rulename, ev_enabled::text FROM pg_rewrite "
                    "WHERE ev_class = %(oid)s AND rulename <> '_RETURN'", {"oid": live[0]}).fetchall():
                what = sql.SQL(kind)
                connection.execute(sql.SQL("ALTER TABLE {} DISABLE {} {}").format(target, what, sql.Identifier(name)))
                wake.append(sql.SQL("ALTER TABLE {} {} {} {}").format(target, sql.SQL(_STATE[state]), what,
                                                                      sql.Identifier(name)))
    return wake


def wake(connection: psycopg.Connection, statements: list[sql.Composed]) -> None:
    """Set the triggers and rules _quieten disabled back as they were."""
    for statement in statements:
        connection.execute(statement)


def empty(connection: psycopg.Connection, in_place: list[Item]) -> None:
    """Delete the rows of the tables restored in place, with the app's triggers and ON DELETE CASCADE off."""
    if in_place:
        try:
            connection.execute("SET LOCAL session_replication_role = replica")
        except psycopg.errors.InsufficientPrivilege:
            raise JobError(ExitCode.USAGE, "restoring a table in place needs a role that may set "
                                           "session_replication_role (a superuser, or Supabase's postgres)") from None
    for item in in_place:
        item.destination = ident(item.table["schema"], item.table["name"])
        connection.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(item.destination))
        connection.execute(sql.SQL("DELETE FROM {}{}").format(only(item.table), item.destination))


def check_keys(connection: psycopg.Connection, in_place: list[Item]) -> None:
    """RESTORE_REFUSED when a foreign key into or out of a table restored in place is now broken."""
    if not in_place:
        return
    connection.execute("SET LOCAL session_replication_role = origin")
    broken = foreign_key_violations(connection, [i.live_oid for i in in_place if i.live_oid])
    if broken:
        raise JobError(ExitCode.RESTORE_REFUSED, f"restoring would break foreign keys: {'; '.join(broken[:5])}"
                                                 "; nothing was changed (restore the referencing tables in "
                                                 "the same run, or use --merge-missing)")
