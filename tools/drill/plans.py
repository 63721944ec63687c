"""The stacks' own plans drive the drill: bucket names, job settings, DNS records, transfer options, objectives.

The plans come from the offline planner's documented JSON (`python -m tools.plan prod dr --json`, and the
promoted dr plan with `--set raptorflow-dr:promoted=true`); the runbook's first step, `tools.failover`'s
diff of the two dr plans, is taken from them. The model's estimates come from
`core.recovery_model.assess` over the same resources, with the drill's database size.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from core.contracts import ResourceType
from core.recovery_model import RECOVERY, Assessment, assess
from tools.drill import plan_cache
from tools.drill.world import USAGE, DrillError, in_namespace
from tools.failover import FlipDiff, diff_plans

if TYPE_CHECKING:
    from tools.offline import Plan

PROMOTED = "raptorflow-dr:promoted=true"
PLAN_TIMEOUT_SECONDS = 300


def _start(module: str, *args: str) -> subprocess.Popen[str]:
    from tools.offline import ROOT

    # In the drill's internet namespace (they need no network): a killed drill's planners go with its world.
    return subprocess.Popen(in_namespace("net", [sys.executable, "-m", module, *args]), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _finish(process: subprocess.Popen[str], what: str, ok: Iterable[int] = (0, 1)) -> str:
    try:
        out, err = process.communicate(timeout=PLAN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise DrillError(USAGE, f"{what} did not finish within {PLAN_TIMEOUT_SECONDS} s") from None
    if process.returncode not in ok:
        last = (err.strip().splitlines() or ["no message"])[-1]
        raise DrillError(USAGE, f"{what} failed (exit {process.returncode}): {last}")
    return out


class _Planner:
    """One `python -m tools.plan ARGS`, started at once; or, when a test set $RFDR_PULUMI_PLAN_CACHE, its output
    kept there by an earlier drill of the same inputs (tools/drill/plan_cache.py): the drill's setup, never timed."""

    def __init__(self, *args: str) -> None:
        from tools.offline import ROOT

        self.what = f"python -m tools.plan {' '.join(args)}"
        self.cache = plan_cache.folder()
        self.key = plan_cache.digest(ROOT, "tools.plan", *args) if self.cache else ""
        self.output: str | None = plan_cache.cached(self.cache, self.key) if self.cache else None
        self.process = None if self.output is not None else _start("tools.plan", *args)

    def finish(self) -> str:
        """The planner's output (DrillError(USAGE) when it failed)."""
        if self.output is None and self.process is not None:
            self.output = _finish(self.process, self.what)
            if self.cache:
                plan_cache.keep(self.cache, self.key, self.output)
        return self.output or ""

    def kill(self) -> None:
        """Stop the planner if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class PlanRun:
    """The planner processes, started at once so the world can be built while they run."""

    def __init__(self) -> None:
        self.both = _Planner("prod", "dr", "--json")
        self.promoted = _Planner("dr", "--json", "--set", PROMOTED)

    def finish(self) -> Plans:
        """Wait for the planners; the plans, or DrillError(USAGE) naming the one that failed."""
        prod, dr = json.loads(self.both.finish())
        after = json.loads(self.promoted.finish())
        return Plans(prod, dr, after, failover_diff(dr, after))

    def kill(self) -> None:
        """Stop planners still running (interrupted drill)."""
        for planner in (self.both, self.promoted):
            planner.kill()


@dataclass
class Plans:
    """The three plans the drill uses and the runbook's diff of a promotion."""

    prod: dict[str, Any]
    dr: dict[str, Any]
    promoted: dict[str, Any]
    failover_diff: FlipDiff


def _as_plan(document: dict[str, Any]) -> Plan:
    """A plan's documented JSON as the object `tools.failover.diff_plans` compares (it reads urn, type, name,
    inputs and protect of each resource)."""
    resources = [SimpleNamespace(urn=r["urn"], type=r["type"], name=r["name"], inputs=r["inputs"],
                                 protect=r.get("protect", False)) for r in document["resources"]]
    return cast("Plan", SimpleNamespace(stack=document["stack"], resources=resources))


def failover_diff(before: dict[str, Any], after: dict[str, Any]) -> FlipDiff:
    """The runbook's step 1 (`python -m tools.failover diff`): what promotion changes, from the two plans."""
    return diff_plans(_as_plan(before), _as_plan(after))


def resources(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The plan's resources of one type."""
    return [r for r in plan["resources"] if r["type"] == kind]


def job_environment(plan: dict[str, Any], job: str) -> tuple[list[str], dict[str, str]]:
    """The args and plain environment of the plan's Cloud Run job `job` (e.g. `db-backup-full`)."""
    for resource in resources(plan, ResourceType.RUN_JOB):
        if resource["inputs"].get("name") == job:
            container = resource["inputs"]["template"]["template"]["containers"][0]
            env = {e["name"]: e["value"] for e in container.get("envs", []) if isinstance(e.get("value"), str)}
            return list(container.get("args") or []), env
    raise DrillError(USAGE, f"the {plan['stack']} plan has no Cloud Run job {job}")


def schedule_paused(plan: dict[str, Any], job: str) -> bool:
    """Whether the plan's Cloud Scheduler job that starts `job` is paused."""
    for resource in resources(plan, ResourceType.SCHEDULER_JOB):
        if resource["inputs"].get("name") == job:
            return bool(resource["inputs"].get("paused"))
    raise DrillError(USAGE, f"the {plan['stack']} plan has no schedule for {job}")


def dns_records(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The Cloudflare records the plan manages: name, type, content, ttl, proxied (engine inputs)."""
    return [r["inputs"] for r in resources(plan, ResourceType.DNS_RECORD)]


def failover_targets(plan: dict[str, Any]) -> dict[str, str]:
    """Every failover target name -> which site serves it (`us` for primary targets, `eu` for standby)."""
    targets = {}
    for record in resources(plan, ResourceType.FAILOVER_RECORD):
        targets[record["inputs"]["primary"]] = "us"
        targets[record["inputs"]["standby"]] = "eu"
    return targets


def transfer_jobs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Storage Transfer jobs: source and sink bucket, options, and whether event-driven."""
    jobs = []
    for resource in resources(plan, ResourceType.TRANSFER_JOB):
        inputs = resource["inputs"]
        spec = inputs.get("replicationSpec") or inputs.get("transferSpec") or {}
        jobs.append({"name": resource["name"], "source": spec["gcsDataSource"]["bucketName"],
                     "sink": spec["gcsDataSink"]["bucketName"], "options": spec.get("transferOptions") or {},
                     "eventDriven": "replicationSpec" in inputs,
                     "repeatSeconds": float(str((inputs.get("schedule") or {}).get("repeatInterval", "86400s")).rstrip("s"))})
    return jobs


def objectives(plan: dict[str, Any]) -> dict[str, Any]:
    """The stack's RecoveryObjectives declaration."""
    found = resources(plan, RECOVERY)
    if not found:
        raise DrillError(USAGE, f"the {plan['stack']} plan declares no recovery objectives")
    return found[0]["inputs"]


def estimates(plans: Plans, database_gb: float) -> dict[str, Assessment]:
    """`core.recovery_model.assess` over both plans, with the drill's database size instead of the declared one."""
    pairs = []
    for plan in (plans.prod, plans.dr):
        for resource in plan["resources"]:
            inputs = resource["inputs"]
            if resource["type"] == RECOVERY:
                inputs = copy.deepcopy(inputs)
                inputs["databaseSizeGb"] = database_gb
            pairs.append((resource["type"], inputs))
    return {a.scenario: a for a in assess(pairs)}
