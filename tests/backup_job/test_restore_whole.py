"""Whole restores on the schema zoo (tests.backup_job.zoo) and into a Supabase project, compared with the
source: privileges, policies, comments, large objects and sequences come back; roles the target lacks are named
before anything is written; the check restores the zoo too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, ensure_roles, fresh_copy, log_of, restore, run, schema_of
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
