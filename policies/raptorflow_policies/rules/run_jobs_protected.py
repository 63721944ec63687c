"""The backup job's Cloud Run jobs cannot be deleted by the API, run one task, retry once and have time to work."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    RUN_JOB,
    SCHEDULED_COMMANDS,
    Weakening,
    duration_seconds,
    get,
    job_command,
    number,
    resource_policy,
)

MIN_TIMEOUT_SECONDS = 60


def _check(args, violate):
    if args.resource_type != RUN_JOB or job_command(args.props) not in SCHEDULED_COMMANDS:
        return
    problems = []
    if args.props.get("deletionProtection") is not True:
        problems.append("deletion protection off")
    tasks = get(args.props, "template.taskCount")
    if tasks is not None and number(tasks) != 1:
        problems.append(f"{get(args.props, 'template.taskCount')} tasks (concurrent runs of one command)")
    if (number(get(args.props, "template.template.maxRetries")) or 0) < 1:
        problems.append("no retry")
    timeout = duration_seconds(get(args.props, "template.template.timeout"))
    if timeout is not None and timeout < MIN_TIMEOUT_SECONDS:
        problems.append(f"timeout {timeout:g} s")
    if problems:
        violate(f"backup-job command {args.props.get('name')} runs unsafely: {'; '.join(problems)}")


POLICY = resource_policy(
    "raptorflow-run-jobs-protected",
    f"Cloud Run jobs of the backup job have deletion protection on, one task, at least one retry and a timeout of "
    f"at least {MIN_TIMEOUT_SECONDS} s.",
    "Cloud Run jobs reference",
    Severity.MEDIUM,
    "keep the job settings ScheduledDatabaseBackup sets (taskTimeoutSeconds in the stack config)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup-job command db-backup-full runs unsafely: deletion protection off", "db-backup-full",
              {"deletionProtection": False}),
    Weakening("dr", "backup-job command db-backup-dns-export runs unsafely: no retry", "db-backup-dns-export",
              {"template.template.maxRetries": 0}),
]
