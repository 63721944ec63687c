"""Settling a table restored in place to exactly what the dump defines.

Before the dump's definitions run on a table that is restored in place, what
the live table has of its own and the dump has otherwise is undone, so that
the dump's statements then make it exactly as dumped:

- its constraints, triggers, policies and rules that the dump lacks, or has
  with another definition (catalog.DEFINITIONS, a trigger's enabled state
  included), are dropped - the dump's are then created from the archive;
- so are its indexes that back no constraint and belong to no partitioned
  index, when the dump lacks them or defines them otherwise;
- every grant on it and on its columns is revoked (CASCADE, so grants made
  through a grant option go too) and the owner's own privileges are reset:
  the dump's grants are then made again, so a grant widened since the dump
  is narrowed back, and one narrowed is widened;
- its comments are cleared (the dump's are set again);
- NOT NULL, column defaults and row-level security (enabled, forced) are set
  as the catalog of the backup records them.

All of it runs in the restore's one transaction: a failure leaves the table as
it was.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from backup_job.catalog import DEFINITIONS, Catalog

_DROP = {
    "pg_constraint": "ALTER TABLE {table} DROP CONSTRAINT {name}",
    "pg_trigger": "DROP TRIGGER {name} ON {table}",
    "pg_policy": "DROP POLICY {name} ON {table}",
    "pg_rewrite": "DROP RULE {name} ON {table}",
}
_LIVE_OBJECTS = {
    "pg_constraint": "SELECT o.conname, {} FROM pg_constraint o WHERE o.conrelid = %s",
    "pg_trigger": "SELECT o.tgname, {} FROM pg_trigger o WHERE o.tgrelid = %s AND NOT o.tgisinternal",
    "pg_policy": "SELECT o.polname, {} FROM pg_policy o WHERE o.polrelid = %s",
    "pg_rewrite": "SELECT o.rulename, {} FROM pg_rewrite o WHERE o.ev_class = %s AND o.rulename <> '_RETURN'",
}
# Indexes of a table that stand alone: not the index of a constraint, not a partition of a partitioned index.
_LIVE_INDEXES = """
SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
WHERE x.indrelid = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint o WHERE o.conindid = i.oid AND o.contype IN ('p', 'u', 'x'))
  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.oid)"""
_LIVE_COLUMNS = """
SELECT a.attname, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"""
_LIVE_GRANTS = """
SELECT NULL::name, a.grantee::regrole::text, a.grantee = 0, a.grantee = c.relowner, c.relowner::regrole::text
FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %(oid)s
UNION
SELECT t.attname, a.grantee::regrole::text, a.grantee = 0, false, NULL
FROM pg_attribute t, aclexplode(t.attacl) a WHERE t.attrelid = %(oid)s AND t.attacl IS NOT NULL"""


def settle(connection: psycopg.Connection, catalog: Catalog, table: dict[str, Any], live_oid: int,
           target: sql.Composable) -> None:
    """Undo what the live `table` (`live_oid`, named `target`) has otherwise than the dump (module docstring)."""
    _drop_changed_objects(connection, catalog, table, live_oid, target)
    _drop_changed_indexes(connection, catalog, table, live_oid)
    _reset_grants(connection, live_oid, target)
    _set_columns(connection, table, live_oid, target)
    connection.execute(sql.SQL("COMMENT ON TABLE {} IS NULL").format(target))
    for column in table["columns"]:
        connection.execute(sql.SQL("COMMENT ON COLUMN {}.{} IS NULL").format(target, sql.Identifier(column["name"])))
    if "rowSecurity" in table:
        connection.execute(sql.SQL("ALTER TABLE {} {} ROW LEVEL SECURITY, {} ROW LEVEL SECURITY").format(
            target, sql.SQL("ENABLE" if table["rowSecurity"] else "DISABLE"),
            sql.SQL("FORCE" if table["forceRowSecurity"] else "NO FORCE")))


def _drop_changed_objects(connection: psycopg.Connection, catalog: Catalog, table: dict[str, Any], live_oid: int,
                          target: sql.Composable) -> None:
    dumped = {(o["catalog"], o["name"]): o.get("definition") for o in catalog.objects.values()
              if o["table"] == table["oid"]}
    if any("definition" not in o for o in catalog.objects.values()):
        return  # a backup taken before the catalog recorded definitions: nothing to compare with
    for kind, query in _LIVE_OBJECTS.items():
        for name, definition in connection.execute(query.format(DEFINITIONS[kind]), (live_oid,)).fetchall():
            if definition is None:
                continue  # inherited from a parent table: the parent's definition makes it
            if (kind, name) not in dumped or dumped[(kind, name)] != definition:
                connection.execute(sql.SQL(_DROP[kind]).format(table=target, name=sql.Identifier(name)))


def _drop_changed_indexes(connection: psycopg.Connection, catalog: Catalog, table: dict[str, Any],
                          live_oid: int) -> None:
    dumped = {r["name"]: r.get("definition") for r in catalog.relations.values()
              if r["kind"] in ("i", "I") and r["schema"] == table["schema"]}
    if any(d is None for d in dumped.values()):
        return  # a backup taken before the catalog recorded index definitions
    for name, definition in connection.execute(_LIVE_INDEXES, (live_oid,)).fetchall():
        if dumped.get(name) != definition:
            connection.execute(sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(table["schema"]),
                                                                 sql.Identifier(name)))


def _grantee(name: str, public: bool) -> sql.Composable:
    return sql.SQL("PUBLIC") if public else sql.Identifier(name)


def _reset_grants(connection: psycopg.Connection, live_oid: int, target: sql.Composable) -> None:
    for column, grantee, public, owner, owner_name in connection.execute(_LIVE_GRANTS, {"oid": live_oid}).fetchall():
        if column is not None:
            connection.execute(sql.SQL("REVOKE ALL ({}) ON TABLE {} FROM {} CASCADE").format(
                sql.Identifier(column), target, _grantee(grantee, public)))
        elif owner:
            connection.execute(sql.SQL("GRANT ALL ON TABLE {} TO {}").format(target, sql.Identifier(owner_name)))
        else:
            connection.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {} CASCADE").format(
                target, _grantee(grantee, public)))


def _set_columns(connection: psycopg.Connection, table: dict[str, Any], live_oid: int, target: sql.Composable) -> None:
    live = {name: (not_null, default) for name, not_null, default in
            connection.execute(_LIVE_COLUMNS, (live_oid,)).fetchall()}
    for column in table["columns"]:
        name = sql.Identifier(column["name"])
        not_null, default = live[column["name"]]
        if not_null != column["notNull"]:
            connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} {} NOT NULL").format(
                target, name, sql.SQL("SET" if column["notNull"] else "DROP")))
        if "default" in column and not column["generated"] and not column["identity"] and default != column["default"]:
            if column["default"] is None:
                connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(target, name))
            else:  # the expression as the source server wrote it, from the manifest of the verified backup
                connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                    target, name, sql.SQL(column["default"])))


def restore_lost_defaults(connection: psycopg.Connection, catalog: Catalog, created: set[int],
                          recreated_tables: set[int]) -> None:
    """Give back the column defaults of other tables that used a relation just recreated (`created`, by dumped
    OID) - another table's sequence, say - and that the target lost when it lost that relation."""
    for table in catalog.tables:
        if table["oid"] in recreated_tables:
            continue
        lost = [c for c in table["columns"] if c.get("default") and set(c.get("defaultUses", [])) & created]
        live = lost and connection.execute(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (table["schema"], table["name"])).fetchone()
        if not live:
            continue
        defaults = {name: default for name, _, default in connection.execute(_LIVE_COLUMNS, (live[0],)).fetchall()}
        target = sql.SQL("{}.{}").format(sql.Identifier(table["schema"]), sql.Identifier(table["name"]))
        for column in lost:
            if column["name"] in defaults and defaults[column["name"]] is None:
                connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                    target, sql.Identifier(column["name"]), sql.SQL(column["default"])))
