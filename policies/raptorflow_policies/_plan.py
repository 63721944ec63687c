"""What a stack's plan holds, as the rules read it: resource types, backup buckets by what the plan does with them,
jobs and their command lines, IAM grants and ACLs in every form, alert conditions, and numbers that never raise."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from core.contracts import (
    BUCKET_OPTION,
    BUCKET_ROLES,
    DATABASE_DUMPS,
    KIND_OPTION,
    Command,
    JobEnv,
    Label,
    ResourceType,
    argv_command,
    argv_option,
    run_kind,
    started_job,
)
from core.images import in_repository
from core.limits import RETENTION_DAYS
from core.paths import lookup as get

# The types the rules look for, by the names they have always used here.
BUCKET = ResourceType.BUCKET
CRYPTO_KEY = ResourceType.CRYPTO_KEY
TRANSFER_JOB = ResourceType.TRANSFER_JOB
SCHEDULER_JOB = ResourceType.SCHEDULER_JOB
RUN_JOB = ResourceType.RUN_JOB
ALERT_POLICY = ResourceType.ALERT_POLICY
UPTIME_CHECK = ResourceType.UPTIME_CHECK
DNS_RECORD = ResourceType.DNS_RECORD
LOAD_BALANCER = ResourceType.LOAD_BALANCER
LOAD_BALANCER_POOL = ResourceType.LOAD_BALANCER_POOL
VERCEL_ENV = ResourceType.VERCEL_VARIABLE
RECOVERY = ResourceType.RECOVERY_OBJECTIVES
FAILOVER_RECORD = ResourceType.FAILOVER_RECORD
FAILOVER_LOAD_BALANCER = ResourceType.FAILOVER_LOAD_BALANCER
REPOSITORY = ResourceType.REPOSITORY

BACKUP_ROLES = tuple(role.label for role in BUCKET_ROLES)
BACKUP_BUCKET_COMPONENT = ResourceType.BACKUP_BUCKET
WRITER_ROLES = {Command.BACKUP.value: DATABASE_DUMPS.label}
"""Backup job subcommands that write backups, and the role of the bucket they write to."""
STRICTEST_ROLE = max(BACKUP_ROLES, key=lambda role: RETENTION_DAYS[role])
"""The role a backup bucket is held to when the plan does not tell which it is: the longest retention."""


def image_repository(resources: Iterable[Any], image: Any) -> Any | None:
    """The stack's Artifact Registry repository that `image` lives in, or None."""
    for repository in of_type(resources, REPOSITORY):
        props = repository.props
        if isinstance(image, str) and in_repository(image, str(props.get("project")), str(props.get("location")),
                                                    str(props.get("repositoryId"))):
            return repository
    return None


def of_type(resources: Iterable[Any], resource_type: str) -> list[Any]:
    """Stack resources of one type."""
    return [r for r in resources if r.resource_type == resource_type]


def labels(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resource's labels (monitoring `userLabels`, else GCP `labels`)."""
    return props.get("userLabels") or props.get("labels") or {}


def backup_role(props: Mapping[str, Any]) -> str | None:
    """The `backup-role` label of a bucket, when it names a backup role (`database-dumps`, `user-files`)."""
    role = labels(props).get(Label.BACKUP_ROLE)
    return role if role in BACKUP_ROLES else None


def bucket_of(value: Any) -> str | None:
    """A bucket's name from any form the APIs take it in: `NAME`, `b/NAME`, `projects/_/buckets/NAME`."""
    if not isinstance(value, str) or not value:
        return None
    for prefix in ("projects/_/buckets/", "b/"):
        if value.startswith(prefix):
            return value[len(prefix):]
    return value


def job_env(props: Mapping[str, Any]) -> dict[str, Any]:
    """The environment of a Cloud Run job's first container."""
    return {str(e.get("name")): e.get("value") for e in get(props, "template.template.containers.0.envs") or []
            if isinstance(e, Mapping)}


def job_arguments(props: Mapping[str, Any]) -> list[Any]:
    """The command line of a Cloud Run job's first container.

    The rules read what a job runs from its command line, as the job's argparse does (core.contracts reads it:
    the grammar its JobRun writes), not from its `job-command` and `backup-kind` labels: a pull request can
    relabel a job without changing what it does, and the pack polices what runs."""
    return list(get(props, "template.template.containers.0.args") or [])


def job_command(props: Mapping[str, Any]) -> str | None:
    """The backup job subcommand a Cloud Run job runs (`backup`, `restore-check`, `export-dns`), if any."""
    return argv_command(job_arguments(props))


def scheduled_job(props: Mapping[str, Any]) -> str | None:
    """The Cloud Run job a Cloud Scheduler job starts (core.contracts.run_job_uri), if it starts one."""
    return started_job(get(props, "httpTarget.uri"))


def run_jobs_scheduled(resources: Iterable[Any]) -> dict[str, list[Any]]:
    """Every Cloud Run job's name, with the Cloud Scheduler jobs that start it (`.../jobs/NAME:run`)."""
    resources = list(resources)
    started: dict[str, list[Any]] = {job.props.get("name"): [] for job in of_type(resources, RUN_JOB)}
    for schedule in of_type(resources, SCHEDULER_JOB):
        target = scheduled_job(schedule.props)
        if target in started:
            started[target].append(schedule)
    return started


def job_option(props: Mapping[str, Any], option: str) -> str | None:
    """The value a backup job's command line gives `option` (`--kind`, `--bucket`): the last one, as argparse
    takes it; `--option=value` counts too."""
    return argv_option(job_arguments(props), option)


def job_kind(props: Mapping[str, Any]) -> str | None:
    """What a Cloud Run job of the backup job does (core.contracts.run_kind): `backup full`, `backup schema`,
    `restore-check` (of a full backup, its default), `restore-check schema`, `export-dns`."""
    command = job_command(props)
    return None if command is None else run_kind(command, job_option(props, KIND_OPTION))


def job_bucket(props: Mapping[str, Any]) -> str | None:
    """The bucket a backup job uses: `--bucket` on its command line, else its BACKUP_BUCKET (the job's order)."""
    return bucket_of(job_option(props, BUCKET_OPTION) or job_env(props).get(JobEnv.BUCKET))


def stack_of(resources: Iterable[Any]) -> str | None:
    """The stack's name, from its resources' URNs (`urn:pulumi:STACK::project::...`): the engine sets it, a
    pull request cannot."""
    for resource in resources:
        urn = str(getattr(resource, "urn", "") or "")
        if urn.startswith("urn:pulumi:"):
            return urn.split(":")[2]
    return None


STANDBY_STACKS = ("dr",)
"""Stacks that are standby sites: only they may keep their own backups paused until promoted."""


def standby_not_promoted(resources: Iterable[Any], standby_stacks: Iterable[str] = STANDBY_STACKS) -> bool:
    """Whether the stack is a standby site that is not promoted: a standby stack by name (from the URNs, which the
    engine sets) whose failover hostnames serve the primary. Failover records added to any other stack make no
    standby of it."""
    resources = list(resources)
    return stack_of(resources) in set(standby_stacks) and any(
        host.get("activeSite") == "primary" for host, _ in failover_hostnames(resources))


def paused_until_promoted(resources: Iterable[Any]) -> set[str]:
    """The Cloud Run jobs a standby that is not promoted keeps paused, as documented: its own database backups
    (the primary's are what count until failover). Empty on any other stack."""
    resources = list(resources)
    if not standby_not_promoted(resources):
        return set()
    return {job.props.get("name") for job in of_type(resources, RUN_JOB)
            if job_command(job.props) == Command.BACKUP}


def backup_buckets(resources: Iterable[Any]) -> dict[str, str]:
    """Every backup bucket of the stack by name, with its backup role - from what the plan does with it, never
    from a label alone (a pull request can delete a label):

    - a BackupBucket component declares it (the stack config's backup buckets and replicas);
    - a Cloud Run job of the backup job writes to it (`BACKUP_BUCKET` of `backup`: database dumps);
    - a Storage Transfer job sinks into it (the role of its source, when known);
    - its `backup-role` label says so (a label can mark a backup bucket, never unmark one).

    A bucket whose role cannot be told gets the strictest role (the longest retention)."""
    resources = list(resources)
    roles: dict[str, str] = {}
    for resource in resources:
        if resource.resource_type == BACKUP_BUCKET_COMPONENT and resource.props.get("bucketName"):
            role = resource.props.get("role")
            roles[resource.props["bucketName"]] = role if role in BACKUP_ROLES else STRICTEST_ROLE
    for job in of_type(resources, RUN_JOB):
        writes, command = job_bucket(job.props), job_command(job.props)
        if command in WRITER_ROLES and writes:
            roles.setdefault(writes, WRITER_ROLES[command])
    for transfer in of_type(resources, TRANSFER_JOB):
        for spec in ("transferSpec", "replicationSpec"):
            sink = bucket_of(get(transfer.props, f"{spec}.gcsDataSink.bucketName"))
            source = bucket_of(get(transfer.props, f"{spec}.gcsDataSource.bucketName"))
            if sink:
                roles.setdefault(sink, roles.get(source or "", STRICTEST_ROLE))
    for bucket in of_type(resources, BUCKET):
        if backup_role(bucket.props) and bucket.props.get("name"):
            roles.setdefault(bucket.props["name"], backup_role(bucket.props) or STRICTEST_ROLE)
    return roles


def grants(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(role, principal) of an IAM member, binding or policy resource (a policy's `policyData` is read)."""
    found = [(str(props.get("role")), str(m)) for m in [*(props.get("members") or []), props.get("member")] if m]
    data = props.get("policyData")
    if isinstance(data, str) and data:
        try:
            policy = json.loads(data)
        except ValueError:
            policy = {"bindings": [{"role": "an unreadable policyData", "members": ["allUsers"]}]}
        for binding in policy.get("bindings") or [] if isinstance(policy, dict) else []:
            found += [(str(binding.get("role")), str(m)) for m in binding.get("members") or []]
    return found


def members(props: Mapping[str, Any]) -> list[str]:
    """The principals of an IAM member, binding or policy resource."""
    return [member for _, member in grants(props)]


def is_iam_grant(resource_type: str) -> bool:
    """Whether a type grants roles to principals (an IAM member, binding or policy of any service)."""
    last = resource_type.rsplit(":", 1)[-1].lower()
    return last.endswith(("iammember", "iambinding", "iampolicy"))


PROJECT_GRANTS = (ResourceType.PROJECT_IAM_MEMBER, ResourceType.PROJECT_IAM_BINDING, ResourceType.PROJECT_IAM_POLICY)
"""Project-level IAM: a storage role granted here reaches every bucket of the project, backup buckets too."""

# Cloud Storage's ACL resources: entities and roles (`READER:allUsers`), or a predefined ACL.
STORAGE_ACLS = (ResourceType.BUCKET_ACCESS_CONTROL, ResourceType.DEFAULT_OBJECT_ACCESS_CONTROL,
                ResourceType.OBJECT_ACCESS_CONTROL, ResourceType.BUCKET_ACL, ResourceType.DEFAULT_OBJECT_ACL,
                ResourceType.OBJECT_ACL)
PUBLIC_PREDEFINED_ACLS = ("publicRead", "publicReadWrite", "authenticatedRead", "bucketOwnerRead")


def acl_entries(props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(role, entity) of a Cloud Storage ACL resource; a predefined ACL counts as its public entity."""
    found = [(str(props.get("role")), str(props["entity"]))] if props.get("entity") else []
    for entry in props.get("roleEntities") or []:
        role, _, entity = str(entry).partition(":")
        found.append((role, entity))
    for key in ("predefinedAcl", "defaultAcl", "predefinedDefaultObjectAcl"):
        if props.get(key) in PUBLIC_PREDEFINED_ACLS:
            found.append((str(props[key]), "allAuthenticatedUsers" if props[key] != "publicRead" else "allUsers"))
    return found


def condition_text(props: Mapping[str, Any]) -> str:
    """Every filter and query of an alert policy's conditions, as one text."""
    parts = []
    for condition in props.get("conditions") or []:
        for path in ("conditionThreshold.filter", "conditionPrometheusQueryLanguage.query",
                     "conditionMatchedLog.filter", "conditionAbsent.filter"):
            parts.append(str(get(condition, path, "")))
    return " ".join(parts)


def number(value: Any) -> float | None:
    """A plan value as a number (`2592000`, `"2592000"`, `"2592000s"`); None when it is none, so a rule reports
    instead of raising on odd input."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.removesuffix("s"))
        except ValueError:
            return None
    return None


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


def failover_hostnames(resources: Iterable[Any]) -> Iterator[tuple[dict, str]]:
    """(hostname settings, urn) of every hostname under failover: records and load balancers alike."""
    for resource in resources:
        if resource.resource_type == FAILOVER_RECORD:
            yield resource.props, resource.urn
        elif resource.resource_type == FAILOVER_LOAD_BALANCER:
            # The load balancers share one active site, declared on the component.
            for host in resource.props.get("hostnames") or []:
                yield {"activeSite": resource.props.get("activeSite"), **host}, resource.urn


def failover_targets(resources: Iterable[Any]) -> list[tuple[str, str]]:
    """(host, urn) for every hostname under failover and both of its targets."""
    return [(host[key], urn) for host, urn in failover_hostnames(resources)
            for key in ("fqdn", "primary", "standby") if host.get(key)]
