"""The table names `restore --table` takes: matched exactly (a miss names the close matches), never a table whose
name merely starts with another's, folded as PostgreSQL folds unquoted names; any name - spaces, quotes, dots,
unicode - reads back as itself and restores exactly.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_job import dump
from backup_job.catalog import TableName, display, sql_name
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, fresh_copy, log_of, restore, restored, run, scalar
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


@pytest.mark.parametrize("name, close", [
    ("public.order", "public.orders"), ("orders_x", 'public."orders x"'), ("items", "app.items"),
])
def test_names_are_matched_exactly_and_misses_name_close_matches(postgres, zoo, name, close):
    _, bucket, _ = zoo
    target = fresh_copy(postgres, zoo)
    rows = contents(target)
    result = restore(bucket, target, "--table", name, "--replace")
    assert result.returncode == ExitCode.USAGE and close in log_of(result)["message"]
    assert contents(target) == rows


def test_a_table_whose_name_starts_with_another_is_never_taken_for_it(postgres, zoo):
    source, bucket, _ = zoo
    target = fresh_copy(postgres, zoo)
    run(target, 'DELETE FROM public."orders x"; DELETE FROM public.orders WHERE id < 10')
    restored(bucket, target, "--table", 'public."orders x"', "--replace")
    after = contents(target)
    assert after['public."orders x"'] == contents(source)['public."orders x"']
    assert after["public.orders"] != contents(source)["public.orders"], "public.orders was not restored"


@given(schema=st.text(min_size=1, max_size=12), name=st.text(min_size=1, max_size=12))
def test_every_name_reads_back_as_itself_and_displays_on_one_line(schema, name):
    """The SQL name of any table is what --table takes back; its display never holds a control character."""
    assert TableName.parse(sql_name(schema, name)) == TableName(schema, name)
    assert display(schema, name).isprintable()


@pytest.mark.parametrize("text, schema, name", [
    ("public.Ärger", "public", "Ärger"), ("Public.ORDERS", "public", "orders"), ('"A"."B"', "A", "B"),
])
def test_unquoted_names_fold_as_postgresql_folds_them_only_a_to_z(text, schema, name):
    assert TableName.parse(text) == TableName(schema, name)


_identifier = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda s: "\x00" not in s and len(s.encode()) < 60)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=_identifier, name=_identifier)
def test_generated_names_restore_exactly_beside_their_prefixes(postgres, emulator, schema, name):
    """Any schema and table name - spaces, quotes, dots, unicode - with a table whose name extends it beside it:
    --replace restores the named table and only it."""
    from google.cloud import storage

    source = postgres.create_database(f"gen_{uuid.uuid4().hex[:8]}")
    ident = psycopg.sql.Identifier
    with psycopg.connect(source, autocommit=True) as connection:
        connection.execute(psycopg.sql.SQL("CREATE SCHEMA {}").format(ident(schema)))
        for table, rows in ((name, 7), (name + " x", 3), (name + ".y", 2)):
            connection.execute(psycopg.sql.SQL("CREATE TABLE {}.{} (id int PRIMARY KEY)").format(ident(schema),
                                                                                              ident(table)))
            connection.execute(psycopg.sql.SQL("INSERT INTO {}.{} SELECT generate_series(1, {})").format(
                ident(schema), ident(table), psycopg.sql.Literal(rows)))
    bucket = storage.Client().create_bucket(f"gen-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(source), dump.BackupRequest(kind="full", bucket=bucket.name))
    with psycopg.connect(source, autocommit=True) as connection:
        for table in (name, name + " x", name + ".y"):
            connection.execute(psycopg.sql.SQL("DELETE FROM {}.{} WHERE id > 1").format(ident(schema), ident(table)))
    result = restore(bucket.name, source, "--table", sql_name(schema, name), "--replace")
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(source) as connection:
        counts = [scalar(connection, psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(ident(schema), ident(t)))
                  for t in (name, name + " x", name + ".y")]
    assert counts == [7, 1, 1]
