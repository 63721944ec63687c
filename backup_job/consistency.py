"""What a table restore checks and settles in the target before it commits.

Foreign keys into and out of a table restored in place (they are not enforced
while its rows are swapped), owned sequences past the restored rows, and
whether a live table still has the dump's columns (names, types, identity,
generated expressions) - a table reshaped by hand is recreated, which is allowed only when the dump can recreate everything that
depends on it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from backup_job.catalog import Catalog, display, sql_name
from backup_job.errors import ExitCode, JobError, printable


def ident(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def only(table: dict[str, Any]) -> sql.SQL:
    """`ONLY ` for a plain table: its inheritance children are tables of their own, which a restore never touches;
    a partitioned table's partitions are part of it."""
    return sql.SQL("ONLY ") if table["kind"] == "r" else sql.SQL("")


def count(connection: psycopg.Connection, relation: sql.Composable, only: sql.SQL | None = None) -> int:
    row = connection.execute(sql.SQL("SELECT count(*) FROM {}{}").format(only or sql.SQL(""), relation)).fetchone()
    assert row is not None  # count(*) always returns one row
    return row[0]


def foreign_key_violations(connection: psycopg.Connection, oids: list[int]) -> list[str]:
    """Foreign keys into or out of the tables `oids`, their partitions and the tables they are partitions of, that
    some row now breaks."""
    # A partition's rows are its ancestors' rows too: keys into or out of any of them, or of its own partitions.
    rows = connection.execute(
        """WITH wanted AS (SELECT unnest(%(oids)s::oid[]) AS relid),
           related AS (SELECT relid FROM wanted
                       UNION SELECT t.relid FROM wanted w, pg_partition_tree(w.relid) t
                       UNION SELECT a.relid FROM wanted w, pg_partition_ancestors(w.relid) a)
           SELECT o.conname, cn.nspname, c.relname, pn.nspname, p.relname,
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(o.conkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = o.conrelid AND a.attnum = k.n),
                  (SELECT array_agg(a.attname ORDER BY k.i) FROM unnest(o.confkey) WITH ORDINALITY k(n, i)
                   JOIN pg_attribute a ON a.attrelid = o.confrelid AND a.attnum = k.n)
           FROM pg_constraint o
           JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           JOIN pg_class p ON p.oid = o.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
           WHERE o.contype = 'f' AND o.conparentid = 0
             AND (o.conrelid IN (SELECT relid FROM related) OR o.confrelid IN (SELECT relid FROM related))""",
        {"oids": oids}).fetchall()
    broken = []
    for name, child_schema, child, parent_schema, parent, columns, referenced in rows:
        present = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(col)) for col in columns)
        match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(ref), sql.Identifier(col))
                                      for col, ref in zip(columns, referenced, strict=True))
        query = sql.SQL("SELECT count(*) FROM {} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
            ident(child_schema, child), present, ident(parent_schema, parent), match)
        found = connection.execute(query).fetchone()
        if found and found[0]:
            broken.append(f"{found[0]} row(s) of {display(child_schema, child)} break {name} "
                          f"(references {display(parent_schema, parent)})")
    return broken


def advance_sequences(connection: psycopg.Connection, schema: str, table: str, columns: list[str]) -> None:
    """Set each sequence owned by a column of the table past its largest value (never backwards)."""
    qualified = sql_name(schema, table)
    for column in columns:
        row = connection.execute("SELECT pg_get_serial_sequence(%s, %s)", (qualified, column)).fetchone()
        if not row or not row[0]:
            continue
        connection.execute(
            sql.SQL("SELECT setval({seq}::regclass, m) FROM (SELECT max({col}) AS m FROM {tbl}) x "
                    "WHERE m > (SELECT last_value FROM {seq_rel})").format(
                seq=sql.Literal(row[0]), col=sql.Identifier(column), tbl=ident(schema, table),
                seq_rel=sql.SQL(row[0])))


def shape(connection: psycopg.Connection, oid: int) -> list[tuple[Any, ...]]:
    """The live table's columns as a restore in place cannot change them: name, type (as format_type writes it,
    user types schema-qualified), identity kind, and the expression of a generated column."""
    return [tuple(row) for row in connection.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity::text, "
        "CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)).fetchall()]


def dumped_shape(table: dict[str, Any]) -> list[tuple[Any, ...]]:
    """`shape` as the backup's catalog records the table."""
    return [(c["name"], c["type"], c["identity"], c.get("default") if c["generated"] else None)
            for c in table["columns"]]


# Everything in the target that depends on a table (or on its row type), but for the table's own parts: its
# columns, constraints, defaults, indexes, triggers, policies, rules, row type, TOAST table and owned sequences.
_DEPENDANTS = """
WITH own AS (SELECT %(oid)s::oid AS relid, (SELECT reltype FROM pg_class WHERE oid = %(oid)s) AS rowtype)
SELECT DISTINCT d.classid::regclass::text, d.objid, pg_describe_object(d.classid, d.objid, 0), 0
FROM pg_depend d, own
WHERE ((d.refclassid = 'pg_class'::regclass AND d.refobjid = own.relid)
       OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = own.rowtype))
  AND d.deptype IN ('n', 'a')
  AND NOT (d.classid = 'pg_class'::regclass AND (d.objid IN (SELECT indexrelid FROM pg_index WHERE indrelid = own.relid)
           OR d.objid = (SELECT reltoastrelid FROM pg_class WHERE oid = own.relid) OR d.objid = own.relid
           OR (d.objid IN (SELECT objid FROM pg_depend WHERE refobjid = own.relid AND deptype IN ('a', 'i')
                           AND classid = 'pg_class'::regclass))))
  AND NOT (d.classid = 'pg_type'::regclass AND d.objid = own.rowtype)
  AND NOT (d.classid = 'pg_constraint'::regclass AND d.objid IN (SELECT oid FROM pg_constraint WHERE conrelid = own.relid))
  AND NOT (d.classid = 'pg_attrdef'::regclass AND d.objid IN (SELECT oid FROM pg_attrdef WHERE adrelid = own.relid))
  AND NOT (d.classid = 'pg_trigger'::regclass AND d.objid IN (SELECT oid FROM pg_trigger WHERE tgrelid = own.relid))
  AND NOT (d.classid = 'pg_policy'::regclass AND d.objid IN (SELECT oid FROM pg_policy WHERE polrelid = own.relid))
  AND NOT (d.classid = 'pg_rewrite'::regclass AND d.objid IN (SELECT oid FROM pg_rewrite WHERE ev_class = own.relid))
"""


def drop_reshaped(connection: psycopg.Connection, catalog: Catalog, table: dict[str, Any], live_oid: int) -> None:
    """Drop a live table whose columns are not the dump's, so that it is recreated - but only when nothing else in
    the target depends on it except other tables' foreign keys that the dump recreates. A view, a function, another
    table's column of its row type, anything else that `DROP ... CASCADE` would take along, refuses the restore
    (exit 2, naming them): it may differ from what the dump holds, and the restore never changes what it was not
    asked to."""
    dumped_keys = {(catalog.relations[o["table"]]["schema"], catalog.relations[o["table"]]["name"], o["name"])
                   for o in catalog.objects.values() if o["catalog"] == "pg_constraint" and o["table"] in catalog.relations}
    recreated_keys = {oid for oid, schema, relation, name in connection.execute(
        """SELECT o.oid, cn.nspname, c.relname, o.conname FROM pg_constraint o JOIN pg_class c ON c.oid = o.conrelid
           JOIN pg_namespace cn ON cn.oid = c.relnamespace WHERE o.contype = 'f' AND o.confrelid = %s""",
        (live_oid,)).fetchall() if (schema, relation, name) in dumped_keys}
    unknown = [printable(described) for catalog_name, oid, described, _ in connection.execute(
               _DEPENDANTS, {"oid": live_oid}) if not (catalog_name == "pg_constraint" and oid in recreated_keys)]
    if unknown:
        raise JobError(ExitCode.USAGE, f"{display(table['schema'], table['name'])} in the target has other columns "
                                       f"than in the backup, so it would be recreated, but {'; '.join(sorted(unknown)[:5])} "
                                       "depend on it and would be dropped with it: nothing was changed (restore it "
                                       "--into-schema and move the rows by hand, or drop those first)")
    connection.execute(sql.SQL("DROP TABLE {} CASCADE").format(ident(table["schema"], table["name"])))

