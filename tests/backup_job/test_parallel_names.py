"""A big table's two names in the parallel mode (backup_job.by_table), for any schema, table and column names
PostgreSQL takes - quotes, dots, spaces, newlines, case, unicode, up to 63 bytes: pg_dump's
`--exclude-table-data` pattern leaves out the rows of exactly that table (never a table whose name differs by
case, or one of the same name in another schema), and psql's COPY reads that same table's rows.

https://www.postgresql.org/docs/15/app-pgdump.html (Patterns: --exclude-table-data)
https://www.postgresql.org/docs/15/app-psql.html#APP-PSQL-PATTERNS
"""

from __future__ import annotations

import subprocess
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from backup_job import archive, by_table
from backup_job.database import Database
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

# Any character PostgreSQL takes in a quoted identifier (no NUL, no lone surrogate), at most 63 bytes in UTF-8.
NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1,
                max_size=24).filter(lambda name: len(name.encode()) <= 63)


@pytest.fixture(scope="module")
def database(postgres) -> str:
    return postgres.create_database(f"names_{uuid.uuid4().hex[:8]}")


def _create(connection: psycopg.Connection, schema: str, table: str, column: str, value: int) -> int:
    connection.execute(sql.SQL("CREATE TABLE {}.{} ({} int)").format(
        sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column)))
    connection.execute(sql.SQL("INSERT INTO {}.{} VALUES ({})").format(  # no parameters: a name may hold a %
        sql.Identifier(schema), sql.Identifier(table), sql.Literal(value)))
    row = connection.execute("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = %s AND c.relname = %s", (schema, table)).fetchone()
    assert row is not None
    return int(row[0])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=NAMES.filter(lambda name: not name.startswith("pg_") and name not in ("public", "information_schema")),
       table=NAMES, column=NAMES)
def test_the_exclusion_pattern_and_the_copy_name_exactly_the_big_table(database, schema, table, column):
    bindir = postgres_bindir()
    assert bindir is not None
    db = Database(database)
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            big = _create(connection, schema, table, column, 1)
            others = {_create(connection, schema, other, column, 2)
                      for other in {table.lower(), table.upper(), table + ".x", "x" + table}
                      if other != table and len(other.encode()) <= 63}
            others.add(_create(connection, "public", table, column, 3))
            pattern = by_table.BigTable(big, schema, table, 0, (column,)).pattern
            dumped = subprocess.run([str(bindir / "pg_dump"), "--format=custom", "--no-password",
                                     f"--exclude-table-data={pattern}"], env=db.child_env(), capture_output=True,
                                    check=True).stdout
            listing = subprocess.run([str(bindir / "pg_restore"), "--list", "--verbose"], input=dumped,
                                     capture_output=True, check=True).stdout.decode()
            with_rows = {e.oid for e in archive.parse_listing(listing).values() if e.kind == "TABLE DATA"}
            assert big not in with_rows, "the big table's rows are left out of the archive"
            assert others <= with_rows, "every other table's rows stay in it"
            statement = by_table.BigTable(big, schema, table, 0, (column,)).copy_statement()
            copied = subprocess.run([str(bindir / "psql"), "-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1",
                                     "-c", statement], env=db.child_env(), capture_output=True, check=True).stdout
            assert copied == b"1\n", "COPY reads the big table itself"
        finally:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            connection.execute(sql.SQL("DROP TABLE IF EXISTS public.{}").format(sql.Identifier(table)))
