"""What every rule shares: how it is declared, which resources it looks at, how it words a violation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

# One dotted-path lookup for the program's pure modules and the pack (core/ is installed into the pack's venv).
from core.limits import SECONDS_PER_DAY  # noqa: F401 - re-exported for the rule modules
from core.paths import lookup as get  # noqa: F401 - re-exported for the rule modules

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

BUCKET = "gcp:storage/bucket:Bucket"
CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
TRANSFER_JOB = "gcp:storage/transferJob:TransferJob"
SCHEDULER_JOB = "gcp:cloudscheduler/job:Job"
RUN_JOB = "gcp:cloudrunv2/job:Job"
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
UPTIME_CHECK = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
LOAD_BALANCER = "cloudflare:index/loadBalancer:LoadBalancer"
LOAD_BALANCER_POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
VERCEL_ENV = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
RECOVERY = "raptorflow:recovery:RecoveryObjectives"
FAILOVER_RECORD = "raptorflow:failover:FailoverRecord"
FAILOVER_LOAD_BALANCER = "raptorflow:failover:FailoverLoadBalancer"

BACKUP_ROLES = ("database-dumps", "user-files")


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()
"""A Weakening's value that removes the property."""


@dataclass(frozen=True)
class Weakening:
    """A rule's failing fixture: the repo's compliant plan of `stack`, weakened one way, and exactly what the rule
    says about it (`message`: the problem; the rule appends its fix, written once in the rule). The weakening
    changes `resource`'s inputs at dotted `changes` paths (DELETE removes one), turns its `protect` off, drops
    the `removed` resources and/or registers the `added` ones ((type, name, inputs) each)."""

    stack: str
    message: str
    resource: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    protect: bool | None = None
    removed: tuple[str, ...] = ()
    added: tuple[tuple[str, str, Mapping[str, Any]], ...] = ()


def labels(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resource's labels (monitoring `userLabels`, else GCP `labels`)."""
    return props.get("userLabels") or props.get("labels") or {}


def backup_role(props: Mapping[str, Any]) -> str | None:
    """`database-dumps` / `user-files` for a backup bucket, else None."""
    role = labels(props).get("backup-role")
    return role if role in BACKUP_ROLES else None


def members(props: Mapping[str, Any]) -> list[str]:
    """The principals of an IAM member or binding resource."""
    found = list(props.get("members") or [])
    if props.get("member"):
        found.append(props["member"])
    return [str(m) for m in found]


def is_iam_grant(resource_type: str) -> bool:
    """Whether a type grants a role to principals (an IAM member or binding of any service)."""
    last = resource_type.rsplit(":", 1)[-1].lower()
    return last.endswith("iammember") or last.endswith("iambinding")


def duration_seconds(value: Any) -> float | None:
    """'7776000s' -> 7776000.0; None when absent or unreadable."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _metadata(description: str, mirrors: str, severity: Severity, remediation: str,
              enforcement: EnforcementLevel, config: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """The keyword arguments every rule shares: description, mirrored ids, enforcement, severity, config."""
    return {
        "description": f"{description} Mirrors {mirrors}.",
        "enforcement_level": enforcement,
        "config_schema": PolicyConfigSchema(properties=config) if config else None,
        "severity": severity,
        "framework": PolicyComplianceFramework(name="raptorflow-dr", reference=mirrors),
        "tags": [tag.strip() for tag in mirrors.split(",")],
        "remediation_steps": remediation,
    }


def resource_policy(
    name: str,
    description: str,
    mirrors: str,
    severity: Severity,
    remediation: str,
    check: Callable[[ResourceValidationArgs, Callable[[str], None]], None],
    enforcement: EnforcementLevel = MANDATORY,
    config: dict[str, dict[str, Any]] | None = None,
) -> ResourceValidationPolicy:
    """A resource rule whose violations end with the remediation."""

    def validate(args: ResourceValidationArgs, report_violation) -> None:
        check(args, lambda problem: report_violation(f"{problem}. Fix: {remediation}", None))

    return ResourceValidationPolicy(
        name=name, validate=validate,
        **_metadata(description, mirrors, severity, remediation, enforcement, config),
    )


def stack_policy(
    name: str,
    description: str,
    mirrors: str,
    severity: Severity,
    remediation: str,
    check: Callable[[StackValidationArgs, Callable[[str, str | None], None]], None],
    enforcement: EnforcementLevel = MANDATORY,
    config: dict[str, dict[str, Any]] | None = None,
) -> StackValidationPolicy:
    """A stack rule whose violations end with the remediation."""

    def validate(args: StackValidationArgs, report_violation) -> None:
        def violate(problem: str, urn: str | None = None) -> None:
            report_violation(f"{problem}. Fix: {remediation}", urn)

        check(args, violate)

    return StackValidationPolicy(
        name=name, validate=validate,
        **_metadata(description, mirrors, severity, remediation, enforcement, config),
    )


def of_type(resources: Iterable[Any], resource_type: str) -> list[Any]:
    """Stack resources of one type."""
    return [r for r in resources if r.resource_type == resource_type]


def buckets_only(check: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A resource check that looks at buckets only."""
    def run(args, violate):
        if args.resource_type == BUCKET:
            check(args, violate)
    return run


def backup_buckets_only(check: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A resource check that looks at backup buckets (a `backup-role` label) only."""
    def run(args, violate):
        if args.resource_type == BUCKET and backup_role(args.props):
            check(args, violate)
    return run


def failover_hostnames(resources: Iterable[Any]) -> Iterator[tuple[dict, str]]:
    """(hostname settings, urn) of every hostname under failover: records and load balancers alike."""
    for resource in resources:
        if resource.resource_type == FAILOVER_RECORD:
            yield resource.props, resource.urn
        elif resource.resource_type == FAILOVER_LOAD_BALANCER:
            for host in resource.props.get("hostnames") or []:
                yield host, resource.urn


def failover_targets(resources: Iterable[Any]) -> list[tuple[str, str]]:
    """(host, urn) for every hostname under failover and both of its targets."""
    return [(host[key], urn) for host, urn in failover_hostnames(resources)
            for key in ("fqdn", "primary", "standby") if host.get(key)]
