"""`restore --table ... --merge-missing` on the schema zoo (tests.backup_job.zoo): rows deleted since the dump come
back, rows changed or written since are kept, triggers fire on the merged rows; a table without a primary key is
refused.
"""

from __future__ import annotations

import psycopg
import pytest

from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, damaged, log_of, restore, restored, scalar
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


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
