"""The two ways that leave the live table as it is: a copy beside it, and a merge of the rows it lacks.

`--into-schema` creates the copy as a table of its own; `--merge-missing`
loads the dump's rows into a temporary table (dropped at commit) and inserts
from it the rows whose key the live table lacks.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from backup_job.apply import copy_columns, sql_failure
from backup_job.consistency import count, ident, only
from backup_job.errors import ExitCode, JobError
from backup_job.selection import Item


def create_copy(destination: sql.Composable, table: dict[str, Any], temporary: bool) -> sql.Composed:
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


def merge(connection: psycopg.Connection, item: Item) -> dict[str, Any]:
    """Insert the rows of the restored copy whose key the live table lacks; count what came back and what not."""
    assert item.destination is not None
    columns = copy_columns(item.table)
    column_list = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    live = ident(item.table["schema"], item.table["name"])
    match = sql.SQL(" AND ").join(sql.SQL("l.{k} = r.{k}").format(k=sql.Identifier(k)) for k in item.table["key"])
    identity = any(c["identity"] == "a" for c in item.table["columns"])
    statement = sql.SQL("INSERT INTO {live} ({cols}) {override}SELECT {rcols} FROM {copy} r "
                        "WHERE NOT EXISTS (SELECT 1 FROM {only}{live} l WHERE {match}) ON CONFLICT DO NOTHING").format(
        only=only(item.table), live=live, cols=column_list, override=sql.SQL("OVERRIDING SYSTEM VALUE ") if identity else sql.SQL(""),
        rcols=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns),
        copy=item.destination, match=match)
    total = count(connection, item.destination)
    expected = item.expected_rows
    if expected is not None and total != expected:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{item.name}: {total} rows read, the manifest says "
                                                       f"{expected}; nothing was merged")
    try:
        cursor = connection.execute(statement)
    except psycopg.Error as exc:
        raise sql_failure(f"merging {item.name}", exc) from None
    brought = cursor.rowcount
    return {"table": item.name, "rows": brought, "restored": brought, "skipped": total - brought,
            "inDump": total}

