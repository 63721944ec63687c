"""`python -m tools.rotate` against a real PostgreSQL and the labelled stand-ins: the stand-in Pulumi CLI holding the
dr stack's secret config, the Vercel stand-in and the Secret Manager stand-in, each serving on 127.0.0.1.

Each test runs the command as an operator would (a process, the stand-in CLI first on PATH) on a fresh role of
a PostgreSQL server that logs every statement, and collects every value held, old and new: none is ever printed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.services import PostgresServer
from tests.tools.rotate_world import (
    DATABASE_SECRET,
    HOLDERS,
    INCIDENT,
    SM_PROJECT,
    World,
    assert_no_secret,
    assert_rotated,
    built,
    deletion_policy,
    deployed,
    old_state,
)
from tools.offline import ROOT
from tools.rotate_config import INCIDENT as INCIDENT_KEY
from tools.rotate_config import NEW_PASSWORD, STEP


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer({"log_statement": "all"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in CLI's checkpoint of the dr stack as deployed (planned once for the module)."""
    return deployed(tmp_path_factory.mktemp("checkpoint"))


@pytest.fixture(scope="module")
def policy(checkpoint: Path) -> str:
    """The deletionPolicy the dr plan gives the database URL's SecretVersion (what `pulumi up` does to the version
    it replaces)."""
    return deletion_policy(checkpoint)


@pytest.fixture
def world(postgres: PostgresServer, checkpoint: Path, tmp_path: Path) -> Iterator[World]:
    with built(postgres, checkpoint, tmp_path) as made:
        yield made


def test_a_rotation_changes_every_holder_disables_old_versions_once_the_new_are_in_use_and_runs_once(world, policy):
    old_token = world.secret("raptorflow-dr:cloudflareExportToken")
    code, printed = world.run()
    assert code == 0, printed
    assert_rotated(world, world.password, policy)
    added = [c for c in world.manager.calls if c[0] == "addVersion"]
    retired = [c for c in world.manager.calls if c[0] in ("disable", "destroy")]
    assert sorted(c[1] for c in retired) == [f"projects/{SM_PROJECT}/secrets/{name}/versions/1" for name in
                                             ("db-backup-cloudflare-token", DATABASE_SECRET)], retired
    ready = world.vercel.redeploys()[-1].ready_at
    assert ready is not None and max(c[2] for c in added) < ready
    if policy == "ABANDON":  # up leaves the old versions: tools.rotate disables them once the new are in use
        assert all(c[0] == "disable" and c[2] > ready for c in retired), "disabled only after the redeploy was READY"
    else:  # up itself retires them as the plan's deletionPolicy says, before the new ones are proven in use
        assert all(c[0] == {"DELETE": "destroy", "DISABLE": "disable"}[policy] and c[2] < ready for c in retired)
    assert not world.cloudflare.valid(old_token), "the rolled token's old value is dead"
    assert "cloudflareExportToken rolled through Cloudflare's API" in printed
    assert "cloudflare:apiToken not rolled: the token may not roll itself" in printed
    for manual in ("slackAuthToken", "scratchDatabaseUrl", "vercel:apiToken", "cloudflare:apiToken"):
        assert f"dr {manual}:" in printed, f"{manual} is listed as manual:\n{printed}"
    assert "dr cloudflareExportToken:" not in printed, "a rolled token is not left to the dashboard"
    assert "databaseUrl holds the new password" in printed
    assert_no_secret(world, printed)
    new = world.secret(HOLDERS[1])
    log = (world.postgres.directory / "server.log").read_text()
    assert f"ALTER ROLE \"{world.role}\" PASSWORD 'SCRAM-SHA-256$" in log, "the server got a SCRAM verifier"
    assert new not in log, "the plain new password never reached the server"
    calls, deployments = len(world.manager.calls), len(world.vercel.redeploys())
    code, printed = world.run()
    assert code == 0, printed
    assert f"incident {INCIDENT}: the rotation finished already; nothing to do" in printed
    assert (len(world.manager.calls), len(world.vercel.redeploys()), world.secret(HOLDERS[1])) == (calls, deployments, new)
    assert world.logs_in(new), "a second run of the incident changed nothing"
    assert_no_secret(world, printed)


def wait_paused(process: subprocess.Popen[str], step: str) -> str:
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if line.strip() == f"pausing before {step}":
            return seen
    raise AssertionError(f"the command ended before pausing at {step}: {seen}{process.stderr.read() if process.stderr else ''}")


def test_a_rotation_killed_between_alter_role_and_storing_finishes_on_the_second_run(world, policy):
    process = world.start(pause="store")
    seen = wait_paused(process, "store")
    pending = world.secret(NEW_PASSWORD)
    assert world.logs_in(pending) and not world.logs_in(world.password), "ALTER ROLE ran, nothing holds it yet"
    assert world.secret(HOLDERS[0]) == world.url(world.password), "the holders still have the old password"
    process.kill()
    process.communicate(timeout=30)
    process = subprocess.run([sys.executable, "-m", "tools.rotate", "dr", "--incident", "INC-8"], cwd=ROOT,
                             env=world.env, text=True, capture_output=True, timeout=120, check=False)
    assert process.returncode == 2 and process.stderr.strip() == (
        f"error: the rotation of incident {INCIDENT} is unfinished (last step: alter-role); finish it with "
        f"`--incident {INCIDENT}` first"), process.stderr
    code, printed = world.run()
    assert code == 0, printed
    assert f"incident {INCIDENT}: resuming after step alter-role" in printed
    assert "  (steps up to alter-role: in an earlier run of this incident" in printed, "the report owns the earlier run"
    assert "ALTER ROLE" not in printed, "no second ALTER ROLE"
    assert assert_rotated(world, world.password, policy) == pending, "the journal's password, not a second one"
    assert_no_secret(world, seen + process.stdout + process.stderr + printed)


def test_a_new_incident_whose_journal_writes_were_cut_short_rotates_instead_of_reading_the_last_one_as_done(
        world, policy):
    """A rotation's journal resets its step (`started`) before it names its incident: a run cut off between the
    two leaves the finished incident's name beside `started`. The next run of a new incident rotates; it never
    reads the earlier incident's `done` as its own (exit 0, nothing rotated, the leaked password still good)."""
    code, printed = world.run()
    assert code == 0, printed
    first = world.secret(HOLDERS[1])
    subprocess.run(["pulumi", "config", "set", STEP, "--plaintext", "--stack", "dr", "--", "started"], cwd=ROOT,
                   env=world.env, text=True, capture_output=True, timeout=60, check=True)
    code, again = world.run("--incident", "INC-9")
    assert code == 0, again
    assert "finished already" not in again and "unfinished" not in again, again
    second = world.secret(HOLDERS[1])
    assert second != first and world.logs_in(second) and not world.logs_in(first), "rotated again"
    assert world.state()["config"][INCIDENT_KEY] == "INC-9"
    assert_no_secret(world, printed + again)


def test_a_sigterm_while_a_token_rolls_waits_until_the_new_value_is_stored(world, policy):
    """Cloudflare's roll kills the old value at once and the new one exists only in its answer: a SIGTERM that
    comes while the roll is answered waits until every holder has the new value (exit 130), and the next run
    goes on from there without listing the token for the dashboard."""
    world.cloudflare.answer.clear()
    process = world.start()
    assert world.cloudflare.rolled.wait(timeout=120), "no token rolled"
    process.send_signal(signal.SIGTERM)
    world.cloudflare.answer.set()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert world.cloudflare.valid(world.secret("raptorflow-dr:cloudflareExportToken")), "the stack holds the live token"
    world.remember()
    code, printed = world.run()
    assert code == 0, printed
    assert "dr cloudflareExportToken:" not in printed, "a rolled token is not left to the dashboard"
    assert_rotated(world, world.password, policy)
    assert_no_secret(world, out + err + printed)


def test_a_sigterm_before_disabling_exits_130_and_the_next_run_disables(world, policy):
    process = world.start(pause="disable-old-versions")
    seen = wait_paused(process, "disable-old-versions")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert err.strip().splitlines() == [
        "interrupted by SIGTERM at step disable-old-versions: run the same command again to finish the rotation"]
    before = "ENABLED" if policy == "ABANDON" else old_state(policy)
    assert world.manager.states(SM_PROJECT, DATABASE_SECRET) == [before, "ENABLED"], "tools.rotate disabled nothing yet"
    deployments = len(world.vercel.redeploys())
    code, printed = world.run()
    assert code == 0, printed
    assert len(world.vercel.redeploys()) == deployments, "the finished redeploy is not done again"
    assert_rotated(world, world.password, policy)
    assert_no_secret(world, seen + out + err + printed)


def test_a_database_that_takes_neither_password_stops_before_any_holder_changes_and_a_reset_rotates(world, policy):
    reset = secrets.token_urlsafe(18)
    with psycopg.connect(world.postgres.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(world.role), sql.Literal(reset)))
    code, printed = world.run()
    assert code == 5, printed
    assert printed.strip().splitlines()[-1].startswith("error: the database at 127.0.0.1 refuses"), printed
    assert [world.secret(key) for key in HOLDERS] == [world.url(world.password), world.password, world.password]
    assert world.manager.calls == [] and world.vercel.redeploys() == [], "nothing applied"
    assert not [k for k in {**world.state()["config"], **world.state()["secrets"]} if "rotation" in k], "no journal"
    for key, value in zip(HOLDERS, (world.url(reset), reset, reset), strict=True):  # the operator stores the reset
        subprocess.run(["pulumi", "config", "set", "--secret", "--path", key, "--stack", "dr"], input=value,
                       cwd=ROOT, env=world.env, text=True, capture_output=True, timeout=60, check=True)
    code, again = world.run()
    assert code == 0, again
    assert_rotated(world, reset, policy)
    assert_no_secret(world, printed + again)


def test_usage_errors_exit_2_without_a_traceback(world):
    code, printed = world.run("--timeout-seconds", "0")
    assert code == 2 and "Traceback" not in printed, printed
    code, printed = world.run("--project-dir", str(world.folder))
    assert code == 2 and printed.strip().endswith(f"--project-dir {world.folder} holds no Pulumi.yaml"), printed
    env = {**world.env, "PATH": os.pathsep.join(p for p in world.env["PATH"].split(os.pathsep) if "pulumi" not in p)}
    process = subprocess.run([sys.executable, "-m", "tools.rotate", "dr"], cwd=ROOT, env=env, text=True,
                             capture_output=True, timeout=120, check=False)
    assert process.returncode == 2 and process.stderr.strip().startswith("error:"), process.stderr


def test_a_new_rotations_journal_resets_its_step_before_it_names_its_incident(capsys):
    """The order of the journal's first writes, each a CLI call a signal or a kill may follow: the step goes back
    to `started` before the incident changes, so no moment holds the new incident beside the last one's `done`."""
    import argparse

    from tools.rotate_config import INCIDENT as INCIDENT_KEY
    from tools.rotate_config import Entry
    from tools.rotate_run import DATABASE_URL, STARTED, Rotation
    from tools.secrets import Signals

    writes: list[tuple[str, str]] = []

    class Recorded:
        stack = "dr"

        def set_plain(self, key: str, value: str) -> None:
            writes.append((key, value))

        def set_secret(self, key: str, value: str) -> None:
            writes.append((key, "secret"))

    url = f"postgresql://raptorflow:{secrets.token_urlsafe(18)}@127.0.0.1:5432/postgres"
    journal = {INCIDENT_KEY: Entry(INCIDENT_KEY, "INC-8", False), STEP: Entry(STEP, "done", False),
               DATABASE_URL: Entry(DATABASE_URL, url, True)}
    rotation = Rotation(argparse.Namespace(incident="INC-9"), Signals())
    rotation.stacks, rotation.config = [Recorded()], {"dr": dict(journal)}  # type: ignore[list-item]
    rotation._journal(journal, resumed=False)
    keys = [key for key, _ in writes]
    assert writes[0] == (STEP, STARTED) and keys.index(INCIDENT_KEY) == 1, writes
    assert writes[-1] == (STEP, "journal") and url not in capsys.readouterr().out
