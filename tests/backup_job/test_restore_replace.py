"""`restore --table ... --replace` on the schema zoo (tests.backup_job.zoo): the named tables come back with their
rows, policies, grants and dumped dependants, and every table the restore did not name is byte-identical before
and after it; a refused replace changes nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, damaged, fresh_copy, log_of, restore, restored, run, scalar, schema_of
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


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


def test_a_whole_replace_on_several_connections_that_a_drop_refuses_changes_nothing(postgres, zoo):
    """pg_restore's own drops fail on the zoo's partitioned table with a primary key (a partition's inherited
    constraint is dropped first). Run by pg_restore -j, each drop committed on its own and the target lost its
    keys, indexes, triggers and policies; run first as one transaction, they change nothing."""
    target = fresh_copy(postgres, zoo)
    schema, rows = schema_of(target), contents(target)
    _, bucket, _ = zoo
    result = restore(bucket, target, "--replace", "--jobs", "2")
    line = log_of(result)
    assert result.returncode == ExitCode.DUMP_FAILED and "nothing was changed" in line["message"], line
    assert "tablesRestored" not in line, "no report of a partly restored target: nothing was restored"
    assert (schema_of(target), contents(target)) == (schema, rows)
