"""The runbook's promotion as an operator runs it: `python -m tools.failover promote --stack dr --yes`, in the
internet's namespace, with the drill's stand-in Pulumi CLI first on its PATH, the Vercel stand-in as its
Vercel API, the drill's CA as the certificates it trusts and Knot DNS as its resolver - so it flips the stack,
redeploys and checks `https://<hostname>/health` of every failover hostname for real.

The tool's waits are the runbook's in the drill's clock: its timeout is the plan's declared apply time and its
poll interval the tool's default, both divided by the time scale (the timeout never below MIN_TIMEOUT_SECONDS
of wall time: the redeploy it covers is real work).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.contracts import ResourceType
from tools.drill import build, cloudflare, plan_cache, plans, pulumi_apply, pulumi_cli, vercel
from tools.drill.report import CommandRun
from tools.drill.world import World, in_namespace, run, scrub
from tools.failover_switch import PROMOTED_KEY

if TYPE_CHECKING:
    from tools.drill.harness import Drill

STACK = "dr"
COMMAND = ("python", "-m", "tools.failover", "promote", "--stack", STACK, "--yes")
OPERATOR_POLL_SECONDS = 5.0
"""The tool's own default poll interval, as the runbook runs it (divided by the time scale here)."""
KEPT_VARIABLES = ("LANG", "LC_ALL", "TZ")
CHECKPOINT_WAIT_SECONDS = 120.0
MIN_TIMEOUT_SECONDS = 20.0
"""The tool's timeout covers real work that the time scale does not compress (the redeploy restarts the app
stand-ins, then the health wait): never less than this, so a loaded machine is not reported as a slow redeploy."""


@dataclass
class Promotion:
    """The command as it ran, the stand-in CLI's state after it, and the tool's one-line error if it failed."""

    command: CommandRun
    state: dict[str, Any]
    failure: str | None

    def dns_changed_at(self, name: str, promoted: dict[str, Any]) -> float | None:
        """When (monotonic) `up` changed the record of `name`."""
        resources = {r["name"] for r in plans.resources(promoted, ResourceType.DNS_RECORD) if r["inputs"]["name"] == name}
        changes = (self.state.get("up") or {}).get("changes") or []
        return next((c["at"] for c in changes if c["type"] == ResourceType.DNS_RECORD and c["name"] in resources), None)


def _state(drill: Drill) -> dict[str, Any]:
    """The stand-in CLI's state before the command: the dr plan applied, its outputs and schedules, and the
    values the drill supplies in place of the plan's (the database URL of each site's cluster)."""
    urls = build.site_values(STACK).get(vercel.URL_VARIABLE)
    values = {} if urls is None else {urls[0]: build.database_url(drill.us, drill.database),
                                      urls[1]: build.database_url(drill.eu, drill.database)}
    schedules = {r["inputs"]["name"]: bool(r["inputs"].get("paused"))
                 for r in plans.resources(drill.plans.dr, ResourceType.SCHEDULER_JOB)}
    return {"stack": STACK, "promotedKey": PROMOTED_KEY, "applied": _applied(drill.plans.dr), "config": {},
            "outputs": drill.plans.dr["outputs"], "schedules": schedules, "cloudflareApi": cloudflare.base_url(),
            "values": values}


def _folder(world: World) -> Path:
    folder = world.folder / "pulumi"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _applied(dr: dict[str, Any]) -> str:
    return "true" if dr["outputs"].get("promoted") else "false"


def prepare(world: World, dr: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start making the stand-in CLI's checkpoint of the dr stack as deployed (in rfdr-net, so a killed drill's
    process goes with its world): `up` then plans only the changed program."""
    folder = _folder(world)
    env = {k: v for k, v in os.environ.items() if k in (*KEPT_VARIABLES, plan_cache.VARIABLE)}  # setup: untimed
    env[pulumi_cli.STATE_VARIABLE] = str(folder)
    log = (world.folder / "logs" / "pulumi-checkpoint.log").open("ab")
    process = subprocess.Popen(in_namespace("net", [sys.executable, "-m", "tools.drill.pulumi_cli",
                                                    pulumi_cli.CHECKPOINT_COMMAND, STACK, PROMOTED_KEY, _applied(dr)]),
                               cwd=build.project_root(), env=env, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT)
    log.close()
    return process


def promote(drill: Drill) -> Promotion:
    """Run the runbook's command; what it did."""
    folder = _folder(drill.world)
    with contextlib.suppress(subprocess.TimeoutExpired):  # without the checkpoint, `up` plans both
        drill.checkpointing.wait(CHECKPOINT_WAIT_SECONDS)
    scale = drill.options.time_scale
    timeout = max(float(plans.objectives(drill.plans.dr)["applyMinutes"]) * 60 / scale, MIN_TIMEOUT_SECONDS)
    argv = [*COMMAND, "--timeout-seconds", f"{timeout:g}", "--interval-seconds", f"{OPERATOR_POLL_SECONDS / scale:g}"]
    env = {k: v for k, v in os.environ.items() if k in KEPT_VARIABLES}
    env.update(pulumi_cli.install(folder, build.project_root(), _state(drill)))
    env["PATH"] += os.pathsep + "/usr/sbin:/sbin"  # `ip` itself
    env.update({"HOME": str(folder / "home"), "SSL_CERT_FILE": str(drill.tls.ca),
                pulumi_apply.VERCEL_URL_VARIABLE: vercel.base_url(), pulumi_apply.VERCEL_TOKEN_VARIABLE: drill.vercel.token,
                pulumi_apply.CLOUDFLARE_TOKEN_VARIABLE: drill.zone.token})
    started = time.monotonic()
    result = run(in_namespace("net", [sys.executable, *argv[1:]]), env=env, check=False, cwd=build.project_root(),
                 timeout=timeout + 300)
    seconds = time.monotonic() - started
    printed = scrub("\n".join(part.strip() for part in (result.stdout, result.stderr) if part.strip()))
    command = CommandRun(tuple(argv), result.returncode, seconds, printed)
    errors = [line for line in scrub(result.stderr).splitlines() if line.startswith("error:")]
    said = errors[-1] if errors else (printed.splitlines() or ["no message"])[-1]
    failure = None if result.returncode == 0 else f"{' '.join(COMMAND)} exited {result.returncode}: {said}"
    return Promotion(command, pulumi_cli.load(folder), failure)
