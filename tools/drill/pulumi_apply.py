"""What the drill's stand-in Pulumi CLI (tools/drill/pulumi_cli.py) does for `up`: the diff `python -m
tools.failover diff` computes, applied change by change to the drill's stand-ins.

As Pulumi compares the program with the stack's checkpoint (the state its last update left), the stand-in
keeps the plan last applied, and the plans of the stacks it references, in a checkpoint file: the drill makes
it when it stands the world up (the dr stack as deployed), and each `up` plans only the program with the new
config and diffs it with the checkpoint - the same `diff_plans` of the same two plans `tools.failover diff`
makes, without planning the unchanged one again. A test that runs `up` many times sets $RFDR_PULUMI_PLAN_CACHE,
and a plan made from unchanged inputs is read from there instead of made again (tools/drill/plan_cache.py).

Each resource type the stand-ins hold has an applier and the inputs it can change; a change of another type,
or of another input, is refused before anything is applied.
"""

from __future__ import annotations

import os
import pickle
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.contracts import ResourceType
from tools.drill import plan_cache
from tools.drill.pulumi_cli import UpError, call
from tools.failover import IN_PLACE, Change, FlipDiff, diff_plans
from tools.offline import Plan, Resource, plan_stack, unwrap

CLOUDFLARE_TOKEN_VARIABLE = "CLOUDFLARE_API_TOKEN"  # the Cloudflare provider's own
VERCEL_URL_VARIABLE, VERCEL_TOKEN_VARIABLE = "VERCEL_API_URL", "VERCEL_TOKEN"  # as the failover tool has them


CHECKPOINT = "checkpoint.pickle"


def _plan(stack: str, key: str, value: str, root: Path, as_filed: dict[str, Plan]) -> Plan:
    """The plan of `stack` with `key` as `value`; the referenced stacks' plans added to `as_filed`. Kept in and read
    from $RFDR_PULUMI_PLAN_CACHE when a test sets it (tools/drill/plan_cache.py)."""
    overrides = (f"{key}={value}",)
    cache = plan_cache.folder()
    digest = plan_cache.digest(root, stack, *overrides) if cache else ""
    kept: tuple[Plan, dict[str, Plan]] | None = plan_cache.cached(cache, digest) if cache else None
    if kept is not None:
        plan, referenced = kept
        for name, found in referenced.items():
            as_filed.setdefault(name, found)
        return plan
    try:
        plan = plan_stack(stack, overrides, root, as_filed=as_filed)
    except Exception as exc:  # noqa: BLE001 - a program error fails `up` with its message, as the CLI does
        raise UpError(f"the program failed: {' '.join(str(exc).split())[:300]}") from None
    if cache:
        plan_cache.keep(cache, digest, (plan, as_filed))
    return plan


def checkpoint(folder: Path, stack: str, key: str, applied: str, root: Path,
               plans: tuple[Plan, dict[str, Plan]] | None = None) -> None:
    """Write the checkpoint: the stack planned with `key` as applied, and the referenced stacks' plans."""
    if plans is None:
        as_filed: dict[str, Plan] = {}
        plans = (_plan(stack, key, applied, root, as_filed), as_filed)
    partial = folder / (CHECKPOINT + ".new")
    partial.write_bytes(pickle.dumps((applied, *plans)))
    partial.chmod(0o600)
    partial.replace(folder / CHECKPOINT)


def checkpointed(folder: Path, applied: str) -> tuple[Plan, dict[str, Plan]] | None:
    """The checkpoint's plan and referenced plans, if it holds the stack as applied with `applied`."""
    try:
        value, plan, as_filed = pickle.loads((folder / CHECKPOINT).read_bytes())  # noqa: S301 - our own file
    except (OSError, pickle.UnpicklingError, ValueError):
        return None
    return (plan, as_filed) if value == applied else None


def plan_diff(folder: Path, stack: str, key: str, applied: str, wanted: str, root: Path) -> tuple[Plan, Plan, FlipDiff]:
    """The stack planned with `key` as wanted, the checkpoint's plan (or, without one, the stack planned with `key`
    as last applied), and their diff; UpError unless in place. The checkpoint then holds the new plan."""
    found = checkpointed(folder, applied)
    before, as_filed = found if found else (None, {})
    if before is None:
        before = _plan(stack, key, applied, root, as_filed)
    after = _plan(stack, key, wanted, root, as_filed)
    checkpoint(folder, stack, key, wanted, root, (after, as_filed))
    diff = diff_plans(before, after)
    if not diff.safe:
        replaced = [c.name for c in diff.changed if not c.in_place]
        raise UpError(f"the update would create {diff.created}, delete {diff.deleted} or replace {replaced}: "
                      "the drill applies only in-place updates")
    return before, after, diff


class _Applier:
    """Applies the changes of one update, with the listings it reads once."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.envs: dict[str, list[dict[str, Any]]] = {}

    def dns(self, inputs: dict[str, Any]) -> None:
        zone = str(inputs["zoneId"])
        base, token = self.state["cloudflareApi"], os.environ.get(CLOUDFLARE_TOKEN_VARIABLE, "")
        if zone not in self.records:
            self.records[zone] = call(base, token, "GET", f"/zones/{zone}/dns_records")["result"]
        found = [r for r in self.records[zone] if (r["name"], r["type"]) == (inputs["name"], inputs["type"])]
        if not found:
            raise UpError(f"cloudflare: record {inputs['name']} ({inputs['type']}) not found in zone {zone}")
        call(base, token, "PATCH", f"/zones/{zone}/dns_records/{found[0]['id']}", {"content": inputs["content"]})

    def vercel(self, inputs: dict[str, Any]) -> None:
        project, team = str(inputs["projectId"]), inputs.get("teamId")
        base, token = os.environ.get(VERCEL_URL_VARIABLE, ""), os.environ.get(VERCEL_TOKEN_VARIABLE, "")
        query = f"?{urllib.parse.urlencode({'teamId': team})}" if team else ""
        if project not in self.envs:
            self.envs[project] = call(base, token, "GET", f"/v10/projects/{project}/env{query}")["envs"]
        found = [e for e in self.envs[project] if e["key"] == inputs["key"]]
        if not found:
            raise UpError(f"vercel: project {project} has no variable {inputs['key']}")
        value = str(unwrap(inputs["value"]))
        value = self.state["values"].get(value, value)  # a value the drill supplies in place of the plan's
        call(base, token, "PATCH", f"/v9/projects/{project}/env/{found[0]['id']}{query}",
             {"value": value, "target": list(inputs.get("targets") or [])})

    def schedule(self, inputs: dict[str, Any]) -> None:
        self.state["schedules"][str(inputs["name"])] = bool(inputs["paused"])


def _record(section: str, field: str | None = None) -> Callable[[_Applier, Resource], None]:
    """An applier that keeps the resource's inputs (or one of them) in the state: what the drill reads."""
    def keep(applier: _Applier, resource: Resource) -> None:
        inputs = unwrap(resource.inputs)
        applier.state.setdefault(section, {})[resource.name] = inputs if field is None else inputs[field]
    return keep


APPLIERS: dict[str, tuple[Callable[[_Applier, Resource], None], set[str]]] = {
    ResourceType.DNS_RECORD: (lambda a, r: a.dns(r.inputs), {"content"}),
    ResourceType.VERCEL_VARIABLE: (lambda a, r: a.vercel(r.inputs), {"value"}),
    ResourceType.SCHEDULER_JOB: (lambda a, r: a.schedule(r.inputs), {"paused"}),
    ResourceType.ALERT_POLICY: (_record("alertPolicies"), IN_PLACE[ResourceType.ALERT_POLICY]),
    # A component has no provider: its new inputs are its state.
    ResourceType.FAILOVER_RECORD: (_record("components", "activeSite"), {"activeSite"}),
}
"""Per type: how the stand-ins take a change, and the inputs they can change."""


def _refusal(change: Change) -> str | None:
    applier = APPLIERS.get(change.type)
    inputs = {key.split(".")[0] for key in change.changes}
    if applier is None:
        return f"{change.type} {change.name}: no stand-in holds this type"
    if not inputs <= applier[1]:
        return f"{change.type} {change.name}: the stand-in cannot change {sorted(inputs - applier[1])}"
    return None


def apply(diff: FlipDiff, after: Plan, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply every change (all checked first: nothing is applied when one cannot be); what was applied, when."""
    refused = [text for text in map(_refusal, diff.changed) if text]
    if refused:
        raise UpError("the drill's stand-ins cannot apply " + "; ".join(refused))
    resources = {r.urn: r for r in after.resources}
    applier, applied = _Applier(state), []
    for change in diff.changed:
        APPLIERS[change.type][0](applier, resources[change.urn])
        inputs = sorted({key.split(".")[0] for key in change.changes})
        applied.append({"type": change.type, "name": change.name, "inputs": inputs, "at": time.monotonic()})
    return applied


def outputs(plan: Plan) -> dict[str, Any]:
    """The stack's outputs after the update, as `stack output --json --show-secrets` prints them."""
    document: dict[str, Any] = unwrap(plan.outputs)
    return document
