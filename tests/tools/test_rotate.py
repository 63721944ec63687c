"""`python -m tools.rotate` against a real PostgreSQL and the labelled stand-ins: the stand-in Pulumi CLI holding the
dr stack's secret config, the Vercel stand-in and the Secret Manager stand-in, each serving on 127.0.0.1.

Each test runs the command as an operator would (a process, the stand-in CLI first on PATH) on a fresh role of
a PostgreSQL server that logs every statement, and collects every value held, old and new: none is ever printed.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.services import PostgresServer, serving
from tools.drill import cloudflare_tokens, pulumi_apply, pulumi_cli, pulumi_secrets, secret_manager, vercel
from tools.failover_switch import PROMOTED_KEY
from tools.offline import ROOT
from tools.rotate_config import NEW_PASSWORD

INCIDENT = "INC-7"
SM_PROJECT, DATABASE_SECRET = "raptorflow-dr", "db-backup-database-url"
KEY = vercel.KEY_VARIABLE
HOLDERS = ("raptorflow-dr:databaseUrl", f"raptorflow-dr:vercelSecretValues.{KEY}.primary",
           f"raptorflow-dr:vercelSecretValues.{KEY}.standby")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer({"log_statement": "all"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in CLI's checkpoint of the dr stack as deployed (planned once for the module)."""
    folder = tmp_path_factory.mktemp("checkpoint")
    pulumi_apply.checkpoint(folder, "dr", PROMOTED_KEY, "false", ROOT)
    return folder / pulumi_apply.CHECKPOINT


@pytest.fixture(scope="module")
def policy(checkpoint: Path) -> str:
    """The deletionPolicy the dr plan gives the database URL's SecretVersion: what `pulumi up` does to the version
    it replaces (the stand-in CLI does as pulumi-gcp does)."""
    found = pulumi_apply.checkpointed(checkpoint.parent, "false")
    assert found is not None
    return pulumi_secrets.deletion_policy(found[0], f"{DATABASE_SECRET}-value")


def old_state(policy: str) -> str:
    """The state the replaced version ends in: destroyed by `up` (DELETE), disabled by `up` (DISABLE), or left
    enabled by `up` (ABANDON) and then disabled by tools.rotate."""
    return "DESTROYED" if policy == "DELETE" else "DISABLED"


class Builds:
    """The Vercel stand-in's build: records each deployment's variables."""

    def __init__(self) -> None:
        self.built: list[dict[str, str]] = []

    def __call__(self, deployment: vercel.Deployment) -> None:
        self.built.append(dict(deployment.variables))


@dataclass
class World:
    postgres: PostgresServer
    role: str
    password: str
    folder: Path
    env: dict[str, str]
    manager: secret_manager.SecretManagerStandIn
    cloudflare: cloudflare_tokens.CloudflareTokens
    vercel: vercel.VercelStandIn
    builds: Builds
    values: set[str] = field(default_factory=set)
    """Every secret value the command could print, old and new."""

    def url(self, password: str) -> str:
        return f"postgresql://{self.role}:{password}@127.0.0.1:{self.postgres.port}/postgres"

    def state(self) -> dict[str, Any]:
        return pulumi_cli.load(self.folder)

    def secret(self, key: str) -> str:
        return str(self.state()["secrets"][key])

    def logs_in(self, password: str) -> bool:
        try:
            with psycopg.connect(self.url(password), connect_timeout=5):
                return True
        except psycopg.OperationalError as exc:
            assert "password authentication failed" in str(exc), exc
            return False

    def start(self, *extra: str, pause: str | None = None) -> subprocess.Popen[str]:
        env = {**self.env, **({"RFDR_ROTATE_PAUSE_BEFORE": pause} if pause else {})}
        return subprocess.Popen([sys.executable, "-m", "tools.rotate", "dr", "--incident", INCIDENT,
                                 "--timeout-seconds", "30", "--interval-seconds", "0.1", *extra],
                                cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, *extra: str) -> tuple[int, str]:
        process = self.start(*extra)
        out, err = process.communicate(timeout=300)
        self.remember()
        return process.returncode, out + err

    def remember(self) -> None:
        """Collect every value the stacks hold now."""
        self.values |= {str(v) for v in self.state()["secrets"].values()}


@pytest.fixture
def world(postgres: PostgresServer, checkpoint: Path, tmp_path: Path) -> Iterator[World]:
    role, password = f"app_{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    manager = secret_manager.SecretManagerStandIn(secrets.token_hex(16))
    builds = Builds()
    variables = [vercel.Variable("env_url", vercel.URL_VARIABLE, f"postgresql://{role}@127.0.0.1/postgres",
                                 ["production"], False),
                 vercel.Variable("env_key", KEY, password, ["production"], True)]
    stand_in = vercel.VercelStandIn("prj_raptorflowweb0001", "team_raptorflow0001", secrets.token_hex(20),
                                    variables, builds, "web")
    stand_in.deploy()
    folder = tmp_path / "pulumi"
    folder.mkdir()
    shutil.copy(checkpoint, folder / pulumi_apply.CHECKPOINT)
    cloudflare = cloudflare_tokens.CloudflareTokens()
    world = World(postgres, role, password, folder, {}, manager, cloudflare, stand_in, builds)
    held = {HOLDERS[0]: world.url(password), HOLDERS[1]: password, HOLDERS[2]: password,
            "raptorflow-dr:scratchDatabaseUrl": postgres.url("postgres"),
            "raptorflow-dr:slackAuthToken": "xoxb-" + secrets.token_hex(12),
            "raptorflow-dr:cloudflareExportToken": cloudflare.issue(can_roll=True),
            "cloudflare:apiToken": cloudflare.issue(can_roll=False), "vercel:apiToken": stand_in.token}
    for secret_id, key in ((DATABASE_SECRET, HOLDERS[0]), ("db-backup-scratch-database-url",
                                                           "raptorflow-dr:scratchDatabaseUrl"),
                           ("db-backup-cloudflare-token", "raptorflow-dr:cloudflareExportToken")):
        manager.seed(SM_PROJECT, secret_id, held[key])
    state = {"stack": "dr", "promotedKey": PROMOTED_KEY, "applied": "false", "config": {}, "outputs": {},
             "schedules": {}, "cloudflareApi": "", "values": {}, "secrets": held, "appliedSecrets": dict(held)}
    with serving(stand_in._handler()) as vercel_http, serving(manager.handler()) as manager_http, \
            serving(cloudflare.handler()) as cloudflare_http:
        env = {"LANG": "C.UTF-8", "HOME": str(folder / "home"), **pulumi_cli.install(folder, ROOT, state),
               "VERCEL_API_URL": f"http://127.0.0.1:{vercel_http.server_address[1]}", "VERCEL_TOKEN": stand_in.token,
               secret_manager.URL_VARIABLE: f"http://127.0.0.1:{manager_http.server_address[1]}",
               secret_manager.TOKEN_VARIABLE: manager.token,
               "CLOUDFLARE_API_URL": f"http://127.0.0.1:{cloudflare_http.server_address[1]}/client/v4"}
        world.env = env
        world.values |= {*held.values(), manager.token}
        yield world
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def assert_no_secret(world: World, printed: str) -> None:
    world.remember()
    shown = [f"{value[:4]}... ({len(value)} chars)" for value in world.values if value and value in printed]
    assert not shown, f"the command printed secret values: {shown}"


def assert_rotated(world: World, old: str, policy: str) -> str:
    """Every holder has one new password, the database takes it and refuses the old one; the new password."""
    new = world.secret(HOLDERS[1])
    assert new != old and len(new) >= 40, "a new password of 256 random bits"
    assert world.secret(HOLDERS[0]) == world.url(new) and world.secret(HOLDERS[2]) == new, "every holder has it"
    assert world.logs_in(new), "the new password logs in"
    assert not world.logs_in(old), "the old password is refused"
    assert world.vercel.value(KEY) == new, "pulumi up set the Vercel variable"
    assert world.builds.built[-1][KEY] == new, "the production deployment was rebuilt with the new value"
    versions = world.manager.secrets[(SM_PROJECT, DATABASE_SECRET)]
    assert [v.state for v in versions] == [old_state(policy), "ENABLED"], "the old version gone, the new one in use"
    assert base64.b64encode(versions[-1].data).decode() == base64.b64encode(world.url(new).encode()).decode()
    assert world.manager.states(SM_PROJECT, "db-backup-scratch-database-url") == ["ENABLED"], "an unrotated secret"
    token = world.secret("raptorflow-dr:cloudflareExportToken")
    assert world.cloudflare.valid(token) and world.manager.payload(SM_PROJECT, "db-backup-cloudflare-token", 2) == token
    assert world.manager.states(SM_PROJECT, "db-backup-cloudflare-token") == [old_state(policy), "ENABLED"], "rolled"
    assert NEW_PASSWORD not in world.state()["secrets"], "the journal forgot the passwords"
    return new


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
    assert "ALTER ROLE" not in printed, "no second ALTER ROLE"
    assert assert_rotated(world, world.password, policy) == pending, "the journal's password, not a second one"
    assert_no_secret(world, seen + process.stdout + process.stderr + printed)


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


def test_a_database_that_takes_neither_password_stops_the_rotation_before_any_holder_changes(world):
    with psycopg.connect(world.postgres.url(), autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(world.role),
                                                                   sql.Literal(secrets.token_urlsafe(18))))
    code, printed = world.run()
    assert code == 5, printed
    assert printed.strip().splitlines()[-1].startswith("error: the database at 127.0.0.1 refuses"), printed
    assert [world.secret(key) for key in HOLDERS] == [world.url(world.password), world.password, world.password]
    assert world.manager.calls == [] and world.vercel.redeploys() == [], "nothing applied"
    assert_no_secret(world, printed)


def test_usage_errors_exit_2_without_a_traceback(world):
    code, printed = world.run("--timeout-seconds", "0")
    assert code == 2 and "Traceback" not in printed, printed
    env = {**world.env, "PATH": os.pathsep.join(p for p in world.env["PATH"].split(os.pathsep) if "pulumi" not in p)}
    process = subprocess.run([sys.executable, "-m", "tools.rotate", "dr"], cwd=ROOT, env=env, text=True,
                             capture_output=True, timeout=120, check=False)
    assert process.returncode == 2 and process.stderr.strip().startswith("error:"), process.stderr
