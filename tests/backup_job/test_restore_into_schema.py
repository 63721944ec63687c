"""`restore --table ... --into-schema` on the schema zoo (tests.backup_job.zoo): the tables restored beside the
live ones, nothing live changed; a name restored twice, or already there, is refused.
"""

from __future__ import annotations

import pytest

from backup_job.errors import ExitCode
from tests.backup_job.zoo import contents, fresh_copy, log_of, restore
from tests.services import postgres_bindir

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


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
