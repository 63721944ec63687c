"""What every rule shares: how it is declared, which resources it looks at, how it words a violation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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

# The names the layers agree on (labels, job commands, the log line, type tokens): re-exported for the rule modules.
from core.contracts import (  # noqa: F401
    BACKUP_SUCCESS_METRIC,
    DATABASE_DUMPS,
    KIND_OPTION,
    SCHEDULED_COMMANDS,
    SUCCESS_LINES,
    USER_FILES,
    BackupKind,
    Command,
    JobEnv,
    Label,
    ResourceType,
    job_argv,
    job_name_match,
    run_job_uri,
    run_kind,
    watched_jobs,
)
from core.limits import RETENTION_DAYS, SECONDS_PER_DAY  # noqa: F401 - re-exported for the rule modules

# One dotted-path lookup for the program's pure modules and the pack (core/ is installed into the pack's venv).
from core.paths import lookup as get  # noqa: F401 - re-exported for the rule modules

from ._plan import (  # noqa: F401 - re-exported: the rule modules import everything they share from here
    ALERT_POLICY,
    BACKUP_BUCKET_COMPONENT,
    BACKUP_ROLES,
    BUCKET,
    CRYPTO_KEY,
    DNS_RECORD,
    FAILOVER_LOAD_BALANCER,
    FAILOVER_RECORD,
    LOAD_BALANCER,
    LOAD_BALANCER_POOL,
    PROJECT_GRANTS,
    PUBLIC_PREDEFINED_ACLS,
    RECOVERY,
    REPOSITORY,
    RUN_JOB,
    SCHEDULER_JOB,
    STANDBY_STACKS,
    STORAGE_ACLS,
    STRICTEST_ROLE,
    TRANSFER_JOB,
    UPTIME_CHECK,
    VERCEL_ENV,
    WRITER_ROLES,
    acl_entries,
    backup_buckets,
    backup_role,
    bucket_of,
    condition_text,
    duration_seconds,
    failover_hostnames,
    failover_targets,
    grants,
    image_repository,
    is_iam_grant,
    job_bucket,
    job_command,
    job_env,
    job_kind,
    job_option,
    labels,
    members,
    number,
    of_type,
    paused_until_promoted,
    run_jobs_scheduled,
    scheduled_job,
    stack_of,
    standby_not_promoted,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

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
    ignore_changes: tuple[str, ...] | None = None
    """`resource`'s ignore_changes option, when the weakening sets it."""


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


def buckets_only(check: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """A resource check that looks at buckets only."""
    def run(args, violate):
        if args.resource_type == BUCKET:
            check(args, violate)
    return run


@dataclass(frozen=True)
class BackupBucketArgs:
    """What a backup-bucket check sees of one bucket: the resource's props, name, urn and options, its backup
    role (backup_buckets) and the rule's config - the shape of a resource rule's arguments."""

    resource: Any
    role: str
    config: Mapping[str, Any]
    resource_type: str = BUCKET

    @property
    def props(self) -> Mapping[str, Any]:
        return self.resource.props

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def urn(self) -> str:
        return self.resource.urn

    @property
    def opts(self) -> Any:
        return self.resource.opts

    def get_config(self) -> Mapping[str, Any]:
        return self.config


def backup_bucket_policy(
    name: str,
    description: str,
    mirrors: str,
    severity: Severity,
    remediation: str,
    check: Callable[[BackupBucketArgs, Callable[[str], None]], None],
    enforcement: EnforcementLevel = MANDATORY,
    config: dict[str, dict[str, Any]] | None = None,
) -> StackValidationPolicy:
    """A rule over every backup bucket of the stack (backup_buckets: by what the plan does with it)."""

    def run(args: StackValidationArgs, violate: Callable[[str, str | None], None]) -> None:
        roles = backup_buckets(args.resources)
        for bucket in of_type(args.resources, BUCKET):
            role = roles.get(bucket.props.get("name"))
            if role:
                def report(problem: str, _urn: str = bucket.urn) -> None:
                    violate(problem, _urn)

                check(BackupBucketArgs(bucket, role, args.get_config()), report)

    return stack_policy(name, description, mirrors, severity, remediation, run, enforcement, config)
