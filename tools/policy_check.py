"""Run the CrossGuard pack in-process over an offline plan, as the engine would during a preview.

Each recorded resource becomes a `PolicyResource` whose `props` are what the
engine hands a policy (`pulumi_internals.policy_properties`, pulumi-policy's deserializer, of
the recorded inputs: camelCase, secrets unwrapped) and whose options carry
`protect`. Every resource policy sees every resource, every stack policy the
whole stack; each policy gets its config schema's defaults, as the engine
gives them when the pack is enabled without config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.pulumi_internals import policy_properties
from policies.raptorflow_policies import POLICIES
from tools.offline import Plan, Resource


@dataclass(frozen=True)
class Violation:
    """One policy violation."""

    policy: str
    enforcement: str
    severity: str
    urn: str | None
    resource: str | None
    message: str

    @property
    def mandatory(self) -> bool:
        """Whether it blocks the change."""
        return self.enforcement == EnforcementLevel.MANDATORY.value

    def to_json(self) -> dict[str, Any]:
        """As in `tools.plan --json`."""
        return {"policy": self.policy, "enforcement": self.enforcement, "severity": self.severity,
                "urn": self.urn, "resource": self.resource, "message": self.message}


def policy_config(policy, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """A policy's config: its schema's defaults, then `overrides[policy.name]`."""
    defaults = {}
    if policy.config_schema is not None:
        defaults = {key: spec["default"] for key, spec in policy.config_schema.properties.items() if "default" in spec}
    return {**defaults, **((overrides or {}).get(policy.name) or {})}


def to_policy_resource(resource: Resource) -> PolicyResource:
    """A recorded resource as a stack policy sees it."""
    return PolicyResource(
        resource_type=resource.type,
        props=policy_properties(resource.inputs),
        urn=resource.urn,
        name=resource.name,
        opts=_options(resource),
        provider=None,
        parent=None,
        dependencies=[],
        property_dependencies={},
    )


def _options(resource: Resource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=resource.protect, ignore_changes=list(resource.ignore_changes), delete_before_replace=None, aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[], parent=resource.parent,
    )


def evaluate(plan: Plan, policies: list | None = None,
             overrides: Mapping[str, Mapping[str, Any]] | None = None) -> list[Violation]:
    """Every violation of the pack (or `policies`) in `plan`, in rule order."""
    policies = POLICIES if policies is None else policies
    stack_resources = [to_policy_resource(r) for r in plan.resources]
    # What each resource waits for, as the engine hands stack policies its dependencies (those in the plan).
    by_urn = {r.urn: r for r in stack_resources}
    for policy_resource, recorded in zip(stack_resources, plan.resources, strict=True):
        policy_resource.dependencies = [by_urn[urn] for urn in recorded.dependencies if urn in by_urn]
    names = {r.urn: r.name for r in plan.resources}
    violations: list[Violation] = []
    for policy in policies:
        config = policy_config(policy, overrides)
        level = (policy.enforcement_level or EnforcementLevel.ADVISORY).value
        severity = policy.severity.value if policy.severity else "unspecified"

        def report(message: str, urn: str | None = None, *, _default_urn: str | None = None,
                   _policy=policy, _level=level, _severity=severity) -> None:
            target = urn or _default_urn
            resource_name = names.get(target) if target is not None else None
            violations.append(Violation(_policy.name, _level, _severity, target, resource_name, message))

        if isinstance(policy, ResourceValidationPolicy):
            for resource, policy_resource in zip(plan.resources, stack_resources, strict=False):
                args = ResourceValidationArgs(
                    resource_type=resource.type, props=policy_resource.props, urn=resource.urn, name=resource.name,
                    opts=policy_resource.opts, provider=None, config=config,
                )
                def report_resource(message: str, urn: str | None = None, _urn: str = resource.urn) -> None:
                    report(message, urn, _default_urn=_urn)

                policy.validate(args, report_resource)
        elif isinstance(policy, StackValidationPolicy):
            policy.validate(StackValidationArgs(resources=stack_resources, config=config), report)
    return violations


def summary(violations: list[Violation], policies: list | None = None) -> str:
    """`policies: N rules, M violations (K mandatory)`."""
    count = len(POLICIES if policies is None else policies)
    mandatory = sum(v.mandatory for v in violations)
    return f"policies: {count} rules, {len(violations)} violations ({mandatory} mandatory)"
