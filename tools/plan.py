"""The offline plan: what a stack provisions, without a cloud account or the Pulumi CLI.

    python -m tools.plan prod [dr ...] [--json] [--set NS:KEY[.PATH]=VALUE ...] [--stack-file PATH]

Runs the real program under Pulumi's mocks with `Pulumi.<stack>.yaml` and
prints a tree of every resource (type, name, key properties, protection) and
the stack outputs; `secure:` values show as [secret]. Then it runs the policy
pack (policies/) over the recorded resources and prints every violation, and
the recovery readiness of what the stacks provision. `--json` prints the plan
as documented in README.md (one object, or a list for several stacks).

Exit codes: 0 the plan succeeded and no mandatory policy is violated; 1 a
mandatory policy is violated; 2 invalid config, a bad stack file or a program
error (one message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.contracts import Label, ResourceType
from core.paths import lookup
from tools.offline import SECRET_PLACEHOLDER, Plan, Resource, StackFileError, is_secret, plan_stack

# The inputs worth a reviewer's eye, per resource type; other types show their top-level scalars.
KEY_PROPERTIES: dict[str, tuple[str, ...]] = {
    ResourceType.BUCKET: (
        "name", "location", "retentionPolicy.retentionPeriod", "retentionPolicy.isLocked",
        "versioning.enabled", "softDeletePolicy.retentionDurationSeconds", "publicAccessPrevention",
        "uniformBucketLevelAccess", "encryption.defaultKmsKeyName", "logging.logBucket", "forceDestroy",
    ),
    ResourceType.CRYPTO_KEY: ("name", "rotationPeriod", "purpose"),
    ResourceType.TRANSFER_JOB: (
        "transferSpec.gcsDataSource.bucketName", "transferSpec.gcsDataSink.bucketName",
        "schedule.startTimeOfDay.hours", "schedule.startTimeOfDay.minutes", "schedule.repeatInterval",
        "transferSpec.transferOptions.deleteObjectsUniqueInSink",
        "transferSpec.transferOptions.deleteObjectsFromSourceAfterTransfer",
        "transferSpec.transferOptions.overwriteWhen", "status",
    ),
    ResourceType.RUN_JOB: (
        "name", "location", "template.template.containers.0.image", "template.template.containers.0.args",
        "template.template.serviceAccount",
        "template.template.timeout", "template.template.maxRetries", "deletionProtection",
    ),
    ResourceType.SCHEDULER_JOB: (
        "name", "schedule", "timeZone", "paused", "httpTarget.uri", "httpTarget.oauthToken.serviceAccountEmail",
        "retryConfig.retryCount", "attemptDeadline",
    ),
    ResourceType.ALERT_POLICY: (
        "displayName", "severity", "enabled", f"userLabels.{Label.SEVERITY}", "notificationChannels",
        "conditions.0.conditionThreshold.filter", "conditions.0.conditionPrometheusQueryLanguage.query",
        "conditions.0.conditionMatchedLog.filter",
    ),
}
MAX_VALUE_CHARS = 240


def _show(value: Any) -> str:
    if is_secret(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def key_properties(resource: Resource) -> list[tuple[str, str]]:
    """(name, shown value) pairs worth printing for a resource."""
    wanted = KEY_PROPERTIES.get(resource.type)
    if wanted is None:
        wanted = tuple(k for k, v in resource.inputs.items() if not isinstance(v, (dict, list)) or is_secret(v))
    pairs = []
    for dotted in wanted:
        value = lookup(resource.inputs, dotted, stop=is_secret)
        if value is not None:
            pairs.append((dotted, _show(value)))
    return pairs


def render_tree(plan: Plan) -> Iterable[str]:
    """The plan as an indented tree of resources, children under their component."""
    children: dict[str | None, list[Resource]] = {}
    urns = {r.urn for r in plan.resources}
    for resource in plan.resources:
        parent = resource.parent if resource.parent in urns else None
        children.setdefault(parent, []).append(resource)
    protected = sum(r.protect for r in plan.resources)
    custom = sum(r.custom for r in plan.resources)
    yield f"stack {plan.stack}: {custom} resources in {len(plan.resources) - custom} components, {protected} protected"
    if plan.placeholder_secrets:
        yield (f"  secrets not in the stack file, planned as {SECRET_PLACEHOLDER} (set them before `pulumi up`: "
               f"python -m tools.secrets {plan.stack}): {', '.join(plan.placeholder_secrets)}")
    imports = [r for r in plan.resources if r.import_id]
    if imports:
        yield f"  adopted, not created (import ids from config): {len(imports)}"

    def walk(parent: str | None, depth: int) -> Iterable[str]:
        for resource in sorted(children.get(parent, []), key=lambda r: (r.custom, r.name)):
            flag = ("  [protected]" if resource.protect else "") + (
                f"  [import {resource.import_id}]" if resource.import_id else "")
            yield f"{'  ' * depth}- {resource.type}  {resource.name}{flag}"
            for key, value in key_properties(resource):
                yield f"{'  ' * depth}    {key}: {value}"
            yield from walk(resource.urn, depth + 1)

    yield from walk(None, 1)
    yield "  outputs:"
    for name, value in sorted(plan.outputs.items()):
        yield f"    {name}: {_show(value)}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.plan`."""
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="+", metavar="STACK", help="stack name(s), e.g. prod dr")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NS:KEY=VALUE", dest="overrides",
        help="override one config value for this run, e.g. raptorflow-dr:promoted=true (repeatable)",
    )
    parser.add_argument(
        "--stack-file", type=Path, metavar="PATH",
        help="read this file instead of Pulumi.STACK.yaml (one stack only), e.g. to try a change",
    )
    args = parser.parse_args(argv)
    if args.stack_file and len(args.stacks) != 1:
        parser.error("--stack-file goes with exactly one STACK")

    plans: list[Plan] = []
    as_filed: dict[str, Plan] = {}
    for stack in args.stacks:
        try:
            plans.append(plan_stack(stack, tuple(args.overrides), stack_file=args.stack_file, as_filed=as_filed))
        except StackFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # noqa: BLE001 - the program's own errors, shown without a traceback
            from pulumi import RunError

            kind = "" if isinstance(exc, RunError) else f"program error ({type(exc).__name__}): "
            message = str(exc)
            if args.stack_file:  # the program knows only the stack's name; name the file that was read
                message = message.replace(f"Pulumi.{stack}.yaml", str(args.stack_file))
            print(f"error: stack {stack}: {kind}{message}", file=sys.stderr)
            return 2

    from tools.drill.records import last_drills
    from tools.policy_check import evaluate, summary
    from tools.readiness import (
        BENCHMARKS,
        DRILLS,
        assess_plans,
        drill_warnings,
        figure_warnings,
        measured_figures,
        model_figures,
        render_figures,
        render_readiness,
    )

    violations = {plan.stack: evaluate(plan) for plan in plans}
    measured = measured_figures(DRILLS, BENCHMARKS)
    if args.json:
        documents = []
        for plan in plans:
            document = plan.to_json()
            document["policy"] = {"summary": summary(violations[plan.stack]),
                                  "violations": [v.to_json() for v in violations[plan.stack]]}
            document["readiness"] = [a.to_json() for a in assess_plans([plan], measured)]
            document["figures"] = [figure.to_json() for figure in model_figures([plan], measured)]
            documents.append(document)
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2, sort_keys=True))
    else:
        for plan in plans:
            print("\n".join(render_tree(plan)))
            print("\n".join(render_violations(plan.stack, violations[plan.stack])))
            print()
        assessments, drills = assess_plans(plans, measured), last_drills(DRILLS)
        print("\n".join(render_readiness(assessments, [plan.stack for plan in plans], drills)))
        figures = model_figures(plans, measured)
        print("\n".join(render_figures(figures)))
        for warning in [*figure_warnings(figures), *drill_warnings(assessments, drills, datetime.now(UTC).date())]:
            print(warning)
    blocked = any(v.mandatory for found in violations.values() for v in found)
    return 1 if blocked else 0


def render_violations(stack: str, violations) -> Iterable[str]:
    """The policy section of one stack."""
    from tools.policy_check import summary

    yield f"  {summary(violations)} in stack {stack}"
    for violation in violations:
        where = violation.resource or "stack"
        yield f"    [{violation.enforcement}] {violation.policy}  {where}: {violation.message}"


if __name__ == "__main__":
    sys.exit(main())
