"""`python -m tools.pitr` run again after its restore ended healthy, while the project is not ACTIVE_HEALTHY for
another reason (RESTARTING, one of V1ProjectWithDatabaseResponse's statuses, https://api.supabase.com/api/v1-json):
it waits for it and never requests the same restore a second time. The world is tests/tools/test_pitr.py's."""

from __future__ import annotations

import threading

from tests.tools.test_pitr import _rfc3339, world  # noqa: F401 - the fixture
from tools.drill import pitr


def test_a_rerun_after_the_restore_waits_through_a_restart_and_requests_nothing(world):  # noqa: F811
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    first = world.run("--to", _rfc3339(target))
    assert first.returncode == 0, first.stderr
    world.stand_in.status = "RESTARTING"  # back to ACTIVE_HEALTHY 1.5 s later
    threading.Timer(1.5, lambda: setattr(world.stand_in, "status", pitr.ACTIVE)).start()

    again = world.run("--to", _rfc3339(target))

    assert again.returncode == 0, again.stderr
    assert "already restored" in again.stdout and "status RESTARTING" in again.stdout
    assert len(world.stand_in.restores) == 1, "no second restore"
