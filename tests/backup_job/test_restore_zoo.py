"""Every restore command on the schema zoo (tests.backup_job.zoo), compared with the source; every table a restore
did not name is byte-identical before and after it, and after a failed one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backup_job import dump
from backup_job.catalog import TableName, display, sql_name
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.zoo import (
    contents,
    damaged,
    ensure_roles,
    fresh_copy,
    log_of,
    restore,
    restored,
    run,
    scalar,
    schema_of,
)
from tests.services import postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def test_a_full_restore_brings_back_privileges_policies_comments_large_objects_and_sequences(postgres, zoo):
    source, _, _ = zoo
    target = fresh_copy(postgres, zoo)
    assert schema_of(target) == schema_of(source), "schema, grants, policies or comments differ"
    assert contents(target) == contents(source)
    with psycopg.connect(target) as connection:
        grants = connection.execute("SELECT has_table_privilege('authenticated', 'public.orders', 'SELECT'), "
                                    "has_table_privilege('anon', 'public.orders', 'SELECT')").fetchone()
    assert grants == (True, False), "the app's roles keep exactly their grants"


def test_the_check_restores_the_zoo(zoo, postgres):
    _, bucket, manifest = zoo
    scratch = postgres.create_database(f"scratch_{uuid.uuid4().hex[:8]}")
    result = subprocess.run([sys.executable, "-m", "backup_job", "restore-check", "--bucket", bucket,
                             "--object", manifest["object"]], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "SCRATCH_DATABASE_URL": scratch})
    assert result.returncode == 0, result.stdout + result.stderr


def test_roles_the_target_lacks_are_named_before_anything_is_written(postgres, emulator):
    from google.cloud import storage

    source = postgres.create_database(f"roles_{uuid.uuid4().hex[:8]}")
    role = f"gone_{uuid.uuid4().hex[:6]}"
    run(source, f"CREATE ROLE {role} NOLOGIN; CREATE TABLE t (id int); GRANT SELECT ON t TO {role}")
    bucket = storage.Client().create_bucket(f"roles-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(source), dump.BackupRequest(kind="full", bucket=bucket.name))
    run(source, f"DROP TABLE t; DROP ROLE {role}")
    target = postgres.create_database(f"target_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target)
    assert result.returncode == ExitCode.USAGE and role in log_of(result)["message"]
    assert contents(target) == {"large objects": "None"}, "nothing was written"


def test_replace_in_place_restores_rows_and_policies_and_touches_no_other_table(postgres, zoo):
    source, bucket, target = damaged(postgres, zoo, "DELETE FROM public.orders WHERE id % 3 = 0; "
                                     "UPDATE public.orders SET note = 'damaged'; DROP POLICY orders_own ON public.orders; "
                                     "REVOKE SELECT ON public.orders FROM authenticated")
    before = contents(target)
    log = restored(bucket, target, "--table", "public.orders", "--replace")
    assert log["restored"] == [{"table": "public.orders", "rows": 2000, "how": "in place"}]
    after = contents(target)
    assert after["public.orders"] == contents(source)["public.orders"]
    assert {k: v for k, v in after.items() if k != "public.orders"} == \
           {k: v for k, v in before.items() if k != "public.orders"}, "only the named table changed"
    assert schema_of(target) == schema_of(source), "the policy and the grant are back, nothing else changed"
    with psycopg.connect(target) as connection:
        assert scalar(connection, "SELECT count(*) FROM public.big_orders") > 0, "the view still works"
        new = scalar(connection, "INSERT INTO public.orders (customer_id) VALUES (1) RETURNING id")
        assert new > 2000, "the sequence continues past the restored rows"


def test_replace_recreates_a_dropped_table_with_its_dependants(postgres, zoo):
    source, bucket, _ = zoo
    target = fresh_copy(postgres, zoo)
    run(target, "DROP TABLE public.customers CASCADE")  # takes the orders foreign key with it
    run(target, "DROP TABLE public.orders CASCADE")  # and the view, the materialized view
    others = {k: v for k, v in contents(target).items()}
    restored(bucket, target, "--table", "public.orders", "--table", "public.customers", "--replace")
    assert schema_of(target) == schema_of(source), "tables, keys, view, materialized view, grants, policies back"
    after = contents(target)
    source_contents = contents(source)
    for name in ("public.orders", "public.customers", "public.order_totals"):
        assert after[name] == source_contents[name]
    assert {k: v for k, v in after.items() if k in others and not k.startswith("sequence")} == \
           {k: v for k, v in others.items() if not k.startswith("sequence")}


def test_a_partitioned_table_comes_back_with_its_partitions(postgres, zoo):
    source, bucket, target = damaged(postgres, zoo, "DROP TABLE public.events")
    log = restored(bucket, target, "--table", "public.events", "--replace")
    assert log["rows"] == 400
    assert schema_of(target) == schema_of(source)
    assert contents(target) == contents(source)


def test_a_refused_replace_changes_nothing(postgres, zoo):
    """Orders written after the dump reference customers the dump lacks: restoring customers in place would
    orphan them, so the restore refuses and the target is as it was - rows, policies and grants."""
    _, bucket, target = damaged(postgres, zoo, "INSERT INTO public.customers VALUES (9001, 'late@example.com'); "
                "INSERT INTO public.orders (customer_id) VALUES (9001)")
    schema, rows = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", "public.customers", "--replace")
    assert result.returncode == ExitCode.RESTORE_REFUSED, result.stdout + result.stderr
    assert "orders_customer_id_fkey" in log_of(result)["message"]
    assert (schema_of(target), contents(target)) == (schema, rows)


def test_replace_of_a_table_reshaped_by_hand_recreates_it_and_its_dumped_dependants(postgres, zoo):
    # Dropping `total` takes the view and the materialized view that read it: the restore brings all three back.
    source, bucket, target = damaged(postgres, zoo, "ALTER TABLE public.orders DROP COLUMN total CASCADE")
    restored(bucket, target, "--table", "public.orders", "--replace")
    assert schema_of(target) == schema_of(source)
    assert contents(target)["public.orders"] == contents(source)["public.orders"]


def test_a_reshaped_table_with_an_unknown_dependant_is_refused(postgres, zoo):
    _, bucket, target = damaged(postgres, zoo, "ALTER TABLE public.orders DROP COLUMN note CASCADE; "
                "CREATE VIEW public.made_later AS SELECT id FROM public.orders")
    schema, rows = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", "public.orders", "--replace")
    assert result.returncode == ExitCode.USAGE and "made_later" in log_of(result)["message"]
    assert (schema_of(target), contents(target)) == (schema, rows)


def test_into_schema_restores_beside_the_live_tables_from_several_schemas(postgres, zoo):
    source, bucket, _ = zoo
    target = fresh_copy(postgres, zoo)
    before = contents(target)
    result = restore(bucket, target, "--table", "public.customers", "--table", "app.items",
                     "--table", 'public."Quote""d Name"', "--into-schema", "restored")
    assert result.returncode == 0, result.stdout + result.stderr
    after = contents(target)
    assert {k: v for k, v in after.items() if not k.startswith("restored.")} == before, "nothing live changed"
    source_contents = contents(source)
    assert after["restored.customers"] == source_contents["public.customers"]
    assert after["restored.items"] == source_contents["app.items"]
    assert after['restored."Quote""d Name"'] == source_contents['public."Quote""d Name"']
    twice = restore(bucket, target, "--table", "public.items", "--table", "app.items", "--into-schema", "again")
    assert twice.returncode == ExitCode.USAGE and "again.items" in log_of(twice)["message"]
    again = restore(bucket, target, "--table", "public.customers", "--into-schema", "restored")
    assert again.returncode == ExitCode.USAGE and "already exists" in log_of(again)["message"]


def test_merge_missing_brings_back_deleted_rows_and_keeps_new_ones(postgres, zoo):
    source, bucket, target = damaged(postgres, zoo, "DELETE FROM public.orders WHERE id BETWEEN 100 AND 149; "
                "UPDATE public.orders SET note = 'edited since' WHERE id = 10; "
                "INSERT INTO public.orders (customer_id, note) VALUES (1, 'written after the dump')")
    audit_rows = contents(target)["public.audit"]
    others = {k: v for k, v in contents(target).items()
              if k not in ("public.orders", "public.audit", "sequence public.audit_at_seq")}
    log = restored(bucket, target, "--table", "public.orders", "--merge-missing")
    assert log["restored"] == [{"table": "public.orders", "rows": 50, "restored": 50, "skipped": 1950,
                                "inDump": 2000}]
    with psycopg.connect(target) as connection:
        assert scalar(connection, "SELECT count(*) FROM public.orders") == 2001
        assert scalar(connection, "SELECT note FROM public.orders WHERE id = 10") == "edited since"
        back = connection.execute("SELECT id, note FROM public.orders WHERE id BETWEEN 100 AND 149 "
                                  "ORDER BY id").fetchall()
    with psycopg.connect(source) as connection:
        assert back == connection.execute("SELECT id, note FROM public.orders WHERE id BETWEEN 100 AND 149 "
                                              "ORDER BY id").fetchall()
    assert {k: v for k, v in contents(target).items() if k in others} == others
    assert contents(target)["public.audit"].split(":")[0] == str(int(audit_rows.split(":")[0]) + 50), \
        "triggers fire on merged rows, as on any insert: the audit log records the recovery"
    keyless = restore(bucket, target, "--table", "public.keyless", "--merge-missing")
    assert keyless.returncode == ExitCode.USAGE and "no primary key" in log_of(keyless)["message"]


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


def test_into_a_supabase_project_the_managed_schemas_keep_their_definitions_and_get_their_rows(postgres, emulator):
    """A Supabase project already has auth.users (with the project's own trigger that creates a profile): a
    restore leaves those definitions alone, loads every user, and no trigger doubles the profiles."""
    from google.cloud import storage

    auth = """CREATE SCHEMA auth;
        CREATE TABLE auth.users (id uuid PRIMARY KEY, email text);
        CREATE TABLE auth.schema_migrations (version text PRIMARY KEY);
        CREATE TABLE public.profiles (id uuid PRIMARY KEY REFERENCES auth.users(id), name text);
        CREATE FUNCTION public.new_profile() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN INSERT INTO public.profiles VALUES (NEW.id, 'new'); RETURN NEW; END$$;
        CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW
          EXECUTE FUNCTION public.new_profile();"""
    source = postgres.create_database(f"supa_{uuid.uuid4().hex[:8]}")
    ensure_roles(source)
    run(source, auth)
    run(source, """INSERT INTO auth.users SELECT gen_random_uuid(), 'u' || i || '@example.com'
                     FROM generate_series(1, 25) i;
                   UPDATE public.profiles SET name = 'named';
                   INSERT INTO auth.schema_migrations VALUES ('20260101');
                   GRANT SELECT ON public.profiles TO authenticated;""")
    bucket = storage.Client().create_bucket(f"supa-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(source), dump.BackupRequest(kind="full", bucket=bucket.name))

    project = postgres.create_database(f"project_{uuid.uuid4().hex[:8]}")
    run(project, """CREATE SCHEMA auth;
        CREATE TABLE auth.users (id uuid PRIMARY KEY, email text, created_by_the_platform boolean DEFAULT true);
        CREATE TABLE auth.schema_migrations (version text PRIMARY KEY);
        INSERT INTO auth.schema_migrations VALUES ('the project''s own');""")
    result = restore(bucket.name, project, "--target-kind", "auto")
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(project) as connection:
        assert connection.execute("SELECT count(*), count(*) FILTER (WHERE created_by_the_platform) "
                                  "FROM auth.users").fetchone() == (25, 25), "the project's auth.users, with every user"
        assert connection.execute("SELECT count(*), min(name) FROM public.profiles").fetchone() == (25, "named")
        assert connection.execute("SELECT version FROM auth.schema_migrations").fetchall() == [("the project's own",)]
    plain = postgres.create_database(f"plain_{uuid.uuid4().hex[:8]}")
    whole = restore(bucket.name, plain)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert schema_of(plain) == schema_of(source), "into a plain PostgreSQL everything is recreated"


@pytest.mark.parametrize("text, schema, name", [
    ("public.Ärger", "public", "Ärger"), ("Public.ORDERS", "public", "orders"), ('"A"."B"', "A", "B"),
])
def test_unquoted_names_fold_as_postgresql_folds_them_only_a_to_z(text, schema, name):
    assert TableName.parse(text) == TableName(schema, name)
