"""Failover of the dr stack: see what promotion changes, and promote or demote for real.

    python -m tools.failover diff [--stack dr]
    python -m tools.failover promote|demote [--stack dr] [--yes] [--timeout-seconds 600] [--interval-seconds 5]

`--stack` takes the stack as Pulumi names it: `dr`, `myorg/dr` or
`myorg/raptorflow-dr/dr`. Its stack file is named after the short name
(`Pulumi.dr.yaml`); the Automation API selects the full name.

`diff` plans the stack offline with `promoted=false` and `promoted=true` and
prints, resource by resource, every input that changes (old -> new). It
checks that nothing is created or deleted and that every change is an
in-place update (exit 1 otherwise).

`promote` / `demote` use the Pulumi Automation API on the real stack: set
`raptorflow-dr:promoted`, run `up` (`preview` without `--yes`), then poll
`https://<hostname><healthPath>` of every failover hostname until each answers
200 or the timeout passes, and print a timed report. They need the Pulumi CLI
and the stack's credentials. Without `--yes` the flip is previewed from a
temporary copy of the stack file (`--config-file`): the stack's own config is
never changed, even when the preview is killed. The health URLs are those of
the `failoverHostnames` the update reports. Before anything changes they check
the stack file (present, valid, with a `failover` section, and with `--yes`
writable) and the options (`--timeout-seconds` a finite number >= 0,
`--interval-seconds` a finite number > 0).

Vercel applies env var changes only to new deployments. When the stack has a
`vercel` section, `--yes` redeploys the project's current production
deployment after the update through Vercel's REST API and waits until the new
deployment is READY, then checks health; the redeploy and the health wait
share `--timeout-seconds`. The token is `VERCEL_TOKEN` or the stack's secret
`vercel:apiToken` (never printed); `VERCEL_API_URL` points the calls at a
stand-in. The report gains `redeploy requested` and `deployment <id> READY
after N s`. Details: tools/vercel_deploy.py.

Exit codes:
  0    applied (or previewed) and every hostname healthy
  1    some hostname not healthy within the timeout
  2    nothing was changed: no CLI, no such stack or stack file, invalid config
       or option, the stack file read-only or immutable, no Vercel token
  3    `pulumi preview` / `pulumi up` failed (one line: the last error it printed)
  4    the Vercel redeploy failed: the API refused or did not answer, no READY
       production deployment to redeploy, or the new one ended ERROR/CANCELED
       or was not READY within the timeout (the flip is applied; run again)
  5    the update reported no `failoverHostnames`: no health endpoint was checked
  130  interrupted
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.contracts import ResourceType
from tools.failover_health import HealthResult, wait_healthy
from tools.failover_switch import PROMOTED_KEY, health_urls, short_name, switch
from tools.offline import ROOT, SECRET_PLACEHOLDER, Plan, StackFileError, is_secret, plan_stack, unwrap
from tools.operator import Parser, seconds_argument, stack_argument

__all__ = ["Change", "FlipDiff", "HealthResult", "diff_plans", "health_urls", "main", "render_diff", "wait_healthy"]

VERCEL_VARIABLE = ResourceType.VERCEL_VARIABLE

# Inputs that a promotion may change, per type: each is updated in place by its provider.
IN_PLACE: dict[str, set[str]] = {
    ResourceType.DNS_RECORD: {"content"},
    ResourceType.LOAD_BALANCER: {"defaultPools", "fallbackPool"},
    VERCEL_VARIABLE: {"value"},
    ResourceType.SCHEDULER_JOB: {"paused"},
    # Components carry which site is active, for reviewers and policies.
    ResourceType.FAILOVER_RECORD: {"activeSite"},
    ResourceType.FAILOVER_LOAD_BALANCER: {"activeSite"},
    # Monitoring follows the active site: its uptime alerts page P0, the other site's P2.
    ResourceType.ALERT_POLICY: {"displayName", "severity", "enabled", "userLabels", "documentation"},
}


@dataclass
class Change:
    """One resource whose inputs differ between the two plans."""

    urn: str
    type: str
    name: str
    changes: dict[str, tuple[Any, Any]]

    @property
    def in_place(self) -> bool:
        """Whether every changed input is one its provider updates in place."""
        return {key.split(".")[0] for key in self.changes} <= IN_PLACE.get(self.type, set())


@dataclass
class FlipDiff:
    """What flipping `promoted` does to a stack."""

    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        """Nothing created, deleted or replaced."""
        return not self.created and not self.deleted and all(c.in_place for c in self.changed)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and not is_secret(value):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return flat
    return {prefix: value}


def diff_plans(before: Plan, after: Plan) -> FlipDiff:
    """Resource-by-resource differences of two plans of one stack."""
    old = {r.urn: r for r in before.resources}
    new = {r.urn: r for r in after.resources}
    result = FlipDiff(created=sorted(set(new) - set(old)), deleted=sorted(set(old) - set(new)))
    for urn in sorted(set(old) & set(new)):
        a, b = old[urn], new[urn]
        if unwrap(a.inputs) == unwrap(b.inputs) and a.protect == b.protect:
            continue
        flat_a, flat_b = _flatten(a.inputs), _flatten(b.inputs)
        changes = {}
        for key in sorted(set(flat_a) | set(flat_b)):
            if unwrap(flat_a.get(key)) != unwrap(flat_b.get(key)):
                changes[key] = (flat_a.get(key), flat_b.get(key))
        result.changed.append(Change(urn, a.type, a.name, changes))
    return result


def _shown(resource_type: str, sensitive: bool, value: Any) -> str:
    # The Vercel SDK stores every value as a secret; only the `sensitive` ones are secret in config.
    if is_secret(value) and (resource_type != VERCEL_VARIABLE or sensitive):
        return SECRET_PLACEHOLDER
    return str(unwrap(value))


def render_diff(stack: str, diff: FlipDiff, after: Plan) -> Iterable[str]:
    """The report `diff` prints."""
    sensitive = {r.urn: bool(r.inputs.get("sensitive")) for r in after.resources}
    yield f"promoting {stack}: {len(diff.changed)} resources change"
    for change in diff.changed:
        mark = "update in place" if change.in_place else "NOT an in-place update"
        yield f"  ~ {change.type}  {change.name}  ({mark})"
        for key, (old, new) in change.changes.items():
            hidden = sensitive.get(change.urn, False)
            yield (f"      {key}: {_shown(change.type, hidden, old)} -> "
                   f"{_shown(change.type, hidden, new)}")
    secret_variables = sorted(r.inputs["key"] for r in after.resources
                              if r.type == VERCEL_VARIABLE and r.inputs.get("sensitive"))
    if secret_variables:
        yield f"  (secret values switch too but cannot be compared offline: {', '.join(secret_variables)})"
    for urn in diff.created:
        yield f"  + {urn}  (CREATED)"
    for urn in diff.deleted:
        yield f"  - {urn}  (DELETED)"
    if diff.safe:
        yield "nothing is created, replaced or deleted: promotion only updates these resources in place"
    else:
        yield "UNSAFE: promotion would create, delete or replace resources; resource names must not depend on `promoted`"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.failover`."""
    parser = Parser(prog="python -m tools.failover", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    diff = commands.add_parser("diff", help="what promotion changes, resource by resource (offline)")
    diff.add_argument("--stack", type=stack_argument, default="dr", help="dr, ORG/dr or ORG/raptorflow-dr/dr")
    for name in ("promote", "demote"):
        command = commands.add_parser(name, help=f"{name} the standby site for real (Pulumi CLI needed)")
        command.add_argument("--stack", type=stack_argument, default="dr", help="dr, ORG/dr or ORG/raptorflow-dr/dr")
        command.add_argument("--yes", action="store_true", help="apply (without it: preview only)")
        command.add_argument("--timeout-seconds", type=seconds_argument(positive=False), default=600.0,
                             help="health wait (default 600)")
        command.add_argument("--interval-seconds", type=seconds_argument(positive=True), default=5.0,
                             help="between health polls (default 5)")
        command.add_argument("--project-dir", type=Path, default=ROOT, metavar="DIR",
                             help="folder of Pulumi.yaml and the stack files (default: this repo)")
    args = parser.parse_args(argv)

    if args.command == "diff":
        try:
            as_filed: dict[str, Plan] = {}  # the referenced prod plan, made once for both
            short = short_name(args.stack)
            before = plan_stack(short, (f"{PROMOTED_KEY}=false",), as_filed=as_filed)
            after = plan_stack(short, (f"{PROMOTED_KEY}=true",), as_filed=as_filed)
        except StackFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - config errors are RunErrors with a readable message
            print(f"error: stack {args.stack}: {exc}", file=sys.stderr)
            return 2
        result = diff_plans(before, after)
        print("\n".join(render_diff(args.stack, result, after)))
        return 0 if result.safe else 1
    return switch(args.stack, args.command == "promote", args.yes, args.timeout_seconds, args.interval_seconds,
                  args.project_dir)


if __name__ == "__main__":
    sys.exit(main())
