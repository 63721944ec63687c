"""Cloud Scheduler rule: the plan's times are UTC, and a missed start is retried within a deadline."""

from __future__ import annotations

from pulumi_policy import Severity

from ._base import SCHEDULER_JOB, get, resource_policy

UTC = ("UTC", "Etc/UTC")


def _utc_retry_deadline(args, violate):
    if args.resource_type != SCHEDULER_JOB:
        return
    if args.props.get("timeZone") not in UTC:
        violate(f"scheduler job {args.name} runs in {args.props.get('timeZone', 'the default time zone')}, not UTC")
    if int(get(args.props, "retryConfig.retryCount", 0) or 0) < 1:
        violate(f"scheduler job {args.name} has no retry policy")
    if not args.props.get("attemptDeadline"):
        violate(f"scheduler job {args.name} has no attempt deadline")


scheduled_jobs = resource_policy(
    "raptorflow-scheduler-utc-retry-deadline",
    "Scheduled jobs run in UTC with a retry policy and an attempt deadline.",
    "DR plan (times are UTC)",
    Severity.MEDIUM,
    'set time_zone="UTC", retry_config.retry_count >= 1 and attempt_deadline',
    _utc_retry_deadline,
)

POLICIES = [scheduled_jobs]
