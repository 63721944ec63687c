"""The schema zoo: a database with the shapes a real Supabase database has, and the ways tests compare one with another.

The zoo: the app's roles with GRANTs, row-level-security policies, foreign keys,
a view and a materialized view over a table, a partitioned table, the same table
name in two schemas, names with spaces, quotes, capitals and dots, a name that
is a prefix of another, identity and serial sequences, a trigger, comments and a
large object. Restores are compared with the source by `pg_dump --schema-only`
(privileges and policies included), per-table content hashes, large objects and
sequence positions.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from unittest import mock

import psycopg

from backup_job.catalog import display
from tests.services import postgres_bindir

ROLES = ("anon", "authenticated", "service_role")
ZOO = """
CREATE SCHEMA app;
CREATE TABLE public.customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, tier text DEFAULT 'free');
CREATE TABLE public.orders (
    id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES public.customers(id),
    total numeric(10,2) NOT NULL DEFAULT 0, note text, placed_at timestamptz NOT NULL DEFAULT '2026-01-01');
CREATE INDEX orders_customer_idx ON public.orders (customer_id);
CREATE TABLE public."orders x" (id int PRIMARY KEY, label text DEFAULT 'x');
CREATE TABLE public."Quote""d Name" (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Value" text);
CREATE TABLE public."a.b" (k text PRIMARY KEY);
CREATE TABLE public.items (id int PRIMARY KEY, name text);
CREATE TABLE app.items (id int PRIMARY KEY, price int);
CREATE TABLE public.audit (at bigserial PRIMARY KEY, what text);
CREATE TABLE public.keyless (v text);
CREATE FUNCTION public.audit_order() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.audit (what) VALUES ('order ' || NEW.id); RETURN NEW; END$$;
CREATE TRIGGER orders_audit AFTER INSERT ON public.orders FOR EACH ROW EXECUTE FUNCTION public.audit_order();
CREATE VIEW public.big_orders AS SELECT id, total FROM public.orders WHERE total > 100;
CREATE MATERIALIZED VIEW public.order_totals AS SELECT customer_id, sum(total) AS total FROM public.orders GROUP BY 1;
CREATE TABLE public.events (id int NOT NULL, at date NOT NULL, body jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE public.orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY orders_own ON public.orders FOR SELECT TO authenticated USING (customer_id > 0);
CREATE POLICY orders_service ON public.orders TO service_role USING (true);
GRANT USAGE ON SCHEMA app TO anon, authenticated;
GRANT SELECT ON public.customers, public.orders, public.big_orders TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO service_role;
GRANT SELECT ON app.items TO anon;
COMMENT ON TABLE public.orders IS 'every order';
COMMENT ON COLUMN public.customers.email IS 'login';
INSERT INTO public.customers SELECT i, 'c' || i || '@example.com', CASE WHEN i % 2 = 0 THEN 'pro' END
  FROM generate_series(1, 300) i;
INSERT INTO public.orders (customer_id, total, note) SELECT 1 + i % 300, i * 0.75, 'o' || i FROM generate_series(1, 2000) i;
INSERT INTO public."orders x" SELECT i, 'x' || i FROM generate_series(1, 50) i;
INSERT INTO public."Quote""d Name" ("Value") SELECT 'v' || i FROM generate_series(1, 40) i;
INSERT INTO public."a.b" VALUES ('one'), ('two');
INSERT INTO public.items SELECT i, 'item ' || i FROM generate_series(1, 30) i;
INSERT INTO app.items SELECT i, i * 10 FROM generate_series(1, 20) i;
INSERT INTO public.keyless VALUES ('a'), ('a'), ('b');
INSERT INTO public.events SELECT i, date '2025-06-01' + i, jsonb_build_object('i', i) FROM generate_series(1, 400) i;
REFRESH MATERIALIZED VIEW public.order_totals;
SELECT lo_from_bytea(0, 'a large object'::bytea);
"""


def scalar(connection: psycopg.Connection, query, params=None):
    """The first column of the one row `query` returns."""
    row = connection.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def ensure_roles(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for role in ROLES:
            connection.execute(psycopg.sql.SQL("DO $$BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object "
                                               "THEN NULL; END$$").format(psycopg.sql.Identifier(role)))


def restore(bucket: str, target: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m backup_job restore --bucket BUCKET ARGS` into `target`: its exit code, stdout and stderr.

    It runs the job's `main` in this process: the same code without a second interpreter loading the client
    libraries for every restore. What only a process shows (exit status, SIGTERM, settings read at start-up) is
    tested through `tests.backup_job.jobs.job`.
    """
    from backup_job.cli import main

    argv = ["restore", "--bucket", bucket, *args]
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"TARGET_DATABASE_URL": target}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # the parser's refusals
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess([sys.executable, "-m", "backup_job", *argv], code, out.getvalue(),
                                       err.getvalue())


def log_of(result: subprocess.CompletedProcess) -> dict:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr
    return json.loads(lines[0])


def schema_of(url: str, *options: str) -> str:
    """pg_dump --schema-only (grants, policies, comments included), normalised: without what differs by run (the
    restrict key, comments, blank lines), and each run of consecutive GRANT lines sorted - pg_dump writes an
    object's grants in the order they were made, and a restore that re-grants one may reorder them."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    env = {**os.environ, "PGPASSWORD": str(params["password"]), "PGHOST": str(params["host"]),
           "PGPORT": str(params["port"]), "PGUSER": str(params["user"]), "PGDATABASE": str(params["dbname"])}
    bindir = postgres_bindir()
    assert bindir is not None
    text = subprocess.run([str(bindir / "pg_dump"), "--schema-only", *options], env=env,
                          capture_output=True, text=True, check=True).stdout
    lines = [line for line in text.splitlines() if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))]
    normalised: list[str] = []
    grants: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("GRANT "):
            grants.append(line)
            continue
        normalised += sorted(grants)
        grants = []
        normalised.append(line)
    return "\n".join(normalised)


def contents(url: str) -> dict[str, str]:
    """Every table's rows as one hash, keyed by its SQL name; large objects and sequence positions too."""
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_%'").fetchall()
        found = {}
        for schema, name in tables:
            query = psycopg.sql.SQL("SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY "
                                    "t::text)), '') FROM ONLY {}.{} t").format(psycopg.sql.Identifier(schema),
                                                                               psycopg.sql.Identifier(name))
            found[display(schema, name)] = scalar(connection, query)
        found["large objects"] = str(scalar(
            connection, "SELECT array_agg(md5(lo_get(oid)) ORDER BY oid) FROM pg_largeobject_metadata"))
        for schema, name, value in connection.execute(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences").fetchall():
            found[f"sequence {display(schema, name)}"] = str(value)
    return found


_RESTORED_ZOO: dict[str, str] = {}
"""The database restored whole from the zoo's backup, by the zoo's bucket: restored once per session (the
restore itself is tested in test_restore_whole), then copied as a template for every test."""


def fresh_copy(postgres, zoo) -> str:
    """A database holding exactly the zoo: a copy of the one restored whole from its backup."""
    _, bucket, _ = zoo
    if bucket not in _RESTORED_ZOO:
        name = f"restored_{uuid.uuid4().hex[:8]}"
        result = restore(bucket, postgres.create_database(name))
        assert result.returncode == 0, result.stdout + result.stderr
        _RESTORED_ZOO[bucket] = name
    return postgres.create_database(f"copy_{uuid.uuid4().hex[:8]}", template=_RESTORED_ZOO[bucket])


def damaged(postgres, zoo, statement: str) -> tuple[str, str, str]:
    """(source URL, bucket, a fresh copy of the zoo after `statement`)."""
    source, bucket, _ = zoo
    target = fresh_copy(postgres, zoo)
    run(target, statement)
    return source, bucket, target


def restored(bucket: str, target: str, *args: str) -> dict:
    """Run a restore that must succeed; its log line."""
    result = restore(bucket, target, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return log_of(result)


def run(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)
