"""security-breach: the database password the apps use is marked leaked while writes run; recovered by
docs/runbooks/security-breach.md: the operator's `python -m tools.rotate dr` (a new password stored first, ALTER
ROLE with a SCRAM verifier, every holder in the stack config updated, `pulumi up` by the stand-in Pulumi CLI - a
new Secret Manager version, the Vercel variables - the Vercel redeploy, the check, the old versions disabled).

Then the drill checks what the plan asks: a login with the leaked password is refused, the apps write on the new
one, and no acknowledged write is lost (RPO "immediate": 0 rows). The RTO runs from the mark to the first write
acknowledged after the redeploy became READY (the apps then hold only the new password).

The stand-ins it adds to the world: the stand-in CLI's secret config (the dr stack's secrets as the drill
supplies them: the database URL of the US primary, the Vercel key variable = its password, the tokens) and the
Secret Manager stand-in (tools/drill/secret_manager.py) with the dr plan's secrets, served in rfdr-net.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from typing import Any

import psycopg

from core.recovery_model import APPLY, REDEPLOY
from core.resource_types import ResourceType
from tools.adopt_check import CLOUDFLARE_URL_VARIABLE
from tools.drill import build, cloudflare, plans, postgres, promotion, pulumi_cli, vercel, world
from tools.drill import secret_manager as manager
from tools.drill.harness import Drill, Scenario
from tools.drill.report import CommandRun, ScenarioResult, Step, Yardstick
from tools.drill.world import MISSED, DrillError, in_namespace, scrub, secret, serve_http, stop_http
from tools.rotate_database import password_of

NAME = "security-breach"
PROJECT = "raptorflow-dr"
INTERVAL_SECONDS = 5.0
"""The command's own default poll interval (divided by the time scale here)."""


def _secrets(drill: Drill) -> dict[str, str]:
    """The dr stack's secret config as the drill supplies it: every value registered for scrubbing."""
    key = vercel.KEY_VARIABLE
    return {f"{PROJECT}:databaseUrl": drill.us.url(drill.database),
            f"{PROJECT}:scratchDatabaseUrl": secret(f"postgresql://scratch:{secrets.token_urlsafe(18)}@{postgres.ROLE}"
                                                    f".invalid:5432/scratch"),
            f"{PROJECT}:cloudflareExportToken": drill.zone.token,
            f"{PROJECT}:slackAuthToken": secret("xoxb-" + secrets.token_hex(16)),
            f"{PROJECT}:vercelSecretValues.{key}.primary": drill.us.password,
            f"{PROJECT}:vercelSecretValues.{key}.standby": drill.eu.password,
            "vercel:apiToken": drill.vercel.token}


def _secret_manager(drill: Drill, held: dict[str, str]) -> manager.SecretManagerStandIn:
    """The Secret Manager stand-in with each secret of the dr plan at version 1, served in rfdr-net."""
    stand_in = manager.SecretManagerStandIn(secret(secrets.token_hex(20)))
    suffixes = {"-database-url": "databaseUrl", "-scratch-database-url": "scratchDatabaseUrl",
                "-cloudflare-token": "cloudflareExportToken"}
    for resource in plans.resources(drill.plans.dr, ResourceType.SECRET):
        secret_id, project = resource["inputs"]["secretId"], resource["inputs"]["project"]
        key = next((k for suffix, k in sorted(suffixes.items(), key=lambda s: -len(s[0])) if secret_id.endswith(suffix)),
                   None)
        stand_in.seed(project, secret_id, held.get(f"{PROJECT}:{key}", "") if key else secrets.token_hex(8))
    server = serve_http("net", (manager.HOST, manager.PORT), stand_in.handler(), "rfdr-secret-manager-stand-in")
    drill.closers.append(lambda: stop_http(server))
    return stand_in


def _rotate(drill: Drill, incident: str) -> tuple[CommandRun, dict[str, Any]]:
    """Run the runbook's command in rfdr-net as an operator would; what it printed (scrubbed) and the stand-in
    CLI's state after it."""
    folder = drill.world.folder / "pulumi"
    with contextlib.suppress(subprocess.TimeoutExpired):  # without the checkpoint, `up` plans both
        drill.checkpointing.wait(promotion.CHECKPOINT_WAIT_SECONDS)
    held = _secrets(drill)
    stand_in = _secret_manager(drill, held)
    state = {**promotion._state(drill), "secrets": held, "appliedSecrets": dict(held)}
    scale = drill.options.time_scale
    timeout = max(float(plans.objectives(drill.plans.dr)["applyMinutes"]) * 60 / scale, promotion.MIN_TIMEOUT_SECONDS)
    argv = ["python", "-m", "tools.rotate", promotion.STACK, "--incident", incident, "--timeout-seconds",
            f"{timeout:g}", "--interval-seconds", f"{INTERVAL_SECONDS / scale:g}"]
    env = {k: v for k, v in os.environ.items() if k in promotion.KEPT_VARIABLES}
    env.update(pulumi_cli.install(folder, build.project_root(), state))
    env["PATH"] += os.pathsep + "/usr/sbin:/sbin"
    env.update({"HOME": str(folder / "home"), "VERCEL_API_URL": vercel.base_url(), "VERCEL_TOKEN": drill.vercel.token,
                manager.URL_VARIABLE: f"http://{manager.HOST}:{manager.PORT}", manager.TOKEN_VARIABLE: stand_in.token,
                # The Cloudflare stand-in serves DNS records only: the tokens are left to the dashboard (listed).
                CLOUDFLARE_URL_VARIABLE: cloudflare.base_url()})
    started = time.monotonic()
    result = world.run(in_namespace("net", [sys.executable, *argv[1:]]), env=env, check=False, cwd=build.project_root(),
                 timeout=timeout + 300)
    after = pulumi_cli.load(folder)
    for value in after.get("secrets", {}).values():
        secret(str(value))  # the new values too: nothing the drill prints may hold them
    printed = scrub("\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip()))
    versions = {f"{project}/{secret_id}": [v.state for v in found] for (project, secret_id), found in stand_in.secrets.items()}
    # What `pulumi up` does to a replaced version (the stand-in CLI does as the plan says, tools/drill/pulumi_secrets.py).
    declared = {r["name"]: r["inputs"].get("deletionPolicy") or "DELETE"
                for r in plans.resources(drill.plans.dr, ResourceType.SECRET_VERSION)}
    policies = {f"{r['inputs']['project']}/{r['inputs']['secretId']}": declared.get(f"{r['name']}-value", "DELETE")
                for r in plans.resources(drill.plans.dr, ResourceType.SECRET)}
    return CommandRun(tuple(argv), result.returncode, time.monotonic() - started, printed), {
        "state": after, "startedAt": started, "secretVersions": versions, "deletionPolicies": policies}


def _refused(drill: Drill, password: str) -> bool:
    """Whether the US primary refuses its role with `password` (from the internet's namespace, over the site's
    address, as an app logs in)."""
    def login() -> bool:
        try:
            with psycopg.connect(drill.us.url(drill.database), password=password, connect_timeout=5):
                return False
        except psycopg.OperationalError as exc:
            if "password authentication failed" not in str(exc):
                raise DrillError(MISSED, f"the login check could not reach the US primary: {type(exc).__name__}") from None
            return True
    return world.in_site("net", login, timeout=30)


def run(drill: Drill) -> ScenarioResult:
    """Mark the apps' database password leaked; rotate it with the runbook's command; check the old password is
    refused, the apps write on the new one and no acknowledged write is lost."""
    drill.wait_streaming()
    leaked = drill.us.password
    incident = time.monotonic()
    drill.progress(f"{NAME}: the database password the apps use is marked leaked; running python -m tools.rotate dr")
    command, outcome = _rotate(drill, f"drill-{drill.ledger.run}")
    redeploys = [d for d in drill.vercel.redeploys() if d.requested_at >= outcome["startedAt"]]
    up = outcome["state"].get("up") or {}
    steps = []
    if up:
        # The apply term: the command's start (its journal, the ALTER ROLE, the stored secrets) through `up`.
        applied = up["startedAt"] + up["seconds"] - outcome["startedAt"]
        steps.append(Step(APPLY, "tools.rotate: new password stored, ALTER ROLE, holders updated, pulumi up (stand-in "
                                 "CLI: a Secret Manager version, the Vercel variables)", applied, applied))
    ready = redeploys[-1].ready_at if redeploys else None
    if redeploys and ready is not None:
        took = ready - redeploys[-1].requested_at
        steps.append(Step(REDEPLOY, f"Vercel deployment {redeploys[-1].id} requested -> READY (app restarted)", took,
                          took))
    decision = float(plans.objectives(drill.plans.dr)["decisionMinutes"]) * 60
    evidence: dict[str, Any] = {"secretVersions": outcome["secretVersions"], "deletionPolicies": outcome["deletionPolicies"],
                                "applied": [{k: c[k] for k in ("type", "name", "inputs")} for c in up.get("changes", [])],
                                "redeploy": redeploys[-1].to_json() if redeploys else None}
    if command.exit_code != 0:
        said = [line for line in command.report.splitlines() if line.startswith(("error:", "interrupted"))]
        term = REDEPLOY if command.exit_code == 4 else APPLY
        return ScenarioResult(NAME, None, 0, 0.0, False, "the rotation command failed", evidence,
                              failure=f"term {term}: python -m tools.rotate dr exited {command.exit_code}: "
                                      f"{said[-1] if said else 'no message'}",
                              steps=steps, commands=[command], decision_seconds=decision)
    new = password_of(str(outcome["state"]["secrets"][f"{PROJECT}:databaseUrl"]))
    drill.us.password = drill.eu.password = new  # the drill's own logins (the replica streams on, see below)
    # The replica's passfile is its own holder of the password: it reconnects with it after any restart.
    (drill.eu.home / "pgpass").write_text(f"{drill.us.address}:{postgres.PORT}:*:{postgres.ROLE}:{new}\n")
    rto = drill.wait_write(incident, lambda ack: ready is not None and ack.acked_at > ready)
    old_refused, new_taken = _refused(drill, leaked), not _refused(drill, new)
    check = drill.verify(drill.us)
    evidence.update({"readyAfterMarkSeconds": None if ready is None else round(ready - incident, 3),
                     "oldPasswordRefused": old_refused, "newPasswordAccepted": new_taken, "ledger": check.to_json(),
                     "appHealth": drill.app_health("us")})
    ok = check.ok and old_refused and new_taken
    return ScenarioResult(
        NAME, rto, len(check.missing), 0.0, ok,
        f"python -m tools.rotate dr exited 0: the leaked password is {'refused' if old_refused else 'STILL ACCEPTED'}, "
        f"the new one {'logs in' if new_taken else 'is REFUSED'}; the first write after the redeploy came "
        f"{rto if rto is None else round(rto, 2)} s after the mark; {len(check.missing)} acknowledged writes lost",
        evidence, steps=steps, commands=[command], decision_seconds=decision)


SCENARIO = Scenario(NAME, run, Yardstick("securityBreach"))
