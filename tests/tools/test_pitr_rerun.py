"""`python -m tools.pitr` stopped and run again: SIGTERM or SIGHUP while it waits ends it with one line and exit 130,
the request's receipt kept; run again after its restore ended healthy, while the project is not ACTIVE_HEALTHY for
another reason (RESTARTING, one of V1ProjectWithDatabaseResponse's statuses, https://api.supabase.com/api/v1-json),
it waits for it and never requests the same restore a second time. The world is tests/tools/test_pitr.py's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.tools.test_pitr import REF, TOKEN, _rfc3339, world  # noqa: F401 - the fixture
from tools import pitr as command
from tools.drill import pitr
from tools.offline import ROOT


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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_while_waiting_exits_130_with_one_line(world, signum):  # noqa: F811
    target = world.write_around_a_second()
    world.archived_past(target + 1)
    environment = {**os.environ, command.TOKEN_VARIABLE: TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "tools.pitr", "restore", "--project-ref", REF, "--api-url",
                                world.url, "--state-dir", str(world.state), "--to", _rfc3339(target)],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "requested (HTTP 201)" in line:
            break
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == command.EXIT_INTERRUPTED
    assert stderr.strip().startswith("interrupted") and len(stderr.strip().splitlines()) == 1
    assert json.loads((world.state / f"{REF}.json").read_text())["targetUnix"] == target, "the request's receipt"
    assert world.stand_in.worker is not None
    world.stand_in.worker.join(120)
