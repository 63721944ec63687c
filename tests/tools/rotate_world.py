"""The world `python -m tools.rotate`'s tests run it in: a real PostgreSQL (every statement logged), the stand-in
Pulumi CLI holding the dr stack's secret config, and the labelled Vercel, Secret Manager and Cloudflare stand-ins,
each serving on 127.0.0.1; with the checks the tests share (every holder rotated, no value ever printed).
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.services import PostgresServer, serving
from tools.drill import cloudflare_tokens, plan_cache, pulumi_apply, pulumi_cli, pulumi_secrets, secret_manager, vercel
from tools.failover_switch import PROMOTED_KEY
from tools.offline import ROOT
from tools.rotate_config import NEW_PASSWORD

INCIDENT = "INC-7"
SM_PROJECT, DATABASE_SECRET = "raptorflow-dr", "db-backup-database-url"
KEY = vercel.KEY_VARIABLE
HOLDERS = ("raptorflow-dr:databaseUrl", f"raptorflow-dr:vercelSecretValues.{KEY}.primary",
           f"raptorflow-dr:vercelSecretValues.{KEY}.standby")


def deployed(folder: Path) -> Path:
    """The stand-in CLI's checkpoint of the dr stack as deployed, planned into `folder`; the plan kept in
    `folder`'s plan cache too (plan_cache_of), where every `up` of the same inputs reads it instead of running the
    program again."""
    pulumi_apply.checkpoint(folder, "dr", PROMOTED_KEY, "false", ROOT)
    found = pulumi_apply.checkpointed(folder, "false")
    assert found is not None
    plan_cache.keep(plan_cache_of(folder / pulumi_apply.CHECKPOINT), plan_cache.digest(ROOT, "dr", f"{PROMOTED_KEY}=false"),
                    found)
    return folder / pulumi_apply.CHECKPOINT


def plan_cache_of(checkpoint: Path) -> Path:
    """The plan cache beside a checkpoint that deployed() made ($RFDR_PULUMI_PLAN_CACHE of the worlds built on it)."""
    return checkpoint.parent / "plans"


def deletion_policy(checkpoint: Path) -> str:
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
    """One test's PostgreSQL role, stand-ins and the environment the command runs in."""

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


@contextmanager
def built(postgres: PostgresServer, checkpoint: Path, tmp_path: Path) -> Iterator[World]:
    """A world on a fresh role of `postgres` with the dr stack deployed from `checkpoint`; the role dropped after."""
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
               plan_cache.VARIABLE: str(plan_cache_of(checkpoint)),
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


