"""`restore --table ... --replace` leaves the table exactly as the dump had it, or changes nothing.

Each case damages a copy of a database the way people and migrations do - a
constraint loosened, a grant widened, a policy added, RLS switched, an
identity dropped - and restores the table in place; the target's schema dump
(grants and policies included) and rows must then equal the source's. The
refusals must leave rows, schema and sequence positions as they were.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from backup_job import dump
from backup_job.catalog import read_catalog
from backup_job.database import Database
from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, damaged, ensure_roles, log_of, restore, restored, run, scalar, schema_of
from tests.services import postgres_bindir
from tools.offline import ROOT

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")

NEIGHBOURS = """
CREATE TABLE public.a (id serial PRIMARY KEY, label text);
CREATE TABLE public.b (id int PRIMARY KEY, ticket int NOT NULL DEFAULT nextval('public.a_id_seq'));
CREATE TABLE public.c (id int PRIMARY KEY, a_id int REFERENCES public.a);
CREATE VIEW public.a_with_b AS SELECT a.id, a.label, b.ticket FROM public.a JOIN public.b USING (id);
CREATE TABLE public.parent (id int PRIMARY KEY, v text);
CREATE TABLE public.child (extra text) INHERITS (public.parent);
CREATE TABLE Ärger (id int PRIMARY KEY);
INSERT INTO public.a (label) SELECT 'a' || i FROM generate_series(1, 20) i;
INSERT INTO public.b (id) SELECT i FROM generate_series(1, 10) i;
INSERT INTO public.c SELECT i, i FROM generate_series(1, 5) i;
INSERT INTO public.parent SELECT i, 'p' || i FROM generate_series(1, 10) i;
INSERT INTO public.child SELECT i, 'c' || i, 'x' FROM generate_series(11, 15) i;
INSERT INTO Ärger SELECT generate_series(1, 3);
"""


@pytest.fixture(scope="module")
def neighbours(postgres, emulator):
    """A database whose tables lean on each other (a shared sequence, a view over two tables, inheritance) and one
    full backup of it: (source URL, bucket name)."""
    from google.cloud import storage

    url = postgres.create_database(f"neighbours_{uuid.uuid4().hex[:8]}")
    run(url, NEIGHBOURS)
    bucket = storage.Client().create_bucket(f"neighbours-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name))
    return url, bucket.name


def copy_of(postgres, neighbours, statement: str = "") -> str:
    """A target restored whole from the neighbours' backup, then damaged by `statement`."""
    _, bucket = neighbours
    target = postgres.create_database(f"copy_{uuid.uuid4().hex[:8]}")
    restored(bucket, target)
    if statement:
        run(target, statement)
    return target


# Damages grouped by what they touch; each group is undone by one in-place restore of its table.
@pytest.mark.parametrize("damage", [
    pytest.param("ALTER TABLE public.orders ALTER COLUMN total DROP NOT NULL; "
                 "ALTER TABLE public.orders ALTER COLUMN note SET NOT NULL; "
                 "ALTER TABLE public.orders ALTER COLUMN total SET DEFAULT 42", id="columns"),
    pytest.param("ALTER TABLE public.orders ADD CONSTRAINT total_positive CHECK (total >= 0); "
                 "ALTER TABLE public.orders DISABLE TRIGGER orders_audit; "
                 "DROP INDEX public.orders_customer_idx; CREATE INDEX orders_customer_idx ON public.orders (note); "
                 "ALTER TABLE public.orders FORCE ROW LEVEL SECURITY", id="constraints-triggers-indexes-rls-forced"),
    pytest.param("CREATE POLICY everyone ON public.orders FOR SELECT TO anon USING (true); "
                 "DROP POLICY orders_own ON public.orders; CREATE POLICY orders_own ON public.orders FOR SELECT "
                 "TO authenticated, anon USING (true); "
                 "GRANT ALL ON public.orders TO anon; GRANT UPDATE (note) ON public.orders TO authenticated; "
                 "REVOKE ALL ON public.orders FROM service_role; REVOKE INSERT ON public.orders FROM CURRENT_USER",
                 id="policies-and-grants"),
    pytest.param("ALTER TABLE public.orders DISABLE ROW LEVEL SECURITY", id="rls-disabled"),
    pytest.param('ALTER TABLE public."Quote""d Name" ALTER COLUMN id DROP IDENTITY', id="identity-dropped"),
])
def test_replace_brings_a_table_back_exactly_as_dumped(postgres, zoo, damage):
    source, bucket, target = damaged(postgres, zoo, damage)
    table = 'public."Quote""d Name"' if "Quote" in damage else "public.orders"
    others = {k: v for k, v in contents(target).items() if not k.startswith(("public.", "sequence public."))}
    restored(bucket, target, "--table", table, "--replace")
    assert schema_of(target) == schema_of(source), f"{damage!r} survived the restore"
    after, expected = contents(target), contents(source)
    assert after[table] == expected[table]
    assert {k: v for k, v in after.items() if k in others} == others


def test_an_in_place_restore_of_one_partition_checks_keys_that_reference_its_parent(postgres, zoo):
    _, bucket, target = damaged(postgres, zoo, """
        CREATE TABLE public.event_refs (id int, at date, FOREIGN KEY (id, at) REFERENCES public.events);
        INSERT INTO public.events VALUES (5000, '2025-07-01', '{}');
        INSERT INTO public.event_refs VALUES (5000, '2025-07-01')""")
    schema, rows = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", "public.events_2025", "--replace")
    assert result.returncode == ExitCode.RESTORE_REFUSED, result.stdout + result.stderr
    assert "event_refs" in log_of(result)["message"]
    assert (schema_of(target), contents(target)) == (schema, rows)


def test_a_dependant_view_that_needs_a_table_the_target_lacks_is_named_not_fatal(postgres, neighbours):
    source, bucket = neighbours
    target = copy_of(postgres, neighbours, "DROP TABLE public.a CASCADE; DROP TABLE public.b")
    log = restored(bucket, target, "--table", "public.a", "--replace")
    assert log["restored"] == [{"table": "public.a", "rows": 20, "how": "recreated",
                                "notRecreated": ["view public.a_with_b (needs public.b)"]}]
    assert contents(target)["public.a"] == contents(source)["public.a"]
    with psycopg.connect(target) as connection:
        assert scalar(connection, "SELECT to_regclass('public.a_with_b')") is None


def test_a_recreated_table_gives_back_the_default_another_table_took_from_its_sequence(postgres, neighbours):
    source, bucket = neighbours
    target = copy_of(postgres, neighbours, "DROP TABLE public.a CASCADE")  # drops a_id_seq and b.ticket's default
    restored(bucket, target, "--table", "public.a", "--replace")
    assert schema_of(target) == schema_of(source)
    with psycopg.connect(target) as connection:
        assert scalar(connection, "INSERT INTO public.b (id) VALUES (99) RETURNING ticket") > 20


def test_an_in_place_restore_of_a_parent_never_touches_its_inheritance_children(postgres, neighbours):
    source, bucket = neighbours
    target = copy_of(postgres, neighbours, "DELETE FROM ONLY public.parent WHERE id < 5; "
                                           "INSERT INTO public.child VALUES (16, 'new', 'y'); UPDATE public.child SET v = 'edited'")
    child = contents(target)["public.child"]
    log = restored(bucket, target, "--table", "public.parent", "--replace")
    assert log["restored"] == [{"table": "public.parent", "rows": 10, "how": "in place"}]
    after = contents(target)
    assert after["public.parent"] == contents(source)["public.parent"], "the parent's own rows are the dump's"
    assert after["public.child"] == child, "the child's rows are untouched"


def test_a_refused_restore_moves_no_sequence(postgres, neighbours):
    _, bucket = neighbours
    target = copy_of(postgres, neighbours, "INSERT INTO public.a VALUES (500, 'late'); "
                                           "INSERT INTO public.c VALUES (500, 500); SELECT setval('public.a_id_seq', 1)")
    before = contents(target)
    result = restore(bucket, target, "--table", "public.a", "--replace")
    assert result.returncode == ExitCode.RESTORE_REFUSED, result.stdout + result.stderr
    assert contents(target) == before
    assert before["sequence public.a_id_seq"] == "1"


def test_an_owner_is_no_role_a_restore_requires(postgres, emulator):
    """The owner's own entry in a table's ACL is ownership, not a grant: a target without that role gets the table,
    owned by the restoring role, with the grants to roles it has."""
    from google.cloud import storage

    source = postgres.create_database(f"owned_{uuid.uuid4().hex[:8]}")
    owner = f"owner_{uuid.uuid4().hex[:6]}"
    ensure_roles(source)
    run(source, f"CREATE ROLE {owner} NOLOGIN; CREATE TABLE public.owned (id int); "
                f"ALTER TABLE public.owned OWNER TO {owner}; GRANT SELECT ON public.owned TO anon")
    with psycopg.connect(source) as connection:
        catalog = read_catalog(connection)
    assert owner in catalog["owners"] and owner not in catalog["roles"]
    bucket = storage.Client().create_bucket(f"owned-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(source), dump.BackupRequest(kind="full", bucket=bucket.name))
    run(source, f"DROP TABLE public.owned; DROP ROLE {owner}")
    target = postgres.create_database(f"target_{uuid.uuid4().hex[:8]}")
    result = restore(bucket.name, target)
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(target) as connection:
        assert scalar(connection, "SELECT has_table_privilege('anon', 'public.owned', 'SELECT')")
        assert scalar(connection, "SELECT tableowner FROM pg_tables WHERE tablename = 'owned'") == \
            scalar(connection, "SELECT current_user")


def test_unquoted_names_beyond_ascii_fold_only_a_to_z_as_postgresql_does(postgres, neighbours):
    _, bucket = neighbours
    target = copy_of(postgres, neighbours)
    for number, name in enumerate(["Ärger", "ÄRGER", "public.ÄrGeR", '"Ärger"']):
        log = restored(bucket, target, "--table", name, "--into-schema", f"beside{number}")
        assert log["restored"] == [{"table": 'public."Ärger"', "rows": 3, "restoredAs": f'beside{number}."Ärger"'}]
    for wrong in ("ärger", '"ÄRGER"'):
        missed = restore(bucket, target, "--table", wrong, "--into-schema", "again")
        assert missed.returncode == ExitCode.USAGE and "Ärger" in log_of(missed)["message"]


def test_a_reshaped_table_that_other_objects_still_use_is_refused_and_nothing_changes(postgres, neighbours):
    """DROP TABLE ... CASCADE would take another table's column of the row type, a function returning it and a
    view that may have changed since the dump: the restore names them and changes nothing."""
    _, bucket = neighbours
    target = copy_of(postgres, neighbours, """
        CREATE TABLE public.holder (id int PRIMARY KEY, snap public.parent, note text);
        INSERT INTO public.holder VALUES (1, ROW(1, 'p1'), 'kept');
        CREATE FUNCTION public.parent_of(int) RETURNS public.parent LANGUAGE sql AS
          $$SELECT * FROM public.parent WHERE id = $1$$;
        ALTER TABLE public.parent ADD COLUMN added int""")
    schema, rows = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", "public.parent", "--replace")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    message = log_of(result)["message"]
    assert "holder" in message and "parent_of" in message
    assert (schema_of(target), contents(target)) == (schema, rows)


def test_triggers_and_rules_that_fire_in_replica_mode_stay_quiet_during_an_in_place_restore(postgres, emulator):
    """The dump's own triggers and rules, set to fire even in replica mode, must not rewrite the restored rows or
    write to other tables while the rows are swapped; afterwards they are as dumped."""
    from google.cloud import storage

    source = postgres.create_database(f"always_{uuid.uuid4().hex[:8]}")
    run(source, """
        CREATE TABLE public.t (id int PRIMARY KEY, v text);
        CREATE TABLE public.trail (what text);
        CREATE FUNCTION public.note_it() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN INSERT INTO public.trail VALUES (TG_OP); RETURN coalesce(NEW, OLD); END$$;
        CREATE FUNCTION public.shout() RETURNS trigger LANGUAGE plpgsql AS
          $$BEGIN NEW.v := upper(NEW.v) || '!'; RETURN NEW; END$$;
        INSERT INTO public.t VALUES (1, 'a'), (2, 'b'), (3, 'c');
        CREATE TRIGGER t_note AFTER INSERT OR DELETE ON public.t FOR EACH ROW EXECUTE FUNCTION public.note_it();
        CREATE TRIGGER t_shout BEFORE INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.shout();
        ALTER TABLE public.t ENABLE ALWAYS TRIGGER t_note;
        ALTER TABLE public.t ENABLE REPLICA TRIGGER t_shout;
        CREATE RULE t_audit AS ON DELETE TO public.t DO ALSO INSERT INTO public.trail VALUES ('rule');
        ALTER TABLE public.t ENABLE ALWAYS RULE t_audit""")
    bucket = storage.Client().create_bucket(f"always-{uuid.uuid4().hex[:12]}")
    dump.run_backup(Database(source), dump.BackupRequest(kind="full", bucket=bucket.name))
    target = postgres.create_database(f"target_{uuid.uuid4().hex[:8]}")
    restored(bucket.name, target)
    run(target, "UPDATE public.t SET v = 'damaged'")
    trail = contents(target)["public.trail"]
    restored(bucket.name, target, "--table", "public.t", "--replace")
    after = contents(target)
    assert after["public.t"] == contents(source)["public.t"], "rows exactly as dumped"
    assert after["public.trail"] == trail, "no trigger or rule of the table fired"
    assert schema_of(target) == schema_of(source), "the triggers and the rule are back in their dumped states"


def test_a_restore_behind_another_sessions_lock_gives_up_in_time_and_changes_nothing(postgres, neighbours):
    _, bucket = neighbours
    target = copy_of(postgres, neighbours, "UPDATE public.parent SET v = 'damaged'")
    before = contents(target)
    with psycopg.connect(target) as holder:
        holder.execute("SELECT count(*) FROM public.parent")  # an open transaction's lock, as an app holds it
        began = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "backup_job", "restore", "--bucket", bucket, "--table",
                                 "public.parent", "--replace"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "TARGET_DATABASE_URL": target,
                                     "BACKUP_RESTORE_LOCK_TIMEOUT_SECONDS": "1"})
        took = time.monotonic() - began
        holder.rollback()
    assert result.returncode == ExitCode.DATABASE_UNREACHABLE, result.stdout + result.stderr
    assert "held a lock" in log_of(result)["message"] and took < 60
    assert contents(target) == before


def test_a_partition_added_since_the_dump_refuses_an_in_place_restore_of_its_parent(postgres, zoo):
    _, bucket, target = damaged(postgres, zoo, "CREATE TABLE public.events_2027 PARTITION OF public.events "
                                               "FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')")
    schema, rows = schema_of(target), contents(target)
    result = restore(bucket, target, "--table", "public.events", "--replace")
    assert result.returncode == ExitCode.USAGE and "events_2027" in log_of(result)["message"]
    assert (schema_of(target), contents(target)) == (schema, rows)
